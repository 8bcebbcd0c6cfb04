//! Replays the seeds and saved crashes of the fuzz target `websocket_frames`
//! (`fuzz/corpus/websocket_frames/`, `fuzz/regressions/websocket_frames/`)
//! through its property, on stable, so that `cargo test` guards them without
//! a fuzzer. The property is `fuzz/common/async_props/websocket_frames.rs`,
//! shared with the target.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

mod props {
    include!("../../../fuzz/common/async_props/websocket_frames.rs");
}

/// The regular, non-hidden files in `dir`, sorted (none if it is absent).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

#[test]
fn the_websocket_frames_seeds_and_crashes_pass_their_property() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let seeds = files_in(&fuzz.join("corpus/websocket_frames"));
    assert!(
        seeds.len() >= 5,
        "the seed corpus of websocket_frames is missing"
    );
    let regressions = files_in(&fuzz.join("regressions/websocket_frames"));
    let failed: Vec<String> = seeds
        .iter()
        .chain(&regressions)
        .filter(|path| {
            let data = fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| props::check_websocket_frames(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "inputs failing: {failed:?}");
}
