//! Domain requests, responses and effects exchanged with the driver.
//!
//! These are not the wire structs of `kafka_protocol`: the broker converts each wire version
//! into these and back, so version-specific details (v0 rebalance timeouts, nullable protocol
//! names, per-partition copies of group errors) live in one place at the broker edge.

use std::fmt;

use bytes::Bytes;
use fjord_common::ErrorCode;

/// An opaque handle the driver gives to each request so that delayed responses can be
/// routed back to the connection that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Append these records to partition `partition` of `__consumer_offsets` and wait until
    /// they are durable before applying the effects that follow.
    Persist {
        /// The `__consumer_offsets` partition.
        partition: i32,
        /// Records, in append order.
        records: Vec<PersistRecord>,
    },
    /// Send `response` to the request identified by `request_id`.
    Respond {
        /// The request to answer.
        request_id: RequestId,
        /// The answer.
        response: Response,
    },
}

/// A `__consumer_offsets` record in Kafka's binary format (see [`crate::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistRecord {
    /// The record key.
    pub key: Bytes,
    /// The record value; `None` is a tombstone.
    pub value: Option<Bytes>,
}

/// A response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Answer to [`JoinGroupRequest`].
    JoinGroup(JoinGroupResponse),
    /// Answer to [`SyncGroupRequest`].
    SyncGroup(SyncGroupResponse),
    /// Answer to [`HeartbeatRequest`].
    Heartbeat(HeartbeatResponse),
    /// Answer to [`LeaveGroupRequest`].
    LeaveGroup(LeaveGroupResponse),
    /// Answer to [`OffsetCommitRequest`].
    OffsetCommit(OffsetCommitResponse),
    /// Answer to [`OffsetFetchRequest`].
    OffsetFetch(OffsetFetchResponse),
    /// Answer to [`OffsetDeleteRequest`].
    OffsetDelete(OffsetDeleteResponse),
    /// Answer to [`DescribeGroupsRequest`].
    DescribeGroups(DescribeGroupsResponse),
    /// Answer to [`ListGroupsRequest`].
    ListGroups(ListGroupsResponse),
    /// Answer to [`DeleteGroupsRequest`].
    DeleteGroups(DeleteGroupsResponse),
}

/// The state of a classic group, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// No members; offsets may still exist.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Assignment done and propagated.
    Stable,
    /// Removed (or never existed).
    Dead,
}

impl GroupState {
    /// Kafka's name, as DescribeGroups and ListGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a state name, ignoring ASCII case (ListGroups filters are case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// JoinGroup (all versions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty for a member joining for the first time.
    pub member_id: String,
    /// `group.instance.id` of a static member (v5+).
    pub group_instance_id: Option<String>,
    /// Protocol type, e.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols (assignors) in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Session timeout in ms.
    pub session_timeout_ms: i32,
    /// Rebalance timeout in ms (v1+; the broker passes the session timeout for v0, and a
    /// negative value is treated the same way).
    pub rebalance_timeout_ms: i32,
    /// The connection's client id.
    pub client_id: String,
    /// The connection's client host, as Kafka shows it (e.g. `/127.0.0.1`).
    pub client_host: String,
    /// JoinGroup v4+: a new dynamic member must first obtain a member id
    /// (MEMBER_ID_REQUIRED round trip).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the client understands `skip_assignment`.
    pub supports_skip_assignment: bool,
    /// Client-given reason for the join (v8+), for logs.
    pub reason: Option<String>,
}

/// One member as listed to the leader in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    /// Error.
    pub error: ErrorCode,
    /// Generation, `-1` on error.
    pub generation_id: i32,
    /// Protocol type of the group.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader member id, empty on error.
    pub leader: String,
    /// v9+: the leader must not compute a new assignment (static leader rejoining).
    pub skip_assignment: bool,
    /// The member id of the requester (a newly generated one where applicable).
    pub member_id: String,
    /// All members with their metadata, for the leader only.
    pub members: Vec<JoinGroupMember>,
}

impl JoinGroupResponse {
    /// An error response in Kafka's shape: generation -1, no protocol, no leader.
    pub fn error(member_id: impl Into<String>, error: ErrorCode) -> Self {
        JoinGroupResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.into(),
            members: Vec::new(),
        }
    }
}

/// SyncGroup (all versions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Generation the member joined.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// v5+: the protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5+: the protocol the member expects.
    pub protocol_name: Option<String>,
    /// The leader's assignment per member id (empty for followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    /// Error.
    pub error: ErrorCode,
    /// Protocol type, on success.
    pub protocol_type: Option<String>,
    /// Protocol name, on success.
    pub protocol_name: Option<String>,
    /// The member's assignment (empty on error).
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    /// An error response.
    pub fn error(error: ErrorCode) -> Self {
        SyncGroupResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Heartbeat (all versions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
}

/// Heartbeat response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Error.
    pub error: ErrorCode,
}

/// One member leaving (LeaveGroup v3+ batches them; v0–2 carry one member id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeavingMember {
    /// Member id; may be empty when an admin removes a static member by instance id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client-given reason (v5+), for logs.
    pub reason: Option<String>,
}

/// LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Members leaving.
    pub members: Vec<LeavingMember>,
}

/// Per-member outcome of a LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupMemberResponse {
    /// Member id as sent.
    pub member_id: String,
    /// Instance id as sent.
    pub group_instance_id: Option<String>,
    /// Error for this member.
    pub error: ErrorCode,
}

/// LeaveGroup response. For v0–2 the broker reports `error` if it is set, else the error of
/// the single member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    /// Group-level error.
    pub error: ErrorCode,
    /// Per-member errors (empty when `error` is set).
    pub members: Vec<LeaveGroupMemberResponse>,
}

/// One partition's offset in an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
    /// Leader epoch of the last consumed record, `-1` if unknown.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitRequest {
    /// Group id.
    pub group_id: String,
    /// Generation; `-1` for commits from outside group management ("simple" commits).
    pub generation_id: i32,
    /// Member id; empty for simple commits.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// v2–v4 retention override in ms; `-1` uses the broker's `offsets.retention.minutes`.
    pub retention_time_ms: i64,
    /// The request's API version: from v9 a commit with a generation to an unknown group
    /// fails with GROUP_ID_NOT_FOUND rather than ILLEGAL_GENERATION, as in Kafka.
    pub api_version: i16,
    /// Offsets to commit.
    pub offsets: Vec<OffsetCommitEntry>,
}

/// A topic-partition and its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Error.
    pub error: ErrorCode,
}

/// OffsetCommit response: one entry per requested partition, in request order (Kafka's
/// OffsetCommit response has no group-level error; group errors repeat on every partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    /// Per-partition results.
    pub partitions: Vec<PartitionResult>,
}

/// OffsetFetch for one group (v8+ batches groups: call once per group).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchRequest {
    /// Group id.
    pub group_id: String,
    /// Topics and partitions; `None` fetches every committed partition.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
}

/// One partition's committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, `-1` if none.
    pub offset: i64,
    /// Leader epoch, `-1` if none.
    pub leader_epoch: i32,
    /// Metadata (empty if none).
    pub metadata: String,
    /// Error.
    pub error: ErrorCode,
}

/// OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    /// Group-level error (v2+; older versions copy it onto partitions).
    pub error: ErrorCode,
    /// Partitions, in request order, or sorted by topic and partition for "all".
    pub partitions: Vec<OffsetFetchPartition>,
}

/// OffsetDelete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetDeleteRequest {
    /// Group id.
    pub group_id: String,
    /// Topics and partitions whose offsets to delete.
    pub topics: Vec<(String, Vec<i32>)>,
}

/// OffsetDelete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetDeleteResponse {
    /// Group-level error.
    pub error: ErrorCode,
    /// Per-partition errors (empty when `error` is set).
    pub partitions: Vec<PartitionResult>,
}

/// DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeGroupsRequest {
    /// Groups to describe.
    pub group_ids: Vec<String>,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the selected protocol (empty unless the group is Stable).
    pub metadata: Bytes,
    /// Assignment (empty unless the group is Stable).
    pub assignment: Bytes,
}

/// One described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    /// Group id.
    pub group_id: String,
    /// Error.
    pub error: ErrorCode,
    /// State (Dead for unknown groups, as Kafka reports them).
    pub state: GroupState,
    /// Protocol type, empty if none.
    pub protocol_type: String,
    /// Selected protocol, empty unless the group is Stable.
    pub protocol: String,
    /// Members, in join order.
    pub members: Vec<DescribedMember>,
}

/// DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupsResponse {
    /// One entry per requested group, in request order.
    pub groups: Vec<DescribedGroup>,
}

/// ListGroups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest {
    /// v4+: only groups in these states (case-insensitive); empty means all.
    pub states_filter: Vec<String>,
    /// v5+: only groups of these types (case-insensitive, `classic` here); empty means all.
    pub types_filter: Vec<String>,
}

/// One listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type, empty if none.
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
    /// Group type (`classic`).
    pub group_type: String,
}

/// ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    /// Error.
    pub error: ErrorCode,
    /// Groups, sorted by id.
    pub groups: Vec<ListedGroup>,
}

/// DeleteGroups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteGroupsRequest {
    /// Groups to delete.
    pub group_ids: Vec<String>,
}

/// One group's deletion outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedGroup {
    /// Group id.
    pub group_id: String,
    /// Error.
    pub error: ErrorCode,
}

/// DeleteGroups response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteGroupsResponse {
    /// One entry per requested group, in request order.
    pub results: Vec<DeletedGroup>,
}

/// A read-only view of a group, for introspection, tests and admin tooling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its current state (ms), if known.
    pub state_timestamp_ms: Option<i64>,
    /// Members in join order.
    pub members: Vec<MemberSummary>,
}

/// A member in a [`GroupSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Metadata for the group's selected protocol (empty if none is selected).
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// A committed offset, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch, `-1` if unknown.
    pub leader_epoch: i32,
    /// Metadata.
    pub metadata: String,
    /// Commit time (ms).
    pub commit_timestamp_ms: i64,
    /// Explicit expiry time (ms), from a v2–v4 retention override.
    pub expire_timestamp_ms: Option<i64>,
}
