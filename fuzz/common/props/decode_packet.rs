// The packet codec on arbitrary bytes (fuzz target `decode_packet`).
//
// `check_decode(data)`: `data` is one unprotected packet (header and body, no
// checksum trailer). If it decodes, encoding the result and decoding again gives
// the same header (but for the key phase bit, which only sealing sets) and
// packet; the re-encoding is canonical and no longer than the
// input.

use bytes::Bytes;
use ferry_proto::wire::packet::{Header, Packet};

/// Decodes `data` as an unprotected packet and, if it decodes, checks that
/// decode → encode → decode is stable and the encoding canonical.
pub fn check_decode(data: &[u8]) {
    let Ok((header, ack, packet)) = Packet::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(header.kind, packet.kind(), "header kind and body disagree");
    assert_eq!(header.with_ack, ack.is_some(), "the ack flag and the ack disagree");
    let mut out = Vec::new();
    packet.encode_with_ack(header.session, header.number, ack.as_ref(), &mut out);
    let (header2, ack2, packet2) = Packet::decode(Bytes::from(out.clone()))
        .unwrap_or_else(|e| panic!("re-encoded {packet:?} does not decode: {e}"));
    // The key phase bit is the protection's to set when sealing (the codec
    // never writes it): everything else of the header survives.
    let header = Header {
        key_phase: false,
        ..header
    };
    assert_eq!(header2, header, "header changed across a round trip");
    assert_eq!(ack2, ack, "carried ack changed across a round trip");
    assert_eq!(packet2, packet, "packet changed across a round trip");
    assert_eq!(
        Header::decode(&out).map(|(_, len)| len),
        Ok(header.encoded_len()),
        "Header::len disagrees with the encoding"
    );
    let mut again = Vec::new();
    packet2.encode_with_ack(header2.session, header2.number, ack2.as_ref(), &mut again);
    assert_eq!(again, out, "encoding is not canonical");
    assert!(
        out.len() <= data.len(),
        "re-encoding grew the packet from {} to {} bytes",
        data.len(),
        out.len()
    );
}
