//! `cargo xtask`: the one entry point for Fjord's project chores (DESIGN.md §9).
//!
//! | command | what it does |
//! |---|---|
//! | `cargo xtask test [NEXTEST ARGS]` | the whole suite, as CI runs it: `layers`, `install`, nextest over the whole workspace *including* the ignored interop tests, doc tests, and every criterion bench once in test mode |
//! | `cargo xtask interop [NEXTEST ARGS]` | `install`, then only the interop test binaries (`crates/cli/tests/interop*.rs`) |
//! | `cargo xtask install` | only the installs: kcat and PostgreSQL (Debian), a Python virtualenv with confluent-kafka and kafka-python, KafkaJS (npm) |
//! | `cargo xtask layers` | checks the dependency edges between `fjord-*` crates against DESIGN.md §2 |
//! | `cargo xtask bench [clients]` | end-to-end load runs against a release broker; `clients`: only fjord-client beside librdkafka |
//! | `cargo xtask fuzz [SECONDS]` | the fuzz targets in `fuzz/` |
//!
//! Every cargo invocation passes `--workspace`, so feature unification is the same for all of them
//! and nothing is built twice. Extra arguments after `test`/`interop` go to `cargo nextest run`, e.g.
//! `cargo xtask interop kcat` runs only the interop tests whose name contains `kcat`.

mod bench;
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
  install                 install kcat, PostgreSQL, the Python venv (confluent-kafka, kafka-python), KafkaJS
  layers                  check the crate dependency edges of DESIGN.md section 2
  bench [clients]         end-to-end load runs (rdkafka_performance vs a release broker, then fjord perf
                          beside rdkafka_performance); updates docs/benchmarks.md. `clients`: only the latter
  fuzz [SECONDS]          run every cargo-fuzz target for SECONDS (default 60) each, installing cargo-fuzz if needed
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
        Some("bench") => cmd_bench(&rest),
        Some("fuzz") => cmd_fuzz(&rest),
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

/// The cargo-fuzz targets in `fuzz/` (a separate workspace: it is never part of the normal build).
const FUZZ_TARGETS: &[&str] = &["request_decoder", "batch_validator"];

fn cmd_fuzz(rest: &[String]) -> Result<(), String> {
    let seconds: u64 = match rest {
        [] => 60,
        [s] => s
            .parse()
            .map_err(|_| format!("`fuzz` takes a number of seconds, got {s:?}"))?,
        _ => return Err(format!("`fuzz` takes at most one argument, got {rest:?}")),
    };
    let ws = Workspace::load()?;
    if util::output(Command::new(cargo()).args(["fuzz", "--version"])).is_err() {
        util::run(Command::new(cargo()).args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for target in FUZZ_TARGETS {
        // Stable toolchain: no sanitizer, coverage-guided libFuzzer only.
        util::run(
            Command::new(cargo())
                .args(["fuzz", "run", target, "--sanitizer", "none", "--"])
                .arg(format!("-max_total_time={seconds}"))
                .current_dir(ws.root.join("fuzz")),
        )?;
    }
    Ok(())
}

fn no_args(command: &str, rest: &[String]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("`{command}` takes no arguments, got {rest:?}"))
    }
}

fn cmd_bench(rest: &[String]) -> Result<(), String> {
    let part = match rest {
        [] => bench::Part::All,
        [part] if part == "clients" => bench::Part::Clients,
        _ => return Err(format!("`bench` takes nothing or `clients`, got {rest:?}")),
    };
    bench::run(&Workspace::load()?, part)
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
    let mut cmd = nextest_command(&ws, &restrict_to_interop(nextest_args));
    cmd.envs(installed.env.iter().map(|(k, v)| (k, v)));
    util::run(&mut cmd)
}

/// nextest unions several `-E` filtersets, so a user's `-E` is intersected with
/// [`INTEROP_FILTER`] here; without one, the interop filter is added. Positional name filters
/// already intersect with filtersets.
fn restrict_to_interop(args: &[String]) -> Vec<String> {
    let restrict = |expr: &str| format!("({expr}) & ({INTEROP_FILTER})");
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut found = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-E" || arg == "--filterset" || arg == "--filter-expr" {
            out.push(arg.clone());
            if let Some(expr) = iter.next() {
                out.push(restrict(expr));
                found = true;
            }
        } else if let Some((flag, expr)) = ["-E", "--filterset=", "--filter-expr="]
            .iter()
            .find_map(|flag| arg.strip_prefix(flag).map(|expr| (flag, expr)))
        {
            let expr = expr.strip_prefix('=').unwrap_or(expr);
            out.push(flag.trim_end_matches('=').to_owned());
            out.push(restrict(expr));
            found = true;
        } else {
            out.push(arg.clone());
        }
    }
    if !found {
        out.push("-E".to_owned());
        out.push(INTEROP_FILTER.to_owned());
    }
    out
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

/// `cargo nextest run --workspace --run-ignored all --no-fail-fast [extra args]`, with
/// `xtask/nextest.toml` (interop scheduling and time limits) as a tool config file.
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
    let tool_config = ws.root.join("xtask").join("nextest.toml");
    cmd.arg("--tool-config-file")
        .arg(format!("xtask:{}", tool_config.display()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn interop_filter_is_added_or_intersected() {
        assert_eq!(
            restrict_to_interop(&strings(&["kcat"])),
            strings(&["kcat", "-E", INTEROP_FILTER])
        );
        let want = format!("(test(kcat)) & ({INTEROP_FILTER})");
        for args in [
            &["-E", "test(kcat)"][..],
            &["-Etest(kcat)"][..],
            &["-E=test(kcat)"][..],
            &["--filterset", "test(kcat)"][..],
        ] {
            let out = restrict_to_interop(&strings(args));
            assert_eq!(out.len(), 2, "{args:?} -> {out:?}");
            assert_eq!(out[1], want, "{args:?}");
        }
        let out = restrict_to_interop(&strings(&["--filterset=test(kcat)", "--no-capture"]));
        assert_eq!(out, strings(&["--filterset", &want, "--no-capture"]));
    }
}
