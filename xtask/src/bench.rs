//! `cargo xtask bench`: end-to-end load runs against a real `fjord` process.
//!
//! The load generator is librdkafka's own `rdkafka_performance`, built from the librdkafka
//! sources that ship inside the crates.io package `rdkafka-sys` (no other download). The
//! broker is the release build with its data on disk. Results (throughput, broker CPU per
//! million records, end-to-end latency percentiles) are printed and written into
//! `docs/benchmarks.md` between the `bench:begin`/`bench:end` markers, with the commands that
//! produced them.
//!
//! A second part runs `fjord perf produce|consume|e2e` (fjord-client) beside
//! `rdkafka_performance` against the same broker in the same run, with the same record size,
//! acks, linger and batch size, and reports both and their ratio.

use crate::util::{self, cargo, Workspace};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `rdkafka-sys` release whose bundled librdkafka we build (librdkafka 2.12.1).
const RDKAFKA_SYS: &str = "4.10.0";
const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";
const CLIENTS_BEGIN: &str = "<!-- bench:clients:begin -->";
const CLIENTS_END: &str = "<!-- bench:clients:end -->";

/// Which runs `cargo xtask bench` makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The broker under librdkafka's load, then fjord-client against librdkafka.
    All,
    /// Only fjord-client against librdkafka (`cargo xtask bench clients`).
    Clients,
}

struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn cpu_seconds(&self) -> f64 {
        // utime and stime: fields 14 and 15 of /proc/PID/stat.
        proc_stat_seconds(&format!("/proc/{}/stat", self.child.id()), 14)
    }
}

/// The sum of fields `first` and `first + 1` (1-based, as proc(5) numbers them) of a
/// /proc/PID/stat file, clock ticks converted to seconds; 0 when unreadable.
fn proc_stat_seconds(path: &str, first: usize) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (field 2, in parentheses, may contain spaces) start at 3.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| {
        fields
            .get(field - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(first) + ticks(first + 1)) / clock_ticks()
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    util::output(Command::new("getconf").arg("CLK_TCK"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn start_broker(fjord: &Path, data: &Path) -> Result<Broker, String> {
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(data.with_extension("log")).map_err(|e| e.to_string())?;
    let child = Command::new(fjord)
        .args([
            "broker",
            "--override",
            &format!("listeners=PLAINTEXT://{address}"),
        ])
        .args(["--override", &format!("log.dirs={}", data.display())])
        .env("FJORD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", fjord.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        if Instant::now() > deadline {
            return Err("broker did not start listening within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Broker { child, address })
}

/// Builds `rdkafka_performance` from the librdkafka bundled in `rdkafka-sys`.
fn rdkafka_performance(ws: &Workspace) -> Result<PathBuf, String> {
    let base = ws.target_dir.join("bench");
    let tool = base.join("librdkafka/examples/rdkafka_performance");
    if tool.exists() {
        return Ok(tool);
    }
    let fetch = base.join("fetch-rdkafka-sys");
    std::fs::create_dir_all(fetch.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(
        fetch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fetch-rdkafka-sys\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nrdkafka-sys = \"={RDKAFKA_SYS}\"\n\n[workspace]\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(fetch.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    let metadata = util::output(
        Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(fetch.join("Cargo.toml")),
    )?;
    let doc: serde_json::Value = serde_json::from_str(&metadata).map_err(|e| e.to_string())?;
    let manifest = doc["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "rdkafka-sys"))
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("rdkafka-sys not found in cargo metadata")?;
    let source = Path::new(manifest)
        .parent()
        .ok_or("bad manifest path")?
        .join("librdkafka");
    let build = base.join("librdkafka");
    let _ = std::fs::remove_dir_all(&build);
    util::run(Command::new("cp").arg("-r").arg(&source).arg(&build))?;
    util::run(
        Command::new("./configure")
            .args([
                "--disable-ssl",
                "--disable-sasl",
                "--disable-gssapi",
                "--disable-curl",
                "--disable-zstd",
                "--disable-lz4-ext",
            ])
            .current_dir(&build),
    )?;
    util::run(
        Command::new("make")
            .args(["-j2", "libs"])
            .current_dir(&build),
    )?;
    util::run(
        Command::new("make")
            .args(["-C", "examples", "rdkafka_performance"])
            .current_dir(&build),
    )?;
    Ok(tool)
}

/// The last summary line of rdkafka_performance: "... in Nms: X msgs/s and Y MB/s ..." when
/// producing, "... in Nms: X msgs/s (Y MB/s)" when consuming.
fn parse_rate(output: &str) -> Option<(f64, f64)> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains(" msgs/s") && l.contains("ms: "))?;
    let after = line.split("ms: ").nth(1)?;
    let msgs = after.split(" msgs/s").next()?.trim().parse().ok()?;
    let rest = after.split(" msgs/s").nth(1)?;
    let mb = rest
        .trim_start_matches(" and ")
        .trim_start_matches(" (")
        .split(" MB/s")
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some((msgs, mb))
}

struct Row {
    name: String,
    command: String,
    records_per_s: f64,
    mb_per_s: f64,
    cpu_per_million: Option<f64>,
}

fn perf(
    tool: &Path,
    broker: &Broker,
    name: &str,
    args: &[&str],
    count: u64,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let mut cmd = Command::new(tool);
    cmd.args(["-b", &broker.address])
        .args(args)
        .args(["-c", &count.to_string()]);
    let shown = util::display(&cmd)
        .replace(&broker.address, "$BROKER")
        .replace(&tool.display().to_string(), "rdkafka_performance");
    println!("$ {shown}");
    let cpu_before = broker.cpu_seconds();
    let output = util::output(&mut cmd)?;
    let cpu = broker.cpu_seconds() - cpu_before;
    let (records_per_s, mb_per_s) =
        parse_rate(&output).ok_or_else(|| format!("no rate in output of {name}:\n{output}"))?;
    println!("  {name}: {records_per_s:.0} records/s, {mb_per_s:.1} MB/s, broker CPU {cpu:.2} s");
    let producing = args.contains(&"-P");
    rows.push(Row {
        name: name.to_string(),
        command: shown,
        records_per_s,
        mb_per_s,
        cpu_per_million: producing.then(|| cpu / (count as f64 / 1e6)),
    });
    Ok(())
}

struct Latency {
    name: String,
    command: String,
    samples: usize,
    percentiles: Vec<(f64, f64)>,
}

fn latency(
    tool: &Path,
    broker: &Broker,
    ws: &Workspace,
    name: &str,
    topic: &str,
    linger: &str,
) -> Result<Latency, String> {
    let samples_file = ws
        .target_dir
        .join("bench")
        .join(format!("latency-{topic}.txt"));
    let _ = std::fs::remove_file(&samples_file);
    let count = "10000";
    // Create the topic first so the consumer starts at its end.
    util::output(Command::new(tool).args([
        "-P",
        "-t",
        topic,
        "-p",
        "0",
        "-s",
        "100",
        "-c",
        "1",
        "-b",
        &broker.address,
    ]))?;
    let mut consumer = Command::new(tool)
        .args(["-C", "-t", topic, "-p", "0", "-o", "end", "-l", "-A"])
        .arg(&samples_file)
        .args(["-c", count, "-b", &broker.address])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(2));
    let mut producer = Command::new(tool);
    producer
        .args([
            "-P", "-t", topic, "-p", "0", "-s", "100", "-l", "-r", "1000", "-c", count, "-X",
        ])
        .arg(format!("linger.ms={linger}"))
        .args(["-b", &broker.address]);
    let shown = util::display(&producer)
        .replace(&broker.address, "$BROKER")
        .replace(&tool.display().to_string(), "rdkafka_performance");
    println!("$ {shown}");
    util::output(&mut producer)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = consumer.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&samples_file).map_err(|e| e.to_string())?;
    let mut micros: Vec<f64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    micros.sort_by(|a, b| a.total_cmp(b));
    if micros.is_empty() {
        return Err(format!("{name}: no latency samples"));
    }
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] / 1000.0;
    let percentiles = vec![
        (50.0, at(0.50)),
        (95.0, at(0.95)),
        (99.0, at(0.99)),
        (99.9, at(0.999)),
        (100.0, at(1.0)),
    ];
    println!(
        "  {name}: {} samples, p50 {:.2} ms, p99 {:.2} ms",
        micros.len(),
        at(0.5),
        at(0.99)
    );
    Ok(Latency {
        name: name.to_string(),
        command: format!("consumer: rdkafka_performance -C -t {topic} -p 0 -o end -l -A samples.txt; producer: {shown}"),
        samples: micros.len(),
        percentiles,
    })
}

/// One fjord-client vs librdkafka comparison: the same load through both clients.
struct Comparison {
    name: String,
    fjord: Measured,
    librdkafka: Measured,
    /// Every run's records/s, slowest first.
    fjord_runs: String,
    librdkafka_runs: String,
}

struct Measured {
    command: String,
    records_per_s: f64,
    mb_per_s: f64,
    /// The client process's CPU (user + system) per million records.
    cpu_per_million: f64,
}

/// CPU seconds (user + system) used by this process's finished, waited-for children
/// (`cutime` and `cstime` of /proc/self/stat). Unlike records/s, it hardly moves when other
/// work competes for the cores, so it compares the clients' efficiency on a busy machine.
fn children_cpu_seconds() -> f64 {
    // cutime and cstime: fields 16 and 17 of /proc/PID/stat.
    proc_stat_seconds("/proc/self/stat", 16)
}

/// `fjord perf produce`: "N records sent, X records/sec (Y MB/sec), ..."; `fjord perf consume`:
/// a CSV header and "MB, MB.sec, nMsg, nMsg.sec, elapsed". Returns records/s.
fn parse_fjord_rate(output: &str) -> Option<f64> {
    if let Some(line) = output.lines().find(|l| l.contains(" records sent, ")) {
        let after = line.split(" records sent, ").nth(1)?;
        return after.split(" records/sec").next()?.trim().parse().ok();
    }
    let line = output
        .lines()
        .skip_while(|l| !l.starts_with("data.consumed.in.MB"))
        .nth(1)?;
    line.split(',').nth(3)?.trim().parse().ok()
}

/// How many times each side of a comparison runs; the median counts. Five, because on this
/// kind of VM a run now and then lands on memory the host has to fault in again (freed pages
/// are handed back to it), which can cost it two thirds of its rate: two such runs on one side
/// must not decide the median.
const ROUNDS: usize = 5;

/// The same load through `fjord perf` and through `rdkafka_performance`, [`ROUNDS`] times each
/// in the order A B B A A B ... (so that drift in the machine's load hits both sides alike);
/// the median run of each side is reported. `fresh_topic`, when given, runs before every run
/// (produce runs start on an empty topic). Consume runs read a topic written beforehand.
#[allow(clippy::too_many_arguments)]
fn compare(
    fjord: &Path,
    tool: &Path,
    broker: &Broker,
    name: &str,
    fjord_args: &[&str],
    rdkafka_args: &[&str],
    count: u64,
    record_size: u64,
    fresh_topic: Option<&dyn Fn() -> Result<(), String>>,
) -> Result<Comparison, String> {
    let measure = |program: &Path, args: &[&str], shown_name: &str, is_fjord: bool| {
        if let Some(fresh) = fresh_topic {
            fresh()?;
        }
        let mut cmd = Command::new(program);
        if is_fjord {
            cmd.args(args)
                .args(["--bootstrap-server", &broker.address])
                .args(["--num-records", &count.to_string()])
                .env("FJORD_LOG", "warn");
        } else {
            cmd.args(["-b", &broker.address])
                .args(args)
                .args(["-c", &count.to_string()]);
        }
        let shown = util::display(&cmd)
            .replace(&broker.address, "$BROKER")
            .replace(&program.display().to_string(), shown_name);
        println!("$ {shown}");
        let cpu_before = children_cpu_seconds();
        let out = cmd
            .output()
            .map_err(|e| format!("could not start `{shown}`: {e}"))?;
        let cpu = children_cpu_seconds() - cpu_before;
        let output = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "`{shown}` failed ({}):\n{}\n{}",
                out.status,
                output.lines().rev().take(20).collect::<Vec<_>>().join("\n"),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let records_per_s = if is_fjord {
            parse_fjord_rate(&output)
        } else {
            parse_rate(&output).map(|(r, _)| r)
        }
        .ok_or_else(|| format!("no rate in the output of {shown}:\n{output}"))?;
        Ok::<_, String>(Measured {
            command: shown,
            records_per_s,
            mb_per_s: records_per_s * record_size as f64 / 1e6,
            cpu_per_million: cpu / (count as f64 / 1e6),
        })
    };
    let (mut fjord_runs, mut librdkafka_runs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let fjord_first = round % 2 == 0;
        for fjord_turn in [fjord_first, !fjord_first] {
            if fjord_turn {
                fjord_runs.push(measure(fjord, fjord_args, "fjord", true)?);
            } else {
                librdkafka_runs.push(measure(tool, rdkafka_args, "rdkafka_performance", false)?);
            }
        }
    }
    // The median run by records/s, carrying the median CPU of all runs.
    let median = |mut runs: Vec<Measured>| {
        let mut cpus: Vec<f64> = runs.iter().map(|r| r.cpu_per_million).collect();
        cpus.sort_by(f64::total_cmp);
        runs.sort_by(|a, b| a.records_per_s.total_cmp(&b.records_per_s));
        let rates: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", r.records_per_s))
            .collect();
        let middle = runs.len() / 2;
        let mut run = runs.swap_remove(middle);
        run.cpu_per_million = cpus[cpus.len() / 2];
        (run, rates.join(", "))
    };
    let (fjord, fjord_rates) = median(fjord_runs);
    let (librdkafka, librdkafka_rates) = median(librdkafka_runs);
    println!("  {name}: fjord-client runs {fjord_rates}; librdkafka runs {librdkafka_rates}");
    println!(
        "  {name}: median fjord-client {:.0} records/s ({:.2} CPU s/M), librdkafka {:.0} records/s ({:.2} CPU s/M), ratio {:.2}",
        fjord.records_per_s,
        fjord.cpu_per_million,
        librdkafka.records_per_s,
        librdkafka.cpu_per_million,
        fjord.records_per_s / librdkafka.records_per_s
    );
    Ok(Comparison {
        name: name.to_string(),
        fjord,
        librdkafka,
        fjord_runs: fjord_rates,
        librdkafka_runs: librdkafka_rates,
    })
}

/// `fjord topics <action> --topic <topic>` (create or delete) against the bench broker.
fn fjord_topics(fjord: &Path, broker: &Broker, action: &str, topic: &str) -> Result<(), String> {
    util::output(Command::new(fjord).args([
        "topics",
        action,
        "--bootstrap-server",
        &broker.address,
        "--topic",
        topic,
    ]))
    .map(drop)
}

/// `fjord perf e2e` at a fixed rate: its summary line.
fn fjord_e2e(fjord: &Path, broker: &Broker, topic: &str) -> Result<(String, String), String> {
    fjord_topics(fjord, broker, "create", topic)?;
    let mut cmd = Command::new(fjord);
    cmd.args(["perf", "e2e", "--topic", topic, "--num-records", "10000"])
        .args(["--record-size", "100", "--throughput", "1000"])
        .args(["--bootstrap-server", &broker.address])
        .env("FJORD_LOG", "warn");
    let shown = util::display(&cmd)
        .replace(&broker.address, "$BROKER")
        .replace(&fjord.display().to_string(), "fjord");
    println!("$ {shown}");
    let output = util::output(&mut cmd)?;
    let line = output
        .lines()
        .find(|l| l.contains("records end to end"))
        .ok_or_else(|| format!("no summary from fjord perf e2e:\n{output}"))?;
    println!("  {line}");
    Ok((shown, line.to_string()))
}

/// fjord-client against librdkafka, same broker, same settings: linger.ms=5 (both clients'
/// default) and batch.size=1000000 (librdkafka's default; the Java client's and fjord-client's
/// default is 16384, which caps 1 KB records at 16 per batch).
fn client_comparisons(
    fjord: &Path,
    tool: &Path,
    broker: &Broker,
) -> Result<Vec<Comparison>, String> {
    let mut out = Vec::new();
    // Runs of a few seconds each, so that connecting and the last flush are a small part.
    for (size, count) in [(100u64, 10_000_000u64), (1024, 2_000_000)] {
        let label = if size == 100 { "100 B" } else { "1 KB" };
        let size_s = size.to_string();
        let count_s = count.to_string();
        for acks in ["1", "all"] {
            // Every produce run, of either client, starts on an empty topic of the same name:
            // the previous run's data is deleted first, so memory (tmpfs) stays bounded and
            // both clients append to a log of the same shape.
            let topic = format!("cmp-{size}-{acks}");
            let fresh = || {
                let _ = fjord_topics(fjord, broker, "delete", &topic);
                fjord_topics(fjord, broker, "create", &topic)
            };
            let rd_acks = if acks == "all" { "-1" } else { "1" };
            out.push(compare(
                fjord,
                tool,
                broker,
                &format!("produce {label}, acks={acks}"),
                &[
                    "perf",
                    "produce",
                    "--topic",
                    &topic,
                    "--record-size",
                    &size_s,
                    "--acks",
                    acks,
                    "--producer-props",
                    "linger.ms=5",
                    "batch.size=1000000",
                ],
                &[
                    "-P",
                    "-t",
                    &topic,
                    "-p",
                    "0",
                    "-s",
                    &size_s,
                    "-a",
                    rd_acks,
                    "-X",
                    "linger.ms=5",
                    "-X",
                    "batch.size=1000000",
                ],
                count,
                size,
                Some(&fresh),
            )?);
            fjord_topics(fjord, broker, "delete", &topic)?;
        }
        // Both consumers read the same topic, written once by librdkafka (acks=all).
        let topic = format!("cmp-consume-{size}");
        fjord_topics(fjord, broker, "create", &topic)?;
        util::output(Command::new(tool).args([
            "-P",
            "-t",
            &topic,
            "-p",
            "0",
            "-s",
            &size_s,
            "-a",
            "-1",
            "-X",
            "linger.ms=5",
            "-X",
            "batch.size=1000000",
            "-c",
            &count_s,
            "-b",
            &broker.address,
        ]))?;
        out.push(compare(
            fjord,
            tool,
            broker,
            &format!("consume {label}"),
            &["perf", "consume", "--topic", &topic],
            &["-C", "-t", &topic, "-p", "0", "-o", "beginning"],
            count,
            size,
            None,
        )?);
        fjord_topics(fjord, broker, "delete", &topic)?;
    }
    Ok(out)
}

pub(crate) fn run(ws: &Workspace, part: Part) -> Result<(), String> {
    util::run(
        Command::new(cargo())
            .args(["build", "--release", "-p", "fjord-cli"])
            .current_dir(&ws.root),
    )?;
    let fjord = ws.target_dir.join("release/fjord");
    let tool = rdkafka_performance(ws)?;
    if part == Part::Clients {
        return clients_part(ws, &fjord, &tool);
    }
    let data = ws.target_dir.join("bench").join("data");
    let _ = std::fs::remove_dir_all(&data);
    let broker = start_broker(&fjord, &data)?;
    let mut rows = Vec::new();
    // rdkafka_performance sets linger.ms=1000 for itself; `-X linger.ms=5` restores the
    // librdkafka default so these are "client defaults" runs.
    let defaults = ["-X", "linger.ms=5"];
    perf(
        &tool,
        &broker,
        "produce 100 B, acks=1, client defaults",
        &[
            &["-P", "-t", "p100", "-p", "0", "-s", "100", "-a", "1"][..],
            &defaults,
        ]
        .concat(),
        5_000_000,
        &mut rows,
    )?;
    perf(
        &tool,
        &broker,
        "produce 100 B, acks=1, linger.ms=1000 (rdkafka_performance's own default)",
        &["-P", "-t", "p100b", "-p", "0", "-s", "100", "-a", "1"],
        5_000_000,
        &mut rows,
    )?;
    perf(
        &tool,
        &broker,
        "produce 100 B, acks=all, client defaults",
        &[
            &["-P", "-t", "p100all", "-p", "0", "-s", "100", "-a", "-1"][..],
            &defaults,
        ]
        .concat(),
        5_000_000,
        &mut rows,
    )?;
    perf(
        &tool,
        &broker,
        "produce 1 KB, acks=1, client defaults",
        &[
            &["-P", "-t", "p1k", "-p", "0", "-s", "1024", "-a", "1"][..],
            &defaults,
        ]
        .concat(),
        1_000_000,
        &mut rows,
    )?;
    perf(
        &tool,
        &broker,
        "consume 100 B, client defaults",
        &["-C", "-t", "p100", "-p", "0", "-o", "beginning"],
        5_000_000,
        &mut rows,
    )?;
    perf(
        &tool,
        &broker,
        "consume 1 KB, client defaults",
        &["-C", "-t", "p1k", "-p", "0", "-o", "beginning"],
        1_000_000,
        &mut rows,
    )?;
    let latencies = vec![
        latency(
            &tool,
            &broker,
            ws,
            "produce→consume at 1,000 records/s, client defaults (linger.ms=5)",
            "lat5",
            "5",
        )?,
        latency(
            &tool,
            &broker,
            ws,
            "produce→consume at 1,000 records/s, linger.ms=0",
            "lat0",
            "0",
        )?,
    ];
    drop(broker);
    write_report(ws, &rows, &latencies)?;
    clients_part(ws, &fjord, &tool)
}

/// The client comparison, against a broker of its own whose data lives in memory (tmpfs)
/// where there is one: at several hundred MB/s the page cache's writeback to this machine's
/// virtual disk throttles whichever client happens to be producing, by a factor of up to
/// four from run to run, which would compare the disk's moods instead of the clients.
fn clients_part(ws: &Workspace, fjord: &Path, tool: &Path) -> Result<(), String> {
    let shm = Path::new("/dev/shm");
    let data = if shm.is_dir() {
        shm.join(format!("fjord-bench-{}", std::process::id()))
    } else {
        ws.target_dir.join("bench").join("clients-data")
    };
    let _ = std::fs::remove_dir_all(&data);
    let broker = start_broker(fjord, &data)?;
    let result = client_comparisons(fjord, tool, &broker)
        .and_then(|c| Ok((c, fjord_e2e(fjord, &broker, "e2e-fjord")?)));
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(data.with_extension("log"));
    let (comparisons, e2e) = result?;
    let in_memory = data.starts_with(shm);
    write_clients_report(ws, &comparisons, &e2e, in_memory)
}

/// "Generated by ... on <date> (<cores>, <uname>)."
fn provenance(command: &str) -> String {
    let uname = util::output(Command::new("uname").args(["-srm"])).unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let date =
        util::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    format!(
        "Generated by `{command}` on {} ({cores} cores, {}).",
        date.trim(),
        uname.trim()
    )
}

/// Replaces the text between `begin` and `end` in docs/benchmarks.md (appending the section
/// under `heading` when the markers are missing).
fn splice_report(
    ws: &Workspace,
    begin: &str,
    end: &str,
    heading: &str,
    body: &str,
) -> Result<(), String> {
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let path = ws.root.join("docs/benchmarks.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = match (current.find(begin), current.find(end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!("{}\n\n## {heading}\n\n{section}\n", current.trim_end()),
    };
    std::fs::write(&path, updated).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}

fn write_clients_report(
    ws: &Workspace,
    comparisons: &[Comparison],
    e2e: &(String, String),
    in_memory: bool,
) -> Result<(), String> {
    let mut md = String::new();
    let _ = writeln!(md, "{}", provenance("cargo xtask bench clients"));
    let _ = writeln!(
        md,
        "fjord-client (`fjord perf`) and librdkafka 2.12.1 (`rdkafka_performance`) against the same release broker ({}) in the same run, each load {ROUNDS} times per client (interleaved A B B A A B ...) with the median shown and every run listed below; every produce run starts on an empty one-partition topic, and both consumers read the same topic, written once by librdkafka. Both clients with linger.ms=5 and batch.size=1000000 (librdkafka's default batch size; fjord-client's default is Java's 16384). Ratio = fjord-client / librdkafka.\n",
        if in_memory {
            "data on tmpfs, so the clients and not the disk are measured"
        } else {
            "data on disk: no tmpfs found"
        }
    );
    let _ = writeln!(
        md,
        "| run | fjord-client records/s | MB/s | client CPU s per M | librdkafka records/s | MB/s | client CPU s per M | ratio (records/s) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for c in comparisons {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {:.2} | {:.0} | {:.1} | {:.2} | {:.2} |",
            c.name,
            c.fjord.records_per_s,
            c.fjord.mb_per_s,
            c.fjord.cpu_per_million,
            c.librdkafka.records_per_s,
            c.librdkafka.mb_per_s,
            c.librdkafka.cpu_per_million,
            c.fjord.records_per_s / c.librdkafka.records_per_s
        );
    }
    let _ = writeln!(
        md,
        "\nfjord-client end to end (`fjord perf e2e`, acks=all, client defaults): {}\n",
        e2e.1
    );
    let _ = writeln!(md, "Commands (`$BROKER` is the broker's address):\n");
    for c in comparisons {
        let _ = writeln!(
            md,
            "- {}: `{}` and `{}`",
            c.name, c.fjord.command, c.librdkafka.command
        );
    }
    let _ = writeln!(md, "- fjord-client end to end: `{}`", e2e.0);
    let _ = writeln!(md, "\nEvery run, records/s, slowest first:\n");
    for c in comparisons {
        let _ = writeln!(
            md,
            "- {}: fjord-client {}; librdkafka {}",
            c.name, c.fjord_runs, c.librdkafka_runs
        );
    }
    splice_report(
        ws,
        CLIENTS_BEGIN,
        CLIENTS_END,
        "fjord-client against librdkafka (cargo xtask bench clients)",
        &md,
    )
}

fn write_report(ws: &Workspace, rows: &[Row], latencies: &[Latency]) -> Result<(), String> {
    let mut md = String::new();
    let _ = writeln!(md, "{}", provenance("cargo xtask bench"));
    let _ = writeln!(md, "Load generator: librdkafka 2.12.1 `rdkafka_performance` (from the `rdkafka-sys` {RDKAFKA_SYS} crate), one partition, broker release build, data on disk (ext4).\n");
    let _ = writeln!(
        md,
        "| run | records/s | MB/s | broker CPU s per million records |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|");
    for r in rows {
        let cpu = r
            .cpu_per_million
            .map_or("–".to_string(), |c| format!("{c:.3}"));
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.1} | {cpu} |",
            r.name, r.records_per_s, r.mb_per_s
        );
    }
    let _ = writeln!(
        md,
        "\n| latency run | samples | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    for l in latencies {
        let p: Vec<String> = l
            .percentiles
            .iter()
            .map(|(_, v)| format!("{v:.2}"))
            .collect();
        let _ = writeln!(md, "| {} | {} | {} |", l.name, l.samples, p.join(" | "));
    }
    let _ = writeln!(md, "\nCommands (`$BROKER` is the broker's address):\n");
    for r in rows {
        let _ = writeln!(md, "- {}: `{}`", r.name, r.command);
    }
    for l in latencies {
        let _ = writeln!(md, "- {}: `{}`", l.name, l.command);
    }
    splice_report(ws, BEGIN, END, "End-to-end (cargo xtask bench)", &md)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_producer_and_consumer_summaries() {
        let p = "% 5000000 messages produced (500000000 bytes), 5000000 delivered (offset 9999999, 0 failed) in 3657ms: 1366920 msgs/s and 136.69 MB/s, 93 produce failures, 0 in queue, no compression";
        assert_eq!(super::parse_rate(p), Some((1366920.0, 136.69)));
        let c = "% 5000000 messages (500000000 bytes) consumed in 1715ms: 2914019 msgs/s (291.40 MB/s)\n% Average application fetch latency: 0us";
        assert_eq!(super::parse_rate(c), Some((2914019.0, 291.40)));
    }

    #[test]
    fn reads_cpu_fields_of_proc_stat_after_a_command_name_with_spaces() {
        let path = std::env::temp_dir().join(format!("fjord-stat-{}", std::process::id()));
        // Fields 14-17 (utime, stime, cutime, cstime) hold 100, 50, 30, 20 ticks.
        let line = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 100 50 30 20 0 0";
        std::fs::write(&path, line).unwrap();
        let ticks = super::clock_ticks();
        let path = path.to_str().unwrap();
        assert_eq!(super::proc_stat_seconds(path, 14), 150.0 / ticks);
        assert_eq!(super::proc_stat_seconds(path, 16), 50.0 / ticks);
        assert_eq!(super::proc_stat_seconds("/nonexistent/stat", 14), 0.0);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn parses_fjord_perf_summaries() {
        let p = "2000000 records sent, 2712345.6 records/sec (258.67 MB/sec), 3.10 ms avg latency, 9.00 ms max latency, 3.00 ms 50th, 5.00 ms 95th, 6.00 ms 99th, 8.00 ms 99.9th.";
        assert_eq!(super::parse_fjord_rate(p), Some(2712345.6));
        let c = "data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, elapsed.sec\n190.7349, 95.3674, 2000000, 1000000.0000, 2.000";
        assert_eq!(super::parse_fjord_rate(c), Some(1000000.0));
        assert_eq!(super::parse_fjord_rate("nothing"), None);
    }
}
