//! Runs the real `fjord` binary's client commands (topics, produce, consume, groups, configs,
//! cluster, perf) against an in-process broker.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod in_process;

use in_process::TestBroker;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl TestBroker {
    /// Runs `fjord <args> --bootstrap-server <broker>` with `stdin`, off the runtime.
    async fn fjord(&self, args: &[&str], stdin: &str) -> Result<Run, std::io::Error> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--bootstrap-server".into());
        all.push(self.addr.to_string());
        let stdin = stdin.to_string();
        tokio::task::spawn_blocking(move || run_fjord(&all, &stdin))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Like [`TestBroker::fjord`], failing unless the command succeeded.
    async fn ok(
        &self,
        args: &[&str],
        stdin: &str,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let run = self.fjord(args, stdin).await?;
        if !run.success {
            return Err(format!("fjord {args:?} failed: {}", run.stderr).into());
        }
        Ok(run.stdout)
    }
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn run_fjord(args: &[String], stdin: &str) -> Result<Run, std::io::Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .env("FJORD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output()?;
    Ok(Run {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// The LAG column of `groups describe` for one partition.
fn lag(describe: &str, topic: &str, partition: i32) -> Option<String> {
    describe.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.len() >= 6 && cols[1] == topic && cols[2] == partition.to_string())
            .then(|| cols[5].to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_list_describe_delete() -> TestResult {
    let b = TestBroker::start().await?;
    let out = b
        .ok(
            &[
                "topics",
                "create",
                "--topic",
                "orders",
                "--partitions",
                "3",
                "--replication-factor",
                "1",
                "--config",
                "retention.ms=123456",
            ],
            "",
        )
        .await?;
    assert!(out.contains("Created topic orders."), "{out}");

    let list = b.ok(&["topics", "list"], "").await?;
    assert!(list.lines().any(|l| l == "orders"), "{list}");

    let describe = b
        .ok(&["topics", "describe", "--topic", "orders"], "")
        .await?;
    assert!(describe.contains("PartitionCount: 3"), "{describe}");
    assert!(describe.contains("ReplicationFactor: 1"), "{describe}");
    assert!(describe.contains("retention.ms=123456"), "{describe}");
    for p in 0..3 {
        assert!(
            describe.contains(&format!("Partition: {p}\tLeader: ")),
            "{describe}"
        );
    }
    assert!(
        describe.contains("Replicas: ") && describe.contains("Isr: "),
        "{describe}"
    );

    // Creating it again is an error, reported as `fjord: ...` with a failing status.
    let again = b
        .fjord(&["topics", "create", "--topic", "orders"], "")
        .await?;
    assert!(!again.success);
    assert!(again.stderr.starts_with("fjord: "), "{}", again.stderr);

    let out = b.ok(&["topics", "delete", "--topic", "orders"], "").await?;
    assert!(out.contains("Deleted topic orders."), "{out}");
    let list = b.ok(&["topics", "list"], "").await?;
    assert!(!list.lines().any(|l| l == "orders"), "{list}");

    let missing = b
        .fjord(&["topics", "describe", "--topic", "nope"], "")
        .await?;
    assert!(!missing.success);
    assert!(missing.stderr.starts_with("fjord: "), "{}", missing.stderr);
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_with_keys_headers_and_json() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(&["topics", "create", "--topic", "lines"], "").await?;
    b.ok(
        &[
            "produce",
            "--topic",
            "lines",
            "--key-separator",
            ":",
            "--header",
            "source=test",
            "--acks",
            "1",
            "--compression",
            "lz4",
        ],
        "k1:one\nk2:two\nk3:three:with:colons\n",
    )
    .await?;

    let text = b
        .ok(
            &[
                "consume",
                "--topic",
                "lines",
                "--from-beginning",
                "--max-messages",
                "3",
                "--timeout-ms",
                "10000",
                "--property",
                "print.key=true",
                "--property",
                "key.separator=:",
            ],
            "",
        )
        .await?;
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["k1:one", "k2:two", "k3:three:with:colons"]
    );

    let json = b
        .ok(
            &[
                "consume",
                "--topic",
                "lines",
                "--from-beginning",
                "--max-messages",
                "3",
                "--timeout-ms",
                "10000",
                "--format",
                "json",
            ],
            "",
        )
        .await?;
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["key"], "k2");
    assert_eq!(records[1]["value"], "two");
    assert_eq!(records[1]["partition"], 0);
    assert_eq!(records[1]["offset"], 1);
    assert_eq!(records[1]["headers"]["source"], "test");
    assert!(records[1]["timestamp"].as_i64().unwrap_or(0) > 0);

    // From a file, with Kafka's reader properties; then one partition from an offset.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "a=4\nb=5\n")?;
    let path = file.display().to_string();
    b.ok(
        &[
            "produce",
            "--topic",
            "lines",
            "--file",
            &path,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator==",
        ],
        "",
    )
    .await?;
    let tail = b
        .ok(
            &[
                "consume",
                "--topic",
                "lines",
                "--partition",
                "0",
                "--offset",
                "3",
                "--max-messages",
                "2",
                "--timeout-ms",
                "10000",
                "--property",
                "print.key=true",
            ],
            "",
        )
        .await?;
    assert_eq!(tail.lines().collect::<Vec<_>>(), vec!["a\t4", "b\t5"]);

    // A line without the separator is an error.
    let bad = b
        .fjord(
            &["produce", "--topic", "lines", "--key-separator", ":"],
            "no separator here\n",
        )
        .await?;
    assert!(!bad.success);
    assert!(bad.stderr.contains("fjord: "), "{}", bad.stderr);

    // --timeout-ms ends a consume that has nothing more to read.
    let none = b
        .ok(&["consume", "--topic", "lines", "--timeout-ms", "500"], "")
        .await?;
    assert!(none.is_empty(), "{none}");
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_describe_lag_and_reset_offsets() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(&["topics", "create", "--topic", "events"], "").await?;
    b.ok(&["produce", "--topic", "events"], "1\n2\n3\n4\n5\n")
        .await?;
    let read = b
        .ok(
            &[
                "consume",
                "--topic",
                "events",
                "--group",
                "billing",
                "--from-beginning",
                "--max-messages",
                "5",
                "--timeout-ms",
                "15000",
            ],
            "",
        )
        .await?;
    assert_eq!(read.lines().count(), 5, "{read}");

    let list = b.ok(&["groups", "list"], "").await?;
    assert!(list.lines().any(|l| l == "billing"), "{list}");

    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("0"),
        "{describe}"
    );
    assert!(describe.contains("CURRENT-OFFSET"), "{describe}");

    // A dry run changes nothing.
    let dry = b
        .ok(
            &[
                "groups",
                "reset-offsets",
                "--group",
                "billing",
                "--topic",
                "events",
                "--to-earliest",
            ],
            "",
        )
        .await?;
    assert!(dry.contains("Dry run"), "{dry}");
    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("0"),
        "{describe}"
    );

    let exec = b
        .ok(
            &[
                "groups",
                "reset-offsets",
                "--group",
                "billing",
                "--topic",
                "events",
                "--to-earliest",
                "--execute",
            ],
            "",
        )
        .await?;
    assert!(!exec.contains("Dry run"), "{exec}");
    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("5"),
        "{describe}"
    );

    b.ok(
        &[
            "groups",
            "reset-offsets",
            "--group",
            "billing",
            "--topic",
            "events",
            "--shift-by",
            "2",
            "--execute",
        ],
        "",
    )
    .await?;
    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("3"),
        "{describe}"
    );

    // A date far in the future has no records: the log end.
    b.ok(
        &[
            "groups",
            "reset-offsets",
            "--group",
            "billing",
            "--topic",
            "events",
            "--to-datetime",
            "2999-01-01T00:00:00.000",
            "--execute",
        ],
        "",
    )
    .await?;
    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("0"),
        "{describe}"
    );

    b.ok(
        &[
            "groups",
            "reset-offsets",
            "--group",
            "billing",
            "--topic",
            "events",
            "--to-datetime",
            "2000-01-01T00:00:00Z",
            "--execute",
        ],
        "",
    )
    .await?;
    let describe = b
        .ok(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("5"),
        "{describe}"
    );

    // --max-messages stops mid-batch: the group commits what was printed, not what was fetched.
    let half = |n: &'static str| {
        [
            "consume",
            "--topic",
            "events",
            "--group",
            "partial",
            "--from-beginning",
            "--max-messages",
            n,
            "--timeout-ms",
            "15000",
        ]
    };
    let first = b.ok(&half("2"), "").await?;
    assert_eq!(first.lines().collect::<Vec<_>>(), vec!["1", "2"]);
    let describe = b
        .ok(&["groups", "describe", "--group", "partial"], "")
        .await?;
    assert_eq!(
        lag(&describe, "events", 0).as_deref(),
        Some("3"),
        "{describe}"
    );
    let rest = b.ok(&half("3"), "").await?;
    assert_eq!(rest.lines().collect::<Vec<_>>(), vec!["3", "4", "5"]);

    let deleted = b
        .ok(&["groups", "delete", "--group", "billing"], "")
        .await?;
    assert!(deleted.contains("successful"), "{deleted}");
    let list = b.ok(&["groups", "list"], "").await?;
    assert!(!list.lines().any(|l| l == "billing"), "{list}");
    let gone = b
        .fjord(&["groups", "describe", "--group", "billing"], "")
        .await?;
    assert!(!gone.success);
    assert!(
        gone.stderr
            .contains("fjord: consumer group 'billing' does not exist"),
        "{}",
        gone.stderr
    );
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_alter_describe_and_cluster_describe() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(&["topics", "create", "--topic", "cfg"], "").await?;
    let base = ["--entity-type", "topics", "--entity-name", "cfg"];
    let mut alter = vec!["configs", "alter"];
    alter.extend(base);
    alter.extend(["--add-config", "retention.ms=99999,cleanup.policy=compact"]);
    let out = b.ok(&alter, "").await?;
    assert!(out.contains("Completed updating config"), "{out}");

    let mut describe = vec!["configs", "describe"];
    describe.extend(base);
    let shown = b.ok(&describe, "").await?;
    assert!(shown.contains("retention.ms=99999"), "{shown}");
    assert!(shown.contains("cleanup.policy=compact"), "{shown}");

    let mut delete = vec!["configs", "alter"];
    delete.extend(base);
    delete.extend(["--delete-config", "retention.ms"]);
    b.ok(&delete, "").await?;
    let shown = b.ok(&describe, "").await?;
    assert!(!shown.contains("retention.ms=99999"), "{shown}");
    assert!(shown.contains("cleanup.policy=compact"), "{shown}");

    let cluster = b.ok(&["cluster", "describe"], "").await?;
    assert!(cluster.contains("Cluster ID: "), "{cluster}");
    assert!(
        cluster.contains(&format!(":{}", b.addr.port())),
        "{cluster}"
    );

    let bad = b
        .fjord(
            &[
                "configs",
                "describe",
                "--entity-type",
                "brokers",
                "--entity-name",
                "x",
            ],
            "",
        )
        .await?;
    assert!(!bad.success);
    assert!(bad.stderr.starts_with("fjord: "), "{}", bad.stderr);
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_produce_and_consume_print_summaries() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(
        &["topics", "create", "--topic", "perf", "--partitions", "2"],
        "",
    )
    .await?;
    let out = b
        .ok(
            &[
                "perf",
                "produce",
                "--topic",
                "perf",
                "--num-records",
                "10000",
                "--record-size",
                "100",
                "--throughput",
                "-1",
                "--producer-props",
                "linger.ms=5",
            ],
            "",
        )
        .await?;
    assert!(out.contains("10000 records sent"), "{out}");
    for part in [
        "records/sec",
        "MB/sec",
        "50th",
        "95th",
        "99th",
        "99.9th",
        "max latency",
    ] {
        assert!(out.contains(part), "{out}");
    }
    // Latencies come from the histogram: with linger.ms=5 the maximum cannot be zero.
    let max_ms: f64 = out
        .split(", ")
        .find_map(|p| p.strip_suffix(" ms max latency"))
        .ok_or("no max latency")?
        .parse()?;
    assert!(max_ms > 0.0, "{out}");
    // Throttled: 100 records at 1000/s take about 0.1 s, and each waits out its linger.
    let throttled = b
        .ok(
            &[
                "perf",
                "produce",
                "--topic",
                "perf",
                "--num-records",
                "100",
                "--throughput",
                "1000",
            ],
            "",
        )
        .await?;
    let p50: f64 = throttled
        .split(", ")
        .find_map(|p| p.strip_suffix(" ms 50th"))
        .ok_or("no p50")?
        .parse()?;
    assert!(p50 > 0.0, "{throttled}");
    assert!(throttled.contains("100 records sent"), "{throttled}");
    let describe = b.ok(&["topics", "describe", "--topic", "perf"], "").await?;
    assert!(describe.contains("PartitionCount: 2"), "{describe}");

    let consumed = b
        .ok(
            &[
                "perf",
                "consume",
                "--topic",
                "perf",
                "--num-records",
                "10000",
            ],
            "",
        )
        .await?;
    assert!(consumed.contains(", 10000, "), "{consumed}");
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_alter_adds_partitions_and_changes_configs() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(
        &[
            "topics",
            "create",
            "--topic",
            "events",
            "--partitions",
            "2",
            "--config",
            "retention.ms=100000",
        ],
        "",
    )
    .await?;
    let out = b
        .ok(
            &[
                "topics",
                "alter",
                "--topic",
                "events",
                "--partitions",
                "5",
                "--config",
                "cleanup.policy=compact",
                "--delete-config",
                "retention.ms",
            ],
            "",
        )
        .await?;
    assert!(out.contains("now has 5 partitions"), "{out}");
    let describe = b
        .ok(&["topics", "describe", "--topic", "events"], "")
        .await?;
    assert!(describe.contains("PartitionCount: 5"), "{describe}");
    assert!(describe.contains("Partition: 4\tLeader: "), "{describe}");
    assert!(describe.contains("cleanup.policy=compact"), "{describe}");
    assert!(!describe.contains("retention.ms=100000"), "{describe}");

    // Partitions only grow, as in Kafka; the error is reported and nothing changes.
    let shrink = b
        .fjord(
            &["topics", "alter", "--topic", "events", "--partitions", "3"],
            "",
        )
        .await?;
    assert!(!shrink.success);
    assert!(shrink.stderr.starts_with("fjord: "), "{}", shrink.stderr);
    // A bad config value is refused by the broker and names the key.
    let bad = b
        .fjord(
            &[
                "topics",
                "alter",
                "--topic",
                "events",
                "--config",
                "retention.ms=soon",
            ],
            "",
        )
        .await?;
    assert!(!bad.success);
    assert!(bad.stderr.contains("retention.ms"), "{}", bad.stderr);
    let nothing = b
        .fjord(&["topics", "alter", "--topic", "events"], "")
        .await?;
    assert!(!nothing.success);
    assert!(
        nothing.stderr.contains("nothing to alter"),
        "{}",
        nothing.stderr
    );
    let describe = b
        .ok(&["topics", "describe", "--topic", "events"], "")
        .await?;
    assert!(describe.contains("PartitionCount: 5"), "{describe}");
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_e2e_reads_back_every_record_and_prints_latencies() -> TestResult {
    let b = TestBroker::start().await?;
    b.ok(
        &["topics", "create", "--topic", "e2e", "--partitions", "3"],
        "",
    )
    .await?;
    // Records already in the topic are not part of the measurement: the consumer starts at
    // the end of every partition.
    b.ok(&["produce", "--topic", "e2e"], "old-1\nold-2\nold-3\n")
        .await?;
    let out = b
        .ok(
            &[
                "perf",
                "e2e",
                "--topic",
                "e2e",
                "--num-records",
                "300",
                "--throughput",
                "1000",
                "--acks",
                "1",
            ],
            "",
        )
        .await?;
    assert!(out.contains("300 records end to end"), "{out}");
    for part in ["50th", "95th", "99th", "99.9th", "max latency"] {
        assert!(out.contains(part), "{out}");
    }
    let p50: f64 = out
        .split(", ")
        .find_map(|p| p.strip_suffix(" ms 50th"))
        .ok_or("no p50")?
        .parse()?;
    assert!(p50 > 0.0, "{out}");
    let small = b
        .fjord(
            &[
                "perf",
                "e2e",
                "--topic",
                "e2e",
                "--num-records",
                "1",
                "--record-size",
                "4",
            ],
            "",
        )
        .await?;
    assert!(!small.success);
    assert!(small.stderr.contains("at least 8"), "{}", small.stderr);
    b.stop().await;
    Ok(())
}
