//! WebSocket framing (RFC 6455 §5) for the fallback: one datagram per binary
//! message.
//!
//! Ferry frames the data itself rather than through a WebSocket library's
//! message type, so that a batch of datagrams becomes one buffer and one
//! `write`, and a large read yields many datagrams without an allocation per
//! frame. The rules kept:
//!
//! - a client masks every frame, a server none; a frame masked the wrong way
//!   is an error ([`FrameError::Mask`]);
//! - a message (all its fragments) longer than [`MAX_MESSAGE`] is an error
//!   ([`FrameError::TooLarge`]) found from the header alone, before any of
//!   its bytes are held: no allocation follows from what a peer claims;
//! - control frames (close, ping, pong) are at most 125 bytes and never
//!   fragmented; text messages, reserved bits and unknown opcodes are
//!   errors.
//!
//! Any error closes the connection (the caller counts it); decoding never
//! panics on any input (the fuzz target `websocket_frames` and the property
//! tests below check it).

use std::ops::Range;

use thiserror::Error;

/// The largest message the fallback carries: a UDP payload's most, 65 535
/// bytes (a Ferry datagram is at most 65 507).
pub const MAX_MESSAGE: usize = 65_535;

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;

/// The longest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A malformed or unwelcome frame: the connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A reserved bit was set (no extension was negotiated).
    #[error("a reserved bit is set, but no WebSocket extension was negotiated")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown WebSocket opcode {0:#x}")]
    Opcode(u8),
    /// A text message: the fallback carries binary messages only.
    #[error("a text message: the Ferry fallback carries binary messages only")]
    Text,
    /// A client frame without a mask, or a server frame with one.
    #[error("a frame masked the wrong way for its sender (clients mask, servers do not)")]
    Mask,
    /// A message longer than [`MAX_MESSAGE`].
    #[error("a message of {0} bytes or more, above the fallback's {MAX_MESSAGE}")]
    TooLarge(u64),
    /// A control frame longer than 125 bytes, or fragmented.
    #[error("a control frame longer than 125 bytes or fragmented")]
    Control,
    /// A continuation frame with no message begun, or a new message before
    /// the last one ended.
    #[error("a fragment out of order")]
    Fragment,
}

/// What one decoded frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole binary message in one frame: its bytes are these of the
    /// buffer given to [`Decoder::decode`], unmasked in place.
    Message(Range<usize>),
    /// The last fragment of a message: the whole message is
    /// [`Decoder::assembled`].
    Assembled,
    /// A fragment of a message not yet complete (held by the decoder).
    Partial,
    /// A ping, whose payload (these bytes of the buffer) the pong returns.
    Ping(Range<usize>),
    /// A pong (ignored).
    Pong,
    /// The peer closes the connection.
    Close,
}

/// What [`Decoder::decode_lazily`] found: the frame, the bytes it took, and
/// the mask still on a [`Frame::Message`]'s bytes.
pub type Lazy = (Frame, usize, Option<[u8; 4]>);

/// Decodes frames from a byte stream, one frame per call.
#[derive(Debug)]
pub struct Decoder {
    /// Whether frames must be masked: a server decodes a client's.
    masked: bool,
    /// Whether a message was begun in fragments and not finished.
    in_message: bool,
    /// The fragments of that message so far (at most [`MAX_MESSAGE`] bytes).
    fragments: Vec<u8>,
    /// The last message assembled from fragments.
    assembled: Vec<u8>,
}

impl Decoder {
    /// A decoder of a client's frames (`masked`, on a server) or a server's.
    pub fn new(masked: bool) -> Self {
        Self {
            masked,
            in_message: false,
            fragments: Vec::new(),
            assembled: Vec::new(),
        }
    }

    /// The message the last [`Frame::Assembled`] completed.
    pub fn assembled(&self) -> &[u8] {
        &self.assembled
    }

    /// Decodes the frame at the start of `buf`: `Ok(None)` if `buf` does not
    /// hold all of it yet, else the frame and how many bytes of `buf` it
    /// took. A masked payload is unmasked in place.
    pub fn decode(&mut self, buf: &mut [u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        Ok(self.decode_lazily(buf)?.map(|(frame, used, mask)| {
            if let (Frame::Message(range), Some(key)) = (&frame, mask) {
                apply_mask(&mut buf[range.clone()], key);
            }
            (frame, used)
        }))
    }

    /// [`decode`](Self::decode), but a whole message's bytes
    /// ([`Frame::Message`]) are left masked, with the mask returned: the
    /// caller unmasks them as it copies them (one pass over the bytes, not
    /// two). Other frames are unmasked in place, and their mask is `None`.
    pub fn decode_lazily(&mut self, buf: &mut [u8]) -> Result<Option<Lazy>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if (b1 & 0x80 != 0) != self.masked {
            return Err(FrameError::Mask);
        }
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut bytes = [0; 8];
                bytes.copy_from_slice(&buf[2..10]);
                (u64::from_be_bytes(bytes), 10)
            }
            n => (u64::from(n), 2),
        };
        let control = opcode & 0x8 != 0;
        match opcode {
            OP_CONTINUATION | OP_BINARY => {}
            OP_TEXT => return Err(FrameError::Text),
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > MAX_CONTROL as u64 {
                    return Err(FrameError::Control);
                }
            }
            other => return Err(FrameError::Opcode(other)),
        }
        if !control {
            let held = self.fragments.len() as u64;
            if len.saturating_add(held) > MAX_MESSAGE as u64 {
                return Err(FrameError::TooLarge(len.saturating_add(held)));
            }
            match (opcode, self.in_message) {
                (OP_CONTINUATION, false) | (OP_BINARY, true) => {
                    return Err(FrameError::Fragment);
                }
                _ => {}
            }
        }
        let mask = if self.masked {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        // At most MAX_MESSAGE: checked above for data, 125 for control.
        let len = len as usize;
        let end = at + len;
        if buf.len() < end {
            return Ok(None);
        }
        let whole_message = opcode == OP_BINARY && fin;
        if let (Some(key), false) = (mask, whole_message) {
            apply_mask(&mut buf[at..end], key);
        }
        let payload = at..end;
        let frame = match opcode {
            OP_CLOSE => Frame::Close,
            OP_PING => Frame::Ping(payload),
            OP_PONG => Frame::Pong,
            OP_BINARY if fin => Frame::Message(payload),
            _ => {
                self.in_message = true;
                self.fragments.extend_from_slice(&buf[payload]);
                if fin {
                    self.in_message = false;
                    std::mem::swap(&mut self.assembled, &mut self.fragments);
                    self.fragments.clear();
                    Frame::Assembled
                } else {
                    Frame::Partial
                }
            }
        };
        Ok(Some((frame, end, mask.filter(|_| whole_message))))
    }
}

/// XORs `data` with the repeating 4-byte `key`, 8 bytes at a time.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Copies `data` XORed with the repeating 4-byte `key` into `out` (as long
/// as `data`).
pub fn copy_unmasked(out: &mut [u8], data: &[u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut outs = out.chunks_exact_mut(8);
    let mut ins = data.chunks_exact(8);
    for (o, i) in (&mut outs).zip(&mut ins) {
        let mut word = [0; 8];
        word.copy_from_slice(i);
        o.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (k, (o, i)) in outs
        .into_remainder()
        .iter_mut()
        .zip(ins.remainder())
        .enumerate()
    {
        *o = i ^ key[k % 4];
    }
}

/// Appends a frame of `opcode` carrying `payload` to `out`, masked with
/// `mask` (a client's frame) or not (a server's).
fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let len = payload.len();
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Appends one binary message holding `payload` (a datagram) to `out`.
pub fn encode_message(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>) {
    encode(out, OP_BINARY, payload, mask);
}

/// Appends a pong answering a ping's `payload` (at most 125 bytes).
pub fn encode_pong(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>) {
    encode(
        out,
        OP_PONG,
        &payload[..payload.len().min(MAX_CONTROL)],
        mask,
    );
}

/// Appends a close frame (status 1000, normal closure).
pub fn encode_close(out: &mut Vec<u8>, mask: Option<[u8; 4]>) {
    encode(out, OP_CLOSE, &1000u16.to_be_bytes(), mask);
}

/// The masks of a client's frames: xorshift64* seeded from the operating
/// system. RFC 6455 asks for unpredictable masks so that a script cannot
/// choose the bytes an intermediary sees; Ferry's bytes are sealed or
/// checksummed datagrams no script chooses, so a fast generator seeded once
/// from the OS's secure source is enough.
#[derive(Debug)]
pub struct Masks(u64);

impl Masks {
    /// A generator seeded from the operating system.
    pub fn new() -> Self {
        let mut seed = [0; 8];
        let _ = getrandom::fill(&mut seed);
        Self(u64::from_ne_bytes(seed) | 1)
    }

    /// The next mask.
    pub fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let out = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let bytes = out.to_ne_bytes();
        [bytes[4], bytes[5], bytes[6], bytes[7]]
    }
}

impl Default for Masks {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
