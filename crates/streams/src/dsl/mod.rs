//! The DSL: [`StreamsBuilder`], [`KStream`], [`KTable`], [`GlobalKTable`], grouping, windows
//! and joins. Each operation adds nodes to the builder's graph; [`StreamsBuilder::build`]
//! turns the graph into a [`Topology`].

mod grouped;
mod kstream;
mod ktable;

pub use grouped::{
    KGroupedStream, SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream,
};
pub use kstream::{BranchedKStream, KStream, Predicate};
pub use ktable::{GlobalKTable, KGroupedTable, KTable};

use crate::codec::Codec;
use crate::error::{Result, StreamsError};
use crate::state::{StoreKind, StoreSpec};
use crate::topology::{NodeId, Processor, Record, TopicKey, TopicRef, Topology};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn decode<T: Codec>(b: &Option<Bytes>) -> Result<T> {
    T::decode(b.as_deref())
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Default)]
struct Inner {
    nodes: Vec<crate::topology::Node>,
    sources: BTreeMap<TopicKey, Vec<NodeId>>,
    stores: BTreeMap<String, StoreSpec>,
    repartition_topics: BTreeSet<String>,
    globals: BTreeMap<String, String>,
    sink_topics: BTreeSet<String>,
    counter: usize,
    errors: Vec<String>,
}

/// Builds a processing topology with the DSL.
///
/// Streams and tables are handles into the builder: they are cheap to clone and every
/// operation adds to the same graph.
#[derive(Clone, Default)]
pub struct StreamsBuilder {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for StreamsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsBuilder")
            .field("nodes", &self.inner.lock().nodes.len())
            .finish()
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<K: Codec, V: Codec>(&self, topic: &str) -> KStream<K, V> {
        let node = self.add_source("KSTREAM-SOURCE", (false, topic.to_string()));
        KStream::new(self.clone(), node, false)
    }

    /// One stream of the records of several topics.
    pub fn streams<K: Codec, V: Codec>(&self, topics: &[&str]) -> KStream<K, V> {
        let name = self.next_name("KSTREAM-SOURCE");
        let node = self.add_named_node(name, &[], pass_through());
        for t in topics {
            self.register_source((false, t.to_string()), node);
        }
        KStream::new(self.clone(), node, false)
    }

    /// A table of the latest value per key of `topic` (null values delete), materialized
    /// in a state store backed by a changelog.
    pub fn table<K: Codec, V: Codec>(
        &self,
        topic: &str,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, V> {
        let source = self.add_source("KTABLE-SOURCE", (false, topic.to_string()));
        let m = materialized.into();
        let store = self.add_kv_store(&m, "KTABLE-SOURCE-STATE-STORE");
        let node = self.add_node(
            "KTABLE-MATERIALIZE",
            &[source],
            ktable::upsert_processor(store.clone(), |_, r| Ok(r.value.clone())),
        );
        KTable::new(self.clone(), node, store, None)
    }

    /// A table replicated in full on every instance (all partitions of `topic`), for
    /// joins by a key derived from the stream record.
    pub fn global_table<K: Codec, V: Codec>(&self, topic: &str, store: &str) -> GlobalKTable<K, V> {
        let mut inner = self.inner.lock();
        if inner.globals.values().any(|s| s == store) || inner.stores.contains_key(store) {
            inner.errors.push(format!("store {store} is defined twice"));
        }
        inner.globals.insert(topic.to_string(), store.to_string());
        GlobalKTable::new(store.to_string())
    }

    /// Checks the graph and returns a copy of it (the builder can build again, e.g. once
    /// for the runtime and once for a test driver; processors are shared).
    pub fn build(&self) -> Result<Topology> {
        let inner = self.inner.lock();
        if !inner.errors.is_empty() {
            return Err(StreamsError::Topology(inner.errors.join("; ")));
        }
        if inner.sources.is_empty() && inner.globals.is_empty() {
            return Err(StreamsError::Topology("the topology reads no topic".into()));
        }
        Ok(Topology {
            nodes: inner.nodes.clone(),
            sources: inner.sources.clone(),
            stores: inner.stores.clone(),
            repartition_topics: inner.repartition_topics.clone(),
            globals: inner.globals.clone(),
            sink_topics: inner.sink_topics.clone(),
        })
    }

    pub(crate) fn next_name(&self, prefix: &str) -> String {
        let mut inner = self.inner.lock();
        let n = inner.counter;
        inner.counter += 1;
        format!("{prefix}-{n:010}")
    }

    fn add_named_node(
        &self,
        name: String,
        parents: &[NodeId],
        p: impl Processor + 'static,
    ) -> NodeId {
        let mut inner = self.inner.lock();
        let id = inner.nodes.len();
        inner.nodes.push(crate::topology::Node {
            name,
            processor: Arc::new(p),
            children: Vec::new(),
        });
        for parent in parents {
            inner.nodes[*parent].children.push(id);
        }
        id
    }

    pub(crate) fn add_node(
        &self,
        prefix: &str,
        parents: &[NodeId],
        p: impl Processor + 'static,
    ) -> NodeId {
        let name = self.next_name(prefix);
        self.add_named_node(name, parents, p)
    }

    /// Adds `child` as a child of `parent`.
    pub(crate) fn link(&self, parent: NodeId, child: NodeId) {
        self.inner.lock().nodes[parent].children.push(child);
    }

    fn register_source(&self, topic: TopicKey, node: NodeId) {
        self.inner
            .lock()
            .sources
            .entry(topic)
            .or_default()
            .push(node);
    }

    pub(crate) fn add_source(&self, prefix: &str, topic: TopicKey) -> NodeId {
        let node = self.add_node(prefix, &[], pass_through());
        self.register_source(topic, node);
        node
    }

    pub(crate) fn add_sink(&self, parent: NodeId, topic: TopicRef) {
        if let TopicRef::External(t) = &topic {
            self.inner.lock().sink_topics.insert(t.clone());
        }
        self.add_node(
            "KSTREAM-SINK",
            &[parent],
            move |ctx: &mut crate::topology::Ctx<'_>, rec: Record| {
                ctx.emit(&topic, rec);
                Ok(())
            },
        );
    }

    /// Writes `parent`'s records through the internal topic `<name>-repartition` and returns
    /// the node reading them back (now partitioned by their key).
    pub(crate) fn add_repartition(
        &self,
        parent: NodeId,
        name: &str,
        drop_null_keys: bool,
    ) -> NodeId {
        let topic = format!("{name}-repartition");
        {
            let mut inner = self.inner.lock();
            if !inner.repartition_topics.insert(topic.clone()) {
                inner
                    .errors
                    .push(format!("repartition topic {topic} is defined twice"));
            }
        }
        let sink_parent = if drop_null_keys {
            self.add_node(
                "KSTREAM-FILTER",
                &[parent],
                |ctx: &mut crate::topology::Ctx<'_>, rec: Record| {
                    if rec.key.is_some() {
                        ctx.forward(rec);
                    }
                    Ok(())
                },
            )
        } else {
            parent
        };
        self.add_sink(sink_parent, TopicRef::Internal(topic.clone()));
        self.add_source("KSTREAM-SOURCE", (true, topic))
    }

    pub(crate) fn add_store(&self, spec: StoreSpec) {
        let mut inner = self.inner.lock();
        if inner.stores.contains_key(&spec.name) || inner.globals.values().any(|s| *s == spec.name)
        {
            inner
                .errors
                .push(format!("store {} is defined twice", spec.name));
        }
        inner.stores.insert(spec.name.clone(), spec);
    }

    pub(crate) fn add_kv_store(&self, m: &Materialized, prefix: &str) -> String {
        let name = m.name.clone().unwrap_or_else(|| self.next_name(prefix));
        self.add_store(StoreSpec {
            name: name.clone(),
            kind: StoreKind::KeyValue,
            logged: m.logging,
            persistent: m.persistent,
        });
        name
    }
}

fn pass_through() -> impl Processor {
    |ctx: &mut crate::topology::Ctx<'_>, rec: Record| {
        ctx.forward(rec);
        Ok(())
    }
}

/// How a table or aggregation result is stored: the store name (for interactive queries and
/// the changelog topic name), in memory or on disk, logged or not, window retention.
#[derive(Debug, Clone)]
pub struct Materialized {
    pub(crate) name: Option<String>,
    pub(crate) persistent: bool,
    pub(crate) logging: bool,
    pub(crate) retention: Option<i64>,
}

impl Default for Materialized {
    fn default() -> Self {
        Materialized {
            name: None,
            persistent: true,
            logging: true,
            retention: None,
        }
    }
}

impl Materialized {
    /// A store with this name (`<application.id>-<name>-changelog` is its changelog).
    pub fn as_(name: impl Into<String>) -> Self {
        Materialized {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Keeps the store in memory (restored from the changelog on every start) rather than
    /// on disk in `state.dir`.
    pub fn in_memory(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// No changelog: the store is not restored after a failure or a task move.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// How long windows are kept for queries (at least window size + grace; default one
    /// day, as in Kafka Streams).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(ms(retention));
        self
    }
}

impl From<&str> for Materialized {
    fn from(name: &str) -> Self {
        Materialized::as_(name)
    }
}

impl From<String> for Materialized {
    fn from(name: String) -> Self {
        Materialized::as_(name)
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Fixed-size windows: tumbling (advance = size) or hopping (advance < size), aligned to
/// the epoch; `[start, start + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) size: i64,
    pub(crate) advance: i64,
    pub(crate) grace: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size` that accept records up to `grace` late.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size = ms(size).max(1);
        TimeWindows {
            size,
            advance: size,
            grace: ms(grace),
        }
    }

    /// Tumbling windows of `size` that close as soon as stream time passes their end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Hopping windows: a new window every `advance` (clamped to `1..=size`).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance = ms(advance).clamp(1, self.size);
        self
    }

    /// Starts of the windows containing `ts` (ascending; none for negative timestamps).
    pub(crate) fn starts_for(&self, ts: i64) -> Vec<i64> {
        if ts < 0 {
            return Vec::new();
        }
        let mut start = ts - ts.rem_euclid(self.advance);
        let mut out = Vec::new();
        while start > ts - self.size && start >= 0 {
            out.push(start);
            start -= self.advance;
        }
        out.reverse();
        out
    }
}

/// Sliding windows for aggregations: windows `[start, start + time difference]` (both ends
/// included) that exist where records are, as in Kafka's `SlidingWindows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub(crate) diff: i64,
    pub(crate) grace: i64,
}

impl SlidingWindows {
    /// Windows spanning `time_difference`, accepting records up to `grace` late.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        SlidingWindows {
            diff: ms(time_difference),
            grace: ms(grace),
        }
    }

    /// Windows spanning `time_difference`, without grace.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }
}

/// Session windows: records of a key closer than the inactivity gap belong to one session
/// `[first, last]` (both included); a record bridging two sessions merges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub(crate) gap: i64,
    pub(crate) grace: i64,
}

impl SessionWindows {
    /// Sessions split by `gap` of inactivity, accepting records up to `grace` late.
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows {
            gap: ms(gap),
            grace: ms(grace),
        }
    }

    /// Sessions split by `gap` of inactivity, without grace.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }
}

/// The window of a stream-stream join: records of the two sides join when their
/// timestamps differ by at most the time difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub(crate) diff: i64,
    pub(crate) grace: i64,
}

impl JoinWindows {
    /// Join records at most `time_difference` apart; records may arrive `grace` late.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        JoinWindows {
            diff: ms(time_difference),
            grace: ms(grace),
        }
    }

    /// Join records at most `time_difference` apart, without grace.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }
}

/// When a windowed table forwards its updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Only the final result of each window, once stream time passes its end plus grace.
    UntilWindowCloses,
}

impl Suppressed {
    /// Final results only (see [`Suppressed::UntilWindowCloses`]).
    pub fn until_window_closes() -> Self {
        Suppressed::UntilWindowCloses
    }
}

pub(crate) fn retention(m: &Materialized, at_least: i64) -> i64 {
    m.retention.unwrap_or(DAY_MS).max(at_least)
}

pub(crate) type Agg<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;
pub(crate) type Merge<K, VA> = Arc<dyn Fn(&K, VA, VA) -> VA + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_window_starts() {
        let t = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(t.starts_for(0), vec![0]);
        assert_eq!(t.starts_for(19), vec![10]);
        let h = t.advance_by(Duration::from_millis(5));
        assert_eq!(h.starts_for(12), vec![5, 10]);
        assert_eq!(h.starts_for(3), vec![0]);
        assert!(t.starts_for(-1).is_empty());
    }
}
