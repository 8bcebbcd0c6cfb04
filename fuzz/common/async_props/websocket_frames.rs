// The WebSocket framing of ferry-async's fallback transport on arbitrary
// bytes (fuzz target `websocket_frames`).
//
// `check_websocket_frames(data)`: the first byte chooses the side (bit 0:
// frames from a client, masked) and the size of the pieces the rest is fed
// in (as a reader gets a TCP stream); the rest is the stream. Decoding never
// panics; each frame takes at least its 2 header bytes and no more than was
// given; every message is within the buffer (or the decoder's reassembly)
// and at most `MAX_MESSAGE` bytes; and every message decoded, encoded again
// and decoded, comes back the same.
//
// This file depends only on ferry-async; the fuzz target and the stable
// replay test `crates/ferry-async/tests/fuzz_corpus.rs` `include!` it. (It is
// apart from `props/`, whose files depend on ferry-proto only: ferry-proto's
// replay test includes those.)

use ferry_async::fallback::frame::{self, Decoder, Frame, MAX_MESSAGE};

/// Feeds `data` (after its first byte) to a decoder and checks each frame.
pub fn check_websocket_frames(data: &[u8]) {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let masked = first & 1 == 1;
    let piece = usize::from(first >> 1).max(1) * 7;
    let mut decoder = Decoder::new(masked);
    let mut buf: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    'feed: for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let available = buf.len();
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some((frame, used))) => {
                    assert!(used >= 2 && used <= available, "took {used} of {available}");
                    match frame {
                        Frame::Message(range) => {
                            assert!(range.end <= used && range.len() <= MAX_MESSAGE);
                            messages.push(buf[range].to_vec());
                        }
                        Frame::Assembled => {
                            assert!(decoder.assembled().len() <= MAX_MESSAGE);
                            messages.push(decoder.assembled().to_vec());
                        }
                        Frame::Ping(range) => assert!(range.end <= used && range.len() <= 125),
                        Frame::Partial | Frame::Pong | Frame::Close => {}
                    }
                    buf.drain(..used);
                }
                Err(_) => break 'feed,
            }
        }
    }
    // What was decoded survives encoding and decoding again.
    let mut again = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mask = masked.then_some([i as u8, 1, 2, 3]);
        frame::encode_message(&mut again, message, mask);
    }
    let mut decoder = Decoder::new(masked);
    let mut at = 0;
    for message in &messages {
        let (frame, used) = decoder
            .decode(&mut again[at..])
            .expect("a frame Ferry encoded decodes")
            .expect("a whole frame");
        let Frame::Message(range) = frame else {
            panic!("one frame per message, got {frame:?}");
        };
        assert_eq!(&again[at + range.start..at + range.end], &message[..]);
        at += used;
    }
    assert_eq!(at, again.len());
}
