//! What the diode's file tools export: `diode-receive-file`'s files saved,
//! discarded and refused (`ferry_diode_files_*`), `diode-send-dir`'s
//! sessions and files sent (`ferry_diode_dir_*`).

use std::fmt;

use ferry_metrics::Families;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::diode::dir::DirCounters;
use crate::diode::file::ReceiveFileStats;

/// `ferry_diode_files_*`: a `diode-receive-file`'s counts, read at each
/// scrape.
pub struct FilesCollector(Box<dyn Fn() -> ReceiveFileStats + Send + Sync>);

impl FilesCollector {
    /// Reads the counts from `source` at each scrape.
    pub fn new(source: impl Fn() -> ReceiveFileStats + Send + Sync + 'static) -> Self {
        Self(Box::new(source))
    }
}

impl fmt::Debug for FilesCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FilesCollector").finish_non_exhaustive()
    }
}

impl Collector for FilesCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let s = (self.0)();
        let mut f = Families(encoder);
        f.counter(
            "diode_files_connections",
            "Sessions diode-receive replayed to this server",
            s.connections,
        )?;
        f.gauge(
            "diode_files_connections_open",
            "Sessions being written now",
            ferry_metrics::gauge_value(s.connections.saturating_sub(s.ended)),
        )?;
        f.counter_with(
            "diode_files",
            "Files, by outcome: saved (complete, digest checked, under their name), \
             discarded (cut short, reset or not matching their digest: deleted), refused (their name)",
            "outcome",
            &[
                ("saved", s.saved),
                ("discarded", s.discarded),
                ("refused", s.refused),
            ],
        )
    }
}

/// `ferry_diode_dir_*`: a watching `diode-send-dir`'s counts.
#[derive(Debug)]
pub struct DirCollector(pub Arc<DirCounters>);

impl Collector for DirCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let c = &self.0;
        let mut f = Families(encoder);
        f.counter_with(
            "diode_dir_sessions",
            "Sessions diode-send-dir sent, by outcome: sent (confirmed by diode-send), failed (their files are tried again)",
            "outcome",
            &[
                ("sent", c.sessions.load(Ordering::Relaxed)),
                ("failed", c.failed_sessions.load(Ordering::Relaxed)),
            ],
        )?;
        f.counter(
            "diode_dir_files",
            "Files sent",
            c.files.load(Ordering::Relaxed),
        )?;
        f.counter(
            "diode_dir_bytes",
            "Bytes of the files sent",
            c.bytes.load(Ordering::Relaxed),
        )
    }
}
