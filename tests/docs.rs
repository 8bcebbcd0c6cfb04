//! The documentation keeps up with the code: every field of every
//! configuration struct has a row in the guide's reference tables
//! (`docs/guide.md`, section 4), with a default and a unit.
//!
//! The field lists are read from the structs' source, so a field added
//! without documentation fails here.

use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The public fields of `pub struct <name> { … }` in `source`.
fn struct_fields(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("no `pub struct {name}` in the source"));
    let body = &source[start..];
    let end = body
        .find("\n}")
        .unwrap_or_else(|| panic!("`{name}` never closes"));
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let field = line.trim().strip_prefix("pub ")?;
            let (name, _) = field.split_once(':')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The lines of the guide's section whose heading names `name` in
/// backticks, up to the next heading of any level.
fn section<'a>(guide: &'a str, name: &str) -> Vec<&'a str> {
    let heading = format!("`{name}`");
    let mut lines = guide
        .lines()
        .skip_while(|l| !(l.starts_with('#') && l.contains(&heading)));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("docs/guide.md has no heading naming {heading}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with('#')))
        .collect()
}

/// The cells of the table row for `field`: the row whose first cell is the
/// field's name in backticks.
fn row<'a>(section: &[&'a str], field: &str) -> Option<Vec<&'a str>> {
    let first = format!("`{field}`");
    section.iter().find_map(|line| {
        let cells: Vec<&str> = line
            .trim()
            .strip_prefix('|')?
            .strip_suffix('|')?
            .split('|')
            .map(str::trim)
            .collect();
        (cells.first() == Some(&first.as_str())).then_some(cells)
    })
}

/// Every field of `name` (defined in `source_path`) has a row in the guide's
/// section about it, with something in its `Default` and `Unit` columns.
fn check(guide: &str, source_path: &str, name: &str) -> Vec<String> {
    let source = read(source_path);
    let fields = struct_fields(&source, name);
    assert!(!fields.is_empty(), "no fields found in {name}");
    let section = section(guide, name);
    let header = section
        .iter()
        .find(|l| l.trim_start().starts_with("| Field |"))
        .unwrap_or_else(|| panic!("the guide's section on `{name}` has no table"));
    let columns: Vec<&str> = header
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    let default = columns
        .iter()
        .position(|c| *c == "Default")
        .expect("a Default column");
    let unit = columns
        .iter()
        .position(|c| *c == "Unit")
        .expect("a Unit column");
    let mut problems = Vec::new();
    for field in fields {
        match row(&section, &field) {
            None => problems.push(format!("{name}::{field} has no row in docs/guide.md")),
            Some(cells) => {
                for (column, i) in [("default", default), ("unit", unit)] {
                    if cells.get(i).is_none_or(|c| c.is_empty()) {
                        problems.push(format!("{name}::{field}: its row has no {column}"));
                    }
                }
            }
        }
    }
    problems
}

#[test]
fn the_guide_documents_every_configuration_field() {
    let guide = read("docs/guide.md");
    let mut problems = Vec::new();
    for (path, name) in [
        ("crates/ferry-proto/src/config.rs", "Config"),
        ("crates/ferry-async/src/config.rs", "EndpointConfig"),
        ("crates/ferry-proto/src/diode/config.rs", "DiodeConfig"),
        ("crates/ferry-diode/src/socket.rs", "SocketOptions"),
    ] {
        problems.extend(check(&guide, path, name));
    }
    assert!(
        problems.is_empty(),
        "docs/guide.md §4 is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_field_reader_sees_every_field() {
    // A guard on the parser itself: Config has a field per line, and more
    // than twenty of them.
    let fields = struct_fields(&read("crates/ferry-proto/src/config.rs"), "Config");
    assert!(fields.len() > 20, "{fields:?}");
    assert!(fields.iter().any(|f| f == "mtu") && fields.iter().any(|f| f == "psk"));
}
