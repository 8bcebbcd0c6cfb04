//! One table per suite: each row a figure beside its baseline.

use std::fs;
use std::path::Path;

/// One measured figure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    /// The row this one is compared with, by name.
    pub(crate) baseline: Option<String>,
    pub(crate) note: String,
}

/// The rows of one suite.
#[derive(Debug)]
pub(crate) struct Table {
    suite: &'static str,
    rows: Vec<Row>,
}

impl Table {
    pub(crate) fn new(suite: &'static str) -> Self {
        Self {
            suite,
            rows: Vec::new(),
        }
    }

    /// Adds a row and prints it at once (long suites show progress).
    pub(crate) fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        baseline: Option<&str>,
        note: impl Into<String>,
    ) {
        let row = Row {
            name: name.into(),
            value,
            unit,
            baseline: baseline.map(str::to_owned),
            note: note.into(),
        };
        eprintln!("  measured {}: {:.1} {}", row.name, row.value, row.unit);
        self.rows.push(row);
    }

    fn ratio(&self, row: &Row) -> Option<f64> {
        let base = self
            .rows
            .iter()
            .find(|r| Some(&r.name) == row.baseline.as_ref())?;
        (base.value > 0.0).then(|| row.value / base.value)
    }

    /// Prints the table and writes `<dir>/<suite>.json`.
    pub(crate) fn finish(self, dir: &Path) -> Result<(), String> {
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        println!();
        println!(
            "{:width$}  {:>10}  {:<8}  {:>6}  {:<24}  note",
            "row", "value", "unit", "ratio", "baseline"
        );
        for row in &self.rows {
            let ratio = self
                .ratio(row)
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            println!(
                "{:width$}  {:>10.1}  {:<8}  {:>6}  {:<24}  {}",
                row.name,
                row.value,
                row.unit,
                ratio,
                row.baseline.as_deref().unwrap_or("-"),
                row.note
            );
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.suite));
        fs::write(&path, self.json())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("\nfigures written to {}", path.display());
        Ok(())
    }

    fn json(&self) -> String {
        #[derive(serde::Serialize)]
        struct JsonRow<'a> {
            name: &'a str,
            value: f64,
            unit: &'a str,
            baseline: Option<&'a str>,
            ratio: Option<f64>,
            note: &'a str,
        }
        #[derive(serde::Serialize)]
        struct JsonTable<'a> {
            suite: &'a str,
            rows: Vec<JsonRow<'a>>,
        }
        let table = JsonTable {
            suite: self.suite,
            rows: self
                .rows
                .iter()
                .map(|r| JsonRow {
                    name: &r.name,
                    value: r.value,
                    unit: r.unit,
                    baseline: r.baseline.as_deref(),
                    ratio: self.ratio(r),
                    note: &r.note,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&table).expect("plain data serializes")
    }
}
