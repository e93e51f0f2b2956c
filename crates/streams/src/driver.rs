//! [`TopologyTestDriver`]: runs a topology deterministically, without a broker.

use crate::codec::Codec;
use crate::error::{Result, StreamsError};
use crate::state::{
    InMemoryKeyValueStore, ReadOnlyKeyValueStore, ReadOnlyWindowStore, SharedStore, StateStore,
    StoreKind, StoreRegistry, StoreSpec,
};
use crate::topology::{GlobalStores, OutRecord, Task, Topology};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// An output record read from a [`TopologyTestDriver`].
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// The record's event time.
    pub timestamp: i64,
}

/// Changelog records of stores, by store name (what the changelog topics would hold).
pub type Changelogs = BTreeMap<String, Vec<(Bytes, Option<Bytes>)>>;

/// Runs a [`Topology`] in the calling thread, one record at a time, like Kafka's
/// `TopologyTestDriver`: pipe records with timestamps into source topics, read what
/// reached sink topics, inspect stores and changelogs. Every topic has one partition;
/// records written to repartition topics (and to any topic the topology also reads) are
/// processed again right away. Stores are in memory.
///
/// ```
/// use fjord_streams::{StreamsBuilder, TopologyTestDriver};
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream::<String, i64>("in")
///     .filter(|_, v| *v > 10)
///     .to("out");
/// let mut driver = TopologyTestDriver::new(builder.build()?)?;
/// driver.pipe("in", "a".to_string(), 5i64, 1)?;
/// driver.pipe("in", "b".to_string(), 50i64, 2)?;
/// assert_eq!(driver.read_output::<String, i64>("out")?, vec![("b".to_string(), 50)]);
/// # Ok::<(), fjord_streams::StreamsError>(())
/// ```
pub struct TopologyTestDriver {
    task: Task,
    application_id: String,
    globals: GlobalStores,
    global_topics: BTreeMap<String, String>,
    registry: StoreRegistry,
    outputs: BTreeMap<String, VecDeque<OutRecord>>,
    changelogs: Changelogs,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("application_id", &self.application_id)
            .finish()
    }
}

fn memory_store(spec: &StoreSpec) -> Result<SharedStore> {
    Ok(Arc::new(Mutex::new(StateStore::new(
        spec.clone(),
        Box::new(InMemoryKeyValueStore::new()),
    )?)))
}

impl TopologyTestDriver {
    /// A driver with application id `test-app`.
    pub fn new(topology: Topology) -> Result<Self> {
        Self::with_application_id(topology, "test-app")
    }

    /// A driver with this application id (it prefixes internal topic names).
    pub fn with_application_id(topology: Topology, application_id: &str) -> Result<Self> {
        Self::restored(topology, application_id, &Changelogs::new())
    }

    /// A driver whose stores are first rebuilt from `changelogs` (as after a failure or a
    /// task move): the restore path of the runtime, without a broker.
    pub fn restored(
        topology: Topology,
        application_id: &str,
        changelogs: &Changelogs,
    ) -> Result<Self> {
        let topology = Arc::new(topology);
        let mut globals = HashMap::new();
        for store in topology.globals.values() {
            let spec = StoreSpec {
                name: store.clone(),
                kind: StoreKind::KeyValue,
                logged: false,
                persistent: false,
            };
            globals.insert(store.clone(), memory_store(&spec)?);
        }
        let globals: GlobalStores = Arc::new(globals);
        let mut factory = |_: &StoreSpec| -> Result<Box<dyn crate::state::KeyValueStore>> {
            Ok(Box::new(InMemoryKeyValueStore::new()))
        };
        let task = Task::new(
            topology.clone(),
            application_id,
            0,
            globals.clone(),
            &mut factory,
        )?;
        for (name, records) in changelogs {
            let store = task
                .stores
                .get(name)
                .ok_or_else(|| StreamsError::store(name, "not in this topology"))?;
            let mut s = store.lock();
            for (k, v) in records {
                s.restore(k, v.clone())?;
            }
        }
        let registry = StoreRegistry::default();
        {
            let mut r = registry.write();
            for (name, store) in task.stores.iter().chain(globals.iter()) {
                r.entry(name.clone()).or_default().insert(0, store.clone());
            }
        }
        Ok(TopologyTestDriver {
            global_topics: topology.globals.clone(),
            task,
            application_id: application_id.to_string(),
            globals,
            registry,
            outputs: BTreeMap::new(),
            changelogs: changelogs.clone(),
        })
    }

    /// Pipes one record into `topic` at event time `timestamp` (ms).
    pub fn pipe<K: Codec, V: Codec>(
        &mut self,
        topic: &str,
        key: K,
        value: V,
        timestamp: i64,
    ) -> Result<()> {
        self.pipe_raw(topic, key.encode()?, value.encode()?, timestamp)
    }

    /// Pipes one record of raw bytes (a `None` value is a tombstone).
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<()> {
        let mut queue = VecDeque::from([(topic.to_string(), key, value, timestamp)]);
        while let Some((topic, key, value, ts)) = queue.pop_front() {
            if let Some(store) = self.global_topics.get(&topic) {
                if let Some(k) = &key {
                    self.globals[store].lock().put(k, value.clone())?;
                }
            }
            if self.task.reads(&topic) {
                self.task.process(&topic, key, value, ts)?;
            } else if !self.global_topics.contains_key(&topic) {
                return Err(StreamsError::Topology(format!(
                    "{topic} is not a source topic"
                )));
            }
            for out in self.task.take_outputs() {
                if out.partition.is_some() {
                    if let Some(store) = self.store_of_changelog(&out.topic) {
                        if let Some(k) = &out.key {
                            self.changelogs
                                .entry(store)
                                .or_default()
                                .push((k.clone(), out.value.clone()));
                        }
                    }
                }
                if self.task.reads(&out.topic) || self.global_topics.contains_key(&out.topic) {
                    queue.push_back((
                        out.topic.clone(),
                        out.key.clone(),
                        out.value.clone(),
                        out.timestamp,
                    ));
                }
                self.outputs
                    .entry(out.topic.clone())
                    .or_default()
                    .push_back(out);
            }
        }
        Ok(())
    }

    fn store_of_changelog(&self, topic: &str) -> Option<String> {
        self.task
            .topology()
            .changelog_topics(&self.application_id)
            .into_iter()
            .find(|(_, t)| t == topic)
            .map(|(s, _)| s)
    }

    /// Drains the records written to `topic` so far, with their timestamps.
    pub fn read_records<K: Codec, V: Codec>(
        &mut self,
        topic: &str,
    ) -> Result<Vec<TestRecord<K, V>>> {
        let Some(q) = self.outputs.get_mut(topic) else {
            return Ok(Vec::new());
        };
        q.drain(..)
            .map(|r| {
                Ok(TestRecord {
                    key: K::decode(r.key.as_deref())?,
                    value: V::decode(r.value.as_deref())?,
                    timestamp: r.timestamp,
                })
            })
            .collect()
    }

    /// Drains the key-value pairs written to `topic` so far.
    pub fn read_output<K: Codec, V: Codec>(&mut self, topic: &str) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_records::<K, V>(topic)?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// Topics written to so far (sinks, repartition and changelog topics).
    pub fn output_topics(&self) -> Vec<String> {
        self.outputs.keys().cloned().collect()
    }

    /// A key-value store, for assertions.
    pub fn key_value_store<K: Codec, V: Codec>(&self, name: &str) -> ReadOnlyKeyValueStore<K, V> {
        ReadOnlyKeyValueStore::new(name, self.registry.clone())
    }

    /// A window or session store, for assertions.
    pub fn window_store<K: Codec, V: Codec>(&self, name: &str) -> ReadOnlyWindowStore<K, V> {
        ReadOnlyWindowStore::new(name, self.registry.clone())
    }

    /// Expires windows past their retention and flushes stores, as a commit does.
    pub fn flush(&mut self) -> Result<()> {
        self.task.flush_stores()?;
        // Expiry writes tombstones to the changelogs.
        self.pipe_outputs()
    }

    fn pipe_outputs(&mut self) -> Result<()> {
        for out in self.task.take_outputs() {
            if let Some(store) = self.store_of_changelog(&out.topic) {
                if let Some(k) = &out.key {
                    self.changelogs
                        .entry(store)
                        .or_default()
                        .push((k.clone(), out.value.clone()));
                }
            }
            self.outputs
                .entry(out.topic.clone())
                .or_default()
                .push_back(out);
        }
        Ok(())
    }

    /// Every changelog record written so far (plus those restored from), by store.
    pub fn changelogs(&self) -> &Changelogs {
        &self.changelogs
    }
}
