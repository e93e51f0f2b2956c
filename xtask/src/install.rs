//! Installs the real Kafka clients the interop tests drive, idempotently: each installer first
//! checks whether the pinned version is already there and skips if so, so a second run costs a
//! few process starts. Everything lives under cargo's target directory except kcat (a Debian
//! package), so a clean clone (CI) installs everything by itself.
//!
//! The test process learns where things are from these variables (the harness in
//! `crates/cli/tests/interop_support` reads them):
//! `FJORD_INTEROP_PYTHON`, `FJORD_INTEROP_NODE`, `FJORD_INTEROP_NODE_MODULES`, `FJORD_INTEROP_KCAT`.
//! The Fjord Connect tests (`crates/cli/tests/connect_postgres.rs`) read `FJORD_PG_BIN`: the
//! directory with PostgreSQL's `initdb`, `pg_ctl` and `postgres` (Debian's `postgresql`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, find_in_path, Workspace};

/// confluent-kafka (librdkafka's Python binding): the newest 2.x release on PyPI when this was
/// pinned (2.16.1). Its manylinux wheel bundles librdkafka 2.16.0, so no compiler or
/// librdkafka-dev is needed, and it is the librdkafka every current confluent-kafka user runs.
/// (kcat from Debian brings the older librdkafka 2.0.2, which covers the pre-2.11.1 compression
/// quirk: it compresses only when the broker advertises Produce v0.)
pub(crate) const CONFLUENT_KAFKA: &str = "2.16.1";

/// kafka-python: the newest 2.x release (2.3.3). The 2.x line is the one most projects pin; it
/// speaks only older, non-flexible protocol versions (Metadata <= 7, Produce <= 8, Fetch <= 11) and
/// infers the broker version from ApiVersions ranges, so it is the strictest of the Python clients.
/// kafka-python 3.x (idempotent, acks=all by default) can be added beside it later.
pub(crate) const KAFKA_PYTHON: &str = "2.3.3";

/// KafkaJS: 2.2.4 is its last release (no source changes since Feb 2023) and still widely used;
/// it never uses flexible versions.
pub(crate) const KAFKAJS: &str = "2.2.4";

/// What the installers produced: variables for the test process, and what went wrong.
#[derive(Default)]
pub(crate) struct Installed {
    /// Environment variables to export to the interop tests.
    pub(crate) env: Vec<(&'static str, PathBuf)>,
    /// One message per installer that failed.
    pub(crate) failures: Vec<String>,
}

impl Installed {
    pub(crate) fn result(&self) -> Result<(), String> {
        if self.failures.is_empty() {
            Ok(())
        } else {
            Err(format!("install failed: {}", self.failures.join("; ")))
        }
    }
}

/// Runs every installer (each one even if an earlier one failed).
pub(crate) fn install_all(ws: &Workspace) -> Installed {
    let mut apt = Apt::default();
    let mut installed = Installed::default();
    let base = ws.target_dir.join("interop");

    match ensure_kcat(&mut apt) {
        Ok(kcat) => installed.env.push(("FJORD_INTEROP_KCAT", kcat)),
        Err(e) => installed.failures.push(format!("kcat: {e}")),
    }
    match ensure_venv(&mut apt, &base.join("venv")) {
        Ok(python) => installed.env.push(("FJORD_INTEROP_PYTHON", python)),
        Err(e) => installed.failures.push(format!("python venv: {e}")),
    }
    match ensure_kafkajs(&mut apt, &base.join("node")) {
        Ok((node, modules)) => {
            installed.env.push(("FJORD_INTEROP_NODE", node));
            installed.env.push(("FJORD_INTEROP_NODE_MODULES", modules));
        }
        Err(e) => installed.failures.push(format!("kafkajs: {e}")),
    }
    match ensure_postgres(&mut apt) {
        Ok(bin) => installed.env.push(("FJORD_PG_BIN", bin)),
        Err(e) => installed.failures.push(format!("postgresql: {e}")),
    }
    for failure in &installed.failures {
        eprintln!("install: FAILED {failure}");
    }
    installed
}

fn log(what: &str, message: &str) {
    println!("install: {what}: {message}");
}

// ---------------------------------------------------------------------------------------------
// Debian packages

/// Installs Debian packages with apt-get, running `apt-get update` at most once per xtask run.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, packages: &[&str]) -> Result<(), String> {
        let use_sudo = needs_sudo().map_err(|why| {
            format!(
                "{why}: run `sudo apt-get update && sudo apt-get install -y {}` and retry",
                packages.join(" ")
            )
        })?;
        if util::find_in_path("apt-get").is_none() {
            return Err(format!(
                "apt-get not found: install {} with your system's package manager",
                packages.join(" ")
            ));
        }
        let apt = |args: &[&str]| {
            let mut cmd = if use_sudo {
                // sudo resets the environment, so pass DEBIAN_FRONTEND through env(1).
                let mut cmd = Command::new("sudo");
                cmd.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
                cmd
            } else {
                let mut cmd = Command::new("apt-get");
                cmd.env("DEBIAN_FRONTEND", "noninteractive");
                cmd
            };
            cmd.args(args);
            cmd
        };
        if !self.updated {
            util::run(&mut apt(&["update"]))?;
            self.updated = true;
        }
        let mut install = apt(&["install", "-y", "--no-install-recommends"]);
        install.args(packages);
        util::run(&mut install)
    }
}

/// `false` when we are root, `true` when password-less sudo works, else why we cannot install.
fn needs_sudo() -> Result<bool, String> {
    let uid = util::output(Command::new("id").arg("-u"))
        .map_err(|e| format!("cannot tell the user id: {e}"))?;
    if uid.trim() == "0" {
        return Ok(false);
    }
    let sudo_works = find_in_path("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if sudo_works {
        Ok(true)
    } else {
        Err("not root and no password-less sudo".into())
    }
}

// ---------------------------------------------------------------------------------------------
// kcat

fn ensure_kcat(apt: &mut Apt) -> Result<PathBuf, String> {
    if let Some((path, version)) = working_kcat() {
        log(
            "kcat",
            &format!("{} works ({version}), skipping", path.display()),
        );
        return Ok(path);
    }
    log("kcat", "not found, installing the Debian package");
    apt.install(&["kcat"])?;
    let (path, version) = working_kcat().ok_or("`kcat -V` still fails after apt-get install")?;
    log("kcat", &format!("installed {} ({version})", path.display()));
    Ok(path)
}

/// kcat's path and version line when `kcat -V` works.
fn working_kcat() -> Option<(PathBuf, String)> {
    let path = find_in_path("kcat")?;
    let out = Command::new(&path).arg("-V").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find(|l| l.starts_with("Version"))
        .unwrap_or("version unknown")
        .to_owned();
    Some((path, version))
}

// ---------------------------------------------------------------------------------------------
// Python virtualenv with confluent-kafka and kafka-python

/// Imports both clients (so a broken install is noticed) and prints their distribution versions.
const PYTHON_PROBE: &str =
    "import confluent_kafka, kafka; from importlib.metadata import version; \
     print(version('confluent-kafka'), version('kafka-python'))";

fn ensure_venv(apt: &mut Apt, venv: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin").join("python");
    let wanted = format!("{CONFLUENT_KAFKA} {KAFKA_PYTHON}");
    let found = probe_python(&python);
    if found.as_deref() == Some(wanted.as_str()) {
        log(
            "python",
            &format!(
                "{} has confluent-kafka {CONFLUENT_KAFKA} and kafka-python {KAFKA_PYTHON}, skipping",
                venv.display()
            ),
        );
        return Ok(python);
    }
    let python_runs = Command::new(&python)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !python_runs {
        if venv.exists() {
            log(
                "python",
                &format!("{} is broken, recreating it", venv.display()),
            );
            std::fs::remove_dir_all(venv)
                .map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
        }
        create_venv(apt, venv)?;
    }
    log(
        "python",
        &format!("installing confluent-kafka=={CONFLUENT_KAFKA} kafka-python=={KAFKA_PYTHON}"),
    );
    util::run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        &format!("confluent-kafka=={CONFLUENT_KAFKA}"),
        &format!("kafka-python=={KAFKA_PYTHON}"),
    ]))?;
    match probe_python(&python) {
        Some(v) if v == wanted => {
            log("python", &format!("installed into {}", venv.display()));
            Ok(python)
        }
        other => Err(format!(
            "after pip install, the venv reports {other:?} instead of {wanted:?}"
        )),
    }
}

/// "<confluent-kafka version> <kafka-python version>" when both import.
fn probe_python(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", PYTHON_PROBE])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn create_venv(apt: &mut Apt, venv: &Path) -> Result<(), String> {
    let system_python = match find_in_path("python3") {
        Some(p) => p,
        None => {
            log(
                "python",
                "python3 not found, installing the Debian packages",
            );
            apt.install(&["python3", "python3-venv"])?;
            find_in_path("python3").ok_or("python3 still missing after apt-get install")?
        }
    };
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut make = Command::new(&system_python);
    make.arg("-m").arg("venv").arg(venv);
    if util::run(&mut make).is_ok() {
        return Ok(());
    }
    // Debian's python3 ships without ensurepip until python3-venv is installed.
    log(
        "python",
        "`python3 -m venv` failed, installing python3-venv and retrying",
    );
    let _ = std::fs::remove_dir_all(venv);
    apt.install(&["python3-venv"])?;
    util::run(&mut make)
}

// ---------------------------------------------------------------------------------------------
// KafkaJS

/// Returns (node binary, node_modules directory holding kafkajs).
fn ensure_kafkajs(apt: &mut Apt, prefix: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (node, npm) = match (find_in_path("node"), find_in_path("npm")) {
        (Some(node), Some(npm)) => (node, npm),
        _ => {
            log(
                "node",
                "node or npm not found, installing the Debian packages",
            );
            apt.install(&["nodejs", "npm"])?;
            (
                find_in_path("node").ok_or("node still missing after apt-get install")?,
                find_in_path("npm").ok_or("npm still missing after apt-get install")?,
            )
        }
    };
    let modules = prefix.join("node_modules");
    let manifest = modules.join("kafkajs").join("package.json");
    if package_version(&manifest).as_deref() == Some(KAFKAJS) {
        log(
            "kafkajs",
            &format!("{KAFKAJS} present in {}, skipping", modules.display()),
        );
        return Ok((node, modules));
    }
    std::fs::create_dir_all(prefix)
        .map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    let mut cmd = Command::new(npm);
    cmd.arg("install").arg("--prefix").arg(prefix).args([
        "--no-audit",
        "--no-fund",
        "--save-exact",
        &format!("kafkajs@{KAFKAJS}"),
    ]);
    util::run(&mut cmd)?;
    match package_version(&manifest) {
        Some(v) if v == KAFKAJS => {
            log(
                "kafkajs",
                &format!("installed {KAFKAJS} into {}", modules.display()),
            );
            Ok((node, modules))
        }
        other => Err(format!(
            "after npm install, {} has version {other:?}",
            manifest.display()
        )),
    }
}

/// The `version` field of an npm package.json.
fn package_version(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["version"].as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL server binaries (for the Fjord Connect PostgreSQL connector tests)

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, `pg_ctl` and `postgres`.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| bin.join(b).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn ensure_postgres(apt: &mut Apt) -> Result<PathBuf, String> {
    if let Some(bin) = postgres_bin_dir() {
        log(
            "postgresql",
            &format!("{} present, skipping", bin.display()),
        );
        return Ok(bin);
    }
    // The tests start throwaway servers of their own (initdb + pg_ctl in a temporary
    // directory, on a free loopback port); the package's own cluster is not used.
    log("postgresql", "not found, installing the Debian package");
    apt.install(&["postgresql"])?;
    let bin = postgres_bin_dir().ok_or(
        "no /usr/lib/postgresql/*/bin with initdb, pg_ctl and postgres after apt-get install",
    )?;
    log("postgresql", &format!("installed {}", bin.display()));
    Ok(bin)
}
