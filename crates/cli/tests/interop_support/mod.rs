//! Shared harness of the interop test binaries (`interop.rs`, `interop_groups.rs`): starts the real
//! `fjord` binary on a free loopback port with a fresh data directory, restarts it (SIGTERM or
//! kill -9) on the same port and directory, and runs the client scripts of `tests/interop/` with
//! the real Kafka clients that `cargo xtask install` put in place.
//!
//! Prerequisites come from `FJORD_INTEROP_PYTHON`, `FJORD_INTEROP_NODE`,
//! `FJORD_INTEROP_NODE_MODULES` and `FJORD_INTEROP_KCAT` (exported by `cargo xtask interop` /
//! `cargo xtask test`); when a variable is unset the harness looks where `cargo xtask install` puts
//! things (under this target directory, or on `PATH`). A missing prerequisite fails the test with
//! a message naming `cargo xtask install`: interop tests never skip silently.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a broker may take to accept TCP connections after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the broker log printed when a test fails.
const LOG_TAIL_LINES: usize = 200;

// ------------------------------------------------------------------------------------------------
// Prerequisites

/// Cargo's target directory, derived from this test binary's path (`<target>/<profile>/deps/<bin>`).
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.to_path_buf())
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The value of `var` (which must exist on disk), else `fallback`, else a failing test that says
/// how to install the missing client.
fn prerequisite(var: &str, what: &str, fallback: Option<PathBuf>) -> PathBuf {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(value) => {
            let path = PathBuf::from(value);
            assert!(
                path.exists(),
                "{var}={} does not exist: run `cargo xtask install` (or `cargo xtask interop`) to install {what}",
                path.display()
            );
            path
        }
        None => fallback.filter(|p| p.exists()).unwrap_or_else(|| {
            panic!(
                "{what} is missing: {var} is not set and it is not where `cargo xtask install` puts it. \
                 Run `cargo xtask install` once (or run these tests with `cargo xtask interop`)."
            )
        }),
    }
}

/// The virtualenv python that has confluent-kafka and kafka-python.
pub(crate) fn python() -> PathBuf {
    prerequisite(
        "FJORD_INTEROP_PYTHON",
        "the Python virtualenv with confluent-kafka and kafka-python",
        target_dir().map(|t| t.join("interop/venv/bin/python")),
    )
}

/// The `node_modules` directory that holds kafkajs.
pub(crate) fn node_modules() -> PathBuf {
    let dir = prerequisite(
        "FJORD_INTEROP_NODE_MODULES",
        "KafkaJS (npm)",
        target_dir().map(|t| t.join("interop/node/node_modules")),
    );
    assert!(
        dir.join("kafkajs").join("package.json").exists(),
        "{} has no kafkajs: run `cargo xtask install`",
        dir.display()
    );
    dir
}

/// The node binary.
pub(crate) fn node() -> PathBuf {
    prerequisite("FJORD_INTEROP_NODE", "Node.js", find_in_path("node"))
}

/// The kcat binary.
pub(crate) fn kcat() -> PathBuf {
    prerequisite(
        "FJORD_INTEROP_KCAT",
        "kcat (Debian package)",
        find_in_path("kcat"),
    )
}

/// `tests/interop/<name>` at the workspace root.
pub(crate) fn script_path(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(name);
    assert!(
        path.exists(),
        "interop script {} is missing",
        path.display()
    );
    path
}

/// A command that runs `tests/interop/<script>` with the virtualenv's python.
pub(crate) fn python_script(script: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(script_path(script)).env("PYTHONUNBUFFERED", "1");
    cmd
}

/// A command that runs `tests/interop/<script>` with node and kafkajs on `NODE_PATH`.
pub(crate) fn node_script(script: &str) -> Command {
    let modules = node_modules();
    let mut cmd = Command::new(node());
    cmd.arg(script_path(script))
        .env("NODE_PATH", &modules)
        .env("FJORD_INTEROP_NODE_MODULES", &modules)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    cmd
}

// ------------------------------------------------------------------------------------------------
// Scratch directories

/// A unique directory under the system temp dir; removed on drop unless the test failed, so a
/// failed run can be inspected.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join("fjord-interop").join(format!(
            "{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("interop: kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The broker process

/// How to stop a running broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM, then wait for a clean exit (status 0) within [`SHUTDOWN_TIMEOUT`].
    Term,
    /// SIGKILL (kill -9): nothing acknowledged may be lost.
    Kill,
}

/// A `fjord broker` process on a free loopback port, with its own data directory.
///
/// Dropping it kills the process (kill -9); when the test is failing, the tail of every broker
/// log is printed first.
pub(crate) struct Broker {
    dir: TempDir,
    port: u16,
    extra_overrides: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

impl Broker {
    /// Starts a broker with the default overrides (see [`Broker::overrides`]).
    pub(crate) fn start(label: &str) -> Broker {
        Broker::start_with(label, &[])
    }

    /// Starts a broker with additional `key=value` overrides.
    pub(crate) fn start_with(label: &str, extra_overrides: &[&str]) -> Broker {
        let mut broker = Broker {
            dir: TempDir::new(label),
            port: 0,
            extra_overrides: extra_overrides.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
            starts: 0,
        };
        // A free port can be taken by someone else between our probe and the broker's bind:
        // try a few ports before giving up.
        let mut last_error = String::new();
        for _ in 0..3 {
            broker.port = free_port();
            match broker.spawn() {
                Ok(()) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("fjord broker did not start: {last_error}");
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test's scratch directory (the broker's data directory is `data/` inside it).
    pub(crate) fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The `--override` values every test broker gets.
    fn overrides(&self) -> Vec<String> {
        let mut overrides = vec![
            format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port),
            format!("log.dirs={}", self.data_dir().display()),
            "node.id=1".to_owned(),
            // Keeps group tests fast: the first JoinGroup completes without waiting for others.
            "group.initial.rebalance.delay.ms=0".to_owned(),
        ];
        overrides.extend(self.extra_overrides.iter().cloned());
        overrides
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("broker-{start}.log"))
    }

    /// Starts the process and waits until its port accepts TCP connections.
    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot clone log handle: {e}"))?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("broker");
        for o in self.overrides() {
            cmd.arg("--override").arg(o);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .env("RUST_BACKTRACE", "1");
        eprintln!(
            "interop: starting broker #{} on {} (log {})",
            self.starts,
            self.bootstrap(),
            log_path.display()
        );
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", env!("CARGO_BIN_EXE_fjord")))?;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "broker exited during startup ({status}); log:\n{}",
                    tail(&log_path, LOG_TAIL_LINES)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "broker did not accept connections on {addr} within {STARTUP_TIMEOUT:?}; log:\n{}",
                    tail(&log_path, LOG_TAIL_LINES)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops the broker (see [`Stop`]), panicking if SIGTERM does not lead to a clean exit.
    pub(crate) fn stop(&mut self, how: Stop) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        match how {
            Stop::Kill => {
                eprintln!("interop: kill -9 broker (pid {pid})");
                let _ = child.kill();
                let _ = child.wait();
            }
            Stop::Term => {
                eprintln!("interop: SIGTERM broker (pid {pid})");
                let sent = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
                assert!(
                    sent.as_ref().is_ok_and(ExitStatus::success),
                    "could not send SIGTERM: {sent:?}"
                );
                let started = Instant::now();
                let status = loop {
                    if let Ok(Some(status)) = child.try_wait() {
                        break status;
                    }
                    if started.elapsed() > SHUTDOWN_TIMEOUT {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
                    }
                    thread::sleep(Duration::from_millis(50));
                };
                eprintln!(
                    "interop: broker exited {:.1}s after SIGTERM ({status})",
                    started.elapsed().as_secs_f64()
                );
                assert!(
                    status.success(),
                    "broker did not shut down cleanly on SIGTERM: {status}"
                );
            }
        }
    }

    /// Stops the broker and starts it again on the same port with the same data directory.
    pub(crate) fn restart(&mut self, how: Stop) {
        self.stop(how);
        // The port is ours, but the old socket may linger for a moment: retry for a while.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("broker did not restart: {e}"),
                Err(e) => {
                    eprintln!("interop: restart attempt failed, retrying: {e}");
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    /// Fails the test if the broker process has exited on its own.
    pub(crate) fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the broker exited unexpectedly ({status})");
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            for start in 1..=self.starts {
                let path = self.log_path(start);
                eprintln!(
                    "---- broker log #{start} ({}), last {LOG_TAIL_LINES} lines ----\n{}",
                    path.display(),
                    tail(&path, LOG_TAIL_LINES)
                );
            }
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The last `lines` lines of a file (or why it cannot be read).
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

// ------------------------------------------------------------------------------------------------
// Client scripts

/// What a finished script printed.
pub(crate) struct ScriptOutput {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A running client script: stdout is delivered line by line (for scripts that report progress),
/// and both streams are kept for the failure message.
pub(crate) struct RunningScript {
    name: String,
    child: Option<Child>,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl RunningScript {
    /// Spawns `cmd` with piped stdout and stderr.
    pub(crate) fn spawn(name: &str, mut cmd: Command) -> RunningScript {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        eprintln!("interop: running {name}: {cmd:?}");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let keep = Arc::clone(&stdout);
            readers.push(thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    push_line(&keep, &line);
                    let _ = tx.send(line);
                }
            }));
        }
        if let Some(mut err) = child.stderr.take() {
            let keep = Arc::clone(&stderr);
            readers.push(thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = keep.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }));
        }
        RunningScript {
            name: name.to_owned(),
            child: Some(child),
            lines,
            stdout,
            stderr,
            readers,
            started: Instant::now(),
        }
    }

    fn output_so_far(&self) -> String {
        let stdout = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!(
            "---- {} stdout ----\n{}\n---- {} stderr ----\n{}",
            self.name,
            last_chars(&stdout, 6_000),
            self.name,
            last_chars(&stderr, 40_000)
        )
    }

    /// Waits for a stdout line for which `matches` returns true; panics (with the output so far)
    /// on timeout or if the script exits first.
    pub(crate) fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(500)))
            {
                Ok(line) if matches(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        self.kill();
                        panic!(
                            "{}: no stdout line showing {what} within {timeout:?}\n{}",
                            self.name,
                            self.output_so_far()
                        );
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().map(|c| c.wait());
                    self.join_readers();
                    panic!(
                        "{}: exited ({status:?}) before showing {what}\n{}",
                        self.name,
                        self.output_so_far()
                    );
                }
            }
        }
    }

    /// The most recent stdout line already received, without waiting (None if none arrived since
    /// the last call).
    pub(crate) fn latest_line(&mut self) -> Option<String> {
        let mut latest = None;
        while let Ok(line) = self.lines.try_recv() {
            latest = Some(line);
        }
        latest
    }

    fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Waits for the script to exit; panics with its output unless it exits 0 within `timeout`
    /// and printed a line starting with `OK`.
    pub(crate) fn finish(mut self, timeout: Duration) -> ScriptOutput {
        let Some(mut child) = self.child.take() else {
            panic!("{}: already finished", self.name);
        };
        let deadline = self.started + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.join_readers();
                    panic!(
                        "{}: still running after {timeout:?}, killed it\n{}",
                        self.name,
                        self.output_so_far()
                    );
                }
                Ok(None) => thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("{}: cannot wait: {e}", self.name),
            }
        };
        self.join_readers();
        let output = ScriptOutput {
            stdout: self.stdout.lock().map(|s| s.clone()).unwrap_or_default(),
            stderr: self.stderr.lock().map(|s| s.clone()).unwrap_or_default(),
        };
        assert!(
            status.success(),
            "{} failed ({status}) after {:.1}s\n{}",
            self.name,
            self.started.elapsed().as_secs_f64(),
            self.output_so_far()
        );
        assert!(
            output.stdout.lines().any(|l| l.starts_with("OK")),
            "{} exited 0 but never printed its OK line\n{}",
            self.name,
            self.output_so_far()
        );
        // Keep the script's own report in the test output (nextest shows it on failure or with
        // --no-capture).
        eprintln!("{}", self.output_so_far());
        output
    }
}

impl Drop for RunningScript {
    fn drop(&mut self) {
        self.kill();
    }
}

fn push_line(buffer: &Mutex<String>, line: &str) {
    if let Ok(mut s) = buffer.lock() {
        s.push_str(line);
        s.push('\n');
    }
}

fn last_chars(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs a script to completion: it must exit 0 within `timeout` and print an `OK` line.
pub(crate) fn run_script(name: &str, cmd: Command, timeout: Duration) -> ScriptOutput {
    RunningScript::spawn(name, cmd).finish(timeout)
}

// ------------------------------------------------------------------------------------------------
// Records in common.py's format, for tests where a Rust-side client writes what a script checks

/// `common.py`'s `key_of(i, 17)`.
pub(crate) fn interop_key(i: u64) -> String {
    format!("key-{:05}", i % 17)
}

/// `common.py`'s `value_of(i, 17)`.
pub(crate) fn interop_value(i: u64) -> String {
    let filler = format!("{:08x}", (i * 2_654_435_761) & 0xFFFF_FFFF).repeat(8);
    format!("{i}|{}|{}|{filler}", interop_key(i), i / 17)
}
