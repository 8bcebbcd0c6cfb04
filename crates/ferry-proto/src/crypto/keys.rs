//! A session's packet keys: AES-256-GCM or ChaCha20-Poly1305 through `ring`,
//! sealed and opened in place, the packet number as nonce and the header as
//! associated data; and the key updates that move each direction to the next
//! generation of keys (see [`super::update`]).

use std::fmt;
use std::mem::ManuallyDrop;

use bytes::BytesMut;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::error::DecodeError;

use super::update::{RecvGeneration, Secret, next_secret, packet_key};
use super::{Cipher, TAG_LEN};

/// The nonce of packet `number`: 4 zero bytes, then `number` as 8 big-endian
/// bytes. Distinct numbers give distinct nonces.
pub fn nonce(number: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&number.to_be_bytes());
    nonce
}

/// A session's packet keys, from [`Handshake::into_keys`](super::Handshake::into_keys): one
/// to seal the packets this side sends, one to open those it receives, both
/// for the [`Cipher`] the handshake agreed on; with the secrets that derive
/// the next generation of each (see [key updates](super::update)).
///
/// A packet sealed with one side's keys opens only with the other side's:
/// never with the sender's own, nor with another session's. The keys and
/// secrets are wiped from memory when dropped or replaced by the next
/// generation's, and [`Debug`] does not show them.
///
/// The ciphers are `ring`'s AES-256-GCM (with AES-NI and carry-less
/// multiplication where the CPU has them) and ChaCha20-Poly1305 (RFC 8439,
/// the same construction as Noise's `ChaChaPoly`): several times faster per
/// packet than portable implementations, which matters since every byte of an
/// encrypted session goes through one of them once on each side.
#[derive(Clone)]
pub struct PacketKeys(Box<Keys>);

/// The keys, boxed: a `ring` key holds its whole key schedule inline.
#[derive(Clone)]
struct Keys {
    cipher: Cipher,
    /// Seals this side's packets: generation `send_generation`.
    send: AeadKey,
    /// The secret of `send`'s generation, from which the next one derives.
    send_secret: Secret,
    send_generation: u64,
    /// Opens the peer's packets of generation `recv_generation`.
    recv: AeadKey,
    /// Opens the peer's packets of the next generation, derived ahead so
    /// that the first packet after the peer's update opens at once (and in
    /// the time any other packet takes).
    recv_next: AeadKey,
    /// The secret of `recv_next`'s generation.
    recv_next_secret: Secret,
    recv_generation: u64,
    /// Opens the peer's late packets of the generation before, until the
    /// session discards it.
    recv_previous: Option<AeadKey>,
    /// The number of the packet that moved receiving to `recv_generation`:
    /// every packet of the generation before has a smaller number, every
    /// packet of the next one a larger number.
    recv_first: u64,
}

/// One `ring` key, wiped from memory when dropped.
struct AeadKey(ManuallyDrop<LessSafeKey>);

impl AeadKey {
    fn new(cipher: Cipher, bytes: &[u8; 32]) -> Self {
        Self(ManuallyDrop::new(LessSafeKey::new(
            UnboundKey::new(cipher.algorithm(), bytes).expect("both ciphers take a 32-byte key"),
        )))
    }
}

impl Clone for AeadKey {
    fn clone(&self) -> Self {
        Self(ManuallyDrop::new(LessSafeKey::clone(&self.0)))
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        let bytes = std::ptr::from_mut::<ManuallyDrop<LessSafeKey>>(&mut self.0).cast::<u8>();
        for i in 0..size_of::<LessSafeKey>() {
            // SAFETY: `bytes + i` lies within `self.0`, which is borrowed
            // mutably here and never read again: `ManuallyDrop` keeps it
            // from being dropped (a `LessSafeKey` owns no heap memory and
            // has no `Drop` of its own; its key schedule, AES round keys
            // and GHASH table or ChaCha20 key, is stored inline),
            // so the zeroed bytes are never used as a `LessSafeKey`. The
            // volatile write keeps the compiler from eliding the wipe.
            unsafe { bytes.add(i).write_volatile(0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl PacketKeys {
    /// Generation 0 from the handshake's two 32-byte outputs: each is both
    /// its direction's first key (as before key updates existed, so a peer
    /// that never updates reads the same packets) and its first secret.
    pub(super) fn new(cipher: Cipher, send: &[u8; 32], recv: &[u8; 32]) -> Self {
        let recv_next_secret = next_secret(&Secret(*recv));
        Self(Box::new(Keys {
            cipher,
            send: AeadKey::new(cipher, send),
            send_secret: Secret(*send),
            send_generation: 0,
            recv: AeadKey::new(cipher, recv),
            recv_next: AeadKey::new(cipher, &packet_key(&recv_next_secret).0),
            recv_next_secret,
            recv_generation: 0,
            recv_previous: None,
            recv_first: 0,
        }))
    }

    /// The cipher that seals and opens this session's packets.
    pub fn cipher(&self) -> Cipher {
        self.0.cipher
    }

    /// The generation of the keys that seal this side's packets: 0 from the
    /// handshake, one more after each [`update_send`](Self::update_send).
    pub fn send_generation(&self) -> u64 {
        self.0.send_generation
    }

    /// The key phase this side's packets carry: the low bit of
    /// [`send_generation`](Self::send_generation).
    pub fn send_phase(&self) -> bool {
        self.0.send_generation & 1 == 1
    }

    /// The generation of the keys that open the peer's packets now: 0 from
    /// the handshake, one more after each
    /// [`update_recv`](Self::update_recv).
    pub fn recv_generation(&self) -> u64 {
        self.0.recv_generation
    }

    /// Moves sending to the next generation: derives its secret and key from
    /// the current secret, then wipes the current secret and key. Packets
    /// sealed from now on carry the other key phase; their numbers go on
    /// growing, so no nonce repeats under any key.
    pub fn update_send(&mut self) {
        let k = &mut *self.0;
        let secret = next_secret(&k.send_secret);
        k.send = AeadKey::new(k.cipher, &packet_key(&secret).0);
        k.send_secret = secret;
        k.send_generation += 1;
    }

    /// Which receive keys a packet `number` with key phase `phase` needs:
    /// the current ones if the phase is the current generation's; otherwise
    /// the previous generation's if `number` is below the packet that moved
    /// receiving to the current generation (`None` once they are
    /// [discarded](Self::discard_previous)), else the next generation's.
    pub fn recv_generation_for(&self, number: u64, phase: bool) -> Option<RecvGeneration> {
        let k = &*self.0;
        if phase == (k.recv_generation & 1 == 1) {
            Some(RecvGeneration::Current)
        } else if k.recv_generation > 0 && number < k.recv_first {
            k.recv_previous.as_ref().map(|_| RecvGeneration::Previous)
        } else {
            Some(RecvGeneration::Next)
        }
    }

    /// Moves receiving to the next generation, once packet `number` opened
    /// under it ([`recv_generation_for`](Self::recv_generation_for) said
    /// [`RecvGeneration::Next`]): the current keys become the previous ones
    /// (the ones before are wiped), the next ones current, and the
    /// generation after is derived ahead.
    pub fn update_recv(&mut self, number: u64) {
        let k = &mut *self.0;
        let secret = next_secret(&k.recv_next_secret);
        let next = AeadKey::new(k.cipher, &packet_key(&secret).0);
        let current = std::mem::replace(&mut k.recv_next, next);
        k.recv_previous = Some(std::mem::replace(&mut k.recv, current));
        k.recv_next_secret = secret;
        k.recv_generation += 1;
        k.recv_first = number;
    }

    /// Wipes the previous generation's receive keys: the peer's packets
    /// sealed under them no longer open.
    pub fn discard_previous(&mut self) {
        self.0.recv_previous = None;
    }

    /// Whether the previous generation's receive keys are still kept.
    pub fn has_previous(&self) -> bool {
        self.0.recv_previous.is_some()
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
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(number)),
                Aad::from(&*header),
                body,
            )
            .expect("a packet is far below both ciphers' 64 GiB limit");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens a packet received with number `number` in place, with the
    /// current receive keys: checks the tag over header and body, decrypts
    /// the body and removes the tag.
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
        Self::open_with(&self.0.recv, number, header_len, packet)
    }

    /// As [`open`](Self::open), with the keys a packet of key phase `phase`
    /// needs ([`recv_generation_for`](Self::recv_generation_for)). A packet
    /// of a generation whose keys are gone fails with
    /// [`DecodeError::Integrity`], `packet` unchanged.
    pub fn open_in_phase(
        &self,
        number: u64,
        phase: bool,
        header_len: usize,
        packet: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        let key = match self.recv_generation_for(number, phase) {
            Some(RecvGeneration::Current) => &self.0.recv,
            Some(RecvGeneration::Next) => &self.0.recv_next,
            Some(RecvGeneration::Previous) => match &self.0.recv_previous {
                Some(key) => key,
                None => return Err(DecodeError::Integrity),
            },
            None => return Err(DecodeError::Integrity),
        };
        Self::open_with(key, number, header_len, packet)
    }

    fn open_with(
        key: &AeadKey,
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
        key.0
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
