//! The diode suite's lossy hop: a one-way forwarder that drops each datagram
//! with a seeded probability and does nothing else (no delay, no
//! reordering), on batched I/O — GRO receives and GSO sends through
//! quinn-udp — so that the 2% rows measure Ferry rather than the hop. The
//! project's relay (`ferry-relay`, which models far more) reads one datagram
//! per system call; on two cores shared with the four diode processes its
//! own socket overflowed from 3000 Mbit/s up, and the rows measured that.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};

use crate::bulk::udp_socket;

/// Receive buffers per system call, 64 KiB each (a GRO run).
const BATCH: usize = 8;
const RUN: usize = 65_536;

/// What the forwarder did.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Datagrams received.
    pub(crate) received: AtomicU64,
    /// Of those, dropped on purpose.
    pub(crate) dropped: AtomicU64,
    /// Send calls that failed (their datagrams are lost).
    pub(crate) send_errors: AtomicU64,
}

/// A running forwarder; stops when dropped.
pub(crate) struct Forwarder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Forwards what reaches a new loopback port to `upstream`, dropping
    /// each datagram with probability `loss`.
    pub(crate) fn start(upstream: SocketAddr, loss: f64, seed: u64) -> Result<Self, String> {
        let e = |e: std::io::Error| e.to_string();
        let socket = udp_socket("127.0.0.1:0".parse().expect("address"))?;
        let addr = socket.local_addr().map_err(e)?;
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).map_err(e)?;
        socket.set_nonblocking(false).map_err(e)?;
        // Wakes now and then to see whether to stop.
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(e)?;
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let (flag, c) = (stop.clone(), counts.clone());
        let thread = std::thread::Builder::new()
            .name("lossy-forwarder".into())
            .spawn(move || forward(&socket, &state, upstream, loss, seed, &flag, &c))
            .map_err(e)?;
        Ok(Self {
            addr,
            stop,
            counts,
            thread: Some(thread),
        })
    }

    /// Where to send.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it did so far.
    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn forward(
    socket: &UdpSocket,
    state: &UdpSocketState,
    upstream: SocketAddr,
    loss: f64,
    seed: u64,
    stop: &AtomicBool,
    counts: &Counts,
) {
    let mut rng = SplitMix(seed);
    // Drop when the next draw falls below this.
    let threshold = (loss.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut bufs = vec![vec![0u8; RUN]; BATCH];
    let mut metas = [RecvMeta::default(); BATCH];
    let mut out = Vec::with_capacity(RUN);
    let max_segments = state.max_gso_segments().max(1);
    while !stop.load(Ordering::SeqCst) {
        let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        let n = match state.recv(UdpSockRef::from(socket), &mut slices, &mut metas) {
            Ok(n) => n,
            Err(_) => continue, // the timeout, or a stray ICMP error
        };
        for (meta, buf) in metas.iter().zip(&bufs).take(n) {
            let stride = meta.stride.max(1);
            out.clear();
            for segment in buf[..meta.len].chunks(stride) {
                counts.received.fetch_add(1, Ordering::Relaxed);
                if rng.next() < threshold {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // Only the run's last segment may be short, and it stays last.
                out.extend_from_slice(segment);
            }
            // At most `max_segments` per send (the kernel's GSO limit).
            for group in out.chunks(stride * max_segments) {
                let segments = group.len().div_ceil(stride);
                let transmit = Transmit {
                    destination: upstream,
                    ecn: None,
                    contents: group,
                    segment_size: (segments > 1).then_some(stride),
                    src_ip: None,
                };
                if state.try_send(UdpSockRef::from(socket), &transmit).is_err() {
                    counts.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// SplitMix64: a small seeded generator, enough to pick datagrams to drop.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_forwards_what_it_does_not_drop_and_drops_about_the_share_asked() {
        // Large buffers: a burst of small datagrams overflows the default.
        let sink = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let forwarder = Forwarder::start(sink.local_addr().unwrap(), 0.2, 3).unwrap();
        let source = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..2000u32 {
            source
                .send_to(&i.to_be_bytes(), forwarder.local_addr())
                .unwrap();
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut got = 0;
        let mut buf = [0u8; 64];
        while sink.recv(&mut buf).is_ok() {
            got += 1;
            if got + forwarder.counts().dropped.load(Ordering::Relaxed) as usize == 2000 {
                break;
            }
        }
        let dropped = forwarder.counts().dropped.load(Ordering::Relaxed) as usize;
        assert_eq!(got + dropped, 2000);
        assert!((300..500).contains(&dropped), "{dropped} of 2000 at 20%");
    }
}
