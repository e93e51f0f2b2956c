//! Interop suite, consumer groups: real clients' group consumers against a real `fjord broker`
//! (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch).
//! Each test starts its own broker (with `group.initial.rebalance.delay.ms=0`) and runs one
//! script of `tests/interop/`.
//!
//! Ignored by plain `cargo test`; `cargo xtask interop` and `cargo xtask test` run them.

mod interop_support;

use std::process::Command;
use std::time::Duration;

use interop_support::{kcat, node_script, python_script, run_script, Broker, Stop};

fn confluent_group(broker: &Broker, mode: &str, assignor: &str) -> Command {
    let mut cmd = python_script("confluent_group.py");
    cmd.args([
        mode,
        "--bootstrap",
        &broker.bootstrap(),
        "--assignor",
        assignor,
        "--records",
        "60000",
        "--partitions",
        "6",
        "--members",
        "3",
        "--workdir",
    ])
    .arg(broker.work_dir());
    cmd
}

/// Three confluent-kafka consumers in one group (eager `range,roundrobin`, librdkafka's
/// default) on a 6-partition topic with 60,000 records, committing after each batch: every record
/// processed exactly once; a second group reads everything independently.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_group_exactly_once_eager() {
    let broker = Broker::start("group-eager");
    let cmd = confluent_group(&broker, "exactly-once", "range,roundrobin");
    run_script(
        "confluent_group.py exactly-once",
        cmd,
        Duration::from_secs(400),
    );
}

/// The same with `partition.assignment.strategy=cooperative-sticky` (incremental rebalancing).
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_group_exactly_once_cooperative_sticky() {
    let broker = Broker::start("group-coop");
    let cmd = confluent_group(&broker, "exactly-once", "cooperative-sticky");
    run_script(
        "confluent_group.py exactly-once cooperative-sticky",
        cmd,
        Duration::from_secs(400),
    );
}

/// One of three members is killed with SIGKILL mid-way: the others take over its partitions
/// within the session timeout and continue from its last commit (duplicates only after it).
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_group_member_killed_others_take_over() {
    let broker = Broker::start("group-kill");
    let cmd = confluent_group(&broker, "kill-member", "range,roundrobin");
    run_script(
        "confluent_group.py kill-member",
        cmd,
        Duration::from_secs(400),
    );
}

/// Committed offsets survive a clean restart (SIGTERM) and a crash (kill -9) of the broker.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn confluent_group_offsets_survive_broker_restart() {
    let mut broker = Broker::start("group-offsets");
    let state = broker.work_dir().join("offsets-state.json");
    let phase = |broker: &Broker, phase: &str| {
        let mut cmd = python_script("confluent_offsets.py");
        cmd.args([phase, "--bootstrap", &broker.bootstrap(), "--state"])
            .arg(&state);
        run_script(
            &format!("confluent_offsets.py {phase}"),
            cmd,
            Duration::from_secs(240),
        );
    };
    phase(&broker, "commit");
    broker.restart(Stop::Term);
    phase(&broker, "verify");
    broker.restart(Stop::Kill);
    phase(&broker, "verify");
}

/// kafka-python 2.x: two group members share the work exactly once; a new member resumes from
/// the committed offsets.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kafka_python_group_consumers() {
    let broker = Broker::start("group-kafka-python");
    let mut cmd = python_script("kafka_python_group.py");
    cmd.args(["--bootstrap", &broker.bootstrap()]);
    run_script("kafka_python_group.py", cmd, Duration::from_secs(300));
}

/// KafkaJS 2.2.4: the full round trip including its (group-only) consumer and admin.fetchOffsets.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kafkajs_group_consumer() {
    let broker = Broker::start("group-kafkajs");
    let mut cmd = node_script("kafkajs_roundtrip.js");
    cmd.args(["--bootstrap", &broker.bootstrap(), "--consume"]);
    run_script(
        "kafkajs_roundtrip.js --consume",
        cmd,
        Duration::from_secs(300),
    );
}

/// kcat's balanced consumer (`-G`, librdkafka 2.0.2) reads everything once, then resumes from
/// its committed offsets.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn kcat_balanced_consumer() {
    let broker = Broker::start("group-kcat");
    let mut cmd = python_script("kcat_group.py");
    cmd.args(["--bootstrap", &broker.bootstrap(), "--kcat"])
        .arg(kcat());
    run_script("kcat_group.py", cmd, Duration::from_secs(300));
}

/// Runs a `fjord` command to completion with `input` on stdin; panics unless it succeeded.
fn fjord_ok(args: &[&str], input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start fjord {args:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("fjord {args:?}: stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("fjord {args:?}: {e}"));
    assert!(
        out.status.success(),
        "fjord {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `done` every 100 ms until it holds; panics with `what` after `timeout`.
fn await_condition(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A record read by a group member: (partition, offset, record number).
type Read = (i32, i64, u64);

/// Every record a `fjord consume --format json` printed.
fn fjord_consumed(path: &std::path::Path) -> Vec<Read> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
            let i = v["value"]
                .as_str()
                .and_then(|s| s.split('|').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("value of {l:?} is not one of ours"));
            (
                v["partition"].as_i64().unwrap_or(-1) as i32,
                v["offset"].as_i64().unwrap_or(-1),
                i,
            )
        })
        .collect()
}

/// Every record a confluent_group.py member processed
/// ("M" lines), and its latest assignment ("A" line).
fn confluent_consumed(path: &std::path::Path) -> (Vec<Read>, Option<Vec<i32>>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut records = Vec::new();
    let mut assigned = None;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.as_slice() {
            ["M", p, o, i] => records.push((
                p.parse().unwrap_or(-1),
                o.parse().unwrap_or(-1),
                i.parse().unwrap_or(u64::MAX),
            )),
            ["A", _, parts] => {
                assigned = Some(parts.split(',').filter_map(|p| p.parse().ok()).collect())
            }
            ["R", ..] | ["L", ..] => assigned = None,
            _ => {}
        }
    }
    (records, assigned)
}

/// Two fjord-client consumers (`fjord consume --group`) and one confluent-kafka consumer in the
/// same group split a 6-partition topic (the `range` assignor both offer): each gets two
/// partitions, and together they read every record exactly once.
#[test]
#[ignore = "needs real Kafka clients: run `cargo xtask interop`"]
fn fjord_client_consumers_share_a_group_with_a_confluent_kafka_consumer() {
    const RECORDS: u64 = 6000;
    let broker = Broker::start("group-mixed");
    let bootstrap = broker.bootstrap();
    let dir = broker.work_dir().join("mixed");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let (topic, group) = ("mixed", "mixed-group");
    fjord_ok(
        &["topics", "create", "--bootstrap-server", &bootstrap]
            .into_iter()
            .chain(["--topic", topic, "--partitions", "6"])
            .collect::<Vec<_>>(),
        "",
    );

    let confluent_out = dir.join("confluent.out");
    let stop_file = dir.join("stop");
    let mut member = python_script("confluent_group.py");
    member
        .args(["member", "--bootstrap", &bootstrap, "--topic", topic])
        .args([
            "--group",
            group,
            "--name",
            "confluent",
            "--assignor",
            "range",
        ])
        .args(["--keys", "17", "--out"])
        .arg(&confluent_out)
        .arg("--stop-file")
        .arg(&stop_file);
    let confluent = interop_support::RunningScript::spawn("confluent member", member);

    struct Killed(Vec<std::process::Child>);
    impl Drop for Killed {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut fjord_members = Killed(Vec::new());
    let fjord_outs: Vec<_> = (0..2).map(|n| dir.join(format!("fjord-{n}.out"))).collect();
    for out in &fjord_outs {
        let file = std::fs::File::create(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        let err = std::fs::File::create(out.with_extension("err"))
            .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        let child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args([
                "consume",
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                topic,
            ])
            .args(["--group", group, "--from-beginning", "--format", "json"])
            .env("FJORD_LOG", "fjord_client=info")
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start fjord consume: {e}"));
        fjord_members.0.push(child);
    }

    // Range over 6 partitions and 3 members: the confluent member holds 2 once all have joined.
    await_condition(
        "the confluent member is assigned 2 of the 6 partitions",
        Duration::from_secs(90),
        || {
            confluent_consumed(&confluent_out)
                .1
                .is_some_and(|a| a.len() == 2)
        },
    );

    // fjord-client writes the records (keyed, in common.py's format), all three read them.
    let input: String = (0..RECORDS)
        .map(|i| {
            format!(
                "{}:{}\n",
                interop_support::interop_key(i),
                interop_support::interop_value(i)
            )
        })
        .collect();
    fjord_ok(
        &[
            "produce",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            topic,
            "--key-separator",
            ":",
        ],
        &input,
    );
    let total = || {
        confluent_consumed(&confluent_out).0.len()
            + fjord_outs
                .iter()
                .map(|o| fjord_consumed(o).len())
                .sum::<usize>()
    };
    await_condition(
        "the three members processed every record",
        Duration::from_secs(90),
        || total() as u64 >= RECORDS,
    );

    let (from_confluent, assigned) = confluent_consumed(&confluent_out);
    let assigned = assigned.unwrap_or_else(|| panic!("the confluent member lost its assignment"));
    std::fs::write(&stop_file, b"stop").unwrap_or_else(|e| panic!("stop file: {e}"));
    let output = confluent.finish(Duration::from_secs(300));
    drop(fjord_members);

    let from_fjord: Vec<Vec<Read>> = fjord_outs.iter().map(|o| fjord_consumed(o)).collect();
    let partitions_of = |records: &[Read]| -> std::collections::BTreeSet<i32> {
        records.iter().map(|r| r.0).collect()
    };
    let confluent_partitions = partitions_of(&from_confluent);
    assert_eq!(
        confluent_partitions,
        assigned.iter().copied().collect(),
        "the confluent member read exactly its assigned partitions"
    );
    let mut seen = std::collections::BTreeSet::new();
    for (who, records) in std::iter::once(("confluent-kafka", &from_confluent))
        .chain(from_fjord.iter().map(|r| ("fjord-client", r)))
    {
        assert!(!records.is_empty(), "{who} member read nothing");
        for &(p, o, i) in records {
            assert!(seen.insert((p, o)), "{p}@{o} read twice (last by {who})");
            assert!(i < RECORDS, "record number {i} out of range");
        }
    }
    for (n, records) in from_fjord.iter().enumerate() {
        let mine = partitions_of(records);
        assert_eq!(mine.len(), 2, "fjord member {n} read partitions {mine:?}");
        assert!(
            mine.is_disjoint(&confluent_partitions),
            "fjord member {n} and the confluent member shared partitions"
        );
    }
    assert_eq!(seen.len() as u64, RECORDS, "every record read exactly once");
    assert!(
        !output.stdout.contains("FAIL"),
        "confluent member: {}",
        output.stdout
    );
}
