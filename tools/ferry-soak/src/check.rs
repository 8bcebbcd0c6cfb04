//! Messages that describe themselves, so that the receiver can check every
//! byte without being told what was sent.
//!
//! A message is a 24-byte header — tag, stream number, index, length — and a
//! body whose every byte follows from the header.

use bytes::Bytes;

const HEADER: usize = 24;
/// The largest message, in bytes.
const MAX_MESSAGE: usize = 256 << 10;

/// Messages and bytes, counted the same way on both sides.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, len: usize) {
        self.messages += 1;
        self.bytes += len as u64;
    }
}

/// Reads `done <messages> <bytes>`.
pub(crate) fn parse_tally(text: &[u8]) -> Option<Tally> {
    let text = std::str::from_utf8(text).ok()?;
    let mut words = text.strip_prefix("done ")?.split(' ');
    let messages = words.next()?.parse().ok()?;
    let bytes = words.next()?.parse().ok()?;
    Some(Tally { messages, bytes })
}

/// Makes the messages of one stream of one session.
#[derive(Debug)]
pub(crate) struct Generator {
    tag: u64,
    stream: u64,
    index: u64,
    rng: u64,
}

impl Generator {
    pub(crate) fn new(tag: u64, stream: u64) -> Self {
        Self {
            tag,
            stream,
            index: 0,
            rng: mix(tag ^ (stream << 56) ^ 0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The next message: sizes spread from the header alone to 256 KiB, most
    /// of them small.
    pub(crate) fn next_message(&mut self) -> Bytes {
        self.rng = mix(self.rng);
        let shift = self.rng % 19;
        let len = (HEADER + (self.rng >> 8) as usize % (1usize << shift)).min(MAX_MESSAGE);
        let m = message(self.tag, self.stream, self.index, len);
        self.index += 1;
        m
    }
}

fn message(tag: u64, stream: u64, index: u64, len: usize) -> Bytes {
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&tag.to_le_bytes());
    m.extend_from_slice(&(stream << 48 | index).to_le_bytes());
    m.extend_from_slice(&(len as u64).to_le_bytes());
    fill(&mut m, tag, stream, index, len);
    Bytes::from(m)
}

fn fill(m: &mut Vec<u8>, tag: u64, stream: u64, index: u64, len: usize) {
    let mut x = mix(tag ^ stream.rotate_left(17) ^ index.rotate_left(31));
    while m.len() < len {
        x = mix(x);
        let take = (len - m.len()).min(8);
        m.extend_from_slice(&x.to_le_bytes()[..take]);
    }
}

/// Checks that `m` is message `index` of `stream`, whole and unchanged.
pub(crate) fn verify(m: &[u8], stream: u64, index: u64) -> Result<(), String> {
    if m.len() < HEADER {
        return Err(format!("{} bytes, shorter than a header", m.len()));
    }
    let word = |i: usize| u64::from_le_bytes(m[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (tag, position, len) = (word(0), word(1), word(2));
    if position != (stream << 48 | index) {
        return Err(format!(
            "expected message {index} of stream {stream}, got stream {} message {}",
            position >> 48,
            position & ((1 << 48) - 1)
        ));
    }
    if len != m.len() as u64 {
        return Err(format!("header says {len} bytes, {} arrived", m.len()));
    }
    let expected = message(tag, stream, index, m.len());
    if expected != m {
        return Err(format!("message {index}: content differs"));
    }
    Ok(())
}

/// SplitMix64's finaliser: a cheap, well-spread hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_verify_and_damage_is_caught() {
        let mut g = Generator::new(42, 1);
        for i in 0..200 {
            let m = g.next_message();
            assert!(m.len() >= HEADER && m.len() <= MAX_MESSAGE);
            verify(&m, 1, i).unwrap();
            assert!(verify(&m, 1, i + 1).is_err(), "wrong index");
            assert!(verify(&m, 0, i).is_err(), "wrong stream");
            let mut bad = m.to_vec();
            let at = bad.len() - 1;
            bad[at] ^= 1;
            assert!(verify(&bad, 1, i).is_err(), "a flipped bit");
            assert!(verify(&m[..m.len() - 1], 1, i).is_err(), "truncated");
        }
    }

    #[test]
    fn tallies_round_trip() {
        let t = Tally {
            messages: 7,
            bytes: 12345,
        };
        let text = format!("done {} {}", t.messages, t.bytes);
        assert_eq!(parse_tally(text.as_bytes()), Some(t));
        assert_eq!(parse_tally(b"done x"), None);
    }
}
