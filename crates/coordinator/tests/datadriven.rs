//! Data-driven scenarios in the style of cockroach's `datadriven`: every file under
//! `tests/testdata/` is a list of blocks
//!
//! ```text
//! # comment
//! <command> key=value ...
//! ----
//! <expected output>
//! <blank line>
//! ```
//!
//! Run with `REWRITE=1` to regenerate the expected output (then review the diff).
//!
//! Lists are comma-separated; `''` stands for an empty string in a list.
//!
//! Commands (all request commands take `at=<ms>` and an optional `id=<label>` naming the
//! request in `respond` lines; the default label is `#<n>`):
//!
//! * `config key=value...`: fresh coordinator with settings (`initial_delay`, `min_session`,
//!   `max_session`, `max_size`, `retention`, `check_interval`, `metadata_max`,
//!   `new_member_timeout`), all partitions loaded at 0.
//! * `join group= member= instance= client= host= type= protocols=range:t1+t2,rr:t1
//!   session= rebalance= v=<JoinGroup version>`
//! * `sync group= member= gen= instance= ptype= pname= assign=member:text,member:text`
//! * `heartbeat group= member= gen= instance=`
//! * `leave group= members=member/instance,...`
//! * `commit group= member= gen= instance= retention= v= offsets=topic/p@offset[#epoch][~meta],...`
//!   (`~x*5000` is 5000 `x`)
//! * `fetch group= [topics=topic/p+p,...]`, `offset-delete group= topics=topic/p+p,...`
//! * `describe groups=a,b`, `list [states=..] [types=..]`, `delete groups=a,b`
//! * `tick at=`, `deadline`, `state group=`, `offsets group=`, `partition group=`
//! * `unload partition=`, `load partition= at=`
//! * `restart at=`: a new coordinator rebuilt by replaying every record persisted so far.
//! * `check-replay`: replay every persisted record into a fresh coordinator and compare.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{show_effects, show_summary, subscription};
use fjord_coordinator::{
    DeleteGroupsRequest, DescribeGroupsRequest, Effect, GroupConfig, GroupCoordinator, GroupState,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, LeavingMember, ListGroupsRequest,
    OffsetCommitEntry, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, PersistRecord,
    RequestId, SyncGroupRequest,
};

struct Args {
    map: HashMap<String, String>,
}

impl Args {
    fn parse(tokens: &[&str]) -> Self {
        let mut map = HashMap::new();
        for t in tokens {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            map.insert(k.to_owned(), v.to_owned());
        }
        Args { map }
    }

    fn str(&self, key: &str, default: &str) -> String {
        self.map
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn opt(&self, key: &str) -> Option<String> {
        self.map.get(key).filter(|v| !v.is_empty()).cloned()
    }

    fn int(&self, key: &str, default: i64) -> i64 {
        self.map
            .get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
            })
            .unwrap_or(default)
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.map
            .get(key)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s == "''" {
                            String::new()
                        } else {
                            s.to_owned()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn new_coordinator(config: GroupConfig) -> GroupCoordinator {
    let counter = Arc::new(AtomicU64::new(0));
    let mut c = GroupCoordinator::with_member_id_source(
        config,
        Box::new(move || (counter.fetch_add(1, Ordering::SeqCst) + 1).to_string()),
    );
    c.load_all_partitions(0);
    c
}

fn replayed(config: &GroupConfig, persisted: &[PersistRecord], now: i64) -> GroupCoordinator {
    let mut c =
        GroupCoordinator::with_member_id_source(config.clone(), Box::new(|| "replayed".to_owned()));
    for r in persisted {
        c.replay(&r.key, r.value.as_deref()).expect("replay");
    }
    c.load_all_partitions(now);
    c
}

/// Parses `topic/p+p,topic2/p` into `(topic, partitions)`.
fn topic_partitions(spec: &[String]) -> Vec<(String, Vec<i32>)> {
    spec.iter()
        .map(|s| {
            let (topic, parts) = s.split_once('/').expect("topic/partitions");
            (
                topic.to_owned(),
                parts
                    .split('+')
                    .map(|p| p.parse().expect("partition"))
                    .collect(),
            )
        })
        .collect()
}

struct Harness {
    config: GroupConfig,
    coordinator: GroupCoordinator,
    persisted: Vec<PersistRecord>,
    next_request: u64,
    labels: HashMap<u64, String>,
}

impl Harness {
    fn new() -> Self {
        let config = GroupConfig::default();
        Harness {
            coordinator: new_coordinator(config.clone()),
            config,
            persisted: Vec::new(),
            next_request: 0,
            labels: HashMap::new(),
        }
    }

    fn request(&mut self, args: &Args) -> (RequestId, i64) {
        self.next_request += 1;
        let id = self.next_request;
        let label = args.opt("id").unwrap_or_else(|| format!("#{id}"));
        self.labels.insert(id, label);
        (RequestId(id), args.int("at", 0))
    }

    fn effects(&mut self, effects: Vec<Effect>) -> String {
        for e in &effects {
            if let Effect::Persist { records, .. } = e {
                self.persisted.extend(records.iter().cloned());
            }
        }
        let labels = &self.labels;
        show_effects(&effects, |id| {
            labels.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
        })
    }

    fn run(&mut self, line: &str) -> String {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let (cmd, rest) = tokens.split_first().expect("empty command");
        let args = Args::parse(rest);
        match *cmd {
            "config" => {
                let d = GroupConfig::default();
                self.config = GroupConfig {
                    initial_rebalance_delay_ms: args
                        .int("initial_delay", d.initial_rebalance_delay_ms.into())
                        as i32,
                    min_session_timeout_ms: args.int("min_session", d.min_session_timeout_ms.into())
                        as i32,
                    max_session_timeout_ms: args.int("max_session", d.max_session_timeout_ms.into())
                        as i32,
                    max_size: args.int("max_size", d.max_size.into()) as i32,
                    offsets_retention_ms: args.int("retention", d.offsets_retention_ms),
                    offsets_retention_check_interval_ms: args
                        .int("check_interval", d.offsets_retention_check_interval_ms),
                    offset_metadata_max_bytes: args
                        .int("metadata_max", d.offset_metadata_max_bytes as i64)
                        as usize,
                    new_member_join_timeout_ms: args
                        .int("new_member_timeout", d.new_member_join_timeout_ms.into())
                        as i32,
                    ..d
                };
                self.coordinator = new_coordinator(self.config.clone());
                "ok".to_owned()
            }
            "join" => {
                let (rid, at) = self.request(&args);
                let version = args.int("v", 9);
                let protocols = args
                    .list("protocols")
                    .iter()
                    .map(|p| {
                        let (name, topics) = p.split_once(':').unwrap_or((p, ""));
                        let topics: Vec<&str> =
                            topics.split('+').filter(|t| !t.is_empty()).collect();
                        (name.to_owned(), subscription(&topics))
                    })
                    .collect();
                let session = args.int("session", 10_000) as i32;
                let req = JoinGroupRequest {
                    group_id: args.str("group", "g"),
                    member_id: args.str("member", ""),
                    group_instance_id: args.opt("instance"),
                    protocol_type: args.str("type", "consumer"),
                    protocols,
                    session_timeout_ms: session,
                    rebalance_timeout_ms: if version == 0 {
                        -1
                    } else {
                        args.int("rebalance", 30_000) as i32
                    },
                    client_id: args.str("client", "client"),
                    client_host: args.str("host", "/10.0.0.1"),
                    require_known_member_id: version >= 4,
                    supports_skip_assignment: version >= 9,
                    reason: args.opt("reason"),
                };
                let effects = self.coordinator.join_group(req, rid, at);
                self.effects(effects)
            }
            "sync" => {
                let (rid, at) = self.request(&args);
                let assignments = args
                    .list("assign")
                    .iter()
                    .map(|a| {
                        let (member, text) = a.split_once(':').unwrap_or((a, ""));
                        (member.to_owned(), Bytes::from(text.to_owned()))
                    })
                    .collect();
                let req = SyncGroupRequest {
                    group_id: args.str("group", "g"),
                    generation_id: args.int("gen", -1) as i32,
                    member_id: args.str("member", ""),
                    group_instance_id: args.opt("instance"),
                    protocol_type: args.opt("ptype"),
                    protocol_name: args.opt("pname"),
                    assignments,
                };
                let effects = self.coordinator.sync_group(req, rid, at);
                self.effects(effects)
            }
            "heartbeat" => {
                let (rid, at) = self.request(&args);
                let req = HeartbeatRequest {
                    group_id: args.str("group", "g"),
                    generation_id: args.int("gen", -1) as i32,
                    member_id: args.str("member", ""),
                    group_instance_id: args.opt("instance"),
                };
                let effects = self.coordinator.heartbeat(req, rid, at);
                self.effects(effects)
            }
            "leave" => {
                let (rid, at) = self.request(&args);
                let members = args
                    .list("members")
                    .iter()
                    .map(|m| {
                        let (member, instance) = m.split_once('/').unwrap_or((m, ""));
                        LeavingMember {
                            member_id: member.to_owned(),
                            group_instance_id: Some(instance.to_owned()).filter(|i| !i.is_empty()),
                            reason: None,
                        }
                    })
                    .collect();
                let req = LeaveGroupRequest {
                    group_id: args.str("group", "g"),
                    members,
                };
                let effects = self.coordinator.leave_group(req, rid, at);
                self.effects(effects)
            }
            "commit" => {
                let (rid, at) = self.request(&args);
                let offsets = args
                    .list("offsets")
                    .iter()
                    .map(|o| {
                        let (o, metadata) = match o.split_once('~') {
                            Some((o, m)) => {
                                let m = match m.split_once('*') {
                                    Some((c, n)) => c.repeat(n.parse().expect("repeat count")),
                                    None => m.to_owned(),
                                };
                                (o, Some(m))
                            }
                            None => (o.as_str(), None),
                        };
                        let (o, epoch) = match o.split_once('#') {
                            Some((o, e)) => (o, e.parse().expect("epoch")),
                            None => (o, -1),
                        };
                        let (tp, offset) = o.split_once('@').expect("topic/p@offset");
                        let (topic, partition) = tp.split_once('/').expect("topic/p");
                        OffsetCommitEntry {
                            topic: topic.to_owned(),
                            partition: partition.parse().expect("partition"),
                            offset: offset.parse().expect("offset"),
                            leader_epoch: epoch,
                            metadata,
                        }
                    })
                    .collect();
                let req = OffsetCommitRequest {
                    group_id: args.str("group", "g"),
                    generation_id: args.int("gen", -1) as i32,
                    member_id: args.str("member", ""),
                    group_instance_id: args.opt("instance"),
                    retention_time_ms: args.int("retention", -1),
                    api_version: args.int("v", 8) as i16,
                    offsets,
                };
                let effects = self.coordinator.offset_commit(req, rid, at);
                self.effects(effects)
            }
            "fetch" => {
                let (rid, at) = self.request(&args);
                let req = OffsetFetchRequest {
                    group_id: args.str("group", "g"),
                    topics: args
                        .map
                        .contains_key("topics")
                        .then(|| topic_partitions(&args.list("topics"))),
                };
                let effects = self.coordinator.offset_fetch(req, rid, at);
                self.effects(effects)
            }
            "offset-delete" => {
                let (rid, at) = self.request(&args);
                let req = OffsetDeleteRequest {
                    group_id: args.str("group", "g"),
                    topics: topic_partitions(&args.list("topics")),
                };
                let effects = self.coordinator.offset_delete(req, rid, at);
                self.effects(effects)
            }
            "describe" => {
                let (rid, at) = self.request(&args);
                let req = DescribeGroupsRequest {
                    group_ids: args.list("groups"),
                };
                let effects = self.coordinator.describe_groups(req, rid, at);
                self.effects(effects)
            }
            "list" => {
                let (rid, at) = self.request(&args);
                let req = ListGroupsRequest {
                    states_filter: args.list("states"),
                    types_filter: args.list("types"),
                };
                let effects = self.coordinator.list_groups(req, rid, at);
                self.effects(effects)
            }
            "delete" => {
                let (rid, at) = self.request(&args);
                let req = DeleteGroupsRequest {
                    group_ids: args.list("groups"),
                };
                let effects = self.coordinator.delete_groups(req, rid, at);
                self.effects(effects)
            }
            "tick" => {
                let effects = self.coordinator.tick(args.int("at", 0));
                self.effects(effects)
            }
            "deadline" => match self.coordinator.next_deadline() {
                Some(d) => format!("next deadline {d}"),
                None => "no deadline".to_owned(),
            },
            "state" => {
                let group = args.str("group", "g");
                match self.coordinator.group_summary(&group) {
                    Some(s) => show_summary(&s),
                    None => format!("{group} does not exist"),
                }
            }
            "offsets" => {
                let group = args.str("group", "g");
                let offsets = self.coordinator.committed_offsets(&group);
                if offsets.is_empty() {
                    return "no offsets".to_owned();
                }
                offsets
                    .iter()
                    .map(|o| {
                        format!(
                            "{}/{} = {} epoch={} meta={:?} ts={}",
                            o.topic,
                            o.partition,
                            o.offset,
                            o.leader_epoch,
                            o.metadata,
                            o.commit_timestamp_ms
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            "partition" => {
                let group = args.str("group", "g");
                format!("{group} -> {}", self.coordinator.partition_for(&group))
            }
            "unload" => {
                let effects = self
                    .coordinator
                    .unload_partition(args.int("partition", 0) as i32);
                self.effects(effects)
            }
            "load" => {
                self.coordinator
                    .load_partition(args.int("partition", 0) as i32, args.int("at", 0));
                "ok".to_owned()
            }
            "restart" => {
                let at = args.int("at", 0);
                self.coordinator = replayed(&self.config, &self.persisted, at);
                let mut out = format!("replayed {} records", self.persisted.len());
                for id in self.coordinator.group_ids() {
                    if let Some(s) = self.coordinator.group_summary(&id) {
                        let _ = write!(out, "\n{}", show_summary(&s));
                    }
                }
                out
            }
            "check-replay" => self.check_replay(),
            other => panic!("unknown command {other}"),
        }
    }

    /// Replays everything persisted into a fresh coordinator and compares the durable part of
    /// each group that is at rest (Empty or Stable), and every group's offsets.
    fn check_replay(&self) -> String {
        let fresh = replayed(&self.config, &self.persisted, 0);
        let mut problems = Vec::new();
        let mut ids = self.coordinator.group_ids();
        ids.extend(fresh.group_ids());
        ids.sort();
        ids.dedup();
        for id in &ids {
            let live = self.coordinator.group_summary(id);
            let back = fresh.group_summary(id);
            match (&live, &back) {
                (Some(live), Some(back))
                    if matches!(live.state, GroupState::Empty | GroupState::Stable) =>
                {
                    let mut a = live.clone();
                    let mut b = back.clone();
                    if a.state == GroupState::Stable {
                        // Kafka persists the timestamp of CompletingRebalance with the
                        // assignment; only Empty groups use theirs.
                        a.state_timestamp_ms = None;
                        b.state_timestamp_ms = None;
                    }
                    if a != b {
                        problems.push(format!("{id}: live {a:?}\n  replayed {b:?}"));
                    }
                }
                (Some(_), Some(_)) => {}
                (Some(live), None)
                    if live.state == GroupState::Empty && live.members.is_empty() =>
                {
                    // A group created by a commit that never wrote a record.
                }
                (Some(_), None) => problems.push(format!("{id}: missing after replay")),
                (None, Some(_)) => problems.push(format!("{id}: resurrected by replay")),
                (None, None) => {}
            }
            let (a, b) = (
                self.coordinator.committed_offsets(id),
                fresh.committed_offsets(id),
            );
            if a != b {
                problems.push(format!("{id}: offsets {a:?} != {b:?}"));
            }
        }
        if problems.is_empty() {
            format!(
                "replay ok: {} records, {} groups",
                self.persisted.len(),
                ids.len()
            )
        } else {
            problems.join("\n")
        }
    }
}

fn run_file(path: &Path, rewrite: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut harness = Harness::new();
    let mut output = String::new();
    let mut failures = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            output.push_str(line);
            output.push('\n');
            i += 1;
            continue;
        }
        let command = line;
        let line_no = i + 1;
        i += 1;
        if lines.get(i) != Some(&"----") {
            return Err(format!(
                "{}:{line_no}: expected ---- after the command",
                path.display()
            ));
        }
        i += 1;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push(lines[i]);
            i += 1;
        }
        let actual = harness.run(command);
        if actual != expected.join("\n") {
            failures.push(format!(
                "{}:{line_no}: {command}\n--- expected\n{}\n--- actual\n{actual}\n",
                path.display(),
                expected.join("\n")
            ));
        }
        output.push_str(command);
        output.push_str("\n----\n");
        output.push_str(&actual);
        output.push('\n');
    }
    if rewrite {
        std::fs::write(path, output).map_err(|e| e.to_string())?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn datadriven() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let rewrite = std::env::var_os("REWRITE").is_some_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_file(f, rewrite) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
