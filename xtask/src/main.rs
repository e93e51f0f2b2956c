//! `cargo xtask`: the one entry point for Fjord's project chores (DESIGN.md §9).
//!
//! | command | what it does |
//! |---|---|
//! | `cargo xtask test [NEXTEST ARGS]` | the whole suite, as CI runs it: `layers`, `install`, nextest over the whole workspace *including* the ignored interop tests, doc tests, and every criterion bench once in test mode |
//! | `cargo xtask interop [NEXTEST ARGS]` | `install`, then only the interop test binaries (`crates/cli/tests/interop*.rs`) |
//! | `cargo xtask install` | only the installs: kcat (Debian), a Python virtualenv with confluent-kafka and kafka-python, KafkaJS (npm) |
//! | `cargo xtask layers` | checks the dependency edges between `fjord-*` crates against DESIGN.md §2 |
//!
//! Every cargo invocation passes `--workspace`, so feature unification is the same for all of them
//! and nothing is built twice. Extra arguments after `test`/`interop` go to `cargo nextest run`, e.g.
//! `cargo xtask interop kcat` runs only the interop tests whose name contains `kcat`.

mod install;
mod layers;
mod util;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use util::{cargo, Workspace};

/// The nextest filterset that selects the interop test binaries (`interop`, `interop_groups`, ...).
const INTEROP_FILTER: &str = "kind(test) & binary(/^interop/)";

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  test [NEXTEST ARGS]     layers + install + every test (nextest incl. interop, doc tests, benches in test mode)
  interop [NEXTEST ARGS]  install + only the interop tests against real Kafka clients
  install                 install kcat, the Python venv (confluent-kafka, kafka-python) and KafkaJS
  layers                  check the crate dependency edges of DESIGN.md section 2
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => cmd_test(&rest),
        Some("interop") => cmd_interop(&rest),
        Some("install") => no_args("install", &rest).and_then(|()| cmd_install()),
        Some("layers") => no_args("layers", &rest).and_then(|()| cmd_layers()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("`{command}` takes no arguments, got {rest:?}"))
    }
}

fn cmd_layers() -> Result<(), String> {
    let ws = Workspace::load()?;
    layers::run(&ws)
}

fn cmd_install() -> Result<(), String> {
    let ws = Workspace::load()?;
    let installed = install::install_all(&ws);
    println!("\nTo run the interop tests by hand (`cargo xtask interop` sets these for you):");
    for (key, value) in &installed.env {
        println!("  export {key}={}", value.display());
    }
    installed.result()
}

fn cmd_interop(nextest_args: &[String]) -> Result<(), String> {
    let ws = Workspace::load()?;
    ensure_nextest()?;
    let installed = install::install_all(&ws);
    installed.result()?;
    let mut cmd = nextest_command(&ws, nextest_args);
    cmd.args(["-E", INTEROP_FILTER]);
    cmd.envs(installed.env.iter().map(|(k, v)| (k, v)));
    util::run(&mut cmd)
}

/// One step of `cargo xtask test`, remembered for the summary.
struct Step {
    name: &'static str,
    elapsed: Duration,
    outcome: Result<(), String>,
}

fn cmd_test(nextest_args: &[String]) -> Result<(), String> {
    let ws = Workspace::load()?;
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut() -> Result<(), String>| {
        println!("\n==> xtask test: {name}");
        let start = Instant::now();
        let outcome = f();
        if let Err(e) = &outcome {
            eprintln!("==> xtask test: {name} FAILED: {e}");
        }
        steps.push(Step {
            name,
            elapsed: start.elapsed(),
            outcome,
        });
    };

    step("layers", &mut || layers::run(&ws));
    step("nextest available", &mut ensure_nextest);
    let mut installed = install::Installed::default();
    step("install interop clients", &mut || {
        installed = install::install_all(&ws);
        installed.result()
    });
    // Even when an install failed, run the tests: everything else still gets checked, and each
    // interop test fails with a message naming the missing client.
    step(
        "nextest (workspace, incl. ignored interop tests)",
        &mut || {
            let mut cmd = nextest_command(&ws, nextest_args);
            cmd.envs(installed.env.iter().map(|(k, v)| (k, v)));
            util::run(&mut cmd)
        },
    );
    step("doc tests", &mut || {
        util::run(Command::new(cargo()).args(["test", "--workspace", "--doc"]))
    });
    step("benches in test mode", &mut || {
        if !ws.has_bench_targets() {
            println!("no bench targets in the workspace: nothing to do");
            return Ok(());
        }
        // `--bench '*'` selects exactly the bench targets; `--benches` would also re-run every
        // library's unit tests (libraries have `bench = true`), which nextest already ran.
        util::run(Command::new(cargo()).args(["test", "--workspace", "--bench", "*"]))
    });

    println!("\n==> xtask test summary");
    let mut failed = Vec::new();
    for s in &steps {
        let status = if s.outcome.is_ok() {
            "ok    "
        } else {
            "FAILED"
        };
        println!(
            "  {status} {:<50} {:>7.1}s",
            s.name,
            s.elapsed.as_secs_f64()
        );
        if s.outcome.is_err() {
            failed.push(s.name);
        }
    }
    if failed.is_empty() {
        println!("==> xtask test: all {} steps succeeded", steps.len());
        Ok(())
    } else {
        Err(format!(
            "{} of {} steps failed: {}",
            failed.len(),
            steps.len(),
            failed.join(", ")
        ))
    }
}

/// `cargo nextest run --workspace --run-ignored all --no-fail-fast [extra args]`.
fn nextest_command(ws: &Workspace, extra: &[String]) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&ws.root).args([
        "nextest",
        "run",
        "--workspace",
        "--run-ignored",
        "all",
        "--no-fail-fast",
    ]);
    cmd.args(extra);
    cmd
}

/// Installs cargo-nextest when `cargo nextest` is missing (it is preinstalled on the project's machines).
fn ensure_nextest() -> Result<(), String> {
    let present = Command::new(cargo())
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if present {
        println!("cargo-nextest: present, skipping install");
        return Ok(());
    }
    println!("cargo-nextest: missing, installing it from crates.io");
    util::run(Command::new(cargo()).args(["install", "cargo-nextest", "--locked"]))
}
