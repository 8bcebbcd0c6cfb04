//! [`Families`]: counters, gauges and histograms written into a scrape,
//! one call per figure.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Writes metric families into a scrape: one call per figure.
pub struct Families<'a>(pub DescriptorEncoder<'a>);

impl Families<'_> {
    /// A counter (its samples get Prometheus's `_total` suffix).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let counter = ConstCounter::new(value);
        let m = self
            .0
            .encode_descriptor(name, help, None, counter.metric_type())?;
        counter.encode(m)
    }

    /// A gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) -> fmt::Result {
        let gauge = ConstGauge::new(value);
        let m = self
            .0
            .encode_descriptor(name, help, None, gauge.metric_type())?;
        gauge.encode(m)
    }

    /// A counter with one label: a sample per `(label value, count)`.
    pub fn counter_with(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, count) in values {
            let labels = [(label, *value)];
            ConstCounter::new(*count).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A gauge with one label: a sample per `(label value, value)`.
    pub fn gauge_with(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, i64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (value, v) in values {
            let labels = [(label, *value)];
            ConstGauge::new(*v).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Families<'_> {
    /// A histogram of durations, in seconds (`_bucket{le}`, `_sum`,
    /// `_count`), with the library's fixed bounds.
    pub fn histogram(&mut self, name: &str, help: &str, h: &ferry_proto::Histogram) -> fmt::Result {
        // The encoder takes each bucket's own count, and adds them up.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = h
            .cumulative()
            .map(|(bound, total)| {
                let n = total - below;
                below = total;
                (bound.as_secs_f64(), n)
            })
            .collect();
        buckets.push((f64::INFINITY, h.count() - below));
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum().as_secs_f64(),
            h.count(),
            &buckets,
            None,
        )
    }
}

/// Saturating `u64` → `i64` for gauges.
pub fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
