//! The group coordinator service: the async driver of the pure `fjord-coordinator` state
//! machine.
//!
//! Requests enter through [`GroupService::submit`]; the state machine returns effects which
//! are applied in order under one lock: `Persist` appends records to the compacted
//! `__consumer_offsets` topic (a local append, durable as any acknowledged produce), and
//! `Respond` completes the waiting request — possibly one parked long before (JoinGroup and
//! SyncGroup wait for the rebalance). A ticker task drives timeouts at the state machine's
//! next deadline. On start-up every partition of `__consumer_offsets` is replayed into the
//! state machine before it serves.

use crate::broker::{Broker, OFFSETS_TOPIC};
use crate::config::BrokerConfig;
use fjord_common::ErrorCode;
use fjord_coordinator::{
    Effect, GroupConfig, GroupCoordinator, PersistRecord, RequestId, Response,
};
use fjord_metadata::controller::{self, CreateTopic, TopicDefaults};
use fjord_protocol::batch::BatchIter;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{decode_batch, BatchBuilder, Record};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

struct Inner {
    coordinator: GroupCoordinator,
    next_request: u64,
    pending: HashMap<RequestId, oneshot::Sender<Response>>,
}

/// Owns the coordinator and its driver.
pub(crate) struct GroupService {
    inner: Mutex<Inner>,
    /// Wakes the ticker when a request may have moved the next deadline earlier.
    wake: Notify,
    /// True once `__consumer_offsets` exists and every partition is loaded.
    ready: AtomicBool,
    num_partitions: i32,
}

fn group_config(config: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        max_size: config.group_max_size,
        offsets_retention_ms: config.offsets_retention_minutes as i64 * 60_000,
        offset_metadata_max_bytes: config.offset_metadata_max_bytes.max(0) as usize,
        offsets_topic_num_partitions: config.offsets_topic_num_partitions,
        offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
        ..GroupConfig::default()
    }
}

impl GroupService {
    pub(crate) fn new(config: &BrokerConfig) -> Self {
        GroupService {
            inner: Mutex::new(Inner {
                coordinator: GroupCoordinator::new(group_config(config)),
                next_request: 1,
                pending: HashMap::new(),
            }),
            wake: Notify::new(),
            ready: AtomicBool::new(false),
            num_partitions: config.offsets_topic_num_partitions,
        }
    }

    /// Loads existing group state and starts the timer task.
    pub(crate) fn start(
        &self,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        if broker.image().topic(OFFSETS_TOPIC).is_some() {
            self.load(&broker);
        }
        tokio::spawn(async move {
            loop {
                let deadline = broker.groups.inner.lock().coordinator.next_deadline();
                let now = broker.clock.now_ms();
                let wait = deadline.map_or(1000, |d| (d - now).clamp(0, 1000)) as u64;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = broker.groups.wake.notified() => continue,
                    _ = shutdown.changed() => break,
                }
                let now = broker.clock.now_ms();
                let mut inner = broker.groups.inner.lock();
                let effects = inner.coordinator.tick(now);
                broker.groups.apply(&broker, &mut inner, effects);
            }
        })
    }

    /// Replays every `__consumer_offsets` partition into the state machine.
    fn load(&self, broker: &Broker) {
        let mut inner = self.inner.lock();
        let mut records = 0usize;
        for partition in 0..self.num_partitions {
            records += replay_partition(broker, &mut inner.coordinator, partition);
        }
        let now = broker.clock.now_ms();
        for partition in 0..self.num_partitions {
            inner.coordinator.load_partition(partition, now);
        }
        self.ready.store(true, Ordering::Release);
        tracing::info!(
            records,
            groups = inner.coordinator.group_ids().len(),
            "group coordinator loaded"
        );
    }

    /// Creates `__consumer_offsets` on first use, as Kafka does on the first FindCoordinator.
    pub(crate) fn ensure_offsets_topic(&self, broker: &Broker) -> Result<(), ErrorCode> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let brokers = broker.live_brokers();
        let rf = broker
            .config
            .offsets_topic_replication_factor
            .min(brokers.len() as i16)
            .max(1);
        let mut topic = CreateTopic::new(OFFSETS_TOPIC);
        topic.num_partitions = self.num_partitions;
        topic.replication_factor = rf;
        topic
            .configs
            .insert("cleanup.policy".into(), "compact".into());
        topic.configs.insert(
            "segment.bytes".into(),
            broker.config.offsets_topic_segment_bytes.to_string(),
        );
        topic
            .configs
            .insert("compression.type".into(), "producer".into());
        let defaults = TopicDefaults {
            num_partitions: self.num_partitions,
            replication_factor: rf,
        };
        let result = broker.run_controller(|image| {
            controller::create_topics(
                image,
                &brokers,
                &defaults,
                &|_, _| Ok(()),
                vec![topic],
                false,
            )
        });
        match result {
            Ok(results) => match results.into_iter().next() {
                Some((_, Ok(_))) => {
                    tracing::info!(partitions = self.num_partitions, "created {OFFSETS_TOPIC}")
                }
                Some((_, Err(e))) if e.code == ErrorCode::TopicAlreadyExists => {}
                Some((_, Err(e))) => {
                    tracing::error!(error = %e.message, "cannot create {OFFSETS_TOPIC}");
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
                None => return Err(ErrorCode::CoordinatorNotAvailable),
            },
            Err(e) => {
                tracing::error!(error = %e.message, "cannot create {OFFSETS_TOPIC}");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        }
        let mut inner = self.inner.lock();
        if !self.ready.load(Ordering::Acquire) {
            let now = broker.clock.now_ms();
            for partition in 0..self.num_partitions {
                if !inner.coordinator.is_loaded(partition) {
                    inner.coordinator.load_partition(partition, now);
                }
            }
            self.ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Runs one request through the state machine and waits for its response. `None` when
    /// the response could not be produced (its records could not be persisted).
    pub(crate) async fn submit(
        &self,
        broker: &Broker,
        call: impl FnOnce(&mut GroupCoordinator, RequestId, i64) -> Vec<Effect>,
    ) -> Option<Response> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.inner.lock();
            let id = RequestId(inner.next_request);
            inner.next_request += 1;
            inner.pending.insert(id, tx);
            let effects = call(&mut inner.coordinator, id, broker.clock.now_ms());
            self.apply(broker, &mut inner, effects);
        }
        self.wake.notify_one();
        rx.await.ok()
    }

    fn apply(&self, broker: &Broker, inner: &mut Inner, effects: Vec<Effect>) {
        let mut failed_partition = None;
        for effect in effects {
            match effect {
                Effect::Persist { partition, records } => {
                    if failed_partition.is_some() {
                        continue;
                    }
                    if let Err(e) = persist(broker, partition, &records) {
                        tracing::error!(partition, error = %e, "cannot persist group state; reloading the partition");
                        failed_partition = Some(partition);
                    }
                }
                Effect::Respond {
                    request_id,
                    response,
                } => {
                    let sender = inner.pending.remove(&request_id);
                    // After a failed append the responses that depended on it are dropped:
                    // their requests see COORDINATOR_NOT_AVAILABLE and retry.
                    if failed_partition.is_none() {
                        if let Some(tx) = sender {
                            let _ = tx.send(response);
                        }
                    }
                }
            }
        }
        if let Some(partition) = failed_partition {
            let dropped = inner.coordinator.unload_partition(partition);
            for effect in dropped {
                if let Effect::Respond { request_id, .. } = effect {
                    inner.pending.remove(&request_id);
                }
            }
            inner.coordinator.begin_loading(partition);
            replay_partition(broker, &mut inner.coordinator, partition);
            inner
                .coordinator
                .load_partition(partition, broker.clock.now_ms());
        }
    }
}

fn persist(broker: &Broker, partition: i32, records: &[PersistRecord]) -> Result<(), String> {
    let p = broker
        .partitions
        .get(OFFSETS_TOPIC, partition)
        .ok_or_else(|| format!("{OFFSETS_TOPIC}-{partition} is not hosted here"))?;
    let mut builder = BatchBuilder::new(Compression::None, broker.clock.now_ms());
    for r in records {
        builder.push(Record {
            timestamp: -1,
            key: Some(r.key.clone()),
            value: r.value.clone(),
            ..Default::default()
        });
    }
    let batch = builder.build().map_err(|e| e.to_string())?;
    let info = p
        .log
        .write()
        .append_as_leader(&batch, p.leader_epoch())
        .map_err(|e| e.to_string())?;
    p.advance_high_watermark(info.last_offset + 1);
    Ok(())
}

/// Feeds every record of one `__consumer_offsets` partition to the state machine.
fn replay_partition(broker: &Broker, coordinator: &mut GroupCoordinator, partition: i32) -> usize {
    coordinator.begin_loading(partition);
    let Some(p) = broker.partitions.get(OFFSETS_TOPIC, partition) else {
        return 0;
    };
    let mut count = 0;
    let log = p.log.read();
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let slice = match log.read(offset, 1 << 20, end, true) {
            Ok(r) => r.slice,
            Err(e) => {
                tracing::error!(partition, offset, error = %e, "cannot read {OFFSETS_TOPIC}");
                break;
            }
        };
        let Some(slice) = slice else { break };
        let data = match slice.read_bytes() {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(partition, offset, error = %e, "cannot read {OFFSETS_TOPIC}");
                break;
            }
        };
        let before = offset;
        for item in BatchIter::new(&data) {
            let Ok((header, range)) = item else { break };
            offset = header.next_offset();
            if header.is_control() {
                continue;
            }
            match decode_batch(&data[range]) {
                Ok(batch) => {
                    for record in batch.records {
                        let Some(key) = record.key else { continue };
                        if let Err(e) = coordinator.replay(&key, record.value.as_deref()) {
                            tracing::warn!(partition, offset = record.offset, error = %e, "skipping unreadable group record");
                        }
                        count += 1;
                    }
                }
                Err(e) => tracing::warn!(partition, error = %e, "skipping undecodable batch"),
            }
        }
        if offset == before {
            break;
        }
    }
    count
}
