//! Broker state, start-up, metadata application and background maintenance.

use crate::config::{log_defaults_from, BrokerConfig};
use crate::groups::GroupService;
use crate::partition::{Partition, PartitionTable};
use fjord_common::{Clock, SystemClock, TopicPartition};
use fjord_metadata::controller::{self, ApiError, ControllerResult};
use fjord_metadata::{ConfigResourceType, MetadataImage, MetadataLog};
use fjord_storage::{LogConfig, LogManager};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A data directory problem.
    #[error("log directory {path}: {reason}")]
    LogDir {
        /// The directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The storage layer failed to open.
    #[error("storage: {0}")]
    Storage(#[from] fjord_storage::StorageError),
    /// The metadata log failed.
    #[error("metadata log: {0}")]
    Metadata(#[from] fjord_metadata::MetadataLogError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
}

struct ProducerIdBlock {
    next: i64,
    end: i64,
}

/// A periodic maintenance job: name, period, work (run on a blocking thread).
type MaintenanceJob = (&'static str, Duration, fn(&Broker));

/// A broker: storage, metadata and the group coordinator behind the Kafka protocol.
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) cluster_id: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) logs: LogManager,
    pub(crate) partitions: PartitionTable,
    metadata_log: Mutex<MetadataLog>,
    image: RwLock<Arc<MetadataImage>>,
    producer_ids: Mutex<ProducerIdBlock>,
    /// Advertised listeners with ports resolved after binding.
    advertised: RwLock<Vec<crate::config::Listener>>,
    pub(crate) groups: GroupService,
}

const META_PROPERTIES: &str = "meta.properties";
const METADATA_DIR: &str = "__cluster_metadata";
/// Kafka's `producer.id.expiration.ms` default: idempotent-producer state idle this long is
/// dropped at the next retention pass.
const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
/// Name of the internal offsets topic.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

fn read_or_create_meta(dirs: &[std::path::PathBuf], node_id: i32) -> Result<String, BrokerError> {
    let mut cluster_id: Option<String> = None;
    for dir in dirs {
        let err = |reason: String| BrokerError::LogDir {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
        let path = dir.join(META_PROPERTIES);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let props = crate::config::parse_properties(&text);
            if let Some(stored) = props.get("node.id") {
                if stored.parse::<i32>().ok() != Some(node_id) {
                    return Err(err(format!(
                        "meta.properties says node.id={stored} but the configuration says node.id={node_id}"
                    )));
                }
            }
            if let Some(id) = props.get("cluster.id") {
                match &cluster_id {
                    Some(existing) if existing != id => {
                        return Err(err(format!(
                            "cluster.id {id} differs from {existing} in another log dir"
                        )))
                    }
                    _ => cluster_id = Some(id.clone()),
                }
            }
        }
    }
    let cluster_id = cluster_id.unwrap_or_else(|| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
    });
    for dir in dirs {
        let path = dir.join(META_PROPERTIES);
        if !path.exists() {
            let text = format!(
                "#\n#Written by Fjord\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
            );
            write_file_durably(&path, text.as_bytes()).map_err(|e| BrokerError::LogDir {
                path: dir.display().to_string(),
                reason: format!("cannot write meta.properties: {e}"),
            })?;
        }
    }
    Ok(cluster_id)
}

fn write_file_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Broker {
    /// Opens the data directories (recovering after a crash) and the metadata log.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`Broker::open`] with an injected clock.
    pub fn open_with_clock(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let cluster_id = read_or_create_meta(&config.log_dirs, config.node_id)?;
        let (metadata_log, records) = MetadataLog::open(&config.log_dirs[0].join(METADATA_DIR))?;
        let mut image = MetadataImage::default();
        for record in &records {
            image.apply(record);
        }
        let logs = LogManager::open(
            config.log_dirs.clone(),
            config.log_defaults.clone(),
            clock.clone(),
        )?;
        let groups = GroupService::new(&config);
        let broker = Arc::new(Broker {
            cluster_id,
            clock,
            logs,
            partitions: PartitionTable::default(),
            metadata_log: Mutex::new(metadata_log),
            image: RwLock::new(Arc::new(MetadataImage::default())),
            producer_ids: Mutex::new(ProducerIdBlock { next: 0, end: 0 }),
            advertised: RwLock::new(config.advertised_listeners.clone()),
            groups,
            config,
        });
        broker.publish_image(image)?;
        // Logs on disk that the metadata does not know are leftovers of a deletion that was
        // interrupted by a crash.
        let image = broker.image();
        for (tp, _) in broker.logs.all() {
            if image
                .topic(&tp.topic)
                .is_none_or(|t| tp.partition as usize >= t.partitions.len())
            {
                tracing::warn!(%tp, "deleting log of a partition that no longer exists in the metadata");
                broker.logs.delete(&tp)?;
            }
        }
        tracing::info!(
            cluster_id = %broker.cluster_id,
            node_id = broker.config.node_id,
            topics = image.topics().count(),
            "broker opened"
        );
        Ok(broker)
    }

    /// The current metadata image.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Node ids of live brokers (this node only, until clustering lands).
    pub(crate) fn live_brokers(&self) -> Vec<i32> {
        vec![self.config.node_id]
    }

    /// Topic-level defaults: static broker config plus dynamic broker configs.
    pub(crate) fn log_defaults(&self, image: &MetadataImage) -> LogConfig {
        let cluster = image.configs(ConfigResourceType::Broker, "");
        let node = image.configs(ConfigResourceType::Broker, &self.config.node_id.to_string());
        if cluster.is_empty() && node.is_empty() {
            return self.config.log_defaults.clone();
        }
        let mut keys: BTreeMap<String, String> = self.config.given.clone();
        keys.extend(cluster);
        keys.extend(node);
        match log_defaults_from(&keys) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "dynamic broker config is invalid; using static defaults");
                self.config.log_defaults.clone()
            }
        }
    }

    /// The effective log config of a topic.
    pub(crate) fn topic_log_config(&self, image: &MetadataImage, topic: &str) -> LogConfig {
        let base = self.log_defaults(image);
        let overrides = image.configs(ConfigResourceType::Topic, topic);
        match base.with_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(topic, error = %e, "stored topic config is invalid; using defaults");
                base
            }
        }
    }

    /// Commits a controller result: makes the records durable, replays them, and brings the
    /// hosted partitions in line. Holding the metadata lock serialises controller decisions.
    pub(crate) fn run_controller<T>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> ControllerResult<T>,
    ) -> Result<T, ApiError> {
        let mut log = self.metadata_log.lock();
        let current = self.image();
        let result = decide(&current);
        if result.records.is_empty() {
            return Ok(result.response);
        }
        log.append(&result.records).map_err(|e| {
            tracing::error!(error = %e, "metadata log append failed");
            ApiError::new(fjord_common::ErrorCode::KafkaStorageError, e.to_string())
        })?;
        let mut next = (*current).clone();
        for record in &result.records {
            next.apply(record);
        }
        self.publish_image(next).map_err(|e| {
            tracing::error!(error = %e, "applying metadata failed");
            ApiError::new(fjord_common::ErrorCode::KafkaStorageError, e.to_string())
        })?;
        Ok(result.response)
    }

    /// Installs a new image and reconciles hosted partitions with it.
    fn publish_image(&self, next: MetadataImage) -> Result<(), BrokerError> {
        let previous = self.image();
        let next = Arc::new(next);
        *self.image.write() = next.clone();
        for old in previous.topics() {
            if next.topic(&old.name).is_none_or(|t| t.id != old.id) {
                for p in self.partitions.remove_topic(&old.name) {
                    p.data_arrived.notify_waiters();
                    self.logs.delete(&p.tp)?;
                }
                tracing::info!(topic = %old.name, "topic deleted");
            }
        }
        let defaults_changed = previous.configs(ConfigResourceType::Broker, "")
            != next.configs(ConfigResourceType::Broker, "")
            || previous.configs(ConfigResourceType::Broker, &self.config.node_id.to_string())
                != next.configs(ConfigResourceType::Broker, &self.config.node_id.to_string());
        for topic in next.topics() {
            let config = self.topic_log_config(&next, &topic.name);
            let configs_changed = defaults_changed
                || previous.configs(ConfigResourceType::Topic, &topic.name)
                    != next.configs(ConfigResourceType::Topic, &topic.name);
            let hosted = self.partitions.topic(&topic.name);
            for (index, image) in topic.partitions.iter().enumerate() {
                if !image.replicas.contains(&self.config.node_id) {
                    continue;
                }
                match hosted.get(index) {
                    Some(p) => {
                        if configs_changed {
                            p.log.write().update_config(config.clone());
                        }
                        p.set_leader_epoch(image.leader_epoch);
                    }
                    None => {
                        let tp = TopicPartition::new(topic.name.clone(), index as i32);
                        let log = self.logs.get_or_create(&tp, config.clone())?;
                        // A log reopened from disk starts with the defaults.
                        log.write().update_config(config.clone());
                        self.logs.set_topic_id(&tp, &topic.id.to_string())?;
                        self.partitions.insert(Arc::new(Partition::new(
                            tp,
                            log,
                            image.leader_epoch,
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands out a producer id, taking a new block from the controller when needed.
    pub(crate) fn next_producer_id(&self) -> Result<i64, ApiError> {
        let mut block = self.producer_ids.lock();
        if block.next >= block.end {
            let node = self.config.node_id;
            let start =
                self.run_controller(|image| controller::allocate_producer_ids(image, node))?;
            block.next = start;
            block.end = start + controller::PRODUCER_ID_BLOCK_SIZE;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Binds the listeners and starts serving clients and background maintenance.
    pub async fn serve(self: &Arc<Self>) -> Result<RunningBroker, BrokerError> {
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for listener in &self.config.listeners {
            let address = listener.bind_address();
            let socket = tokio::net::TcpListener::bind(&address)
                .await
                .map_err(|source| BrokerError::Bind {
                    address: address.clone(),
                    source,
                })?;
            let local = socket
                .local_addr()
                .map_err(|source| BrokerError::Bind { address, source })?;
            tracing::info!(listener = %listener.name, address = %local, "listening for Kafka clients");
            addrs.push(local);
            tasks.push(tokio::spawn(crate::server::accept_loop(
                self.clone(),
                socket,
                shutdown_rx.clone(),
            )));
        }
        // A listener bound to port 0 advertises the port it actually got.
        let advertised = self.advertised_with_ports(&addrs);
        *self.advertised.write() = advertised;
        tasks.extend(self.spawn_maintenance(shutdown_rx.clone()));
        tasks.push(self.groups.start(self.clone(), shutdown_rx));
        Ok(RunningBroker {
            broker: self.clone(),
            addrs,
            shutdown_tx,
            tasks,
        })
    }

    fn advertised_with_ports(&self, bound: &[SocketAddr]) -> Vec<crate::config::Listener> {
        self.config
            .advertised_listeners
            .iter()
            .zip(bound)
            .map(|(l, addr)| {
                let mut l = l.clone();
                if l.port == 0 {
                    l.port = addr.port();
                }
                l
            })
            .collect()
    }

    /// The host and port clients should use to reach this broker.
    pub(crate) fn advertised_endpoint(&self) -> (String, i32) {
        let adv = self.advertised.read();
        match adv.first() {
            Some(l) => (l.host.clone(), l.port as i32),
            None => ("localhost".to_string(), 9092),
        }
    }

    fn spawn_maintenance(
        self: &Arc<Self>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let every = |ms: u64| Duration::from_millis(ms.clamp(10, 86_400_000));
        let jobs: Vec<MaintenanceJob> = vec![
            (
                "retention",
                every(self.config.log_retention_check_interval_ms),
                |b| {
                    if let Err(e) = b.logs.enforce_retention() {
                        tracing::error!(error = %e, "retention pass failed");
                    }
                    let now = b.clock.now_ms();
                    for p in b.partitions.all() {
                        p.log
                            .write()
                            .remove_expired_producers(now, PRODUCER_ID_EXPIRATION_MS);
                        let start = p.log.read().log_start_offset();
                        if p.high_watermark() < start {
                            p.reset_high_watermark(start);
                        }
                    }
                },
            ),
            (
                "flush",
                every(self.config.log_flush_scheduler_interval_ms.min(1000)),
                |b| {
                    if let Err(e) = b.logs.flush_due(b.clock.now_ms()) {
                        tracing::error!(error = %e, "scheduled flush failed");
                    }
                    // Deleted logs close their files here, off the request path.
                    let closed = b.logs.sweep_deleted();
                    if closed > 0 {
                        tracing::debug!(logs = closed, "closed the files of deleted logs");
                    }
                },
            ),
            ("cleaner", every(self.config.log_cleaner_backoff_ms), |b| {
                if !b.config.log_cleaner_enable {
                    return;
                }
                // Never compact past what consumers may read.
                for p in b.partitions.all() {
                    p.log
                        .write()
                        .set_max_cleanable_offset(Some(p.high_watermark()));
                }
                match b.logs.run_cleaner(b.clock.now_ms()) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(logs = n, "log cleaner pass"),
                    Err(e) => tracing::error!(error = %e, "log cleaner pass failed"),
                }
            }),
            (
                "checkpoint",
                every(self.config.log_flush_offset_checkpoint_interval_ms),
                |b| {
                    if let Err(e) = b.logs.checkpoint() {
                        tracing::error!(error = %e, "checkpoint failed");
                    }
                },
            ),
        ];
        for (name, period, job) in jobs {
            let broker = self.clone();
            let mut shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = ticker.tick() => {
                            let b = broker.clone();
                            if let Err(e) = tokio::task::spawn_blocking(move || job(&b)).await {
                                tracing::error!(job = name, error = %e, "maintenance task panicked");
                            }
                        }
                        _ = shutdown.changed() => break,
                    }
                }
            }));
        }
        tasks
    }
}

/// A broker that is serving; dropping it does not stop it, call [`RunningBroker::shutdown`].
pub struct RunningBroker {
    broker: Arc<Broker>,
    addrs: Vec<SocketAddr>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningBroker {
    /// The bound listener addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, closes connections, flushes every log and marks a clean shutdown.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let broker = self.broker.clone();
        match tokio::task::spawn_blocking(move || broker.logs.shutdown()).await {
            Ok(Ok(())) => tracing::info!("clean shutdown complete"),
            Ok(Err(e)) => tracing::error!(error = %e, "shutdown could not flush every log"),
            Err(e) => tracing::error!(error = %e, "shutdown task failed"),
        }
    }
}
