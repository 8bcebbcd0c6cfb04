// Helpers every property of `fuzz/common/props/` shares: the record format the
// stateful targets read their input in, the addresses and flags it names, and
// packets encoded, sealed and opened as the endpoint does. Included by
// `fuzz/common/props.rs` as the module `props::shared`.
//
// A record is one datagram fed after some time has passed:
//
//     step: u8 | flags: u8 | len: u16 (big-endian) | datagram: [u8; len]
//
//   - `step` advances the clock before the datagram: bits 0–6 are an amount, in
//     seconds if bit 7 ([`STEP_SECONDS`]) is set, else in milliseconds
//     ([`step_duration`]).
//   - `flags` bit 0 ([`SEAL`]): the driver appends a valid checksum trailer, so
//     the fuzzer can reach the session logic without computing CRC-32s; bit 1
//     ([`FROM_OTHER`]): the datagram comes from [`OTHER`] instead of [`PEER`].
//     Each property says which flags it reads, and may add its own.
//   - A record cut short by the end of the input keeps what remains
//     ([`next_record`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_proto::SessionId;
use ferry_proto::wire::packet::{Handshake, Header, Packet, PacketKind};
use ferry_proto::wire::protection::Protection;

/// The session the opening Connect of every endpoint run names.
pub const SESSION: SessionId = SessionId(*b"ferryfz1");
/// Where the opening Connect and records without [`FROM_OTHER`] come from.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4433);
/// Where records with [`FROM_OTHER`] come from.
pub const OTHER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 4433);
/// Record flag: append a valid checksum trailer to the datagram.
pub const SEAL: u8 = 0b01;
/// Record flag: the datagram comes from [`OTHER`].
pub const FROM_OTHER: u8 = 0b10;
/// Record step bit: the amount is in seconds rather than milliseconds.
pub const STEP_SECONDS: u8 = 0x80;
/// How long the clock runs on after the last record.
pub const QUIET: Duration = Duration::from_secs(600);

/// The handshake parameters of the opening Connect.
pub const HANDSHAKE: Handshake = Handshake {
    max_udp_payload: 1200,
    max_message_size: 1 << 24,
    initial_max_data: 1 << 25,
    max_ack_delay_micros: 10_000,
    max_streams: 100,
    initial_max_stream_data: 1 << 24,
    listener_id: None,
    auth: Bytes::new(),
    token: Bytes::new(),
    features: 0,
    resume: Bytes::new(),
    early: Bytes::new(),
};

/// The key of the fuzzed keyed listener and of the handshake's keyed sides
/// (the fuzzer is not told it).
pub const FUZZ_KEY: [u8; 32] = [0x5a; 32];

/// Encodes one record (the format described at the top of this file).
pub fn record(step: u8, flags: u8, datagram: &[u8]) -> Vec<u8> {
    let len = u16::try_from(datagram.len()).expect("a record holds at most 65535 bytes");
    let mut out = vec![step, flags];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(datagram);
    out
}

/// Appends the checksum trailer to an encoded packet, as the endpoint's sender
/// does. A packet whose header does not decode gets a trailer all the same.
pub fn seal(mut packet: Vec<u8>) -> Vec<u8> {
    let (number, header_len) = Header::decode(&packet)
        .map(|(h, len)| (h.number, len))
        .unwrap_or((0, 0));
    Protection::Checksum.seal(number, header_len, &mut packet);
    packet
}

/// Encodes and seals `packet` as a datagram of `session` with packet `number`.
pub fn datagram(packet: &Packet, session: SessionId, number: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    packet.encode(session, number, &mut buf);
    if packet.kind() == PacketKind::Connect {
        // Connects are padded to the MTU, trailer included.
        buf.resize(buf.len().max(HANDSHAKE.max_udp_payload as usize - 4), 0);
    }
    let header_len = Header {
        kind: packet.kind(),
        session,
        number,
        with_ack: false,
        key_phase: false,
    }
    .encoded_len();
    Protection::Checksum.seal(number, header_len, &mut buf);
    buf
}

/// Checks the trailer of a received datagram and decodes it, as the endpoint
/// does (an ack the packet carries is dropped).
pub fn open(datagram: &[u8]) -> Option<(Header, Packet)> {
    let (header, header_len) = Header::decode(datagram).ok()?;
    let mut buf = BytesMut::from(datagram);
    Protection::Checksum
        .open(header.number, header_len, &mut buf)
        .ok()?;
    Packet::decode(buf.freeze())
        .ok()
        .map(|(header, _, packet)| (header, packet))
}

/// How far a record's `step` advances the clock: bits 0–6 an amount, in
/// seconds if bit 7 ([`STEP_SECONDS`]) is set, else in milliseconds.
pub fn step_duration(step: u8) -> Duration {
    let amount = u64::from(step & !STEP_SECONDS);
    if step & STEP_SECONDS != 0 {
        Duration::from_secs(amount)
    } else {
        Duration::from_millis(amount)
    }
}

/// Splits the next record off `input`: (step, flags, datagram).
pub fn next_record<'a>(input: &mut &'a [u8]) -> Option<(u8, u8, &'a [u8])> {
    let data = *input;
    let step = *data.first()?;
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let len = usize::from(u16::from_be_bytes([byte(2), byte(3)]));
    let rest = data.get(4..).unwrap_or_default();
    let (datagram, tail) = rest.split_at(len.min(rest.len()));
    *input = tail;
    Some((step, byte(1), datagram))
}
