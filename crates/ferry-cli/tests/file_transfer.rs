//! `ferry send` / `ferry receive` with the digest as a trailer (file
//! messages version 3): files read once and arriving byte-exact, digests
//! checked before a file gets its name, the digest-only exchange for files
//! already there, and a peer of another version told to upgrade.

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::{Server, assert_same_tree, content, make_tree, receiver, run, text};
use ferry_cli::session::disk::CHUNK;
use ferry_cli::session::wire::{
    CLOSE_DONE, Content, EntryHeader, EntryKind, Manifest, Reply, ReplyCode, trailer,
};
use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt, Session, StreamKind};

const WAIT: Duration = Duration::from_secs(60);

fn send(paths: &[&Path], to: &Server) -> (Option<i32>, String, String) {
    let mut args = vec!["send"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let to = to.addr.to_string();
    args.extend(["--to", &to, "--progress", "off"]);
    let out = run(&args);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// Names under `dir` (recursively) that are temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("ferry-part") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Bytes of content the sender's summary reports as sent.
fn bytes_sent(summary: &str) -> f64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_else(|| panic!("no summary in {summary}"));
    let (number, unit) = line
        .split(", ")
        .nth(2)
        .and_then(|part| part.split(" in ").next())
        .and_then(|amount| amount.split_once(' '))
        .unwrap_or_else(|| panic!("no amount in {line}"));
    let number: f64 = number.parse().unwrap();
    number
        * match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            other => panic!("unit {other} in {line}"),
        }
}

#[test]
fn several_files_and_directories_arrive_byte_exact() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 3 * CHUNK + 7);
    // Sizes around the chunk size, where a reader or writer could slip.
    let edges = src.path().join("edges");
    std::fs::create_dir_all(edges.join("nested/empty")).unwrap();
    for (i, size) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK]
        .into_iter()
        .enumerate()
    {
        std::fs::write(
            edges.join(format!("nested/f{i}.bin")),
            content(size, 10 + i as u64),
        )
        .unwrap();
    }
    let single = src.path().join("single.txt");
    std::fs::write(&single, b"one file on its own").unwrap();
    let server = receiver(dst.path(), &[]);
    let (code, stdout, stderr) = send(&[&src.path().join("tree"), &edges, &single], &server);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent 13 files (0 already there and identical), 7 directories"),
        "{stdout}"
    );
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
    assert_same_tree(&edges, &dst.path().join("edges"));
    assert_eq!(
        std::fs::read(dst.path().join("single.txt")).unwrap(),
        b"one file on its own"
    );
    assert!(leftovers(dst.path()).is_empty());
}

#[test]
fn a_64_mib_file_arrives_exact() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    let data = content(64 << 20, 64);
    std::fs::write(&file, &data).unwrap();
    let server = receiver(dst.path(), &[]);
    let (code, stdout, stderr) = send(&[&file], &server);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("64.0 MiB"), "{stdout}");
    assert_eq!(server.wait(WAIT).0, Some(0));
    let got = std::fs::read(dst.path().join("big.bin")).unwrap();
    assert!(got == data, "the received file differs");
}

/// A second sending of the same files: the receiver asks for the digests
/// only, and answers identical; the content is not sent again (only what
/// was on its way before the request arrived).
#[test]
fn files_already_there_are_answered_identical_without_their_content() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 48 << 20);
    let tree = src.path().join("tree");
    let server = receiver(dst.path(), &[]);
    let (code, stdout, stderr) = send(&[&tree], &server);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(server.wait(WAIT).0, Some(0));

    // A small stream window bounds what can be on its way before the
    // request for the digest only arrives, whatever the machine's load.
    let config = src.path().join("small-window.toml");
    std::fs::write(
        &config,
        "[session]\nmax_message_size = 1048577\nstream_recv_window = 4194304\nmax_stream_recv_window = 4194304\n",
    )
    .unwrap();
    let server = receiver(dst.path(), &["--config", config.to_str().unwrap()]);
    let (code, stdout, stderr) = send(&[&tree], &server);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent 0 files (6 already there and identical)"),
        "{stdout}"
    );
    let total = (48 << 20) as f64;
    assert!(
        bytes_sent(&stdout) < total / 2.0,
        "the content went again: {stdout}"
    );
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert!(
        received.contains("6 already there and identical"),
        "{received}"
    );
    assert_same_tree(&tree, &dst.path().join("tree"));

    // Same name and size, other content: refused, the old file kept.
    let mut changed = std::fs::read(tree.join("sub/a.bin")).unwrap();
    changed[100] ^= 1;
    std::fs::write(tree.join("sub/a.bin"), &changed).unwrap();
    let server = receiver(dst.path(), &[]);
    let (code, stdout, _) = send(&[&tree], &server);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("not sent: tree/sub/a.bin"), "{stdout}");
    assert!(stdout.contains("--overwrite"), "{stdout}");
    assert_eq!(server.wait(WAIT).0, Some(1));
    assert_eq!(
        std::fs::read(dst.path().join("tree/sub/a.bin")).unwrap(),
        content(70_000, 2)
    );
    assert!(leftovers(dst.path()).is_empty());
}

/// A session with the receiver, in this process, for hand-made messages.
fn with_session<T>(addr: std::net::SocketAddr, f: impl AsyncFnOnce(&Session) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let endpoint =
            Endpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default()).unwrap();
        let session = endpoint.connect(addr).await.unwrap();
        let out = f(&session).await;
        session.close(CLOSE_DONE);
        endpoint.close().await;
        out
    })
}

/// Sends one file as `messages` after its header; the receiver's final
/// reply.
async fn send_raw(session: &Session, name: &str, size: u64, messages: Vec<Vec<u8>>) -> Reply {
    let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
    let header = EntryHeader {
        kind: EntryKind::File,
        name: name.into(),
        size,
    };
    stream.send(header.encode()).await.unwrap();
    for m in messages {
        let _ = stream.send(m).await;
    }
    let _ = stream.finish();
    loop {
        let reply = stream.recv().await.unwrap().expect("a reply");
        let reply = Reply::decode(&reply).unwrap();
        // Not final: the digest only, or (a file of 1 MiB or more) the
        // receiver's resume offer, at 0 here (nothing kept).
        if !matches!(reply.code, ReplyCode::DigestOnly | ReplyCode::Resume) {
            return reply;
        }
    }
}

fn data(bytes: &[u8]) -> Vec<u8> {
    Content::Data(Bytes::copy_from_slice(bytes)).encode()
}

/// A digest trailer that does not match what arrived (the corruption a
/// digest is there to catch), a trailer before all the bytes, bytes beyond
/// the size, a missing trailer: the file never appears under its name, and
/// no temporary file stays.
#[test]
fn a_corrupted_digest_leaves_no_file_under_its_name() {
    let dst = tempfile::tempdir().unwrap();
    let server = receiver(dst.path(), &[]);
    let body = content(3 * CHUNK + 5, 9);
    let good = *blake3::hash(&body).as_bytes();
    let mut bad = good;
    bad[0] ^= 0x80;
    let replies = with_session(server.addr, async |session| {
        let mut replies = Vec::new();
        let chunks = |b: &[u8]| b.chunks(CHUNK).map(data).collect::<Vec<_>>();
        let mut wrong = chunks(&body);
        wrong.push(trailer(&bad));
        replies.push((
            "wrong-digest.bin",
            send_raw(session, "wrong-digest.bin", body.len() as u64, wrong).await,
        ));
        let mut short = chunks(&body[..CHUNK]);
        short.push(trailer(&good));
        replies.push((
            "short.bin",
            send_raw(session, "short.bin", body.len() as u64, short).await,
        ));
        let mut long = chunks(&body);
        long.push(data(b"one more"));
        long.push(trailer(&good));
        replies.push((
            "long.bin",
            send_raw(session, "long.bin", body.len() as u64, long).await,
        ));
        replies.push((
            "no-trailer.bin",
            send_raw(session, "no-trailer.bin", body.len() as u64, chunks(&body)).await,
        ));
        replies.push((
            "garbage.bin",
            send_raw(session, "garbage.bin", 4, vec![b"Xjunk".to_vec()]).await,
        ));
        let mut right = chunks(&body);
        right.push(trailer(&good));
        replies.push((
            "right.bin",
            send_raw(session, "right.bin", body.len() as u64, right).await,
        ));
        replies
    });
    for (name, reply) in &replies {
        let want = match *name {
            "right.bin" => ReplyCode::Stored,
            "no-trailer.bin" | "garbage.bin" => ReplyCode::Malformed,
            _ => ReplyCode::Mismatch,
        };
        assert_eq!(reply.code, want, "{name}: {}", reply.text);
    }
    assert!(
        replies[0]
            .1
            .text
            .contains("does not match its BLAKE3 digest"),
        "{:?}",
        replies[0]
    );
    let (code, out, _) = server.wait(WAIT);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("not stored: wrong-digest.bin"), "{out}");
    let mut names: Vec<_> = std::fs::read_dir(dst.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["right.bin"], "only the file whose digest matched");
    assert_eq!(std::fs::read(dst.path().join("right.bin")).unwrap(), body);
}

/// A sender of version 1 (the digest in the header, read twice) is refused
/// with a reason that says to upgrade, at both ends.
#[test]
fn a_sender_of_another_version_is_told_to_upgrade() {
    let dst = tempfile::tempdir().unwrap();
    let server = receiver(dst.path(), &[]);
    let reply = with_session(server.addr, async |session| {
        let mut manifest = Manifest {
            entries: 1,
            bytes: 5,
        }
        .encode();
        manifest[4] = 1;
        session.send(manifest).await.unwrap();
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        let mut v1 = b"FRYS\x01\x01\x00\x05a.txt".to_vec();
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(blake3::hash(b"hello").as_bytes());
        stream.send(v1).await.unwrap();
        let _ = stream.send(b"hello".to_vec()).await;
        let _ = stream.finish();
        let reply = stream.recv().await.unwrap().expect("a reply");
        Reply::decode(&reply).unwrap()
    });
    assert_eq!(reply.code, ReplyCode::Malformed);
    assert!(
        reply.text.contains("version 1") && reply.text.contains("upgrade ferry on both sides"),
        "{}",
        reply.text
    );
    let (code, out, _) = server.wait(WAIT);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("upgrade ferry on both sides"), "{out}");
    assert!(std::fs::read_dir(dst.path()).unwrap().next().is_none());
}
