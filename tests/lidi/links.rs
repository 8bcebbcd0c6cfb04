//! The `ferry` binary run under Lidi's program names, and Lidi's log
//! settings, on the real binary.

use super::*;
use crate::configs::{anssi_config, lidi2_config};

/// A child process, killed if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with `args`, its stderr into `stderr`; returns it once
/// it printed its first line (the servers print their addresses once
/// listening).
fn start(program: &Path, args: &[&str], stderr: &Path) -> Child {
    let mut child = Child(
        Process::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty(), "{} exited early", program.display());
    child
}

#[cfg(unix)]
#[test]
fn the_ferry_binary_answers_to_lidis_program_names_through_links() {
    let bin = env!("CARGO_BIN_EXE_ferry-as-lidi");
    let links = TempDir::new().unwrap();
    for name in ferry_cli::lidi_link::PROGRAMS {
        std::os::unix::fs::symlink(bin, links.path().join(name)).unwrap();
        let help = Process::new(links.path().join(name))
            .arg("--help")
            .output()
            .unwrap();
        assert!(help.status.success(), "{name}");
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(
            text.contains(&format!("Usage: ferry {name}")),
            "{name}: {text}"
        );
    }
    let link = |name: &str| links.path().join(name);

    // A transfer with nothing but Lidi's names, flags and configuration.
    let (send_tcp, recv_tcp) = (free_tcp(), free_tcp());
    let conf = links.path().join("config.toml");
    std::fs::write(&conf, anssi_config(free_udp(), send_tcp, recv_tcp)).unwrap();
    let conf = conf.to_str().unwrap();
    let out = TempDir::new().unwrap();
    let log = |name: &str| links.path().join(format!("{name}.log"));
    let _files = start(
        &link("diode-receive-file"),
        &[
            "--bind-tcp",
            &recv_tcp.to_string(),
            out.path().to_str().unwrap(),
        ],
        &log("diode-receive-file"),
    );
    let _receive = start(&link("diode-receive"), &["-c", conf], &log("diode-receive"));
    let send = start(&link("diode-send"), &["-c", conf], &log("diode-send"));
    let source = make_files(&[("hello.txt", b"hello, diode")]);
    let status = Process::new(link("diode-send-file"))
        .args(["--to-tcp", &send_tcp.to_string()])
        .arg(source.path().join("hello.txt"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the file arrives", || {
        std::fs::read(out.path().join("hello.txt")).is_ok_and(|d| d == b"hello, diode")
    });
    // diode-send warned about the keys it ignores, naming each and its line.
    drop(send);
    let warnings = std::fs::read_to_string(log("diode-send")).unwrap();
    for expected in [
        "Ferry logs through `tracing`",
        "log_config",
        "Ferry does not pin its threads",
        "core_affinity",
        "line",
    ] {
        assert!(
            warnings.contains(expected),
            "{expected:?} not in:\n{warnings}"
        );
    }
}

#[cfg(unix)]
#[test]
fn lidi_2s_log_level_and_lidis_log_file_flag_set_the_log() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ferry-as-lidi"));
    let dir = TempDir::new().unwrap();
    let conf = dir.path().join("tcp.config.toml");
    std::fs::write(&conf, lidi2_config(&[free_udp()], free_tcp(), free_tcp())).unwrap();
    let conf = conf.to_str().unwrap();
    let log_file = dir.path().join("receive.log");
    let stderr = dir.path().join("stderr");
    // [receive] log = "INFO": the info line, and the warnings, go to --log-file.
    let receive = start(
        bin,
        &[
            "diode-receive",
            "-c",
            conf,
            "--log-file",
            log_file.to_str().unwrap(),
            "--log4rs-config",
            "lidi_log4rs.yml",
        ],
        &stderr,
    );
    wait_until("the log is written", || {
        std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("diode-receive started"))
    });
    drop(receive);
    let log = std::fs::read_to_string(&log_file).unwrap();
    for expected in [
        " INFO ",
        "diode-receive started",
        "--log4rs-config lidi_log4rs.yml: ignored",
        "[receive] queue_size",
    ] {
        assert!(log.contains(expected), "{expected:?} not in:\n{log}");
    }
    assert_eq!(std::fs::read_to_string(&stderr).unwrap(), "");
    // --log-level (Lidi 1's name for --log) wins over the file: errors only.
    let quiet_log = dir.path().join("quiet.log");
    let receive = start(
        bin,
        &[
            "diode-receive",
            "-c",
            conf,
            "--log-level",
            "ERROR",
            "--log-file",
            quiet_log.to_str().unwrap(),
        ],
        &stderr,
    );
    drop(receive);
    assert_eq!(std::fs::read_to_string(&quiet_log).unwrap(), "");
}
