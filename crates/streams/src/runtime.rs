//! [`KafkaStreams`]: runs a topology against Kafka-protocol brokers.
//!
//! One tokio task per instance drives everything, in this order per loop:
//!
//! 1. apply rebalance events: revoked partitions → commit what was processed, close their
//!    tasks; assigned partitions → create tasks and restore their stores from the
//!    changelogs (read from the beginning up to the end offset) before any record of the
//!    partition is processed;
//! 2. keep global tables up to date;
//! 3. poll the group consumer and run each record through its task; ship the task's
//!    outputs (sink, repartition and changelog records) to the producer;
//! 4. every `commit.interval.ms`: expire windows, flush stores, wait until the producer
//!    has every output acknowledged, then commit the consumed offsets.
//!
//! Step 4's order is what makes processing at-least-once: an offset is committed only after
//! everything its record caused is durable in Kafka. After a crash, the records after the
//! last commit are processed again, on top of state restored from changelogs that may
//! already hold their effect (so they may count twice, never zero times).

use crate::codec::Codec;
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::state::{
    FjallKeyValueStore, InMemoryKeyValueStore, KeyValueStore, ReadOnlyKeyValueStore,
    ReadOnlyWindowStore, SharedStore, StateStore, StoreKind, StoreRegistry, StoreSpec,
};
use crate::topology::{GlobalStores, OutRecord, Task, Topology};
use fjord_client::{
    Acks, Admin, AdminConfig, AssignorKind, ClientError, Consumer, ConsumerConfig, ConsumerRecord,
    DeliveryFuture, ErrorCode, NewTopic, OffsetReset, OffsetSpec, Producer, ProducerConfig,
    ProducerRecord, RebalanceListener, TopicPartition,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The lifecycle of an application instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamsState {
    /// Built, not started.
    Created,
    /// Joining the group, or restoring stores of new tasks.
    Rebalancing,
    /// Processing.
    Running,
    /// `close` was called; committing and leaving the group.
    PendingShutdown,
    /// Stopped cleanly.
    NotRunning,
    /// Stopped by an error (see [`KafkaStreams::close`]).
    Error,
}

struct Shared {
    state: Mutex<StreamsState>,
    stop: AtomicBool,
    wake: tokio::sync::Notify,
    processed: AtomicU64,
    commits: AtomicU64,
    restored: AtomicU64,
    tasks: Mutex<BTreeSet<i32>>,
}

/// A running streams application instance.
///
/// ```no_run
/// use fjord_streams::{KafkaStreams, StreamsBuilder, StreamsConfig};
///
/// # async fn demo() -> fjord_streams::Result<()> {
/// let builder = StreamsBuilder::new();
/// builder.stream::<String, String>("in").map_values(|v| v.to_uppercase()).to("out");
/// let mut app = KafkaStreams::new(builder.build()?, StreamsConfig::new("upper", "127.0.0.1:9092"));
/// app.start().await?;
/// // ... until the application should stop:
/// app.close().await?;
/// # Ok(()) }
/// ```
pub struct KafkaStreams {
    topology: Option<Topology>,
    config: StreamsConfig,
    registry: StoreRegistry,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for KafkaStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStreams")
            .field("application_id", &self.config.application_id)
            .field("state", &self.state())
            .finish()
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        // Dropping without close is a crash as far as the group is concerned: nothing more
        // is committed, and the partitions move after the session timeout.
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

impl KafkaStreams {
    /// An instance of the application (not started).
    pub fn new(topology: Topology, config: StreamsConfig) -> Self {
        KafkaStreams {
            topology: Some(topology),
            config,
            registry: StoreRegistry::default(),
            shared: Arc::new(Shared {
                state: Mutex::new(StreamsState::Created),
                stop: AtomicBool::new(false),
                wake: tokio::sync::Notify::new(),
                processed: AtomicU64::new(0),
                commits: AtomicU64::new(0),
                restored: AtomicU64::new(0),
                tasks: Mutex::new(BTreeSet::new()),
            }),
            handle: None,
        }
    }

    /// Creates the internal topics, reads the global tables, joins the group and starts
    /// processing in a background task. Fails if a source topic does not exist.
    pub async fn start(&mut self) -> Result<()> {
        let topology = self
            .topology
            .take()
            .ok_or_else(|| StreamsError::NotRunning("already started".into()))?;
        *self.shared.state.lock() = StreamsState::Rebalancing;
        let runner = match Runner::prepare(
            Arc::new(topology),
            self.config.clone(),
            self.registry.clone(),
            self.shared.clone(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                *self.shared.state.lock() = StreamsState::Error;
                return Err(e);
            }
        };
        let shared = self.shared.clone();
        self.handle = Some(tokio::spawn(async move {
            let result = runner.run().await;
            *shared.state.lock() = if result.is_ok() {
                StreamsState::NotRunning
            } else {
                StreamsState::Error
            };
            if let Err(e) = &result {
                tracing::error!(error = %e, "streams application stopped");
            }
            result
        }));
        Ok(())
    }

    /// Commits, leaves the group and stops; returns the error that stopped processing, if
    /// one did.
    pub async fn close(mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let Some(h) = self.handle.take() else {
            return Ok(());
        };
        {
            let mut st = self.shared.state.lock();
            if matches!(*st, StreamsState::Running | StreamsState::Rebalancing) {
                *st = StreamsState::PendingShutdown;
            }
        }
        match h.await {
            Ok(r) => r,
            Err(e) => Err(StreamsError::NotRunning(format!(
                "processing task failed: {e}"
            ))),
        }
    }

    /// The current state.
    pub fn state(&self) -> StreamsState {
        *self.shared.state.lock()
    }

    /// Records processed so far by this instance.
    pub fn processed(&self) -> u64 {
        self.shared.processed.load(Ordering::Relaxed)
    }

    /// Offset commits done so far.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Changelog records applied to restore stores so far.
    pub fn restored_records(&self) -> u64 {
        self.shared.restored.load(Ordering::Relaxed)
    }

    /// The partition numbers of the tasks this instance runs now.
    pub fn tasks(&self) -> Vec<i32> {
        self.shared.tasks.lock().iter().copied().collect()
    }

    /// Interactive query: a read-only view of a key-value store of this instance's tasks
    /// (and of global tables).
    pub fn store<K: Codec, V: Codec>(&self, name: &str) -> ReadOnlyKeyValueStore<K, V> {
        ReadOnlyKeyValueStore::new(name, self.registry.clone())
    }

    /// Interactive query: a read-only view of a window or session store.
    pub fn window_store<K: Codec, V: Codec>(&self, name: &str) -> ReadOnlyWindowStore<K, V> {
        ReadOnlyWindowStore::new(name, self.registry.clone())
    }
}

#[derive(Debug)]
enum Rebalance {
    Revoked(Vec<TopicPartition>),
    Assigned(Vec<TopicPartition>),
}

struct Listener(Arc<Mutex<Vec<Rebalance>>>);

impl RebalanceListener for Listener {
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(Rebalance::Revoked(partitions.to_vec()));
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().push(Rebalance::Assigned(partitions.to_vec()));
    }
}

struct Runner {
    topology: Arc<Topology>,
    config: StreamsConfig,
    registry: StoreRegistry,
    shared: Arc<Shared>,
    admin: Admin,
    producer: Producer,
    consumer: Consumer,
    global_consumer: Option<Consumer>,
    global_topics: HashMap<String, String>,
    globals: GlobalStores,
    events: Arc<Mutex<Vec<Rebalance>>>,
    tasks: BTreeMap<i32, Task>,
    /// Next offset to commit per consumed partition.
    consumed: HashMap<TopicPartition, i64>,
    deliveries: Vec<DeliveryFuture>,
    dirty: bool,
    /// Offset after the newest acknowledged (or restored) record of each changelog
    /// partition: what a checkpoint records.
    changelog_end: HashMap<TopicPartition, i64>,
    /// The group has assigned partitions to this member at least once.
    joined: bool,
}

fn is_group_churn(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::RebalanceInProgress)
            | Some(ErrorCode::IllegalGeneration)
            | Some(ErrorCode::UnknownMemberId)
            | Some(ErrorCode::FencedInstanceId)
    )
}

fn client_err(e: ClientError) -> StreamsError {
    StreamsError::Client(e)
}

impl Runner {
    async fn prepare(
        topology: Arc<Topology>,
        config: StreamsConfig,
        registry: StoreRegistry,
        shared: Arc<Shared>,
    ) -> Result<Runner> {
        let app = config.application_id.clone();
        let admin = Admin::new(AdminConfig::new(&config.bootstrap_servers)).map_err(client_err)?;
        // Internal topics get as many partitions as the widest source topic, so task `p`
        // finds partition `p` of every topic it reads (co-partitioning).
        let sources = topology.source_topics();
        let described = admin.describe_topics(&sources).await.map_err(|e| {
            StreamsError::Topology(format!("source topics {sources:?} must exist: {e}"))
        })?;
        let partitions = described
            .iter()
            .map(|t| t.partitions.len() as i32)
            .max()
            .unwrap_or(1)
            .max(1);
        if described
            .iter()
            .any(|t| t.partitions.len() as i32 != partitions)
        {
            // Joins need co-partitioned inputs; tasks of the narrower topics simply get
            // fewer partitions, which is fine for everything else.
            tracing::warn!(
                topics = ?described.iter().map(|t| (&t.name, t.partitions.len())).collect::<Vec<_>>(),
                "source topics have different partition counts: joins between them would not be co-partitioned"
            );
        }
        let mut internal = Vec::new();
        for t in &topology.repartition_topics {
            internal.push(
                NewTopic::new(format!("{app}-{t}"), partitions)
                    .replication_factor(config.replication_factor),
            );
        }
        for (_, topic) in topology.changelog_topics(&app) {
            internal.push(
                NewTopic::new(topic, partitions)
                    .replication_factor(config.replication_factor)
                    .config("cleanup.policy", "compact"),
            );
        }
        for t in internal {
            match admin.create_topics(std::slice::from_ref(&t)).await {
                Ok(()) => tracing::info!(topic = %t.name, partitions, "created internal topic"),
                Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }

        let mut producer_config = ProducerConfig::new(&config.bootstrap_servers)
            .acks(Acks::All)
            .linger_ms(5);
        for (k, v) in &config.producer {
            producer_config = producer_config.set(k, v.clone())?;
        }
        let producer = Producer::new(producer_config)?;

        // Global tables: every partition, read to the end before processing starts.
        let mut globals = HashMap::new();
        let mut global_topics = HashMap::new();
        let mut global_consumer = None;
        if !topology.globals.is_empty() {
            let mut assignment = Vec::new();
            for (topic, store) in &topology.globals {
                let spec = StoreSpec {
                    name: store.clone(),
                    kind: StoreKind::KeyValue,
                    logged: false,
                    persistent: false,
                };
                let s: SharedStore = Arc::new(Mutex::new(StateStore::new(
                    spec,
                    Box::new(InMemoryKeyValueStore::new()),
                )?));
                registry
                    .write()
                    .entry(store.clone())
                    .or_default()
                    .insert(-1, s.clone());
                globals.insert(store.clone(), s);
                global_topics.insert(topic.clone(), store.clone());
                let d = admin.describe_topics(&[topic]).await?;
                for t in d {
                    for p in t.partitions {
                        assignment.push(TopicPartition::new(topic.clone(), p.partition));
                    }
                }
            }
            let mut c = Consumer::new(
                ConsumerConfig::new(&config.bootstrap_servers)
                    .enable_auto_commit(false)
                    .auto_offset_reset(OffsetReset::Earliest),
            )?;
            c.assign(&assignment)?;
            c.seek_to_beginning(&assignment)?;
            let ends = end_offsets(&admin, &assignment).await?;
            let mut g = GlobalFeed {
                consumer: c,
                topics: global_topics.clone(),
                stores: globals.clone(),
            };
            g.read_until(&ends, &shared).await?;
            global_consumer = Some(g.consumer);
        }

        let mut consumer_config = ConsumerConfig::new(&config.bootstrap_servers)
            .group_id(&app)
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            // Range assignment gives partition p of every topic to the same member, so one
            // task owns partition p of all its topics.
            .assignment_strategy(&[AssignorKind::Range]);
        for (k, v) in &config.consumer {
            consumer_config = consumer_config.set(k, v.clone())?;
        }
        let mut consumer = Consumer::new(consumer_config)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        consumer.subscribe(
            &topology.task_topics(&app),
            Some(Box::new(Listener(events.clone()))),
        )?;

        Ok(Runner {
            topology,
            config,
            registry,
            shared,
            admin,
            producer,
            consumer,
            global_consumer,
            global_topics,
            globals: Arc::new(globals),
            events,
            tasks: BTreeMap::new(),
            consumed: HashMap::new(),
            deliveries: Vec::new(),
            dirty: false,
            changelog_end: HashMap::new(),
            joined: false,
        })
    }

    async fn run(mut self) -> Result<()> {
        let result = self.run_loop().await;
        if result.is_ok() {
            // Orderly shutdown: commit everything, then leave the group.
            let committed = self.commit().await;
            for p in self.tasks.keys().copied().collect::<Vec<_>>() {
                self.close_task(p);
            }
            let closed = self.consumer.close().await;
            let _ = self.producer.close().await;
            committed?;
            closed?;
        }
        result
    }

    async fn run_loop(&mut self) -> Result<()> {
        let mut next_commit = Instant::now() + self.config.commit_interval;
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.apply_rebalances().await?;
            self.poll_globals().await?;
            let records = tokio::select! {
                r = self.consumer.poll(self.config.poll) => r?,
                _ = self.shared.wake.notified() => Vec::new(),
            };
            // Rebalance events fired inside poll must be handled before its records: a new
            // task restores its stores first.
            self.apply_rebalances().await?;
            // Running once the group has assigned this member (possibly nothing) and the
            // tasks it got are restored.
            if self.joined && self.events.lock().is_empty() {
                let mut st = self.shared.state.lock();
                if *st == StreamsState::Rebalancing {
                    *st = StreamsState::Running;
                }
            }
            for r in in_timestamp_order(records) {
                if !self.tasks.contains_key(&r.partition) {
                    self.open_tasks(&[r.partition]).await?;
                }
                let Some(task) = self.tasks.get_mut(&r.partition) else {
                    continue;
                };
                match task.process(&r.topic, r.key.clone(), r.value.clone(), r.timestamp) {
                    Ok(()) => {}
                    Err(StreamsError::Serde(e)) if self.config.continue_on_bad_records => {
                        tracing::warn!(
                            topic = %r.topic, partition = r.partition, offset = r.offset, error = %e,
                            "skipping a record that does not decode"
                        );
                    }
                    Err(e) => return Err(e),
                }
                self.consumed.insert(r.topic_partition(), r.offset + 1);
                self.shared.processed.fetch_add(1, Ordering::Relaxed);
                self.dirty = true;
                let outs = task.take_outputs();
                self.send(outs).await?;
            }
            if Instant::now() >= next_commit {
                self.commit().await?;
                next_commit = Instant::now() + self.config.commit_interval;
            }
        }
    }

    async fn send(&mut self, outs: Vec<OutRecord>) -> Result<()> {
        for o in outs {
            let mut r = ProducerRecord::new(o.topic);
            r.key = o.key;
            r.value = o.value;
            r.partition = o.partition;
            if o.timestamp >= 0 {
                r.timestamp = Some(o.timestamp);
            }
            self.deliveries.push(self.producer.send(r).await?);
        }
        if self.deliveries.len() > MAX_PENDING_DELIVERIES {
            // Bound the memory of outstanding acknowledgements (and apply back-pressure):
            // the oldest ones are almost always settled by now.
            self.settle(MAX_PENDING_DELIVERIES / 2).await?;
        }
        Ok(())
    }

    /// Waits for all but the newest `keep` deliveries, noting changelog progress.
    async fn settle(&mut self, keep: usize) -> Result<()> {
        let n = self.deliveries.len().saturating_sub(keep);
        let settled: Vec<DeliveryFuture> = self.deliveries.drain(..n).collect();
        for d in settled {
            let md = d.await?;
            let tp = TopicPartition::new(&*md.topic, md.partition);
            if let Some(end) = self.changelog_end.get_mut(&tp) {
                *end = (*end).max(md.offset + 1);
            }
        }
        Ok(())
    }

    /// Flush stores, wait for every output to be acknowledged, then commit offsets.
    async fn commit(&mut self) -> Result<()> {
        if !self.dirty && self.deliveries.is_empty() {
            return Ok(());
        }
        let mut outs = Vec::new();
        for task in self.tasks.values_mut() {
            task.flush_stores()?;
            outs.extend(task.take_outputs());
        }
        self.send(outs).await?;
        self.producer.flush().await?;
        self.settle(0).await?;
        self.write_checkpoints();
        let offsets: HashMap<TopicPartition, i64> = self.consumed.clone();
        self.dirty = false;
        if offsets.is_empty() {
            return Ok(());
        }
        // Bounded: a commit racing a rebalance may be retried by the client for long.
        let committed = tokio::time::timeout(
            Duration::from_secs(10),
            self.consumer.commit_offsets_sync(offsets),
        )
        .await;
        match committed {
            Ok(Ok(())) => {
                tracing::debug!(
                    processed = self.shared.processed.load(Ordering::Relaxed),
                    "committed offsets"
                );
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) if is_group_churn(&e) => {
                // The group is rebalancing: these offsets are committed by a later commit,
                // or their records are processed again by the next owner (at-least-once).
                tracing::info!(error = %e, "offset commit skipped during a rebalance");
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                tracing::warn!("offset commit timed out; retrying at the next interval");
                self.dirty = true;
                Ok(())
            }
        }
    }

    async fn apply_rebalances(&mut self) -> Result<()> {
        let events: Vec<Rebalance> = std::mem::take(&mut *self.events.lock());
        for e in events {
            match e {
                Rebalance::Revoked(tps) => {
                    *self.shared.state.lock() = StreamsState::Rebalancing;
                    // Commit what was processed; the group may already have moved on (the
                    // commit then fails and the new owner reprocesses: at-least-once).
                    if let Err(e) = self.commit().await {
                        tracing::warn!(error = %e, "commit on revocation failed");
                        self.deliveries.clear();
                    }
                    let mut parts = BTreeSet::new();
                    for tp in &tps {
                        self.consumed.remove(tp);
                        parts.insert(tp.partition);
                    }
                    for p in parts {
                        self.close_task(p);
                    }
                }
                Rebalance::Assigned(tps) => {
                    self.joined = true;
                    *self.shared.state.lock() = StreamsState::Rebalancing;
                    let parts: BTreeSet<i32> = tps.iter().map(|tp| tp.partition).collect();
                    let new: Vec<i32> = parts
                        .into_iter()
                        .filter(|p| !self.tasks.contains_key(p))
                        .collect();
                    self.open_tasks(&new).await?;
                }
            }
        }
        Ok(())
    }

    fn close_task(&mut self, p: i32) {
        if let Some(mut task) = self.tasks.remove(&p) {
            if let Err(e) = task.flush_stores() {
                tracing::warn!(task = p, error = %e, "flushing stores of a closed task failed");
            }
            // Expiry may have logged tombstones that are not acknowledged: those stores
            // then have no checkpoint and restore in full next time.
            let unsent = task.take_outputs();
            if unsent.is_empty() {
                self.write_checkpoint(p, &task);
            }
            let mut reg = self.registry.write();
            for name in task.stores.keys() {
                if let Some(m) = reg.get_mut(name) {
                    m.remove(&p);
                }
            }
            tracing::info!(task = p, "closed task");
        }
        self.shared.tasks.lock().remove(&p);
    }

    fn task_dir(&self, p: i32) -> std::path::PathBuf {
        self.config
            .state_dir
            .join(&self.config.application_id)
            .join(p.to_string())
    }

    /// The changelog partitions whose persistent stores may resume from a checkpoint.
    fn checkpointable(&self, p: i32) -> Vec<TopicPartition> {
        let app = &self.config.application_id;
        self.topology
            .stores
            .values()
            .filter(|s| s.persistent && s.logged)
            .map(|s| TopicPartition::new(crate::state::changelog_topic(app, &s.name), p))
            .collect()
    }

    /// Records, for each task, how far its persistent stores are covered by the
    /// changelogs; called after the producer acknowledged every changelog record.
    fn write_checkpoints(&self) {
        for (&p, task) in &self.tasks {
            self.write_checkpoint(p, task);
        }
    }

    fn write_checkpoint(&self, p: i32, task: &Task) {
        let mut lines = String::new();
        for tp in self.checkpointable(p) {
            if let Some(end) = self.changelog_end.get(&tp) {
                lines.push_str(&format!("{}\t{}\t{end}\n", tp.topic, tp.partition));
            }
        }
        if lines.is_empty() {
            return;
        }
        // Stores first, then the checkpoint that vouches for them.
        for store in task.stores.values() {
            if let Err(e) = store.lock().flush() {
                tracing::warn!(task = p, error = %e, "flushing a store failed; no checkpoint");
                return;
            }
        }
        let path = self.task_dir(p).join(CHECKPOINT);
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, lines).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(task = p, error = %e, "writing the checkpoint failed");
        }
    }

    /// Creates tasks and restores their stores from the changelogs before they process:
    /// persistent stores with a checkpoint replay the changelog from the checkpointed
    /// offset, all others are cleared and replay it from the beginning.
    async fn open_tasks(&mut self, parts: &[i32]) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let app = self.config.application_id.clone();
        let mut changelog_tps: Vec<(TopicPartition, Option<i64>)> = Vec::new();
        for &p in parts {
            let dir = self.task_dir(p);
            // A checkpoint is used once: while the task runs, the store moves past it, and
            // after a crash the store must not be trusted beyond the last checkpoint.
            let checkpoint = read_checkpoint(&dir.join(CHECKPOINT));
            let _ = std::fs::remove_file(dir.join(CHECKPOINT));
            let mut db: Option<fjall::Database> = None;
            let mut factory = |spec: &StoreSpec| -> Result<Box<dyn KeyValueStore>> {
                if !spec.persistent {
                    return Ok(Box::new(InMemoryKeyValueStore::new()));
                }
                if db.is_none() {
                    std::fs::create_dir_all(&dir)?;
                    db = Some(
                        fjall::Database::builder(&dir)
                            .open()
                            .map_err(|e| StreamsError::store(&spec.name, e))?,
                    );
                }
                let Some(db) = db.as_ref() else {
                    return Err(StreamsError::store(&spec.name, "state directory not open"));
                };
                let mut store = FjallKeyValueStore::in_database(db, &spec.name)?;
                let tp = TopicPartition::new(crate::state::changelog_topic(&app, &spec.name), p);
                if spec.logged && !checkpoint.contains_key(&tp) {
                    store.clear()?;
                }
                Ok(Box::new(store))
            };
            let task = Task::new(
                self.topology.clone(),
                &app,
                p,
                self.globals.clone(),
                &mut factory,
            )?;
            for spec in self.topology.stores.values().filter(|s| s.logged) {
                let tp = TopicPartition::new(crate::state::changelog_topic(&app, &spec.name), p);
                let from = if spec.persistent {
                    checkpoint.get(&tp).copied()
                } else {
                    None
                };
                changelog_tps.push((tp, from));
            }
            let mut reg = self.registry.write();
            for (name, store) in &task.stores {
                reg.entry(name.clone())
                    .or_default()
                    .insert(p, store.clone());
            }
            drop(reg);
            self.tasks.insert(p, task);
            self.shared.tasks.lock().insert(p);
            tracing::info!(task = p, "created task");
        }
        if !changelog_tps.is_empty() {
            self.restore(&changelog_tps).await?;
        }
        Ok(())
    }

    async fn restore(&mut self, tps: &[(TopicPartition, Option<i64>)]) -> Result<()> {
        let all: Vec<TopicPartition> = tps.iter().map(|(tp, _)| tp.clone()).collect();
        let ends = end_offsets(&self.admin, &all).await?;
        for (tp, end) in &ends {
            self.changelog_end.insert(tp.clone(), *end);
        }
        let wanted: Vec<(TopicPartition, Option<i64>)> = tps
            .iter()
            .filter(|(tp, from)| ends.get(tp).copied().unwrap_or(0) > from.unwrap_or(0))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let app = self.config.application_id.clone();
        let store_of: HashMap<String, String> = self
            .topology
            .changelog_topics(&app)
            .into_iter()
            .map(|(s, t)| (t, s))
            .collect();
        let mut c = Consumer::new(
            ConsumerConfig::new(&self.config.bootstrap_servers)
                .enable_auto_commit(false)
                .auto_offset_reset(OffsetReset::Earliest),
        )?;
        let assigned: Vec<TopicPartition> = wanted.iter().map(|(tp, _)| tp.clone()).collect();
        c.assign(&assigned)?;
        for (tp, from) in &wanted {
            match from {
                Some(offset) => c.seek(tp, *offset)?,
                None => c.seek_to_beginning(std::slice::from_ref(tp))?,
            }
        }
        let wanted = assigned;
        let mut done: BTreeSet<TopicPartition> = BTreeSet::new();
        let started = Instant::now();
        let mut applied = 0u64;
        while done.len() < wanted.len() {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            for r in c.poll(Duration::from_millis(200)).await? {
                let Some(store) = store_of.get(&*r.topic) else {
                    continue;
                };
                let Some(task) = self.tasks.get(&r.partition) else {
                    continue;
                };
                let Some(s) = task.stores.get(store) else {
                    continue;
                };
                if let Some(k) = &r.key {
                    s.lock().restore(k, r.value.clone())?;
                    applied += 1;
                }
            }
            for tp in &wanted {
                if done.contains(tp) {
                    continue;
                }
                if c.position(tp).await? >= ends.get(tp).copied().unwrap_or(0) {
                    done.insert(tp.clone());
                }
            }
        }
        let _ = c.close().await;
        self.shared.restored.fetch_add(applied, Ordering::Relaxed);
        tracing::info!(records = applied, partitions = wanted.len(), elapsed = ?started.elapsed(), "restored stores from changelogs");
        Ok(())
    }

    async fn poll_globals(&mut self) -> Result<()> {
        let Some(c) = self.global_consumer.as_mut() else {
            return Ok(());
        };
        for r in c.poll(Duration::ZERO).await? {
            if let (Some(store), Some(k)) = (self.global_topics.get(&*r.topic), &r.key) {
                if let Some(s) = self.globals.get(store) {
                    s.lock().put(k, r.value.clone())?;
                }
            }
        }
        Ok(())
    }
}

/// Merges a poll's records so that, across partitions, the record with the smallest
/// timestamp goes first (as Kafka Streams picks among partition queues), keeping each
/// partition's own order. Windows and joins then see event time advance more evenly.
fn in_timestamp_order(records: Vec<ConsumerRecord>) -> Vec<ConsumerRecord> {
    let mut queues: Vec<std::collections::VecDeque<ConsumerRecord>> = Vec::new();
    let mut index: HashMap<(Arc<str>, i32), usize> = HashMap::new();
    let total = records.len();
    for r in records {
        let i = *index
            .entry((r.topic.clone(), r.partition))
            .or_insert_with(|| {
                queues.push(std::collections::VecDeque::new());
                queues.len() - 1
            });
        queues[i].push_back(r);
    }
    let mut out = Vec::with_capacity(total);
    while let Some(q) = queues
        .iter_mut()
        .filter(|q| !q.is_empty())
        .min_by_key(|q| q.front().map_or(i64::MAX, |r| r.timestamp))
    {
        match q.pop_front() {
            Some(r) => out.push(r),
            None => break,
        }
    }
    out
}

const CHECKPOINT: &str = ".checkpoint";

/// Outstanding producer acknowledgements kept before waiting for the older ones.
const MAX_PENDING_DELIVERIES: usize = 10_000;

/// Reads `topic<TAB>partition<TAB>offset` lines; a missing or damaged file is no checkpoint.
fn read_checkpoint(path: &std::path::Path) -> HashMap<TopicPartition, i64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.split('\t');
        let (Some(topic), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return HashMap::new();
        };
        let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) else {
            return HashMap::new();
        };
        out.insert(TopicPartition::new(topic, p), o);
    }
    out
}

struct GlobalFeed {
    consumer: Consumer,
    topics: HashMap<String, String>,
    stores: HashMap<String, SharedStore>,
}

impl GlobalFeed {
    async fn read_until(
        &mut self,
        ends: &HashMap<TopicPartition, i64>,
        shared: &Shared,
    ) -> Result<()> {
        let mut pending: Vec<TopicPartition> = ends
            .iter()
            .filter(|(_, e)| **e > 0)
            .map(|(tp, _)| tp.clone())
            .collect();
        while !pending.is_empty() {
            if shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            for r in self.consumer.poll(Duration::from_millis(200)).await? {
                if let (Some(store), Some(k)) = (self.topics.get(&*r.topic), &r.key) {
                    if let Some(s) = self.stores.get(store) {
                        s.lock().put(k, r.value.clone())?;
                    }
                }
            }
            let mut still = Vec::new();
            for tp in pending {
                if self.consumer.position(&tp).await? < ends.get(&tp).copied().unwrap_or(0) {
                    still.push(tp);
                }
            }
            pending = still;
        }
        Ok(())
    }
}

async fn end_offsets(
    admin: &Admin,
    tps: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    let req: Vec<(TopicPartition, OffsetSpec)> = tps
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let listed = admin.list_offsets(&req).await?;
    Ok(listed.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, partition: i32, offset: i64, timestamp: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: topic.into(),
            partition,
            offset,
            timestamp,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn records_are_merged_by_timestamp_keeping_partition_order() {
        let merged = in_timestamp_order(vec![
            rec("a", 0, 0, 10),
            rec("a", 0, 1, 5), // out of order inside its partition: stays after offset 0
            rec("a", 1, 0, 7),
            rec("b", 0, 0, 1),
        ]);
        let order: Vec<(String, i32, i64)> = merged
            .iter()
            .map(|r| (r.topic.to_string(), r.partition, r.offset))
            .collect();
        assert_eq!(
            order,
            vec![
                ("b".into(), 0, 0),
                ("a".into(), 1, 0),
                ("a".into(), 0, 0),
                ("a".into(), 0, 1)
            ]
        );
    }

    #[test]
    fn checkpoint_files_round_trip_and_damaged_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT);
        assert!(
            read_checkpoint(&path).is_empty(),
            "missing file: no checkpoint"
        );
        std::fs::write(&path, "app-s-changelog\t2\t41\napp-t-changelog\t2\t7\n").unwrap();
        let c = read_checkpoint(&path);
        assert_eq!(c[&TopicPartition::new("app-s-changelog", 2)], 41);
        assert_eq!(c.len(), 2);
        std::fs::write(&path, "app-s-changelog\t2\tforty-one\n").unwrap();
        assert!(
            read_checkpoint(&path).is_empty(),
            "damaged file: no checkpoint"
        );
    }

    #[test]
    fn queries_of_unknown_stores_fail_with_the_name() {
        let app = KafkaStreams::new(
            {
                let b = crate::StreamsBuilder::new();
                b.stream::<String, String>("in").to("out");
                b.build().unwrap()
            },
            StreamsConfig::new("a", "127.0.0.1:1"),
        );
        assert_eq!(app.state(), StreamsState::Created);
        let err = app
            .store::<String, i64>("nope")
            .get(&"k".to_string())
            .unwrap_err();
        assert!(err.to_string().contains("nope"));
    }
}
