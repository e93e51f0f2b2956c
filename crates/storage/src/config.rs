//! Topic-level log configuration with Kafka's names, types, defaults and validation.
//!
//! [`TOPIC_CONFIGS`] is the table DescribeConfigs / CreateTopics / IncrementalAlterConfigs
//! need: every key Kafka accepts at topic level, its type, its default in Kafka's string form,
//! the broker-level key that supplies the default (its "synonym"), and a one-line doc.
//! [`LogConfig`] is the typed view the log uses.

use std::fmt;
use thiserror::Error;

/// A rejected configuration key or value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid value for configuration {key}: {reason}")]
pub struct ConfigError {
    /// The configuration key.
    pub key: String,
    /// Why it was rejected.
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Kafka's configuration value types (`ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// 64-bit integer.
    Long,
    /// 32-bit integer.
    Int,
    /// `true` / `false`.
    Boolean,
    /// Free string.
    String,
    /// Comma-separated list.
    List,
    /// Floating point.
    Double,
}

impl ConfigType {
    /// Kafka's name for the type, as DescribeConfigs v3+ reports it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Long => "LONG",
            ConfigType::Int => "INT",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::List => "LIST",
            ConfigType::Double => "DOUBLE",
        }
    }
}

/// What values a key accepts, beyond its type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// Any value of the type.
    Any,
    /// An integer at least this large.
    AtLeast(i64),
    /// An integer in this inclusive range.
    Between(i64, i64),
    /// An integer equal to the first value or within the inclusive range of the other two
    /// (`compression.gzip.level`: -1 or 1..=9).
    OneOrBetween(i64, i64, i64),
    /// A floating point number in this inclusive range.
    DoubleBetween(f64, f64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A list whose elements are all among these strings.
    ListOf(&'static [&'static str]),
}

/// One topic-level configuration key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// The topic-level key, e.g. `retention.ms`.
    pub name: &'static str,
    /// The value type.
    pub kind: ConfigType,
    /// Kafka's default, rendered as Kafka renders it.
    pub default: &'static str,
    /// The broker-level key whose value is the default for this key (Kafka's synonym),
    /// e.g. `log.retention.ms` for `retention.ms`.
    pub broker_synonym: Option<&'static str>,
    /// Accepted values.
    pub validator: Validator,
    /// One-line description.
    pub doc: &'static str,
}

const I64_MAX: &str = "9223372036854775807";

macro_rules! def {
    ($name:expr, $kind:ident, $default:expr, $syn:expr, $val:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            broker_synonym: $syn,
            validator: $val,
            doc: $doc,
        }
    };
}

/// Every topic-level configuration key Fjord accepts, in Kafka's alphabetical order.
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "cleanup.policy",
        List,
        "delete",
        Some("log.cleanup.policy"),
        Validator::ListOf(&["compact", "delete"]),
        "Retention policy for old segments: delete, compact, or both."
    ),
    def!(
        "compression.gzip.level",
        Int,
        "-1",
        Some("compression.gzip.level"),
        Validator::OneOrBetween(-1, 1, 9),
        "Compression level for gzip when compression.type is gzip."
    ),
    def!(
        "compression.lz4.level",
        Int,
        "9",
        Some("compression.lz4.level"),
        Validator::Between(1, 17),
        "Compression level for lz4 when compression.type is lz4."
    ),
    def!(
        "compression.type",
        String,
        "producer",
        Some("compression.type"),
        Validator::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "Final compression of the topic's data; producer keeps the producer's codec."
    ),
    def!(
        "compression.zstd.level",
        Int,
        "3",
        Some("compression.zstd.level"),
        Validator::Between(-131072, 22),
        "Compression level for zstd when compression.type is zstd."
    ),
    def!(
        "delete.retention.ms",
        Long,
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
        Validator::AtLeast(0),
        "How long delete tombstones are kept on compacted topics."
    ),
    def!(
        "file.delete.delay.ms",
        Long,
        "60000",
        Some("log.segment.delete.delay.ms"),
        Validator::AtLeast(0),
        "Time to wait before deleting a file from the filesystem."
    ),
    def!(
        "flush.messages",
        Long,
        I64_MAX,
        Some("log.flush.interval.messages"),
        Validator::AtLeast(1),
        "Force an fsync after this many messages; 1 fsyncs every append."
    ),
    def!(
        "flush.ms",
        Long,
        I64_MAX,
        Some("log.flush.interval.ms"),
        Validator::AtLeast(0),
        "Force an fsync after this much time since the last one."
    ),
    def!(
        "follower.replication.throttled.replicas",
        List,
        "",
        None,
        Validator::Any,
        "Replicas whose log replication is throttled on the follower side."
    ),
    def!(
        "index.interval.bytes",
        Int,
        "4096",
        Some("log.index.interval.bytes"),
        Validator::AtLeast(0),
        "Bytes of log between two offset index entries."
    ),
    def!(
        "leader.replication.throttled.replicas",
        List,
        "",
        None,
        Validator::Any,
        "Replicas whose log replication is throttled on the leader side."
    ),
    def!(
        "local.retention.bytes",
        Long,
        "-2",
        Some("log.local.retention.bytes"),
        Validator::AtLeast(-2),
        "Local size limit before segments become eligible for deletion (tiered storage)."
    ),
    def!(
        "local.retention.ms",
        Long,
        "-2",
        Some("log.local.retention.ms"),
        Validator::AtLeast(-2),
        "Local time limit before segments become eligible for deletion (tiered storage)."
    ),
    def!(
        "max.compaction.lag.ms",
        Long,
        I64_MAX,
        Some("log.cleaner.max.compaction.lag.ms"),
        Validator::AtLeast(1),
        "Maximum time a message remains ineligible for compaction."
    ),
    def!(
        "max.message.bytes",
        Int,
        "1048588",
        Some("message.max.bytes"),
        Validator::AtLeast(0),
        "Largest record batch size allowed."
    ),
    def!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        Some("log.message.timestamp.after.max.ms"),
        Validator::AtLeast(0),
        "How far a CreateTime timestamp may lie in the future of the broker's clock."
    ),
    def!(
        "message.timestamp.before.max.ms",
        Long,
        I64_MAX,
        Some("log.message.timestamp.before.max.ms"),
        Validator::AtLeast(0),
        "How far a CreateTime timestamp may lie in the past of the broker's clock."
    ),
    def!(
        "message.timestamp.difference.max.ms",
        Long,
        I64_MAX,
        Some("log.message.timestamp.difference.max.ms"),
        Validator::AtLeast(0),
        "Deprecated: maximum difference between a CreateTime timestamp and the broker's clock."
    ),
    def!(
        "message.timestamp.type",
        String,
        "CreateTime",
        Some("log.message.timestamp.type"),
        Validator::OneOf(&["CreateTime", "LogAppendTime"]),
        "Whether timestamps come from the producer (CreateTime) or the broker (LogAppendTime)."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
        Validator::DoubleBetween(0.0, 1.0),
        "Minimum dirty share of the log before the cleaner compacts it."
    ),
    def!(
        "min.compaction.lag.ms",
        Long,
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
        Validator::AtLeast(0),
        "Minimum time a message remains uncompacted."
    ),
    def!(
        "min.insync.replicas",
        Int,
        "1",
        Some("min.insync.replicas"),
        Validator::AtLeast(1),
        "Minimum in-sync replicas for an acks=all write to succeed."
    ),
    def!(
        "preallocate",
        Boolean,
        "false",
        Some("log.preallocate"),
        Validator::Any,
        "Preallocate segment files (accepted, currently ignored)."
    ),
    def!(
        "remote.log.copy.disable",
        Boolean,
        "false",
        None,
        Validator::Any,
        "Stop copying segments to remote storage (tiered storage)."
    ),
    def!(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        None,
        Validator::Any,
        "Delete remote data when tiered storage is disabled."
    ),
    def!(
        "remote.storage.enable",
        Boolean,
        "false",
        None,
        Validator::Any,
        "Enable tiered storage for the topic."
    ),
    def!(
        "retention.bytes",
        Long,
        "-1",
        Some("log.retention.bytes"),
        Validator::Any,
        "Maximum partition size before old segments are deleted; -1 means no limit."
    ),
    def!(
        "retention.ms",
        Long,
        "604800000",
        Some("log.retention.ms"),
        Validator::AtLeast(-1),
        "Maximum age of a segment before it is deleted; -1 means no limit."
    ),
    def!(
        "segment.bytes",
        Int,
        "1073741824",
        Some("log.segment.bytes"),
        Validator::AtLeast(14),
        "Segment file size at which a new segment is rolled."
    ),
    def!(
        "segment.index.bytes",
        Int,
        "10485760",
        Some("log.index.size.max.bytes"),
        Validator::AtLeast(4),
        "Maximum size of a segment's offset index; a full index rolls the segment."
    ),
    def!(
        "segment.jitter.ms",
        Long,
        "0",
        Some("log.roll.jitter.ms"),
        Validator::AtLeast(0),
        "Maximum random jitter subtracted from segment.ms."
    ),
    def!(
        "segment.ms",
        Long,
        "604800000",
        Some("log.roll.ms"),
        Validator::AtLeast(1),
        "Time after which a segment is rolled even if not full."
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Some("unclean.leader.election.enable"),
        Validator::Any,
        "Allow replicas outside the ISR to become leader, at the risk of data loss."
    ),
];

/// Looks a key up in [`TOPIC_CONFIGS`].
pub fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The timestamp semantics of a topic (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Timestamps are set by the producer.
    #[default]
    CreateTime,
    /// The broker overwrites the batch's max timestamp with its clock on append.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// `compression.type` at topic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Keep whatever the producer used.
    #[default]
    Producer,
    /// Store uncompressed (`uncompressed`; `none` is accepted as an alias).
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

/// `cleanup.policy`: delete, compact, both or (allowed by Kafka) neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Delete old segments by retention.ms / retention.bytes.
    pub delete: bool,
    /// Compact to the latest value per key.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            (false, true) => f.write_str("delete"),
            (false, false) => Ok(()),
        }
    }
}

/// Typed topic-level configuration of one log. Field names follow the Kafka keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: i32,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: i32,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `index.interval.bytes`.
    pub index_interval_bytes: i32,
    /// `flush.messages` (1: fsync every append).
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `file.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub message_timestamp_after_max_ms: i64,
    /// `message.timestamp.difference.max.ms` (deprecated; still applied when smaller).
    pub message_timestamp_difference_max_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `compression.gzip.level`.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level`.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level`.
    pub compression_zstd_level: i32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `preallocate` (accepted, ignored).
    pub preallocate: bool,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `local.retention.ms`.
    pub local_retention_ms: i64,
    /// `local.retention.bytes`.
    pub local_retention_bytes: i64,
    /// `remote.storage.enable`.
    pub remote_storage_enable: bool,
    /// `remote.log.copy.disable`.
    pub remote_log_copy_disable: bool,
    /// `remote.log.delete.on.disable`.
    pub remote_log_delete_on_disable: bool,
    /// `leader.replication.throttled.replicas`, as given.
    pub leader_replication_throttled_replicas: String,
    /// `follower.replication.throttled.replicas`, as given.
    pub follower_replication_throttled_replicas: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1_073_741_824,
            segment_ms: 604_800_000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10_485_760,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::default(),
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            message_timestamp_difference_max_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            compression_type: CompressionType::Producer,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            min_insync_replicas: 1,
            preallocate: false,
            unclean_leader_election_enable: false,
            local_retention_ms: -2,
            local_retention_bytes: -2,
            remote_storage_enable: false,
            remote_log_copy_disable: false,
            remote_log_delete_on_disable: false,
            leader_replication_throttled_replicas: String::new(),
            follower_replication_throttled_replicas: String::new(),
        }
    }
}

/// A value parsed according to its [`ConfigDef`].
enum Parsed {
    Long(i64),
    Bool(bool),
    Double(f64),
    Str(String),
    List(Vec<String>),
}

fn parse_value(def: &ConfigDef, value: &str) -> Result<Parsed, ConfigError> {
    let v = value.trim();
    let parsed = match def.kind {
        ConfigType::Long => Parsed::Long(
            v.parse::<i64>()
                .map_err(|_| ConfigError::new(def.name, format!("'{value}' is not a long")))?,
        ),
        ConfigType::Int => Parsed::Long(
            v.parse::<i32>()
                .map_err(|_| ConfigError::new(def.name, format!("'{value}' is not an int")))?
                as i64,
        ),
        ConfigType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" => Parsed::Bool(true),
            "false" => Parsed::Bool(false),
            _ => {
                return Err(ConfigError::new(
                    def.name,
                    format!("'{value}' is not a boolean"),
                ))
            }
        },
        ConfigType::Double => {
            let d = v
                .parse::<f64>()
                .map_err(|_| ConfigError::new(def.name, format!("'{value}' is not a double")))?;
            if !d.is_finite() {
                return Err(ConfigError::new(
                    def.name,
                    format!("'{value}' is not finite"),
                ));
            }
            Parsed::Double(d)
        }
        ConfigType::String => Parsed::Str(v.to_string()),
        ConfigType::List => Parsed::List(
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    match (&def.validator, &parsed) {
        (Validator::Any, _) => {}
        (Validator::AtLeast(min), Parsed::Long(n)) => {
            if n < min {
                return Err(ConfigError::new(
                    def.name,
                    format!("value {n} must be at least {min}"),
                ));
            }
        }
        (Validator::Between(lo, hi), Parsed::Long(n)) => {
            if n < lo || n > hi {
                return Err(ConfigError::new(
                    def.name,
                    format!("value {n} must be between {lo} and {hi}"),
                ));
            }
        }
        (Validator::OneOrBetween(one, lo, hi), Parsed::Long(n)) => {
            if n != one && (n < lo || n > hi) {
                return Err(ConfigError::new(
                    def.name,
                    format!("value {n} must be {one} or between {lo} and {hi}"),
                ));
            }
        }
        (Validator::DoubleBetween(lo, hi), Parsed::Double(d)) => {
            if d < lo || d > hi {
                return Err(ConfigError::new(
                    def.name,
                    format!("value {d} must be between {lo} and {hi}"),
                ));
            }
        }
        (Validator::OneOf(allowed), Parsed::Str(s)) => {
            // `none` is accepted for compression.type as an alias of `uncompressed`.
            let alias = def.name == "compression.type" && s == "none";
            if !alias && !allowed.contains(&s.as_str()) {
                return Err(ConfigError::new(
                    def.name,
                    format!("'{s}' must be one of {}", allowed.join(", ")),
                ));
            }
        }
        (Validator::ListOf(allowed), Parsed::List(items)) => {
            if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
                return Err(ConfigError::new(
                    def.name,
                    format!("'{bad}' must be one of {}", allowed.join(", ")),
                ));
            }
        }
        _ => {
            return Err(ConfigError::new(
                def.name,
                "validator does not match the type",
            ))
        }
    }
    Ok(parsed)
}

/// Validates one topic-level key and value as CreateTopics / AlterConfigs must
/// (unknown key, wrong type, out of range, not an allowed value).
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = config_def(name).ok_or_else(|| ConfigError::new(name, "unknown configuration"))?;
    parse_value(def, value).map(|_| ())
}

fn as_i32(key: &str, n: i64) -> Result<i32, ConfigError> {
    i32::try_from(n).map_err(|_| ConfigError::new(key, format!("{n} does not fit an int")))
}

impl LogConfig {
    /// A copy with `overrides` applied; every key is validated, unknown keys are errors.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogConfig, ConfigError> {
        let mut c = self.clone();
        for (key, value) in overrides {
            let def =
                config_def(key).ok_or_else(|| ConfigError::new(key, "unknown configuration"))?;
            c.set(def, parse_value(def, value)?)?;
        }
        Ok(c)
    }

    fn set(&mut self, def: &ConfigDef, value: Parsed) -> Result<(), ConfigError> {
        let key = def.name;
        let mismatch = || ConfigError::new(key, "value does not match the key's type");
        match value {
            Parsed::Long(n) => match key {
                "segment.bytes" => self.segment_bytes = as_i32(key, n)?,
                "segment.ms" => self.segment_ms = n,
                "segment.jitter.ms" => self.segment_jitter_ms = n,
                "segment.index.bytes" => self.segment_index_bytes = as_i32(key, n)?,
                "retention.ms" => self.retention_ms = n,
                "retention.bytes" => self.retention_bytes = n,
                "index.interval.bytes" => self.index_interval_bytes = as_i32(key, n)?,
                "flush.messages" => self.flush_messages = n,
                "flush.ms" => self.flush_ms = n,
                "file.delete.delay.ms" => self.file_delete_delay_ms = n,
                "max.message.bytes" => self.max_message_bytes = as_i32(key, n)?,
                "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms = n,
                "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms = n,
                "message.timestamp.difference.max.ms" => {
                    self.message_timestamp_difference_max_ms = n
                }
                "delete.retention.ms" => self.delete_retention_ms = n,
                "min.compaction.lag.ms" => self.min_compaction_lag_ms = n,
                "max.compaction.lag.ms" => self.max_compaction_lag_ms = n,
                "compression.gzip.level" => self.compression_gzip_level = as_i32(key, n)?,
                "compression.lz4.level" => self.compression_lz4_level = as_i32(key, n)?,
                "compression.zstd.level" => self.compression_zstd_level = as_i32(key, n)?,
                "min.insync.replicas" => self.min_insync_replicas = as_i32(key, n)?,
                "local.retention.ms" => self.local_retention_ms = n,
                "local.retention.bytes" => self.local_retention_bytes = n,
                _ => return Err(mismatch()),
            },
            Parsed::Bool(b) => match key {
                "preallocate" => self.preallocate = b,
                "unclean.leader.election.enable" => self.unclean_leader_election_enable = b,
                "remote.storage.enable" => self.remote_storage_enable = b,
                "remote.log.copy.disable" => self.remote_log_copy_disable = b,
                "remote.log.delete.on.disable" => self.remote_log_delete_on_disable = b,
                _ => return Err(mismatch()),
            },
            Parsed::Double(d) => match key {
                "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio = d,
                _ => return Err(mismatch()),
            },
            Parsed::Str(s) => match key {
                "message.timestamp.type" => {
                    self.message_timestamp_type = if s == "LogAppendTime" {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    }
                }
                "compression.type" => {
                    self.compression_type = match s.as_str() {
                        "producer" => CompressionType::Producer,
                        "uncompressed" | "none" => CompressionType::Uncompressed,
                        "gzip" => CompressionType::Gzip,
                        "snappy" => CompressionType::Snappy,
                        "lz4" => CompressionType::Lz4,
                        "zstd" => CompressionType::Zstd,
                        _ => return Err(ConfigError::new(key, format!("unknown codec '{s}'"))),
                    }
                }
                _ => return Err(mismatch()),
            },
            Parsed::List(items) => match key {
                "cleanup.policy" => {
                    self.cleanup_policy = CleanupPolicy {
                        delete: items.iter().any(|i| i == "delete"),
                        compact: items.iter().any(|i| i == "compact"),
                    }
                }
                "leader.replication.throttled.replicas" => {
                    self.leader_replication_throttled_replicas = items.join(",")
                }
                "follower.replication.throttled.replicas" => {
                    self.follower_replication_throttled_replicas = items.join(",")
                }
                _ => return Err(mismatch()),
            },
        }
        Ok(())
    }

    /// The current value of a key in Kafka's string form (`None` for unknown keys).
    pub fn value_of(&self, name: &str) -> Option<String> {
        let s = match name {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "segment.jitter.ms" => self.segment_jitter_ms.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "cleanup.policy" => self.cleanup_policy.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "file.delete.delay.ms" => self.file_delete_delay_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => self.message_timestamp_type.name().to_string(),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms.to_string(),
            "message.timestamp.difference.max.ms" => {
                self.message_timestamp_difference_max_ms.to_string()
            }
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms.to_string(),
            "min.cleanable.dirty.ratio" => render_double(self.min_cleanable_dirty_ratio),
            "compression.type" => self.compression_type.name().to_string(),
            "compression.gzip.level" => self.compression_gzip_level.to_string(),
            "compression.lz4.level" => self.compression_lz4_level.to_string(),
            "compression.zstd.level" => self.compression_zstd_level.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "preallocate" => self.preallocate.to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            "local.retention.ms" => self.local_retention_ms.to_string(),
            "local.retention.bytes" => self.local_retention_bytes.to_string(),
            "remote.storage.enable" => self.remote_storage_enable.to_string(),
            "remote.log.copy.disable" => self.remote_log_copy_disable.to_string(),
            "remote.log.delete.on.disable" => self.remote_log_delete_on_disable.to_string(),
            "leader.replication.throttled.replicas" => {
                self.leader_replication_throttled_replicas.clone()
            }
            "follower.replication.throttled.replicas" => {
                self.follower_replication_throttled_replicas.clone()
            }
            _ => return None,
        };
        Some(s)
    }

    /// Every key with its current value, in [`TOPIC_CONFIGS`] order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        TOPIC_CONFIGS
            .iter()
            .filter_map(|d| self.value_of(d.name).map(|v| (d.name, v)))
            .collect()
    }

    /// The effective bound on how far in the past a CreateTime timestamp may be.
    pub fn effective_timestamp_before_max_ms(&self) -> i64 {
        self.message_timestamp_before_max_ms
            .min(self.message_timestamp_difference_max_ms)
    }

    /// The effective bound on how far in the future a CreateTime timestamp may be.
    pub fn effective_timestamp_after_max_ms(&self) -> i64 {
        self.message_timestamp_after_max_ms
            .min(self.message_timestamp_difference_max_ms)
    }
}

/// Renders a double as Java's `Double.toString` does for the values configs use.
fn render_double(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{d:.1}")
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_table() {
        let c = LogConfig::default();
        for def in TOPIC_CONFIGS {
            assert_eq!(
                c.value_of(def.name).as_deref(),
                Some(def.default),
                "{}",
                def.name
            );
            validate_topic_config(def.name, def.default).unwrap();
            let again = c.with_overrides([(def.name, def.default)]).unwrap();
            assert_eq!(again, c, "{}", def.name);
        }
        assert_eq!(c.entries().len(), TOPIC_CONFIGS.len());
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in TOPIC_CONFIGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn synonyms_are_kafkas() {
        let syn = |n: &str| config_def(n).unwrap().broker_synonym;
        assert_eq!(syn("retention.ms"), Some("log.retention.ms"));
        assert_eq!(syn("segment.bytes"), Some("log.segment.bytes"));
        assert_eq!(syn("segment.ms"), Some("log.roll.ms"));
        assert_eq!(syn("flush.messages"), Some("log.flush.interval.messages"));
        assert_eq!(syn("flush.ms"), Some("log.flush.interval.ms"));
        assert_eq!(syn("cleanup.policy"), Some("log.cleanup.policy"));
        assert_eq!(syn("max.message.bytes"), Some("message.max.bytes"));
        assert_eq!(
            syn("index.interval.bytes"),
            Some("log.index.interval.bytes")
        );
        assert_eq!(syn("segment.index.bytes"), Some("log.index.size.max.bytes"));
        assert_eq!(
            syn("file.delete.delay.ms"),
            Some("log.segment.delete.delay.ms")
        );
        assert_eq!(
            syn("delete.retention.ms"),
            Some("log.cleaner.delete.retention.ms")
        );
        assert_eq!(
            syn("min.cleanable.dirty.ratio"),
            Some("log.cleaner.min.cleanable.ratio")
        );
        assert_eq!(
            syn("message.timestamp.type"),
            Some("log.message.timestamp.type")
        );
        assert_eq!(syn("preallocate"), Some("log.preallocate"));
        assert_eq!(syn("segment.jitter.ms"), Some("log.roll.jitter.ms"));
        assert_eq!(syn("compression.type"), Some("compression.type"));
        assert_eq!(syn("min.insync.replicas"), Some("min.insync.replicas"));
        assert_eq!(syn("remote.storage.enable"), None);
    }

    #[test]
    fn overrides_apply_and_render() {
        let c = LogConfig::default()
            .with_overrides([
                ("retention.ms", "-1"),
                ("cleanup.policy", "compact, delete"),
                ("message.timestamp.type", "LogAppendTime"),
                ("min.cleanable.dirty.ratio", "1"),
                ("compression.type", "none"),
                ("segment.bytes", "14"),
                ("preallocate", "TRUE"),
            ])
            .unwrap();
        assert_eq!(c.retention_ms, -1);
        assert_eq!(
            c.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
        assert_eq!(c.value_of("cleanup.policy").unwrap(), "compact,delete");
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.value_of("min.cleanable.dirty.ratio").unwrap(), "1.0");
        assert_eq!(c.value_of("compression.type").unwrap(), "uncompressed");
        assert_eq!(c.segment_bytes, 14);
        assert!(c.preallocate);
        assert_eq!(c.value_of("no.such.key"), None);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        let bad = [
            ("segment.bytes", "13"),
            ("segment.bytes", "abc"),
            ("segment.bytes", "3000000000"),
            ("retention.ms", "-2"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("cleanup.policy", "delete,shred"),
            ("message.timestamp.type", "createtime"),
            ("compression.type", "brotli"),
            ("compression.gzip.level", "0"),
            ("compression.zstd.level", "23"),
            ("flush.messages", "0"),
            ("segment.ms", "0"),
            ("min.insync.replicas", "0"),
            ("preallocate", "yes"),
            ("local.retention.ms", "-3"),
            ("no.such.key", "1"),
        ];
        for (k, v) in bad {
            let err = LogConfig::default().with_overrides([(k, v)]).unwrap_err();
            assert_eq!(err.key, k, "{k}={v}");
            assert!(!err.reason.is_empty());
            assert!(validate_topic_config(k, v).is_err(), "{k}={v}");
        }
        assert!(validate_topic_config("compression.gzip.level", "-1").is_ok());
        assert!(validate_topic_config("compression.gzip.level", "9").is_ok());
        assert!(validate_topic_config("cleanup.policy", "").is_ok());
        assert!(validate_topic_config("retention.bytes", "-5").is_ok());
    }

    #[test]
    fn timestamp_bounds_honour_the_deprecated_key() {
        let c = LogConfig::default()
            .with_overrides([("message.timestamp.difference.max.ms", "1000")])
            .unwrap();
        assert_eq!(c.effective_timestamp_after_max_ms(), 1000);
        assert_eq!(c.effective_timestamp_before_max_ms(), 1000);
        assert_eq!(
            LogConfig::default().effective_timestamp_after_max_ms(),
            3_600_000
        );
    }
}
