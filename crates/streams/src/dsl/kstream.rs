//! [`KStream`]: an unbounded stream of key-value records.

use super::{
    decode, grouped::KGroupedStream, GlobalKTable, JoinWindows, KTable, Materialized,
    StreamsBuilder,
};
use crate::codec::Codec;
use crate::error::Result;
use crate::state::{flip, split_composite, window_key, StoreKind, StoreSpec};
use crate::topology::{Ctx, NodeId, Record, TopicRef};
use bytes::Bytes;
use std::marker::PhantomData;
use std::sync::Arc;

/// A predicate for [`KStream::branch`].
pub type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream of records, each an independent event (a key may occur many times).
///
/// Every operation returns a new stream and leaves this one usable: using a stream twice
/// sends each record to both branches.
pub struct KStream<K, V> {
    pub(crate) b: StreamsBuilder,
    pub(crate) node: NodeId,
    /// The key may differ from the partitioning key (after `map`, `select_key`, ...), so a
    /// grouping or join must repartition first.
    pub(crate) key_changed: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            b: self.b.clone(),
            node: self.node,
            key_changed: self.key_changed,
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KStream").field("node", &self.node).finish()
    }
}

/// A stream being split into branches (see [`KStream::split`]).
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    predicates: Vec<Predicate<K, V>>,
}

impl<K, V> std::fmt::Debug for BranchedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BranchedKStream")
            .field("branches", &self.predicates.len())
            .finish()
    }
}

impl<K: Codec, V: Codec> BranchedKStream<K, V> {
    /// Adds a branch for the records `predicate` accepts (and no earlier branch took).
    pub fn branch<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.predicates.push(Box::new(predicate));
        self
    }

    /// The branches, in order, plus a last one with every record no branch took.
    pub fn default_branch(mut self) -> Vec<KStream<K, V>> {
        self.predicates.push(Box::new(|_, _| true));
        self.stream.branch(self.predicates)
    }

    /// The branches, in order; records no branch took are dropped.
    pub fn no_default_branch(self) -> Vec<KStream<K, V>> {
        self.stream.branch(self.predicates)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    Inner,
    Left,
    Outer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    This,
    Other,
}

/// The joiner of every stream-stream join kind; `None` for a combination the kind never
/// emits (a missing side of an inner join, a missing left side of a left join).
type Joiner3<K, V, VO, VR> = Arc<dyn Fn(&K, Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync>;

impl<K: Codec, V: Codec> KStream<K, V> {
    pub(crate) fn new(b: StreamsBuilder, node: NodeId, key_changed: bool) -> Self {
        KStream {
            b,
            node,
            key_changed,
            _types: PhantomData,
        }
    }

    fn derive<K2: Codec, V2: Codec>(
        &self,
        prefix: &str,
        key_changed: bool,
        p: impl Fn(&mut Ctx<'_>, Record) -> Result<()> + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let node = self.b.add_node(prefix, &[self.node], p);
        KStream::new(self.b.clone(), node, key_changed)
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter<F>(&self, predicate: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.derive("KSTREAM-FILTER", self.key_changed, move |ctx, rec| {
            if predicate(&decode(&rec.key)?, &decode(&rec.value)?) {
                ctx.forward(rec);
            }
            Ok(())
        })
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not<F>(&self, predicate: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Replaces key and value (the stream will be repartitioned before a grouping or join).
    pub fn map<K2: Codec, V2: Codec, F>(&self, f: F) -> KStream<K2, V2>
    where
        F: Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    {
        self.derive("KSTREAM-MAP", true, move |ctx, rec| {
            let (k, v) = f(&decode(&rec.key)?, &decode(&rec.value)?);
            ctx.forward(Record::new(k.encode()?, v.encode()?, rec.timestamp));
            Ok(())
        })
    }

    /// Replaces the value, keeping the key (and the partitioning).
    pub fn map_values<V2: Codec, F>(&self, f: F) -> KStream<K, V2>
    where
        F: Fn(&V) -> V2 + Send + Sync + 'static,
    {
        self.derive("KSTREAM-MAPVALUES", self.key_changed, move |ctx, rec| {
            let v = f(&decode(&rec.value)?);
            ctx.forward(Record::new(rec.key, v.encode()?, rec.timestamp));
            Ok(())
        })
    }

    /// Replaces each record by zero or more records.
    pub fn flat_map<K2: Codec, V2: Codec, I, F>(&self, f: F) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
        F: Fn(&K, &V) -> I + Send + Sync + 'static,
    {
        self.derive("KSTREAM-FLATMAP", true, move |ctx, rec| {
            for (k, v) in f(&decode(&rec.key)?, &decode(&rec.value)?) {
                ctx.forward(Record::new(k.encode()?, v.encode()?, rec.timestamp));
            }
            Ok(())
        })
    }

    /// Replaces each value by zero or more values with the same key.
    pub fn flat_map_values<V2: Codec, I, F>(&self, f: F) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
        F: Fn(&V) -> I + Send + Sync + 'static,
    {
        self.derive(
            "KSTREAM-FLATMAPVALUES",
            self.key_changed,
            move |ctx, rec| {
                for v in f(&decode(&rec.value)?) {
                    ctx.forward(Record::new(rec.key.clone(), v.encode()?, rec.timestamp));
                }
                Ok(())
            },
        )
    }

    /// Sets a new key computed from the record.
    pub fn select_key<K2: Codec, F>(&self, f: F) -> KStream<K2, V>
    where
        F: Fn(&K, &V) -> K2 + Send + Sync + 'static,
    {
        self.derive("KSTREAM-KEY-SELECT", true, move |ctx, rec| {
            let k = f(&decode(&rec.key)?, &decode(&rec.value)?);
            ctx.forward(Record::new(k.encode()?, rec.value, rec.timestamp));
            Ok(())
        })
    }

    /// Calls `f` for each record and passes the record on unchanged.
    pub fn peek<F>(&self, f: F) -> KStream<K, V>
    where
        F: Fn(&K, &V) + Send + Sync + 'static,
    {
        self.derive("KSTREAM-PEEK", self.key_changed, move |ctx, rec| {
            f(&decode(&rec.key)?, &decode(&rec.value)?);
            ctx.forward(rec);
            Ok(())
        })
    }

    /// Calls `f` for each record (a terminal operation).
    pub fn for_each<F>(&self, f: F)
    where
        F: Fn(&K, &V) + Send + Sync + 'static,
    {
        let _: KStream<K, V> = self.derive("KSTREAM-FOREACH", self.key_changed, move |_, rec| {
            f(&decode(&rec.key)?, &decode(&rec.value)?);
            Ok(())
        });
    }

    /// Splits the stream: each record goes to the first branch whose predicate holds (or
    /// nowhere). Returns one stream per predicate, in order.
    pub fn branch(&self, predicates: Vec<Predicate<K, V>>) -> Vec<KStream<K, V>> {
        let n = predicates.len();
        let node = self.b.add_node(
            "KSTREAM-BRANCH",
            &[self.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let k = decode(&rec.key)?;
                let v = decode(&rec.value)?;
                if let Some(i) = predicates.iter().position(|p| p(&k, &v)) {
                    ctx.forward_to(i, rec);
                }
                Ok(())
            },
        );
        // Children are created in order right here, so child i is branch i.
        (0..n)
            .map(|_| {
                let child = self.b.add_node(
                    "KSTREAM-BRANCHCHILD",
                    &[node],
                    |ctx: &mut Ctx<'_>, rec: Record| {
                        ctx.forward(rec);
                        Ok(())
                    },
                );
                KStream::new(self.b.clone(), child, self.key_changed)
            })
            .collect()
    }

    /// Splits the stream like Kafka's `split()`: chain `.branch(predicate)` calls, then
    /// finish with `.default_branch()` (records no predicate matched) or
    /// `.no_default_branch()`. Each record goes to the first matching branch.
    pub fn split(&self) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            predicates: Vec::new(),
        }
    }

    /// The records of this stream and `other`, interleaved as they arrive.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let node = self.b.add_node(
            "KSTREAM-MERGE",
            &[self.node, other.node],
            |ctx: &mut Ctx<'_>, rec: Record| {
                ctx.forward(rec);
                Ok(())
            },
        );
        KStream::new(self.b.clone(), node, self.key_changed || other.key_changed)
    }

    /// Writes the records to `topic` (partitioned by key with Kafka's murmur2 partitioner).
    pub fn to(&self, topic: &str) {
        self.b
            .add_sink(self.node, TopicRef::External(topic.to_string()));
    }

    /// The stream as a table: the latest value per key (null values delete), materialized.
    pub fn to_table(&self, materialized: impl Into<Materialized>) -> KTable<K, V> {
        let name = self.b.next_name("KSTREAM-TOTABLE");
        let input = self.repartitioned_if_needed(&name);
        let store = input
            .b
            .add_kv_store(&materialized.into(), "KSTREAM-TOTABLE-STATE-STORE");
        let node = input.b.add_node(
            "KSTREAM-TOTABLE",
            &[input.node],
            super::ktable::upsert_processor(store.clone(), |_, r| Ok(r.value.clone())),
        );
        KTable::new(input.b.clone(), node, store, None)
    }

    /// Sends the records through an internal topic partitioned by their current key.
    pub fn repartition(&self) -> KStream<K, V> {
        let name = self.b.next_name("KSTREAM-REPARTITION");
        let node = self.b.add_repartition(self.node, &name, false);
        KStream::new(self.b.clone(), node, false)
    }

    pub(crate) fn repartitioned_if_needed(&self, name: &str) -> KStream<K, V> {
        if self.key_changed {
            let node = self.b.add_repartition(self.node, name, true);
            KStream::new(self.b.clone(), node, false)
        } else {
            self.clone()
        }
    }

    /// Groups by the current key (repartitioning first when the key changed).
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.clone())
    }

    /// Groups by a new key (always repartitions).
    pub fn group_by<K2: Codec, F>(&self, f: F) -> KGroupedStream<K2, V>
    where
        F: Fn(&K, &V) -> K2 + Send + Sync + 'static,
    {
        KGroupedStream::new(self.select_key(f))
    }

    /// Inner stream-stream join: each pair of records with the same key whose timestamps
    /// differ by at most the window's time difference, as soon as the second one arrives.
    pub fn join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, &VO) -> VR + Send + Sync + 'static,
    {
        let j: Joiner3<K, V, VO, VR> = Arc::new(move |_, v, o| match (v, o) {
            (Some(v), Some(o)) => Some(joiner(v, o)),
            _ => None,
        });
        self.stream_join(other, j, windows, JoinKind::Inner)
    }

    /// Left stream-stream join: like [`KStream::join`], and a left record that found no
    /// partner is emitted with `None` once its window has closed.
    pub fn left_join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let j: Joiner3<K, V, VO, VR> = Arc::new(move |_, v, o| v.map(|v| joiner(v, o)));
        self.stream_join(other, j, windows, JoinKind::Left)
    }

    /// Outer stream-stream join: unmatched records of either side are emitted with the
    /// other side `None` once their window has closed.
    pub fn outer_join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        F: Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let j: Joiner3<K, V, VO, VR> = Arc::new(move |_, v, o| Some(joiner(v, o)));
        self.stream_join(other, j, windows, JoinKind::Outer)
    }

    fn stream_join<VO: Codec, VR: Codec>(
        &self,
        other: &KStream<K, VO>,
        joiner: Joiner3<K, V, VO, VR>,
        windows: JoinWindows,
        kind: JoinKind,
    ) -> KStream<K, VR> {
        let base = self.b.next_name("KSTREAM-JOIN");
        let this = self.repartitioned_if_needed(&format!("{base}-left"));
        let that = other.repartitioned_if_needed(&format!("{base}-right"));
        let this_store = format!("{base}-this-store");
        let other_store = format!("{base}-other-store");
        let pending_store = format!("{base}-outer-shared-store");
        let retention = 2 * windows.diff + windows.grace;
        for name in [&this_store, &other_store] {
            self.b.add_store(StoreSpec {
                name: name.clone(),
                kind: StoreKind::Window { size: 0, retention },
                logged: true,
                persistent: true,
            });
        }
        if kind != JoinKind::Inner {
            self.b.add_store(StoreSpec {
                name: pending_store.clone(),
                kind: StoreKind::KeyValue,
                logged: true,
                persistent: true,
            });
        }
        // Both sides share one clock: the join node id reserved here.
        let clock = self.b.add_node(
            "KSTREAM-JOIN-MERGE",
            &[],
            |ctx: &mut Ctx<'_>, rec: Record| {
                ctx.forward(rec);
                Ok(())
            },
        );
        let cfg = Arc::new(JoinCfg {
            this_store,
            other_store,
            pending_store,
            windows,
            kind,
            clock,
        });
        for side in [Side::This, Side::Other] {
            let cfg = cfg.clone();
            let joiner = joiner.clone();
            let parent = if side == Side::This {
                this.node
            } else {
                that.node
            };
            let side_node = self.b.add_node(
                if side == Side::This {
                    "KSTREAM-JOINTHIS"
                } else {
                    "KSTREAM-JOINOTHER"
                },
                &[parent],
                move |ctx: &mut Ctx<'_>, rec: Record| {
                    cfg.process::<K, V, VO, VR>(ctx, rec, side, &joiner)
                },
            );
            self.b.link(side_node, clock);
        }
        KStream::new(self.b.clone(), clock, false)
    }

    /// Stream-table join: each stream record with a table entry for its key is joined
    /// with the table's current value (table updates alone emit nothing).
    pub fn join_table<VT: Codec, VR: Codec, F>(
        &self,
        table: &KTable<K, VT>,
        joiner: F,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, &VT) -> VR + Send + Sync + 'static,
    {
        self.table_lookup(table, move |v, t| t.map(|t| joiner(v, t)))
    }

    /// Left stream-table join: every stream record, with the table value if there is one.
    pub fn left_join_table<VT: Codec, VR: Codec, F>(
        &self,
        table: &KTable<K, VT>,
        joiner: F,
    ) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    {
        self.table_lookup(table, move |v, t| Some(joiner(v, t)))
    }

    fn table_lookup<VT: Codec, VR: Codec, F>(&self, table: &KTable<K, VT>, f: F) -> KStream<K, VR>
    where
        F: Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync + 'static,
    {
        let name = self.b.next_name("KSTREAM-JOIN");
        let this = self.repartitioned_if_needed(&name);
        let store = table.store.clone();
        this.derive("KSTREAM-JOIN", false, move |ctx, rec| {
            let (Some(k), Some(_)) = (&rec.key, &rec.value) else {
                return Ok(()); // Null keys and values cannot join.
            };
            let found = ctx.store(&store)?.get(k)?;
            let t: Option<VT> = match found {
                Some(b) => Some(VT::decode(Some(&b))?),
                None => None,
            };
            if let Some(out) = f(&decode(&rec.value)?, t.as_ref()) {
                ctx.forward(Record::new(rec.key, out.encode()?, rec.timestamp));
            }
            Ok(())
        })
    }

    /// Stream-global-table join: looks up `key_mapper(key, value)` in the global table.
    pub fn join_global<GK: Codec, GV: Codec, VR: Codec, M, F>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_mapper: M,
        joiner: F,
    ) -> KStream<K, VR>
    where
        M: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, &GV) -> VR + Send + Sync + 'static,
    {
        self.global_lookup(table, key_mapper, move |v, g| g.map(|g| joiner(v, g)))
    }

    /// Left stream-global-table join: every record, with the global value if there is one.
    pub fn left_join_global<GK: Codec, GV: Codec, VR: Codec, M, F>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_mapper: M,
        joiner: F,
    ) -> KStream<K, VR>
    where
        M: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    {
        self.global_lookup(table, key_mapper, move |v, g| Some(joiner(v, g)))
    }

    fn global_lookup<GK: Codec, GV: Codec, VR: Codec, M, F>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_mapper: M,
        f: F,
    ) -> KStream<K, VR>
    where
        M: Fn(&K, &V) -> GK + Send + Sync + 'static,
        F: Fn(&V, Option<&GV>) -> Option<VR> + Send + Sync + 'static,
    {
        let store = table.store.clone();
        // No repartitioning: every instance holds the whole global table.
        self.derive("KSTREAM-GLOBALJOIN", self.key_changed, move |ctx, rec| {
            if rec.value.is_none() {
                return Ok(());
            }
            let k: K = decode(&rec.key)?;
            let v: V = decode(&rec.value)?;
            let Some(gk) = key_mapper(&k, &v).encode()? else {
                return Ok(());
            };
            let found = ctx.global(&store)?.get(&gk)?;
            let g: Option<GV> = match found {
                Some(b) => Some(GV::decode(Some(&b))?),
                None => None,
            };
            if let Some(out) = f(&v, g.as_ref()) {
                ctx.forward(Record::new(rec.key, out.encode()?, rec.timestamp));
            }
            Ok(())
        })
    }
}

struct JoinCfg {
    this_store: String,
    other_store: String,
    pending_store: String,
    windows: JoinWindows,
    kind: JoinKind,
    clock: NodeId,
}

impl JoinCfg {
    /// Whether unmatched records of `side` are emitted alone once their window closes.
    fn emits_unmatched(&self, side: Side) -> bool {
        match self.kind {
            JoinKind::Inner => false,
            JoinKind::Left => side == Side::This,
            JoinKind::Outer => true,
        }
    }

    fn process<K: Codec, V: Codec, VO: Codec, VR: Codec>(
        &self,
        ctx: &mut Ctx<'_>,
        rec: Record,
        side: Side,
        joiner: &Joiner3<K, V, VO, VR>,
    ) -> Result<()> {
        let (Some(key), Some(value)) = (rec.key.clone(), rec.value.clone()) else {
            return Ok(()); // Null keys and values never join.
        };
        let t = rec.timestamp;
        let d = self.windows.diff;
        let stream_time = ctx.observe_as(self.clock, t);
        if t.saturating_add(d).saturating_add(self.windows.grace) < stream_time {
            tracing::debug!(
                timestamp = t,
                stream_time,
                "dropping a late record of a join"
            );
            return Ok(());
        }
        let (mine, theirs) = match side {
            Side::This => (&self.this_store, &self.other_store),
            Side::Other => (&self.other_store, &self.this_store),
        };
        let seq = {
            let mut s = ctx.store(mine)?;
            let seq = s.next_seq();
            s.put(&window_key(&key, t, seq), Some(value.clone()))?;
            s.observe(t);
            seq
        };
        let partners = ctx.store(theirs)?.prefix(&crate::state::key_prefix(&key))?;
        let k: K = K::decode(Some(&key))?;
        let mut matched = false;
        let mut out = Vec::new();
        for (pk, pv) in partners {
            let (_, pt, rest) = split_composite(&pk)?;
            let pseq = <[u8; 4]>::try_from(rest)
                .map(u32::from_be_bytes)
                .map_err(|_| crate::error::StreamsError::serde("bad join store key"))?;
            if pt < t - d || pt > t + d {
                continue;
            }
            matched = true;
            let other_side = match side {
                Side::This => Side::Other,
                Side::Other => Side::This,
            };
            if self.emits_unmatched(other_side) {
                // The partner is matched now: it must not be emitted alone later.
                ctx.store(&self.pending_store)?
                    .put(&pending_key(pt, other_side, pseq), None)?;
            }
            let joined = match side {
                Side::This => joiner(
                    &k,
                    Some(&V::decode(Some(&value))?),
                    Some(&VO::decode(Some(&pv))?),
                ),
                Side::Other => joiner(
                    &k,
                    Some(&V::decode(Some(&pv))?),
                    Some(&VO::decode(Some(&value))?),
                ),
            };
            if let Some(joined) = joined {
                out.push(Record::new(Some(key.clone()), joined.encode()?, t.max(pt)));
            }
        }
        if !matched && self.emits_unmatched(side) {
            let mut v = Vec::with_capacity(4 + key.len() + value.len());
            v.extend_from_slice(&(key.len() as u32).to_be_bytes());
            v.extend_from_slice(&key);
            v.extend_from_slice(&value);
            ctx.store(&self.pending_store)?
                .put(&pending_key(t, side, seq), Some(Bytes::from(v)))?;
        }
        for r in out {
            ctx.forward(r);
        }
        if self.kind != JoinKind::Inner {
            self.emit_closed::<K, V, VO, VR>(ctx, stream_time, joiner)?;
        }
        Ok(())
    }

    /// Emits unmatched records whose join window has closed, oldest first.
    fn emit_closed<K: Codec, V: Codec, VO: Codec, VR: Codec>(
        &self,
        ctx: &mut Ctx<'_>,
        stream_time: i64,
        joiner: &Joiner3<K, V, VO, VR>,
    ) -> Result<()> {
        let limit = stream_time
            .saturating_sub(self.windows.diff)
            .saturating_sub(self.windows.grace);
        let closed = ctx
            .store(&self.pending_store)?
            .range(None, Some(&flip(limit)))?;
        for (pk, pv) in closed {
            ctx.store(&self.pending_store)?.put(&pk, None)?;
            let ts = crate::state::unflip(pk.get(..8).unwrap_or_default())?;
            let side = if pk.get(8) == Some(&0) {
                Side::This
            } else {
                Side::Other
            };
            let klen = pv
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| crate::error::StreamsError::serde("bad pending join record"))?
                as usize;
            let key = pv.slice(4..4 + klen);
            let value = pv.slice(4 + klen..);
            let k = K::decode(Some(&key))?;
            let joined = match side {
                Side::This => joiner(&k, Some(&V::decode(Some(&value))?), None),
                Side::Other => joiner(&k, None, Some(&VO::decode(Some(&value))?)),
            };
            if let Some(joined) = joined {
                ctx.forward(Record::new(Some(key), joined.encode()?, ts));
            }
        }
        Ok(())
    }
}

fn pending_key(ts: i64, side: Side, seq: u32) -> Vec<u8> {
    let mut k = flip(ts).to_vec();
    k.push(if side == Side::This { 0 } else { 1 });
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
