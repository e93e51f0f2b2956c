//! One classic group: membership, the rebalance state machine and its timers.
//!
//! Everything here is synchronous and clock-free: callers pass `now` and collect the
//! [`Effect`]s pushed onto `out`. The coordinator owns the groups and routes requests; the
//! transitions follow Kafka's `ClassicGroup` and the classic half of `GroupMetadataManager`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use fjord_common::ErrorCode;
use fjord_protocol::kafka_protocol::messages::ConsumerProtocolSubscription;
use fjord_protocol::kafka_protocol::protocol::Decodable;

use crate::api::{
    Effect, GroupState, JoinGroupMember, JoinGroupResponse, PersistRecord, RequestId, Response,
    SyncGroupResponse,
};
use crate::config::GroupConfig;
use crate::record::{GroupMetadataValue, MemberMetadataValue, RecordKey};

/// The protocol type of Kafka's consumer (whose subscriptions the coordinator can read).
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A pending timer of the join phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JoinTimer {
    pub(crate) deadline: i64,
    pub(crate) kind: JoinTimerKind,
}

/// Kafka's `InitialDelayedJoin` (first rebalance of an empty group) or `DelayedJoin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinTimerKind {
    InitialDelay { delay_ms: i32, remaining_ms: i32 },
    Rebalance,
}

/// Expiry of the sync phase: members that have not sent SyncGroup by then are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncTimer {
    pub(crate) deadline: i64,
    pub(crate) generation: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
    pub(crate) assignment: Bytes,
    /// The JoinGroup request waiting for the join phase to complete.
    pub(crate) awaiting_join: Option<RequestId>,
    /// The SyncGroup request waiting for the leader's assignment.
    pub(crate) awaiting_sync: Option<RequestId>,
    /// Joined during the current join phase and has not received a generation yet.
    pub(crate) is_new: bool,
    /// Session expiry; `None` while no expiry is scheduled.
    pub(crate) heartbeat_deadline: Option<i64>,
    /// Join order, for deterministic listings and leader choice.
    pub(crate) seq: u64,
}

impl Member {
    pub(crate) fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, meta)| meta.clone())
            .unwrap_or_default()
    }

    /// Kafka's `hasSatisfiedHeartbeat`: members waiting in a join or sync phase need no
    /// heartbeat, except new members whose join is bounded by the new-member timeout.
    fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }

    fn vote(&self, candidates: &BTreeSet<&str>) -> Option<String> {
        self.protocols
            .iter()
            .find(|(name, _)| candidates.contains(name.as_str()))
            .map(|(name, _)| name.clone())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) id: String,
    /// The `__consumer_offsets` partition owning this group.
    pub(crate) partition: i32,
    pub(crate) state: GroupState,
    pub(crate) previous_state: GroupState,
    pub(crate) state_timestamp: Option<i64>,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation: i32,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub(crate) static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub(crate) pending_members: BTreeMap<String, i64>,
    /// Members that have not sent SyncGroup for the current generation.
    pub(crate) pending_sync: BTreeSet<String>,
    pub(crate) new_member_added: bool,
    pub(crate) join_timer: Option<JoinTimer>,
    pub(crate) sync_timer: Option<SyncTimer>,
    pub(crate) subscribed_topics: Option<BTreeSet<String>>,
}

impl Group {
    pub(crate) fn new(id: String, partition: i32, state_timestamp: Option<i64>) -> Self {
        Group {
            id,
            partition,
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            subscribed_topics: None,
        }
    }

    /// Rebuilds a group from its persisted metadata (Kafka's `replay(GroupMetadataKey, ...)`):
    /// Empty without members, else Stable.
    pub(crate) fn from_record(
        id: String,
        partition: i32,
        value: &GroupMetadataValue,
        next_seq: &mut u64,
    ) -> Self {
        let mut group = Group::new(
            id,
            partition,
            (value.current_state_timestamp != -1).then_some(value.current_state_timestamp),
        );
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol.clone();
        group.leader = value.leader.clone();
        for m in &value.members {
            let member = Member {
                id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: if m.rebalance_timeout_ms == -1 {
                    m.session_timeout_ms
                } else {
                    m.rebalance_timeout_ms
                },
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: value.protocol_type.clone(),
                protocols: vec![(
                    value.protocol.clone().unwrap_or_default(),
                    m.subscription.clone(),
                )],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: None,
                seq: *next_seq,
            };
            *next_seq += 1;
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.id.clone());
            }
            group.members.insert(member.id.clone(), member);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        if group
            .leader
            .as_ref()
            .is_some_and(|l| !group.members.contains_key(l))
        {
            group.leader = group.members_in_order().first().map(|m| m.id.clone());
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub(crate) fn transition(&mut self, state: GroupState, now: i64) {
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp = Some(now);
    }

    pub(crate) fn members_in_order(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        members
    }

    fn member_ids_in_order(&self) -> Vec<String> {
        self.members_in_order()
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }

    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_members.is_empty()
    }

    /// The group's rebalance timeout: the largest over its members.
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    pub(crate) fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Whether a member of this protocol type with these protocols could join: any type and
    /// any non-empty protocol list for an Empty group, else the group's type and at least one
    /// protocol every current member supports.
    pub(crate) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        if self.members.is_empty() {
            // A rebalance waiting only for MEMBER_ID_REQUIRED members: nobody constrains
            // the protocols yet.
            return !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        protocols
            .iter()
            .any(|(name, _)| candidates.contains(name.as_str()))
    }

    /// Protocols supported by every member.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return BTreeSet::new();
        };
        let mut candidates: BTreeSet<&str> =
            first.protocols.iter().map(|(n, _)| n.as_str()).collect();
        for m in members {
            candidates.retain(|c| m.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Kafka's vote: each member votes for its most preferred protocol among those every
    /// member supports, and the protocol with the most votes wins. Ties go to the protocol
    /// that received its first vote earliest in join order.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = Vec::new();
        for m in self.members_in_order() {
            if let Some(choice) = m.vote(&candidates) {
                match votes.iter_mut().find(|(name, _)| *name == choice) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((choice, 1)),
                }
            }
        }
        let mut best: Option<(String, usize)> = None;
        for (name, n) in votes {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                best = Some((name, n));
            }
        }
        best.map(|(name, _)| name)
    }

    /// Kafka's `validateMember`: the instance id (when given) must map to this member id,
    /// and the member must exist.
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(())
    }

    pub(crate) fn add_member(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member, answering any request it still has parked so that the driver never
    /// holds a request forever.
    pub(crate) fn remove_member(&mut self, member_id: &str, out: &mut Vec<Effect>) {
        if let Some(mut removed) = self.members.remove(member_id) {
            if let Some(rid) = removed.awaiting_join.take() {
                respond(
                    out,
                    rid,
                    Response::JoinGroup(JoinGroupResponse::error("", ErrorCode::UnknownMemberId)),
                );
            }
            if let Some(rid) = removed.awaiting_sync.take() {
                respond(
                    out,
                    rid,
                    Response::SyncGroup(SyncGroupResponse::error(ErrorCode::UnknownMemberId)),
                );
            }
            if let Some(instance) = &removed.group_instance_id {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader = self.members_in_order().first().map(|m| m.id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
    }

    /// Updates a member from a JoinGroup. A JoinGroup already parked for the member is
    /// superseded and answered with REBALANCE_IN_PROGRESS (the client rejoins).
    pub(crate) fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<(String, Bytes)>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        awaiting_join: Option<RequestId>,
        out: &mut Vec<Effect>,
    ) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        m.protocols = protocols;
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        m.session_timeout_ms = session_timeout_ms;
        if let (Some(old), Some(new)) = (m.awaiting_join, awaiting_join) {
            if old != new {
                let member_id = m.id.clone();
                respond(
                    out,
                    old,
                    Response::JoinGroup(JoinGroupResponse::error(
                        member_id,
                        ErrorCode::RebalanceInProgress,
                    )),
                );
            }
        }
        m.awaiting_join = awaiting_join;
    }

    /// Gives a static member a new member id, fencing whatever the old id had parked.
    pub(crate) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_id: &str,
        new_id: &str,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(mut member) = self.members.remove(old_id) else {
            return false;
        };
        if let Some(rid) = member.awaiting_join.take() {
            respond(
                out,
                rid,
                Response::JoinGroup(JoinGroupResponse::error(
                    old_id,
                    ErrorCode::FencedInstanceId,
                )),
            );
        }
        if let Some(rid) = member.awaiting_sync.take() {
            respond(
                out,
                rid,
                Response::SyncGroup(SyncGroupResponse::error(ErrorCode::FencedInstanceId)),
            );
        }
        member.id = new_id.to_owned();
        member.is_new = false;
        self.members.insert(new_id.to_owned(), member);
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        self.static_members
            .insert(instance_id.to_owned(), new_id.to_owned());
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
        true
    }

    /// Members with their metadata for the selected protocol, for the leader's JoinGroup
    /// response.
    pub(crate) fn join_members(&self) -> Vec<JoinGroupMember> {
        self.members_in_order()
            .into_iter()
            .map(|m| JoinGroupMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(self.protocol_name.as_deref()),
            })
            .collect()
    }

    /// The JoinGroup answer for a member of the current generation.
    pub(crate) fn join_response(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            error: ErrorCode::None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.join_members()
            } else {
                Vec::new()
            },
        }
    }

    /// Topics the consumer-protocol members subscribe to; `None` when unknown (another
    /// protocol type, no protocol selected, or a subscription that does not parse).
    pub(crate) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(parse_subscription_topics(&m.metadata(Some(protocol)))?);
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic`: when the subscriptions are unknown, a consumer group
    /// is assumed subscribed to everything and any other group to nothing.
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// The group's metadata record as Kafka writes it.
    pub(crate) fn metadata_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: self
                .members_in_order()
                .into_iter()
                .map(|m| MemberMetadataValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(self.protocol_name.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Kafka's "empty group" record, written when a JoinGroup creates a group without
    /// producing any other record.
    pub(crate) fn empty_metadata_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: None,
            leader: None,
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: Vec::new(),
        }
    }

    pub(crate) fn persist_value(&self, value: &GroupMetadataValue, out: &mut Vec<Effect>) {
        let key = RecordKey::GroupMetadata {
            group: self.id.clone(),
        }
        .encode();
        match value.encode() {
            Ok(bytes) => out.push(Effect::Persist {
                partition: self.partition,
                records: vec![PersistRecord {
                    key,
                    value: Some(bytes),
                }],
            }),
            // Only absurd client-supplied strings (over 32 KiB) can fail to encode.
            Err(err) => tracing::error!(group = %self.id, %err, "cannot encode group metadata"),
        }
    }

    pub(crate) fn persist_metadata(&self, out: &mut Vec<Effect>) {
        self.persist_value(&self.metadata_value(), out);
    }

    // ---- the rebalance state machine -------------------------------------------------

    /// Kafka's `maybePrepareRebalanceOrCompleteJoin`.
    pub(crate) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        cfg: &GroupConfig,
        now: i64,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(cfg, now, reason, out);
        } else {
            self.maybe_complete_join_phase(now, out);
        }
    }

    /// Kafka's `prepareRebalance`: cancel the sync phase, move to PreparingRebalance and
    /// schedule the end of the join phase.
    pub(crate) fn prepare_rebalance(
        &mut self,
        cfg: &GroupConfig,
        now: i64,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        if self.is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_error(ErrorCode::RebalanceInProgress, now, out);
        }
        self.pending_sync.clear();
        self.sync_timer = None;

        let initial = self.is(GroupState::Empty);
        if initial {
            let delay_ms = cfg.initial_rebalance_delay_ms.max(0);
            let remaining_ms = (self.rebalance_timeout_ms() - delay_ms).max(0);
            self.join_timer = Some(JoinTimer {
                deadline: now.saturating_add(i64::from(delay_ms)),
                kind: JoinTimerKind::InitialDelay {
                    delay_ms,
                    remaining_ms,
                },
            });
        }
        tracing::info!(
            group = %self.id,
            from = %self.state,
            generation = self.generation,
            reason,
            "preparing to rebalance"
        );
        self.transition(GroupState::PreparingRebalance, now);
        if !initial {
            self.maybe_complete_join_else_schedule(now, out);
        }
    }

    fn maybe_complete_join_else_schedule(&mut self, now: i64, out: &mut Vec<Effect>) {
        if self.has_all_members_joined() {
            self.complete_join(now, out);
        } else {
            self.join_timer = Some(JoinTimer {
                deadline: now.saturating_add(i64::from(self.rebalance_timeout_ms())),
                kind: JoinTimerKind::Rebalance,
            });
        }
    }

    /// Kafka's `maybeCompleteJoinPhase`: an initial rebalance always waits for its delay.
    pub(crate) fn maybe_complete_join_phase(&mut self, now: i64, out: &mut Vec<Effect>) {
        if self.is(GroupState::PreparingRebalance)
            && self.previous_state != GroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join(now, out);
        }
    }

    /// The initial-delay timer fired: extend it if members keep arriving and time remains.
    pub(crate) fn on_initial_delay_expired(
        &mut self,
        cfg: &GroupConfig,
        delay_ms: i32,
        remaining_ms: i32,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        if self.new_member_added && remaining_ms != 0 {
            self.new_member_added = false;
            let new_delay = cfg.initial_rebalance_delay_ms.max(0).min(remaining_ms);
            let new_remaining = (remaining_ms - delay_ms).max(0);
            self.join_timer = Some(JoinTimer {
                deadline: now.saturating_add(i64::from(new_delay)),
                kind: JoinTimerKind::InitialDelay {
                    delay_ms: new_delay,
                    remaining_ms: new_remaining,
                },
            });
        } else {
            self.complete_join(now, out);
        }
    }

    /// Kafka's `completeClassicGroupJoin`: drop dynamic members that did not rejoin, start
    /// the next generation and answer every parked JoinGroup.
    pub(crate) fn complete_join(&mut self, now: i64, out: &mut Vec<Effect>) {
        self.join_timer = None;
        let not_rejoined: Vec<String> = self
            .members_in_order()
            .into_iter()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &not_rejoined {
            self.remove_member(id, out);
        }
        if !not_rejoined.is_empty() {
            tracing::info!(group = %self.id, members = ?not_rejoined, "removed members that did not rejoin");
        }
        if self.is(GroupState::Dead) {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait another rebalance
            // timeout (their sessions will expire meanwhile if they are gone).
            self.join_timer = Some(JoinTimer {
                deadline: now.saturating_add(i64::from(self.rebalance_timeout_ms())),
                kind: JoinTimerKind::Rebalance,
            });
            return;
        }
        self.init_next_generation(now);
        if self.is(GroupState::Empty) {
            tracing::info!(group = %self.id, generation = self.generation, "group is now empty");
            self.persist_metadata(out);
            return;
        }
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            "stabilized group"
        );
        let leader_members = self.join_members();
        for id in self.member_ids_in_order() {
            let is_leader = self.is_leader(&id);
            let mut response = self.join_response(&id, false);
            if is_leader {
                response.members = leader_members.clone();
            }
            if let Some(m) = self.members.get_mut(&id) {
                if let Some(rid) = m.awaiting_join.take() {
                    respond(out, rid, Response::JoinGroup(response));
                }
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
                m.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        self.sync_timer = Some(SyncTimer {
            deadline: now.saturating_add(i64::from(self.rebalance_timeout_ms())),
            generation: self.generation,
        });
    }

    /// Keeps the leader if it rejoined, else elects the first rejoined member.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        let next = self
            .members_in_order()
            .into_iter()
            .find(|m| m.awaiting_join.is_some())
            .map(|m| m.id.clone());
        match next {
            Some(id) => {
                tracing::info!(group = %self.id, old = %leader, new = %id, "leader did not rejoin; elected a new one");
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self, now: i64) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::Empty, now);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::CompletingRebalance, now);
        }
        self.pending_sync.clear();
    }

    fn reset_and_propagate_assignment_error(
        &mut self,
        error: ErrorCode,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(error, now, out);
    }

    /// Answers every parked SyncGroup with the member's assignment (or the error).
    pub(crate) fn propagate_assignment(
        &mut self,
        error: ErrorCode,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        let ok = error == ErrorCode::None;
        let protocol_type = self.protocol_type.clone().filter(|_| ok);
        let protocol_name = self.protocol_name.clone().filter(|_| ok);
        for id in self.member_ids_in_order() {
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            if let Some(rid) = m.awaiting_sync.take() {
                if ok && m.assignment.is_empty() {
                    tracing::warn!(group = %self.id, member = %id, "sending an empty assignment");
                }
                respond(
                    out,
                    rid,
                    Response::SyncGroup(SyncGroupResponse {
                        error,
                        protocol_type: protocol_type.clone(),
                        protocol_name: protocol_name.clone(),
                        assignment: m.assignment.clone(),
                    }),
                );
                m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
            }
        }
    }

    /// Kafka's `removeMemberAndUpdateClassicGroup`, for an expired session.
    pub(crate) fn remove_member_and_update(
        &mut self,
        cfg: &GroupConfig,
        member_id: &str,
        now: i64,
        reason: &str,
        out: &mut Vec<Effect>,
    ) {
        self.remove_member(member_id, out);
        if self.is(GroupState::Stable) || self.is(GroupState::CompletingRebalance) {
            self.maybe_prepare_rebalance_or_complete_join(cfg, now, reason, out);
        } else if self.is(GroupState::PreparingRebalance) && self.has_all_members_joined() {
            self.complete_join(now, out);
        }
    }

    /// A member's session timer fired.
    pub(crate) fn on_heartbeat_expired(
        &mut self,
        cfg: &GroupConfig,
        member_id: &str,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        member.heartbeat_deadline = None;
        if member.has_satisfied_heartbeat() {
            return;
        }
        tracing::info!(group = %self.id, member = %member_id, "member session expired");
        self.remove_member_and_update(cfg, member_id, now, "member session expired", out);
    }

    /// A MEMBER_ID_REQUIRED member never came back.
    pub(crate) fn on_pending_member_expired(
        &mut self,
        member_id: &str,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        if self.pending_members.remove(member_id).is_some()
            && self.is(GroupState::PreparingRebalance)
            && self.has_all_members_joined()
        {
            self.complete_join(now, out);
        }
    }

    /// The sync phase expired: remove members that never sent SyncGroup and rebalance.
    pub(crate) fn on_sync_expired(
        &mut self,
        cfg: &GroupConfig,
        generation: i32,
        now: i64,
        out: &mut Vec<Effect>,
    ) {
        self.sync_timer = None;
        if generation != self.generation
            || !(self.is(GroupState::CompletingRebalance) || self.is(GroupState::Stable))
            || self.pending_sync.is_empty()
        {
            return;
        }
        let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
        for id in &missing {
            self.remove_member(id, out);
        }
        tracing::info!(group = %self.id, members = ?missing, "removed members that did not sync");
        self.prepare_rebalance(cfg, now, "pending sync expired", out);
    }

    /// Answers everything parked in this group with `error` (partition unloaded).
    pub(crate) fn fail_all_parked(&mut self, error: ErrorCode, out: &mut Vec<Effect>) {
        for id in self.member_ids_in_order() {
            if let Some(m) = self.members.get_mut(&id) {
                if let Some(rid) = m.awaiting_join.take() {
                    respond(
                        out,
                        rid,
                        Response::JoinGroup(JoinGroupResponse::error(id.clone(), error)),
                    );
                }
                if let Some(rid) = m.awaiting_sync.take() {
                    respond(
                        out,
                        rid,
                        Response::SyncGroup(SyncGroupResponse::error(error)),
                    );
                }
            }
        }
    }
}

pub(crate) fn respond(out: &mut Vec<Effect>, request_id: RequestId, response: Response) {
    out.push(Effect::Respond {
        request_id,
        response,
    });
}

/// Topics of a consumer-protocol subscription: an `int16` version, then the version-0 prefix
/// every later version shares (topics, user data), read with `kafka_protocol`'s
/// `ConsumerProtocolSubscription`. `None` if the bytes do not parse.
pub(crate) fn parse_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    if metadata.len() < 6 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    if version < 0 {
        return None;
    }
    // kafka_protocol preallocates arrays from their length prefix: refuse counts the input
    // cannot hold (each topic takes at least two bytes) before handing the bytes over.
    let count = i32::from_be_bytes([metadata[2], metadata[3], metadata[4], metadata[5]]);
    if count < -1 || i64::from(count) * 2 > (metadata.len() - 6) as i64 {
        return None;
    }
    let mut buf = Bytes::copy_from_slice(&metadata[2..]);
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(
        subscription
            .topics
            .into_iter()
            .map(|t| t.to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(topics: &[&str]) -> Vec<u8> {
        let mut v = vec![0, 1]; // version 1: the v0 prefix is all that is read
        v.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            v.extend_from_slice(&(t.len() as i16).to_be_bytes());
            v.extend_from_slice(t.as_bytes());
        }
        v.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        v.extend_from_slice(&0i32.to_be_bytes()); // v1 owned partitions, ignored
        v
    }

    #[test]
    fn subscriptions_parse_and_garbage_does_not() {
        assert_eq!(
            parse_subscription_topics(&subscription(&["a", "b"])),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(parse_subscription_topics(b""), None);
        assert_eq!(parse_subscription_topics(b"\x00"), None);
        // Negative version.
        let mut bad = subscription(&["a"]);
        bad[0] = 0xff;
        assert_eq!(parse_subscription_topics(&bad), None);
        // A topic count far larger than the bytes: refused before any allocation.
        let mut huge = vec![0, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 16]);
        assert_eq!(parse_subscription_topics(&huge), None);
        // Truncated and non-UTF-8 topics.
        let ok = subscription(&["topic"]);
        for cut in 0..ok.len() - 8 {
            assert_eq!(parse_subscription_topics(&ok[..cut]), None, "cut at {cut}");
        }
        let mut latin1 = subscription(&["t\u{e9}"]);
        let at = latin1.iter().position(|b| *b == 0xc3).unwrap();
        latin1[at] = 0xe9;
        assert_eq!(parse_subscription_topics(&latin1), None);
        for seed in 0u32..2_000 {
            let garbage: Vec<u8> = (0..(seed % 40))
                .map(|i| (seed.wrapping_mul(2_654_435_761).rotate_left(i) & 0xff) as u8)
                .collect();
            let _ = parse_subscription_topics(&garbage);
        }
    }

    fn member(id: &str, seq: u64, protocols: &[&str]) -> Member {
        Member {
            id: id.to_owned(),
            group_instance_id: None,
            client_id: "c".to_owned(),
            client_host: "/h".to_owned(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".to_owned(),
            protocols: protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline: None,
            seq,
        }
    }

    #[test]
    fn protocol_vote() {
        let mut g = Group::new("g".into(), 0, None);
        g.add_member(member("a", 0, &["range", "roundrobin"]));
        g.add_member(member("b", 1, &["roundrobin", "range"]));
        // One vote each: the first protocol voted for (in join order) wins the tie.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        g.add_member(member("c", 2, &["roundrobin", "range", "sticky"]));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        g.add_member(member("d", 3, &["sticky", "range"]));
        // roundrobin is no longer supported by everyone.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        g.state = GroupState::Stable;
        assert!(g.supports_protocols("consumer", &[("range".into(), Bytes::new())]));
        assert!(!g.supports_protocols("consumer", &[("sticky".into(), Bytes::new())]));
        assert!(!g.supports_protocols("connect", &[("range".into(), Bytes::new())]));
    }
}
