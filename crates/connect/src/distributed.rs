//! Distributed mode: workers sharing `group.id` split connectors and tasks between them.
//!
//! * **Membership**: each worker is a member of the consumer group `group.id` (its
//!   `client.id` is its worker id, the advertised REST `host:port`), kept alive by the client's
//!   heartbeats. Every worker reads the group's members with DescribeGroups and, when the
//!   group is stable, assigns connectors and tasks round-robin over the sorted worker ids: all
//!   workers compute the same assignment from the same inputs, so no leader is needed. A worker
//!   that dies stops heartbeating; after `session.timeout.ms` the group drops it and the
//!   survivors take over its connectors and tasks.
//! * **Configs** (`config.storage.topic`, compacted, 1 partition): `connector-<name>` →
//!   `{"properties": {...}}` (tombstone on delete), `target-state-<name>` →
//!   `{"state": "PAUSED"}`, plus restart requests. Every worker applies them in log order; a
//!   REST write returns once the worker that took it has read its own record back.
//! * **Offsets** (`offset.storage.topic`, compacted): key `["<connector>", {partition}]`, value
//!   the source offset, as Kafka Connect writes them. A source task reads the topic to its end
//!   before starting, so a task moved to another worker resumes from the committed offsets.
//! * **Statuses** (`status.storage.topic`, compacted): `status-connector-<name>` and
//!   `status-task-<name>-<id>` → `{"state", "trace", "worker_id"}`, so every worker's
//!   `/status` shows the whole cluster.

use crate::config::{Props, PropsExt};
use crate::error::{ConnectError, Result};
use crate::offsets::{offset_key, OffsetStore};
use crate::runtime::{bind_rest, start_rest, RunningWorker};
use crate::worker::{ClusterBackend, Command, State, Status, TargetState, Worker, WorkerConfig};
use bytes::Bytes;
use fjord_client::{
    Acks, Admin, AdminConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode,
    NewTopic, OffsetReset, OffsetSpec, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A compacted topic read from the beginning into a callback, with acknowledged writes.
struct TopicLog {
    topic: String,
    producer: Producer,
    admin: Admin,
    partitions: Vec<TopicPartition>,
    /// Next offset to read per partition (advanced after the callback ran).
    positions: Arc<Mutex<HashMap<i32, i64>>>,
    progress: watch::Receiver<u64>,
    reader: JoinHandle<()>,
}

impl Drop for TopicLog {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

type OnRecord = Box<dyn FnMut(ConsumerRecord) -> BoxFuture<'static, ()> + Send>;

impl TopicLog {
    async fn open(
        config: &WorkerConfig,
        admin: Admin,
        topic: &str,
        mut on_record: OnRecord,
    ) -> Result<TopicLog> {
        // A topic created a moment ago may not be in the metadata yet: wait for its partitions.
        let deadline = Instant::now() + Duration::from_secs(30);
        let count = loop {
            let found = match admin.describe_topics(&[topic]).await {
                Ok(d) => d.first().map(|t| t.partitions.len()).unwrap_or(0),
                Err(e) if e.is_retriable() => 0,
                Err(e) => return Err(e.into()),
            };
            if found > 0 {
                break found;
            }
            if Instant::now() > deadline {
                return Err(ConnectError::Unavailable(format!(
                    "topic {topic} has no partitions"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let partitions: Vec<TopicPartition> = (0..count as i32)
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        let producer = Producer::new(
            ProducerConfig::from_pairs([
                ("bootstrap.servers", config.bootstrap.as_str()),
                (
                    "client.id",
                    &format!("connect-{}-{topic}", config.worker_id),
                ),
            ])?
            .acks(Acks::All)
            .linger_ms(0),
        )?;
        let mut consumer = Consumer::new(
            ConsumerConfig::from_pairs([
                ("bootstrap.servers", config.bootstrap.as_str()),
                (
                    "client.id",
                    &format!("connect-reader-{}-{topic}", config.worker_id),
                ),
            ])?
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false),
        )?;
        consumer.assign(&partitions)?;
        consumer.seek_to_beginning(&partitions)?;
        let positions = Arc::new(Mutex::new(HashMap::new()));
        let (tx, progress) = watch::channel(0u64);
        let pos = positions.clone();
        let reader = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                match consumer.poll(Duration::from_millis(100)).await {
                    Ok(records) => {
                        for r in records {
                            let (p, o) = (r.partition, r.offset);
                            on_record(r).await;
                            pos.lock().insert(p, o + 1);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "connect topic reader");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                n += 1;
                let _ = tx.send(n);
            }
        });
        Ok(TopicLog {
            topic: topic.to_string(),
            producer,
            admin,
            partitions,
            positions,
            progress,
            reader,
        })
    }

    /// Writes a record and waits for the acknowledgement; returns `(partition, offset)`.
    async fn send(&self, key: String, value: Option<serde_json::Value>) -> Result<(i32, i64)> {
        let mut r = ProducerRecord::new(self.topic.clone()).key(key);
        r.value = value.map(|v| Bytes::from(v.to_string()));
        let md = self.producer.send(r).await?.await?;
        Ok((md.partition, md.offset))
    }

    /// Waits until the reader consumed `offset` of `partition`.
    async fn wait_read(&self, partition: i32, offset: i64) -> Result<()> {
        let mut progress = self.progress.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.positions.lock().get(&partition).copied().unwrap_or(0) <= offset {
            if Instant::now() > deadline {
                return Err(ConnectError::Unavailable(format!(
                    "timed out reading {} back to offset {offset}",
                    self.topic
                )));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), progress.changed()).await;
        }
        Ok(())
    }

    /// Waits until everything written to the topic so far was read.
    async fn read_to_end(&self) -> Result<()> {
        let spec: Vec<_> = self
            .partitions
            .iter()
            .map(|tp| (tp.clone(), OffsetSpec::Latest))
            .collect();
        let ends = self.admin.list_offsets(&spec).await?;
        for (tp, end) in ends {
            if end.offset > 0 {
                self.wait_read(tp.partition, end.offset - 1).await?;
            }
        }
        Ok(())
    }
}

/// Source offsets in `offset.storage.topic`.
struct KafkaOffsetStore {
    log: tokio::sync::OnceCell<TopicLog>,
    data: Arc<Mutex<BTreeMap<String, serde_json::Value>>>,
}

impl OffsetStore for KafkaOffsetStore {
    fn entries(&self, connector: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
        crate::offsets::entries_of(&self.data.lock(), connector)
    }

    fn get(&self, connector: &str, partition: &serde_json::Value) -> Option<serde_json::Value> {
        self.data
            .lock()
            .get(&offset_key(connector, partition))
            .cloned()
    }

    fn put(
        &self,
        connector: &str,
        entries: Vec<(serde_json::Value, serde_json::Value)>,
    ) -> BoxFuture<'_, Result<()>> {
        let connector = connector.to_string();
        Box::pin(async move {
            let log = self
                .log
                .get()
                .ok_or_else(|| ConnectError::Unavailable("offset store not open".into()))?;
            for (p, o) in entries {
                let key = offset_key(&connector, &p);
                self.data.lock().insert(key.clone(), o.clone());
                log.send(key, Some(o)).await?;
            }
            Ok(())
        })
    }

    fn sync(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.log.get() {
                Some(log) => log.read_to_end().await,
                None => Ok(()),
            }
        })
    }
}

/// Status records to write, in order (`None`: a tombstone).
type StatusSender = tokio::sync::mpsc::UnboundedSender<(String, Option<serde_json::Value>)>;

struct Backend {
    config_log: tokio::sync::OnceCell<TopicLog>,
    status_tx: tokio::sync::OnceCell<StatusSender>,
}

impl ClusterBackend for Backend {
    fn publish(&self, command: Command) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let log = self
                .config_log
                .get()
                .ok_or_else(|| ConnectError::Unavailable("config topic not open".into()))?;
            let (key, value) = encode_command(&command);
            let (p, o) = log.send(key, value).await?;
            log.wait_read(p, o).await
        })
    }

    fn publish_status(&self, connector: &str, task: Option<u32>, status: Option<&Status>) {
        let Some(tx) = self.status_tx.get() else {
            return;
        };
        let key = match task {
            None => format!("status-connector-{connector}"),
            Some(t) => format!("status-task-{connector}-{t}"),
        };
        let value = status.map(
            |s| json!({"state": s.state.as_str(), "trace": s.trace, "worker_id": s.worker_id}),
        );
        let _ = tx.send((key, value));
    }
}

/// Writes statuses in the order they happened (one writer, so a later state always lands
/// after an earlier one).
fn status_writer(log: Arc<TopicLog>) -> (StatusSender, JoinHandle<()>) {
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, Option<serde_json::Value>)>();
    let task = tokio::spawn(async move {
        while let Some((key, value)) = rx.recv().await {
            let mut r = ProducerRecord::new(log.topic.clone()).key(key);
            r.value = value.map(|v| Bytes::from(v.to_string()));
            // The delivery is not awaited: statuses are advisory and the producer retries.
            if let Err(e) = log.producer.send(r).await {
                tracing::warn!(error = %e, "cannot write a connect status");
            }
        }
    });
    (tx, task)
}

fn encode_command(c: &Command) -> (String, Option<serde_json::Value>) {
    match c {
        Command::PutConnector { name, config } => (
            format!("connector-{name}"),
            config.as_ref().map(|p| json!({"properties": p})),
        ),
        Command::Target { name, target } => (
            format!("target-state-{name}"),
            Some(json!({"state": target.as_str()})),
        ),
        Command::RestartConnector {
            name,
            include_tasks,
            only_failed,
        } => (
            format!("restart-connector-{name}"),
            Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
        ),
        Command::RestartTask { name, task } => {
            (format!("restart-task-{name}"), Some(json!({"task": task})))
        }
    }
}

fn decode_command(key: &str, value: Option<&[u8]>) -> Option<Command> {
    let value: Option<serde_json::Value> = value.and_then(|v| serde_json::from_slice(v).ok());
    if let Some(name) = key.strip_prefix("connector-") {
        let config = match value {
            None => None,
            Some(v) => Some(
                v.get("properties")?
                    .as_object()?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect::<Props>(),
            ),
        };
        return Some(Command::PutConnector {
            name: name.to_string(),
            config,
        });
    }
    let value = value?;
    if let Some(name) = key.strip_prefix("target-state-") {
        return Some(Command::Target {
            name: name.to_string(),
            target: TargetState::parse(value.get("state")?.as_str()?)?,
        });
    }
    if let Some(name) = key.strip_prefix("restart-connector-") {
        return Some(Command::RestartConnector {
            name: name.to_string(),
            include_tasks: value.get("include-tasks")?.as_bool()?,
            only_failed: value.get("only-failed")?.as_bool()?,
        });
    }
    if let Some(name) = key.strip_prefix("restart-task-") {
        return Some(Command::RestartTask {
            name: name.to_string(),
            task: u32::try_from(value.get("task")?.as_u64()?).ok()?,
        });
    }
    None
}

/// A status record: `(connector, task, status)`; `None` status for a tombstone.
fn decode_status(key: &str, value: Option<&[u8]>) -> Option<(String, Option<u32>, Option<Status>)> {
    let status = match value {
        None => None,
        Some(value) => {
            let v: serde_json::Value = serde_json::from_slice(value).ok()?;
            Some(Status {
                state: State::parse(v.get("state")?.as_str()?)?,
                worker_id: v.get("worker_id")?.as_str()?.to_string(),
                trace: v.get("trace").and_then(|t| t.as_str()).map(str::to_string),
            })
        }
    };
    if let Some(name) = key.strip_prefix("status-connector-") {
        return Some((name.to_string(), None, status));
    }
    let rest = key.strip_prefix("status-task-")?;
    let (name, id) = rest.rsplit_once('-')?;
    Some((name.to_string(), Some(id.parse().ok()?), status))
}

async fn ensure_topic(admin: &Admin, props: &Props, key: &str, partitions: i32) -> Result<String> {
    let topic = props
        .required(key)
        .map_err(|_| ConnectError::config(key, format!("distributed mode needs {key}")))?
        .to_string();
    let prefix = key.trim_end_matches(".topic");
    let partitions = props
        .i64_or(&format!("{prefix}.partitions"), i64::from(partitions))?
        .clamp(1, 10_000) as i32;
    let replication = props.i64_or(&format!("{prefix}.replication.factor"), -1)?;
    let replication = i16::try_from(replication).map_err(|_| {
        ConnectError::config(format!("{prefix}.replication.factor"), "out of range")
    })?;
    let new = NewTopic::new(&topic, partitions)
        .replication_factor(replication)
        .config("cleanup.policy", "compact");
    match admin.create_topics(&[new]).await {
        Ok(()) => Ok(topic),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => Ok(topic),
        Err(e) => Err(e.into()),
    }
}

/// Starts a distributed worker from `worker.properties` settings (`group.id`,
/// `config.storage.topic`, `offset.storage.topic`, `status.storage.topic` are required).
pub async fn start_distributed(worker_props: Props) -> Result<RunningWorker> {
    let group = worker_props
        .required("group.id")
        .map_err(|_| ConnectError::config("group.id", "distributed mode needs group.id"))?
        .to_string();
    let (config, listener) = bind_rest(WorkerConfig::from_props(worker_props.clone())?).await?;
    let admin_for = || -> Result<Admin> {
        Ok(Admin::new(AdminConfig::from_pairs([(
            "bootstrap.servers",
            config.bootstrap.as_str(),
        )])?)?)
    };
    let admin = admin_for()?;
    let config_topic = ensure_topic(&admin, &worker_props, "config.storage.topic", 1).await?;
    let offset_topic = ensure_topic(&admin, &worker_props, "offset.storage.topic", 25).await?;
    let status_topic = ensure_topic(&admin, &worker_props, "status.storage.topic", 5).await?;

    let offsets = Arc::new(KafkaOffsetStore {
        log: tokio::sync::OnceCell::new(),
        data: Arc::new(Mutex::new(BTreeMap::new())),
    });
    let worker = Worker::new(config.clone(), offsets.clone());
    worker.set_members(Vec::new()).await;
    let backend = Arc::new(Backend {
        config_log: tokio::sync::OnceCell::new(),
        status_tx: tokio::sync::OnceCell::new(),
    });

    let data = offsets.data.clone();
    let offset_log = TopicLog::open(
        &config,
        admin_for()?,
        &offset_topic,
        Box::new(move |r| {
            if let Some(k) = r.key.as_deref() {
                let key = String::from_utf8_lossy(k).into_owned();
                match r
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice(v).ok())
                {
                    Some(v) => {
                        data.lock().insert(key, v);
                    }
                    None => {
                        data.lock().remove(&key);
                    }
                }
            }
            Box::pin(async {})
        }),
    )
    .await?;
    offset_log.read_to_end().await?;
    let _ = offsets.log.set(offset_log);

    let w = worker.clone();
    let status_log = TopicLog::open(
        &config,
        admin_for()?,
        &status_topic,
        Box::new(move |r| {
            if let Some(k) = r.key.as_deref() {
                if let Some((c, t, s)) =
                    decode_status(&String::from_utf8_lossy(k), r.value.as_deref())
                {
                    w.apply_remote_status(c, t, s);
                }
            }
            Box::pin(async {})
        }),
    )
    .await?;

    let w = worker.clone();
    let config_log = TopicLog::open(
        &config,
        admin_for()?,
        &config_topic,
        Box::new(move |r| {
            let w = w.clone();
            Box::pin(async move {
                let Some(k) = r.key.as_deref() else { return };
                if let Some(cmd) = decode_command(&String::from_utf8_lossy(k), r.value.as_deref()) {
                    w.apply(cmd);
                    w.reconcile().await;
                }
            })
        }),
    )
    .await?;
    config_log.read_to_end().await?;
    status_log.read_to_end().await?;
    let _ = backend.config_log.set(config_log);
    let status_reader = status_log.reader.abort_handle();
    let (status_tx, status_task) = status_writer(Arc::new(status_log));
    let _ = backend.status_tx.set(status_tx);
    worker.set_backend(backend.clone());

    // Group membership.
    let mut member_pairs: Vec<(String, String)> = vec![
        ("bootstrap.servers".into(), config.bootstrap.clone()),
        ("client.id".into(), config.worker_id.clone()),
        (
            "session.timeout.ms".into(),
            worker_props
                .string_or("session.timeout.ms", "10000")
                .to_string(),
        ),
        (
            "heartbeat.interval.ms".into(),
            worker_props
                .string_or("heartbeat.interval.ms", "3000")
                .to_string(),
        ),
    ];
    member_pairs.retain(|(_, v)| !v.is_empty());
    let mut membership = Consumer::new(
        ConsumerConfig::from_pairs(member_pairs)?
            .group_id(&group)
            .enable_auto_commit(false),
    )?;
    membership.subscribe(&[config_topic.as_str()], None)?;
    let w = worker.clone();
    let (leave_tx, mut leave_rx) = tokio::sync::oneshot::channel::<()>();
    let member_task = tokio::spawn(async move {
        let mut last_check: Option<Instant> = None;
        loop {
            tokio::select! {
                polled = membership.poll(Duration::from_millis(200)) => {
                    if let Err(e) = polled {
                        tracing::debug!(error = %e, "connect group membership poll");
                    }
                }
                _ = &mut leave_rx => break,
            }
            if last_check.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
                continue;
            }
            last_check = Some(Instant::now());
            match admin.describe_groups(&[group.as_str()]).await {
                Ok(groups) => {
                    if let Some(g) = groups.into_iter().find(|g| g.group_id == group) {
                        if g.state == "Stable" && !g.members.is_empty() {
                            let members = g.members.into_iter().map(|m| m.client_id).collect();
                            w.set_members(members).await;
                        }
                    }
                }
                Err(ClientError::Timeout(_)) => {}
                Err(e) => tracing::debug!(error = %e, "describe connect group"),
            }
        }
        // A clean shutdown leaves the group (LeaveGroup), so the others take over at once
        // instead of after session.timeout.ms.
        if let Err(e) = membership.close().await {
            tracing::debug!(error = %e, "leaving the connect group");
        }
    });
    let mut running = start_rest(worker, listener)?;
    for handle in [
        offsets.log.get().map(|l| l.reader.abort_handle()),
        backend.config_log.get().map(|l| l.reader.abort_handle()),
        Some(status_reader),
    ]
    .into_iter()
    .flatten()
    {
        running.add_abort(handle);
    }
    running.add_graceful(leave_tx, member_task);
    running.add_background(status_task);
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_config_records() {
        let mut p = Props::new();
        p.insert("connector.class".into(), "FileStreamSink".into());
        for c in [
            Command::PutConnector {
                name: "a-b".into(),
                config: Some(p),
            },
            Command::PutConnector {
                name: "a".into(),
                config: None,
            },
            Command::Target {
                name: "a".into(),
                target: TargetState::Paused,
            },
            Command::RestartConnector {
                name: "a".into(),
                include_tasks: true,
                only_failed: false,
            },
            Command::RestartTask {
                name: "x-1".into(),
                task: 3,
            },
        ] {
            let (k, v) = encode_command(&c);
            let bytes = v.map(|v| v.to_string().into_bytes());
            assert_eq!(decode_command(&k, bytes.as_deref()), Some(c));
        }
    }

    #[test]
    fn statuses_decode_task_ids_after_the_last_dash() {
        let v = br#"{"state":"FAILED","trace":"boom","worker_id":"h:1"}"#;
        let (c, t, s) = decode_status("status-task-my-conn-2", Some(v)).unwrap();
        let s = s.unwrap();
        assert_eq!((c.as_str(), t), ("my-conn", Some(2)));
        assert_eq!(s.state, State::Failed);
        assert_eq!(s.trace.as_deref(), Some("boom"));
        let (c, t, _) = decode_status("status-connector-my-conn", Some(v)).unwrap();
        assert_eq!((c.as_str(), t), ("my-conn", None));
        let (c, t, s) = decode_status("status-task-x-0", None).unwrap();
        assert_eq!((c.as_str(), t, s), ("x", Some(0), None));
    }
}
