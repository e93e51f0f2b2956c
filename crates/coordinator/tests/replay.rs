//! Replay: everything the coordinator persists rebuilds the same groups and offsets, from
//! the full log and from its compacted form. Plus a randomized run that checks every
//! request is answered exactly once and that replay always agrees with memory.

mod common;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use common::subscription;
use fjord_coordinator::record::RecordKey;
use fjord_coordinator::{
    DeleteGroupsRequest, Effect, GroupConfig, GroupCoordinator, GroupState, GroupSummary,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, LeavingMember, OffsetCommitEntry,
    OffsetCommitRequest, PersistRecord, RequestId, Response, SyncGroupRequest,
};
use proptest::prelude::*;

/// A tiny driver: numbers requests, keeps the log, collects responses.
struct Driver {
    coordinator: GroupCoordinator,
    log: Vec<PersistRecord>,
    next_id: u64,
    responses: HashMap<u64, Vec<Response>>,
    asked: Vec<u64>,
}

impl Driver {
    fn new() -> Self {
        let mut n = 0u64;
        let mut coordinator = GroupCoordinator::with_member_id_source(
            GroupConfig::default(),
            Box::new(move || {
                n += 1;
                n.to_string()
            }),
        );
        coordinator.load_all_partitions(0);
        Driver {
            coordinator,
            log: Vec::new(),
            next_id: 0,
            responses: HashMap::new(),
            asked: Vec::new(),
        }
    }

    fn id(&mut self) -> RequestId {
        self.next_id += 1;
        self.asked.push(self.next_id);
        RequestId(self.next_id)
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Vec<(u64, Response)> {
        let mut out = Vec::new();
        for e in effects {
            match e {
                Effect::Persist { partition, records } => {
                    for r in &records {
                        let key = RecordKey::decode(&r.key).expect("own keys decode");
                        let group = key.group().expect("own keys are known");
                        assert_eq!(
                            self.coordinator.partition_for(group),
                            partition,
                            "record persisted to the partition owning its group"
                        );
                    }
                    self.log.extend(records);
                }
                Effect::Respond {
                    request_id,
                    response,
                } => {
                    self.responses
                        .entry(request_id.0)
                        .or_default()
                        .push(response.clone());
                    out.push((request_id.0, response));
                }
            }
        }
        out
    }

    fn join(
        &mut self,
        group: &str,
        member: &str,
        client: &str,
        topics: &[&str],
        at: i64,
    ) -> Vec<(u64, Response)> {
        let id = self.id();
        let req = JoinGroupRequest {
            group_id: group.into(),
            member_id: member.into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(topics))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
            ..Default::default()
        };
        let effects = self.coordinator.join_group(req, id, at);
        self.apply(effects)
    }

    fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &str)],
        at: i64,
    ) -> Vec<(u64, Response)> {
        let id = self.id();
        let req = SyncGroupRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::from((*a).to_owned())))
                .collect(),
            ..Default::default()
        };
        let effects = self.coordinator.sync_group(req, id, at);
        self.apply(effects)
    }

    fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        topic: &str,
        offset: i64,
        at: i64,
    ) -> Vec<(u64, Response)> {
        let id = self.id();
        let req = OffsetCommitRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            retention_time_ms: -1,
            api_version: 8,
            offsets: vec![OffsetCommitEntry {
                topic: topic.into(),
                partition: 0,
                offset,
                leader_epoch: 1,
                metadata: Some(format!("at {at}")),
            }],
            ..Default::default()
        };
        let effects = self.coordinator.offset_commit(req, id, at);
        self.apply(effects)
    }

    fn tick(&mut self, at: i64) -> Vec<(u64, Response)> {
        let effects = self.coordinator.tick(at);
        self.apply(effects)
    }
}

fn replay(log: &[PersistRecord]) -> GroupCoordinator {
    replay_at(log, 0)
}

fn replay_at(log: &[PersistRecord], now: i64) -> GroupCoordinator {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    for r in log {
        c.replay(&r.key, r.value.as_deref()).expect("replay");
    }
    c.load_all_partitions(now);
    c
}

/// Keeps the last record of every key, in log order, and drops tombstones: what a fully
/// compacted `__consumer_offsets` holds once `delete.retention.ms` has passed.
fn compact(log: &[PersistRecord]) -> Vec<PersistRecord> {
    let mut last: HashMap<&Bytes, usize> = HashMap::new();
    for (i, r) in log.iter().enumerate() {
        last.insert(&r.key, i);
    }
    log.iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.key) == Some(i) && r.value.is_some())
        .map(|(_, r)| r.clone())
        .collect()
}

/// The durable part of a group at rest (Empty or Stable).
fn durable(summary: &GroupSummary) -> GroupSummary {
    let mut s = summary.clone();
    if s.state == GroupState::Stable {
        s.state_timestamp_ms = None;
    }
    s
}

fn assert_same(live: &GroupCoordinator, replayed: &GroupCoordinator) {
    let mut ids = live.group_ids();
    ids.extend(replayed.group_ids());
    ids.sort();
    ids.dedup();
    for id in ids {
        let a = live.group_summary(&id);
        let b = replayed.group_summary(&id);
        match (&a, &b) {
            (Some(a), Some(b)) if matches!(a.state, GroupState::Empty | GroupState::Stable) => {
                assert_eq!(durable(a), durable(b), "group {id}");
            }
            (Some(_), Some(_)) => {}
            // Groups created in memory without a record of their own (a simple commit that
            // failed) carry nothing durable.
            (Some(a), None) => assert!(
                a.state == GroupState::Empty
                    && a.members.is_empty()
                    && live.committed_offsets(&id).is_empty(),
                "group {id} lost by replay: {a:?}"
            ),
            (None, Some(b)) => panic!("group {id} resurrected by replay: {b:?}"),
            (None, None) => {}
        }
        assert_eq!(
            live.committed_offsets(&id),
            replayed.committed_offsets(&id),
            "offsets of {id}"
        );
    }
}

fn join_response(responses: &[(u64, Response)], id: u64) -> fjord_coordinator::JoinGroupResponse {
    responses
        .iter()
        .find_map(|(rid, r)| match r {
            Response::JoinGroup(j) if *rid == id => Some(j.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join response for {id} in {responses:?}"))
}

#[test]
fn scenario_replays_to_identical_state() {
    let mut d = Driver::new();
    // Group "orders": two members, two generations, offsets.
    d.join("orders", "", "a", &["orders"], 0);
    d.join("orders", "", "b", &["orders"], 0);
    d.tick(3_000);
    let rs = d.tick(6_000);
    let a = join_response(&rs, 1);
    let b = join_response(&rs, 2);
    assert_eq!(a.generation_id, 1);
    d.sync(
        "orders",
        &a.member_id,
        1,
        &[(&a.member_id, "orders-0"), (&b.member_id, "orders-1")],
        6_100,
    );
    d.sync("orders", &b.member_id, 1, &[], 6_100);
    d.commit("orders", &a.member_id, 1, "orders", 10, 6_200);
    d.commit("orders", &b.member_id, 1, "orders", 20, 6_300);

    // Group "audit": simple commits only, then deleted.
    d.commit("audit", "", -1, "log", 5, 6_400);
    // Group "gone": one member that leaves, then the group is deleted.
    d.join("gone", "", "c", &["t"], 6_500);
    let rs = d.tick(9_500);
    let c = join_response(&rs, 8);
    d.sync("gone", &c.member_id, 1, &[(&c.member_id, "t-0")], 9_600);
    d.commit("gone", &c.member_id, 1, "t", 3, 9_700);
    let id = d.id();
    let effects = d.coordinator.leave_group(
        LeaveGroupRequest {
            group_id: "gone".into(),
            members: vec![LeavingMember {
                member_id: c.member_id.clone(),
                ..Default::default()
            }],
        },
        id,
        9_800,
    );
    d.apply(effects);
    let id = d.id();
    let effects = d.coordinator.delete_groups(
        DeleteGroupsRequest {
            group_ids: vec!["gone".into()],
        },
        id,
        9_900,
    );
    d.apply(effects);

    // "orders" rebalances again: the leader rejoins with a new subscription.
    let id_a = d.next_id + 1;
    d.join("orders", &a.member_id, "a", &["orders", "payments"], 10_000);
    let id_b = d.next_id + 1;
    let rs = d.join("orders", &b.member_id, "b", &["orders"], 10_100);
    assert_eq!(join_response(&rs, id_a).generation_id, 2);
    assert_eq!(join_response(&rs, id_b).generation_id, 2);
    d.sync(
        "orders",
        &a.member_id,
        2,
        &[
            (&a.member_id, "orders-0,payments-0"),
            (&b.member_id, "orders-1"),
        ],
        10_200,
    );
    d.sync("orders", &b.member_id, 2, &[], 10_200);
    d.commit("orders", &a.member_id, 2, "payments", 7, 10_300);

    let replayed = replay(&d.log);
    assert_same(&d.coordinator, &replayed);
    let orders = replayed.group_summary("orders").expect("orders replayed");
    assert_eq!(orders.state, GroupState::Stable);
    assert_eq!(orders.generation, 2);
    assert_eq!(orders.protocol_name.as_deref(), Some("range"));
    assert_eq!(orders.leader.as_deref(), Some(a.member_id.as_str()));
    assert_eq!(&orders.members[0].assignment[..], b"orders-0,payments-0");
    assert_eq!(replayed.committed_offsets("orders").len(), 2);
    assert!(replayed.group_summary("gone").is_none());
    assert_eq!(replayed.committed_offsets("audit")[0].offset, 5);

    // The compacted log says the same.
    let compacted = replay(&compact(&d.log));
    assert_same(&d.coordinator, &compacted);

    // And a coordinator restarted from the log serves the members of generation 2 as if
    // nothing happened (sessions restart when the partition is loaded).
    let mut replayed = replay_at(&d.log, 10_500);
    let effects = replayed.heartbeat(
        HeartbeatRequest {
            group_id: "orders".into(),
            generation_id: 2,
            member_id: b.member_id.clone(),
            group_instance_id: None,
        },
        RequestId(999),
        11_000,
    );
    assert!(matches!(
        &effects[..],
        [Effect::Respond { response: Response::Heartbeat(h), .. }] if h.error == fjord_common::ErrorCode::None
    ));
}

/// What a simulated client does next.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    NeedJoin,
    Joining,
    NeedSync { leader: bool, members: Vec<String> },
    Syncing,
    Stable,
}

#[derive(Debug, Clone)]
struct Client {
    member_id: String,
    generation: i32,
    phase: Phase,
}

/// One step of a randomized client population: mostly well-behaved clients following the
/// protocol (`Act`), with crashes, leaves, deletes, stray commits and time passing.
#[derive(Debug, Clone)]
enum Op {
    Act {
        group: usize,
        client: usize,
        commit: bool,
    },
    Crash {
        group: usize,
        client: usize,
    },
    Leave {
        group: usize,
        client: usize,
    },
    SimpleCommit {
        group: usize,
    },
    Delete {
        group: usize,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..2usize, 0..4usize, any::<bool>())
            .prop_map(|(group, client, commit)| Op::Act { group, client, commit }),
        1 => (0..2usize, 0..4usize).prop_map(|(group, client)| Op::Crash { group, client }),
        1 => (0..2usize, 0..4usize).prop_map(|(group, client)| Op::Leave { group, client }),
        1 => (0..2usize).prop_map(|group| Op::SimpleCommit { group }),
        1 => (0..2usize).prop_map(|group| Op::Delete { group }),
        4 => (1..4_000i64).prop_map(|ms| Op::Advance { ms }),
        1 => (4_000..40_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

const GROUPS: [&str; 2] = ["g0", "g1"];

/// Client 3 is static (group.instance.id); clients 0 and 1 use JoinGroup v4+
/// (MEMBER_ID_REQUIRED), client 2 an older version.
fn join_request(group: usize, client: usize, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUPS[group].into(),
        member_id: member_id.into(),
        group_instance_id: (client == 3).then(|| format!("static-{group}")),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(&["t"]))],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 15_000,
        client_id: format!("c{client}"),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: client < 2,
        supports_skip_assignment: client == 3,
        reason: None,
    }
}

fn handle(
    clients: &mut BTreeMap<(usize, usize), Client>,
    owner: &HashMap<u64, (usize, usize)>,
    responses: Vec<(u64, Response)>,
) {
    use fjord_common::ErrorCode as E;
    for (id, response) in responses {
        let Some(who) = owner.get(&id) else { continue };
        let Some(c) = clients.get_mut(who) else {
            continue;
        };
        let error = match &response {
            Response::JoinGroup(j) => {
                if j.error == E::None {
                    c.member_id = j.member_id.clone();
                    c.generation = j.generation_id;
                    c.phase = Phase::NeedSync {
                        leader: j.leader == j.member_id && !j.skip_assignment,
                        members: j.members.iter().map(|m| m.member_id.clone()).collect(),
                    };
                    continue;
                }
                if j.error == E::MemberIdRequired {
                    c.member_id = j.member_id.clone();
                }
                j.error
            }
            Response::SyncGroup(r) => {
                if r.error == E::None {
                    c.phase = Phase::Stable;
                    continue;
                }
                r.error
            }
            Response::Heartbeat(h) => h.error,
            Response::OffsetCommit(r) => r.partitions[0].error,
            _ => continue,
        };
        match error {
            E::None => {}
            E::UnknownMemberId | E::FencedInstanceId => {
                c.member_id.clear();
                c.generation = -1;
                c.phase = Phase::NeedJoin;
            }
            _ => c.phase = Phase::NeedJoin,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Clients following the protocol at random times, with crashes, leaves and deletes.
    /// Every request gets exactly one response, generations never go back, groups keep
    /// their invariants, and the log always replays to what memory holds.
    #[test]
    fn random_clients(ops in proptest::collection::vec(op(), 1..120)) {
        let mut d = Driver::new();
        let mut now = 0i64;
        let mut clients: BTreeMap<(usize, usize), Client> = BTreeMap::new();
        let mut owner: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut last_generation: BTreeMap<usize, i32> = BTreeMap::new();
        for op in ops {
            let responses = match op {
                Op::Advance { ms } => {
                    now += ms;
                    d.tick(now)
                }
                Op::Act { group, client, commit } => {
                    let c = clients.entry((group, client)).or_insert(Client {
                        member_id: String::new(),
                        generation: -1,
                        phase: Phase::NeedJoin,
                    }).clone();
                    let id = d.id();
                    owner.insert(id.0, (group, client));
                    let instance = (client == 3).then(|| format!("static-{group}"));
                    let effects = match c.phase {
                        Phase::NeedJoin => {
                            if let Some(c) = clients.get_mut(&(group, client)) {
                                c.phase = Phase::Joining;
                            }
                            d.coordinator.join_group(join_request(group, client, &c.member_id), id, now)
                        }
                        Phase::NeedSync { leader, members } => {
                            if let Some(c) = clients.get_mut(&(group, client)) {
                                c.phase = Phase::Syncing;
                            }
                            let assignments = if leader {
                                members.iter().map(|m| (m.clone(), Bytes::from(format!("{m}@{}", c.generation)))).collect()
                            } else {
                                Vec::new()
                            };
                            d.coordinator.sync_group(
                                SyncGroupRequest {
                                    group_id: GROUPS[group].into(),
                                    generation_id: c.generation,
                                    member_id: c.member_id.clone(),
                                    group_instance_id: instance,
                                    protocol_type: Some("consumer".into()),
                                    protocol_name: Some("range".into()),
                                    assignments,
                                },
                                id,
                                now,
                            )
                        }
                        Phase::Stable if commit => d.coordinator.offset_commit(
                            OffsetCommitRequest {
                                group_id: GROUPS[group].into(),
                                generation_id: c.generation,
                                member_id: c.member_id.clone(),
                                group_instance_id: instance,
                                retention_time_ms: -1,
                                api_version: 8,
                                offsets: vec![OffsetCommitEntry {
                                    topic: "t".into(),
                                    partition: client as i32,
                                    offset: now,
                                    leader_epoch: 3,
                                    metadata: None,
                                }],
                            },
                            id,
                            now,
                        ),
                        Phase::Joining | Phase::Syncing | Phase::Stable => d.coordinator.heartbeat(
                            HeartbeatRequest {
                                group_id: GROUPS[group].into(),
                                generation_id: c.generation,
                                member_id: c.member_id.clone(),
                                group_instance_id: instance,
                            },
                            id,
                            now,
                        ),
                    };
                    d.apply(effects)
                }
                Op::Crash { group, client } => {
                    // The client restarts: a static member keeps its instance id, anyone
                    // else comes back as a new member.
                    clients.insert((group, client), Client {
                        member_id: String::new(),
                        generation: -1,
                        phase: Phase::NeedJoin,
                    });
                    Vec::new()
                }
                Op::Leave { group, client } => {
                    let member = clients.get(&(group, client)).map(|c| c.member_id.clone()).unwrap_or_default();
                    clients.remove(&(group, client));
                    let id = d.id();
                    let effects = d.coordinator.leave_group(
                        LeaveGroupRequest {
                            group_id: GROUPS[group].into(),
                            members: vec![LeavingMember {
                                member_id: member,
                                group_instance_id: (client == 3).then(|| format!("static-{group}")),
                                reason: None,
                            }],
                        },
                        id,
                        now,
                    );
                    d.apply(effects)
                }
                Op::SimpleCommit { group } => d.commit(GROUPS[group], "", -1, "admin", now, now),
                Op::Delete { group } => {
                    let id = d.id();
                    let effects = d.coordinator.delete_groups(
                        DeleteGroupsRequest { group_ids: vec![GROUPS[group].into()] },
                        id,
                        now,
                    );
                    d.apply(effects)
                }
            };
            handle(&mut clients, &owner, responses);
            for (i, g) in GROUPS.iter().enumerate() {
                match d.coordinator.group_summary(g) {
                    Some(s) => {
                        let last = last_generation.entry(i).or_insert(0);
                        prop_assert!(s.generation >= *last, "generation of {} went back", g);
                        *last = s.generation;
                        if s.state == GroupState::Empty {
                            prop_assert!(s.members.is_empty(), "{:?}", s);
                        }
                        if matches!(s.state, GroupState::Stable | GroupState::CompletingRebalance) {
                            prop_assert!(!s.members.is_empty(), "{:?}", s);
                        }
                        if !s.members.is_empty() {
                            let leader = s.leader.clone().unwrap_or_default();
                            prop_assert!(s.members.iter().any(|m| m.member_id == leader), "{:?}", s);
                        }
                        let mut instances: Vec<_> = s.members.iter().filter_map(|m| m.group_instance_id.clone()).collect();
                        let n = instances.len();
                        instances.dedup();
                        prop_assert_eq!(n, instances.len(), "one member per instance id");
                    }
                    None => {
                        last_generation.remove(&i);
                    }
                }
            }
            let replayed = replay(&d.log);
            assert_same(&d.coordinator, &replayed);
        }
        // Unloading answers whatever is still parked.
        for p in 0..50 {
            let effects = d.coordinator.unload_partition(p);
            d.apply(effects);
        }
        for id in &d.asked {
            let n = d.responses.get(id).map_or(0, Vec::len);
            prop_assert_eq!(n, 1, "request {} answered {} times", id, n);
        }
        prop_assert_eq!(d.responses.len(), d.asked.len());
    }
}
