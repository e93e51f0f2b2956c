//! Classic group membership (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) and offset commits.
//!
//! The join itself runs as a spawned task ([`join_group`]) so that `poll(timeout)` can return
//! while a rebalance is still waiting for other members; the consumer applies its outcome
//! (and runs the rebalance listener) on the caller's task. A heartbeat task keeps a stable
//! member alive every `heartbeat.interval.ms` and flags rejoins the coordinator asks for.

use super::assignor::{assign, MemberSubscription};
use crate::cluster::{Cluster, ConnKey};
use crate::config::{AssignorKind, ConsumerSettings};
use crate::conn::sb;
use crate::error::{ClientError, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use fjord_common::{ErrorCode, TopicPartition};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// ConsumerProtocol version written (owned partitions, generation and rack: v3).
const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// Where the member stands in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Not in the group (never joined, left, or fenced).
    Unjoined,
    /// A JoinGroup/SyncGroup round is running.
    Rebalancing,
    /// Has an assignment for `generation`; heartbeats run.
    Stable,
}

/// Group state shared by the consumer, the join task and the heartbeat task.
#[derive(Debug)]
pub(crate) struct GroupState {
    pub(crate) coordinator: Option<i32>,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: bool,
    pub(crate) state: MemberState,
    /// Set by heartbeats or commits: the consumer must rejoin on its next poll.
    pub(crate) rejoin_needed: bool,
    /// Set when the member was fenced out (its partitions are lost, not revoked).
    pub(crate) lost: bool,
    pub(crate) last_poll: Instant,
    pub(crate) closed: bool,
}

/// Shared handle on the group state.
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) state: Mutex<GroupState>,
    /// Wakes a waiting `poll` (rejoin needed).
    pub(crate) wake: Notify,
}

impl Group {
    pub(crate) fn new(group_id: String, instance_id: Option<String>) -> Arc<Self> {
        Arc::new(Group {
            group_id,
            instance_id,
            state: Mutex::new(GroupState {
                coordinator: None,
                member_id: String::new(),
                generation: -1,
                protocol: None,
                leader: false,
                state: MemberState::Unjoined,
                rejoin_needed: true,
                lost: false,
                last_poll: Instant::now(),
                closed: false,
            }),
            wake: Notify::new(),
        })
    }

    /// Handles a group error code from any group request: returns the error, and updates the
    /// state (coordinator moved, member fenced, rebalance started).
    pub(crate) fn on_error(&self, code: ErrorCode) {
        let mut st = self.state.lock();
        match code {
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => st.coordinator = None,
            ErrorCode::RebalanceInProgress => st.rejoin_needed = true,
            ErrorCode::UnknownMemberId
            | ErrorCode::IllegalGeneration
            | ErrorCode::FencedInstanceId => {
                st.rejoin_needed = true;
                st.lost = st.state != MemberState::Unjoined;
                st.member_id.clear();
                st.generation = -1;
                st.state = MemberState::Unjoined;
            }
            _ => {}
        }
        drop(st);
        self.wake.notify_waiters();
    }

    /// The coordinator's node id, looking it up when unknown.
    pub(crate) async fn coordinator(&self, cluster: &Cluster) -> Result<i32> {
        if let Some(c) = self.state.lock().coordinator {
            return Ok(c);
        }
        let node = find_coordinator(cluster, &self.group_id).await?;
        self.state.lock().coordinator = Some(node);
        Ok(node)
    }
}

/// FindCoordinator for a group; records the coordinator's address with the cluster.
pub(crate) async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<i32> {
    let response = cluster
        .send_any::<FindCoordinatorRequest, _>(|v| {
            let mut r = FindCoordinatorRequest::default();
            if v >= 4 {
                r.coordinator_keys = vec![sb(group)];
            } else {
                r.key = sb(group);
            }
            r.key_type = 0;
            Ok(r)
        })
        .await?;
    let (code, message, node, host, port) = match response.coordinators.first() {
        Some(c) => (
            c.error_code,
            c.error_message.clone(),
            *c.node_id,
            c.host.clone(),
            c.port,
        ),
        None => (
            response.error_code,
            response.error_message.clone(),
            *response.node_id,
            response.host.clone(),
            response.port,
        ),
    };
    ClientError::check(
        code,
        message.as_deref(),
        format!("FindCoordinator for group {group}"),
    )?;
    cluster.set_coordinator_addr(node, format!("{host}:{port}"));
    Ok(node)
}

/// Encodes ConsumerProtocol data: an int16 version, then the struct at that version.
fn encode_versioned<T: Encodable>(value: &T, version: i16) -> Result<Bytes> {
    let size = value
        .compute_size(version)
        .map_err(|e| ClientError::protocol(format!("consumer protocol: {e}")))?;
    let mut buf = BytesMut::with_capacity(2 + size);
    buf.put_i16(version);
    value
        .encode(&mut buf, version)
        .map_err(|e| ClientError::protocol(format!("consumer protocol: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes ConsumerProtocol data written at any version (newer ones read as our latest).
fn decode_versioned<T: Decodable>(mut bytes: Bytes, max: i16) -> Result<T> {
    if bytes.len() < 2 {
        return Err(ClientError::protocol("consumer protocol data too short"));
    }
    let version = bytes.get_i16().min(max);
    if version < 0 {
        return Err(ClientError::protocol("negative consumer protocol version"));
    }
    T::decode(&mut bytes, version)
        .map_err(|e| ClientError::protocol(format!("consumer protocol: {e}")))
}

fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut map: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        map.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    map
}

pub(crate) fn encode_subscription(
    topics: &[String],
    owned: &[TopicPartition],
    generation: i32,
    rack: Option<&str>,
) -> Result<Bytes> {
    let mut s = ConsumerProtocolSubscription::default();
    s.topics = topics.iter().map(|t| sb(t)).collect();
    s.user_data = None;
    s.owned_partitions = group_by_topic(owned)
        .into_iter()
        .map(|(t, ps)| {
            let mut o = OwnedTopic::default();
            o.topic = TopicName(sb(t));
            o.partitions = ps;
            o
        })
        .collect();
    s.generation_id = generation;
    s.rack_id = rack.map(sb);
    encode_versioned(&s, CONSUMER_PROTOCOL_VERSION)
}

pub(crate) fn decode_subscription(
    member_id: &str,
    instance: Option<&str>,
    bytes: Bytes,
) -> Result<MemberSubscription> {
    let s: ConsumerProtocolSubscription = decode_versioned(bytes, CONSUMER_PROTOCOL_VERSION)?;
    Ok(MemberSubscription {
        member_id: member_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .flat_map(|o| {
                o.partitions
                    .iter()
                    .map(|p| TopicPartition::new(o.topic.as_str(), *p))
            })
            .collect(),
        generation: s.generation_id,
    })
}

pub(crate) fn encode_assignment(partitions: &[TopicPartition]) -> Result<Bytes> {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = group_by_topic(partitions)
        .into_iter()
        .map(|(t, ps)| {
            let mut at = AssignedTopic::default();
            at.topic = TopicName(sb(t));
            at.partitions = ps;
            at
        })
        .collect();
    a.user_data = None;
    encode_versioned(&a, CONSUMER_PROTOCOL_VERSION)
}

pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let a: ConsumerProtocolAssignment = decode_versioned(bytes, CONSUMER_PROTOCOL_VERSION)?;
    Ok(a.assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.as_str(), *p))
        })
        .collect())
}

/// What a finished join hands back to the consumer.
#[derive(Debug)]
pub(crate) struct JoinOutcome {
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) protocol: String,
    pub(crate) leader: bool,
    pub(crate) assignment: Vec<TopicPartition>,
    /// Partition counts the leader assigned from (to notice later changes).
    pub(crate) assigned_from: HashMap<String, i32>,
}

/// Inputs of one join round.
pub(crate) struct JoinRequest {
    pub(crate) topics: Vec<String>,
    pub(crate) owned: Vec<TopicPartition>,
    pub(crate) generation: i32,
    pub(crate) reason: String,
}

/// Runs JoinGroup (with the MEMBER_ID_REQUIRED round trip) and SyncGroup until the member
/// has an assignment, retrying what Kafka says is retriable.
pub(crate) async fn join_group(
    cluster: Arc<Cluster>,
    group: Arc<Group>,
    settings: Arc<ConsumerSettings>,
    request: JoinRequest,
) -> Result<JoinOutcome> {
    let mut attempt = 0u32;
    loop {
        match join_once(&cluster, &group, &settings, &request).await {
            Ok(outcome) => return Ok(outcome),
            Err(e) => {
                let code = e.code();
                let fenced = matches!(
                    code,
                    Some(ErrorCode::UnknownMemberId)
                        | Some(ErrorCode::IllegalGeneration)
                        | Some(ErrorCode::FencedInstanceId)
                );
                // A fenced member that still owns partitions must give them up (as lost)
                // before it joins again: the consumer does that and starts a new round.
                if fenced && !request.owned.is_empty() {
                    return Err(e);
                }
                let retry_now = fenced
                    || matches!(
                        code,
                        Some(ErrorCode::MemberIdRequired) | Some(ErrorCode::RebalanceInProgress)
                    );
                if !retry_now && !e.is_retriable() {
                    return Err(e);
                }
                if group.state.lock().closed {
                    return Err(ClientError::Closed);
                }
                if !retry_now {
                    let delay = settings.net.retry_delay(attempt);
                    attempt += 1;
                    tracing::debug!(group = %group.group_id, error = %e, "join failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Applies an error code of a JoinGroup/SyncGroup response to the group state. Unlike
/// [`Group::on_error`] it never asks for another rebalance: the join round retries itself.
fn on_join_error(group: &Group, code: ErrorCode) {
    let mut st = group.state.lock();
    match code {
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => st.coordinator = None,
        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration | ErrorCode::FencedInstanceId => {
            st.member_id.clear();
            st.generation = -1;
            st.lost = true;
        }
        _ => {}
    }
}

async fn join_once(
    cluster: &Arc<Cluster>,
    group: &Arc<Group>,
    settings: &ConsumerSettings,
    request: &JoinRequest,
) -> Result<JoinOutcome> {
    let coordinator = group.coordinator(cluster).await?;
    let conn = match cluster.connection(ConnKey::Coordinator(coordinator)).await {
        Ok(c) => c,
        Err(e) => {
            on_join_error(group, ErrorCode::CoordinatorNotAvailable);
            return Err(e);
        }
    };
    let member_id = group.state.lock().member_id.clone();
    let version = conn.version(ApiKey::JoinGroup)?;
    let mut protocols = Vec::new();
    for kind in &settings.assignors {
        let mut p = JoinGroupRequestProtocol::default();
        p.name = sb(kind.protocol_name());
        p.metadata = encode_subscription(
            &request.topics,
            &request.owned,
            request.generation,
            settings.client_rack.as_deref(),
        )?;
        protocols.push(p);
    }
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(sb(&group.group_id));
    join.session_timeout_ms = millis(settings.session_timeout);
    if version >= 1 {
        join.rebalance_timeout_ms = millis(settings.max_poll_interval);
    }
    join.member_id = sb(&member_id);
    if version >= 5 {
        join.group_instance_id = group.instance_id.as_deref().map(sb);
    }
    join.protocol_type = sb("consumer");
    join.protocols = protocols;
    if version >= 8 {
        join.reason = Some(sb(&request.reason));
    }
    // The coordinator holds JoinGroup until every member joined (up to the rebalance timeout).
    let timeout = settings.max_poll_interval + settings.net.request_timeout;
    group.state.lock().state = MemberState::Rebalancing;
    let response = conn.request_at(&join, version, timeout).await?;
    let code = ErrorCode::from_code(response.error_code);
    if code == ErrorCode::MemberIdRequired {
        group.state.lock().member_id = response.member_id.to_string();
        return Err(ClientError::kafka(response.error_code, None, "JoinGroup"));
    }
    if code != ErrorCode::None {
        on_join_error(group, code);
        return Err(ClientError::kafka(
            response.error_code,
            None,
            format!("JoinGroup for group {}", group.group_id),
        ));
    }
    let member_id = response.member_id.to_string();
    let generation = response.generation_id;
    let protocol = response
        .protocol_name
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let kind = AssignorKind::parse(&protocol).ok_or_else(|| {
        ClientError::protocol(format!(
            "coordinator selected unknown assignor `{protocol}`"
        ))
    })?;
    let leader = response.leader.as_str() == member_id;
    {
        let mut st = group.state.lock();
        st.member_id = member_id.clone();
        st.generation = generation;
    }
    let mut assignments = Vec::new();
    let mut assigned_from = HashMap::new();
    if leader && !response.skip_assignment {
        let mut members = Vec::new();
        for m in &response.members {
            members.push(decode_subscription(
                m.member_id.as_str(),
                m.group_instance_id.as_deref(),
                m.metadata.clone(),
            )?);
        }
        let mut topics: Vec<String> = members
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        cluster.add_interest(topics.iter().map(String::as_str));
        let md = cluster.refresh().await?;
        for t in &topics {
            if let Some(info) = md.topics.get(t) {
                if info.error == 0 && !info.partitions.is_empty() {
                    assigned_from.insert(t.clone(), info.partitions.len() as i32);
                }
            }
        }
        let plan = assign(kind, &members, &assigned_from);
        tracing::debug!(group = %group.group_id, generation, assignor = %protocol, ?plan, "leader computed assignment");
        for (member, partitions) in plan {
            let mut a = SyncGroupRequestAssignment::default();
            a.member_id = sb(&member);
            a.assignment = encode_assignment(&partitions)?;
            assignments.push(a);
        }
    }
    let version = conn.version(ApiKey::SyncGroup)?;
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(sb(&group.group_id));
    sync.generation_id = generation;
    sync.member_id = sb(&member_id);
    if version >= 3 {
        sync.group_instance_id = group.instance_id.as_deref().map(sb);
    }
    if version >= 5 {
        sync.protocol_type = Some(sb("consumer"));
        sync.protocol_name = Some(sb(&protocol));
    }
    sync.assignments = assignments;
    let response = conn.request_at(&sync, version, timeout).await?;
    let code = ErrorCode::from_code(response.error_code);
    if code != ErrorCode::None {
        on_join_error(group, code);
        return Err(ClientError::kafka(
            response.error_code,
            None,
            format!("SyncGroup for group {}", group.group_id),
        ));
    }
    let assignment = decode_assignment(response.assignment)?;
    {
        // Heartbeats resume at once; the consumer applies the assignment on its next poll.
        let mut st = group.state.lock();
        st.state = MemberState::Stable;
        st.protocol = Some(protocol.clone());
        st.leader = leader;
    }
    Ok(JoinOutcome {
        generation,
        member_id,
        protocol,
        leader,
        assignment,
        assigned_from,
    })
}

pub(crate) fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Sends heartbeats while the member is stable; flags rejoins and fencing; leaves the group
/// when `poll` was not called within `max.poll.interval.ms` (as Java's heartbeat thread does).
pub(crate) async fn heartbeat_loop(
    cluster: Arc<Cluster>,
    group: Arc<Group>,
    settings: Arc<ConsumerSettings>,
) {
    loop {
        tokio::time::sleep(settings.heartbeat_interval).await;
        let (member_id, generation, stable, closed, last_poll) = {
            let st = group.state.lock();
            (
                st.member_id.clone(),
                st.generation,
                st.state == MemberState::Stable,
                st.closed,
                st.last_poll,
            )
        };
        if closed {
            return;
        }
        if !stable {
            continue;
        }
        if last_poll.elapsed() > settings.max_poll_interval {
            tracing::warn!(group = %group.group_id, "poll not called within max.poll.interval.ms; leaving the group");
            let _ = leave_group(&cluster, &group, "consumer poll timeout has expired").await;
            {
                let mut st = group.state.lock();
                st.state = MemberState::Unjoined;
                st.member_id.clear();
                st.generation = -1;
                st.rejoin_needed = true;
                st.lost = true;
            }
            group.wake.notify_waiters();
            continue;
        }
        let result = async {
            let coordinator = group.coordinator(&cluster).await?;
            cluster
                .send::<HeartbeatRequest, _>(ConnKey::Coordinator(coordinator), |v| {
                    let mut r = HeartbeatRequest::default();
                    r.group_id = GroupId(sb(&group.group_id));
                    r.generation_id = generation;
                    r.member_id = sb(&member_id);
                    if v >= 3 {
                        r.group_instance_id = group.instance_id.as_deref().map(sb);
                    }
                    Ok(r)
                })
                .await
        }
        .await;
        match result {
            Ok(r) if r.error_code == 0 => {}
            Ok(r) => {
                let code = ErrorCode::from_code(r.error_code);
                tracing::debug!(group = %group.group_id, %code, "heartbeat error");
                // Only act if nothing changed meanwhile.
                let current = {
                    let st = group.state.lock();
                    st.generation == generation && st.member_id == member_id
                };
                if current {
                    group.on_error(code);
                }
            }
            Err(e) => {
                tracing::debug!(group = %group.group_id, error = %e, "heartbeat failed");
                if e.is_retriable() {
                    group.state.lock().coordinator = None;
                }
            }
        }
    }
}

/// LeaveGroup for this member (not for static members, which keep their identity).
pub(crate) async fn leave_group(cluster: &Cluster, group: &Group, reason: &str) -> Result<()> {
    let member_id = group.state.lock().member_id.clone();
    if member_id.is_empty() || group.instance_id.is_some() {
        return Ok(());
    }
    let coordinator = group.coordinator(cluster).await?;
    let response = cluster
        .send::<LeaveGroupRequest, _>(ConnKey::Coordinator(coordinator), |v| {
            let mut r = LeaveGroupRequest::default();
            r.group_id = GroupId(sb(&group.group_id));
            if v >= 3 {
                let mut m = MemberIdentity::default();
                m.member_id = sb(&member_id);
                if v >= 5 {
                    m.reason = Some(sb(reason));
                }
                r.members = vec![m];
            } else {
                r.member_id = sb(&member_id);
            }
            Ok(r)
        })
        .await?;
    ClientError::check(
        response.error_code,
        None,
        format!("LeaveGroup for group {}", group.group_id),
    )?;
    for m in &response.members {
        ClientError::check(
            m.error_code,
            None,
            format!("LeaveGroup member {}", m.member_id.as_str()),
        )?;
    }
    Ok(())
}

/// OffsetCommit of `offsets` (offset, leader epoch, metadata) for `group`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit_offsets(
    cluster: &Cluster,
    coordinator: i32,
    group_id: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &[(TopicPartition, i64, Option<i32>, Option<String>)],
) -> Result<Vec<(TopicPartition, Result<()>)>> {
    let response = cluster
        .send::<OffsetCommitRequest, _>(ConnKey::Coordinator(coordinator), |v| {
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(sb(group_id));
            r.generation_id_or_member_epoch = generation;
            r.member_id = sb(member_id);
            if v >= 7 {
                r.group_instance_id = instance_id.map(sb);
            }
            let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
            for (tp, offset, epoch, metadata) in offsets {
                let mut p = OffsetCommitRequestPartition::default();
                p.partition_index = tp.partition;
                p.committed_offset = *offset;
                if v >= 6 {
                    p.committed_leader_epoch = epoch.unwrap_or(-1);
                }
                p.committed_metadata = Some(sb(metadata.as_deref().unwrap_or("")));
                by_topic.entry(tp.topic.as_str()).or_default().push(p);
            }
            r.topics = by_topic
                .into_iter()
                .map(|(t, ps)| {
                    let mut ot = OffsetCommitRequestTopic::default();
                    ot.name = TopicName(sb(t));
                    ot.partitions = ps;
                    ot
                })
                .collect();
            Ok(r)
        })
        .await?;
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            let result = ClientError::check(
                p.error_code,
                None,
                format!("OffsetCommit {tp} for group {group_id}"),
            );
            out.push((tp, result));
        }
    }
    Ok(out)
}

/// A committed offset as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: Option<i32>,
    pub(crate) metadata: Option<String>,
}

/// OffsetFetch for `partitions` (`None`: every partition with a committed offset).
pub(crate) async fn fetch_committed(
    cluster: &Cluster,
    coordinator: i32,
    group_id: &str,
    partitions: Option<&[TopicPartition]>,
    require_stable: bool,
) -> Result<HashMap<TopicPartition, Option<Committed>>> {
    let response = cluster
        .send::<OffsetFetchRequest, _>(ConnKey::Coordinator(coordinator), |v| {
            let mut r = OffsetFetchRequest::default();
            r.group_id = GroupId(sb(group_id));
            r.topics = match partitions {
                Some(ps) => Some(
                    group_by_topic(ps)
                        .into_iter()
                        .map(|(t, ids)| {
                            let mut ft = OffsetFetchRequestTopic::default();
                            ft.name = TopicName(sb(t));
                            ft.partition_indexes = ids;
                            ft
                        })
                        .collect(),
                ),
                None if v >= 2 => None,
                None => {
                    return Err(ClientError::UnsupportedVersion {
                        api: "OffsetFetch (all partitions) v2".into(),
                    })
                }
            };
            if v >= 7 {
                r.require_stable = require_stable;
            }
            Ok(r)
        })
        .await?;
    ClientError::check(
        response.error_code,
        None,
        format!("OffsetFetch for group {group_id}"),
    )?;
    let mut out = HashMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            ClientError::check(
                p.error_code,
                None,
                format!("OffsetFetch {tp} for group {group_id}"),
            )?;
            let committed = (p.committed_offset >= 0).then(|| Committed {
                offset: p.committed_offset,
                leader_epoch: (p.committed_leader_epoch >= 0).then_some(p.committed_leader_epoch),
                metadata: p
                    .metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .filter(|m| !m.is_empty()),
            });
            out.insert(tp, committed);
        }
    }
    if let Some(ps) = partitions {
        for tp in ps {
            out.entry(tp.clone()).or_insert(None);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_with_version_prefix() {
        let owned = vec![
            TopicPartition::new("a", 1),
            TopicPartition::new("a", 0),
            TopicPartition::new("b", 2),
        ];
        let bytes =
            encode_subscription(&["a".into(), "b".into()], &owned, 7, Some("rack1")).unwrap();
        assert_eq!(&bytes[..2], &[0, 3], "version 3 prefix");
        let s = decode_subscription("m1", Some("i1"), bytes).unwrap();
        assert_eq!(s.topics, vec!["a", "b"]);
        assert_eq!(s.generation, 7);
        assert_eq!(s.owned.len(), 3);
        assert!(s.owned.contains(&TopicPartition::new("b", 2)));
        assert_eq!(s.group_instance_id.as_deref(), Some("i1"));
        // A v0 subscription (topics + user data only) from an older client still decodes.
        let mut old = ConsumerProtocolSubscription::default();
        old.topics = vec![sb("x")];
        old.user_data = None;
        let v0 = encode_versioned(&old, 0).unwrap();
        let s = decode_subscription("m2", None, v0).unwrap();
        assert_eq!(s.topics, vec!["x"]);
        assert!(s.owned.is_empty());
    }

    #[test]
    fn assignment_round_trips() {
        let parts = vec![
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 3),
            TopicPartition::new("u", 1),
        ];
        let bytes = encode_assignment(&parts).unwrap();
        let mut back = decode_assignment(bytes).unwrap();
        back.sort();
        assert_eq!(back, parts);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(Bytes::from_static(&[0])).is_err());
    }
}
