//! The bulk suite's fallback rows: Ferry over the WebSocket fallback, UDP
//! to the receiver's port number blackholed.

use std::time::Duration;

/// `max_mtu` of the fallback rows.
const FALLBACK_MAX_MTU: usize = 16_384;

/// The fallback rows' configuration: the receiver takes WebSocket on TCP at
/// a port number whose UDP a socket held for the process's life swallows;
/// the sender falls back after 100 ms; `max_mtu` is
/// [`FALLBACK_MAX_MTU`].
pub(crate) fn config(
    mut config: ferry_async::EndpointConfig,
    server: bool,
) -> ferry_async::EndpointConfig {
    if server {
        // A port number free for UDP and, as far as can be told, for TCP.
        let hole = (0..20).find_map(|_| {
            let hole = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            let addr = hole.local_addr().ok()?;
            std::net::TcpListener::bind(addr).ok().map(|_| hole)
        });
        match hole {
            Some(hole) => {
                config.fallback.listen_addr = hole.local_addr().ok();
                // Never read: UDP to this port number goes nowhere.
                std::mem::forget(hole);
            }
            None => eprintln!("no blackhole socket"),
        }
    } else {
        config.fallback.after = Some(Duration::from_millis(100));
    }
    // Over TCP nothing limits a datagram's size: path MTU discovery finds
    // this at once (guide §2.9).
    config.protocol.max_mtu = FALLBACK_MAX_MTU;
    config
}
