//! The figures of one run: each suite fills a [`Table`]; the [`Report`]
//! gathers every suite of the invocation, prints one table and writes the
//! JSON.
//!
//! Every row may name a baseline: another row of the same run (looked up by
//! name across all suites), or a reference value computed by the suite (the
//! efficiency suite's `(1 − loss) × capacity`). The ratio printed is always
//! `value / baseline`, so for throughput higher is better and for times
//! (latency, CPU seconds per GB) lower is better. A row may be compared with
//! further rows or reference values too (the efficiency suite sets each
//! network profile's row beside the same path unimpaired, then beside what the
//! profile allows); those ratios print on continuation lines.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a row is compared with.
#[derive(Debug, Clone)]
pub(crate) enum Baseline {
    /// Another row of this run, by name.
    Row(String),
    /// A reference value with a label, computed by the suite.
    Value(String, f64),
}

/// One measured figure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    /// The main comparison, printed on the row's own line.
    pub(crate) baseline: Option<Baseline>,
    /// Further rows (by name) or reference values this one is compared with.
    pub(crate) also: Vec<Baseline>,
    pub(crate) note: String,
}

/// The rows of one suite.
#[derive(Debug)]
pub(crate) struct Table {
    suite: &'static str,
    rows: Vec<Row>,
    /// Measurements that failed (their rows read 0 and say why).
    failures: Vec<String>,
}

impl Table {
    pub(crate) fn new(suite: &'static str) -> Self {
        Self {
            suite,
            rows: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Records a measurement that failed: a row reading 0 with the error as
    /// its note, so the rest of the suite still runs and prints.
    pub(crate) fn fail(&mut self, name: impl Into<String>, unit: &'static str, error: &str) {
        let name = name.into();
        eprintln!("  FAILED {name}: {error}");
        self.failures.push(format!("{name}: {error}"));
        self.rows.push(Row {
            name,
            value: 0.0,
            unit,
            baseline: None,
            also: Vec::new(),
            note: format!("FAILED: {error}"),
        });
    }

    /// The measurements that failed.
    pub(crate) fn failures(&self) -> &[String] {
        &self.failures
    }

    /// Adds a row compared with the row named `baseline`, and shows it at
    /// once on stderr (long suites show progress).
    pub(crate) fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        baseline: Option<&str>,
        note: impl Into<String>,
    ) -> &mut Row {
        self.push(Row {
            name: name.into(),
            value,
            unit,
            baseline: baseline.map(|b| Baseline::Row(b.to_owned())),
            also: Vec::new(),
            note: note.into(),
        })
    }

    /// Adds a row compared with a reference value rather than a row.
    pub(crate) fn add_against(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        reference: (String, f64),
        note: impl Into<String>,
    ) -> &mut Row {
        self.push(Row {
            name: name.into(),
            value,
            unit,
            baseline: Some(Baseline::Value(reference.0, reference.1)),
            also: Vec::new(),
            note: note.into(),
        })
    }

    fn push(&mut self, row: Row) -> &mut Row {
        eprintln!("  measured {}: {:.1} {}", row.name, row.value, row.unit);
        self.rows.push(row);
        self.rows.last_mut().expect("just pushed")
    }

    /// The value of the row named `name` in this table.
    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.name == name).map(|r| r.value)
    }
}

impl Row {
    /// Compares this row with the row named `other` as well.
    pub(crate) fn also(&mut self, other: impl Into<String>) -> &mut Self {
        self.also.push(Baseline::Row(other.into()));
        self
    }

    /// Compares this row with a reference value as well.
    pub(crate) fn also_value(&mut self, label: impl Into<String>, value: f64) -> &mut Self {
        self.also.push(Baseline::Value(label.into(), value));
        self
    }
}

/// Every suite of one invocation.
#[derive(Debug, Default)]
pub(crate) struct Report {
    tables: Vec<Table>,
}

/// One comparison, resolved.
struct Ratio {
    label: String,
    baseline: f64,
    ratio: Option<f64>,
}

impl Report {
    pub(crate) fn push(&mut self, table: Table) {
        self.tables.push(table);
    }

    /// The value of the row named `name`, in any suite so far.
    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        self.tables.iter().find_map(|t| t.value(name))
    }

    fn rows(&self) -> impl Iterator<Item = (&'static str, &Row)> {
        self.tables
            .iter()
            .flat_map(|t| t.rows.iter().map(move |r| (t.suite, r)))
    }

    fn resolve_row(&self, name: &str) -> Option<Ratio> {
        let base = self.value(name)?;
        Some(Ratio {
            label: name.to_owned(),
            baseline: base,
            ratio: None,
        })
    }

    fn resolve(&self, baseline: &Baseline) -> Option<Ratio> {
        match baseline {
            Baseline::Row(name) => self.resolve_row(name),
            Baseline::Value(label, value) => Some(Ratio {
                label: label.clone(),
                baseline: *value,
                ratio: None,
            }),
        }
    }

    /// The row's comparisons: its baseline first, then the others; a
    /// baseline row missing from this run is left out.
    fn ratios(&self, row: &Row) -> Vec<Ratio> {
        let main = row.baseline.as_ref().and_then(|b| self.resolve(b));
        main.into_iter()
            .chain(row.also.iter().filter_map(|b| self.resolve(b)))
            .map(|mut r| {
                r.ratio = (r.baseline > 0.0).then(|| row.value / r.baseline);
                r
            })
            .collect()
    }

    /// Prints the one table of the run to `out`.
    pub(crate) fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let width = self.rows().map(|(_, r)| r.name.len()).max().unwrap_or(4);
        let base_width = self
            .rows()
            .flat_map(|(_, r)| self.ratios(r))
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        let ratio = |r: &Ratio| {
            r.ratio
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
        };
        writeln!(out)?;
        writeln!(
            out,
            "{:width$}  {:>10}  {:<6}  {:<base_width$}  {:>6}  note",
            "row", "value", "unit", "baseline", "ratio"
        )?;
        let mut suite = "";
        for (s, row) in self.rows() {
            if s != suite {
                writeln!(out, "-- {s}")?;
                suite = s;
            }
            let ratios = self.ratios(row);
            let (label, first) = ratios
                .first()
                .map_or(("-".to_owned(), "-".to_owned()), |r| {
                    (r.label.clone(), ratio(r))
                });
            writeln!(
                out,
                "{:width$}  {:>10}  {:<6}  {:<base_width$}  {:>6}  {}",
                row.name,
                format_value(row.value),
                row.unit,
                label,
                first,
                row.note
            )?;
            for r in ratios.iter().skip(1) {
                writeln!(
                    out,
                    "{:width$}  {:>10}  {:<6}  {:<base_width$}  {:>6}",
                    "",
                    "",
                    "",
                    r.label,
                    ratio(r)
                )?;
            }
        }
        writeln!(
            out,
            "\nratio = value / baseline (throughput: higher is better; times: lower is better)"
        )
    }

    /// Writes `<dir>/bench.json` (every row) and `<dir>/<suite>.json` per
    /// suite; returns the path of `bench.json`.
    pub(crate) fn write_json(
        &self,
        dir: &Path,
        meta: &serde_json::Value,
    ) -> Result<PathBuf, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let write = |name: &str, json: serde_json::Value| {
            let path = dir.join(name);
            let text = serde_json::to_string_pretty(&json).expect("plain data serializes");
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok::<_, String>(path)
        };
        for table in &self.tables {
            write(
                &format!("{}.json", table.suite),
                serde_json::json!({
                    "suite": table.suite,
                    "meta": meta,
                    "rows": table.rows.iter().map(|r| self.json_row(table.suite, r)).collect::<Vec<_>>(),
                }),
            )?;
        }
        let path = write(
            "bench.json",
            serde_json::json!({
                "suites": self.tables.iter().map(|t| t.suite).collect::<Vec<_>>(),
                "meta": meta,
                "rows": self.rows().map(|(s, r)| self.json_row(s, r)).collect::<Vec<_>>(),
            }),
        )?;
        Ok(path)
    }

    fn json_row(&self, suite: &str, row: &Row) -> serde_json::Value {
        let ratios = self.ratios(row);
        let main = ratios.first();
        serde_json::json!({
            "suite": suite,
            "name": row.name,
            "value": row.value,
            "unit": row.unit,
            "baseline": main.map(|r| r.label.clone()),
            "baseline_value": main.map(|r| r.baseline),
            "ratio": main.and_then(|r| r.ratio),
            "compared": ratios.iter().skip(1).map(|r| serde_json::json!({
                "baseline": r.label,
                "baseline_value": r.baseline,
                "ratio": r.ratio,
            })).collect::<Vec<_>>(),
            "note": row.note,
        })
    }
}

/// Three significant figures or one decimal, whichever is longer.
fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
