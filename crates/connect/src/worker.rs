//! The worker: keeps connector configurations, decides which connectors and tasks run here,
//! and runs task loops.
//!
//! State changes arrive as [`Command`]s. In standalone mode they are applied at once; in
//! distributed mode they are written to the config topic and applied by every worker when read
//! back, so all workers hold the same configurations. [`Worker::reconcile`] then compares what
//! should run on this worker (the assignment) with what runs, stopping and starting tasks.
//!
//! Task loops give at-least-once delivery: a source task's offsets are stored only after the
//! producer acknowledged every record polled before them; a sink task's consumer offsets are
//! committed only after `put` and `flush` returned.

use crate::config::{ConfigDef, ConfigType, Importance, Props, PropsExt, Validator};
use crate::connector::{ConnectorType, SinkTask, SourceTask, SourceTaskContext};
use crate::converter::{converter_from_config, Converter};
use crate::data::SinkRecord;
use crate::error::{ConnectError, Result};
use crate::offsets::{ConnectorOffsets, OffsetStore};
use crate::plugins::{self, TaskInstance};
use crate::transforms::TransformChain;
use fjord_client::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the user asked a connector to do (`PUT /pause`, `/resume`, `/stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Running.
    Started,
    /// Paused: tasks stay assigned but do not process records.
    Paused,
    /// Stopped: the connector and its tasks are shut down.
    Stopped,
}

impl TargetState {
    /// The name written to the config topic.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    /// Parses [`TargetState::as_str`].
    pub fn parse(s: &str) -> Option<TargetState> {
        Some(match s {
            "STARTED" => TargetState::Started,
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => return None,
        })
    }
}

/// The state of a connector or task, as reported by `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not assigned to a worker yet.
    Unassigned,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Failed (see the trace).
    Failed,
    /// Being restarted.
    Restarting,
    /// Stopped.
    Stopped,
}

impl State {
    /// The upper-case name used by Kafka Connect.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }

    /// Parses [`State::as_str`].
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "UNASSIGNED" => State::Unassigned,
            "RUNNING" => State::Running,
            "PAUSED" => State::Paused,
            "FAILED" => State::Failed,
            "RESTARTING" => State::Restarting,
            "STOPPED" => State::Stopped,
            _ => return None,
        })
    }
}

/// The status of a connector or a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// State.
    pub state: State,
    /// The worker reporting it (`host:port`).
    pub worker_id: String,
    /// The error, when failed.
    pub trace: Option<String>,
}

impl Status {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut j = json!({"state": self.state.as_str(), "worker_id": self.worker_id});
        if let (Some(t), Some(o)) = (&self.trace, j.as_object_mut()) {
            o.insert("trace".into(), t.clone().into());
        }
        j
    }
}

/// A change to the cluster's connector state.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Creates, updates (`Some`) or deletes (`None`) a connector.
    PutConnector {
        /// Connector name.
        name: String,
        /// Its configuration.
        config: Option<Props>,
    },
    /// Pauses, resumes or stops a connector.
    Target {
        /// Connector name.
        name: String,
        /// The new target state.
        target: TargetState,
    },
    /// Restarts a connector (and maybe its tasks).
    RestartConnector {
        /// Connector name.
        name: String,
        /// Restart the tasks too.
        include_tasks: bool,
        /// Only restart failed instances.
        only_failed: bool,
    },
    /// Restarts one task.
    RestartTask {
        /// Connector name.
        name: String,
        /// Task id.
        task: u32,
    },
}

/// Worker settings (from `worker.properties`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Every worker property (converters, `producer.*`/`consumer.*` overrides, ...).
    pub props: Props,
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Host and port of the REST listener.
    pub rest_addr: String,
    /// This worker's id: the advertised REST `host:port`.
    pub worker_id: String,
    /// `offset.flush.interval.ms`: how often sink tasks flush and commit.
    pub offset_flush_interval: Duration,
}

impl WorkerConfig {
    /// Reads the worker settings. REST: `listeners` (`http://host:port`) or `rest.host.name` +
    /// `rest.port` (default `0.0.0.0:8083`); `rest.advertised.host.name`/`.port` name it.
    pub fn from_props(props: Props) -> Result<WorkerConfig> {
        let bootstrap = props
            .string_or("bootstrap.servers", "localhost:9092")
            .to_string();
        let rest_addr = match props.list("listeners").first() {
            Some(l) => {
                let hostport = l
                    .strip_prefix("http://")
                    .ok_or_else(|| {
                        ConnectError::config(
                            "listeners",
                            format!("'{l}' must start with http:// (https is not supported)"),
                        )
                    })?
                    .trim_end_matches('/');
                let hostport = if hostport.starts_with(':') {
                    format!("0.0.0.0{hostport}")
                } else {
                    hostport.to_string()
                };
                if !hostport.contains(':') {
                    return Err(ConnectError::config(
                        "listeners",
                        format!("'{l}' has no port"),
                    ));
                }
                hostport
            }
            None => format!(
                "{}:{}",
                props.string_or("rest.host.name", "0.0.0.0"),
                props.i64_or("rest.port", 8083)?
            ),
        };
        let (host, port) = rest_addr.rsplit_once(':').unwrap_or((&rest_addr, "8083"));
        let adv_host = props
            .get("rest.advertised.host.name")
            .cloned()
            .unwrap_or_else(|| {
                if host == "0.0.0.0" {
                    "localhost".into()
                } else {
                    host.to_string()
                }
            });
        let adv_port = props
            .get("rest.advertised.port")
            .cloned()
            .unwrap_or_else(|| port.to_string());
        let flush = props.i64_or("offset.flush.interval.ms", 10_000)?;
        if flush < 0 {
            return Err(ConnectError::config(
                "offset.flush.interval.ms",
                "must be >= 0",
            ));
        }
        Ok(WorkerConfig {
            worker_id: format!("{adv_host}:{adv_port}"),
            bootstrap,
            rest_addr,
            offset_flush_interval: Duration::from_millis(flush.unsigned_abs()),
            props,
        })
    }

    /// Settings under `prefix` (e.g. `producer.`), prefix removed.
    fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.props
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|r| (r.to_string(), v.clone())))
            .collect()
    }
}

/// Settings every connector accepts, besides its own.
pub fn common_config_def(kind: Option<ConnectorType>) -> ConfigDef {
    let mut def = ConfigDef::new()
        .define(
            "name",
            ConfigType::String,
            None,
            Importance::High,
            "Globally unique name to use for this connector.",
        )
        .with_validator(Validator::NonEmpty)
        .define(
            "connector.class",
            ConfigType::String,
            None,
            Importance::High,
            "Name or alias of the class for this connector.",
        )
        .define(
            "tasks.max",
            ConfigType::Int,
            Some("1"),
            Importance::High,
            "Maximum number of tasks to use for this connector.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: i64::from(i32::MAX),
        })
        .define(
            "key.converter",
            ConfigType::Class,
            Some(""),
            Importance::Low,
            "Converter class for keys (default: the worker's).",
        )
        .define(
            "value.converter",
            ConfigType::Class,
            Some(""),
            Importance::Low,
            "Converter class for values (default: the worker's).",
        )
        .define(
            "transforms",
            ConfigType::List,
            Some(""),
            Importance::Low,
            "Aliases for the transformations to be applied to records.",
        )
        .in_group("Transforms")
        .define(
            "predicates",
            ConfigType::List,
            Some(""),
            Importance::Low,
            "Aliases for the predicates used by transformations.",
        )
        .in_group("Predicates")
        .define(
            "errors.tolerance",
            ConfigType::String,
            Some("none"),
            Importance::Medium,
            "none: a bad record fails the task; all: bad records are skipped.",
        )
        .with_validator(Validator::OneOf(vec!["none", "all"]))
        .in_group("Error Handling");
    if kind == Some(ConnectorType::Sink) {
        def = def
            .define(
                "topics",
                ConfigType::List,
                None,
                Importance::High,
                "List of topics to consume, separated by commas.",
            )
            .with_validator(Validator::NonEmpty);
    }
    def
}

/// The error message Kafka Connect gives for an invalid connector configuration.
fn invalid_config_message(errors: &[(String, String)]) -> String {
    let mut m = format!(
        "Connector configuration is invalid and contains the following {} error(s):",
        errors.len()
    );
    for (_, e) in errors {
        m.push('\n');
        m.push_str(e);
    }
    m.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
    m
}

/// Validates a connector configuration; `Ok(json)` is Kafka's `ConfigInfos` document.
pub fn validate_config(plugin_name: &str, config: &Props) -> Result<serde_json::Value> {
    let plugin = plugins::find(plugin_name)
        .ok_or_else(|| ConnectError::UnknownPlugin(plugin_name.to_string()))?;
    let connector = (plugin.new_connector)();
    let def = common_config_def(Some(plugin.kind)).merge(connector.config_def());
    let simple = plugin.class.rsplit('.').next().unwrap_or(plugin.class);
    let mut config = config.clone();
    config
        .entry("connector.class".into())
        .or_insert_with(|| plugin.class.to_string());
    let mut infos = def.infos_json(simple, &config);
    let mut extra = Vec::new();
    if let Err(ConnectError::Config { key, message }) = TransformChain::from_config(&config) {
        extra.push((key, message));
    }
    for key in ["key.converter", "value.converter"] {
        if config.get(key).is_some_and(|v| !v.is_empty()) {
            if let Err(ConnectError::Config { key, message }) = converter_from_config(key, &config)
            {
                extra.push((key, message));
            }
        }
    }
    if let Some(o) = infos.as_object_mut() {
        let count = o.get("error_count").and_then(|c| c.as_u64()).unwrap_or(0);
        o.insert("error_count".into(), (count + extra.len() as u64).into());
        if let Some(configs) = o.get_mut("configs").and_then(|c| c.as_array_mut()) {
            for (key, message) in extra {
                configs.push(json!({
                    "definition": {"name": key, "type": "STRING", "required": false, "default_value": null,
                        "importance": "LOW", "documentation": "", "group": "Transforms", "width": "NONE",
                        "display_name": key, "dependents": [], "order": -1},
                    "value": {"name": key, "value": config.get(&key), "recommended_values": [],
                        "errors": [message], "visible": true}
                }));
            }
        }
    }
    Ok(infos)
}

fn validation_errors(infos: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in infos["configs"].as_array().into_iter().flatten() {
        for e in c["value"]["errors"].as_array().into_iter().flatten() {
            out.push((
                c["value"]["name"].as_str().unwrap_or_default().to_string(),
                e.as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

struct ConnectorEntry {
    config: Props,
    target: TargetState,
    kind: ConnectorType,
    task_configs: Vec<Props>,
    failure: Option<String>,
    generation: u64,
}

struct LocalTask {
    control: watch::Sender<TargetState>,
    handle: JoinHandle<()>,
    generation: u64,
}

#[derive(Default)]
struct WorkerState {
    connectors: BTreeMap<String, ConnectorEntry>,
    statuses: BTreeMap<(String, Option<u32>), Status>,
    local_tasks: BTreeMap<(String, u32), LocalTask>,
    local_connectors: BTreeSet<String>,
    members: Vec<String>,
    next_generation: u64,
}

/// Publishes commands and statuses (the distributed backend).
pub trait ClusterBackend: Send + Sync {
    /// Writes a command; returns after this worker applied it.
    fn publish(&self, command: Command) -> futures::future::BoxFuture<'_, Result<()>>;
    /// Records a status change for other workers.
    /// `None` writes a tombstone (the connector was deleted).
    fn publish_status(&self, connector: &str, task: Option<u32>, status: Option<&Status>);
}

pub(crate) struct Inner {
    pub(crate) config: WorkerConfig,
    pub(crate) offsets: Arc<dyn OffsetStore>,
    state: Mutex<WorkerState>,
    reconciling: tokio::sync::Mutex<()>,
    backend: Mutex<Option<Arc<dyn ClusterBackend>>>,
    /// Set by shutdown/abort: nothing starts any more.
    closed: std::sync::atomic::AtomicBool,
    cluster_id: tokio::sync::OnceCell<String>,
}

/// A Connect worker (standalone or a member of a distributed cluster).
#[derive(Clone)]
pub struct Worker {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker({})", self.inner.config.worker_id)
    }
}

impl Worker {
    /// A worker that runs everything itself (standalone mode) until members are set.
    pub fn new(config: WorkerConfig, offsets: Arc<dyn OffsetStore>) -> Worker {
        let me = config.worker_id.clone();
        Worker {
            inner: Arc::new(Inner {
                config,
                offsets,
                state: Mutex::new(WorkerState {
                    members: vec![me],
                    ..Default::default()
                }),
                reconciling: tokio::sync::Mutex::new(()),
                backend: Mutex::new(None),
                closed: std::sync::atomic::AtomicBool::new(false),
                cluster_id: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The Kafka cluster id (asked once with DescribeCluster; `None` while unreachable).
    pub async fn kafka_cluster_id(&self) -> Option<String> {
        let bootstrap = self.inner.config.bootstrap.clone();
        self.inner
            .cluster_id
            .get_or_try_init(|| async move {
                let admin = fjord_client::Admin::new(
                    fjord_client::AdminConfig::new(bootstrap).default_api_timeout_ms(5000),
                )?;
                let cluster = admin.describe_cluster().await;
                admin.close();
                Ok::<_, ConnectError>(cluster?.cluster_id)
            })
            .await
            .ok()
            .cloned()
    }

    /// Whether the worker was shut down or aborted.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sends future commands through `backend` (distributed mode).
    pub fn set_backend(&self, backend: Arc<dyn ClusterBackend>) {
        *self.inner.backend.lock() = Some(backend);
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.inner.config.worker_id
    }

    /// The worker settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Replaces the group members (sorted worker ids) and rebalances.
    pub async fn set_members(&self, mut members: Vec<String>) {
        members.sort();
        members.dedup();
        {
            let mut st = self.inner.state.lock();
            if st.members == members {
                return;
            }
            tracing::info!(worker = %self.worker_id(), ?members, "connect group members changed");
            st.members = members;
        }
        self.reconcile().await;
    }

    /// Current members.
    pub fn members(&self) -> Vec<String> {
        self.inner.state.lock().members.clone()
    }

    async fn submit(&self, command: Command) -> Result<()> {
        let backend = self.inner.backend.lock().clone();
        match backend {
            Some(b) => b.publish(command).await,
            None => {
                self.apply(command);
                self.reconcile().await;
                Ok(())
            }
        }
    }

    /// Applies a command to the local state (without reconciling).
    pub fn apply(&self, command: Command) {
        let mut st = self.inner.state.lock();
        let generation = st.next_generation + 1;
        st.next_generation = generation;
        match command {
            Command::PutConnector { name, config: None } => {
                st.connectors.remove(&name);
                st.statuses.retain(|(c, _), _| *c != name);
            }
            Command::PutConnector {
                name,
                config: Some(config),
            } => {
                let (kind, task_configs, failure) = compute_tasks(&config);
                let target = st
                    .connectors
                    .get(&name)
                    .map(|e| e.target)
                    .unwrap_or(TargetState::Started);
                st.connectors.insert(
                    name,
                    ConnectorEntry {
                        config,
                        target,
                        kind,
                        task_configs,
                        failure,
                        generation,
                    },
                );
            }
            Command::Target { name, target } => {
                if let Some(e) = st.connectors.get_mut(&name) {
                    if e.target == TargetState::Stopped && target != TargetState::Stopped {
                        e.generation = generation;
                    }
                    e.target = target;
                }
            }
            Command::RestartConnector {
                name,
                include_tasks,
                only_failed,
            } => {
                let failed = |st: &WorkerState, task: Option<u32>| {
                    st.statuses
                        .get(&(name.clone(), task))
                        .is_some_and(|s| s.state == State::Failed)
                };
                let connector_failed = failed(&st, None);
                let failed_tasks: Vec<u32> = st
                    .local_tasks
                    .keys()
                    .filter(|(c, _)| *c == name)
                    .map(|(_, t)| *t)
                    .filter(|t| failed(&st, Some(*t)))
                    .collect();
                if let Some(e) = st.connectors.get_mut(&name) {
                    if include_tasks && !only_failed {
                        e.generation = generation;
                    } else if !only_failed || connector_failed {
                        // Recompute task configs (a failed connector may start now).
                        let (kind, task_configs, failure) = compute_tasks(&e.config);
                        e.kind = kind;
                        if task_configs != e.task_configs || failure != e.failure {
                            e.generation = generation;
                        }
                        e.task_configs = task_configs;
                        e.failure = failure;
                    }
                }
                if include_tasks && only_failed {
                    for t in failed_tasks {
                        if let Some(local) = st.local_tasks.get_mut(&(name.clone(), t)) {
                            local.generation = 0;
                        }
                    }
                }
            }
            Command::RestartTask { name, task } => {
                if let Some(local) = st.local_tasks.get_mut(&(name, task)) {
                    local.generation = 0;
                }
            }
        }
    }

    /// Records a status read from the status topic (distributed mode).
    pub fn apply_remote_status(
        &self,
        connector: String,
        task: Option<u32>,
        status: Option<Status>,
    ) {
        // Kept even before this worker read the connector's config: the topics are read
        // independently, so a status can arrive first. This worker's own records are applied
        // too: per key, the status topic's order is the truth every worker converges to (a
        // record read late must not leave an older owner's status behind).
        let mut st = self.inner.state.lock();
        match status {
            Some(status) => {
                st.statuses.insert((connector, task), status);
            }
            None => {
                st.statuses.remove(&(connector, task));
            }
        }
    }

    fn set_status(&self, connector: &str, task: Option<u32>, state: State, trace: Option<String>) {
        set_status(&self.inner, connector, task, state, trace);
    }

    /// Brings running tasks in line with the configurations and the assignment.
    pub async fn reconcile(&self) {
        let _serial = self.inner.reconciling.lock().await;
        if self.is_closed() {
            return;
        }
        let me = self.inner.config.worker_id.clone();
        let mut to_stop = Vec::new();
        let mut to_start = Vec::new();
        let mut connector_updates = Vec::new();
        {
            let mut st = self.inner.state.lock();
            let members = st.members.clone();
            let connector_owners = assign(st.connectors.keys().cloned().collect(), &members);
            let task_units: Vec<String> = st
                .connectors
                .iter()
                .filter(|(_, e)| e.target != TargetState::Stopped && e.failure.is_none())
                .flat_map(|(name, e)| (0..e.task_configs.len()).map(move |t| task_unit(name, t)))
                .collect();
            let task_owners = assign(task_units, &members);
            let mut desired: BTreeMap<(String, u32), (u64, TargetState, Props)> = BTreeMap::new();
            let mut my_connectors = BTreeSet::new();
            for (name, e) in st.connectors.iter() {
                if connector_owners.get(name) == Some(&me) {
                    my_connectors.insert(name.clone());
                    let status = match (&e.failure, e.target) {
                        (Some(f), _) => (State::Failed, Some(f.clone())),
                        (None, TargetState::Started) => (State::Running, None),
                        (None, TargetState::Paused) => (State::Paused, None),
                        (None, TargetState::Stopped) => (State::Stopped, None),
                    };
                    connector_updates.push((name.clone(), status));
                }
                if e.target == TargetState::Stopped || e.failure.is_some() {
                    continue;
                }
                for (t, cfg) in e.task_configs.iter().enumerate() {
                    if task_owners.get(&task_unit(name, t)) == Some(&me) {
                        let mut props = e.config.clone();
                        props.extend(cfg.clone());
                        desired.insert((name.clone(), t as u32), (e.generation, e.target, props));
                    }
                }
            }
            // Drop statuses of tasks that no longer exist.
            let task_counts: BTreeMap<String, usize> = st
                .connectors
                .iter()
                .map(|(n, e)| {
                    let count = if e.target == TargetState::Stopped || e.failure.is_some() {
                        0
                    } else {
                        e.task_configs.len()
                    };
                    (n.clone(), count)
                })
                .collect();
            st.statuses
                .retain(|(c, t), _| match (t, task_counts.get(c)) {
                    (Some(t), Some(n)) => (*t as usize) < *n,
                    _ => true,
                });
            let running: Vec<(String, u32)> = st.local_tasks.keys().cloned().collect();
            for key in running {
                let keep = match (desired.get(&key), st.local_tasks.get(&key)) {
                    // A failed task stays failed until restarted (as in Kafka Connect).
                    (Some((g, _, _)), Some(l)) => *g == l.generation,
                    _ => false,
                };
                if !keep {
                    if let Some(l) = st.local_tasks.remove(&key) {
                        let _ = l.control.send(TargetState::Stopped);
                        to_stop.push((key, l.handle));
                    }
                }
            }
            for (key, (generation, target, props)) in desired {
                match st.local_tasks.get(&key) {
                    Some(l) => {
                        if *l.control.borrow() != target {
                            let _ = l.control.send(target);
                        }
                    }
                    None => to_start.push((key, generation, target, props)),
                }
            }
            st.local_connectors = my_connectors;
        }
        for (name, (state, trace)) in connector_updates {
            let current = self
                .inner
                .state
                .lock()
                .statuses
                .get(&(name.clone(), None))
                .cloned();
            if current.as_ref().map(|s| (s.state, &s.worker_id, &s.trace))
                != Some((state, &me, &trace))
            {
                self.set_status(&name, None, state, trace);
            }
        }
        if !to_stop.is_empty() || !to_start.is_empty() {
            let stop: Vec<_> = to_stop.iter().map(|(k, _)| k.clone()).collect();
            let start: Vec<_> = to_start.iter().map(|(k, ..)| k.clone()).collect();
            tracing::debug!(worker = %me, ?stop, ?start, "reconcile");
        }
        for ((name, task), handle) in to_stop {
            if tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .is_err()
            {
                tracing::warn!(connector = %name, task, "task did not stop within 30 s");
            }
        }
        for ((name, task), generation, target, props) in to_start {
            let (control, rx) = watch::channel(target);
            self.set_status(&name, Some(task), State::Running, None);
            let handle = tokio::spawn(run_task(self.clone(), name.clone(), task, props, rx));
            self.inner.state.lock().local_tasks.insert(
                (name, task),
                LocalTask {
                    control,
                    handle,
                    generation,
                },
            );
        }
    }

    /// Stops every local task (flushing and committing) and waits for them.
    pub async fn shutdown(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _serial = self.inner.reconciling.lock().await;
        let tasks: Vec<_> = std::mem::take(&mut self.inner.state.lock().local_tasks)
            .into_values()
            .collect();
        for t in &tasks {
            let _ = t.control.send(TargetState::Stopped);
        }
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t.handle).await;
        }
    }

    /// Aborts every local task without flushing or committing (simulates a crash in tests).
    pub fn abort(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let tasks: Vec<_> = std::mem::take(&mut self.inner.state.lock().local_tasks)
            .into_values()
            .collect();
        for t in tasks {
            t.handle.abort();
        }
    }

    // ---- the operations behind the REST API ----

    /// Connector names.
    pub fn connectors(&self) -> Vec<String> {
        self.inner.state.lock().connectors.keys().cloned().collect()
    }

    fn with_connector<T>(&self, name: &str, f: impl FnOnce(&ConnectorEntry) -> T) -> Result<T> {
        self.inner
            .state
            .lock()
            .connectors
            .get(name)
            .map(f)
            .ok_or_else(|| ConnectError::NotFound(name.to_string()))
    }

    /// `GET /connectors/{name}`: name, config, tasks, type.
    pub fn connector_info(&self, name: &str) -> Result<serde_json::Value> {
        self.with_connector(name, |e| {
            let tasks: Vec<_> = (0..visible_tasks(e))
                .map(|t| json!({"connector": name, "task": t}))
                .collect();
            json!({"name": name, "config": e.config, "tasks": tasks, "type": e.kind.as_str()})
        })
    }

    /// A connector's configuration.
    pub fn connector_config(&self, name: &str) -> Result<Props> {
        self.with_connector(name, |e| e.config.clone())
    }

    /// `GET /connectors/{name}/tasks`.
    pub fn task_configs(&self, name: &str) -> Result<serde_json::Value> {
        self.with_connector(name, |e| {
            let tasks: Vec<_> = e
                .task_configs
                .iter()
                .take(visible_tasks(e))
                .enumerate()
                .map(|(t, c)| json!({"id": {"connector": name, "task": t}, "config": c}))
                .collect();
            serde_json::Value::Array(tasks)
        })
    }

    /// `GET /connectors/{name}/offsets` (KIP-875): source offsets from the offset store, sink
    /// offsets from the consumer group `connect-<name>`.
    pub async fn offsets(&self, name: &str) -> Result<serde_json::Value> {
        let kind = self.with_connector(name, |e| e.kind)?;
        let offsets: Vec<serde_json::Value> = match kind {
            ConnectorType::Source => self
                .inner
                .offsets
                .entries(name)
                .into_iter()
                .map(|(p, o)| json!({"partition": p, "offset": o}))
                .collect(),
            ConnectorType::Sink => {
                let admin = fjord_client::Admin::new(fjord_client::AdminConfig::new(
                    self.inner.config.bootstrap.clone(),
                ))?;
                let committed = admin
                    .list_consumer_group_offsets(&format!("connect-{name}"))
                    .await;
                admin.close();
                committed?
                    .into_iter()
                    .map(|(tp, o)| {
                        json!({
                            "partition": {"kafka_topic": tp.topic, "kafka_partition": tp.partition},
                            "offset": {"kafka_offset": o},
                        })
                    })
                    .collect()
            }
        };
        Ok(json!({ "offsets": offsets }))
    }

    /// `GET /connectors/{name}/status`.
    pub fn status(&self, name: &str) -> Result<serde_json::Value> {
        let st = self.inner.state.lock();
        let e = st
            .connectors
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.to_string()))?;
        let unassigned = || Status {
            state: State::Unassigned,
            worker_id: String::new(),
            trace: None,
        };
        let connector = st
            .statuses
            .get(&(name.to_string(), None))
            .cloned()
            .unwrap_or_else(unassigned);
        let tasks: Vec<_> = (0..visible_tasks(e) as u32)
            .map(|t| {
                let s = st
                    .statuses
                    .get(&(name.to_string(), Some(t)))
                    .cloned()
                    .unwrap_or_else(unassigned);
                let mut j = s.to_json();
                if let Some(o) = j.as_object_mut() {
                    o.insert("id".into(), t.into());
                }
                j
            })
            .collect();
        Ok(json!({
            "name": name,
            "connector": connector.to_json(),
            "tasks": tasks,
            "type": e.kind.as_str(),
        }))
    }

    /// `GET /connectors/{name}/tasks/{id}/status`.
    pub fn task_status(&self, name: &str, task: u32) -> Result<serde_json::Value> {
        let status = self.status(name)?;
        status["tasks"]
            .as_array()
            .and_then(|t| t.get(task as usize))
            .cloned()
            .ok_or_else(|| ConnectError::NotFound(format!("{name} task {task}")))
    }

    /// Validates and stores a connector configuration; `Ok(true)` when it was created.
    pub async fn put_connector_config(&self, name: &str, mut config: Props) -> Result<bool> {
        config.insert("name".into(), name.to_string());
        let class = config
            .get("connector.class")
            .cloned()
            .ok_or_else(|| ConnectError::config("connector.class", invalid_config_message(&[(
                "connector.class".into(),
                "Missing required configuration \"connector.class\" which has no default value.".into(),
            )])))?;
        let infos = validate_config(&class, &config)?;
        let errors = validation_errors(&infos);
        if !errors.is_empty() {
            return Err(ConnectError::config(
                errors[0].0.clone(),
                invalid_config_message(&errors),
            ));
        }
        let created = !self.inner.state.lock().connectors.contains_key(name);
        self.submit(Command::PutConnector {
            name: name.to_string(),
            config: Some(config),
        })
        .await?;
        Ok(created)
    }

    /// Creates a connector; fails when the name is taken.
    pub async fn create_connector(&self, name: &str, config: Props) -> Result<()> {
        if self.inner.state.lock().connectors.contains_key(name) {
            return Err(ConnectError::AlreadyExists(name.to_string()));
        }
        self.put_connector_config(name, config).await.map(|_| ())
    }

    /// Deletes a connector.
    pub async fn delete_connector(&self, name: &str) -> Result<()> {
        self.with_connector(name, |_| ())?;
        let keys: Vec<Option<u32>> = {
            let st = self.inner.state.lock();
            st.statuses
                .keys()
                .filter(|(c, _)| c == name)
                .map(|(_, t)| *t)
                .collect()
        };
        self.submit(Command::PutConnector {
            name: name.to_string(),
            config: None,
        })
        .await?;
        // Tombstones let compaction drop the deleted connector's statuses.
        let backend = self.inner.backend.lock().clone();
        if let Some(b) = backend {
            for task in keys {
                b.publish_status(name, task, None);
            }
        }
        Ok(())
    }

    /// Pauses, resumes or stops a connector.
    pub async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        self.with_connector(name, |_| ())?;
        self.submit(Command::Target {
            name: name.to_string(),
            target,
        })
        .await
    }

    /// Restarts a connector (and maybe its tasks).
    pub async fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        self.with_connector(name, |_| ())?;
        self.submit(Command::RestartConnector {
            name: name.to_string(),
            include_tasks,
            only_failed,
        })
        .await
    }

    /// Restarts one task.
    pub async fn restart_task(&self, name: &str, task: u32) -> Result<()> {
        let count = self.with_connector(name, visible_tasks)?;
        if task as usize >= count {
            return Err(ConnectError::NotFound(format!("Task {name}-{task}")));
        }
        self.submit(Command::RestartTask {
            name: name.to_string(),
            task,
        })
        .await
    }
}

fn task_unit(connector: &str, task: usize) -> String {
    format!("{connector}\u{0}{task}")
}

fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Assigns `units` (connectors or tasks) to `members`: every member computes the same result.
///
/// Rendezvous hashing with bounded loads: each unit goes to the member that ranks highest
/// for it among those holding fewer than `ceil(units / members)`. Loads differ by at most one,
/// adding a unit rarely moves others, and when a member leaves mostly its own units move.
pub fn assign(mut units: Vec<String>, members: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if members.is_empty() {
        return out;
    }
    let cap = units.len().div_ceil(members.len()).max(1);
    units.sort_by_key(|u| (fnv1a(&[u]), u.clone()));
    let mut load: BTreeMap<&str, usize> = members.iter().map(|m| (m.as_str(), 0)).collect();
    for unit in units {
        let mut ranked: Vec<&String> = members.iter().collect();
        ranked.sort_by_key(|m| (std::cmp::Reverse(fnv1a(&[&unit, m])), m.as_str()));
        if let Some(owner) = ranked
            .into_iter()
            .find(|m| load.get(m.as_str()).copied().unwrap_or(0) < cap)
        {
            *load.entry(owner.as_str()).or_default() += 1;
            out.insert(unit, owner.clone());
        }
    }
    out
}

fn visible_tasks(e: &ConnectorEntry) -> usize {
    if e.target == TargetState::Stopped || e.failure.is_some() {
        0
    } else {
        e.task_configs.len()
    }
}

fn set_status(
    inner: &Arc<Inner>,
    connector: &str,
    task: Option<u32>,
    state: State,
    trace: Option<String>,
) {
    let status = Status {
        state,
        worker_id: inner.config.worker_id.clone(),
        trace,
    };
    {
        let mut st = inner.state.lock();
        if !st.connectors.contains_key(connector) {
            return;
        }
        st.statuses
            .insert((connector.to_string(), task), status.clone());
    }
    let backend = inner.backend.lock().clone();
    if let Some(b) = backend {
        b.publish_status(connector, task, Some(&status));
    }
}

/// Starts a connector instance to compute its task configurations.
fn compute_tasks(config: &Props) -> (ConnectorType, Vec<Props>, Option<String>) {
    let class = config.get("connector.class").cloned().unwrap_or_default();
    let Some(plugin) = plugins::find(&class) else {
        return (
            ConnectorType::Source,
            Vec::new(),
            Some(ConnectError::UnknownPlugin(class).to_string()),
        );
    };
    let max_tasks = config
        .i64_or("tasks.max", 1)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1)
        .max(1);
    let mut connector = (plugin.new_connector)();
    let result = connector
        .start(config)
        .and_then(|()| connector.task_configs(max_tasks));
    let _ = connector.stop();
    match result {
        Ok(mut tasks) => {
            tasks.truncate(max_tasks);
            (plugin.kind, tasks, None)
        }
        Err(e) => (plugin.kind, Vec::new(), Some(e.to_string())),
    }
}

/// Converter settings: the worker's, overridden by the connector's.
fn converters(
    worker: &WorkerConfig,
    props: &Props,
) -> Result<(Box<dyn Converter>, Box<dyn Converter>)> {
    let mut merged: Props = worker
        .props
        .iter()
        .filter(|(k, _)| k.starts_with("key.converter") || k.starts_with("value.converter"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in props {
        if (k.starts_with("key.converter") || k.starts_with("value.converter")) && !v.is_empty() {
            merged.insert(k.clone(), v.clone());
        }
    }
    Ok((
        converter_from_config("key.converter", &merged)?,
        converter_from_config("value.converter", &merged)?,
    ))
}

async fn run_task(
    worker: Worker,
    name: String,
    task: u32,
    props: Props,
    control: watch::Receiver<TargetState>,
) {
    let plugin = props.get("connector.class").and_then(|c| plugins::find(c));
    let result = match plugin.map(|p| (p.new_task)()) {
        None => Err(ConnectError::UnknownPlugin(
            props.get("connector.class").cloned().unwrap_or_default(),
        )),
        Some(TaskInstance::Source(t)) => source_loop(&worker, &name, task, props, t, control).await,
        Some(TaskInstance::Sink(t)) => sink_loop(&worker, &name, task, props, t, control).await,
    };
    match result {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(connector = %name, task, error = %e, "task failed");
            worker.set_status(&name, Some(task), State::Failed, Some(e.to_string()));
        }
    }
}

/// Waits while paused; `false` when the task must stop.
async fn wait_until_started(
    worker: &Worker,
    name: &str,
    task: u32,
    control: &mut watch::Receiver<TargetState>,
    paused: &mut bool,
) -> bool {
    loop {
        let target = *control.borrow_and_update();
        match target {
            TargetState::Stopped => return false,
            TargetState::Started => {
                if *paused {
                    *paused = false;
                    worker.set_status(name, Some(task), State::Running, None);
                }
                return true;
            }
            TargetState::Paused => {
                if !*paused {
                    *paused = true;
                    worker.set_status(name, Some(task), State::Paused, None);
                }
                if control.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

fn skip_or_fail(tolerate: bool, name: &str, e: ConnectError) -> Result<()> {
    if tolerate {
        tracing::warn!(connector = %name, error = %e, "skipping a record (errors.tolerance=all)");
        Ok(())
    } else {
        Err(e)
    }
}

async fn source_loop(
    worker: &Worker,
    name: &str,
    task: u32,
    props: Props,
    mut source: Box<dyn SourceTask>,
    mut control: watch::Receiver<TargetState>,
) -> Result<()> {
    let cfg = &worker.inner.config;
    let chain = TransformChain::from_config(&props)?;
    let (key_conv, value_conv) = converters(cfg, &props)?;
    let tolerate = props.string_or("errors.tolerance", "none") == "all";
    let producer_config = ProducerConfig::from_pairs(
        [("bootstrap.servers".to_string(), cfg.bootstrap.clone())]
            .into_iter()
            .chain(cfg.prefixed("producer."))
            .chain([(
                "client.id".to_string(),
                format!("connector-producer-{name}-{task}"),
            )]),
    )?
    .acks(Acks::All);
    let producer = Producer::new(producer_config)?;
    let context = SourceTaskContext {
        offsets: Arc::new(ConnectorOffsets {
            store: worker.inner.offsets.clone(),
            connector: name.to_string(),
        }),
    };
    worker.inner.offsets.sync().await?;
    source.start(props.clone(), context).await?;
    tracing::debug!(connector = %name, task, "source task started");
    let mut paused = false;
    let result: Result<()> = async {
        while wait_until_started(worker, name, task, &mut control, &mut paused).await {
            let records = tokio::select! {
                r = source.poll() => r?,
                _ = control.changed() => continue,
            };
            if records.is_empty() {
                continue;
            }
            tracing::debug!(connector = %name, task, records = records.len(), "source poll");
            let mut offsets: BTreeMap<String, (serde_json::Value, serde_json::Value)> =
                BTreeMap::new();
            let mut deliveries = Vec::with_capacity(records.len());
            for r in records {
                offsets.insert(
                    r.source_partition.to_string(),
                    (r.source_partition, r.source_offset),
                );
                let rec = match chain.apply(r.record, None) {
                    Ok(Some(rec)) => rec,
                    Ok(None) => continue,
                    Err(e) => {
                        skip_or_fail(tolerate, name, e)?;
                        continue;
                    }
                };
                let converted = key_conv
                    .from_connect(&rec.topic, rec.key_schema.as_ref(), &rec.key)
                    .and_then(|k| {
                        Ok((
                            k,
                            value_conv.from_connect(
                                &rec.topic,
                                rec.value_schema.as_ref(),
                                &rec.value,
                            )?,
                        ))
                    });
                let (key, value) = match converted {
                    Ok(kv) => kv,
                    Err(e) => {
                        skip_or_fail(tolerate, name, e)?;
                        continue;
                    }
                };
                let mut out = ProducerRecord::new(rec.topic);
                out.key = key;
                out.value = value;
                out.partition = rec.kafka_partition;
                out.timestamp = rec.timestamp;
                out.headers = rec.headers;
                deliveries.push(producer.send(out).await?);
            }
            for d in deliveries {
                d.await?;
            }
            worker
                .inner
                .offsets
                .put(name, offsets.into_values().collect())
                .await?;
            source.commit().await?;
        }
        Ok(())
    }
    .await;
    let stopped = source.stop().await;
    let _ = producer.close().await;
    result.and(stopped)
}

async fn sink_loop(
    worker: &Worker,
    name: &str,
    task: u32,
    props: Props,
    mut sink: Box<dyn SinkTask>,
    mut control: watch::Receiver<TargetState>,
) -> Result<()> {
    let cfg = &worker.inner.config;
    let chain = TransformChain::from_config(&props)?;
    let (key_conv, value_conv) = converters(cfg, &props)?;
    let tolerate = props.string_or("errors.tolerance", "none") == "all";
    let topics = props.list("topics");
    if topics.is_empty() {
        return Err(ConnectError::config(
            "topics",
            "a sink connector needs topics",
        ));
    }
    // Topics that do not exist yet (a source elsewhere creates them on first write) are
    // noticed at the next metadata refresh: refresh every 5 s unless `consumer.` says otherwise.
    let consumer_config = ConsumerConfig::from_pairs(
        [
            ("bootstrap.servers".to_string(), cfg.bootstrap.clone()),
            ("metadata.max.age.ms".to_string(), "5000".to_string()),
        ]
        .into_iter()
        .chain(cfg.prefixed("consumer."))
        .chain([(
            "client.id".to_string(),
            format!("connector-consumer-{name}-{task}"),
        )]),
    )?
    .group_id(format!("connect-{name}"))
    .enable_auto_commit(false)
    .auto_offset_reset(OffsetReset::Earliest);
    let mut consumer = Consumer::new(consumer_config)?;
    consumer.subscribe(&topics, None)?;
    sink.start(props.clone()).await?;
    tracing::debug!(connector = %name, task, "sink task started");
    let mut paused = false;
    let mut dirty = false;
    let mut last_commit = Instant::now();
    let result: Result<()> = async {
        while wait_until_started(worker, name, task, &mut control, &mut paused).await {
            let polled = match consumer.poll(Duration::from_millis(200)).await {
                Ok(p) => p,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(connector = %name, task, error = %e, "sink poll failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut batch = Vec::with_capacity(polled.len());
            for r in polled {
                let topic = r.topic.to_string();
                let converted = key_conv
                    .to_connect(&topic, r.key.as_deref())
                    .and_then(|k| Ok((k, value_conv.to_connect(&topic, r.value.as_deref())?)));
                let ((key_schema, key), (value_schema, value)) = match converted {
                    Ok(kv) => kv,
                    Err(e) => {
                        skip_or_fail(tolerate, name, e)?;
                        continue;
                    }
                };
                let rec = crate::data::ConnectRecord {
                    topic,
                    kafka_partition: Some(r.partition),
                    key_schema,
                    key,
                    value_schema,
                    value,
                    timestamp: Some(r.timestamp),
                    headers: r.headers,
                };
                match chain.apply(rec, Some(r.offset)) {
                    Ok(Some(rec)) => batch.push(SinkRecord {
                        record: rec,
                        kafka_offset: r.offset,
                    }),
                    Ok(None) => {}
                    Err(e) => skip_or_fail(tolerate, name, e)?,
                }
                dirty = true;
            }
            if !batch.is_empty() {
                tracing::debug!(connector = %name, task, records = batch.len(), "sink put");
                sink.put(batch).await?;
            }
            if dirty && last_commit.elapsed() >= cfg.offset_flush_interval {
                sink.flush().await?;
                consumer.commit_sync().await?;
                dirty = false;
                last_commit = Instant::now();
            }
        }
        if dirty {
            sink.flush().await?;
            consumer.commit_sync().await?;
        }
        Ok(())
    }
    .await;
    let stopped = sink.stop().await;
    let _ = consumer.close().await;
    result.and(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    #[test]
    fn assignment_is_deterministic_balanced_and_stable() {
        let members: Vec<String> = (0..3).map(|i| format!("w{i}:8083")).collect();
        let units: Vec<String> = (0..10).map(|t| task_unit("c", t)).collect();
        let a = assign(units.clone(), &members);
        let mut reversed = units.clone();
        reversed.reverse();
        assert_eq!(a, assign(reversed, &members), "same input, same result");
        let mut loads = BTreeMap::new();
        for owner in a.values() {
            *loads.entry(owner.clone()).or_insert(0) += 1;
        }
        assert_eq!(loads.len(), 3);
        assert!(loads.values().all(|l| (3..=4).contains(l)), "{loads:?}");
        // A member leaves: its units move, and every unit still has an owner.
        let survivors = &members[..2];
        let b = assign(units.clone(), survivors);
        assert_eq!(b.len(), 10);
        assert!(b.values().all(|o| survivors.contains(o)));
        let kept = units
            .iter()
            .filter(|u| a[*u] != members[2] && a[*u] == b[*u])
            .count();
        let on_survivors = units.iter().filter(|u| a[*u] != members[2]).count();
        assert!(
            kept * 2 >= on_survivors,
            "most units of survivors stay: {kept}/{on_survivors}"
        );
        assert!(assign(units, &[]).is_empty());
    }

    #[test]
    fn worker_config_rest_address_and_id() {
        let c = WorkerConfig::from_props(parse_properties("listeners=http://127.0.0.1:18083\n"))
            .unwrap();
        assert_eq!(c.rest_addr, "127.0.0.1:18083");
        assert_eq!(c.worker_id, "127.0.0.1:18083");
        let c = WorkerConfig::from_props(parse_properties("rest.port=9000\n")).unwrap();
        assert_eq!(c.rest_addr, "0.0.0.0:9000");
        assert_eq!(c.worker_id, "localhost:9000");
        let err =
            WorkerConfig::from_props(parse_properties("listeners=https://x:1\n")).unwrap_err();
        assert!(err.to_string().contains("listeners"));
    }

    #[test]
    fn validation_reports_common_and_connector_errors() {
        let mut cfg = Props::new();
        cfg.insert("tasks.max".into(), "0".into());
        cfg.insert("transforms".into(), "x".into());
        let infos = validate_config("FileStreamSink", &cfg).unwrap();
        assert_eq!(infos["name"], "FileStreamSinkConnector");
        let errors = validation_errors(&infos);
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        for k in ["name", "tasks.max", "topics", "file", "transforms.x.type"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert_eq!(
            infos["error_count"].as_u64().unwrap() as usize,
            errors.len()
        );
        assert!(matches!(
            validate_config("Nope", &cfg),
            Err(ConnectError::UnknownPlugin(_))
        ));
    }

    #[tokio::test]
    async fn standalone_commands_drive_status_and_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            WorkerConfig::from_props(parse_properties("bootstrap.servers=127.0.0.1:1\n")).unwrap();
        let w = Worker::new(cfg, Arc::new(crate::offsets::FileOffsetStore::default()));
        let mut c = Props::new();
        c.insert("connector.class".into(), "FileStreamSource".into());
        c.insert("file".into(), dir.path().join("x").display().to_string());
        c.insert("topic".into(), "t".into());
        assert!(w.put_connector_config("src", c.clone()).await.unwrap());
        assert!(!w.put_connector_config("src", c.clone()).await.unwrap());
        assert!(matches!(
            w.create_connector("src", c).await,
            Err(ConnectError::AlreadyExists(_))
        ));
        let status = w.status("src").unwrap();
        assert_eq!(status["connector"]["state"], "RUNNING");
        assert_eq!(status["type"], "source");
        assert_eq!(w.connector_info("src").unwrap()["tasks"][0]["task"], 0);
        w.set_target("src", TargetState::Stopped).await.unwrap();
        let status = w.status("src").unwrap();
        assert_eq!(status["connector"]["state"], "STOPPED");
        assert_eq!(status["tasks"].as_array().unwrap().len(), 0);
        w.delete_connector("src").await.unwrap();
        assert!(matches!(w.status("src"), Err(ConnectError::NotFound(_))));
        let mut bad = Props::new();
        bad.insert("connector.class".into(), "FileStreamSink".into());
        match w.put_connector_config("bad", bad).await {
            Err(ConnectError::Config { message, .. }) => {
                assert!(
                    message.starts_with("Connector configuration is invalid"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        w.shutdown().await;
    }
}
