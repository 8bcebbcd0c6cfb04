//! What `diode-receive-file` exports: the files it saved, discarded and
//! refused (`ferry_diode_files_*`).

use std::fmt;

use ferry_metrics::Families;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

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
