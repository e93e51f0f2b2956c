//! The client's view of the cluster: connections per broker and the metadata cache.
//!
//! One [`Cluster`] is shared by everything inside one producer, consumer or admin client. It
//! bootstraps from `bootstrap.servers`, keeps one connection per broker node (plus a separate
//! one to a group coordinator, as the Java client does, so that long-polling fetches never
//! delay heartbeats), reconnects with exponential back-off (`reconnect.backoff.ms` up to
//! `reconnect.backoff.max.ms`) and caches metadata for the topics its owner cares about,
//! refreshed when older than `metadata.max.age.ms` or when a caller saw a stale-metadata error.

use crate::config::{backoff, NetSettings};
use crate::conn::{sb, Connection};
use crate::error::{ClientError, Result};
use fjord_common::ErrorCode;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::Request;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which connection a request travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ConnKey {
    /// The broker with this node id.
    Node(i32),
    /// A group coordinator on this node (its own connection).
    Coordinator(i32),
    /// The i-th bootstrap address (before node ids are known).
    Bootstrap(usize),
}

/// A broker in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
}

impl BrokerInfo {
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub(crate) partition: i32,
    pub(crate) error: i16,
    /// `-1` when there is no leader.
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) offline: Vec<i32>,
}

/// One topic in the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    pub(crate) error: i16,
    pub(crate) topic_id: String,
    pub(crate) is_internal: bool,
    /// Sorted by partition index; index `i` is partition `i` when the topic is complete.
    pub(crate) partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    pub(crate) fn partition(&self, p: i32) -> Option<&PartitionInfo> {
        match self.partitions.get(p as usize) {
            Some(info) if info.partition == p => Some(info),
            _ => self.partitions.iter().find(|i| i.partition == p),
        }
    }
}

/// A metadata snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub(crate) cluster_id: Option<String>,
    pub(crate) controller_id: i32,
    pub(crate) brokers: HashMap<i32, BrokerInfo>,
    pub(crate) topics: HashMap<String, TopicInfo>,
    /// When it was fetched; `None` for the empty initial snapshot.
    pub(crate) fetched_at: Option<Instant>,
    /// Increases with every update.
    pub(crate) version: u64,
}

impl Metadata {
    fn empty() -> Self {
        Metadata {
            cluster_id: None,
            controller_id: -1,
            brokers: HashMap::new(),
            topics: HashMap::new(),
            fetched_at: None,
            version: 0,
        }
    }

    /// The leader of a partition, when known.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let p = self.topics.get(topic)?.partition(partition)?;
        (p.leader >= 0).then_some((p.leader, p.leader_epoch))
    }

    /// Turns a Metadata response into a snapshot.
    pub(crate) fn from_response(response: MetadataResponse, version: u64) -> Self {
        let brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                let id = *b.node_id;
                (
                    id,
                    BrokerInfo {
                        id,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let topics = response
            .topics
            .into_iter()
            .filter_map(|t| {
                let name = t.name?.0.to_string();
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        error: p.error_code,
                        leader: *p.leader_id,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.into_iter().map(|b| *b).collect(),
                        isr: p.isr_nodes.into_iter().map(|b| *b).collect(),
                        offline: p.offline_replicas.into_iter().map(|b| *b).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some((
                    name.clone(),
                    TopicInfo {
                        name,
                        error: t.error_code,
                        topic_id: t.topic_id.to_string(),
                        is_internal: t.is_internal,
                        partitions,
                    },
                ))
            })
            .collect();
        Metadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: *response.controller_id,
            brokers,
            topics,
            fetched_at: Some(Instant::now()),
            version,
        }
    }
}

#[derive(Default)]
struct Slot {
    conn: Option<Connection>,
    connecting: Arc<tokio::sync::Mutex<()>>,
    failures: u32,
    last_failure: Option<Instant>,
}

/// Connections and metadata of one client.
pub(crate) struct Cluster {
    pub(crate) settings: NetSettings,
    slots: Mutex<HashMap<ConnKey, Slot>>,
    coordinator_addrs: Mutex<HashMap<i32, String>>,
    metadata: RwLock<Arc<Metadata>>,
    refresh_lock: tokio::sync::Mutex<()>,
    interest: Mutex<BTreeSet<String>>,
    version: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.settings.bootstrap)
            .finish()
    }
}

impl Cluster {
    pub(crate) fn new(settings: NetSettings) -> Arc<Self> {
        Arc::new(Cluster {
            settings,
            slots: Mutex::new(HashMap::new()),
            coordinator_addrs: Mutex::new(HashMap::new()),
            metadata: RwLock::new(Arc::new(Metadata::empty())),
            refresh_lock: tokio::sync::Mutex::new(()),
            interest: Mutex::new(BTreeSet::new()),
            version: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Closes every connection; later calls fail with [`ClientError::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let slots = std::mem::take(&mut *self.slots.lock());
        for (_, slot) in slots {
            if let Some(c) = slot.conn {
                c.close("client closed");
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The current metadata snapshot.
    pub(crate) fn metadata(&self) -> Arc<Metadata> {
        self.metadata.read().clone()
    }

    /// Adds topics to the set whose metadata is kept. Returns true if any was new.
    pub(crate) fn add_interest<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut set = self.interest.lock();
        let mut added = false;
        for t in topics {
            if !set.contains(t) {
                set.insert(t.to_string());
                added = true;
            }
        }
        added
    }

    /// Replaces the set of topics whose metadata is kept.
    pub(crate) fn set_interest(&self, topics: impl IntoIterator<Item = String>) {
        *self.interest.lock() = topics.into_iter().collect();
    }

    /// Records a group coordinator's address (from FindCoordinator).
    pub(crate) fn set_coordinator_addr(&self, node_id: i32, addr: String) {
        self.coordinator_addrs.lock().insert(node_id, addr);
    }

    fn addr_of(&self, key: ConnKey) -> Result<String> {
        match key {
            ConnKey::Bootstrap(i) => {
                self.settings.bootstrap.get(i).cloned().ok_or_else(|| {
                    ClientError::InvalidArgument(format!("no bootstrap server #{i}"))
                })
            }
            ConnKey::Node(id) => self
                .metadata()
                .brokers
                .get(&id)
                .map(BrokerInfo::addr)
                .ok_or_else(|| {
                    ClientError::network(format!("node {id}"), "broker not in metadata")
                }),
            ConnKey::Coordinator(id) => {
                if let Some(addr) = self.coordinator_addrs.lock().get(&id) {
                    return Ok(addr.clone());
                }
                self.addr_of(ConnKey::Node(id))
            }
        }
    }

    /// The open connection for `key`, if there is one (never connects).
    pub(crate) fn live_connection(&self, key: ConnKey) -> Option<Connection> {
        self.live(key)
    }

    fn live(&self, key: ConnKey) -> Option<Connection> {
        let slots = self.slots.lock();
        slots
            .get(&key)
            .and_then(|s| s.conn.as_ref())
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// The connection for `key`, connecting (after any back-off) when needed.
    pub(crate) async fn connection(&self, key: ConnKey) -> Result<Connection> {
        if self.is_closed() {
            return Err(ClientError::Closed);
        }
        if let Some(c) = self.live(key) {
            return Ok(c);
        }
        let gate = self.slots.lock().entry(key).or_default().connecting.clone();
        let _guard = gate.lock().await;
        if let Some(c) = self.live(key) {
            return Ok(c);
        }
        let wait = {
            let slots = self.slots.lock();
            match slots.get(&key) {
                Some(Slot {
                    failures,
                    last_failure: Some(at),
                    ..
                }) if *failures > 0 => {
                    let delay = backoff(
                        self.settings.reconnect_backoff,
                        self.settings.reconnect_backoff_max,
                        failures - 1,
                    );
                    delay.checked_sub(at.elapsed())
                }
                _ => None,
            }
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let addr = self.addr_of(key)?;
        let node_id = match key {
            ConnKey::Node(id) | ConnKey::Coordinator(id) => id,
            ConnKey::Bootstrap(i) => -1 - i as i32,
        };
        let result = Connection::connect(
            &addr,
            node_id,
            &self.settings.client_id,
            self.settings.connect_timeout,
            self.settings.request_timeout,
        )
        .await;
        let mut slots = self.slots.lock();
        let slot = slots.entry(key).or_default();
        match result {
            Ok(conn) => {
                if self.is_closed() {
                    conn.close("client closed");
                    return Err(ClientError::Closed);
                }
                slot.failures = 0;
                slot.last_failure = None;
                slot.conn = Some(conn.clone());
                tracing::debug!(%addr, ?key, "connected");
                Ok(conn)
            }
            Err(e) => {
                slot.failures = slot.failures.saturating_add(1);
                slot.last_failure = Some(Instant::now());
                slot.conn = None;
                tracing::debug!(%addr, ?key, error = %e, "connect failed");
                Err(e)
            }
        }
    }

    /// Any usable connection: an open one, else a known broker, else a bootstrap server.
    pub(crate) async fn any_connection(&self) -> Result<Connection> {
        if self.is_closed() {
            return Err(ClientError::Closed);
        }
        {
            let slots = self.slots.lock();
            let open = slots
                .iter()
                .filter(|(k, _)| matches!(k, ConnKey::Node(_) | ConnKey::Bootstrap(_)))
                .filter_map(|(_, s)| s.conn.as_ref())
                .find(|c| !c.is_closed());
            if let Some(c) = open {
                return Ok(c.clone());
            }
        }
        let mut candidates: Vec<ConnKey> = self
            .metadata()
            .brokers
            .keys()
            .map(|id| ConnKey::Node(*id))
            .collect();
        if !candidates.is_empty() {
            let start = rand::random_range(0..candidates.len());
            candidates.rotate_left(start);
        }
        candidates.extend((0..self.settings.bootstrap.len()).map(ConnKey::Bootstrap));
        let mut last = None;
        for key in candidates {
            match self.connection(key).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::network("bootstrap", "no broker to connect to")))
    }

    /// Sends `req` (built for the negotiated version) on the connection for `key`.
    pub(crate) async fn send<R, F>(&self, key: ConnKey, build: F) -> Result<R::Response>
    where
        R: Request,
        F: FnOnce(i16) -> Result<R>,
    {
        let conn = self.connection(key).await?;
        Self::send_on(&conn, build, self.settings.request_timeout).await
    }

    /// Like [`Cluster::send`] on any broker.
    pub(crate) async fn send_any<R, F>(&self, build: F) -> Result<R::Response>
    where
        R: Request,
        F: FnOnce(i16) -> Result<R>,
    {
        let conn = self.any_connection().await?;
        Self::send_on(&conn, build, self.settings.request_timeout).await
    }

    pub(crate) async fn send_on<R, F>(
        conn: &Connection,
        build: F,
        timeout: Duration,
    ) -> Result<R::Response>
    where
        R: Request,
        F: FnOnce(i16) -> Result<R>,
    {
        let key = crate::conn::api_key_of::<R>()?;
        let version = conn.version(key)?;
        let req = build(version)?;
        conn.request_at(&req, version, timeout).await
    }

    /// Fetches metadata for `topics` (`None`: every topic) without touching the cache.
    pub(crate) async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> Result<Metadata> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut mt = MetadataRequestTopic::default();
                    mt.name = Some(TopicName(sb(t)));
                    mt
                })
                .collect()
        });
        // Metadata v0..3 cannot say "no auto-creation" (the field does not exist).
        req.allow_auto_topic_creation = allow_auto_create || version < 4;
        let response = conn
            .request_at(&req, version, self.settings.request_timeout)
            .await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(response.error_code, None, "Metadata"));
        }
        let v = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(Metadata::from_response(response, v))
    }

    /// Refreshes the cache for the topics of interest. Concurrent callers share one request:
    /// a caller that waited behind another refresh takes its result.
    pub(crate) async fn refresh(&self) -> Result<Arc<Metadata>> {
        let requested = Instant::now();
        let _guard = self.refresh_lock.lock().await;
        let current = self.metadata();
        if current.fetched_at.is_some_and(|t| t >= requested) {
            return Ok(current);
        }
        let topics: Vec<String> = self.interest.lock().iter().cloned().collect();
        let mut fresh = self
            .fetch_metadata(Some(&topics), self.settings.allow_auto_topic_creation)
            .await?;
        if fresh.brokers.is_empty() {
            // Never forget how to reach the cluster.
            fresh.brokers = current.brokers.clone();
        }
        let fresh = Arc::new(fresh);
        *self.metadata.write() = fresh.clone();
        self.drop_stale_connections(&fresh);
        Ok(fresh)
    }

    /// Closes connections to brokers that left or moved.
    fn drop_stale_connections(&self, md: &Metadata) {
        let mut slots = self.slots.lock();
        for (key, slot) in slots.iter_mut() {
            if let (ConnKey::Node(id), Some(conn)) = (key, slot.conn.as_ref()) {
                let moved = md.brokers.get(id).is_none_or(|b| b.addr() != conn.addr());
                if moved && !md.brokers.is_empty() {
                    conn.close("broker left the cluster or moved");
                    slot.conn = None;
                }
            }
        }
    }

    /// Metadata of `topic`, refreshing (with back-off) until it has partitions with leaders or
    /// `deadline` passes. Errors that will not go away (invalid topic, authorization) return
    /// at once.
    pub(crate) async fn topic_metadata(&self, topic: &str, deadline: Instant) -> Result<TopicInfo> {
        let added = self.add_interest([topic]);
        let mut attempt = 0u32;
        let mut md = self.metadata();
        if added && !md.topics.contains_key(topic) {
            md = self.refresh().await?;
        }
        loop {
            let last_error = match md.topics.get(topic) {
                Some(t) if t.error == 0 && !t.partitions.is_empty() => return Ok(t.clone()),
                Some(t) if t.error != 0 => {
                    let code = ErrorCode::from_code(t.error);
                    if !code.is_retriable() {
                        return Err(ClientError::kafka(t.error, None, format!("topic {topic}")));
                    }
                    ClientError::kafka(t.error, None, format!("topic {topic}"))
                }
                _ => ClientError::kafka(
                    ErrorCode::UnknownTopicOrPartition.code(),
                    None,
                    format!("topic {topic}"),
                ),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout(format!(
                    "metadata for topic {topic} not available: {last_error}"
                )));
            }
            let delay = self.settings.retry_delay(attempt).min(deadline - now);
            attempt += 1;
            tokio::time::sleep(delay).await;
            md = match self.refresh().await {
                Ok(md) => md,
                Err(e) if e.is_retriable() => self.metadata(),
                Err(e) => return Err(e),
            };
        }
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or `deadline` passes;
    /// between attempts it backs off and refreshes metadata when the error calls for it.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        deadline: Instant,
        what: &str,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = match tokio::time::timeout(remaining, op()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(ClientError::Timeout(format!(
                        "{what} did not complete in time"
                    )))
                }
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, attempt, "{what}: retrying");
                    let delay = self.settings.retry_delay(attempt).min(deadline - now);
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    if needs_metadata_refresh(&e) {
                        let _ = self.refresh().await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether an error means the cached metadata is stale.
pub(crate) fn needs_metadata_refresh(e: &ClientError) -> bool {
    match e.code() {
        Some(code) => matches!(
            code,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::KafkaStorageError
                | ErrorCode::NetworkException
                | ErrorCode::ReplicaNotAvailable
        ),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_metadata_errors() {
        assert!(needs_metadata_refresh(&ClientError::kafka(6, None, "")));
        assert!(needs_metadata_refresh(&ClientError::kafka(3, None, "")));
        assert!(needs_metadata_refresh(&ClientError::kafka(5, None, "")));
        assert!(needs_metadata_refresh(&ClientError::kafka(16, None, "")));
        assert!(!needs_metadata_refresh(&ClientError::kafka(1, None, "")));
    }
}
