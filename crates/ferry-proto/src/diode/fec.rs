//! RaptorQ (RFC 6330) over one block at a time, through the `raptorq` crate.
//!
//! A block of `block_len` bytes is padded with zeros to whole symbols and
//! coded as one source block: `K = ceil(block_len / symbol_size)` source
//! symbols, sent as they are, plus any number of repair symbols. Any `K` (or
//! a symbol or two more) of them rebuild the block. Every block is coded on its
//! own, so blocks can be encoded and decoded on as many threads as there are.

use raptorq::{
    EncodingPacket, ObjectTransmissionInformation, PayloadId, SourceBlockDecoder,
    SourceBlockEncoder,
};

use crate::diode::config::MAX_SOURCE_SYMBOLS;

/// How one block was coded. Travels in every symbol datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockParams {
    /// The block's length in bytes, before padding.
    pub block_len: u32,
    /// Bytes per symbol.
    pub symbol_size: u16,
}

impl BlockParams {
    /// Source symbols in the block (`K`).
    pub fn source_symbols(&self) -> usize {
        (self.block_len as usize).div_ceil(usize::from(self.symbol_size).max(1))
    }

    /// Whether RaptorQ can code a block with these parameters.
    pub fn is_codable(&self) -> bool {
        self.block_len > 0 && self.symbol_size > 0 && self.source_symbols() <= MAX_SOURCE_SYMBOLS
    }

    fn oti(&self) -> ObjectTransmissionInformation {
        let padded = (self.source_symbols() * usize::from(self.symbol_size)) as u64;
        ObjectTransmissionInformation::new(padded, self.symbol_size, 1, 1, 1)
    }
}

/// Encodes one block: calls `emit(esi, symbol)` for every source symbol in
/// order, then for `repair` repair symbols (ESIs from `K`).
///
/// `data.len()` must equal `params.block_len` and `params` must be codable
/// (the sender checks both).
pub fn encode_block(
    params: BlockParams,
    data: &[u8],
    repair: usize,
    mut emit: impl FnMut(u32, &[u8]),
) {
    debug_assert_eq!(data.len(), params.block_len as usize);
    debug_assert!(params.is_codable());
    let t = usize::from(params.symbol_size);
    let k = params.source_symbols();
    // Source symbols go out as they are (the code is systematic).
    for (esi, chunk) in data.chunks(t).enumerate() {
        if chunk.len() == t {
            emit(esi as u32, chunk);
        } else {
            let mut last = vec![0; t];
            last[..chunk.len()].copy_from_slice(chunk);
            emit(esi as u32, &last);
        }
    }
    if repair == 0 {
        return;
    }
    let mut padded;
    let source: &[u8] = if data.len() == k * t {
        data
    } else {
        padded = Vec::with_capacity(k * t);
        padded.extend_from_slice(data);
        padded.resize(k * t, 0);
        &padded
    };
    let encoder = SourceBlockEncoder::new(0, &params.oti(), source);
    for packet in encoder.repair_packets(0, repair as u32) {
        emit(packet.payload_id().encoding_symbol_id(), packet.data());
    }
}

/// Symbols of one block gathered so far, ready to be decoded once there are
/// `K` of them.
#[derive(Debug)]
pub struct BlockSymbols {
    params: BlockParams,
    /// Source symbols by ESI (all `K` present: no decoding needed).
    source: Vec<Option<Vec<u8>>>,
    source_count: usize,
    repair: Vec<(u32, Vec<u8>)>,
    /// Every ESI ever added (source and accepted repair range), kept across
    /// [`take`](Self::take) so that duplicates stay duplicates.
    seen: Vec<bool>,
}

/// What adding a symbol did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new symbol.
    New,
    /// Seen before: dropped.
    Duplicate,
    /// ESI beyond the repair symbols this block accepts: dropped.
    OutOfRange,
}

impl BlockSymbols {
    /// An empty collection for a block coded with `params` (codable), which
    /// accepts at most `max_repair` repair symbols.
    pub fn new(params: BlockParams, max_repair: usize) -> Self {
        let k = params.source_symbols();
        Self {
            params,
            source: vec![None; k],
            source_count: 0,
            repair: Vec::new(),
            seen: vec![false; k + max_repair],
        }
    }

    /// The block's coding parameters.
    pub fn params(&self) -> BlockParams {
        self.params
    }

    /// Symbols held.
    pub fn len(&self) -> usize {
        self.source_count + self.repair.len()
    }

    /// Whether no symbol is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every source symbol is here (the block needs no decoding).
    pub fn has_all_source(&self) -> bool {
        self.source_count == self.source.len()
    }

    /// Whether enough symbols arrived to attempt a decode.
    pub fn is_decodable(&self) -> bool {
        self.len() >= self.source.len()
    }

    /// Adds one symbol (`symbol.len()` must be the block's symbol size).
    pub fn add(&mut self, esi: u32, symbol: &[u8]) -> Added {
        let esi = esi as usize;
        match self.seen.get_mut(esi) {
            None => return Added::OutOfRange,
            Some(true) => return Added::Duplicate,
            Some(seen) => *seen = true,
        }
        if esi < self.source.len() {
            self.source[esi] = Some(symbol.to_vec());
            self.source_count += 1;
        } else {
            self.repair.push((esi as u32, symbol.to_vec()));
        }
        Added::New
    }

    /// Takes the symbols gathered since the last [`take`](Self::take) into a
    /// job that can run on any thread; new symbols keep arriving here.
    pub fn take(&mut self) -> BlockSymbols {
        let fresh = BlockSymbols {
            params: self.params,
            source: vec![None; self.source.len()],
            source_count: 0,
            repair: Vec::new(),
            // Remember what was seen, so duplicates stay duplicates.
            seen: self.seen.clone(),
        };
        std::mem::replace(self, fresh)
    }

    /// Returns symbols of a failed attempt (`other`) to this collection.
    pub fn merge(&mut self, other: BlockSymbols) {
        for (esi, s) in other.source.into_iter().enumerate() {
            if let Some(s) = s
                && self.source[esi].is_none()
            {
                self.source[esi] = Some(s);
                self.source_count += 1;
            }
        }
        // Every symbol is added once (`seen` spans both collections), so the
        // returned repair symbols are new here.
        self.repair.extend(other.repair);
        for (seen, other) in self.seen.iter_mut().zip(other.seen) {
            *seen |= other;
        }
    }

    /// Rebuilds the block, `block_len` bytes, if the symbols suffice. On
    /// failure the symbols come back, to be merged with later ones.
    pub fn decode(self) -> Result<Vec<u8>, BlockSymbols> {
        let len = self.params.block_len as usize;
        let t = usize::from(self.params.symbol_size);
        if self.source_count == self.source.len() {
            let mut out = Vec::with_capacity(self.source.len() * t);
            for s in self.source.iter().flatten() {
                out.extend_from_slice(s);
            }
            out.truncate(len);
            return Ok(out);
        }
        if !self.is_decodable() {
            return Err(self);
        }
        let oti = self.params.oti();
        let padded = (self.source.len() * t) as u64;
        let mut decoder = SourceBlockDecoder::new(0, &oti, padded);
        let packets = self
            .source
            .iter()
            .enumerate()
            .filter_map(|(esi, s)| {
                s.as_ref()
                    .map(|s| EncodingPacket::new(PayloadId::new(0, esi as u32), s.clone()))
            })
            .chain(
                self.repair
                    .iter()
                    .map(|(esi, s)| EncodingPacket::new(PayloadId::new(0, *esi), s.clone())),
            );
        match decoder.decode(packets) {
            Some(mut out) => {
                out.truncate(len);
                Ok(out)
            }
            None => Err(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(params: BlockParams, data: &[u8], repair: usize) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        encode_block(params, data, repair, |esi, s| out.push((esi, s.to_vec())));
        out
    }

    #[test]
    fn any_k_plus_two_symbols_rebuild_the_block() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let params = BlockParams {
            block_len: data.len() as u32,
            symbol_size: 128,
        };
        let k = params.source_symbols();
        let symbols = encoded(params, &data, 20);
        assert_eq!(symbols.len(), k + 20);
        // Drop 18 source symbols, spread out; keep K + 2.
        let mut block = BlockSymbols::new(params, 40);
        for (i, (esi, s)) in symbols.iter().enumerate() {
            if i % 4 == 1 && i < 72 {
                continue;
            }
            assert_eq!(block.add(*esi, s), Added::New);
        }
        assert_eq!(block.len(), k + 2);
        assert_eq!(block.decode().unwrap(), data);
    }

    #[test]
    fn all_source_symbols_need_no_decoding() {
        let data = vec![5u8; 1000];
        let params = BlockParams {
            block_len: 1000,
            symbol_size: 64,
        };
        let mut block = BlockSymbols::new(params, 8);
        for (esi, s) in encoded(params, &data, 0) {
            block.add(esi, &s);
        }
        assert_eq!(block.decode().unwrap(), data);
    }

    #[test]
    fn too_few_symbols_fail_and_come_back() {
        let data = vec![1u8; 4096];
        let params = BlockParams {
            block_len: 4096,
            symbol_size: 256,
        };
        let symbols = encoded(params, &data, 4);
        let mut block = BlockSymbols::new(params, 4);
        for (esi, s) in &symbols[..10] {
            block.add(*esi, s);
        }
        let mut block = block.decode().unwrap_err();
        assert_eq!(block.len(), 10);
        let mut later = block.take();
        for (esi, s) in &symbols[10..] {
            block.add(*esi, s);
        }
        later.merge(block);
        assert_eq!(later.decode().unwrap(), data);
    }

    #[test]
    fn duplicates_and_out_of_range_are_dropped() {
        let params = BlockParams {
            block_len: 100,
            symbol_size: 50,
        };
        let mut block = BlockSymbols::new(params, 1);
        assert_eq!(block.add(0, &[0; 50]), Added::New);
        assert_eq!(block.add(0, &[0; 50]), Added::Duplicate);
        assert_eq!(block.add(2, &[0; 50]), Added::New);
        assert_eq!(block.add(2, &[0; 50]), Added::Duplicate);
        assert_eq!(block.add(3, &[0; 50]), Added::OutOfRange);
        assert_eq!(block.add(u32::MAX, &[0; 50]), Added::OutOfRange);
        // Taken into a job, the symbols are still known.
        let job = block.take();
        assert_eq!(job.len(), 2);
        assert_eq!(block.add(0, &[0; 50]), Added::Duplicate);
        assert_eq!(block.add(1, &[0; 50]), Added::New);
        assert!(block.is_decodable() || block.len() == 1);
    }
}
