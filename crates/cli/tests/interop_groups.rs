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
