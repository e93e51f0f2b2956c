//! State stores: byte-level key-value engines (in memory, or persistent on fjall), the window
//! and session layouts built on them, changelog logging, restore, and the typed read-only
//! handles of interactive queries.
//!
//! Every store of a task is a [`KeyValueStore`] of bytes. Window and session stores are the
//! same engine with composite keys, so one persistent implementation serves all three kinds
//! and a changelog record is always `(store key, value or tombstone)`:
//!
//! * window store key: `len(key) u32 | key | start (i64, sign-flipped big-endian) | seq u32`
//!   (`seq` keeps duplicates apart in join buffers; aggregates use 0), so a prefix scan of
//!   one key yields its windows in time order;
//! * session store key: `len(key) u32 | key | end (flipped) | start (flipped)`.

use crate::codec::{Codec, Window, Windowed};
use crate::error::{Result, StreamsError};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// An ordered byte key-value engine: the storage under every state store.
pub trait KeyValueStore: Send {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Writes `key`.
    fn put(&mut self, key: &[u8], value: Bytes) -> Result<()>;
    /// Removes `key`.
    fn delete(&mut self, key: &[u8]) -> Result<()>;
    /// Entries with `from <= key < to` (`None`: unbounded), in key order.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<(Bytes, Bytes)>>;
    /// Makes written data durable (no-op in memory).
    fn flush(&mut self) -> Result<()>;
    /// Removes everything (before a restore from scratch).
    fn clear(&mut self) -> Result<()>;
}

/// A [`KeyValueStore`] in a `BTreeMap`: fast, lost on exit, rebuilt from the changelog.
#[derive(Debug, Default)]
pub struct InMemoryKeyValueStore {
    map: BTreeMap<Bytes, Bytes>,
}

impl InMemoryKeyValueStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn bounds<'a>(from: Option<&'a [u8]>, to: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (
        from.map_or(Bound::Unbounded, Bound::Included),
        to.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

impl KeyValueStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map.get(key).cloned())
    }
    fn put(&mut self, key: &[u8], value: Bytes) -> Result<()> {
        self.map.insert(Bytes::copy_from_slice(key), value);
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.map.remove(key);
        Ok(())
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Ok(Vec::new());
            }
        }
        Ok(self
            .map
            .range::<[u8], _>(bounds(from, to))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn clear(&mut self) -> Result<()> {
        self.map.clear();
        Ok(())
    }
}

/// A persistent [`KeyValueStore`]: one fjall keyspace (an LSM tree) in the task's database.
pub struct FjallKeyValueStore {
    name: String,
    db: fjall::Database,
    keyspace: fjall::Keyspace,
}

impl std::fmt::Debug for FjallKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallKeyValueStore")
            .field("name", &self.name)
            .finish()
    }
}

impl FjallKeyValueStore {
    /// Opens (or creates) the database in `dir` and the keyspace `name` in it.
    pub fn open(dir: &Path, name: &str) -> Result<Self> {
        let db = fjall::Database::builder(dir)
            .open()
            .map_err(|e| StreamsError::store(name, e))?;
        Self::in_database(&db, name)
    }

    /// Opens (or creates) the keyspace `name` in an open database.
    pub fn in_database(db: &fjall::Database, name: &str) -> Result<Self> {
        if name.is_empty() || name.len() > 255 {
            return Err(StreamsError::store(
                name,
                "fjall keyspace names have 1-255 bytes",
            ));
        }
        let keyspace = db
            .keyspace(name, fjall::KeyspaceCreateOptions::default)
            .map_err(|e| StreamsError::store(name, e))?;
        Ok(FjallKeyValueStore {
            name: name.to_string(),
            db: db.clone(),
            keyspace,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> StreamsError {
        StreamsError::store(&self.name, e)
    }
}

impl KeyValueStore for FjallKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let v = self.keyspace.get(key).map_err(|e| self.err(e))?;
        Ok(v.map(|v| Bytes::copy_from_slice(&v)))
    }
    fn put(&mut self, key: &[u8], value: Bytes) -> Result<()> {
        self.keyspace
            .insert(key, value.as_ref())
            .map_err(|e| self.err(e))
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.keyspace.remove(key).map_err(|e| self.err(e))
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<(Bytes, Bytes)>> {
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::new();
        for guard in self.keyspace.range::<&[u8], _>(bounds(from, to)) {
            let (k, v) = guard.into_inner().map_err(|e| self.err(e))?;
            out.push((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)));
        }
        Ok(out)
    }
    fn flush(&mut self) -> Result<()> {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(|e| self.err(e))
    }
    fn clear(&mut self) -> Result<()> {
        self.keyspace.clear().map_err(|e| self.err(e))
    }
}

/// What a store holds, which decides its key layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Plain keys.
    KeyValue,
    /// Windows of a fixed `size`, kept for `retention` ms of stream time.
    Window {
        /// Window length (end = start + size).
        size: i64,
        /// How long windows are kept behind the newest record.
        retention: i64,
    },
    /// Sessions, kept for `retention` ms of stream time after their end.
    Session {
        /// How long sessions are kept behind the newest record.
        retention: i64,
    },
}

/// Declaration of a store in a topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store name (unique in the topology; the changelog is
    /// `<application.id>-<name>-changelog`).
    pub name: String,
    /// Layout.
    pub kind: StoreKind,
    /// Whether the store is backed by a changelog topic.
    pub logged: bool,
    /// Whether the runtime keeps it on disk (fjall) rather than in memory.
    pub persistent: bool,
}

/// The changelog topic of a store.
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

pub(crate) fn flip(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn unflip(b: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = b
        .try_into()
        .map_err(|_| StreamsError::serde("bad timestamp in store key"))?;
    Ok((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

/// `len | key`: the prefix of every window or session entry of `key`.
pub(crate) fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 12);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) fn window_key(key: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&flip(start));
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

pub(crate) fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&flip(end));
    out.extend_from_slice(&flip(start));
    out
}

/// Splits a window or session store key into `(key, first time, second field)`.
pub(crate) fn split_composite(b: &[u8]) -> Result<(&[u8], i64, &[u8])> {
    let bad = || StreamsError::serde("bad composite store key");
    let len_bytes: [u8; 4] = b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let key = b.get(4..4 + len).ok_or_else(bad)?;
    let t = unflip(b.get(4 + len..12 + len).ok_or_else(bad)?)?;
    let rest = b.get(12 + len..).ok_or_else(bad)?;
    Ok((key, t, rest))
}

/// A store of one task: the engine, its kind, and the changelog records not yet sent.
pub(crate) struct StateStore {
    pub(crate) spec: StoreSpec,
    engine: Box<dyn KeyValueStore>,
    pending: Vec<(Bytes, Option<Bytes>)>,
    next_seq: u32,
    /// Newest timestamp written (drives window/session retention).
    stream_time: i64,
}

/// A store shared between its task and interactive queries.
pub(crate) type SharedStore = Arc<Mutex<StateStore>>;

impl StateStore {
    pub(crate) fn new(spec: StoreSpec, engine: Box<dyn KeyValueStore>) -> Result<Self> {
        let mut store = StateStore {
            spec,
            engine,
            pending: Vec::new(),
            next_seq: 0,
            stream_time: i64::MIN,
        };
        if let StoreKind::Window { .. } = store.spec.kind {
            // A persistent store reopened from a checkpoint keeps its entries: continue
            // their sequence numbers (and stream time) so duplicates are not overwritten.
            for (k, _) in store.engine.range(None, None)? {
                store.note_window_key(&k);
            }
        }
        Ok(store)
    }

    fn note_window_key(&mut self, key: &[u8]) {
        if let Ok((_, start, rest)) = split_composite(key) {
            self.observe(start);
            if let Ok(seq) = <[u8; 4]>::try_from(rest) {
                self.next_seq = self.next_seq.max(u32::from_be_bytes(seq).wrapping_add(1));
            }
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.engine.get(key)
    }

    /// Writes (or with `None` deletes) and records the change for the changelog.
    pub(crate) fn put(&mut self, key: &[u8], value: Option<Bytes>) -> Result<()> {
        match &value {
            Some(v) => self.engine.put(key, v.clone())?,
            None => self.engine.delete(key)?,
        }
        if self.spec.logged {
            self.pending.push((Bytes::copy_from_slice(key), value));
        }
        Ok(())
    }

    pub(crate) fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        self.engine.range(from, to)
    }

    /// Every entry whose key starts with `prefix`.
    pub(crate) fn prefix(&self, prefix: &[u8]) -> Result<Vec<(Bytes, Bytes)>> {
        let end = prefix_end(prefix);
        self.engine.range(Some(prefix), end.as_deref())
    }

    /// Changelog records written since the last call.
    pub(crate) fn take_changelog(&mut self) -> Vec<(Bytes, Option<Bytes>)> {
        std::mem::take(&mut self.pending)
    }

    /// Applies one changelog record without logging it again.
    pub(crate) fn restore(&mut self, key: &[u8], value: Option<Bytes>) -> Result<()> {
        match value {
            Some(v) => self.engine.put(key, v)?,
            None => self.engine.delete(key)?,
        }
        if let StoreKind::Window { .. } = self.spec.kind {
            self.note_window_key(key);
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        self.engine.flush()
    }

    pub(crate) fn observe(&mut self, ts: i64) {
        self.stream_time = self.stream_time.max(ts);
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// Drops windows and sessions older than the retention (logged as tombstones, so the
    /// compacted changelog forgets them too).
    pub(crate) fn expire(&mut self) -> Result<()> {
        let retention = match self.spec.kind {
            StoreKind::KeyValue => return Ok(()),
            StoreKind::Window { retention, .. } | StoreKind::Session { retention } => retention,
        };
        if self.stream_time == i64::MIN {
            return Ok(());
        }
        let limit = self.stream_time.saturating_sub(retention);
        let mut expired = Vec::new();
        for (k, _) in self.engine.range(None, None)? {
            let (_, t, _) = split_composite(&k)?;
            if t < limit {
                expired.push(k);
            }
        }
        for k in expired {
            self.put(&k, None)?;
        }
        Ok(())
    }
}

/// The stores of one name across the tasks of this process (for interactive queries).
pub(crate) type StoreRegistry =
    Arc<parking_lot::RwLock<HashMap<String, BTreeMap<i32, SharedStore>>>>;

fn parts(registry: &StoreRegistry, name: &str) -> Result<Vec<SharedStore>> {
    registry
        .read()
        .get(name)
        .map(|m| m.values().cloned().collect())
        .ok_or_else(|| {
            StreamsError::store(name, "no such store on this instance (yet): unknown name, or no task of it is assigned here")
        })
}

/// Read-only view of a key-value store across the tasks of this instance (interactive
/// queries). Keys owned by tasks of other instances are not visible here.
pub struct ReadOnlyKeyValueStore<K, V> {
    name: String,
    registry: StoreRegistry,
    _types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for ReadOnlyKeyValueStore<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyKeyValueStore")
            .field("name", &self.name)
            .finish()
    }
}

impl<K: Codec, V: Codec> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(name: &str, registry: StoreRegistry) -> Self {
        ReadOnlyKeyValueStore {
            name: name.to_string(),
            registry,
            _types: std::marker::PhantomData,
        }
    }

    /// The value of `key`, if a local task holds it.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = key.encode()?.unwrap_or_default();
        for p in parts(&self.registry, &self.name)? {
            if let Some(v) = p.lock().get(&k)? {
                return V::decode(Some(&v)).map(Some);
            }
        }
        Ok(None)
    }

    /// Every entry of the local tasks, sorted by the key's bytes.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let mut raw = Vec::new();
        for p in parts(&self.registry, &self.name)? {
            raw.extend(p.lock().range(None, None)?);
        }
        raw.sort_by(|a, b| a.0.cmp(&b.0));
        raw.into_iter()
            .map(|(k, v)| Ok((K::decode(Some(&k))?, V::decode(Some(&v))?)))
            .collect()
    }

    /// Number of entries in the local tasks.
    pub fn approximate_num_entries(&self) -> Result<usize> {
        let mut n = 0;
        for p in parts(&self.registry, &self.name)? {
            n += p.lock().range(None, None)?.len();
        }
        Ok(n)
    }
}

/// Read-only view of a window store (or a session store) across the tasks of this instance.
pub struct ReadOnlyWindowStore<K, V> {
    name: String,
    registry: StoreRegistry,
    _types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for ReadOnlyWindowStore<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyWindowStore")
            .field("name", &self.name)
            .finish()
    }
}

impl<K: Codec, V: Codec> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(name: &str, registry: StoreRegistry) -> Self {
        ReadOnlyWindowStore {
            name: name.to_string(),
            registry,
            _types: std::marker::PhantomData,
        }
    }

    fn decode_entry(kind: StoreKind, k: &[u8], v: &[u8]) -> Result<(Windowed<K>, V)> {
        let (key, t, rest) = split_composite(k)?;
        let window = match kind {
            StoreKind::Session { .. } => Window {
                start: unflip(rest)?,
                end: t,
            },
            StoreKind::Window { size, .. } => Window {
                start: t,
                end: t.saturating_add(size),
            },
            StoreKind::KeyValue => return Err(StreamsError::serde("not a window store")),
        };
        Ok((
            Windowed {
                key: K::decode(Some(key))?,
                window,
            },
            V::decode(Some(v))?,
        ))
    }

    /// The windows of `key` starting in `[from, to]` (sessions: ending in it), oldest first.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(Window, V)>> {
        let k = key.encode()?.unwrap_or_default();
        let prefix = key_prefix(&k);
        let mut out = Vec::new();
        for p in parts(&self.registry, &self.name)? {
            let store = p.lock();
            for (ek, ev) in store.prefix(&prefix)? {
                let (w, v) = Self::decode_entry(store.spec.kind, &ek, &ev)?;
                let t = match store.spec.kind {
                    StoreKind::Session { .. } => w.window.end,
                    _ => w.window.start,
                };
                if t >= from && t <= to {
                    out.push((w.window, v));
                }
            }
        }
        out.sort_by_key(|(w, _)| *w);
        Ok(out)
    }

    /// Every window of the local tasks, by key bytes then time.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        let mut raw = Vec::new();
        for p in parts(&self.registry, &self.name)? {
            let store = p.lock();
            let kind = store.spec.kind;
            for (k, v) in store.range(None, None)? {
                raw.push((k.clone(), Self::decode_entry(kind, &k, &v)?));
            }
        }
        raw.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(raw.into_iter().map(|(_, e)| e).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &mut dyn KeyValueStore) {
        store.put(b"b", Bytes::from_static(b"2")).unwrap();
        store.put(b"a", Bytes::from_static(b"1")).unwrap();
        store.put(b"c", Bytes::from_static(b"3")).unwrap();
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        let r = store.range(Some(b"b"), None).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.as_ref(), b"b");
        let r = store.range(None, Some(b"b")).unwrap();
        assert_eq!(r.len(), 1);
        store.delete(b"a").unwrap();
        assert_eq!(store.get(b"a").unwrap(), None);
        store.flush().unwrap();
        store.clear().unwrap();
        assert!(store.range(None, None).unwrap().is_empty());
    }

    #[test]
    fn in_memory_store_behaves_like_an_ordered_map() {
        exercise(&mut InMemoryKeyValueStore::new());
    }

    #[test]
    fn fjall_store_behaves_like_an_ordered_map_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&mut FjallKeyValueStore::open(dir.path(), "s").unwrap());
        {
            let mut s = FjallKeyValueStore::open(dir.path(), "s").unwrap();
            s.put(b"k", Bytes::from_static(b"v")).unwrap();
            s.flush().unwrap();
        }
        let s = FjallKeyValueStore::open(dir.path(), "s").unwrap();
        assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn window_keys_sort_by_key_then_time_including_negative_times() {
        let mut keys = [
            window_key(b"a", 5, 0),
            window_key(b"a", -5, 0),
            window_key(b"ab", -100, 0),
            window_key(b"a", 5, 1),
        ];
        keys.sort();
        let decoded: Vec<(Vec<u8>, i64)> = keys
            .iter()
            .map(|k| {
                let (key, t, _) = split_composite(k).unwrap();
                (key.to_vec(), t)
            })
            .collect();
        assert_eq!(
            decoded,
            vec![
                (b"a".to_vec(), -5),
                (b"a".to_vec(), 5),
                (b"a".to_vec(), 5),
                (b"ab".to_vec(), -100)
            ]
        );
    }

    #[test]
    fn logged_store_records_changes_and_restore_does_not_relog() {
        let spec = StoreSpec {
            name: "s".into(),
            kind: StoreKind::KeyValue,
            logged: true,
            persistent: false,
        };
        let mut s = StateStore::new(spec.clone(), Box::new(InMemoryKeyValueStore::new())).unwrap();
        s.put(b"k", Some(Bytes::from_static(b"v"))).unwrap();
        s.put(b"k", None).unwrap();
        let log = s.take_changelog();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].1, None);
        let mut r = StateStore::new(spec, Box::new(InMemoryKeyValueStore::new())).unwrap();
        for (k, v) in log {
            r.restore(&k, v).unwrap();
        }
        assert_eq!(r.get(b"k").unwrap(), None);
        assert!(r.take_changelog().is_empty());
    }

    #[test]
    fn a_reopened_window_store_continues_its_sequence_numbers() {
        let mut engine = InMemoryKeyValueStore::new();
        engine
            .put(&window_key(b"k", 5, 7), Bytes::from_static(b"v"))
            .unwrap();
        let spec = StoreSpec {
            name: "join".into(),
            kind: StoreKind::Window {
                size: 0,
                retention: 10,
            },
            logged: true,
            persistent: true,
        };
        let mut s = StateStore::new(spec, Box::new(engine)).unwrap();
        assert_eq!(s.next_seq(), 8, "a new duplicate must not overwrite seq 7");
    }

    #[test]
    fn window_retention_expires_old_windows_with_tombstones() {
        let spec = StoreSpec {
            name: "w".into(),
            kind: StoreKind::Window {
                size: 10,
                retention: 20,
            },
            logged: true,
            persistent: false,
        };
        let mut s = StateStore::new(spec, Box::new(InMemoryKeyValueStore::new())).unwrap();
        s.put(&window_key(b"k", 0, 0), Some(Bytes::from_static(b"x")))
            .unwrap();
        s.put(&window_key(b"k", 30, 0), Some(Bytes::from_static(b"y")))
            .unwrap();
        s.observe(30);
        s.take_changelog();
        s.expire().unwrap();
        assert_eq!(s.range(None, None).unwrap().len(), 1);
        let log = s.take_changelog();
        assert_eq!(log, vec![(Bytes::from(window_key(b"k", 0, 0)), None)]);
    }
}
