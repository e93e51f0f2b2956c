//! Coordinator configuration, with Kafka's config names and defaults.

/// The group coordinator's settings. Field docs name the Kafka broker config each one mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: the smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, extended by the same delay for every new member and bounded by
    /// the rebalance timeout.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`: the most members a classic group may have.
    pub max_size: i32,
    /// How long a new member's parked JoinGroup may wait before the member is dropped (a
    /// fixed 5 minutes in Kafka, `NewMemberJoinTimeoutMs`; not a broker config there).
    pub new_member_join_timeout_ms: i32,
    /// `offsets.retention.minutes`, in ms: how long offsets of an empty group are kept.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`: the longest metadata string an offset commit may carry
    /// (compared, as Kafka does, in UTF-16 code units).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 10_080 * 60 * 1_000,
            offset_metadata_max_bytes: 4_096,
            offsets_topic_num_partitions: 50,
            offsets_retention_check_interval_ms: 600_000,
        }
    }
}
