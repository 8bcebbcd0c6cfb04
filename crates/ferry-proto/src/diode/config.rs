//! The diode's settings, shared by sender and receiver.

use std::time::Duration;

use thiserror::Error;

use super::TRAILER_LEN;
use super::wire::SYMBOL_OVERHEAD;

/// IPv6 and UDP headers: what the link MTU loses before the diode's datagram.
pub const IP_UDP_OVERHEAD: usize = 48;
/// Smallest link MTU the diode works with.
pub const MIN_MTU: usize = 576;
/// Largest link MTU (a UDP datagram's limit).
pub const MAX_MTU: usize = 65_535;
/// Largest number of source symbols RaptorQ (RFC 6330) allows in one block.
pub const MAX_SOURCE_SYMBOLS: usize = 56_403;
/// Largest `interleave_depth`: the depth travels in six bits of every symbol
/// datagram.
pub const MAX_INTERLEAVE_DEPTH: usize = 64;

/// Settings of a diode [`Sender`](super::Sender) and
/// [`Receiver`](super::Receiver). The sender's coding parameters travel in
/// every datagram, so the two sides need agree only on what is documented as
/// shared here.
///
/// ```
/// use std::time::Duration;
/// use ferry_proto::diode::DiodeConfig;
///
/// let config = DiodeConfig {
///     repair_percentage: 20,
///     bandwidth: 400_000_000,
///     ..DiodeConfig::default()
/// };
/// config.validate().unwrap();
/// assert_eq!(config.block_expiration_timeout(), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiodeConfig {
    /// `mtu`: the link's MTU in bytes (IP packet size). The symbol size is what
    /// remains after IPv6/UDP headers and the diode header, rounded down to a
    /// multiple of 8. Default 1500. Sender only.
    pub mtu: usize,
    /// `block_size`: bytes of application data per RaptorQ block. Larger blocks
    /// spread repair symbols over more data (better against bursts) but take
    /// longer to decode and lose more when one fails. Default 512 KiB. On the
    /// receiver, the largest block it accepts.
    pub block_size: usize,
    /// `repair_percentage`: repair symbols sent per block, as a percentage of
    /// its source symbols. A block survives the loss of any `repair_percentage`
    /// percent of its datagrams (minus a symbol or two). Default 10. Sender only.
    pub repair_percentage: u32,
    /// `heartbeat`: how often the sender says it is alive; the receiver warns
    /// when nothing arrived for twice this. Shared. Default 1 s.
    pub heartbeat: Duration,
    /// `[receiver] block_expiration_timeout`: an incomplete block that received
    /// nothing for this long is decoded with what it has (and the session lost
    /// if that fails). `None`: the heartbeat.
    pub block_expiration_timeout: Option<Duration>,
    /// `[receiver] session_expiration_timeout`: a session that received nothing
    /// for this long is closed as lost. `None`: five heartbeats.
    pub session_expiration_timeout: Option<Duration>,
    /// `bandwidth`: the sender's pace, in bits per second of UDP payload. With
    /// no return path nothing else can slow it down: set it at or below what
    /// the link and the receiver sustain. Default 1 Gbit/s. Sender only.
    pub bandwidth: u64,
    /// `max_burst`: the most bytes the sender sends back to back before pacing
    /// holds it; keep it below the sending socket's buffer. Default 256 KiB.
    pub max_burst: usize,
    /// `max_blocks_in_flight`: blocks a session may hold between the
    /// application and the wire (sender) or between the wire and the
    /// application (receiver). Bounds memory. In effect at least twice
    /// `interleave_depth` ([`blocks_in_flight`](Self::blocks_in_flight)).
    /// Default 16 (two groups of the default `interleave_depth`).
    pub max_blocks_in_flight: usize,
    /// `interleave_depth`: how many consecutive blocks the sender sends at
    /// once, their datagrams interleaved, so that a burst of `B` lost
    /// datagrams costs each of them about `B / interleave_depth` symbols
    /// rather than one block all `B`. 1 sends one block after the other.
    /// Each datagram carries the depth it was sent with; a receiver accepts
    /// any depth up to half its [`blocks_in_flight`](Self::blocks_in_flight).
    /// Default 8 (docs/guide.md §3.5): with the default 10 % repair a session
    /// survives any burst of up to 304 datagrams, and 2 % loss in bursts of
    /// 5 datagrams on average lost none of 1,000 simulated sessions of
    /// 512 MB, where depth 4 lost one and depth 1 nearly all. It costs
    /// `max_blocks_in_flight` = 16 blocks per session (8 MiB of data) on
    /// each side. At most [`MAX_INTERLEAVE_DEPTH`].
    pub interleave_depth: usize,
    /// `max_sessions`: sessions open at once. Beyond it the sender refuses to
    /// open one and the receiver drops (and counts) the new session's
    /// datagrams. Default 16.
    pub max_sessions: usize,
}

impl Default for DiodeConfig {
    fn default() -> Self {
        Self {
            mtu: 1500,
            block_size: 512 * 1024,
            repair_percentage: 10,
            heartbeat: Duration::from_secs(1),
            block_expiration_timeout: None,
            session_expiration_timeout: None,
            bandwidth: 1_000_000_000,
            max_burst: 256 * 1024,
            max_blocks_in_flight: 16,
            interleave_depth: 8,
            max_sessions: 16,
        }
    }
}

/// A [`DiodeConfig`] value is unusable; the message names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiodeConfigError {
    /// `mtu` outside what UDP allows.
    #[error("`mtu` = {0} is outside {MIN_MTU}..={MAX_MTU}: set the link's MTU (1500 on Ethernet)")]
    Mtu(usize),
    /// `block_size` is zero or needs more source symbols than RaptorQ allows.
    #[error(
        "`block_size` = {block_size} is outside 1..={max} for this mtu: RaptorQ codes at most {MAX_SOURCE_SYMBOLS} symbols per block"
    )]
    BlockSize {
        /// Configured value.
        block_size: usize,
        /// Largest value for the configured mtu.
        max: usize,
    },
    /// `repair_percentage` above 1000.
    #[error("`repair_percentage` = {0} is above 1000: more repair than that only wastes bandwidth")]
    RepairPercentage(u32),
    /// A duration that must not be zero is.
    #[error("`{0}` must be greater than zero")]
    ZeroDuration(&'static str),
    /// `bandwidth` is zero.
    #[error("`bandwidth` must be greater than zero (bits per second)")]
    Bandwidth,
    /// `max_burst` cannot hold one datagram.
    #[error("`max_burst` = {burst} cannot hold one datagram of {datagram} bytes: raise it")]
    Burst {
        /// Configured value.
        burst: usize,
        /// One datagram's size.
        datagram: usize,
    },
    /// A count that must not be zero is.
    #[error("`{0}` must be at least 1")]
    ZeroCount(&'static str),
    /// `interleave_depth` is zero or above [`MAX_INTERLEAVE_DEPTH`].
    #[error(
        "`interleave_depth` = {0} is outside 1..={MAX_INTERLEAVE_DEPTH}: 1 sends blocks one after the other, 8 (the default) spreads a burst over eight blocks"
    )]
    InterleaveDepth(usize),
}

impl DiodeConfig {
    /// The symbol size this configuration codes with.
    pub fn symbol_size(&self) -> usize {
        self.mtu.saturating_sub(IP_UDP_OVERHEAD + SYMBOL_OVERHEAD) & !7
    }

    /// Length of one symbol datagram (UDP payload).
    pub fn datagram_size(&self) -> usize {
        self.symbol_size() + SYMBOL_OVERHEAD
    }

    /// The block expiration timeout in effect.
    pub fn block_expiration_timeout(&self) -> Duration {
        self.block_expiration_timeout.unwrap_or(self.heartbeat)
    }

    /// The session expiration timeout in effect.
    pub fn session_expiration_timeout(&self) -> Duration {
        self.session_expiration_timeout
            .unwrap_or(self.heartbeat.saturating_mul(5))
    }

    /// Blocks a session holds at most, on either side: `max_blocks_in_flight`,
    /// or twice `interleave_depth` if that is more (one group of blocks going
    /// out or being gathered, the next one filling or arriving early). The
    /// receiver's memory is bounded by `max_sessions × blocks_in_flight()`
    /// blocks.
    pub fn blocks_in_flight(&self) -> usize {
        self.max_blocks_in_flight
            .max(self.interleave_depth.saturating_mul(2))
    }

    /// Source symbols of a full block (`block_size` bytes).
    pub fn full_block_symbols(&self) -> usize {
        self.block_size.div_ceil(self.symbol_size().max(1))
    }

    /// Repair symbols for a block of `source` symbols: `repair_percentage`
    /// percent of a full block's, or of its own if it has more (the last
    /// block, with its trailer). A short block (a session's last, or one a
    /// flush sealed) gets as many as a full block, so that it survives the
    /// same burst: a percentage of its few symbols would leave it a margin of
    /// one or two datagrams, and a session ending in a short block would be
    /// lost to a burst of three. That costs at most a full block's repair
    /// symbols (38 datagrams, 54 KB, for the defaults) per short block.
    pub fn repair_symbols(&self, source: usize) -> usize {
        (source.max(self.full_block_symbols()) * self.repair_percentage as usize).div_ceil(100)
    }

    /// Checks every value; the error names the key to fix.
    pub fn validate(&self) -> Result<(), DiodeConfigError> {
        if !(MIN_MTU..=MAX_MTU).contains(&self.mtu) {
            return Err(DiodeConfigError::Mtu(self.mtu));
        }
        // The last block carries the trailer on top of its data.
        let max_block = (self.symbol_size() * MAX_SOURCE_SYMBOLS).saturating_sub(TRAILER_LEN);
        if self.block_size == 0
            || self.block_size > max_block
            || self.block_size > u32::MAX as usize
        {
            return Err(DiodeConfigError::BlockSize {
                block_size: self.block_size,
                max: max_block.min(u32::MAX as usize),
            });
        }
        if self.repair_percentage > 1000 {
            return Err(DiodeConfigError::RepairPercentage(self.repair_percentage));
        }
        for (name, d) in [
            ("heartbeat", Some(self.heartbeat)),
            ("block_expiration_timeout", self.block_expiration_timeout),
            (
                "session_expiration_timeout",
                self.session_expiration_timeout,
            ),
        ] {
            if d == Some(Duration::ZERO) {
                return Err(DiodeConfigError::ZeroDuration(name));
            }
        }
        if self.bandwidth == 0 {
            return Err(DiodeConfigError::Bandwidth);
        }
        if self.max_burst < self.datagram_size() {
            return Err(DiodeConfigError::Burst {
                burst: self.max_burst,
                datagram: self.datagram_size(),
            });
        }
        if self.max_blocks_in_flight == 0 {
            return Err(DiodeConfigError::ZeroCount("max_blocks_in_flight"));
        }
        if self.max_sessions == 0 {
            return Err(DiodeConfigError::ZeroCount("max_sessions"));
        }
        if !(1..=MAX_INTERLEAVE_DEPTH).contains(&self.interleave_depth) {
            return Err(DiodeConfigError::InterleaveDepth(self.interleave_depth));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_symbols_aligned() {
        let c = DiodeConfig::default();
        c.validate().unwrap();
        assert_eq!(c.symbol_size() % 8, 0);
        assert!(c.datagram_size() + IP_UDP_OVERHEAD <= c.mtu);
        assert_eq!(c.blocks_in_flight(), c.max_blocks_in_flight);
        assert_eq!(c.blocks_in_flight(), 2 * c.interleave_depth);
    }

    #[test]
    fn errors_name_the_key() {
        let c = DiodeConfig {
            heartbeat: Duration::ZERO,
            ..DiodeConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("`heartbeat`")
        );
        let c = DiodeConfig {
            mtu: 100,
            ..DiodeConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("`mtu`"));
        for depth in [0, MAX_INTERLEAVE_DEPTH + 1] {
            let c = DiodeConfig {
                interleave_depth: depth,
                ..DiodeConfig::default()
            };
            assert!(
                c.validate()
                    .unwrap_err()
                    .to_string()
                    .contains("`interleave_depth`")
            );
        }
        let c = DiodeConfig {
            block_size: usize::MAX,
            ..DiodeConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("`block_size`")
        );
    }
}
