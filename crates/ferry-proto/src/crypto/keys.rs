//! A session's packet keys: AES-256-GCM or ChaCha20-Poly1305 through `ring`,
//! sealed and opened in place, the packet number as nonce and the header as
//! associated data.

use std::fmt;
use std::mem::ManuallyDrop;

use bytes::BytesMut;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::error::DecodeError;

use super::{Cipher, TAG_LEN};

/// The nonce of packet `number`: 4 zero bytes, then `number` as 8 big-endian
/// bytes. Distinct numbers give distinct nonces.
pub fn nonce(number: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&number.to_be_bytes());
    nonce
}

/// A session's two packet keys, from [`Handshake::into_keys`](super::Handshake::into_keys): one
/// to seal the packets this side sends, one to open those it receives, both
/// for the [`Cipher`] the handshake agreed on.
///
/// A packet sealed with one side's keys opens only with the other side's:
/// never with the sender's own, nor with another session's. The keys are
/// wiped from memory when dropped, and [`Debug`] does not show them.
///
/// The ciphers are `ring`'s AES-256-GCM (with AES-NI and carry-less
/// multiplication where the CPU has them) and ChaCha20-Poly1305 (RFC 8439,
/// the same construction as Noise's `ChaChaPoly`): several times faster per
/// packet than portable implementations, which matters since every byte of an
/// encrypted session goes through one of them once on each side.
#[derive(Clone)]
pub struct PacketKeys(Box<Keys>);

/// The two keys, boxed: a `ring` key holds its whole key schedule inline.
struct Keys {
    cipher: Cipher,
    send: ManuallyDrop<LessSafeKey>,
    recv: ManuallyDrop<LessSafeKey>,
}

impl Clone for Keys {
    fn clone(&self) -> Self {
        Self {
            cipher: self.cipher,
            send: ManuallyDrop::new(LessSafeKey::clone(&self.send)),
            recv: ManuallyDrop::new(LessSafeKey::clone(&self.recv)),
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for key in [&mut self.send, &mut self.recv] {
            let bytes = std::ptr::from_mut::<ManuallyDrop<LessSafeKey>>(key).cast::<u8>();
            for i in 0..size_of::<LessSafeKey>() {
                // SAFETY: `bytes + i` lies within `key`, which is borrowed
                // mutably here and never read again: `ManuallyDrop` keeps it
                // from being dropped (a `LessSafeKey` owns no heap memory and
                // has no `Drop` of its own; its key schedule, AES round keys
                // and GHASH table or ChaCha20 key, is stored inline),
                // so the zeroed bytes are never used as a `LessSafeKey`. The
                // volatile write keeps the compiler from eliding the wipe.
                unsafe { bytes.add(i).write_volatile(0) };
            }
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl PacketKeys {
    pub(super) fn new(cipher: Cipher, send: &[u8; 32], recv: &[u8; 32]) -> Self {
        let key = |bytes: &[u8; 32]| {
            ManuallyDrop::new(LessSafeKey::new(
                UnboundKey::new(cipher.algorithm(), bytes)
                    .expect("both ciphers take a 32-byte key"),
            ))
        };
        Self(Box::new(Keys {
            cipher,
            send: key(send),
            recv: key(recv),
        }))
    }

    /// The cipher that seals and opens this session's packets.
    pub fn cipher(&self) -> Cipher {
        self.0.cipher
    }

    /// Seals `packet` (header followed by body) in place: encrypts the body
    /// `packet[header_len..]`, authenticates it together with the header
    /// `packet[..header_len]`, and appends the [`TAG_LEN`]-byte tag. The nonce
    /// is [`nonce`]`(number)`. Allocates nothing beyond the tag's room in
    /// `packet`.
    ///
    /// Never seal two different packets with the same `number`: reusing a
    /// nonce breaks both secrecy and authenticity.
    ///
    /// # Panics
    ///
    /// If `header_len > packet.len()` (a caller bug).
    pub fn seal(&self, number: u64, header_len: usize, packet: &mut Vec<u8>) {
        self.seal_at(number, 0, header_len, packet);
    }

    /// Seals the packet that starts at byte `start` of `buf` and runs to its
    /// end, in place, as [`seal`](Self::seal) seals a packet alone: the header
    /// `buf[start..start + header_len]` is the associated data, the body after
    /// it is encrypted, and the tag is appended to `buf`. The bytes before
    /// `start` (earlier packets of a batch) are left as they are. The result
    /// is byte for byte what sealing `buf[start..]` alone gives.
    ///
    /// The same rule holds: never seal two different packets with the same
    /// `number`.
    ///
    /// # Panics
    ///
    /// If `start + header_len > buf.len()` (a caller bug).
    pub fn seal_at(&self, number: u64, start: usize, header_len: usize, buf: &mut Vec<u8>) {
        let (header, body) = buf[start..].split_at_mut(header_len);
        let tag = self
            .0
            .send
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(number)),
                Aad::from(&*header),
                body,
            )
            .expect("a packet is far below both ciphers' 64 GiB limit");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens a packet received with number `number` in place: checks the tag
    /// over header and body, decrypts the body and removes the tag.
    ///
    /// Errors: [`DecodeError::Truncated`] if the packet cannot hold
    /// `header_len` bytes and a tag, leaving `packet` unchanged;
    /// [`DecodeError::Integrity`] if the tag does not match (a forged or
    /// altered packet, the wrong number, or another session's packet), with
    /// the body overwritten by zeros so that no unauthenticated plaintext
    /// escapes (header and length stay as they were). A replayed packet opens
    /// again: the session rejects it by its packet number.
    pub fn open(
        &self,
        number: u64,
        header_len: usize,
        packet: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        let Some(body_end) = packet.len().checked_sub(TAG_LEN) else {
            return Err(DecodeError::Truncated);
        };
        if body_end < header_len {
            return Err(DecodeError::Truncated);
        }
        let (content, tag) = packet.split_at_mut(body_end);
        let tag = Tag::try_from(&*tag).map_err(|_| DecodeError::Truncated)?;
        let (header, body) = content.split_at_mut(header_len);
        self.0
            .recv
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(number)),
                Aad::from(&*header),
                tag,
                body,
                0..,
            )
            .map_err(|_| DecodeError::Integrity)?;
        packet.truncate(body_end);
        Ok(())
    }
}

impl fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketKeys(<redacted>)")
    }
}
