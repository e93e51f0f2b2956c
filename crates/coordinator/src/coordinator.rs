//! The coordinator: request routing, offsets, timers, ownership and replay.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use fjord_common::ErrorCode;

use crate::api::{
    CommittedOffset, DeleteGroupsRequest, DeleteGroupsResponse, DeletedGroup,
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedMember, Effect,
    GroupState, GroupSummary, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupMemberResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, ListedGroup, MemberSummary, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchPartition,
    OffsetFetchRequest, OffsetFetchResponse, PartitionResult, PersistRecord, RequestId, Response,
    SyncGroupRequest, SyncGroupResponse,
};
use crate::config::GroupConfig;
use crate::group::{respond, Group, JoinTimerKind, Member};
use crate::record::{CoordinatorRecord, OffsetCommitValue, RecordError, RecordKey};

/// The group type every group of this coordinator has, as ListGroups v5 reports it.
pub const CLASSIC_GROUP_TYPE: &str = "classic";

/// Kafka's `__consumer_offsets` partition for a group: `abs(groupId.hashCode()) % n`, with
/// Java's `String.hashCode` over UTF-16 code units and Kafka's `Utils.abs` (which maps
/// `i32::MIN` to 0).
pub fn partition_for(group_id: &str, num_partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    if num_partitions <= 0 {
        0
    } else {
        abs % num_partitions
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionState {
    Loading,
    Loaded,
}

/// A timer, ordered for deterministic firing when several share a deadline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Join(String),
    Sync(String),
    Heartbeat(String, String),
    PendingMember(String, String),
    OffsetExpiry,
}

type GroupOffsets = BTreeMap<(String, i32), OffsetCommitValue>;

/// Kafka's classic group coordinator as a pure state machine.
///
/// See the [crate documentation](crate) for the driver contract.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    offsets: BTreeMap<String, GroupOffsets>,
    partitions: BTreeMap<i32, PartitionState>,
    next_offset_expiry_ms: i64,
    member_id_suffix: Box<dyn FnMut() -> String + Send>,
    next_seq: u64,
}

impl fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.config)
            .field("groups", &self.groups.len())
            .field("partitions", &self.partitions)
            .field("next_offset_expiry_ms", &self.next_offset_expiry_ms)
            .finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    /// A coordinator owning no partition yet, generating member ids as
    /// `{client_id or group_instance_id}-{random uuid}` like Kafka.
    pub fn new(config: GroupConfig) -> Self {
        Self::with_member_id_source(config, Box::new(|| uuid::Uuid::new_v4().to_string()))
    }

    /// Like [`new`](Self::new), with the suffix of generated member ids taken from `source`
    /// (tests use a counter to make runs reproducible).
    pub fn with_member_id_source(
        config: GroupConfig,
        source: Box<dyn FnMut() -> String + Send>,
    ) -> Self {
        let next_offset_expiry_ms = config.offsets_retention_check_interval_ms;
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            partitions: BTreeMap::new(),
            next_offset_expiry_ms,
            member_id_suffix: source,
            next_seq: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition owning `group_id`.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_topic_num_partitions)
    }

    // ---- ownership ---------------------------------------------------------------------

    /// Marks a partition as being loaded: its groups answer COORDINATOR_LOAD_IN_PROGRESS
    /// until [`load_partition`](Self::load_partition).
    pub fn begin_loading(&mut self, partition: i32) {
        self.partitions.insert(partition, PartitionState::Loading);
    }

    /// Takes ownership of a partition once its records have been [replayed](Self::replay):
    /// sessions of the loaded members start now.
    pub fn load_partition(&mut self, partition: i32, now_ms: i64) {
        if self.partitions.get(&partition) == Some(&PartitionState::Loaded) {
            return;
        }
        self.partitions.insert(partition, PartitionState::Loaded);
        for group in self
            .groups
            .values_mut()
            .filter(|g| g.partition == partition)
        {
            for m in group.members.values_mut() {
                m.heartbeat_deadline = Some(now_ms.saturating_add(i64::from(m.session_timeout_ms)));
            }
        }
    }

    /// Loads every partition of `__consumer_offsets` (the single-node case).
    pub fn load_all_partitions(&mut self, now_ms: i64) {
        for p in 0..self.config.offsets_topic_num_partitions.max(1) {
            self.load_partition(p, now_ms);
        }
    }

    /// Gives up a partition: parked requests of its groups are answered NOT_COORDINATOR and
    /// its groups and offsets are dropped from memory.
    pub fn unload_partition(&mut self, partition: i32) -> Vec<Effect> {
        let mut out = Vec::new();
        self.partitions.remove(&partition);
        let ids: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.partition == partition)
            .map(|g| g.id.clone())
            .collect();
        for id in ids {
            if let Some(mut g) = self.groups.remove(&id) {
                g.fail_all_parked(ErrorCode::NotCoordinator, &mut out);
            }
        }
        let num = self.config.offsets_topic_num_partitions;
        self.offsets
            .retain(|g, _| partition_for(g, num) != partition);
        out
    }

    /// Whether `partition` is loaded.
    pub fn is_loaded(&self, partition: i32) -> bool {
        self.partitions.get(&partition) == Some(&PartitionState::Loaded)
    }

    fn owning_partition(&self, group_id: &str) -> Result<i32, ErrorCode> {
        let p = self.partition_for(group_id);
        match self.partitions.get(&p) {
            Some(PartitionState::Loaded) => Ok(p),
            Some(PartitionState::Loading) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    // ---- replay --------------------------------------------------------------------------

    /// Applies one `__consumer_offsets` record (startup or partition load). Records of other
    /// group types are skipped; undecodable ones are an error and change nothing.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RecordError> {
        let record = CoordinatorRecord::decode(key, value)?;
        self.replay_record(record);
        Ok(())
    }

    /// Applies an already decoded record.
    pub fn replay_record(&mut self, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => self.apply_offset(&group, topic, partition, value),
            CoordinatorRecord::GroupMetadata {
                group,
                value: Some(value),
            } => {
                let partition = self.partition_for(&group);
                let rebuilt =
                    Group::from_record(group.clone(), partition, &value, &mut self.next_seq);
                self.groups.insert(group, rebuilt);
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                self.groups.remove(&group);
            }
            CoordinatorRecord::Unknown { key_version } => {
                tracing::debug!(key_version, "skipping a record of another group type");
            }
        }
    }

    fn apply_offset(
        &mut self,
        group_id: &str,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    ) {
        match value {
            Some(value) => {
                if !self.groups.contains_key(group_id) {
                    // A "simple" group: offsets without group management.
                    let p = self.partition_for(group_id);
                    self.groups.insert(
                        group_id.to_owned(),
                        Group::new(group_id.to_owned(), p, None),
                    );
                }
                self.offsets
                    .entry(group_id.to_owned())
                    .or_default()
                    .insert((topic, partition), value);
            }
            None => {
                if let Some(offsets) = self.offsets.get_mut(group_id) {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        self.offsets.remove(group_id);
                    }
                }
            }
        }
    }

    // ---- timers --------------------------------------------------------------------------

    /// Fires every timer due at `now_ms`: session expiry, join and sync phase deadlines,
    /// the initial rebalance delay, MEMBER_ID_REQUIRED members that never came back, and
    /// offset expiry. Every request handler does this first, so calling `tick` is only
    /// needed at [`next_deadline`](Self::next_deadline) when no request arrives.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        out
    }

    /// When the next timer is due (ms), if any: the driver should call
    /// [`tick`](Self::tick) then. May be in the past when a timer fired by a tick scheduled
    /// another that is already due.
    pub fn next_deadline(&self) -> Option<i64> {
        let mut next: Option<i64> = None;
        let mut consider = |d: i64| next = Some(next.map_or(d, |n: i64| n.min(d)));
        for g in self.groups.values().filter(|g| self.is_loaded(g.partition)) {
            if let Some(t) = &g.join_timer {
                consider(t.deadline);
            }
            if let Some(t) = &g.sync_timer {
                consider(t.deadline);
            }
            for m in g.members.values() {
                if let Some(d) = m.heartbeat_deadline {
                    consider(d);
                }
            }
            for d in g.pending_members.values() {
                consider(*d);
            }
        }
        if self
            .partitions
            .values()
            .any(|s| *s == PartitionState::Loaded)
        {
            consider(self.next_offset_expiry_ms);
        }
        next
    }

    fn due_timers(&self, now: i64) -> Vec<(i64, TimerRef)> {
        let mut due = Vec::new();
        for g in self.groups.values().filter(|g| self.is_loaded(g.partition)) {
            if let Some(t) = g.join_timer.filter(|t| t.deadline <= now) {
                due.push((t.deadline, TimerRef::Join(g.id.clone())));
            }
            if let Some(t) = g.sync_timer.filter(|t| t.deadline <= now) {
                due.push((t.deadline, TimerRef::Sync(g.id.clone())));
            }
            for m in g.members.values() {
                if let Some(d) = m.heartbeat_deadline.filter(|d| *d <= now) {
                    due.push((d, TimerRef::Heartbeat(g.id.clone(), m.id.clone())));
                }
            }
            for (id, d) in &g.pending_members {
                if *d <= now {
                    due.push((*d, TimerRef::PendingMember(g.id.clone(), id.clone())));
                }
            }
        }
        let any_loaded = self
            .partitions
            .values()
            .any(|s| *s == PartitionState::Loaded);
        if any_loaded && self.next_offset_expiry_ms <= now {
            due.push((self.next_offset_expiry_ms, TimerRef::OffsetExpiry));
        }
        due.sort();
        due
    }

    /// Fires the timers due at `now`, in deadline order. Timers scheduled while firing wait
    /// for the next call, so a zero timeout can never loop forever.
    fn fire_due_timers(&mut self, now: i64, out: &mut Vec<Effect>) {
        for (deadline, timer) in self.due_timers(now) {
            let cfg = &self.config;
            match timer {
                TimerRef::Join(gid) => {
                    let Some(g) = self.groups.get_mut(&gid) else {
                        continue;
                    };
                    let Some(t) = g.join_timer.filter(|t| t.deadline == deadline) else {
                        continue;
                    };
                    g.join_timer = None;
                    match t.kind {
                        JoinTimerKind::InitialDelay {
                            delay_ms,
                            remaining_ms,
                        } => g.on_initial_delay_expired(cfg, delay_ms, remaining_ms, now, out),
                        JoinTimerKind::Rebalance => g.complete_join(now, out),
                    }
                }
                TimerRef::Sync(gid) => {
                    let Some(g) = self.groups.get_mut(&gid) else {
                        continue;
                    };
                    let Some(t) = g.sync_timer.filter(|t| t.deadline == deadline) else {
                        continue;
                    };
                    g.on_sync_expired(cfg, t.generation, now, out);
                }
                TimerRef::Heartbeat(gid, mid) => {
                    let Some(g) = self.groups.get_mut(&gid) else {
                        continue;
                    };
                    if g.members.get(&mid).and_then(|m| m.heartbeat_deadline) != Some(deadline) {
                        continue;
                    }
                    g.on_heartbeat_expired(cfg, &mid, now, out);
                }
                TimerRef::PendingMember(gid, mid) => {
                    let Some(g) = self.groups.get_mut(&gid) else {
                        continue;
                    };
                    if g.pending_members.get(&mid) != Some(&deadline) {
                        continue;
                    }
                    tracing::info!(group = %gid, member = %mid, "pending member expired");
                    g.on_pending_member_expired(&mid, now, out);
                }
                TimerRef::OffsetExpiry => {
                    if self.next_offset_expiry_ms != deadline {
                        continue;
                    }
                    self.expire_offsets(now, out);
                    self.next_offset_expiry_ms =
                        now.saturating_add(self.config.offsets_retention_check_interval_ms.max(1));
                }
            }
        }
    }

    // ---- JoinGroup -----------------------------------------------------------------------

    /// JoinGroup. The response is often delayed until the join phase completes (from a
    /// later request or [`tick`](Self::tick)).
    pub fn join_group(
        &mut self,
        req: JoinGroupRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        self.handle_join(req, request_id, now_ms, &mut out);
        out
    }

    fn handle_join(
        &mut self,
        mut req: JoinGroupRequest,
        rid: RequestId,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        let fail = |out: &mut Vec<Effect>, member_id: &str, error: ErrorCode| {
            respond(
                out,
                rid,
                Response::JoinGroup(JoinGroupResponse::error(member_id, error)),
            );
        };
        if req.group_id.is_empty() {
            return fail(out, &req.member_id, ErrorCode::InvalidGroupId);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return fail(out, &req.member_id, ErrorCode::InvalidSessionTimeout);
        }
        let partition = match self.owning_partition(&req.group_id) {
            Ok(p) => p,
            Err(e) => return fail(out, &req.member_id, e),
        };
        if req.rebalance_timeout_ms < 0 {
            req.rebalance_timeout_ms = req.session_timeout_ms;
        }
        let is_unknown = req.member_id.is_empty();
        let is_new_group = !self.groups.contains_key(&req.group_id);
        if is_new_group {
            if !is_unknown {
                return fail(out, &req.member_id, ErrorCode::UnknownMemberId);
            }
            self.groups.insert(
                req.group_id.clone(),
                Group::new(req.group_id.clone(), partition, Some(now)),
            );
        }
        let mark = out.len();
        let mut ctx = JoinCtx {
            cfg: &self.config,
            member_id_suffix: &mut self.member_id_suffix,
            next_seq: &mut self.next_seq,
            now,
            rid,
        };
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return;
        };
        if !accept_joining_member(group, &req.member_id, ctx.cfg.max_size) {
            group.remove_member(&req.member_id, out);
            fail(out, "", ErrorCode::GroupMaxSizeReached);
        } else if is_unknown {
            ctx.join_new_member(group, &req, out);
        } else {
            ctx.join_existing_member(group, &req, out);
        }
        if is_new_group
            && !out[mark..]
                .iter()
                .any(|e| matches!(e, Effect::Persist { .. }))
        {
            // Kafka persists a newly created group even when the join wrote nothing else.
            let mut persist = Vec::new();
            group.persist_value(&group.empty_metadata_value(), &mut persist);
            for (i, effect) in persist.into_iter().enumerate() {
                out.insert(mark + i, effect);
            }
        }
    }

    // ---- SyncGroup -----------------------------------------------------------------------

    /// SyncGroup. Followers in CompletingRebalance wait for the leader's assignment; the
    /// leader's SyncGroup persists the group and then answers everyone.
    pub fn sync_group(
        &mut self,
        req: SyncGroupRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        if let Err(error) = self.handle_sync(&req, request_id, now_ms, &mut out) {
            respond(
                &mut out,
                request_id,
                Response::SyncGroup(SyncGroupResponse::error(error)),
            );
        }
        out
    }

    fn handle_sync(
        &mut self,
        req: &SyncGroupRequest,
        rid: RequestId,
        now: i64,
        out: &mut Vec<Effect>,
    ) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        self.owning_partition(&req.group_id)?;
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        match group.state {
            GroupState::Empty => return Err(ErrorCode::UnknownMemberId),
            GroupState::Dead => return Err(ErrorCode::CoordinatorNotAvailable),
            _ => {}
        }
        group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        if inconsistent(req.protocol_type.as_deref(), group.protocol_type.as_deref())
            || inconsistent(req.protocol_name.as_deref(), group.protocol_name.as_deref())
        {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    if let Some(old) = m.awaiting_sync.replace(rid) {
                        if old != rid {
                            respond(
                                out,
                                old,
                                Response::SyncGroup(SyncGroupResponse::error(
                                    ErrorCode::RebalanceInProgress,
                                )),
                            );
                        }
                    }
                }
                remove_pending_sync(group, &req.member_id);
                if group.is_leader(&req.member_id) {
                    let assignments: BTreeMap<&str, &Bytes> = req
                        .assignments
                        .iter()
                        .map(|(id, a)| (id.as_str(), a))
                        .collect();
                    let mut missing = Vec::new();
                    for m in group.members.values_mut() {
                        match assignments.get(m.id.as_str()) {
                            Some(a) => m.assignment = (*a).clone(),
                            None => {
                                m.assignment = Bytes::new();
                                missing.push(m.id.clone());
                            }
                        }
                    }
                    if !missing.is_empty() {
                        tracing::warn!(group = %group.id, members = ?missing, generation = group.generation, "empty assignments for members the leader left out");
                    }
                    group.persist_metadata(out);
                    group.propagate_assignment(ErrorCode::None, now, out);
                    group.transition(GroupState::Stable, now);
                }
                Ok(())
            }
            GroupState::Stable => {
                remove_pending_sync(group, &req.member_id);
                let protocol_type = group.protocol_type.clone();
                let protocol_name = group.protocol_name.clone();
                let Some(m) = group.members.get_mut(&req.member_id) else {
                    return Err(ErrorCode::UnknownMemberId);
                };
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
                respond(
                    out,
                    rid,
                    Response::SyncGroup(SyncGroupResponse {
                        error: ErrorCode::None,
                        protocol_type,
                        protocol_name,
                        assignment: m.assignment.clone(),
                    }),
                );
                Ok(())
            }
            GroupState::Empty => Err(ErrorCode::UnknownMemberId),
            GroupState::Dead => Err(ErrorCode::CoordinatorNotAvailable),
        }
    }

    // ---- Heartbeat -----------------------------------------------------------------------

    /// Heartbeat: refreshes the member's session; REBALANCE_IN_PROGRESS tells it to rejoin.
    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let error = match self.handle_heartbeat(&req, now_ms) {
            Ok(e) | Err(e) => e,
        };
        respond(
            &mut out,
            request_id,
            Response::Heartbeat(HeartbeatResponse { error }),
        );
        out
    }

    fn handle_heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        now: i64,
    ) -> Result<ErrorCode, ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        self.owning_partition(&req.group_id)?;
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if group.is(GroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        let state = group.state;
        let Some(m) = group.members.get_mut(&req.member_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        match state {
            GroupState::Empty => Err(ErrorCode::UnknownMemberId),
            GroupState::Dead => Err(ErrorCode::CoordinatorNotAvailable),
            GroupState::PreparingRebalance => {
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
                Ok(ErrorCode::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
                Ok(ErrorCode::None)
            }
        }
    }

    // ---- LeaveGroup ----------------------------------------------------------------------

    /// LeaveGroup (batched from v3): removes the members and rebalances, or empties the
    /// group (which is then persisted).
    pub fn leave_group(
        &mut self,
        req: LeaveGroupRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let response = match self.handle_leave(&req, now_ms, &mut out) {
            Ok(members) => LeaveGroupResponse {
                error: ErrorCode::None,
                members,
            },
            Err(error) => LeaveGroupResponse {
                error,
                members: Vec::new(),
            },
        };
        respond(&mut out, request_id, Response::LeaveGroup(response));
        out
    }

    fn handle_leave(
        &mut self,
        req: &LeaveGroupRequest,
        now: i64,
        out: &mut Vec<Effect>,
    ) -> Result<Vec<LeaveGroupMemberResponse>, ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        self.owning_partition(&req.group_id)?;
        let cfg = &self.config;
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if group.is(GroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let mut results = Vec::with_capacity(req.members.len());
        for leaving in &req.members {
            let error = if leaving.member_id.is_empty() {
                // Administrative removal of a static member by instance id.
                match leaving
                    .group_instance_id
                    .as_ref()
                    .and_then(|i| group.static_members.get(i).cloned())
                {
                    Some(current) => {
                        group.remove_member(&current, out);
                        ErrorCode::None
                    }
                    None => ErrorCode::UnknownMemberId,
                }
            } else if group.pending_members.contains_key(&leaving.member_id) {
                group.pending_members.remove(&leaving.member_id);
                ErrorCode::None
            } else {
                match group
                    .validate_member(&leaving.member_id, leaving.group_instance_id.as_deref())
                {
                    Ok(()) => {
                        group.remove_member(&leaving.member_id, out);
                        ErrorCode::None
                    }
                    Err(e) => e,
                }
            };
            if error == ErrorCode::None {
                tracing::info!(
                    group = %group.id,
                    member = %leaving.member_id,
                    reason = leaving.reason.as_deref().unwrap_or("not provided"),
                    "member left the group"
                );
            }
            results.push(LeaveGroupMemberResponse {
                member_id: leaving.member_id.clone(),
                group_instance_id: leaving.group_instance_id.clone(),
                error,
            });
        }
        if results.iter().any(|r| r.error == ErrorCode::None) {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    group.maybe_prepare_rebalance_or_complete_join(cfg, now, "members left", out)
                }
                GroupState::PreparingRebalance => group.maybe_complete_join_phase(now, out),
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        Ok(results)
    }

    // ---- offsets -------------------------------------------------------------------------

    /// OffsetCommit: persists the accepted offsets, then answers.
    pub fn offset_commit(
        &mut self,
        req: OffsetCommitRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let partitions = match self.validate_commit(&req, now_ms) {
            Err(error) => req
                .offsets
                .iter()
                .map(|o| PartitionResult {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    error,
                })
                .collect(),
            Ok(group_partition) => {
                let expire_timestamp = (req.retention_time_ms != -1)
                    .then(|| now_ms.saturating_add(req.retention_time_ms));
                let mut records = Vec::new();
                let mut results = Vec::with_capacity(req.offsets.len());
                for o in &req.offsets {
                    let metadata = o.metadata.clone().unwrap_or_default();
                    let error = if metadata.encode_utf16().count()
                        > self.config.offset_metadata_max_bytes
                    {
                        ErrorCode::OffsetMetadataTooLarge
                    } else {
                        let value = OffsetCommitValue {
                            offset: o.offset,
                            // Commits with an explicit retention are stored as value v1,
                            // which has no leader epoch: keep memory equal to the log.
                            leader_epoch: if expire_timestamp.is_some() {
                                -1
                            } else {
                                o.leader_epoch
                            },
                            metadata,
                            commit_timestamp: now_ms,
                            expire_timestamp,
                        };
                        records.push(PersistRecord {
                            key: RecordKey::OffsetCommit {
                                group: req.group_id.clone(),
                                topic: o.topic.clone(),
                                partition: o.partition,
                            }
                            .encode(),
                            value: Some(value.encode()),
                        });
                        self.apply_offset(&req.group_id, o.topic.clone(), o.partition, Some(value));
                        ErrorCode::None
                    };
                    results.push(PartitionResult {
                        topic: o.topic.clone(),
                        partition: o.partition,
                        error,
                    });
                }
                if !records.is_empty() {
                    out.push(Effect::Persist {
                        partition: group_partition,
                        records,
                    });
                }
                results
            }
        };
        respond(
            &mut out,
            request_id,
            Response::OffsetCommit(OffsetCommitResponse { partitions }),
        );
        out
    }

    fn validate_commit(&mut self, req: &OffsetCommitRequest, now: i64) -> Result<i32, ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let partition = self.owning_partition(&req.group_id)?;
        if !self.groups.contains_key(&req.group_id) {
            if req.generation_id < 0 {
                self.groups.insert(
                    req.group_id.clone(),
                    Group::new(req.group_id.clone(), partition, None),
                );
            } else if req.api_version >= 9 {
                return Err(ErrorCode::GroupIdNotFound);
            } else {
                return Err(ErrorCode::IllegalGeneration);
            }
        }
        let group = self
            .groups
            .get_mut(&req.group_id)
            .ok_or(ErrorCode::UnknownServerError)?;
        if group.is(GroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if req.generation_id < 0 && group.is(GroupState::Empty) {
            return Ok(partition);
        }
        if req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
            if req.generation_id != group.generation {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if !group.is(GroupState::Empty) {
            return Err(ErrorCode::UnknownMemberId);
        }
        if group.is(GroupState::CompletingRebalance) {
            return Err(ErrorCode::RebalanceInProgress);
        }
        if group.is(GroupState::Stable) || group.is(GroupState::PreparingRebalance) {
            if let Some(m) = group.members.get_mut(&req.member_id) {
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
            }
        }
        Ok(partition)
    }

    /// OffsetFetch for one group.
    pub fn offset_fetch(
        &mut self,
        req: OffsetFetchRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let response = self.handle_fetch(&req);
        respond(&mut out, request_id, Response::OffsetFetch(response));
        out
    }

    fn handle_fetch(&self, req: &OffsetFetchRequest) -> OffsetFetchResponse {
        let error_response = |error| OffsetFetchResponse {
            error,
            partitions: Vec::new(),
        };
        if req.group_id.is_empty() {
            return error_response(ErrorCode::InvalidGroupId);
        }
        if let Err(e) = self.owning_partition(&req.group_id) {
            return error_response(e);
        }
        let dead = self
            .groups
            .get(&req.group_id)
            .is_some_and(|g| g.is(GroupState::Dead));
        let offsets = self.offsets.get(&req.group_id).filter(|_| !dead);
        let found = |topic: &str, partition: i32, v: &OffsetCommitValue| OffsetFetchPartition {
            topic: topic.to_owned(),
            partition,
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            error: ErrorCode::None,
        };
        let partitions = match &req.topics {
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), v)| found(t, *p, v))
                .collect(),
            Some(topics) => topics
                .iter()
                .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (topic, *p)))
                .map(
                    |(topic, p)| match offsets.and_then(|o| o.get(&(topic.clone(), p))) {
                        Some(v) => found(topic, p, v),
                        None => OffsetFetchPartition {
                            topic: topic.clone(),
                            partition: p,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                            error: ErrorCode::None,
                        },
                    },
                )
                .collect(),
        };
        OffsetFetchResponse {
            error: ErrorCode::None,
            partitions,
        }
    }

    /// OffsetDelete (KIP-496): allowed for Empty groups, and for topics a consumer group is
    /// not subscribed to.
    pub fn offset_delete(
        &mut self,
        req: OffsetDeleteRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let response = match self.handle_offset_delete(&req, &mut out) {
            Ok(partitions) => OffsetDeleteResponse {
                error: ErrorCode::None,
                partitions,
            },
            Err(error) => OffsetDeleteResponse {
                error,
                partitions: Vec::new(),
            },
        };
        respond(&mut out, request_id, Response::OffsetDelete(response));
        out
    }

    fn handle_offset_delete(
        &mut self,
        req: &OffsetDeleteRequest,
        out: &mut Vec<Effect>,
    ) -> Result<Vec<PartitionResult>, ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let partition = self.owning_partition(&req.group_id)?;
        let group = self
            .groups
            .get(&req.group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        match group.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if !group.uses_consumer_protocol() =>
            {
                return Err(ErrorCode::NonEmptyGroup)
            }
            _ => {}
        }
        let mut results = Vec::new();
        let mut deleted = Vec::new();
        for (topic, partitions) in &req.topics {
            let subscribed = group.is_subscribed_to_topic(topic);
            for p in partitions {
                let error = if subscribed {
                    ErrorCode::GroupSubscribedToTopic
                } else {
                    let key = (topic.clone(), *p);
                    if self
                        .offsets
                        .get(&req.group_id)
                        .is_some_and(|o| o.contains_key(&key))
                        && !deleted.contains(&key)
                    {
                        deleted.push(key);
                    }
                    ErrorCode::None
                };
                results.push(PartitionResult {
                    topic: topic.clone(),
                    partition: *p,
                    error,
                });
            }
        }
        let records = deleted
            .into_iter()
            .map(|(topic, p)| {
                let record = offset_tombstone(&req.group_id, &topic, p);
                self.apply_offset(&req.group_id, topic, p, None);
                record
            })
            .collect::<Vec<_>>();
        if !records.is_empty() {
            out.push(Effect::Persist { partition, records });
        }
        Ok(results)
    }

    // ---- admin ---------------------------------------------------------------------------

    /// DescribeGroups. Unknown groups are reported Dead without error, as Kafka does for
    /// versions 0–5; when `error` is set the broker sends empty strings for the state.
    pub fn describe_groups(
        &mut self,
        req: DescribeGroupsRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let groups = req
            .group_ids
            .iter()
            .map(|id| self.describe_group(id))
            .collect();
        respond(
            &mut out,
            request_id,
            Response::DescribeGroups(DescribeGroupsResponse { groups }),
        );
        out
    }

    fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let mut described = DescribedGroup {
            group_id: group_id.to_owned(),
            error: ErrorCode::None,
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if group_id.is_empty() {
            described.error = ErrorCode::InvalidGroupId;
            return described;
        }
        if let Err(e) = self.owning_partition(group_id) {
            described.error = e;
            return described;
        }
        let Some(group) = self.groups.get(group_id) else {
            return described;
        };
        let stable = group.is(GroupState::Stable);
        described.state = group.state;
        described.protocol_type = group.protocol_type.clone().unwrap_or_default();
        if stable {
            described.protocol = group.protocol_name.clone().unwrap_or_default();
        }
        described.members = group
            .members_in_order()
            .into_iter()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(group.protocol_name.as_deref())
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        described
    }

    /// ListGroups over the loaded partitions, with the v4 state and v5 type filters.
    pub fn list_groups(
        &mut self,
        req: ListGroupsRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let response = if self
            .partitions
            .values()
            .any(|s| *s == PartitionState::Loading)
        {
            ListGroupsResponse {
                error: ErrorCode::CoordinatorLoadInProgress,
                groups: Vec::new(),
            }
        } else {
            let type_ok = req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
            let groups = self
                .groups
                .values()
                .filter(|_| type_ok)
                .filter(|g| self.is_loaded(g.partition))
                .filter(|g| {
                    req.states_filter.is_empty()
                        || req
                            .states_filter
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(g.state.as_str()))
                })
                .map(|g| ListedGroup {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                    group_type: CLASSIC_GROUP_TYPE.to_owned(),
                })
                .collect();
            ListGroupsResponse {
                error: ErrorCode::None,
                groups,
            }
        };
        respond(&mut out, request_id, Response::ListGroups(response));
        out
    }

    /// DeleteGroups: only Empty groups; tombstones every offset and then the group.
    pub fn delete_groups(
        &mut self,
        req: DeleteGroupsRequest,
        request_id: RequestId,
        now_ms: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        self.fire_due_timers(now_ms, &mut out);
        let mut by_partition: BTreeMap<i32, Vec<PersistRecord>> = BTreeMap::new();
        let mut results = Vec::with_capacity(req.group_ids.len());
        for group_id in &req.group_ids {
            let error = match self.delete_group(group_id) {
                Ok((partition, mut records)) => {
                    by_partition
                        .entry(partition)
                        .or_default()
                        .append(&mut records);
                    ErrorCode::None
                }
                Err(e) => e,
            };
            results.push(DeletedGroup {
                group_id: group_id.clone(),
                error,
            });
        }
        for (partition, records) in by_partition {
            out.push(Effect::Persist { partition, records });
        }
        respond(
            &mut out,
            request_id,
            Response::DeleteGroups(DeleteGroupsResponse { results }),
        );
        out
    }

    fn delete_group(&mut self, group_id: &str) -> Result<(i32, Vec<PersistRecord>), ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let partition = self.owning_partition(group_id)?;
        let group = self
            .groups
            .get(group_id)
            .ok_or(ErrorCode::GroupIdNotFound)?;
        match group.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => return Err(ErrorCode::NonEmptyGroup),
            GroupState::Empty => {}
        }
        let mut records: Vec<PersistRecord> = self
            .offsets
            .remove(group_id)
            .unwrap_or_default()
            .into_keys()
            .map(|(topic, p)| offset_tombstone(group_id, &topic, p))
            .collect();
        records.push(group_tombstone(group_id));
        self.groups.remove(group_id);
        tracing::info!(group = %group_id, "deleted group");
        Ok((partition, records))
    }

    // ---- offset expiry -------------------------------------------------------------------

    /// Kafka's `cleanupGroupMetadata`: expire offsets (KIP-211) and delete Empty groups left
    /// without offsets.
    fn expire_offsets(&mut self, now: i64, out: &mut Vec<Effect>) {
        let retention = self.config.offsets_retention_ms;
        let num = self.config.offsets_topic_num_partitions;
        let ids: BTreeSet<String> = self
            .groups
            .keys()
            .chain(self.offsets.keys())
            .filter(|id| self.is_loaded(partition_for(id, num)))
            .cloned()
            .collect();
        let mut by_partition: BTreeMap<i32, Vec<PersistRecord>> = BTreeMap::new();
        for id in ids {
            let partition = partition_for(&id, num);
            let group = self.groups.get(&id);
            // Which timestamp an offset's age counts from, if offsets of this group expire.
            #[derive(Clone, Copy)]
            enum Base {
                Commit,
                StateOrCommit(Option<i64>),
            }
            let base = match group {
                None => Some(Base::Commit),
                Some(g) => match &g.protocol_type {
                    None => Some(Base::Commit),
                    Some(_) if g.is(GroupState::Empty) => {
                        Some(Base::StateOrCommit(g.state_timestamp))
                    }
                    Some(_)
                        if g.uses_consumer_protocol()
                            && g.subscribed_topics.is_some()
                            && g.is(GroupState::Stable) =>
                    {
                        Some(Base::Commit)
                    }
                    Some(_) => None,
                },
            };
            let mut all_expired = true;
            let mut expired = Vec::new();
            if let Some(offsets) = self.offsets.get(&id) {
                match base {
                    None => all_expired = false,
                    Some(base) => {
                        for ((topic, p), v) in offsets {
                            let subscribed = group.is_some_and(|g| g.is_subscribed_to_topic(topic));
                            let is_expired = match v.expire_timestamp {
                                Some(expire) => now >= expire,
                                None => {
                                    let from = match base {
                                        Base::Commit => v.commit_timestamp,
                                        Base::StateOrCommit(ts) => ts.unwrap_or(v.commit_timestamp),
                                    };
                                    now.saturating_sub(from) >= retention
                                }
                            };
                            if !subscribed && is_expired {
                                expired.push((topic.clone(), *p));
                            } else {
                                all_expired = false;
                            }
                        }
                    }
                }
            }
            let delete_group = all_expired && group.is_some_and(|g| g.is(GroupState::Empty));
            let records = by_partition.entry(partition).or_default();
            if !expired.is_empty() {
                tracing::info!(group = %id, count = expired.len(), "expired offsets");
            }
            for (topic, p) in expired {
                records.push(offset_tombstone(&id, &topic, p));
                self.apply_offset(&id, topic, p, None);
            }
            if delete_group {
                tracing::info!(group = %id, "deleting empty group without offsets");
                records.push(group_tombstone(&id));
                self.groups.remove(&id);
            }
        }
        for (partition, records) in by_partition {
            if !records.is_empty() {
                out.push(Effect::Persist { partition, records });
            }
        }
    }

    // ---- introspection -------------------------------------------------------------------

    /// Ids of all groups held in memory, sorted.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// A read-only view of a group.
    pub fn group_summary(&self, group_id: &str) -> Option<GroupSummary> {
        let g = self.groups.get(group_id)?;
        Some(GroupSummary {
            group_id: g.id.clone(),
            state: g.state,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader.clone(),
            state_timestamp_ms: g.state_timestamp,
            members: g
                .members_in_order()
                .into_iter()
                .map(|m| MemberSummary {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    metadata: m.metadata(g.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// The offsets committed by a group, sorted by topic and partition.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<CommittedOffset> {
        self.offsets
            .get(group_id)
            .into_iter()
            .flatten()
            .map(|((topic, partition), v)| CommittedOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
                commit_timestamp_ms: v.commit_timestamp,
                expire_timestamp_ms: v.expire_timestamp,
            })
            .collect()
    }
}

/// Borrowed context for the JoinGroup paths (split from `GroupCoordinator` so a group can
/// be borrowed mutably at the same time).
struct JoinCtx<'a> {
    cfg: &'a GroupConfig,
    member_id_suffix: &'a mut Box<dyn FnMut() -> String + Send>,
    next_seq: &'a mut u64,
    now: i64,
    rid: RequestId,
}

impl JoinCtx<'_> {
    fn reply(&self, out: &mut Vec<Effect>, response: JoinGroupResponse) {
        respond(out, self.rid, Response::JoinGroup(response));
    }

    fn join_new_member(
        &mut self,
        group: &mut Group,
        req: &JoinGroupRequest,
        out: &mut Vec<Effect>,
    ) {
        if group.is(GroupState::Dead) {
            return self.reply(
                out,
                JoinGroupResponse::error("", ErrorCode::CoordinatorNotAvailable),
            );
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.reply(
                out,
                JoinGroupResponse::error("", ErrorCode::InconsistentGroupProtocol),
            );
        }
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let new_id = format!("{prefix}-{}", (self.member_id_suffix)());
        match &req.group_instance_id {
            Some(instance) => match group.static_members.get(instance).cloned() {
                Some(existing) => {
                    tracing::info!(group = %group.id, instance = %instance, old = %existing, new = %new_id, "static member rejoined with an unknown member id; replacing");
                    self.update_static_member(group, instance, &existing, &new_id, req, out);
                }
                None => self.add_member_and_rebalance(group, new_id, req, out),
            },
            None if req.require_known_member_id => {
                group.pending_members.insert(
                    new_id.clone(),
                    self.now.saturating_add(i64::from(req.session_timeout_ms)),
                );
                self.reply(
                    out,
                    JoinGroupResponse::error(new_id, ErrorCode::MemberIdRequired),
                );
            }
            None => self.add_member_and_rebalance(group, new_id, req, out),
        }
    }

    fn join_existing_member(
        &mut self,
        group: &mut Group,
        req: &JoinGroupRequest,
        out: &mut Vec<Effect>,
    ) {
        let member_id = req.member_id.as_str();
        if group.is(GroupState::Dead) {
            return self.reply(
                out,
                JoinGroupResponse::error(member_id, ErrorCode::CoordinatorNotAvailable),
            );
        }
        if !group.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.reply(
                out,
                JoinGroupResponse::error(member_id, ErrorCode::InconsistentGroupProtocol),
            );
        }
        if group.pending_members.contains_key(member_id) && req.group_instance_id.is_none() {
            return self.add_member_and_rebalance(group, member_id.to_owned(), req, out);
        }
        if let Err(error) = group.validate_member(member_id, req.group_instance_id.as_deref()) {
            return self.reply(out, JoinGroupResponse::error(member_id, error));
        }
        let matches = group
            .members
            .get(member_id)
            .is_some_and(|m| m.protocols == req.protocols);
        let reason = req.reason.as_deref().unwrap_or("not provided");
        match group.state {
            GroupState::PreparingRebalance => {
                self.update_and_rebalance(group, req, out, reason);
            }
            GroupState::CompletingRebalance if matches => {
                // A retry of a JoinGroup whose response was lost: answer with the current
                // generation.
                self.refresh_session(group, member_id);
                let response = group.join_response(member_id, group.is_leader(member_id));
                self.reply(out, response);
            }
            GroupState::Stable if matches && !group.is_leader(member_id) => {
                self.refresh_session(group, member_id);
                let response = group.join_response(member_id, false);
                self.reply(out, response);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Changed metadata, or the leader asking for a new assignment.
                self.update_and_rebalance(group, req, out, reason);
            }
            GroupState::Empty | GroupState::Dead => {
                self.reply(
                    out,
                    JoinGroupResponse::error(member_id, ErrorCode::UnknownMemberId),
                );
            }
        }
    }

    fn refresh_session(&self, group: &mut Group, member_id: &str) {
        if let Some(m) = group.members.get_mut(member_id) {
            if !m.is_new {
                m.heartbeat_deadline =
                    Some(self.now.saturating_add(i64::from(m.session_timeout_ms)));
            }
        }
    }

    fn update_and_rebalance(
        &mut self,
        group: &mut Group,
        req: &JoinGroupRequest,
        out: &mut Vec<Effect>,
        reason: &str,
    ) {
        group.update_member(
            &req.member_id,
            req.protocols.clone(),
            req.rebalance_timeout_ms,
            req.session_timeout_ms,
            Some(self.rid),
            out,
        );
        self.refresh_session(group, &req.member_id);
        group.maybe_prepare_rebalance_or_complete_join(self.cfg, self.now, reason, out);
    }

    fn add_member_and_rebalance(
        &mut self,
        group: &mut Group,
        member_id: String,
        req: &JoinGroupRequest,
        out: &mut Vec<Effect>,
    ) {
        let seq = *self.next_seq;
        *self.next_seq += 1;
        let member = Member {
            id: member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(self.rid),
            awaiting_sync: None,
            is_new: true,
            // A parked JoinGroup cannot heartbeat: bound it by the new-member timeout.
            heartbeat_deadline: Some(
                self.now
                    .saturating_add(i64::from(self.cfg.new_member_join_timeout_ms)),
            ),
            seq,
        };
        if group.is(GroupState::PreparingRebalance) && group.previous_state == GroupState::Empty {
            group.new_member_added = true;
        }
        group.add_member(member);
        group.maybe_prepare_rebalance_or_complete_join(
            self.cfg,
            self.now,
            "new member joined",
            out,
        );
    }

    /// Kafka's `updateStaticMemberThenRebalanceOrCompleteJoin`.
    fn update_static_member(
        &mut self,
        group: &mut Group,
        instance: &str,
        old_id: &str,
        new_id: &str,
        req: &JoinGroupRequest,
        out: &mut Vec<Effect>,
    ) {
        let current_leader = group.leader.clone();
        if !group.replace_static_member(instance, old_id, new_id, out) {
            return self.reply(
                out,
                JoinGroupResponse::error("", ErrorCode::UnknownMemberId),
            );
        }
        group.update_member(
            new_id,
            req.protocols.clone(),
            req.rebalance_timeout_ms,
            req.session_timeout_ms,
            Some(self.rid),
            out,
        );
        self.refresh_session(group, new_id);
        match group.state {
            GroupState::Stable => {
                if group.select_protocol() == group.protocol_name {
                    // Same protocol: no rebalance. Persist the new member id, then hand the
                    // member the current generation.
                    tracing::info!(group = %group.id, instance, "static member rejoined without changing the protocol; no rebalance");
                    group.persist_metadata(out);
                    let response = if req.supports_skip_assignment {
                        let is_leader = group.is_leader(new_id);
                        let mut r = group.join_response(new_id, is_leader);
                        r.skip_assignment = is_leader;
                        r
                    } else {
                        // Older clients: report the previous leader id so that a returning
                        // leader does not compute an assignment nobody would receive.
                        let mut r = group.join_response(new_id, false);
                        r.leader = current_leader.unwrap_or_default();
                        r
                    };
                    if let Some(m) = group.members.get_mut(new_id) {
                        m.awaiting_join = None;
                    }
                    self.reply(out, response);
                } else {
                    group.maybe_prepare_rebalance_or_complete_join(
                        self.cfg,
                        self.now,
                        "static member changed the selected protocol",
                        out,
                    );
                }
            }
            GroupState::CompletingRebalance => {
                // The leader may already be assigning to the old member id: start over.
                group.prepare_rebalance(
                    self.cfg,
                    self.now,
                    "static member rejoined during sync",
                    out,
                );
            }
            GroupState::PreparingRebalance => group.maybe_complete_join_phase(self.now, out),
            GroupState::Empty | GroupState::Dead => {
                if let Some(m) = group.members.get_mut(new_id) {
                    m.awaiting_join = None;
                }
                self.reply(
                    out,
                    JoinGroupResponse::error(new_id, ErrorCode::UnknownMemberId),
                );
            }
        }
    }
}

/// Kafka's `acceptJoiningMember` (group.max.size).
fn accept_joining_member(group: &Group, member_id: &str, max_size: i32) -> bool {
    let max = usize::try_from(max_size).unwrap_or(0);
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            group
                .members
                .get(member_id)
                .is_some_and(|m| m.awaiting_join.is_some())
                || group.num_awaiting_join() < max
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max
        }
    }
}

fn remove_pending_sync(group: &mut Group, member_id: &str) {
    group.pending_sync.remove(member_id);
    if group.pending_sync.is_empty() {
        group.sync_timer = None;
    }
}

fn inconsistent(requested: Option<&str>, actual: Option<&str>) -> bool {
    matches!((requested, actual), (Some(a), Some(b)) if a != b)
}

fn offset_tombstone(group: &str, topic: &str, partition: i32) -> PersistRecord {
    PersistRecord {
        key: RecordKey::OffsetCommit {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        }
        .encode(),
        value: None,
    }
}

fn group_tombstone(group: &str) -> PersistRecord {
    PersistRecord {
        key: RecordKey::GroupMetadata {
            group: group.to_owned(),
        }
        .encode(),
        value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_matches_java_string_hash_code() {
        // "hello".hashCode() == 99162322
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("", 50), 0);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Negative hash: "Aa-group-negative" style strings go through abs().
        let h = "zzzzzzzzzz"
            .encode_utf16()
            .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert!(h < 0);
        assert_eq!(partition_for("zzzzzzzzzz", 50), h.abs() % 50);
        // Non-BMP characters count as two UTF-16 code units, as in Java.
        assert_eq!(
            partition_for("😀", 1_000_000),
            (0xD83Di32 * 31 + 0xDE00) % 1_000_000
        );
    }
}
