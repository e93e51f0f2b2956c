//! Interop suite: real Kafka clients (kcat, confluent-kafka, kafka-python, KafkaJS) against a real
//! `fjord broker` process. Each test starts its own broker and runs one script of
//! `tests/interop/`, asserting on its exit status and its `OK` line.
//!
//! The tests are ignored by plain `cargo test`; run them with `cargo xtask interop` (which installs
//! the clients first) or as part of `cargo xtask test`. Consumer-group scenarios are in
//! `interop_groups.rs`.

mod interop_support;

use std::time::Duration;

use interop_support::{
    interop_key, interop_value, kcat, node_script, python_script, run_script, Broker,
    RunningScript, Stop,
};

/// kcat (Debian's, librdkafka 2.0.2): `-L` metadata, `-P` keyed produce with every codec, `-C`
/// consume back exactly.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kcat_metadata_produce_consume() {
    let broker = Broker::start("kcat");
    let mut cmd = python_script("kcat_roundtrip.py");
    cmd.args(["--bootstrap", &broker.bootstrap(), "--kcat"])
        .arg(kcat());
    run_script("kcat_roundtrip.py", cmd, Duration::from_secs(180));
}

/// confluent-kafka: 100,000 keyed records, acks=all, one compression codec, with or without
/// idempotence; read back with `assign` and checked record by record.
fn confluent_roundtrip(compression: &str, idempotent: bool) {
    let label = format!(
        "cfk-{compression}-{}",
        if idempotent { "idem" } else { "plain" }
    );
    let broker = Broker::start(&label);
    let mut cmd = python_script("confluent_roundtrip.py");
    cmd.args([
        "--bootstrap",
        &broker.bootstrap(),
        "--compression",
        compression,
        "--records",
        "100000",
        "--partitions",
        "6",
    ]);
    if idempotent {
        cmd.arg("--idempotence");
    }
    run_script(&label, cmd, Duration::from_secs(600));
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_none() {
    confluent_roundtrip("none", false);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_none_idempotent() {
    confluent_roundtrip("none", true);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_gzip() {
    confluent_roundtrip("gzip", false);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_gzip_idempotent() {
    confluent_roundtrip("gzip", true);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_snappy() {
    confluent_roundtrip("snappy", false);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_snappy_idempotent() {
    confluent_roundtrip("snappy", true);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_lz4() {
    confluent_roundtrip("lz4", false);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_lz4_idempotent() {
    confluent_roundtrip("lz4", true);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_zstd() {
    confluent_roundtrip("zstd", false);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_kafka_zstd_idempotent() {
    confluent_roundtrip("zstd", true);
}

/// kafka-python 2.x: producer (plain and gzip), `assign` + `seek_to_beginning` consumer, admin
/// create/describe/delete topics, metadata listing.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kafka_python_produce_consume_admin() {
    let broker = Broker::start("kafka-python");
    let mut cmd = python_script("kafka_python_roundtrip.py");
    cmd.args(["--bootstrap", &broker.bootstrap()]);
    run_script("kafka_python_roundtrip.py", cmd, Duration::from_secs(300));
}

/// KafkaJS 2.2.4: admin (createTopics, fetchTopicMetadata, fetchTopicOffsets, deleteTopics) and a
/// producer (plain and gzip). Its consumer needs consumer groups: see `interop_groups.rs`.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kafkajs_produce_and_admin() {
    let broker = Broker::start("kafkajs");
    let mut cmd = node_script("kafkajs_roundtrip.js");
    cmd.args(["--bootstrap", &broker.bootstrap()]);
    run_script("kafkajs_roundtrip.js", cmd, Duration::from_secs(300));
}

/// Parses `PROGRESS acked=<n> failed=<n> produced=<n>` lines of confluent_restart.py.
fn progress(line: &str, field: &str) -> Option<u64> {
    let rest = line.strip_prefix("PROGRESS ")?;
    rest.split_whitespace()
        .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// An idempotent acks=all confluent-kafka producer keeps producing while the broker restarts;
/// afterwards every acknowledged record must be read back, in order per partition, once.
fn restart_during_produce(how: Stop) {
    let label = match how {
        Stop::Term => "restart-term",
        Stop::Kill => "restart-kill",
    };
    let mut broker = Broker::start(label);
    let stop_file = broker.work_dir().join("stop-producing");
    let mut cmd = python_script("confluent_restart.py");
    cmd.args(["--bootstrap", &broker.bootstrap(), "--stop-file"])
        .arg(&stop_file);
    let mut script = RunningScript::spawn(label, cmd);

    script.wait_for_line(
        "3000 acknowledged records before the restart",
        Duration::from_secs(90),
        |l| progress(l, "acked").is_some_and(|n| n >= 3000),
    );
    broker.restart(how);
    // Everything produced up to now (including what queued up during the outage) plus 2000 more
    // must be acknowledged: the producer has recovered by itself.
    let latest = match script.latest_line() {
        Some(line) if progress(&line, "produced").is_some() => line,
        _ => script.wait_for_line("a progress line", Duration::from_secs(30), |l| {
            progress(l, "produced").is_some()
        }),
    };
    let produced = progress(&latest, "produced").unwrap_or(0);
    let target = produced + 2000;
    script.wait_for_line(
        &format!("{target} acknowledged records after the restart"),
        Duration::from_secs(120),
        |l| progress(l, "acked").is_some_and(|n| n >= target),
    );
    std::fs::write(&stop_file, b"stop").expect("write stop file");
    script.finish(Duration::from_secs(400));
    broker.assert_running();
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn restart_sigterm_during_produce_loses_nothing() {
    restart_during_produce(Stop::Term);
}

#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn restart_kill9_during_produce_loses_nothing() {
    restart_during_produce(Stop::Kill);
}

#[test]
fn progress_lines_parse() {
    let line = "PROGRESS acked=3001 failed=0 produced=3500";
    assert_eq!(progress(line, "acked"), Some(3001));
    assert_eq!(progress(line, "produced"), Some(3500));
    assert_eq!(progress("acked=3", "acked"), None);
}

/// Runs a command with `input` on stdin and returns its stdout, failing the test on error.
fn run_with_input(mut cmd: std::process::Command, input: &str, what: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// fjord-client (through `fjord produce` / `fjord consume`) and librdkafka (kcat) read each
/// other's records for every codec.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn fjord_client_and_kcat_read_each_other_for_every_codec() {
    let broker = Broker::start("fjord-kcat");
    let bootstrap = broker.bootstrap();
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("k{}:value-{i}", i % 17))
        .collect();
    let input = lines.join("\n") + "\n";
    let mut expected = lines.clone();
    expected.sort();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        // fjord-client produces, kcat consumes.
        let topic = format!("from-fjord-{codec}");
        let mut produce = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"));
        produce
            .args([
                "produce",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                &topic,
            ])
            .args(["--key-separator", ":", "--compression", codec]);
        run_with_input(produce, &input, &format!("fjord produce ({codec})"));
        let mut consume = std::process::Command::new(kcat());
        consume
            .args([
                "-b",
                &bootstrap,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
            ])
            .args(["-f", "%k:%s\n"]);
        let out = run_with_input(consume, "", &format!("kcat -C ({codec})"));
        let mut got: Vec<String> = out.lines().map(String::from).collect();
        got.sort();
        assert_eq!(
            got, expected,
            "kcat read back what fjord produced ({codec})"
        );

        // kcat produces, fjord-client consumes.
        let topic = format!("from-kcat-{codec}");
        let mut produce = std::process::Command::new(kcat());
        produce.args(["-b", &bootstrap, "-P", "-t", &topic, "-K:", "-z", codec]);
        run_with_input(produce, &input, &format!("kcat -P ({codec})"));
        let mut consume = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"));
        consume
            .args([
                "consume",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                &topic,
            ])
            .args([
                "--from-beginning",
                "--max-messages",
                "1000",
                "--timeout-ms",
                "30000",
            ])
            .args([
                "--property",
                "print.key=true",
                "--property",
                "key.separator=:",
            ]);
        let out = run_with_input(consume, "", &format!("fjord consume ({codec})"));
        let mut got: Vec<String> = out.lines().map(String::from).collect();
        got.sort();
        assert_eq!(
            got, expected,
            "fjord read back what kcat produced ({codec})"
        );
    }
}

/// fjord-client (through `fjord produce` / `fjord consume`) and confluent-kafka (librdkafka 2.16)
/// read each other's records for every codec, and both place each key in the partition Java's
/// murmur2 partitioner picks.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn fjord_client_and_confluent_kafka_read_each_other_for_every_codec() {
    const RECORDS: u64 = 1000;
    const PARTITIONS: i32 = 4;
    let broker = Broker::start("fjord-confluent");
    let bootstrap = broker.bootstrap();
    let fjord = || std::process::Command::new(env!("CARGO_BIN_EXE_fjord"));
    let mut expected: Vec<String> = (0..RECORDS)
        .map(|i| {
            let key = interop_key(i);
            let partition =
                fjord_client::partitioner::partition_for_key(key.as_bytes(), PARTITIONS);
            format!("{partition} {key}:{}", interop_value(i))
        })
        .collect();
    expected.sort();
    let input: String = (0..RECORDS)
        .map(|i| format!("{}:{}\n", interop_key(i), interop_value(i)))
        .collect();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let create = |topic: &str| {
            let mut cmd = fjord();
            cmd.args(["topics", "create", "--bootstrap-server", &bootstrap])
                .args(["--topic", topic, "--partitions", &PARTITIONS.to_string()]);
            run_with_input(cmd, "", &format!("fjord topics create {topic}"));
        };

        // fjord-client produces, confluent-kafka consumes.
        let topic = format!("fjord-to-confluent-{codec}");
        create(&topic);
        let mut produce = fjord();
        produce
            .args([
                "produce",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                &topic,
            ])
            .args(["--key-separator", ":", "--compression", codec]);
        run_with_input(produce, &input, &format!("fjord produce ({codec})"));
        let mut consume = python_script("confluent_fjord_client.py");
        consume.args(["consume", "--bootstrap", &bootstrap, "--topic", &topic]);
        let out = run_with_input(consume, "", &format!("confluent consume ({codec})"));
        let mut got: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with("OK"))
            .map(String::from)
            .collect();
        got.sort();
        assert_eq!(
            got, expected,
            "confluent-kafka read back what fjord-client produced ({codec}), in murmur2's partitions"
        );

        // confluent-kafka produces, fjord-client consumes.
        let topic = format!("confluent-to-fjord-{codec}");
        create(&topic);
        let mut produce = python_script("confluent_fjord_client.py");
        produce
            .args(["produce", "--bootstrap", &bootstrap, "--topic", &topic])
            .args(["--compression", codec]);
        run_with_input(produce, "", &format!("confluent produce ({codec})"));
        let mut consume = fjord();
        consume
            .args([
                "consume",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                &topic,
            ])
            .args(["--from-beginning", "--format", "json"])
            .args([
                "--max-messages",
                &RECORDS.to_string(),
                "--timeout-ms",
                "30000",
            ]);
        let out = run_with_input(consume, "", &format!("fjord consume ({codec})"));
        let mut got: Vec<String> = out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("fjord consume printed {l:?}: {e}"));
                format!(
                    "{} {}:{}",
                    v["partition"],
                    v["key"].as_str().unwrap_or("<no key>"),
                    v["value"].as_str().unwrap_or("<no value>")
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got, expected,
            "fjord-client read back what confluent-kafka produced ({codec}), in murmur2's partitions"
        );
    }
}
