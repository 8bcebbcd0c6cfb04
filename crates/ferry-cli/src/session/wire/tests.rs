//! The wire messages' tests: round trips, versions, truncated and
//! garbage input.

use super::*;

#[test]
fn a_header_round_trips_and_is_version_3() {
    let h = EntryHeader {
        kind: EntryKind::File,
        name: "dir/données.bin".into(),
        size: 123_456_789,
    };
    let bytes = h.encode();
    assert_eq!(&bytes[..5], b"FRYS\x03");
    assert_eq!(bytes[5], 1, "kind");
    assert_eq!(&bytes[6..8], &(h.name.len() as u16).to_be_bytes());
    assert_eq!(&bytes[bytes.len() - 8..], &123_456_789u64.to_be_bytes());
    assert_eq!(EntryHeader::decode(&bytes), Ok(h.clone()));
    assert!(EntryHeader::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(EntryHeader::decode(b"FRYS").is_err());
    assert!(EntryHeader::decode(b"").is_err());
}

/// A peer of version 1 (the digest in the header) gets an error that
/// names both versions and says to upgrade.
#[test]
fn a_version_1_header_is_refused_with_advice_to_upgrade() {
    let mut v1 = b"FRYS\x01\x01\x00\x05a.txt".to_vec();
    v1.extend_from_slice(&5u64.to_be_bytes());
    v1.extend_from_slice(&[0; 32]);
    let err = EntryHeader::decode(&v1).unwrap_err();
    assert_eq!(
        err,
        WireError::Version {
            what: "file messages",
            peer: 1,
            ours: FILE_VERSION
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("version 1") && text.contains("version 3"),
        "{text}"
    );
    assert!(text.contains("upgrade ferry on both sides"), "{text}");
    let mut manifest = Manifest {
        entries: 1,
        bytes: 5,
    }
    .encode();
    manifest[4] = 1;
    assert!(matches!(
        Manifest::decode(&manifest),
        Err(WireError::Version { peer: 1, .. })
    ));
    // The forwarding messages keep their own version.
    let f = ForwardRequest {
        target: String::new(),
    }
    .encode();
    assert_eq!(&f[..5], b"FRYT\x01");
}

#[test]
fn content_messages_round_trip() {
    let data = Content::Data(Bytes::from_static(b"some bytes"));
    let bytes = data.encode();
    assert_eq!(bytes, b"Dsome bytes");
    assert_eq!(Content::decode(Bytes::from(bytes)), Ok(data));
    assert_eq!(
        Content::decode(Bytes::from_static(b"D")),
        Ok(Content::Data(Bytes::new()))
    );
    let digest = *blake3::hash(b"some bytes").as_bytes();
    let t = trailer(&digest);
    assert_eq!(t.len(), TRAILER_LEN);
    assert_eq!(t[0], b'T');
    assert_eq!(&t[1..], &digest);
    assert_eq!(Content::Trailer(digest).encode(), t);
    assert_eq!(
        Content::decode(Bytes::from(t)),
        Ok(Content::Trailer(digest))
    );
}

#[test]
fn truncated_or_garbage_content_is_a_typed_error() {
    let digest = [9u8; 32];
    let t = trailer(&digest);
    for bad in [&b""[..], &t[..TRAILER_LEN - 1], b"T", b"X123", b"FRYS\x02"] {
        assert_eq!(
            Content::decode(Bytes::copy_from_slice(bad)),
            Err(WireError::Malformed("file content")),
            "{bad:?}"
        );
    }
    let mut long = t.clone();
    long.push(0);
    assert!(Content::decode(Bytes::from(long)).is_err());
}

/// A resume offer and the sender's answer round-trip; truncated or
/// padded ones are typed errors; a version-2 header is refused.
#[test]
fn resume_messages_round_trip_and_truncation_is_an_error() {
    let offer = ResumeOffer {
        offset: 512 << 20,
        digest: *blake3::hash(b"prefix").as_bytes(),
    };
    let bytes = offer.encode();
    assert_eq!(bytes.len(), ResumeOffer::LEN);
    assert_eq!(bytes[0], 8);
    assert_eq!(ResumeOffer::decode(&bytes), Ok(offer));
    assert_eq!(Reply::decode(&bytes).unwrap().code, ReplyCode::Resume);
    for n in 0..bytes.len() {
        assert_eq!(
            ResumeOffer::decode(&bytes[..n]),
            Err(WireError::Malformed("resume offer"))
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(ResumeOffer::decode(&long).is_err());
    let mut other = bytes;
    other[0] = 7;
    assert!(ResumeOffer::decode(&other).is_err());

    let r = Content::Resume(12345);
    let bytes = r.encode();
    assert_eq!(bytes[0], b'R');
    assert_eq!(bytes.len(), 9);
    assert_eq!(Content::decode(Bytes::from(bytes.clone())), Ok(r));
    for n in 0..bytes.len() {
        assert!(Content::decode(Bytes::copy_from_slice(&bytes[..n])).is_err());
    }
    let mut long = bytes;
    long.push(1);
    assert!(Content::decode(Bytes::from(long)).is_err());

    let mut v2 = EntryHeader {
        kind: EntryKind::File,
        name: "a".into(),
        size: 1,
    }
    .encode();
    v2[4] = 2;
    assert!(matches!(
        EntryHeader::decode(&v2),
        Err(WireError::Version {
            peer: 2,
            ours: 3,
            ..
        })
    ));
}

#[test]
fn digest_only_is_a_reply_code() {
    let r = Reply::new(ReplyCode::DigestOnly, "");
    assert_eq!(r.encode(), [7]);
    assert_eq!(Reply::decode(&[7]), Ok(r));
    assert!(Reply::decode(&[9]).is_err());
    assert!(Reply::decode(&[]).is_err());
}

#[test]
fn small_messages_round_trip() {
    let m = Manifest {
        entries: 3,
        bytes: 1 << 40,
    };
    assert_eq!(Manifest::decode(&m.encode()), Ok(m));
    assert_eq!(decode_progress(&encode_progress(77)), Some(77));
    assert_eq!(decode_progress(&m.encode()), None);
    let r = Reply::new(ReplyCode::Exists, "a.txt exists");
    assert_eq!(Reply::decode(&r.encode()), Ok(r));
    assert!(Reply::decode(&[99]).is_err());
    let f = ForwardRequest {
        target: "db:5432".into(),
    };
    assert_eq!(ForwardRequest::decode(&f.encode()), Ok(f));
}

#[test]
fn names_are_sanitised() {
    assert_eq!(sanitize_path("a.txt"), Ok(PathBuf::from("a.txt")));
    assert_eq!(sanitize_path("d/e/f.txt"), Ok(PathBuf::from("d/e/f.txt")));
    assert_eq!(sanitize_path("..."), Ok(PathBuf::from("...")));
    assert_eq!(sanitize_path(".hidden"), Ok(PathBuf::from(".hidden")));
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/./b",
        "a//b",
        "a/",
        ".",
        "..",
        "a\\..\\b",
        "nul\0byte",
        "line\nbreak",
        "esc\u{1b}[2J",
    ] {
        assert!(sanitize_path(bad).is_err(), "{bad:?}");
    }
    assert!(sanitize_path(&"x".repeat(256)).is_err());
    assert!(sanitize_path(&"x/".repeat(3000)).is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn header() -> impl Strategy<Value = EntryHeader> {
        (
            prop_oneof![Just(EntryKind::File), Just(EntryKind::Dir)],
            "[^\\x00]{0,300}",
            any::<u64>(),
        )
            .prop_map(|(kind, name, size)| EntryHeader { kind, name, size })
    }

    proptest! {
        #[test]
        fn headers_round_trip(h in header()) {
            prop_assert_eq!(EntryHeader::decode(&h.encode()), Ok(h));
        }

        /// Whatever arrives: no panic, and what decodes encodes back to
        /// the same bytes (one meaning per message).
        #[test]
        fn decoding_any_bytes_is_safe_and_canonical(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            prefix in prop_oneof![
                Just(&b""[..]),
                Just(&b"FRYS\x03"[..]),
                Just(&b"FRYM\x03"[..]),
                Just(&b"R"[..]),
                Just(&b"\x08"[..]),
                Just(&b"FRYT\x01"[..]),
                Just(&b"D"[..]),
                Just(&b"T"[..]),
            ],
        ) {
            let bytes = [prefix, &bytes[..]].concat();
            if let Ok(h) = EntryHeader::decode(&bytes) {
                prop_assert_eq!(h.encode(), bytes.clone());
            }
            if let Ok(m) = Manifest::decode(&bytes) {
                prop_assert_eq!(&m.encode()[..], &bytes[..21]);
            }
            if let Ok(f) = ForwardRequest::decode(&bytes) {
                prop_assert_eq!(f.encode(), bytes.clone());
            }
            match Content::decode(Bytes::from(bytes.clone())) {
                Ok(c) => prop_assert_eq!(c.encode(), bytes.clone()),
                Err(e) => prop_assert_eq!(e, WireError::Malformed("file content")),
            }
            if let Ok(o) = ResumeOffer::decode(&bytes) {
                prop_assert_eq!(o.encode(), bytes.clone());
            }
            let _ = Reply::decode(&bytes);
            let _ = decode_progress(&bytes);
        }

        #[test]
        fn content_round_trips(data in prop::collection::vec(any::<u8>(), 0..2000), digest in any::<[u8; 32]>()) {
            let d = Content::Data(Bytes::from(data));
            prop_assert_eq!(Content::decode(Bytes::from(d.encode())), Ok(d));
            let t = Content::Trailer(digest);
            prop_assert_eq!(Content::decode(Bytes::from(t.encode())), Ok(t));
        }

        #[test]
        fn small_messages_round_trip_for_any_value(
            entries in any::<u64>(),
            total in any::<u64>(),
            progress in any::<u64>(),
            target in "[^\\x00]{0,100}",
            text in ".{0,100}",
        ) {
            let m = Manifest { entries, bytes: total };
            prop_assert_eq!(Manifest::decode(&m.encode()), Ok(m));
            prop_assert_eq!(decode_progress(&encode_progress(progress)), Some(progress));
            let f = ForwardRequest { target };
            prop_assert_eq!(ForwardRequest::decode(&f.encode()), Ok(f.clone()));
            let r = Reply::new(ReplyCode::Stored, text);
            prop_assert_eq!(Reply::decode(&r.encode()), Ok(r));
        }

        /// A name that passes stays inside the receiving directory: it is
        /// relative, of plain components only, and as the sender spelt it.
        #[test]
        fn a_sanitised_name_stays_inside(name in "([a-z.]{0,3}|\\.\\.|/|\\\\|\\x00|\\n){0,12}") {
            if let Ok(path) = sanitize_path(&name) {
                prop_assert!(path.is_relative());
                prop_assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
                prop_assert_eq!(wire_name(&path), Some(name.clone()));
                let inside = Path::new("/srv/in").join(&path);
                prop_assert!(inside.starts_with("/srv/in"));
            }
        }
    }
}

#[test]
fn wire_names() {
    assert_eq!(wire_name(Path::new("a/b/c")).as_deref(), Some("a/b/c"));
    assert_eq!(wire_name(Path::new("../a")), None);
    assert_eq!(wire_name(Path::new("")), None);
}
