use proptest::prelude::*;

use super::*;

/// Decodes every frame of `bytes`, fed in pieces of at most `piece` bytes
/// as a reader would; returns the messages, or the first error.
fn decode_all(masked: bool, bytes: &[u8], piece: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut decoder = Decoder::new(masked);
    let mut buf = Vec::new();
    let mut messages = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some((frame, used)) = decoder.decode(&mut buf)? {
            match frame {
                Frame::Message(range) => messages.push(buf[range].to_vec()),
                Frame::Assembled => messages.push(decoder.assembled().to_vec()),
                Frame::Partial | Frame::Ping(_) | Frame::Pong | Frame::Close => {}
            }
            buf.drain(..used);
        }
    }
    Ok(messages)
}

#[test]
fn a_server_message_decodes_to_its_bytes() {
    let mut out = Vec::new();
    encode_message(&mut out, b"hello", None);
    assert_eq!(out, [0x82, 5, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(
        decode_all(false, &out, 100).unwrap(),
        vec![b"hello".to_vec()]
    );
}

#[test]
fn a_client_message_is_masked_and_unmasked() {
    let mut out = Vec::new();
    encode_message(&mut out, b"hello", Some([1, 2, 3, 4]));
    assert_eq!(&out[..6], &[0x82, 0x85, 1, 2, 3, 4]);
    assert_ne!(&out[6..], b"hello");
    assert_eq!(decode_all(true, &out, 3).unwrap(), vec![b"hello".to_vec()]);
}

#[test]
fn lengths_use_the_two_and_eight_byte_forms() {
    for len in [125, 126, 65_535] {
        let mut out = Vec::new();
        encode_message(&mut out, &vec![7; len], None);
        let header = match len {
            125 => 2,
            _ => 4,
        };
        assert_eq!(out.len(), header + len);
        assert_eq!(decode_all(false, &out, 1000).unwrap()[0].len(), len);
    }
}

#[test]
fn a_frame_masked_the_wrong_way_is_an_error() {
    let mut out = Vec::new();
    encode_message(&mut out, b"x", None);
    assert_eq!(decode_all(true, &out, 10), Err(FrameError::Mask));
    let mut out = Vec::new();
    encode_message(&mut out, b"x", Some([9; 4]));
    assert_eq!(decode_all(false, &out, 10), Err(FrameError::Mask));
}

#[test]
fn a_message_above_the_limit_is_refused_from_its_header_alone() {
    // Claims 2^63 bytes; only the header is there.
    let header = [0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let mut buf = header.to_vec();
    assert!(matches!(
        Decoder::new(false).decode(&mut buf),
        Err(FrameError::TooLarge(_))
    ));
    let mut buf = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
    assert_eq!(
        Decoder::new(false).decode(&mut buf),
        Err(FrameError::TooLarge(65_536))
    );
}

#[test]
fn fragments_are_assembled_and_bounded() {
    // "ab" + "cd" in two frames.
    let bytes = [0x02, 2, b'a', b'b', 0x80, 2, b'c', b'd'];
    assert_eq!(
        decode_all(false, &bytes, 3).unwrap(),
        vec![b"abcd".to_vec()]
    );
    // A ping between fragments is allowed.
    let bytes = [0x02, 1, b'a', 0x89, 0, 0x80, 1, b'b'];
    assert_eq!(decode_all(false, &bytes, 8).unwrap(), vec![b"ab".to_vec()]);
    // Fragments adding up to more than the limit.
    let mut bytes = vec![0x02, 126, 0xFF, 0xFF];
    bytes.extend(vec![0; 65_535]);
    bytes.extend([0x80, 1, 0]);
    assert_eq!(
        decode_all(false, &bytes, 70_000),
        Err(FrameError::TooLarge(65_536))
    );
}

#[test]
fn out_of_order_fragments_text_reserved_bits_and_unknown_opcodes_are_errors() {
    assert_eq!(decode_all(false, &[0x80, 0], 9), Err(FrameError::Fragment));
    assert_eq!(
        decode_all(false, &[0x02, 0, 0x82, 0], 9),
        Err(FrameError::Fragment)
    );
    assert_eq!(decode_all(false, &[0x81, 0], 9), Err(FrameError::Text));
    assert_eq!(decode_all(false, &[0xC2, 0], 9), Err(FrameError::Reserved));
    assert_eq!(decode_all(false, &[0x83, 0], 9), Err(FrameError::Opcode(3)));
    assert_eq!(decode_all(false, &[0x09, 0], 9), Err(FrameError::Control));
    assert_eq!(
        decode_all(false, &[0x89, 126, 0, 126], 9),
        Err(FrameError::Control)
    );
}

#[test]
fn control_frames_are_reported() {
    let mut out = Vec::new();
    encode_pong(&mut out, b"p", None);
    encode_close(&mut out, None);
    let mut decoder = Decoder::new(false);
    let (frame, used) = decoder.decode(&mut out).unwrap().unwrap();
    assert_eq!(frame, Frame::Pong);
    let (frame, _) = decoder.decode(&mut out[used..]).unwrap().unwrap();
    assert_eq!(frame, Frame::Close);
    let mut ping = vec![0x89, 2, b'h', b'i'];
    assert_eq!(
        Decoder::new(false).decode(&mut ping).unwrap(),
        Some((Frame::Ping(2..4), 4))
    );
}

#[test]
fn masks_differ_from_one_frame_to_the_next() {
    let mut masks = Masks::new();
    let a = masks.next_mask();
    let b = masks.next_mask();
    assert_ne!(a, b);
}

proptest! {
    #[test]
    fn any_messages_survive_encoding_and_decoding_in_any_pieces(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..20),
        masked in any::<bool>(),
        piece in 1usize..5000,
    ) {
        let mut masks = Masks::new();
        let mut out = Vec::new();
        for m in &messages {
            encode_message(&mut out, m, masked.then(|| masks.next_mask()));
        }
        prop_assert_eq!(decode_all(masked, &out, piece).unwrap(), messages);
    }

    #[test]
    fn any_bytes_decode_without_panic_and_within_their_length(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        masked in any::<bool>(),
    ) {
        let mut decoder = Decoder::new(masked);
        let mut buf = bytes;
        while let Ok(Some((frame, used))) = decoder.decode(&mut buf) {
            prop_assert!(used <= buf.len() && used >= 2);
            if let Frame::Message(range) | Frame::Ping(range) = frame {
                prop_assert!(range.end <= used);
            }
            prop_assert!(decoder.assembled().len() <= MAX_MESSAGE);
            buf.drain(..used);
        }
    }

    #[test]
    fn masking_twice_gives_the_bytes_back(
        data in prop::collection::vec(any::<u8>(), 0..100),
        key in any::<[u8; 4]>(),
    ) {
        let mut masked = data.clone();
        apply_mask(&mut masked, key);
        for (i, (m, d)) in masked.iter().zip(&data).enumerate() {
            prop_assert_eq!(*m, d ^ key[i % 4]);
        }
        apply_mask(&mut masked, key);
        prop_assert_eq!(masked, data);
    }
}
