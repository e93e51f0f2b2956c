//! Broker configuration: Kafka's `server.properties` keys, names and defaults.
//!
//! Values come from a properties file and `--override key=value` flags (later wins). Every
//! value is validated up front; a bad one stops start-up with an error naming the key and the
//! reason, as Kafka's `KafkaConfig` does. Unknown keys are logged and ignored, as in Kafka.

use fjord_storage::LogConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

/// A configuration problem, naming the key.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("Invalid value {value:?} for configuration {key}: {reason}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// The offending value.
    pub value: String,
    /// Why it is wrong.
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// The type of a config value, for validation and DescribeConfigs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// 16-bit integer.
    Short,
    /// true/false.
    Bool,
    /// Free text.
    Str,
    /// Comma-separated list.
    List,
    /// Floating point.
    Double,
}

impl Kind {
    /// Kafka's DescribeConfigs `config_type` id.
    pub fn describe_type(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Str => 2,
            Kind::Int => 3,
            Kind::Short => 4,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
        }
    }

    fn check(self, key: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        let ok = match self {
            Kind::Int => v.parse::<i32>().is_ok(),
            Kind::Long => v.parse::<i64>().is_ok(),
            Kind::Short => v.parse::<i16>().is_ok(),
            Kind::Bool => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
            Kind::Double => v.parse::<f64>().is_ok(),
            Kind::Str | Kind::List => true,
        };
        if ok {
            Ok(())
        } else {
            let ty = match self {
                Kind::Int => "INT",
                Kind::Long => "LONG",
                Kind::Short => "SHORT",
                Kind::Bool => "BOOLEAN",
                Kind::Double => "DOUBLE",
                Kind::Str | Kind::List => "STRING",
            };
            Err(ConfigError::new(
                key,
                value,
                format!("Expected value to be a {ty}"),
            ))
        }
    }
}

/// One broker config key.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    /// Kafka's key.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default as Kafka renders it; `None` when Kafka's default is null.
    pub default: Option<&'static str>,
    /// Topic-level config this broker key is the default of, if any.
    pub topic_synonym: Option<&'static str>,
    /// Whether IncrementalAlterConfigs may change it at runtime (cluster-wide or per broker).
    pub dynamic: bool,
    /// One-line documentation.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    topic_synonym: Option<&'static str>,
    dynamic: bool,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        kind,
        default,
        topic_synonym,
        dynamic,
        doc,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every broker key Fjord understands.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def("node.id", Kind::Int, Some("1"), None, false, "The node id of this broker."),
    def("broker.id", Kind::Int, None, None, false, "Alias of node.id."),
    def("listeners", Kind::List, Some("PLAINTEXT://127.0.0.1:9092"), None, false, "Listener URIs to bind, e.g. PLAINTEXT://127.0.0.1:9092."),
    def("advertised.listeners", Kind::List, None, None, false, "Listener URIs given to clients; defaults to listeners."),
    def("listener.security.protocol.map", Kind::List, Some("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"), None, false, "Listener name to security protocol."),
    def("inter.broker.listener.name", Kind::Str, None, None, false, "Listener used between brokers."),
    def("controller.listener.names", Kind::List, None, None, false, "Listeners used by the controller quorum."),
    def("process.roles", Kind::List, Some("broker,controller"), None, false, "Roles of this node (combined mode by default)."),
    def("controller.quorum.voters", Kind::List, None, None, false, "Static controller quorum (single-node: this node)."),
    def("controller.quorum.bootstrap.servers", Kind::List, None, None, false, "Controller quorum bootstrap servers."),
    def("log.dirs", Kind::List, None, None, false, "Directories holding partition logs."),
    def("log.dir", Kind::Str, Some("./fjord-data"), None, false, "Directory holding partition logs (if log.dirs is unset)."),
    def("num.partitions", Kind::Int, Some("1"), None, false, "Default number of partitions of new topics."),
    def("default.replication.factor", Kind::Short, Some("1"), None, false, "Default replication factor of new topics."),
    def("auto.create.topics.enable", Kind::Bool, Some("true"), None, false, "Create topics on Metadata requests for unknown topics."),
    def("delete.topic.enable", Kind::Bool, Some("true"), None, false, "Allow DeleteTopics."),
    def("socket.request.max.bytes", Kind::Int, Some("104857600"), None, false, "Largest request frame accepted."),
    def("num.network.threads", Kind::Int, Some("3"), None, false, "Accepted for compatibility; Fjord uses an async runtime."),
    def("num.io.threads", Kind::Int, Some("8"), None, false, "Accepted for compatibility; Fjord uses an async runtime."),
    def("num.recovery.threads.per.data.dir", Kind::Int, Some("2"), None, false, "Accepted for compatibility."),
    def("log.retention.check.interval.ms", Kind::Long, Some("300000"), None, false, "How often retention is enforced."),
    def("log.flush.scheduler.interval.ms", Kind::Long, Some(LONG_MAX), None, false, "How often logs are checked for flush.ms."),
    def("log.flush.offset.checkpoint.interval.ms", Kind::Int, Some("60000"), None, false, "How often recovery points are checkpointed."),
    def("log.flush.start.offset.checkpoint.interval.ms", Kind::Int, Some("60000"), None, false, "How often log start offsets are checkpointed."),
    def("offsets.topic.num.partitions", Kind::Int, Some("50"), None, false, "Partitions of __consumer_offsets."),
    def("offsets.topic.replication.factor", Kind::Short, Some("3"), None, false, "Replication factor of __consumer_offsets (capped at the broker count)."),
    def("offsets.topic.segment.bytes", Kind::Int, Some("104857600"), None, false, "Segment size of __consumer_offsets."),
    def("offsets.retention.minutes", Kind::Int, Some("10080"), None, false, "How long committed offsets of empty groups are kept."),
    def("offsets.retention.check.interval.ms", Kind::Long, Some("600000"), None, false, "How often expired offsets are removed."),
    def("offset.metadata.max.bytes", Kind::Int, Some("4096"), None, false, "Largest commit metadata string."),
    def("offsets.commit.timeout.ms", Kind::Int, Some("5000"), None, false, "Accepted for compatibility."),
    def("group.initial.rebalance.delay.ms", Kind::Int, Some("3000"), None, false, "Wait for more members before the first rebalance of an empty group."),
    def("group.min.session.timeout.ms", Kind::Int, Some("6000"), None, false, "Smallest session timeout a member may ask for."),
    def("group.max.session.timeout.ms", Kind::Int, Some("1800000"), None, false, "Largest session timeout a member may ask for."),
    def("group.max.size", Kind::Int, Some("2147483647"), None, false, "Most members in one group."),
    def("transaction.state.log.replication.factor", Kind::Short, Some("3"), None, false, "Accepted for compatibility (transactions come later)."),
    def("transaction.state.log.min.isr", Kind::Int, Some("2"), None, false, "Accepted for compatibility."),
    def("log.retention.hours", Kind::Int, Some("168"), Some("retention.ms"), true, "Retention in hours (lowest priority of the three)."),
    def("log.retention.minutes", Kind::Int, None, Some("retention.ms"), true, "Retention in minutes."),
    def("log.retention.ms", Kind::Long, None, Some("retention.ms"), true, "Retention in milliseconds; -1 keeps data forever."),
    def("log.retention.bytes", Kind::Long, Some("-1"), Some("retention.bytes"), true, "Largest size of a partition before old segments are deleted."),
    def("log.segment.bytes", Kind::Int, Some("1073741824"), Some("segment.bytes"), true, "Largest size of a segment file."),
    def("log.roll.hours", Kind::Int, Some("168"), Some("segment.ms"), true, "Roll a segment after this many hours."),
    def("log.roll.ms", Kind::Long, None, Some("segment.ms"), true, "Roll a segment after this many milliseconds."),
    def("log.roll.jitter.hours", Kind::Int, Some("0"), Some("segment.jitter.ms"), true, "Random jitter on segment rolling, hours."),
    def("log.roll.jitter.ms", Kind::Long, None, Some("segment.jitter.ms"), true, "Random jitter on segment rolling, ms."),
    def("log.flush.interval.messages", Kind::Long, Some(LONG_MAX), Some("flush.messages"), true, "Fsync after this many messages (1 = every append)."),
    def("log.flush.interval.ms", Kind::Long, None, Some("flush.ms"), true, "Fsync after this many milliseconds."),
    def("log.cleanup.policy", Kind::List, Some("delete"), Some("cleanup.policy"), true, "delete, compact, or both."),
    def("log.index.interval.bytes", Kind::Int, Some("4096"), Some("index.interval.bytes"), true, "Bytes between offset index entries."),
    def("log.index.size.max.bytes", Kind::Int, Some("10485760"), Some("segment.index.bytes"), true, "Largest offset index per segment."),
    def("log.segment.delete.delay.ms", Kind::Long, Some("60000"), Some("file.delete.delay.ms"), true, "Delay before deleted segment files are removed."),
    def("log.message.timestamp.type", Kind::Str, Some("CreateTime"), Some("message.timestamp.type"), true, "CreateTime or LogAppendTime."),
    def("log.message.timestamp.before.max.ms", Kind::Long, Some(LONG_MAX), Some("message.timestamp.before.max.ms"), true, "Largest allowed age of a record timestamp."),
    def("log.message.timestamp.after.max.ms", Kind::Long, Some("3600000"), Some("message.timestamp.after.max.ms"), true, "Largest allowed future skew of a record timestamp."),
    def("log.cleaner.enable", Kind::Bool, Some("true"), None, false, "Run the log cleaner for compacted topics."),
    def("log.cleaner.threads", Kind::Int, Some("1"), None, false, "Accepted for compatibility."),
    def("log.cleaner.backoff.ms", Kind::Long, Some("15000"), None, false, "Sleep between cleaner passes."),
    def("log.cleaner.delete.retention.ms", Kind::Long, Some("86400000"), Some("delete.retention.ms"), true, "How long tombstones are kept on compacted topics."),
    def("log.cleaner.min.compaction.lag.ms", Kind::Long, Some("0"), Some("min.compaction.lag.ms"), true, "Minimum age before a record may be compacted."),
    def("log.cleaner.max.compaction.lag.ms", Kind::Long, Some(LONG_MAX), Some("max.compaction.lag.ms"), true, "Maximum time a record stays uncompacted."),
    def("log.cleaner.min.cleanable.ratio", Kind::Double, Some("0.5"), Some("min.cleanable.dirty.ratio"), true, "Dirty ratio that triggers compaction."),
    def("log.preallocate", Kind::Bool, Some("false"), Some("preallocate"), true, "Preallocate segment files."),
    def("message.max.bytes", Kind::Int, Some("1048588"), Some("max.message.bytes"), true, "Largest record batch accepted."),
    def("compression.type", Kind::Str, Some("producer"), Some("compression.type"), true, "Topic compression; producer keeps the producer's codec."),
    def("min.insync.replicas", Kind::Int, Some("1"), Some("min.insync.replicas"), true, "Replicas that must acknowledge an acks=all write."),
    def("unclean.leader.election.enable", Kind::Bool, Some("false"), Some("unclean.leader.election.enable"), true, "Allow out-of-sync replicas to become leader."),
];

/// Looks up a broker key.
pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// A parsed listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`, `CONTROLLER`, …).
    pub name: String,
    /// Host to bind or advertise; empty means all interfaces.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Listener {
    /// `host:port` for binding.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        format!("{host}:{}", self.port)
    }
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| {
            ConfigError::new(
                key,
                value,
                format!("listener {item:?} is not of the form NAME://host:port"),
            )
        })?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
            ConfigError::new(key, value, format!("listener {item:?} has no port"))
        })?;
        let port: u16 = port.parse().map_err(|_| {
            ConfigError::new(key, value, format!("listener {item:?} has an invalid port"))
        })?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(ConfigError::new(
                key,
                value,
                format!("listener name {name} is used twice"),
            ));
        }
        out.push(Listener {
            name: name.to_string(),
            host,
            port,
        });
    }
    if out.is_empty() {
        return Err(ConfigError::new(key, value, "no listener given"));
    }
    Ok(out)
}

/// The validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every key given (file then overrides), as strings.
    pub given: BTreeMap<String, String>,
    /// `node.id`.
    pub node_id: i32,
    /// Client listeners to bind (PLAINTEXT only).
    pub listeners: Vec<Listener>,
    /// What Metadata tells clients.
    pub advertised_listeners: Vec<Listener>,
    /// Log directories.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`.
    pub log_flush_scheduler_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i32,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: u64,
    /// Topic defaults derived from the `log.*` keys.
    pub log_defaults: LogConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        // The empty configuration is valid by construction.
        match BrokerConfig::from_map(BTreeMap::new()) {
            Ok(c) => c,
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }
}

pub use fjord_common::parse_properties;

impl BrokerConfig {
    /// Builds the configuration from a properties file's contents and `key=value` overrides.
    pub fn from_sources(file: Option<&str>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut map = file.map(parse_properties).unwrap_or_default();
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                ConfigError::new(o, "", "overrides must be of the form key=value")
            })?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_map(map)
    }

    /// Builds the configuration from key/value pairs.
    pub fn from_map(given: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        for (key, value) in &given {
            match broker_config_def(key) {
                Some(d) => d.kind.check(key, value)?,
                None if fjord_storage::config::config_def(key).is_some() => {
                    tracing::warn!(key, "topic-level config given at broker level is ignored; use its log.* synonym")
                }
                None => tracing::warn!(key, "unknown configuration is ignored"),
            }
        }
        let get = |key: &str| -> Option<String> {
            given
                .get(key)
                .cloned()
                .or_else(|| broker_config_def(key).and_then(|d| d.default.map(String::from)))
        };
        let num = |key: &str| -> Result<i64, ConfigError> {
            let v = get(key).unwrap_or_default();
            v.trim()
                .parse::<i64>()
                .map_err(|_| ConfigError::new(key, &v, "Expected a number"))
        };
        let flag = |key: &str| {
            get(key)
                .map(|v| v.trim().eq_ignore_ascii_case("true"))
                .unwrap_or(false)
        };
        let positive = |key: &str, min: i64| -> Result<i64, ConfigError> {
            let n = num(key)?;
            if n < min {
                return Err(ConfigError::new(
                    key,
                    &n.to_string(),
                    format!("Value must be at least {min}"),
                ));
            }
            Ok(n)
        };

        let node_id = match given.get("node.id").or(given.get("broker.id")) {
            Some(v) => v
                .trim()
                .parse::<i32>()
                .map_err(|_| ConfigError::new("node.id", v, "Expected value to be an INT"))?,
            None => 1,
        };
        if node_id < 0 {
            return Err(ConfigError::new(
                "node.id",
                &node_id.to_string(),
                "must be non-negative",
            ));
        }
        let protocol_map: BTreeMap<String, String> = get("listener.security.protocol.map")
            .unwrap_or_default()
            .split(',')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let controller_names: Vec<String> = get("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let all_listeners = parse_listeners("listeners", &get("listeners").unwrap_or_default())?;
        let mut listeners = Vec::new();
        for l in all_listeners {
            if controller_names.contains(&l.name) {
                tracing::info!(listener = %l.name, "controller listener not bound: this node runs a single-voter quorum in process");
                continue;
            }
            let protocol = protocol_map
                .get(&l.name)
                .map(String::as_str)
                .unwrap_or(l.name.as_str());
            if protocol != "PLAINTEXT" {
                return Err(ConfigError::new(
                    "listeners",
                    &format!("{}://{}:{}", l.name, l.host, l.port),
                    format!("security protocol {protocol} is not supported yet; use PLAINTEXT"),
                ));
            }
            listeners.push(l);
        }
        if listeners.is_empty() {
            return Err(ConfigError::new(
                "listeners",
                &get("listeners").unwrap_or_default(),
                "no PLAINTEXT client listener",
            ));
        }
        let advertised_listeners = match given.get("advertised.listeners") {
            Some(v) => {
                let adv = parse_listeners("advertised.listeners", v)?;
                listeners
                    .iter()
                    .map(|l| {
                        adv.iter()
                            .find(|a| a.name == l.name)
                            .cloned()
                            .ok_or_else(|| {
                                ConfigError::new(
                                    "advertised.listeners",
                                    v,
                                    format!("no advertised listener for {}", l.name),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => listeners
                .iter()
                .map(|l| {
                    let host = if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                        "localhost".to_string()
                    } else {
                        l.host.clone()
                    };
                    Listener { host, ..l.clone() }
                })
                .collect(),
        };
        let log_dirs: Vec<PathBuf> = given
            .get("log.dirs")
            .cloned()
            .or_else(|| get("log.dir"))
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(ConfigError::new(
                "log.dirs",
                "",
                "at least one log directory is required",
            ));
        }

        let log_defaults = log_defaults_from(&given)?;

        let config = BrokerConfig {
            node_id,
            listeners,
            advertised_listeners,
            log_dirs,
            num_partitions: positive("num.partitions", 1)? as i32,
            default_replication_factor: positive("default.replication.factor", 1)? as i16,
            auto_create_topics_enable: flag("auto.create.topics.enable"),
            delete_topic_enable: flag("delete.topic.enable"),
            socket_request_max_bytes: positive("socket.request.max.bytes", 1)? as usize,
            log_retention_check_interval_ms: positive("log.retention.check.interval.ms", 1)? as u64,
            log_flush_scheduler_interval_ms: positive("log.flush.scheduler.interval.ms", 1)? as u64,
            log_flush_offset_checkpoint_interval_ms: positive(
                "log.flush.offset.checkpoint.interval.ms",
                1,
            )? as u64,
            offsets_topic_num_partitions: positive("offsets.topic.num.partitions", 1)? as i32,
            offsets_topic_replication_factor: positive("offsets.topic.replication.factor", 1)?
                as i16,
            offsets_topic_segment_bytes: positive("offsets.topic.segment.bytes", 1)? as i32,
            offsets_retention_minutes: positive("offsets.retention.minutes", 1)? as i32,
            offsets_retention_check_interval_ms: positive(
                "offsets.retention.check.interval.ms",
                1,
            )?,
            offset_metadata_max_bytes: positive("offset.metadata.max.bytes", 0)? as i32,
            group_initial_rebalance_delay_ms: positive("group.initial.rebalance.delay.ms", 0)?
                as i32,
            group_min_session_timeout_ms: positive("group.min.session.timeout.ms", 0)? as i32,
            group_max_session_timeout_ms: positive("group.max.session.timeout.ms", 0)? as i32,
            group_max_size: positive("group.max.size", 1)? as i32,
            log_cleaner_enable: flag("log.cleaner.enable"),
            log_cleaner_backoff_ms: positive("log.cleaner.backoff.ms", 1)? as u64,
            log_defaults,
            given,
        };
        Ok(config)
    }

    /// The effective string value of a broker key (given, else default).
    pub fn value_of(&self, key: &str) -> Option<String> {
        self.given
            .get(key)
            .cloned()
            .or_else(|| broker_config_def(key).and_then(|d| d.default.map(String::from)))
    }
}

/// Turns `log.*` style broker keys into topic-level overrides of the storage defaults.
/// `keys` may be static or dynamic broker configs; `retention.ms` and `segment.ms` follow
/// Kafka's precedence (ms over minutes over hours).
pub fn log_defaults_from(keys: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
    let mut overrides: Vec<(String, String, String)> = Vec::new(); // (topic key, value, broker key)
    let ms = |key: &str, factor: i64| -> Result<Option<i64>, ConfigError> {
        match keys.get(key) {
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| Some(if n < 0 { n } else { n.saturating_mul(factor) }))
                .map_err(|_| ConfigError::new(key, v, "Expected a number")),
            None => Ok(None),
        }
    };
    let retention = [
        ("log.retention.ms", 1),
        ("log.retention.minutes", 60_000),
        ("log.retention.hours", 3_600_000),
    ];
    for (key, factor) in retention {
        if let Some(v) = ms(key, factor)? {
            overrides.push(("retention.ms".into(), v.to_string(), key.into()));
            break;
        }
    }
    for (key, factor) in [("log.roll.ms", 1), ("log.roll.hours", 3_600_000)] {
        if let Some(v) = ms(key, factor)? {
            overrides.push(("segment.ms".into(), v.to_string(), key.into()));
            break;
        }
    }
    for (key, factor) in [
        ("log.roll.jitter.ms", 1),
        ("log.roll.jitter.hours", 3_600_000),
    ] {
        if let Some(v) = ms(key, factor)? {
            overrides.push(("segment.jitter.ms".into(), v.to_string(), key.into()));
            break;
        }
    }
    let special = [
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
        "log.roll.ms",
        "log.roll.hours",
        "log.roll.jitter.ms",
        "log.roll.jitter.hours",
    ];
    for d in BROKER_CONFIGS {
        let Some(topic_key) = d.topic_synonym else {
            continue;
        };
        if special.contains(&d.name) {
            continue;
        }
        if let Some(v) = keys.get(d.name) {
            overrides.push((topic_key.into(), v.clone(), d.name.into()));
        }
    }
    LogConfig::default()
        .with_overrides(overrides.iter().map(|(k, v, _)| (k.as_str(), v.as_str())))
        .map_err(|e| {
            let broker_key = overrides
                .iter()
                .find(|(k, _, _)| *k == e.key)
                .map(|(_, _, b)| b.clone())
                .unwrap_or(e.key.clone());
            let value = keys.get(&broker_key).cloned().unwrap_or_default();
            ConfigError::new(&broker_key, &value, e.reason)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_like_java() {
        let p = parse_properties(
            "# comment\n! also\nnode.id=3\nlisteners : PLAINTEXT://127.0.0.1:9093\nlog.dirs /tmp/a,\\\n  /tmp/b\nkey\\=with\\=eq=v\\tx\n",
        );
        assert_eq!(p["node.id"], "3");
        assert_eq!(p["listeners"], "PLAINTEXT://127.0.0.1:9093");
        assert_eq!(p["log.dirs"], "/tmp/a,/tmp/b");
        assert_eq!(p["key=with=eq"], "v\tx");
    }

    #[test]
    fn defaults_are_a_single_local_node() {
        let c = BrokerConfig::default();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners[0].bind_address(), "127.0.0.1:9092");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./fjord-data")]);
        assert!(c.auto_create_topics_enable);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = BrokerConfig::from_sources(None, &["num.partitions=abc".into()]).unwrap_err();
        assert_eq!(err.key, "num.partitions");
        let err =
            BrokerConfig::from_sources(None, &["listeners=PLAINTEXT://nope".into()]).unwrap_err();
        assert_eq!(err.key, "listeners");
        let err = BrokerConfig::from_sources(None, &["log.segment.bytes=1".into()]).unwrap_err();
        assert_eq!(err.key, "log.segment.bytes");
        let err = BrokerConfig::from_sources(None, &["listeners=SSL://127.0.0.1:9093".into()])
            .unwrap_err();
        assert!(err.reason.contains("not supported"));
    }

    #[test]
    fn kafka_sample_config_is_accepted() {
        let text = "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@localhost:9093\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\nadvertised.listeners=PLAINTEXT://localhost:9092\ncontroller.listener.names=CONTROLLER\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\nlog.dirs=/tmp/kraft-combined-logs\nnum.partitions=1\nlog.retention.hours=168\nlog.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n";
        let c = BrokerConfig::from_sources(Some(text), &[]).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].bind_address(), "0.0.0.0:9092");
        assert_eq!(c.advertised_listeners[0].host, "localhost");
    }

    #[test]
    fn retention_precedence_follows_kafka() {
        let mut keys = BTreeMap::new();
        keys.insert("log.retention.hours".to_string(), "1".to_string());
        keys.insert("log.retention.minutes".to_string(), "2".to_string());
        let c = log_defaults_from(&keys).unwrap();
        assert_eq!(c.retention_ms, 120_000);
        keys.insert("log.retention.ms".to_string(), "-1".to_string());
        assert_eq!(log_defaults_from(&keys).unwrap().retention_ms, -1);
    }
}
