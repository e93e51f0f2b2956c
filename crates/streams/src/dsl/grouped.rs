//! Grouped streams and their aggregations: plain, time-windowed (tumbling, hopping),
//! sliding and session-windowed.

use super::{
    decode, retention, Agg, KStream, KTable, Materialized, Merge, SessionWindows, SlidingWindows,
    TimeWindows,
};
use crate::codec::{windowed_bytes, Codec};
use crate::error::Result;
use crate::state::{key_prefix, session_key, split_composite, window_key, StoreKind, StoreSpec};
use crate::topology::{Ctx, Record};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A stream grouped by key, ready for aggregation.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
}

impl<K, V> std::fmt::Debug for KGroupedStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KGroupedStream").finish()
    }
}

fn store_name(stream: &KStream<impl Codec, impl Codec>, m: &Materialized, prefix: &str) -> String {
    m.name
        .clone()
        .unwrap_or_else(|| stream.b.next_name(&format!("{prefix}-STATE-STORE")))
}

fn count_agg<K, V>() -> Agg<K, V, i64> {
    Arc::new(|_, _, a: Option<i64>| a.unwrap_or(0) + 1)
}

fn reduce_agg<K, V: Clone + 'static, F>(reducer: F) -> Agg<K, V, V>
where
    F: Fn(&V, &V) -> V + Send + Sync + 'static,
{
    Arc::new(move |_, v: &V, a: Option<V>| match a {
        Some(a) => reducer(&a, v),
        None => v.clone(),
    })
}

fn aggregate_agg<K, V, VA: 'static, I, F>(init: I, f: F) -> Agg<K, V, VA>
where
    I: Fn() -> VA + Send + Sync + 'static,
    F: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
{
    Arc::new(move |k, v, a: Option<VA>| f(k, v, a.unwrap_or_else(&init)))
}

impl<K: Codec, V: Codec> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>) -> Self {
        KGroupedStream { stream }
    }

    /// Records per key.
    pub fn count(&self, materialized: impl Into<Materialized>) -> KTable<K, i64> {
        self.aggregate_with(materialized.into(), count_agg())
    }

    /// Combines the values of a key with `reducer(aggregate, value)`.
    pub fn reduce<F>(&self, reducer: F, materialized: impl Into<Materialized>) -> KTable<K, V>
    where
        F: Fn(&V, &V) -> V + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), reduce_agg(reducer))
    }

    /// Folds the values of a key into an aggregate starting at `init()`.
    pub fn aggregate<VA: Codec, I, F>(
        &self,
        init: I,
        aggregator: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<K, VA>
    where
        I: Fn() -> VA + Send + Sync + 'static,
        F: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), aggregate_agg(init, aggregator))
    }

    fn aggregate_with<VA: Codec>(&self, m: Materialized, agg: Agg<K, V, VA>) -> KTable<K, VA> {
        let name = store_name(&self.stream, &m, "KSTREAM-AGGREGATE");
        let input = self.stream.repartitioned_if_needed(&name);
        input.b.add_store(StoreSpec {
            name: name.clone(),
            kind: StoreKind::KeyValue,
            logged: m.logging,
            persistent: m.persistent,
        });
        let store = name.clone();
        let node = input.b.add_node(
            "KSTREAM-AGGREGATE",
            &[input.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let (Some(key), Some(_)) = (&rec.key, &rec.value) else {
                    return Ok(()); // Aggregations skip null keys and values, as Kafka's do.
                };
                let k: K = decode(&rec.key)?;
                let v: V = decode(&rec.value)?;
                let new = {
                    let mut s = ctx.store(&store)?;
                    let old = s.get(key)?.map(|b| VA::decode(Some(&b))).transpose()?;
                    let new = agg(&k, &v, old).encode()?;
                    s.put(key, new.clone())?;
                    new
                };
                ctx.forward(Record::new(Some(key.clone()), new, rec.timestamp));
                Ok(())
            },
        );
        KTable::new(input.b.clone(), node, name, None)
    }

    /// Aggregates per tumbling or hopping window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            stream: self.stream.clone(),
            windows,
        }
    }

    /// Aggregates per sliding window.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            stream: self.stream.clone(),
            windows,
        }
    }

    /// Aggregates per session.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream {
            stream: self.stream.clone(),
            windows,
        }
    }
}

/// A grouped stream aggregated per fixed-size (tumbling or hopping) window.
pub struct TimeWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: TimeWindows,
}

impl<K, V> std::fmt::Debug for TimeWindowedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeWindowedKStream")
            .field("windows", &self.windows)
            .finish()
    }
}

impl<K: Codec, V: Codec> TimeWindowedKStream<K, V> {
    /// Records per key and window.
    pub fn count(&self, materialized: impl Into<Materialized>) -> KTable<crate::Windowed<K>, i64> {
        self.aggregate_with(materialized.into(), count_agg())
    }

    /// Combines the values per key and window.
    pub fn reduce<F>(
        &self,
        reducer: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, V>
    where
        F: Fn(&V, &V) -> V + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), reduce_agg(reducer))
    }

    /// Folds the values per key and window.
    pub fn aggregate<VA: Codec, I, F>(
        &self,
        init: I,
        aggregator: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, VA>
    where
        I: Fn() -> VA + Send + Sync + 'static,
        F: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), aggregate_agg(init, aggregator))
    }

    fn aggregate_with<VA: Codec>(
        &self,
        m: Materialized,
        agg: Agg<K, V, VA>,
    ) -> KTable<crate::Windowed<K>, VA> {
        let w = self.windows;
        let name = store_name(&self.stream, &m, "KSTREAM-AGGREGATE");
        let input = self.stream.repartitioned_if_needed(&name);
        input.b.add_store(StoreSpec {
            name: name.clone(),
            kind: StoreKind::Window {
                size: w.size,
                retention: retention(&m, w.size + w.grace),
            },
            logged: m.logging,
            persistent: m.persistent,
        });
        let store = name.clone();
        let node = input.b.add_node(
            "KSTREAM-WINDOWAGGREGATE",
            &[input.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let (Some(key), Some(_)) = (&rec.key, &rec.value) else {
                    return Ok(());
                };
                let t = rec.timestamp;
                let stream_time = ctx.observe(t);
                let k: K = decode(&rec.key)?;
                let v: V = decode(&rec.value)?;
                let mut out = Vec::new();
                for start in w.starts_for(t) {
                    let end = start + w.size;
                    if end.saturating_add(w.grace) <= stream_time {
                        tracing::debug!(
                            timestamp = t,
                            start,
                            "dropping a record for a closed window"
                        );
                        continue;
                    }
                    let mut s = ctx.store(&store)?;
                    let wk = window_key(key, start, 0);
                    let old = s.get(&wk)?.map(|b| VA::decode(Some(&b))).transpose()?;
                    let new = agg(&k, &v, old).encode()?;
                    s.put(&wk, new.clone())?;
                    s.observe(t);
                    out.push(Record::new(Some(windowed_bytes(key, start, end)), new, t));
                }
                for r in out {
                    ctx.forward(r);
                }
                Ok(())
            },
        );
        KTable::new(input.b.clone(), node, name, Some(w.grace))
    }
}

/// A grouped stream aggregated per sliding window.
pub struct SlidingWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SlidingWindows,
}

impl<K, V> std::fmt::Debug for SlidingWindowedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlidingWindowedKStream")
            .field("windows", &self.windows)
            .finish()
    }
}

impl<K: Codec, V: Codec> SlidingWindowedKStream<K, V> {
    /// Records per key and window.
    pub fn count(&self, materialized: impl Into<Materialized>) -> KTable<crate::Windowed<K>, i64> {
        self.aggregate_with(materialized.into(), count_agg())
    }

    /// Combines the values per key and window.
    pub fn reduce<F>(
        &self,
        reducer: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, V>
    where
        F: Fn(&V, &V) -> V + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), reduce_agg(reducer))
    }

    /// Folds the values per key and window.
    pub fn aggregate<VA: Codec, I, F>(
        &self,
        init: I,
        aggregator: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, VA>
    where
        I: Fn() -> VA + Send + Sync + 'static,
        F: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.aggregate_with(materialized.into(), aggregate_agg(init, aggregator))
    }

    /// Each record updates every window that contains it: the window ending at the record
    /// (starting at most `diff` earlier, not before 0), the windows ending at later records
    /// within `diff`, the window starting just after it when later records exist, and the
    /// windows starting just after earlier records within `diff`. Each affected window is
    /// recomputed from the raw records of the key (kept in a second store).
    fn aggregate_with<VA: Codec>(
        &self,
        m: Materialized,
        agg: Agg<K, V, VA>,
    ) -> KTable<crate::Windowed<K>, VA> {
        let w = self.windows;
        let name = store_name(&self.stream, &m, "KSTREAM-SLIDINGAGGREGATE");
        let records_store = format!("{name}-records");
        let input = self.stream.repartitioned_if_needed(&name);
        input.b.add_store(StoreSpec {
            name: name.clone(),
            kind: StoreKind::Window {
                size: w.diff,
                retention: retention(&m, w.diff + w.grace),
            },
            logged: m.logging,
            persistent: m.persistent,
        });
        input.b.add_store(StoreSpec {
            name: records_store.clone(),
            kind: StoreKind::Window {
                size: 0,
                retention: 2 * w.diff + w.grace,
            },
            logged: m.logging,
            persistent: m.persistent,
        });
        let store = name.clone();
        let node = input.b.add_node(
            "KSTREAM-SLIDINGWINDOWAGGREGATE",
            &[input.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let (Some(key), Some(value)) = (&rec.key, &rec.value) else {
                    return Ok(());
                };
                let t = rec.timestamp;
                let d = w.diff;
                let stream_time = ctx.observe(t);
                if t < 0 || t.saturating_add(d).saturating_add(w.grace) <= stream_time {
                    tracing::debug!(timestamp = t, "dropping a late record of a sliding window");
                    return Ok(());
                }
                let records: Vec<(i64, V)> = {
                    let mut raw = ctx.store(&records_store)?;
                    let seq = raw.next_seq();
                    raw.put(&window_key(key, t, seq), Some(value.clone()))?;
                    raw.observe(t);
                    raw.prefix(&key_prefix(key))?
                        .into_iter()
                        .map(|(k, v)| Ok((split_composite(&k)?.1, V::decode(Some(&v))?)))
                        .collect::<Result<_>>()?
                };
                let mut starts = BTreeSet::new();
                starts.insert((t - d).max(0));
                for (rt, _) in &records {
                    if *rt > t && *rt <= t + d {
                        starts.insert((rt - d).max(0));
                    }
                    if *rt < t && *rt >= t - d {
                        starts.insert(rt + 1);
                    }
                }
                if records.iter().any(|(rt, _)| *rt > t && *rt <= t + d + 1) {
                    starts.insert(t + 1);
                }
                let k: K = decode(&rec.key)?;
                let mut out = Vec::new();
                for start in starts {
                    let end = start + d;
                    if end.saturating_add(w.grace) <= stream_time {
                        continue; // Closed already.
                    }
                    let mut acc: Option<VA> = None;
                    let mut newest = i64::MIN;
                    for (rt, v) in &records {
                        if *rt >= start && *rt <= end {
                            acc = Some(agg(&k, v, acc));
                            newest = newest.max(*rt);
                        }
                    }
                    let Some(acc) = acc else { continue };
                    let bytes = acc.encode()?;
                    let mut s = ctx.store(&store)?;
                    s.put(&window_key(key, start, 0), bytes.clone())?;
                    s.observe(t);
                    out.push(Record::new(
                        Some(windowed_bytes(key, start, end)),
                        bytes,
                        newest,
                    ));
                }
                for r in out {
                    ctx.forward(r);
                }
                Ok(())
            },
        );
        KTable::new(input.b.clone(), node, name, Some(w.grace))
    }
}

/// A grouped stream aggregated per session.
pub struct SessionWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SessionWindows,
}

impl<K, V> std::fmt::Debug for SessionWindowedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWindowedKStream")
            .field("windows", &self.windows)
            .finish()
    }
}

impl<K: Codec, V: Codec> SessionWindowedKStream<K, V> {
    /// Records per key and session.
    pub fn count(&self, materialized: impl Into<Materialized>) -> KTable<crate::Windowed<K>, i64> {
        self.aggregate_with(materialized.into(), count_agg(), Arc::new(|_, a, b| a + b))
    }

    /// Combines the values per key and session (merging sessions with the same reducer).
    pub fn reduce<F>(
        &self,
        reducer: F,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, V>
    where
        F: Fn(&V, &V) -> V + Send + Sync + 'static,
    {
        let reducer = Arc::new(reducer);
        let r2 = reducer.clone();
        self.aggregate_with(
            materialized.into(),
            reduce_agg(move |a, b| reducer(a, b)),
            Arc::new(move |_, a, b| r2(&a, &b)),
        )
    }

    /// Folds the values per key and session; `merger` combines two sessions' aggregates
    /// when a record bridges them.
    pub fn aggregate<VA: Codec, I, F, M>(
        &self,
        init: I,
        aggregator: F,
        merger: M,
        materialized: impl Into<Materialized>,
    ) -> KTable<crate::Windowed<K>, VA>
    where
        I: Fn() -> VA + Send + Sync + 'static,
        F: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        M: Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    {
        self.aggregate_with(
            materialized.into(),
            aggregate_agg(init, aggregator),
            Arc::new(merger),
        )
    }

    fn aggregate_with<VA: Codec>(
        &self,
        m: Materialized,
        agg: Agg<K, V, VA>,
        merge: Merge<K, VA>,
    ) -> KTable<crate::Windowed<K>, VA> {
        let w = self.windows;
        let name = store_name(&self.stream, &m, "KSTREAM-SESSIONAGGREGATE");
        let input = self.stream.repartitioned_if_needed(&name);
        input.b.add_store(StoreSpec {
            name: name.clone(),
            kind: StoreKind::Session {
                retention: retention(&m, w.gap + w.grace),
            },
            logged: m.logging,
            persistent: m.persistent,
        });
        let store = name.clone();
        let node = input.b.add_node(
            "KSTREAM-SESSIONAGGREGATE",
            &[input.node],
            move |ctx: &mut Ctx<'_>, rec: Record| {
                let (Some(key), Some(_)) = (&rec.key, &rec.value) else {
                    return Ok(());
                };
                let t = rec.timestamp;
                let stream_time = ctx.observe(t);
                let k: K = decode(&rec.key)?;
                let v: V = decode(&rec.value)?;
                let mut s = ctx.store(&store)?;
                let mut merged: Vec<(bytes::Bytes, i64, i64, VA)> = Vec::new();
                for (sk, sv) in s.prefix(&key_prefix(key))? {
                    let (_, end, rest) = split_composite(&sk)?;
                    let start = crate::state::unflip(rest)?;
                    if end >= t - w.gap && start <= t + w.gap {
                        merged.push((sk.clone(), start, end, VA::decode(Some(&sv))?));
                    }
                }
                let start = merged.iter().map(|m| m.1).fold(t, i64::min);
                let end = merged.iter().map(|m| m.2).fold(t, i64::max);
                if end.saturating_add(w.grace) < stream_time {
                    tracing::debug!(timestamp = t, "dropping a record for a closed session");
                    return Ok(());
                }
                let mut acc: Option<VA> = None;
                let mut out = Vec::new();
                for (sk, s_start, s_end, value) in merged {
                    acc = Some(match acc {
                        None => value,
                        Some(a) => merge(&k, a, value),
                    });
                    s.put(&sk, None)?;
                    if (s_start, s_end) != (start, end) {
                        out.push(Record::new(
                            Some(windowed_bytes(key, s_start, s_end)),
                            None,
                            t,
                        ));
                    }
                }
                let bytes = agg(&k, &v, acc).encode()?;
                s.put(&session_key(key, start, end), bytes.clone())?;
                s.observe(t);
                drop(s);
                out.push(Record::new(Some(windowed_bytes(key, start, end)), bytes, t));
                for r in out {
                    ctx.forward(r);
                }
                Ok(())
            },
        );
        KTable::new(input.b.clone(), node, name, Some(w.grace))
    }
}
