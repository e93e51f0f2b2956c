//! Configuration with Kafka's key names.
//!
//! [`ClientConfig`] is a map of Kafka configuration keys (`linger.ms`, `group.id`, …) checked
//! against a table of the keys each client understands: an unknown key, a key of another kind
//! of client, or a value that does not parse is an error naming the key. Typed builders
//! ([`ProducerConfig`], [`ConsumerConfig`], [`AdminConfig`]) sit on top and write the same keys.
//! Defaults are Kafka's Java client defaults.

use crate::error::{ClientError, Result};
use fjord_protocol::compression::Compression;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Which client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// [`crate::Producer`].
    Producer,
    /// [`crate::Consumer`].
    Consumer,
    /// [`crate::Admin`].
    Admin,
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientKind::Producer => "producer",
            ClientKind::Consumer => "consumer",
            ClientKind::Admin => "admin",
        })
    }
}

const P: u8 = 1;
const C: u8 = 2;
const A: u8 = 4;
const ALL: u8 = P | C | A;

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A 32-bit integer with an inclusive lower bound.
    Int(i64),
    /// A 64-bit integer with an inclusive lower bound.
    Long(i64),
    Bool,
    Str,
    List,
    Enum(&'static [&'static str]),
}

struct KeyDef {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    applies: u8,
}

const fn def(name: &'static str, kind: Kind, default: &'static str, applies: u8) -> KeyDef {
    KeyDef {
        name,
        kind,
        default,
        applies,
    }
}

const COMPRESSION_NAMES: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

/// Every key this client understands, with Kafka's defaults.
const KEYS: &[KeyDef] = &[
    // Common to every client.
    def("bootstrap.servers", Kind::List, "127.0.0.1:9092", ALL),
    def("client.id", Kind::Str, "", ALL),
    def("request.timeout.ms", Kind::Int(1), "30000", ALL),
    def("metadata.max.age.ms", Kind::Long(0), "300000", ALL),
    def("reconnect.backoff.ms", Kind::Long(0), "50", ALL),
    def("reconnect.backoff.max.ms", Kind::Long(0), "1000", ALL),
    def("retry.backoff.ms", Kind::Long(0), "100", ALL),
    def("retry.backoff.max.ms", Kind::Long(0), "1000", ALL),
    def(
        "socket.connection.setup.timeout.ms",
        Kind::Long(1),
        "10000",
        ALL,
    ),
    def("connections.max.idle.ms", Kind::Long(-1), "540000", ALL),
    def(
        "security.protocol",
        Kind::Enum(&["PLAINTEXT"]),
        "PLAINTEXT",
        ALL,
    ),
    def(
        "client.dns.lookup",
        Kind::Enum(&[
            "use_all_dns_ips",
            "resolve_canonical_bootstrap_servers_only",
        ]),
        "use_all_dns_ips",
        ALL,
    ),
    def("default.api.timeout.ms", Kind::Int(0), "60000", C | A),
    // Producer.
    def("acks", Kind::Enum(&["all", "-1", "0", "1"]), "all", P),
    def("linger.ms", Kind::Long(0), "5", P),
    def("batch.size", Kind::Int(0), "16384", P),
    def("buffer.memory", Kind::Long(0), "33554432", P),
    def("max.block.ms", Kind::Long(0), "60000", P),
    def("compression.type", Kind::Enum(COMPRESSION_NAMES), "none", P),
    def("retries", Kind::Int(0), "2147483647", P),
    def("delivery.timeout.ms", Kind::Int(0), "120000", P),
    def("enable.idempotence", Kind::Bool, "true", P),
    def(
        "max.in.flight.requests.per.connection",
        Kind::Int(1),
        "5",
        P,
    ),
    def("max.request.size", Kind::Int(1), "1048576", P),
    def("partitioner.ignore.keys", Kind::Bool, "false", P),
    def(
        "partitioner.class",
        Kind::Enum(&[
            "",
            "murmur2",
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
        ]),
        "",
        P,
    ),
    // Consumer.
    def("group.id", Kind::Str, "", C),
    def("group.instance.id", Kind::Str, "", C),
    def("session.timeout.ms", Kind::Int(1), "45000", C),
    def("heartbeat.interval.ms", Kind::Int(1), "3000", C),
    def("max.poll.interval.ms", Kind::Int(1), "300000", C),
    def(
        "auto.offset.reset",
        Kind::Enum(&["latest", "earliest", "none"]),
        "latest",
        C,
    ),
    def("enable.auto.commit", Kind::Bool, "true", C),
    def("auto.commit.interval.ms", Kind::Int(0), "5000", C),
    def("fetch.min.bytes", Kind::Int(0), "1", C),
    def("fetch.max.bytes", Kind::Int(0), "52428800", C),
    def("fetch.max.wait.ms", Kind::Int(0), "500", C),
    def("max.partition.fetch.bytes", Kind::Int(0), "1048576", C),
    def("max.poll.records", Kind::Int(1), "500", C),
    def(
        "isolation.level",
        Kind::Enum(&["read_uncommitted", "read_committed"]),
        "read_uncommitted",
        C,
    ),
    def(
        "partition.assignment.strategy",
        Kind::List,
        "range,cooperative-sticky",
        C,
    ),
    def("allow.auto.create.topics", Kind::Bool, "true", C),
    def("check.crcs", Kind::Bool, "true", C),
    def("client.rack", Kind::Str, "", C),
    def("exclude.internal.topics", Kind::Bool, "true", C),
];

fn key_def(key: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|d| d.name == key)
}

fn applies(d: &KeyDef, kind: ClientKind) -> bool {
    let bit = match kind {
        ClientKind::Producer => P,
        ClientKind::Consumer => C,
        ClientKind::Admin => A,
    };
    d.applies & bit != 0
}

fn check_value(d: &KeyDef, value: &str) -> Result<()> {
    let bad = |reason: String| Err(ClientError::invalid_config(d.name, value, reason));
    match d.kind {
        Kind::Int(min) => match value.trim().parse::<i32>() {
            Ok(v) if (v as i64) >= min => Ok(()),
            Ok(_) => bad(format!("must be at least {min}")),
            Err(e) => bad(format!("not a 32-bit integer ({e})")),
        },
        Kind::Long(min) => match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => bad(format!("must be at least {min}")),
            Err(e) => bad(format!("not an integer ({e})")),
        },
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("must be true or false".into()),
        },
        Kind::Str | Kind::List => Ok(()),
        Kind::Enum(allowed) => {
            if allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
                Ok(())
            } else {
                bad(format!("must be one of {}", allowed.join(", ")))
            }
        }
    }
}

/// A map of Kafka configuration keys for one kind of client, validated on every insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    kind: ClientKind,
    values: BTreeMap<String, String>,
}

impl ClientConfig {
    /// An empty configuration (every key at its default) for `kind`.
    pub fn new(kind: ClientKind) -> Self {
        ClientConfig {
            kind,
            values: BTreeMap::new(),
        }
    }

    /// Builds a configuration from key/value pairs, rejecting the first bad key or value.
    pub fn from_pairs<I, K, V>(kind: ClientKind, pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut config = ClientConfig::new(kind);
        for (k, v) in pairs {
            config.set(k.as_ref(), v)?;
        }
        Ok(config)
    }

    /// The kind of client this configuration is for.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// Sets `key` to `value`. Fails, naming the key, when the key is unknown, belongs to
    /// another kind of client, or the value does not parse.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<&mut Self> {
        let value = value.into();
        if key == "transactional.id" {
            return Err(ClientError::invalid_config(
                key,
                &value,
                "transactions are not supported by fjord-client yet",
            ));
        }
        let d = key_def(key).ok_or_else(|| ClientError::UnknownConfig(key.to_string()))?;
        if !applies(d, self.kind) {
            return Err(ClientError::invalid_config(
                key,
                &value,
                format!("not a {} configuration", self.kind),
            ));
        }
        check_value(d, &value)?;
        self.values.insert(key.to_string(), value);
        Ok(self)
    }

    /// Typed setters call this with values that are valid by construction.
    fn put(&mut self, key: &'static str, value: String) {
        debug_assert!(key_def(key).is_some_and(|d| applies(d, self.kind)));
        self.values.insert(key.to_string(), value);
    }

    /// The value of `key` as set, or its default. `None` for keys unknown to this client.
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.values.get(key) {
            return Some(v.as_str());
        }
        key_def(key)
            .filter(|d| applies(d, self.kind))
            .map(|d| d.default)
    }

    /// True when `key` was set explicitly (not left at its default).
    pub fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The explicitly set entries.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn raw(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// `key` as an integer (its default when unset; 0 for keys unknown to this client).
    pub fn get_i64(&self, key: &str) -> i64 {
        self.raw(key).trim().parse().unwrap_or(0)
    }

    /// `key` as a 32-bit integer.
    pub fn get_i32(&self, key: &str) -> i32 {
        self.raw(key).trim().parse().unwrap_or(0)
    }

    /// `key` as a non-negative size.
    pub fn get_usize(&self, key: &str) -> usize {
        usize::try_from(self.get_i64(key)).unwrap_or(0)
    }

    /// `key` as milliseconds.
    pub fn get_duration_ms(&self, key: &str) -> Duration {
        Duration::from_millis(u64::try_from(self.get_i64(key)).unwrap_or(0))
    }

    /// `key` as a boolean.
    pub fn get_bool(&self, key: &str) -> bool {
        self.raw(key).trim().eq_ignore_ascii_case("true")
    }

    /// `key` as a string (empty when unset and without a default).
    pub fn get_str(&self, key: &str) -> &str {
        self.raw(key).trim()
    }

    /// `key` as a comma-separated list, entries trimmed, empty entries dropped.
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.raw(key)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn net(&self) -> Result<NetSettings> {
        let bootstrap = self.get_list("bootstrap.servers");
        if bootstrap.is_empty() {
            return Err(ClientError::invalid_config(
                "bootstrap.servers",
                self.get_str("bootstrap.servers"),
                "at least one host:port is needed",
            ));
        }
        for b in &bootstrap {
            if b.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ClientError::invalid_config(
                    "bootstrap.servers",
                    b,
                    "expected host:port",
                ));
            }
        }
        let client_id = match self.get_str("client.id") {
            "" => format!("fjord-{}", self.kind),
            id => id.to_string(),
        };
        Ok(NetSettings {
            bootstrap,
            client_id,
            request_timeout: self.get_duration_ms("request.timeout.ms"),
            metadata_max_age: self.get_duration_ms("metadata.max.age.ms"),
            reconnect_backoff: self.get_duration_ms("reconnect.backoff.ms"),
            reconnect_backoff_max: self.get_duration_ms("reconnect.backoff.max.ms"),
            retry_backoff: self.get_duration_ms("retry.backoff.ms"),
            retry_backoff_max: self.get_duration_ms("retry.backoff.max.ms"),
            connect_timeout: self.get_duration_ms("socket.connection.setup.timeout.ms"),
            allow_auto_topic_creation: match self.kind {
                ClientKind::Producer => true,
                ClientKind::Consumer => self.get_bool("allow.auto.create.topics"),
                ClientKind::Admin => false,
            },
        })
    }
}

/// Connection-level settings shared by every client.
#[derive(Debug, Clone)]
pub(crate) struct NetSettings {
    pub(crate) bootstrap: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) request_timeout: Duration,
    pub(crate) metadata_max_age: Duration,
    pub(crate) reconnect_backoff: Duration,
    pub(crate) reconnect_backoff_max: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) allow_auto_topic_creation: bool,
}

impl NetSettings {
    /// Exponential back-off for the `attempt`-th retry (0-based), capped, with ±20 % jitter.
    pub(crate) fn retry_delay(&self, attempt: u32) -> Duration {
        backoff(self.retry_backoff, self.retry_backoff_max, attempt)
    }
}

/// `base * 2^attempt` capped at `max`, with ±20 % jitter, as Kafka's `ExponentialBackoff`.
pub(crate) fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let base_ms = base.as_millis() as f64;
    let max_ms = (max.as_millis() as f64).max(base_ms);
    let raw = (base_ms * 2f64.powi(attempt.min(30) as i32)).min(max_ms);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    Duration::from_millis((raw * jitter) as u64)
}

/// `acks`: how many replicas must have the record before the producer counts it written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: fire and forget; offsets are unknown (`-1`).
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica has it.
    All,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }

    fn parse(s: &str) -> Acks {
        match s.trim() {
            "0" => Acks::None,
            "1" => Acks::Leader,
            _ => Acks::All,
        }
    }
}

/// `auto.offset.reset`: where a consumer starts without a committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (only new records).
    Latest,
    /// Fail with [`ClientError::NoOffsetForPartition`].
    None,
}

impl OffsetReset {
    fn name(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "none",
        }
    }
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Every record, including those of open or aborted transactions.
    ReadUncommitted,
    /// Only committed transactional records, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value.
    pub fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// A partition assignor of the classic consumer protocol (`partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// `range`: per topic, consecutive ranges of partitions to members in order (eager).
    Range,
    /// `roundrobin`: all partitions dealt to members in turn (eager).
    RoundRobin,
    /// `cooperative-sticky`: balanced, sticky, incremental (two-phase) rebalancing.
    CooperativeSticky,
}

impl AssignorKind {
    /// The protocol name sent in JoinGroup (the same as the Java client's).
    pub fn protocol_name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Parses a protocol name or a Java class name.
    pub fn parse(name: &str) -> Option<Self> {
        let short = name.rsplit('.').next().unwrap_or(name);
        match short.trim().to_ascii_lowercase().as_str() {
            "range" | "rangeassignor" => Some(AssignorKind::Range),
            "roundrobin" | "roundrobinassignor" => Some(AssignorKind::RoundRobin),
            "cooperative-sticky" | "cooperativestickyassignor" => {
                Some(AssignorKind::CooperativeSticky)
            }
            _ => None,
        }
    }

    /// Whether the assignor supports incremental cooperative rebalancing.
    pub fn is_cooperative(self) -> bool {
        self == AssignorKind::CooperativeSticky
    }
}

macro_rules! common_setters {
    () => {
        /// Sets any key by name; fails naming the key when it is unknown or the value is bad.
        pub fn set(mut self, key: &str, value: impl Into<String>) -> Result<Self> {
            self.config.set(key, value)?;
            Ok(self)
        }

        /// `client.id`.
        pub fn client_id(mut self, id: impl Into<String>) -> Self {
            self.config.put("client.id", id.into());
            self
        }

        /// `request.timeout.ms`.
        pub fn request_timeout_ms(mut self, ms: u32) -> Self {
            self.config
                .put("request.timeout.ms", ms.min(i32::MAX as u32).to_string());
            self
        }

        /// `metadata.max.age.ms`.
        pub fn metadata_max_age_ms(mut self, ms: u64) -> Self {
            self.config.put("metadata.max.age.ms", ms.to_string());
            self
        }

        /// `retry.backoff.ms`.
        pub fn retry_backoff_ms(mut self, ms: u64) -> Self {
            self.config.put("retry.backoff.ms", ms.to_string());
            self
        }

        /// `reconnect.backoff.ms`.
        pub fn reconnect_backoff_ms(mut self, ms: u64) -> Self {
            self.config.put("reconnect.backoff.ms", ms.to_string());
            self
        }

        /// The underlying key/value configuration.
        pub fn client_config(&self) -> &ClientConfig {
            &self.config
        }
    };
}

/// Producer configuration with typed setters; see [`ClientConfig`] for the keys.
///
/// ```
/// use fjord_client::{Acks, Compression, ProducerConfig};
/// let config = ProducerConfig::new("127.0.0.1:9092")
///     .acks(Acks::All)
///     .compression(Compression::Zstd)
///     .linger_ms(5);
/// assert_eq!(config.client_config().get("compression.type"), Some("zstd"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    config: ClientConfig,
}

impl ProducerConfig {
    /// Defaults with `bootstrap.servers` set.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let mut config = ClientConfig::new(ClientKind::Producer);
        config.put("bootstrap.servers", bootstrap_servers.into());
        ProducerConfig { config }
    }

    /// From Kafka-style key/value pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Ok(ProducerConfig {
            config: ClientConfig::from_pairs(ClientKind::Producer, pairs)?,
        })
    }

    /// From a [`ClientConfig`] built for a producer.
    pub fn from_client_config(config: ClientConfig) -> Result<Self> {
        if config.kind() != ClientKind::Producer {
            return Err(ClientError::InvalidArgument(format!(
                "a {} configuration cannot configure a producer",
                config.kind()
            )));
        }
        Ok(ProducerConfig { config })
    }

    common_setters!();

    /// `acks`.
    pub fn acks(mut self, acks: Acks) -> Self {
        self.config.put("acks", acks.name().to_string());
        self
    }

    /// `compression.type`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config
            .put("compression.type", compression.name().to_string());
        self
    }

    /// `linger.ms`.
    pub fn linger_ms(mut self, ms: u64) -> Self {
        self.config.put("linger.ms", ms.to_string());
        self
    }

    /// `batch.size`.
    pub fn batch_size(mut self, bytes: u32) -> Self {
        self.config
            .put("batch.size", bytes.min(i32::MAX as u32).to_string());
        self
    }

    /// `buffer.memory`.
    pub fn buffer_memory(mut self, bytes: u64) -> Self {
        self.config.put("buffer.memory", bytes.to_string());
        self
    }

    /// `max.block.ms`.
    pub fn max_block_ms(mut self, ms: u64) -> Self {
        self.config.put("max.block.ms", ms.to_string());
        self
    }

    /// `delivery.timeout.ms`.
    pub fn delivery_timeout_ms(mut self, ms: u32) -> Self {
        self.config
            .put("delivery.timeout.ms", ms.min(i32::MAX as u32).to_string());
        self
    }

    /// `retries`.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config
            .put("retries", retries.min(i32::MAX as u32).to_string());
        self
    }

    /// `enable.idempotence`.
    pub fn enable_idempotence(mut self, yes: bool) -> Self {
        self.config.put("enable.idempotence", yes.to_string());
        self
    }

    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.config.put(
            "max.in.flight.requests.per.connection",
            n.clamp(1, i32::MAX as u32).to_string(),
        );
        self
    }

    /// `max.request.size`.
    pub fn max_request_size(mut self, bytes: u32) -> Self {
        self.config.put(
            "max.request.size",
            bytes.clamp(1, i32::MAX as u32).to_string(),
        );
        self
    }

    /// Resolves and cross-checks the settings (Java's rules for idempotence).
    pub(crate) fn resolve(&self) -> Result<ProducerSettings> {
        let c = &self.config;
        let acks = Acks::parse(c.get_str("acks"));
        let max_in_flight = c.get_usize("max.in.flight.requests.per.connection").max(1);
        let retries = c.get_i64("retries");
        let explicit = c.is_set("enable.idempotence");
        let mut idempotence = c.get_bool("enable.idempotence");
        if idempotence {
            let conflict = if acks != Acks::All {
                Some(("acks", c.get_str("acks").to_string(), "must be all"))
            } else if max_in_flight > 5 {
                Some((
                    "max.in.flight.requests.per.connection",
                    max_in_flight.to_string(),
                    "must be at most 5",
                ))
            } else if retries == 0 {
                Some(("retries", "0".to_string(), "must be greater than 0"))
            } else {
                None
            };
            if let Some((key, value, rule)) = conflict {
                if explicit {
                    return Err(ClientError::invalid_config(
                        key,
                        &value,
                        format!("{rule} when enable.idempotence=true"),
                    ));
                }
                // As the Java client: idempotence silently off when only defaulted.
                idempotence = false;
            }
        }
        let linger = c.get_duration_ms("linger.ms");
        let mut delivery_timeout = c.get_duration_ms("delivery.timeout.ms");
        let request_timeout = c.get_duration_ms("request.timeout.ms");
        if delivery_timeout < linger + request_timeout {
            if c.is_set("delivery.timeout.ms") {
                return Err(ClientError::invalid_config(
                    "delivery.timeout.ms",
                    c.get_str("delivery.timeout.ms"),
                    "must be at least linger.ms + request.timeout.ms",
                ));
            }
            delivery_timeout = linger + request_timeout;
        }
        Ok(ProducerSettings {
            net: c.net()?,
            acks,
            linger,
            batch_size: c.get_usize("batch.size"),
            buffer_memory: c.get_usize("buffer.memory"),
            max_block: c.get_duration_ms("max.block.ms"),
            compression: Compression::from_name(c.get_str("compression.type"))
                .unwrap_or(Compression::None),
            retries: u32::try_from(retries).unwrap_or(u32::MAX),
            delivery_timeout,
            idempotence,
            max_in_flight,
            max_request_size: c.get_usize("max.request.size"),
            ignore_keys: c.get_bool("partitioner.ignore.keys"),
        })
    }
}

/// Resolved producer settings.
#[derive(Debug, Clone)]
pub(crate) struct ProducerSettings {
    pub(crate) net: NetSettings,
    pub(crate) acks: Acks,
    pub(crate) linger: Duration,
    pub(crate) batch_size: usize,
    pub(crate) buffer_memory: usize,
    pub(crate) max_block: Duration,
    pub(crate) compression: Compression,
    pub(crate) retries: u32,
    pub(crate) delivery_timeout: Duration,
    pub(crate) idempotence: bool,
    pub(crate) max_in_flight: usize,
    pub(crate) max_request_size: usize,
    pub(crate) ignore_keys: bool,
}

/// Consumer configuration with typed setters; see [`ClientConfig`] for the keys.
///
/// ```
/// use fjord_client::{ConsumerConfig, OffsetReset};
/// let config = ConsumerConfig::new("127.0.0.1:9092")
///     .group_id("billing")
///     .auto_offset_reset(OffsetReset::Earliest);
/// assert_eq!(config.client_config().get("group.id"), Some("billing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    config: ClientConfig,
}

impl ConsumerConfig {
    /// Defaults with `bootstrap.servers` set.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let mut config = ClientConfig::new(ClientKind::Consumer);
        config.put("bootstrap.servers", bootstrap_servers.into());
        ConsumerConfig { config }
    }

    /// From Kafka-style key/value pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Ok(ConsumerConfig {
            config: ClientConfig::from_pairs(ClientKind::Consumer, pairs)?,
        })
    }

    /// From a [`ClientConfig`] built for a consumer.
    pub fn from_client_config(config: ClientConfig) -> Result<Self> {
        if config.kind() != ClientKind::Consumer {
            return Err(ClientError::InvalidArgument(format!(
                "a {} configuration cannot configure a consumer",
                config.kind()
            )));
        }
        Ok(ConsumerConfig { config })
    }

    common_setters!();

    /// `group.id`.
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.config.put("group.id", group.into());
        self
    }

    /// `group.instance.id` (static membership).
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.config.put("group.instance.id", id.into());
        self
    }

    /// `auto.offset.reset`.
    pub fn auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.config
            .put("auto.offset.reset", reset.name().to_string());
        self
    }

    /// `enable.auto.commit`.
    pub fn enable_auto_commit(mut self, yes: bool) -> Self {
        self.config.put("enable.auto.commit", yes.to_string());
        self
    }

    /// `auto.commit.interval.ms`.
    pub fn auto_commit_interval_ms(mut self, ms: u32) -> Self {
        self.config.put(
            "auto.commit.interval.ms",
            ms.min(i32::MAX as u32).to_string(),
        );
        self
    }

    /// `session.timeout.ms`.
    pub fn session_timeout_ms(mut self, ms: u32) -> Self {
        self.config.put(
            "session.timeout.ms",
            ms.clamp(1, i32::MAX as u32).to_string(),
        );
        self
    }

    /// `heartbeat.interval.ms`.
    pub fn heartbeat_interval_ms(mut self, ms: u32) -> Self {
        self.config.put(
            "heartbeat.interval.ms",
            ms.clamp(1, i32::MAX as u32).to_string(),
        );
        self
    }

    /// `max.poll.interval.ms` (also the rebalance timeout sent in JoinGroup).
    pub fn max_poll_interval_ms(mut self, ms: u32) -> Self {
        self.config.put(
            "max.poll.interval.ms",
            ms.clamp(1, i32::MAX as u32).to_string(),
        );
        self
    }

    /// `fetch.min.bytes`.
    pub fn fetch_min_bytes(mut self, bytes: u32) -> Self {
        self.config
            .put("fetch.min.bytes", bytes.min(i32::MAX as u32).to_string());
        self
    }

    /// `fetch.max.wait.ms`.
    pub fn fetch_max_wait_ms(mut self, ms: u32) -> Self {
        self.config
            .put("fetch.max.wait.ms", ms.min(i32::MAX as u32).to_string());
        self
    }

    /// `fetch.max.bytes`.
    pub fn fetch_max_bytes(mut self, bytes: u32) -> Self {
        self.config
            .put("fetch.max.bytes", bytes.min(i32::MAX as u32).to_string());
        self
    }

    /// `max.partition.fetch.bytes`.
    pub fn max_partition_fetch_bytes(mut self, bytes: u32) -> Self {
        self.config.put(
            "max.partition.fetch.bytes",
            bytes.min(i32::MAX as u32).to_string(),
        );
        self
    }

    /// `max.poll.records`.
    pub fn max_poll_records(mut self, n: u32) -> Self {
        self.config
            .put("max.poll.records", n.clamp(1, i32::MAX as u32).to_string());
        self
    }

    /// `isolation.level`.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        let name = match level {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        };
        self.config.put("isolation.level", name.to_string());
        self
    }

    /// `partition.assignment.strategy`, in order of preference.
    pub fn assignment_strategy(mut self, assignors: &[AssignorKind]) -> Self {
        let names: Vec<&str> = assignors.iter().map(|a| a.protocol_name()).collect();
        self.config
            .put("partition.assignment.strategy", names.join(","));
        self
    }

    pub(crate) fn resolve(&self) -> Result<ConsumerSettings> {
        let c = &self.config;
        let mut assignors = Vec::new();
        for name in c.get_list("partition.assignment.strategy") {
            let kind = AssignorKind::parse(&name).ok_or_else(|| {
                ClientError::invalid_config(
                    "partition.assignment.strategy",
                    &name,
                    "supported: range, roundrobin, cooperative-sticky",
                )
            })?;
            if !assignors.contains(&kind) {
                assignors.push(kind);
            }
        }
        if assignors.is_empty() {
            return Err(ClientError::invalid_config(
                "partition.assignment.strategy",
                "",
                "at least one assignor is needed",
            ));
        }
        let session_timeout = c.get_duration_ms("session.timeout.ms");
        let heartbeat_interval = c.get_duration_ms("heartbeat.interval.ms");
        if heartbeat_interval >= session_timeout {
            return Err(ClientError::invalid_config(
                "heartbeat.interval.ms",
                c.get_str("heartbeat.interval.ms"),
                "must be lower than session.timeout.ms",
            ));
        }
        let group_id = match c.get_str("group.id") {
            "" => None,
            g => Some(g.to_string()),
        };
        let auto_commit = c.get_bool("enable.auto.commit") && group_id.is_some();
        Ok(ConsumerSettings {
            net: c.net()?,
            group_id,
            group_instance_id: match c.get_str("group.instance.id") {
                "" => None,
                g => Some(g.to_string()),
            },
            session_timeout,
            heartbeat_interval,
            max_poll_interval: c.get_duration_ms("max.poll.interval.ms"),
            offset_reset: match c.get_str("auto.offset.reset") {
                "earliest" => OffsetReset::Earliest,
                "none" => OffsetReset::None,
                _ => OffsetReset::Latest,
            },
            auto_commit,
            auto_commit_interval: c.get_duration_ms("auto.commit.interval.ms"),
            fetch_min_bytes: c.get_i32("fetch.min.bytes"),
            fetch_max_bytes: c.get_i32("fetch.max.bytes"),
            fetch_max_wait: c.get_duration_ms("fetch.max.wait.ms"),
            max_partition_fetch_bytes: c.get_i32("max.partition.fetch.bytes"),
            max_poll_records: c.get_usize("max.poll.records").max(1),
            isolation: if c.get_str("isolation.level") == "read_committed" {
                IsolationLevel::ReadCommitted
            } else {
                IsolationLevel::ReadUncommitted
            },
            assignors,
            check_crcs: c.get_bool("check.crcs"),
            default_api_timeout: c.get_duration_ms("default.api.timeout.ms"),
            client_rack: match c.get_str("client.rack") {
                "" => None,
                r => Some(r.to_string()),
            },
        })
    }
}

/// Resolved consumer settings.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSettings {
    pub(crate) net: NetSettings,
    pub(crate) group_id: Option<String>,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) session_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) offset_reset: OffsetReset,
    pub(crate) auto_commit: bool,
    pub(crate) auto_commit_interval: Duration,
    pub(crate) fetch_min_bytes: i32,
    pub(crate) fetch_max_bytes: i32,
    pub(crate) fetch_max_wait: Duration,
    pub(crate) max_partition_fetch_bytes: i32,
    pub(crate) max_poll_records: usize,
    pub(crate) isolation: IsolationLevel,
    pub(crate) assignors: Vec<AssignorKind>,
    pub(crate) check_crcs: bool,
    pub(crate) default_api_timeout: Duration,
    pub(crate) client_rack: Option<String>,
}

/// Admin client configuration; see [`ClientConfig`] for the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    config: ClientConfig,
}

impl AdminConfig {
    /// Defaults with `bootstrap.servers` set.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let mut config = ClientConfig::new(ClientKind::Admin);
        config.put("bootstrap.servers", bootstrap_servers.into());
        AdminConfig { config }
    }

    /// From Kafka-style key/value pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        Ok(AdminConfig {
            config: ClientConfig::from_pairs(ClientKind::Admin, pairs)?,
        })
    }

    common_setters!();

    /// `default.api.timeout.ms`: the deadline of each admin operation.
    pub fn default_api_timeout_ms(mut self, ms: u32) -> Self {
        self.config.put(
            "default.api.timeout.ms",
            ms.min(i32::MAX as u32).to_string(),
        );
        self
    }

    pub(crate) fn resolve(&self) -> Result<(NetSettings, Duration)> {
        Ok((
            self.config.net()?,
            self.config.get_duration_ms("default.api.timeout.ms"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = ProducerConfig::new("h:1")
            .set("lingerr.ms", "5")
            .unwrap_err();
        assert!(matches!(&err, ClientError::UnknownConfig(k) if k == "lingerr.ms"));
        assert!(err.to_string().contains("lingerr.ms"));
        let err = ProducerConfig::new("h:1").set("group.id", "g").unwrap_err();
        assert!(err.to_string().contains("group.id"), "{err}");
        assert!(
            err.to_string().contains("not a producer configuration"),
            "{err}"
        );
        let err = ConsumerConfig::from_pairs([("fetch.min.bytes", "many")]).unwrap_err();
        assert!(err.to_string().contains("fetch.min.bytes"), "{err}");
        let err = ProducerConfig::new("h:1").set("acks", "2").unwrap_err();
        assert!(err.to_string().contains("acks"), "{err}");
        let err = ProducerConfig::new("h:1")
            .set("batch.size", "-1")
            .unwrap_err();
        assert!(err.to_string().contains("at least 0"), "{err}");
        assert!(ProducerConfig::new("h:1")
            .set("transactional.id", "t")
            .is_err());
    }

    #[test]
    fn typed_builders_write_kafka_keys_and_defaults_apply() {
        let c = ProducerConfig::new("a:1,b:2")
            .acks(Acks::Leader)
            .compression(Compression::Lz4)
            .linger_ms(7)
            .batch_size(1000);
        let cc = c.client_config();
        assert_eq!(cc.get("acks"), Some("1"));
        assert_eq!(cc.get("compression.type"), Some("lz4"));
        assert_eq!(cc.get_i64("linger.ms"), 7);
        assert_eq!(cc.get_i64("buffer.memory"), 33_554_432);
        assert_eq!(cc.get_i64("delivery.timeout.ms"), 120_000);
        assert_eq!(cc.get_list("bootstrap.servers"), vec!["a:1", "b:2"]);
        let defaults = ClientConfig::new(ClientKind::Producer);
        assert_eq!(
            defaults.get_list("bootstrap.servers"),
            vec!["127.0.0.1:9092"]
        );
        assert_eq!(defaults.get_i64("linger.ms"), 5);
        assert_eq!(defaults.get_i64("batch.size"), 16384);
        assert_eq!(defaults.get("group.id"), None);
        let consumer = ClientConfig::new(ClientKind::Consumer);
        assert_eq!(consumer.get_i64("fetch.max.wait.ms"), 500);
        assert_eq!(consumer.get_i64("max.poll.records"), 500);
        assert_eq!(
            consumer.get_list("partition.assignment.strategy"),
            vec!["range", "cooperative-sticky"]
        );
    }

    #[test]
    fn idempotence_rules_follow_java() {
        // Defaulted idempotence switches off quietly when acks is not all.
        let s = ProducerConfig::new("h:1")
            .acks(Acks::Leader)
            .resolve()
            .unwrap();
        assert!(!s.idempotence);
        // Explicit idempotence with acks=1 is a configuration error naming acks.
        let err = ProducerConfig::new("h:1")
            .acks(Acks::Leader)
            .enable_idempotence(true)
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("acks"), "{err}");
        let err = ProducerConfig::new("h:1")
            .enable_idempotence(true)
            .max_in_flight(6)
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("max.in.flight"), "{err}");
        let s = ProducerConfig::new("h:1").resolve().unwrap();
        assert!(s.idempotence);
        assert_eq!(s.acks, Acks::All);
        assert!(ProducerConfig::new("h:1")
            .delivery_timeout_ms(10)
            .resolve()
            .is_err());
        assert!(ProducerConfig::new("nohostport").resolve().is_err());
    }

    #[test]
    fn consumer_settings_validate_assignors_and_heartbeat() {
        let s = ConsumerConfig::new("h:1").resolve().unwrap();
        assert_eq!(
            s.assignors,
            vec![AssignorKind::Range, AssignorKind::CooperativeSticky]
        );
        assert!(!s.auto_commit, "no group, no auto-commit");
        let err = ConsumerConfig::new("h:1")
            .set("partition.assignment.strategy", "sticky-ish")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("partition.assignment.strategy"));
        let s = ConsumerConfig::new("h:1")
            .set(
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            )
            .unwrap()
            .group_id("g")
            .resolve()
            .unwrap();
        assert_eq!(s.assignors, vec![AssignorKind::RoundRobin]);
        assert!(s.auto_commit);
        assert!(ConsumerConfig::new("h:1")
            .heartbeat_interval_ms(50_000)
            .resolve()
            .is_err());
    }

    #[test]
    fn backoff_grows_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        assert!(backoff(base, max, 0) <= Duration::from_millis(120));
        assert!(backoff(base, max, 0) >= Duration::from_millis(80));
        assert!(backoff(base, max, 10) <= Duration::from_millis(1200));
        assert!(backoff(base, max, 10) >= Duration::from_millis(800));
    }
}
