//! Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit/Fetch/Delete, Describe/List/DeleteGroups) as a pure, deterministic state
//! machine: the group coordinator of a Fjord broker.
//!
//! This is the protocol librdkafka, kafka-python, KafkaJS, franz-go and the Java consumer use
//! by default. The coordinator never interprets assignments, so eager and cooperative
//! assignors both work; it only reads `consumer` subscriptions to know which topics a group
//! consumes (for OffsetDelete and offset expiry).
//!
//! # Design
//!
//! [`GroupCoordinator`] does no I/O, spawns nothing and has no clock: like Kafka's
//! `ControllerResult` + `replay()` or openraft's engine emitting commands, every call takes
//! the current time and returns the [`Effect`]s the driver must carry out. State lives in
//! memory; its durable form is the compacted `__consumer_offsets` topic, written with
//! Kafka's own binary key/value schemas ([`record`]) so Kafka tooling can read it.
//!
//! # Driver contract
//!
//! * Convert each wire request into the domain request ([`JoinGroupRequest`], ...), give it a
//!   [`RequestId`] and call the handler with `now_ms`.
//! * Apply the returned effects **in order**. [`Effect::Persist`] appends records to the
//!   given `__consumer_offsets` partition; the effects after it must wait until the append is
//!   durable, so a response that follows a Persist is only sent once its records are safe.
//!   [`Effect::Respond`] sends a response to a request, possibly one made long before:
//!   JoinGroup and SyncGroup responses are parked until the rebalance moves on, and are
//!   emitted later by another request or by [`GroupCoordinator::tick`]. Every request gets
//!   exactly one response; a response for a connection that has closed can be dropped.
//! * Call [`GroupCoordinator::tick`] at [`GroupCoordinator::next_deadline`] (session expiry,
//!   rebalance and sync timeouts, the initial rebalance delay, offset expiry). Handlers also
//!   fire due timers first, so ticking late is safe.
//! * On startup, for each `__consumer_offsets` partition: [`GroupCoordinator::begin_loading`]
//!   (requests get COORDINATOR_LOAD_IN_PROGRESS), [`GroupCoordinator::replay`] every record
//!   in offset order, then [`GroupCoordinator::load_partition`]. Groups of partitions not
//!   loaded get NOT_COORDINATOR; [`GroupCoordinator::unload_partition`] gives one up. A
//!   single-node broker owns them all ([`GroupCoordinator::load_all_partitions`]).
//! * If an append fails, do not send the responses that follow it; unload and reload the
//!   partition (replaying what is durable) so memory matches the log again.
//!
//! The group of a request lives in partition [`partition_for`]`(group_id)`, Kafka's
//! `abs(groupId.hashCode()) % offsets.topic.num.partitions`, so FindCoordinator answers can
//! be computed the same way.
//!
//! # Example
//!
//! Two consumers join a new group, the leader assigns, both get their assignment.
//!
//! ```
//! use bytes::Bytes;
//! use fjord_coordinator::{
//!     Effect, GroupConfig, GroupCoordinator, GroupState, JoinGroupRequest, RequestId, Response,
//!     SyncGroupRequest,
//! };
//!
//! let mut coordinator = GroupCoordinator::new(GroupConfig::default());
//! coordinator.load_all_partitions(0);
//!
//! let join = |member_id: &str| JoinGroupRequest {
//!     group_id: "orders".into(),
//!     member_id: member_id.into(),
//!     protocol_type: "consumer".into(),
//!     protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
//!     session_timeout_ms: 10_000,
//!     rebalance_timeout_ms: 30_000,
//!     client_id: "app".into(),
//!     client_host: "/127.0.0.1".into(),
//!     ..Default::default()
//! };
//!
//! // Both JoinGroups are parked: a new group waits group.initial.rebalance.delay.ms for
//! // more members. (The first join also persists the new, empty group.)
//! coordinator.join_group(join(""), RequestId(1), 0);
//! coordinator.join_group(join(""), RequestId(2), 100);
//!
//! // The driver ticks at each deadline until the join phase completes.
//! let mut joined = Vec::new();
//! while joined.len() < 2 {
//!     let at = coordinator.next_deadline().expect("a rebalance is pending");
//!     for effect in coordinator.tick(at) {
//!         if let Effect::Respond { response: Response::JoinGroup(r), .. } = effect {
//!             joined.push(r);
//!         }
//!     }
//! }
//! let leader = joined.iter().find(|r| r.member_id == r.leader).unwrap();
//! let follower = joined.iter().find(|r| r.member_id != r.leader).unwrap();
//! assert_eq!(leader.generation_id, 1);
//! assert_eq!(leader.protocol_name.as_deref(), Some("range"));
//! assert_eq!(leader.members.len(), 2); // only the leader sees the members
//! assert!(follower.members.is_empty());
//!
//! // The follower's SyncGroup waits for the leader's.
//! let sync = |member_id: &str, assignments: Vec<(String, Bytes)>| SyncGroupRequest {
//!     group_id: "orders".into(),
//!     generation_id: 1,
//!     member_id: member_id.into(),
//!     assignments,
//!     ..Default::default()
//! };
//! let now = 7_000;
//! assert!(coordinator.sync_group(sync(&follower.member_id, vec![]), RequestId(3), now).is_empty());
//! let effects = coordinator.sync_group(
//!     sync(
//!         &leader.member_id,
//!         vec![
//!             (leader.member_id.clone(), Bytes::from_static(b"orders-0")),
//!             (follower.member_id.clone(), Bytes::from_static(b"orders-1")),
//!         ],
//!     ),
//!     RequestId(4),
//!     now,
//! );
//! // First persist the group with its assignments, then answer both members.
//! assert!(matches!(effects[0], Effect::Persist { .. }));
//! let assignment_of = |id: RequestId| {
//!     effects.iter().find_map(|e| match e {
//!         Effect::Respond { request_id, response: Response::SyncGroup(r) } if *request_id == id => {
//!             Some(r.assignment.clone())
//!         }
//!         _ => None,
//!     })
//! };
//! assert_eq!(assignment_of(RequestId(3)).as_deref(), Some(&b"orders-1"[..]));
//! assert_eq!(assignment_of(RequestId(4)).as_deref(), Some(&b"orders-0"[..]));
//! assert_eq!(
//!     coordinator.group_summary("orders").map(|g| g.state),
//!     Some(GroupState::Stable)
//! );
//! ```

#![warn(missing_docs)]

mod api;
mod config;
mod coordinator;
mod group;
pub mod record;

pub use api::{
    CommittedOffset, DeleteGroupsRequest, DeleteGroupsResponse, DeletedGroup,
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedMember, Effect,
    GroupState, GroupSummary, HeartbeatRequest, HeartbeatResponse, JoinGroupMember,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupMemberResponse, LeaveGroupRequest,
    LeaveGroupResponse, LeavingMember, ListGroupsRequest, ListGroupsResponse, ListedGroup,
    MemberSummary, OffsetCommitEntry, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchPartition, OffsetFetchRequest,
    OffsetFetchResponse, PartitionResult, PersistRecord, RequestId, Response, SyncGroupRequest,
    SyncGroupResponse,
};
pub use config::GroupConfig;
pub use coordinator::{partition_for, GroupCoordinator, CLASSIC_GROUP_TYPE};
pub use record::RecordError;
