//! What `ferry perf client` and `ferry perf server` say to each other, as
//! JSON messages on the session's stream 0; the data itself goes on other
//! streams.
//!
//! ```text
//! client → server   Request   (mode, streams, duration or size, interval)
//! server → client   Progress  (upload: bytes received so far, every interval)
//! client → server   Received  (download: every byte arrived)
//! server → client   Done      (what the server measured: bytes, elapsed,
//!                              CPU, and as sender its session's figures)
//! ```
//!
//! The server sends `Done` once it has received everything (upload) and
//! the client has said `Received` (download): its figures as a sender
//! then cover the whole transfer.

use serde::{Deserialize, Serialize};

/// The version of these messages; a server refuses another.
pub const VERSION: u32 = 1;

/// Which way the data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Client to server.
    Upload,
    /// Server to client.
    Download,
    /// Both at once.
    Both,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Both => "both ways",
        })
    }
}

impl Mode {
    /// Whether the client sends.
    pub fn upload(self) -> bool {
        matches!(self, Self::Upload | Self::Both)
    }

    /// Whether the server sends.
    pub fn download(self) -> bool {
        matches!(self, Self::Download | Self::Both)
    }
}

/// The test the client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`].
    pub version: u32,
    /// Which way.
    pub mode: Mode,
    /// Streams each sending side uses.
    pub streams: u32,
    /// How long each side sends, ms (when `bytes` is not given).
    pub duration_ms: u64,
    /// How much each side sends in all, instead of a duration.
    pub bytes: Option<u64>,
    /// How often the server reports what it received, ms.
    pub interval_ms: u64,
}

/// The client's word that every byte of the download arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// Bytes the client received.
    pub bytes: u64,
}

/// What the server received so far (upload).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Since the server's first byte, ms.
    pub elapsed_ms: u64,
    /// Bytes received so far.
    pub bytes: u64,
    /// The server's receive window now, bytes.
    pub recv_window: u64,
}

/// How a sending side's session went, from its own figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderFigures {
    /// Packets sent.
    pub packets_sent: u64,
    /// Fragments sent again.
    pub retransmitted: u64,
    /// Packets lost (not counting those only late).
    pub lost: u64,
    /// Smoothed round-trip time at the end, µs.
    pub rtt_us: u64,
    /// Congestion window at the end, bytes.
    pub congestion_window: u64,
    /// Samples taken while sending (every 50 ms).
    pub samples: u64,
    /// Of those, with the congestion window full (in flight ≥ 90% of it).
    pub cwnd_full: u64,
    /// Of those, with the peer's receive window full.
    pub rwnd_full: u64,
}

/// What the server measured, at the end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Bytes the server received (upload).
    pub bytes_received: u64,
    /// From its first byte to its last, ms.
    pub elapsed_ms: u64,
    /// Bytes the server sent (download).
    pub bytes_sent: u64,
    /// How its sending went (download).
    pub sender: Option<SenderFigures>,
    /// CPU seconds the server process used during the test (every thread;
    /// other tests it served meanwhile included).
    pub cpu_seconds: Option<f64>,
}

/// A message of the server's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    /// [`Progress`].
    Progress(Progress),
    /// [`Done`].
    Done(Done),
    /// The request was refused, and why.
    Refused {
        /// What to do.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let request = Request {
            version: VERSION,
            mode: Mode::Both,
            streams: 4,
            duration_ms: 10_000,
            bytes: None,
            interval_ms: 1000,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.contains("\"mode\":\"both\""), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
        let done = ServerMessage::Done(Done {
            bytes_received: 1,
            elapsed_ms: 2,
            bytes_sent: 3,
            sender: Some(SenderFigures::default()),
            cpu_seconds: Some(0.5),
        });
        let text = serde_json::to_string(&done).unwrap();
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), done);
    }
}
