//! Ferry's own lossy UDP relay, for fault tests on real sockets.
//!
//! Where the kernel offers no `tc netem`, a [`Relay`] stands between a client and a
//! server on loopback: the client sends to the relay's address, the relay forwards to
//! the server and sends the server's answers back to the client, applying network
//! faults in each direction. The faults are those of Ferry's link model,
//! [`ferry_netem`], which its simulator runs in virtual time — random and
//! Gilbert–Elliott burst loss, reordering,
//! duplication, corruption, latency and jitter, a bandwidth cap with a tail-drop queue
//! and periodic outages — in real time, plus timed blackholes on demand. Named
//! real-network presets ([`Profile`]: jitter, reordering, burst loss, long fat,
//! satellite, Wi-Fi, flapping) are one call away, [`Relay::with_profile`], or
//! one option of the example, `--profile wifi`. Any number of clients (up to
//! [`MAX_CLIENTS`]) can share one relay; the server sees a distinct source address
//! per client.
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use ferry_relay::{LinkConfig, Relay};
//!
//! // An echo server on loopback.
//! let server = UdpSocket::bind("127.0.0.1:0")?;
//! let upstream = server.local_addr()?;
//! std::thread::spawn(move || {
//!     let mut buf = vec![0u8; 65_536];
//!     while let Ok((len, from)) = server.recv_from(&mut buf) {
//!         let _ = server.send_to(&buf[..len], from);
//!     }
//! });
//!
//! // 5 ms each way, no loss; 1 % loss would be `.random_loss(0.01)`.
//! let path = LinkConfig::default().latency(Duration::from_millis(5));
//! let relay = Relay::start("127.0.0.1:0".parse()?, upstream, path.clone(), path, 42)?;
//!
//! let client = UdpSocket::bind("127.0.0.1:0")?;
//! client.set_read_timeout(Some(Duration::from_secs(5)))?;
//! client.send_to(b"hello", relay.local_addr())?;
//! let mut buf = [0u8; 64];
//! let (len, from) = client.recv_from(&mut buf)?;
//! assert_eq!(&buf[..len], b"hello");
//! assert_eq!(from, relay.local_addr());
//!
//! let stats = relay.stats();
//! assert_eq!((stats.to_upstream.forwarded, stats.to_client.forwarded), (1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The `relay` example runs one from the command line:
//! `cargo run -p ferry-relay --example relay -- --listen 127.0.0.1:7000 --upstream 127.0.0.1:7001 --loss 5`,
//! or with a named profile, `… --upstream 127.0.0.1:7001 --profile satellite`
//! (`--profiles` lists them).

#![warn(missing_docs, unreachable_pub)]

mod direction;
mod relay;

pub use direction::DirectionStats;
pub use ferry_netem::{Blackhole, LinkConfig, LinkStats, Loss, Profile, UnknownProfile};
pub use relay::{MAX_CLIENTS, Relay, RelayStats};
