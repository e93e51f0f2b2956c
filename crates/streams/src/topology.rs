//! The processor graph and the pure, synchronous engine that runs it for one task.
//!
//! A [`Topology`] is a list of nodes; each node has a processor and children. A [`Task`]
//! owns the state stores of one partition number and processes one record at a time,
//! depth-first through the graph, collecting what must leave the task: records for sink
//! and repartition topics, and changelog records of the stores it wrote. It does no I/O of
//! its own; the test driver and the runtime feed it and ship its outputs, so both run the
//! very same code.

use crate::error::{Result, StreamsError};
use crate::state::{changelog_topic, KeyValueStore, SharedStore, StateStore, StoreSpec};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

pub(crate) type NodeId = usize;

/// A record inside the topology: serialized key and value plus its event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) timestamp: i64,
    /// For a table update: the key's previous value (what `KTable::group_by` subtracts).
    pub(crate) old: Option<Bytes>,
}

impl Record {
    pub(crate) fn new(key: Option<Bytes>, value: Option<Bytes>, timestamp: i64) -> Self {
        Record {
            key,
            value,
            timestamp,
            old: None,
        }
    }
}

/// A record leaving a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutRecord {
    /// Topic name as on the broker (internal topics carry the application id).
    pub(crate) topic: String,
    /// A fixed partition (changelogs), or `None` to partition by key.
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) timestamp: i64,
}

/// One step of the graph. Processors keep no per-task state of their own: what they remember
/// lives in state stores (restored after a failure) or in the context.
pub(crate) trait Processor: Send + Sync {
    fn process(&self, ctx: &mut Ctx<'_>, rec: Record) -> Result<()>;
}

impl<F> Processor for F
where
    F: Fn(&mut Ctx<'_>, Record) -> Result<()> + Send + Sync,
{
    fn process(&self, ctx: &mut Ctx<'_>, rec: Record) -> Result<()> {
        self(ctx, rec)
    }
}

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicRef {
    /// A user topic.
    External(String),
    /// An internal topic; the broker name is `<application.id>-<name>`.
    Internal(String),
}

impl TopicRef {
    pub(crate) fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicRef::External(t) => t.clone(),
            TopicRef::Internal(n) => format!("{application_id}-{n}"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) processor: Arc<dyn Processor>,
    pub(crate) children: Vec<NodeId>,
}

/// A built processing graph: sources, processors, sinks and the state stores they use. Made
/// by [`crate::StreamsBuilder::build`]; run by [`crate::TopologyTestDriver`] or
/// [`crate::KafkaStreams`].
pub struct Topology {
    pub(crate) nodes: Vec<Node>,
    /// Source topic → source nodes.
    pub(crate) sources: BTreeMap<TopicKey, Vec<NodeId>>,
    pub(crate) stores: BTreeMap<String, StoreSpec>,
    /// Internal repartition topic names (without the application id prefix).
    pub(crate) repartition_topics: BTreeSet<String>,
    /// Global table topic → its store.
    pub(crate) globals: BTreeMap<String, String>,
    pub(crate) sink_topics: BTreeSet<String>,
}

/// A source topic: user topic or internal (repartition) topic.
pub(crate) type TopicKey = (bool, String);

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Topology {
    /// A readable listing of sources, nodes (with their children) and stores.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for ((internal, topic), nodes) in &self.sources {
            let kind = if *internal { "internal topic" } else { "topic" };
            let names: Vec<&str> = nodes.iter().map(|n| self.nodes[*n].name.as_str()).collect();
            let _ = writeln!(s, "Source {kind} {topic} -> {}", names.join(", "));
        }
        for n in &self.nodes {
            let children: Vec<&str> = n
                .children
                .iter()
                .map(|c| self.nodes[*c].name.as_str())
                .collect();
            let _ = writeln!(s, "  {} -> [{}]", n.name, children.join(", "));
        }
        for (topic, store) in &self.globals {
            let _ = writeln!(s, "Global table {topic} (store {store})");
        }
        for spec in self.stores.values() {
            let _ = writeln!(
                s,
                "Store {} ({:?}, {}, {})",
                spec.name,
                spec.kind,
                if spec.persistent {
                    "persistent"
                } else {
                    "in-memory"
                },
                if spec.logged {
                    "changelogged"
                } else {
                    "not logged"
                }
            );
        }
        s
    }

    /// The user topics the application reads (excluding global tables).
    pub fn source_topics(&self) -> Vec<String> {
        self.sources
            .keys()
            .filter(|(internal, _)| !internal)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Every topic read by tasks, with internal ones resolved for `application_id`.
    pub(crate) fn task_topics(&self, application_id: &str) -> Vec<String> {
        self.sources
            .keys()
            .map(|(internal, t)| {
                if *internal {
                    TopicRef::Internal(t.clone()).resolve(application_id)
                } else {
                    t.clone()
                }
            })
            .collect()
    }

    /// The user topics the application writes to.
    pub fn sink_topics(&self) -> Vec<String> {
        self.sink_topics.iter().cloned().collect()
    }

    /// The names of the state stores (global table stores included).
    pub fn store_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.stores.keys().cloned().collect();
        names.extend(self.globals.values().cloned());
        names
    }

    pub(crate) fn changelog_topics(&self, application_id: &str) -> Vec<(String, String)> {
        self.stores
            .values()
            .filter(|s| s.logged)
            .map(|s| (s.name.clone(), changelog_topic(application_id, &s.name)))
            .collect()
    }
}

/// The global table stores of an application instance (fed by the global topics).
pub(crate) type GlobalStores = Arc<HashMap<String, SharedStore>>;

/// What a processor sees: forwarding, stores, stream time, sinks.
pub(crate) struct Ctx<'a> {
    node: NodeId,
    application_id: &'a str,
    stores: &'a HashMap<String, SharedStore>,
    globals: &'a GlobalStores,
    observed: &'a mut HashMap<NodeId, i64>,
    forwards: &'a mut Vec<(Option<usize>, Record)>,
    outputs: &'a mut Vec<OutRecord>,
}

impl Ctx<'_> {
    /// Sends a record to every child.
    pub(crate) fn forward(&mut self, rec: Record) {
        self.forwards.push((None, rec));
    }

    /// Sends a record to one child (by position, for branches).
    pub(crate) fn forward_to(&mut self, child: usize, rec: Record) {
        self.forwards.push((Some(child), rec));
    }

    pub(crate) fn store(&self, name: &str) -> Result<MutexGuard<'_, StateStore>> {
        self.stores
            .get(name)
            .map(|s| s.lock())
            .ok_or_else(|| StreamsError::store(name, "not connected to this task"))
    }

    pub(crate) fn global(&self, name: &str) -> Result<MutexGuard<'_, StateStore>> {
        self.globals
            .get(name)
            .map(|s| s.lock())
            .ok_or_else(|| StreamsError::store(name, "no such global store"))
    }

    /// Advances and returns the stream time this node has observed (the largest timestamp
    /// it has seen). Windows close against it, as in Kafka Streams.
    pub(crate) fn observe(&mut self, ts: i64) -> i64 {
        let id = self.node;
        self.observe_as(id, ts)
    }

    /// Like [`Ctx::observe`] under a shared id (the two sides of a join share one clock).
    pub(crate) fn observe_as(&mut self, id: NodeId, ts: i64) -> i64 {
        let t = self.observed.entry(id).or_insert(i64::MIN);
        *t = (*t).max(ts);
        *t
    }

    pub(crate) fn emit(&mut self, topic: &TopicRef, rec: Record) {
        self.outputs.push(OutRecord {
            topic: topic.resolve(self.application_id),
            partition: None,
            key: rec.key,
            value: rec.value,
            timestamp: rec.timestamp,
        });
    }
}

/// Makes the engine of one store of one task.
pub(crate) type StoreFactory<'a> = dyn FnMut(&StoreSpec) -> Result<Box<dyn KeyValueStore>> + 'a;

/// The unit of work and state: the whole topology for one partition number.
pub(crate) struct Task {
    topology: Arc<Topology>,
    application_id: String,
    pub(crate) partition: i32,
    pub(crate) stores: HashMap<String, SharedStore>,
    globals: GlobalStores,
    observed: HashMap<NodeId, i64>,
    outputs: Vec<OutRecord>,
    sources: HashMap<String, Vec<NodeId>>,
}

impl Task {
    pub(crate) fn new(
        topology: Arc<Topology>,
        application_id: &str,
        partition: i32,
        globals: GlobalStores,
        factory: &mut StoreFactory<'_>,
    ) -> Result<Task> {
        let mut stores = HashMap::new();
        for spec in topology.stores.values() {
            let engine = factory(spec)?;
            stores.insert(
                spec.name.clone(),
                Arc::new(Mutex::new(StateStore::new(spec.clone(), engine)?)),
            );
        }
        let mut sources = HashMap::new();
        for ((internal, topic), nodes) in &topology.sources {
            let name = if *internal {
                TopicRef::Internal(topic.clone()).resolve(application_id)
            } else {
                topic.clone()
            };
            sources.insert(name, nodes.clone());
        }
        Ok(Task {
            topology,
            application_id: application_id.to_string(),
            partition,
            stores,
            globals,
            observed: HashMap::new(),
            outputs: Vec::new(),
            sources,
        })
    }

    /// Whether this task reads `topic`.
    pub(crate) fn reads(&self, topic: &str) -> bool {
        self.sources.contains_key(topic)
    }

    /// Runs one input record through the graph, depth-first.
    pub(crate) fn process(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<()> {
        let Some(roots) = self.sources.get(topic) else {
            return Err(StreamsError::Topology(format!(
                "topic {topic} is not a source of this topology"
            )));
        };
        let rec = Record::new(key, value, timestamp);
        let mut stack: Vec<(NodeId, Record)> =
            roots.iter().rev().map(|n| (*n, rec.clone())).collect();
        let mut forwards = Vec::new();
        while let Some((node_id, rec)) = stack.pop() {
            let node = &self.topology.nodes[node_id];
            let mut ctx = Ctx {
                node: node_id,
                application_id: &self.application_id,
                stores: &self.stores,
                globals: &self.globals,
                observed: &mut self.observed,
                forwards: &mut forwards,
                outputs: &mut self.outputs,
            };
            node.processor.process(&mut ctx, rec)?;
            // Push in reverse so the first forwarded record's subtree runs first.
            for (target, rec) in forwards.drain(..).rev() {
                match target {
                    Some(i) => {
                        if let Some(c) = node.children.get(i) {
                            stack.push((*c, rec));
                        }
                    }
                    None => {
                        for c in node.children.iter().rev() {
                            stack.push((*c, rec.clone()));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Records produced since the last call: sink and repartition records in processing
    /// order, then the changelog records of every store.
    pub(crate) fn take_outputs(&mut self) -> Vec<OutRecord> {
        let mut out = std::mem::take(&mut self.outputs);
        let mut names: Vec<&String> = self.stores.keys().collect();
        names.sort();
        for name in names {
            let mut store = self.stores[name].lock();
            if !store.spec.logged {
                continue;
            }
            let topic = changelog_topic(&self.application_id, store.name());
            for (k, v) in store.take_changelog() {
                out.push(OutRecord {
                    topic: topic.clone(),
                    partition: Some(self.partition),
                    key: Some(k),
                    value: v,
                    // Changelog records take the wall-clock time when sent.
                    timestamp: -1,
                });
            }
        }
        out
    }

    /// Expires old windows and makes stores durable (call before committing offsets, then
    /// ship the outputs this produced).
    pub(crate) fn flush_stores(&mut self) -> Result<()> {
        for store in self.stores.values() {
            let mut s = store.lock();
            s.expire()?;
            s.flush()?;
        }
        Ok(())
    }

    pub(crate) fn topology(&self) -> &Arc<Topology> {
        &self.topology
    }
}
