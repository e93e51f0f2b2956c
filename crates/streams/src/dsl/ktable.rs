//! [`KTable`] (a changelog stream seen as the latest value per key) and [`GlobalKTable`].

use super::{decode, KStream, Materialized, StreamsBuilder, Suppressed};
use crate::codec::{split_windowed, Codec, Windowed};
use crate::error::Result;
use crate::state::flip;
use crate::topology::{Ctx, NodeId, Record};
use bytes::{BufMut, Bytes, BytesMut};
use std::marker::PhantomData;
use std::sync::Arc;

/// A table: the latest value per key, with updates flowing downstream as they happen.
///
/// Every table is materialized in a state store (named by [`Materialized`] or generated),
/// which serves lookups of joins and interactive queries. An update is forwarded when the
/// key has a value, or when a value was deleted (a tombstone); deleting a missing key
/// forwards nothing.
pub struct KTable<K, V> {
    pub(crate) b: StreamsBuilder,
    pub(crate) node: NodeId,
    pub(crate) store: String,
    /// Grace of the windows, for a windowed table (drives `suppress`).
    pub(crate) window_grace: Option<i64>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            b: self.b.clone(),
            node: self.node,
            store: self.store.clone(),
            window_grace: self.window_grace,
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KTable")
            .field("store", &self.store)
            .finish()
    }
}

type Compute = dyn Fn(&mut Ctx<'_>, &Record) -> Result<Option<Bytes>> + Send + Sync;

/// A processor keeping `store` equal to `compute(record)` per key and forwarding changes.
pub(crate) fn upsert_processor(
    store: String,
    compute: impl Fn(&mut Ctx<'_>, &Record) -> Result<Option<Bytes>> + Send + Sync + 'static,
) -> impl Fn(&mut Ctx<'_>, Record) -> Result<()> + Send + Sync + 'static {
    let compute: Arc<Compute> = Arc::new(compute);
    move |ctx, rec| {
        let Some(key) = rec.key.clone() else {
            return Ok(()); // Tables have no null keys.
        };
        let new = compute(ctx, &rec)?;
        let old = {
            let mut s = ctx.store(&store)?;
            let old = s.get(&key)?;
            if old != new {
                s.put(&key, new.clone())?;
            }
            old
        };
        if new.is_some() || old.is_some() {
            let mut out = Record::new(Some(key), new, rec.timestamp);
            out.old = old;
            ctx.forward(out);
        }
        Ok(())
    }
}

impl<K: Codec, V: Codec> KTable<K, V> {
    pub(crate) fn new(
        b: StreamsBuilder,
        node: NodeId,
        store: String,
        window_grace: Option<i64>,
    ) -> Self {
        KTable {
            b,
            node,
            store,
            window_grace,
            _types: PhantomData,
        }
    }

    /// The name of the store holding this table (for [`crate::KafkaStreams::store`]).
    pub fn store_name(&self) -> &str {
        &self.store
    }

    fn derive<V2: Codec>(
        &self,
        prefix: &str,
        materialized: Materialized,
        compute: impl Fn(&mut Ctx<'_>, &Record) -> Result<Option<Bytes>> + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let store = self
            .b
            .add_kv_store(&materialized, &format!("{prefix}-STATE-STORE"));
        let node = self.b.add_node(
            prefix,
            &[self.node],
            upsert_processor(store.clone(), compute),
        );
        KTable::new(self.b.clone(), node, store, self.window_grace)
    }

    /// Keeps entries for which `predicate` holds; an entry that stops matching is deleted
    /// downstream (a tombstone is forwarded).
    pub fn filter<F>(&self, predicate: F, materialized: impl Into<Materialized>) -> KTable<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.derive("KTABLE-FILTER", materialized.into(), move |_, rec| {
            if rec.value.is_none() {
                return Ok(None);
            }
            let keep = predicate(&decode(&rec.key)?, &decode(&rec.value)?);
            Ok(if keep { rec.value.clone() } else { None })
        })
    }

    /// Drops entries for which `predicate` holds.
    pub fn filter_not<F>(&self, predicate: F, materialized: impl Into<Materialized>) -> KTable<K, V>
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.filter(move |k, v| !predicate(k, v), materialized)
    }

    /// Maps each value (deletes stay deletes).
    pub fn map_values<V2: Codec, F>(
        &self,
        f: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, V2>
    where
        F: Fn(&V) -> V2 + Send + Sync + 'static,
    {
        self.derive("KTABLE-MAPVALUES", materialized.into(), move |_, rec| {
            if rec.value.is_none() {
                return Ok(None);
            }
            f(&decode(&rec.value)?).encode()
        })
    }

    /// The stream of updates (deletes are left out: see [`KTable::to_change_stream`]).
    pub fn to_stream(&self) -> KStream<K, V> {
        let node = self.b.add_node(
            "KTABLE-TOSTREAM",
            &[self.node],
            |ctx: &mut Ctx<'_>, rec: Record| {
                if rec.value.is_some() {
                    ctx.forward(rec);
                }
                Ok(())
            },
        );
        KStream::new(self.b.clone(), node, false)
    }

    /// The stream of updates and deletes (`None`).
    pub fn to_change_stream(&self) -> KStream<K, Option<V>> {
        let node = self.b.add_node(
            "KTABLE-TOSTREAM",
            &[self.node],
            |ctx: &mut Ctx<'_>, rec: Record| {
                ctx.forward(rec);
                Ok(())
            },
        );
        KStream::new(self.b.clone(), node, false)
    }

    /// Re-groups the table by a new key (and value) for an aggregation that follows every
    /// change: an update subtracts the row's previous value from its old group and adds
    /// the new value to its new group (through a repartition topic).
    pub fn group_by<K2: Codec, V2: Codec, F>(&self, selector: F) -> KGroupedTable<K2, V2>
    where
        F: Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    {
        let node = self.b.add_node(
            "KTABLE-SELECT",
            &[self.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let k: K = decode(&rec.key)?;
                // Subtract first, then add: a row that stays in its group nets out.
                if let Some(old) = &rec.old {
                    let (k2, v2) = selector(&k, &V::decode(Some(old))?);
                    let change = encode_change(v2.encode()?.as_deref(), None);
                    ctx.forward(Record::new(k2.encode()?, Some(change), rec.timestamp));
                }
                if let Some(new) = &rec.value {
                    let (k2, v2) = selector(&k, &V::decode(Some(new))?);
                    let change = encode_change(None, v2.encode()?.as_deref());
                    ctx.forward(Record::new(k2.encode()?, Some(change), rec.timestamp));
                }
                Ok(())
            },
        );
        KGroupedTable {
            b: self.b.clone(),
            node,
            _types: PhantomData,
        }
    }

    /// Inner table-table join: a row wherever both tables have the key, updated when
    /// either side changes.
    pub fn join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, VR>
    where
        F: Fn(&V, &VO) -> VR + Send + Sync + 'static,
    {
        self.table_join(other, materialized.into(), move |l, r| match (l, r) {
            (Some(l), Some(r)) => Some(joiner(l, r)),
            _ => None,
        })
    }

    /// Left table-table join: a row wherever this table has the key.
    pub fn left_join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, VR>
    where
        F: Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        self.table_join(other, materialized.into(), move |l, r| {
            l.map(|l| joiner(l, r))
        })
    }

    /// Outer table-table join: a row wherever either table has the key.
    pub fn outer_join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, VR>
    where
        F: Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        self.table_join(other, materialized.into(), move |l, r| {
            if l.is_none() && r.is_none() {
                None
            } else {
                Some(joiner(l, r))
            }
        })
    }

    fn table_join<VO: Codec, VR: Codec, F>(
        &self,
        other: &KTable<K, VO>,
        materialized: Materialized,
        join: F,
    ) -> KTable<K, VR>
    where
        F: Fn(Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync + 'static,
    {
        let store = self
            .b
            .add_kv_store(&materialized, "KTABLE-JOIN-STATE-STORE");
        let join = Arc::new(join);
        let (left_store, right_store) = (self.store.clone(), other.store.clone());
        let compute = move |ctx: &mut Ctx<'_>, rec: &Record| -> Result<Option<Bytes>> {
            let Some(k) = &rec.key else { return Ok(None) };
            // Both source tables are already updated: read the current row of each.
            let l = ctx.store(&left_store)?.get(k)?;
            let r = ctx.store(&right_store)?.get(k)?;
            let l: Option<V> = l.map(|b| V::decode(Some(&b))).transpose()?;
            let r: Option<VO> = r.map(|b| VO::decode(Some(&b))).transpose()?;
            match join(l.as_ref(), r.as_ref()) {
                Some(v) => v.encode(),
                None => Ok(None),
            }
        };
        let compute = Arc::new(compute);
        let c1 = compute.clone();
        let left = self.b.add_node(
            "KTABLE-JOINTHIS",
            &[self.node],
            upsert_processor(store.clone(), move |ctx, rec| c1(ctx, rec)),
        );
        let right = self.b.add_node(
            "KTABLE-JOINOTHER",
            &[other.node],
            upsert_processor(store.clone(), move |ctx, rec| compute(ctx, rec)),
        );
        let merge = self.b.add_node(
            "KTABLE-MERGE",
            &[left, right],
            |ctx: &mut Ctx<'_>, rec: Record| {
                ctx.forward(rec);
                Ok(())
            },
        );
        KTable::new(self.b.clone(), merge, store, None)
    }
}

impl<K: Codec, V: Codec> KTable<Windowed<K>, V> {
    /// Holds back updates of a windowed table: with
    /// [`Suppressed::until_window_closes`], each window's final value is emitted once,
    /// when stream time passes the window's end plus its grace. The buffer is a
    /// changelogged store, so pending results survive a failure.
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<Windowed<K>, V> {
        let Suppressed::UntilWindowCloses = suppressed;
        let grace = self.window_grace.unwrap_or(0);
        let materialized = Materialized::default();
        let buffer = self
            .b
            .add_kv_store(&materialized, "KTABLE-SUPPRESS-STATE-STORE");
        let store = buffer.clone();
        let node = self.b.add_node(
            "KTABLE-SUPPRESS",
            &[self.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let Some(key) = rec.key.clone() else {
                    return Ok(());
                };
                let stream_time = ctx.observe(rec.timestamp);
                let (_, _, end) = split_windowed(&key)?;
                let mut bk = BytesMut::with_capacity(8 + key.len());
                bk.put_slice(&flip(end));
                bk.put_slice(&key);
                // Value: timestamp, then the value (absent: a superseded session, not emitted).
                let mut bv = BytesMut::new();
                bv.put_i64(rec.timestamp);
                if let Some(v) = &rec.value {
                    bv.put_u8(1);
                    bv.put_slice(v);
                } else {
                    bv.put_u8(0);
                }
                let closed = {
                    let mut s = ctx.store(&store)?;
                    s.put(&bk, Some(bv.freeze()))?;
                    let limit = stream_time.saturating_sub(grace).saturating_add(1);
                    let closed = s.range(None, Some(&flip(limit)))?;
                    for (k, _) in &closed {
                        s.put(k, None)?;
                    }
                    closed
                };
                for (k, v) in closed {
                    if v.len() < 9 || v[8] == 0 {
                        continue;
                    }
                    let ts = crate::codec::be_i64(&v[..8])?;
                    ctx.forward(Record::new(Some(k.slice(8..)), Some(v.slice(9..)), ts));
                }
                Ok(())
            },
        );
        KTable::new(self.b.clone(), node, self.store.clone(), self.window_grace)
    }
}

/// `flags (1: old, 2: new) | len(old) u32 | old | new`: a table change on its way to a
/// regrouped aggregation.
fn encode_change(old: Option<&[u8]>, new: Option<&[u8]>) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(u8::from(old.is_some()) | (u8::from(new.is_some()) << 1));
    let old = old.unwrap_or_default();
    b.put_u32(old.len() as u32);
    b.put_slice(old);
    b.put_slice(new.unwrap_or_default());
    b.freeze()
}

fn decode_change(b: &Bytes) -> Result<(Option<Bytes>, Option<Bytes>)> {
    let bad = || crate::error::StreamsError::serde("bad table change record");
    let flags = *b.first().ok_or_else(bad)?;
    let len = b
        .get(1..5)
        .and_then(|l| <[u8; 4]>::try_from(l).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(bad)? as usize;
    if b.len() < 5 + len {
        return Err(bad());
    }
    let old = (flags & 1 != 0).then(|| b.slice(5..5 + len));
    let new = (flags & 2 != 0).then(|| b.slice(5 + len..));
    Ok((old, new))
}

type TableAgg<K, V, VA> =
    Arc<dyn Fn(&K, Option<VA>, Option<&V>, Option<&V>) -> Option<VA> + Send + Sync>;

/// A table regrouped by [`KTable::group_by`], ready for aggregation.
pub struct KGroupedTable<K, V> {
    b: StreamsBuilder,
    node: NodeId,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for KGroupedTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KGroupedTable").finish()
    }
}

impl<K: Codec, V: Codec> KGroupedTable<K, V> {
    /// Rows per group.
    pub fn count(&self, materialized: impl Into<Materialized>) -> KTable<K, i64> {
        self.aggregate_with(
            materialized.into(),
            Arc::new(|_, agg: Option<i64>, old: Option<&V>, new: Option<&V>| {
                Some(agg.unwrap_or(0) - i64::from(old.is_some()) + i64::from(new.is_some()))
            }),
        )
    }

    /// Combines the rows of a group: `adder(aggregate, new row)`, and
    /// `subtractor(aggregate, old row)` when a row leaves the group or changes.
    pub fn reduce<A, S>(
        &self,
        adder: A,
        subtractor: S,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, V>
    where
        A: Fn(&V, &V) -> V + Send + Sync + 'static,
        S: Fn(&V, &V) -> V + Send + Sync + 'static,
    {
        self.aggregate_with(
            materialized.into(),
            Arc::new(move |_, agg: Option<V>, old: Option<&V>, new: Option<&V>| {
                let agg = match (agg, old) {
                    (Some(a), Some(o)) => Some(subtractor(&a, o)),
                    (a, _) => a,
                };
                match (agg, new) {
                    (Some(a), Some(n)) => Some(adder(&a, n)),
                    (None, Some(n)) => Some(n.clone()),
                    (a, None) => a,
                }
            }),
        )
    }

    /// Folds the rows of a group, starting at `init()`.
    pub fn aggregate<VA: Codec, I, A, S>(
        &self,
        init: I,
        adder: A,
        subtractor: S,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, VA>
    where
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        S: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.aggregate_with(
            materialized.into(),
            Arc::new(
                move |k, agg: Option<VA>, old: Option<&V>, new: Option<&V>| {
                    let mut agg = agg.unwrap_or_else(&init);
                    if let Some(o) = old {
                        agg = subtractor(k, o, agg);
                    }
                    if let Some(n) = new {
                        agg = adder(k, n, agg);
                    }
                    Some(agg)
                },
            ),
        )
    }

    fn aggregate_with<VA: Codec>(&self, m: Materialized, agg: TableAgg<K, V, VA>) -> KTable<K, VA> {
        let store = m
            .name
            .clone()
            .unwrap_or_else(|| self.b.next_name("KTABLE-AGGREGATE-STATE-STORE"));
        let source = self.b.add_repartition(self.node, &store, true);
        let store = self.b.add_kv_store(
            &Materialized {
                name: Some(store),
                ..m
            },
            "",
        );
        let name = store.clone();
        let node = self.b.add_node(
            "KTABLE-AGGREGATE",
            &[source],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let (Some(key), Some(change)) = (&rec.key, &rec.value) else {
                    return Ok(());
                };
                let (old, new) = decode_change(change)?;
                let k = K::decode(Some(key))?;
                let old = old.map(|b| V::decode(Some(&b))).transpose()?;
                let new = new.map(|b| V::decode(Some(&b))).transpose()?;
                let (prev, next) = {
                    let mut s = ctx.store(&name)?;
                    let prev = s.get(key)?;
                    let current = prev.as_ref().map(|b| VA::decode(Some(b))).transpose()?;
                    let next = match agg(&k, current, old.as_ref(), new.as_ref()) {
                        Some(v) => v.encode()?,
                        None => None,
                    };
                    s.put(key, next.clone())?;
                    (prev, next)
                };
                if next.is_some() || prev.is_some() {
                    let mut out = Record::new(Some(key.clone()), next, rec.timestamp);
                    out.old = prev;
                    ctx.forward(out);
                }
                Ok(())
            },
        );
        KTable::new(self.b.clone(), node, store, None)
    }
}

/// A table replicated in full on every instance, read from all partitions of its topic
/// before processing starts and kept up to date while running. Used for stream joins by a
/// key derived from the stream record, without co-partitioning.
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            store: self.store.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for GlobalKTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalKTable")
            .field("store", &self.store)
            .finish()
    }
}

impl<K, V> GlobalKTable<K, V> {
    pub(crate) fn new(store: String) -> Self {
        GlobalKTable {
            store,
            _types: PhantomData,
        }
    }

    /// The name of the store holding this table.
    pub fn store_name(&self) -> &str {
        &self.store
    }
}
