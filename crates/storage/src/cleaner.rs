//! The log cleaner: compaction of logs whose `cleanup.policy` includes `compact`, as Kafka's
//! `LogCleaner` does.
//!
//! # A pass
//! 1. **Plan** (under the log's read lock, cheap): the *cleanable range* is every segment from
//!    the first one up to, excluding, the first *uncleanable* segment: the active segment, a
//!    segment reaching [`Log::max_cleanable_offset`] (the high watermark), or the first segment
//!    whose largest timestamp is younger than `min.compaction.lag.ms` (segment granularity, as
//!    Kafka). The *dirty* part of it starts at [`Log::first_dirty_offset`]; everything below
//!    was deduplicated by an earlier pass.
//! 2. **Prepare** (no lock; reads the immutable non-active segments through their
//!    `Arc<File>`): build the key map (key → offset of its latest record) over the dirty part,
//!    then rewrite the whole cleanable range, in groups of adjacent segments whose original
//!    sizes add up to at most `segment.bytes` (so small cleaned segments merge), into
//!    `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`), fsynced. A record is kept
//!    unless a newer record has the same key (within the map), it is a tombstone older than
//!    `delete.retention.ms`, or it has no key. Batches keep their offsets, offset span,
//!    producer id/epoch/base sequence, leader epoch, timestamp type and compression; a batch
//!    whose records all survive is copied byte for byte. Control batches and transactional
//!    batches are copied as they are (and their records never enter the key map). An emptied
//!    batch disappears, except that the last batch of each group and the last batch of each
//!    producer the log tracks stay as empty batches (record count 0), so that a cleaned
//!    segment ends exactly where its originals did and producer state can be rebuilt from the
//!    log. A single-segment group in which nothing changed is not swapped.
//! 3. **Commit** (under the write lock, a few renames and directory fsyncs): if the log
//!    changed underneath (truncation, retention, another swap: [`CompactionStats::aborted`]),
//!    throw the cleaned files away. Otherwise swap them in:
//!    rename every `.cleaned` file to `.swap` (index files first, the `.log` last), fsync the
//!    directory (**the commit point**), delete the replaced segments' files, fsync, rename
//!    every `.swap` to its final name (`.log` first), fsync, then replace the segments in
//!    memory. Readers holding a [`crate::FileSlice`] of a replaced segment keep reading the old
//!    (unlinked) file.
//!
//! On open, [`Log::open`] finishes or undoes an interrupted swap: if any
//! `<base>.log.cleaned` is left the commit point was not reached, so every `.cleaned` and
//! `.swap` file is deleted (the originals are intact). Otherwise each `<base>.log.swap`
//! replaces every segment whose base offset lies in `[base, end of the swap file)`, and
//! leftover index `.swap` files are renamed into place. Either way the log is the one from
//! before or the one from after the pass.
//!
//! # Tombstones
//! A tombstone (null value) is removed once its own timestamp is older than
//! `delete.retention.ms` at the time of the pass (`timestamp < now - delete.retention.ms`); with
//! `LogAppendTime` that is the broker's append time. Records without a timestamp fall back to
//! the batch's max timestamp, then to the segment's largest timestamp (file mtime). This is
//! not KIP-534's delete horizon (which starts the countdown at the first cleaning and stamps it
//! into the batch): a consumer that lags by less than `delete.retention.ms` of record time sees
//! every delete.
//!
//! Not done (yet): aborted transactional data and transaction markers are kept as they are;
//! the key map holds whole keys (exact, but `log.cleaner.dedupe.buffer.size` is only an
//! estimate of its memory).

use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::io::LogIo;
use crate::log::{Log, SharedLog};
use crate::segment::{parse_offset_name, segment_file_name, Scanner, Segment};
use bytes::Bytes;
use fjord_common::TopicPartition;
use fjord_protocol::batch::BatchHeader;
use fjord_protocol::compression::Compression;
use fjord_protocol::records::{decode_batch, BatchBuilder, Record, RecordsError};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::{debug, info, warn};

/// Suffix of files being written by a cleaner pass.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of cleaned files past the commit point of a swap.
pub const SWAP_SUFFIX: &str = ".swap";

/// Estimated bytes of key map memory per key, on top of the key itself.
const KEY_MAP_ENTRY_OVERHEAD: usize = 56;

/// Settings of the log cleaner shared by all logs (Kafka's `log.cleaner.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: the memory one pass may use for its key map. When
    /// the dirty part holds more keys, the pass ends at the segment boundary where the map
    /// filled up (at least one dirty segment is always taken) and the next pass continues.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.buffer.size`: read buffer and write buffer size of a pass.
    pub io_buffer_size: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_size: 128 << 20,
            io_buffer_size: 512 << 10,
        }
    }
}

/// How much of a log the cleaner could clean now, as [`Log::cleanable`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanableInfo {
    /// Start of the dirty part (see [`Log::first_dirty_offset`]).
    pub first_dirty_offset: i64,
    /// Base offset of the first segment the cleaner may not touch (the active segment, the
    /// first one reaching the max cleanable offset, or the first one younger than
    /// `min.compaction.lag.ms`).
    pub first_uncleanable_offset: i64,
    /// Bytes of the cleanable segments wholly below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the other cleanable segments.
    pub dirty_bytes: u64,
    /// How long the oldest dirty record (first batch of the oldest dirty non-active segment)
    /// has been waiting beyond `max.compaction.lag.ms`; 0 if it has not.
    pub max_compaction_delay_ms: i64,
    /// True when a tombstone kept by the last pass has become older than
    /// `delete.retention.ms`, so that a pass would remove it even with nothing dirty (as
    /// KIP-534 makes such logs eligible). Only known for passes since the log was opened.
    pub tombstones_expired: bool,
}

impl CleanableInfo {
    /// `dirty / (clean + dirty)`, 0 for nothing cleanable.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }

    /// True when there is something dirty to clean.
    pub fn has_dirty(&self) -> bool {
        self.first_uncleanable_offset > self.first_dirty_offset
    }

    /// Kafka's trigger: the policy includes compact, and either something is dirty and the
    /// dirty ratio reaches `min.cleanable.dirty.ratio` or a record waited beyond
    /// `max.compaction.lag.ms`, or a kept tombstone has expired.
    pub fn needs_cleaning(&self, config: &LogConfig) -> bool {
        let dirty = self.has_dirty()
            && (self.dirty_ratio() >= config.min_cleanable_dirty_ratio
                || self.max_compaction_delay_ms > 0);
        config.cleanup_policy.compact && (dirty || self.tombstones_expired)
    }
}

/// What one cleaner pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// The first dirty offset the pass started from.
    pub first_dirty_offset: i64,
    /// Where the cleaned range ended; the log's new first dirty offset.
    pub end_offset: i64,
    /// Segments read (the whole cleanable range).
    pub segments_read: usize,
    /// Cleaned segments swapped in.
    pub segments_written: usize,
    /// Original segments they replaced.
    pub segments_replaced: usize,
    /// Bytes read from the cleanable range.
    pub bytes_read: u64,
    /// Bytes of the cleaned segments swapped in.
    pub bytes_written: u64,
    /// Bytes of the original segments they replaced.
    pub bytes_replaced: u64,
    /// Records read.
    pub records_read: u64,
    /// Records kept.
    pub records_retained: u64,
    /// Records removed because a newer record has the same key.
    pub superseded_removed: u64,
    /// Tombstones removed because they were older than `delete.retention.ms`.
    pub tombstones_removed: u64,
    /// Records without a key removed (they cannot be compacted; Kafka drops them too).
    pub keyless_removed: u64,
    /// Distinct keys in the dirty part's key map.
    pub keys: usize,
    /// Timestamp of the oldest tombstone kept in the cleaned range; it will be removed by the
    /// first pass after this + `delete.retention.ms`.
    pub oldest_tombstone_ms: Option<i64>,
    /// True when the log changed while the pass prepared its files (truncation, retention,
    /// another pass) and the result was thrown away; the next pass retries.
    pub aborted: bool,
}

impl CompactionStats {
    fn idle(first_dirty: i64) -> Self {
        CompactionStats {
            first_dirty_offset: first_dirty,
            end_offset: first_dirty,
            ..CompactionStats::default()
        }
    }

    /// True when the pass did something (read a cleanable range and was not aborted).
    pub fn did_work(&self) -> bool {
        !self.aborted && self.segments_read > 0
    }
}

// ----- key map and retention rule ---------------------------------------------------------

/// Key → offset of its latest record in the dirty part (Kafka's `OffsetMap`, with exact keys
/// instead of digests).
#[derive(Debug, Default)]
pub(crate) struct KeyMap {
    map: HashMap<Bytes, i64>,
    memory: usize,
}

impl KeyMap {
    /// Records that `key` was written at `offset`; the larger offset wins.
    pub(crate) fn put(&mut self, key: Bytes, offset: i64) {
        match self.map.get_mut(key.as_ref()) {
            Some(o) => *o = (*o).max(offset),
            None => {
                self.memory += key.len() + KEY_MAP_ENTRY_OVERHEAD;
                self.map.insert(key, offset);
            }
        }
    }

    /// The latest offset of `key`, if it occurs in the dirty part.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Distinct keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Estimated memory in bytes.
    pub(crate) fn memory(&self) -> usize {
        self.memory
    }
}

/// Why a record is kept or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Superseded,
    ExpiredTombstone,
    NoKey,
}

/// The retention rule for one record of a data batch. `tombstone_horizon` is
/// `now - delete.retention.ms`; `fallback_ts` is used for records without a timestamp.
pub(crate) fn verdict(
    record: &Record,
    map: &KeyMap,
    tombstone_horizon: i64,
    fallback_ts: i64,
) -> Verdict {
    let Some(key) = &record.key else {
        return Verdict::NoKey;
    };
    if map.get(key).is_some_and(|latest| latest > record.offset) {
        return Verdict::Superseded;
    }
    if record.value.is_none() {
        let ts = if record.timestamp >= 0 {
            record.timestamp
        } else {
            fallback_ts
        };
        if ts < tombstone_horizon {
            return Verdict::ExpiredTombstone;
        }
    }
    Verdict::Keep
}

/// The produce-path check for compacted logs: every record needs a key.
pub(crate) fn check_keys(batch: &[u8], tp: &TopicPartition) -> Result<()> {
    let decoded = decode_batch(batch)?;
    if decoded.records.iter().any(|r| r.key.is_none()) {
        return Err(StorageError::InvalidRecord(format!(
            "Compacted topic cannot accept message without key in topic partition {tp}."
        )));
    }
    Ok(())
}

/// Rebuilds a data batch with only `records` (which keep their offsets), preserving the
/// offset span, producer id/epoch/base sequence, leader epoch, timestamp type and compression.
pub(crate) fn rebuild_batch(h: &BatchHeader, records: Vec<Record>) -> Result<Bytes> {
    let empty = records.is_empty();
    let codec = if empty {
        Compression::None
    } else {
        h.compression()?
    };
    // An empty batch keeps the original max timestamp; records keep their own (-1 included).
    let default_ts = if empty { h.max_timestamp } else { -1 };
    let mut b = BatchBuilder::new(codec, default_ts)
        .base_offset(h.base_offset)
        .keep_offsets(h.last_offset())
        .partition_leader_epoch(h.partition_leader_epoch)
        .producer(h.producer_id, h.producer_epoch, h.base_sequence)
        .log_append_time(h.is_log_append_time());
    for r in records {
        b.push(r);
    }
    b.build()
        .map_err(|e| StorageError::Decode(RecordsError::Compression(e)))
}

// ----- file names -----------------------------------------------------------------------

fn suffixed(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", segment_file_name(base, ext)))
}

const EXTS: [&str; 3] = ["index", "timeindex", "log"];

fn remove_if_exists(io: &dyn LogIo, path: &Path) -> Result<()> {
    match io.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

// ----- plan, prepare, commit --------------------------------------------------------------

/// Clears the log's "cleaner busy" flag when the pass ends, however it ends.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What a pass needs to know about one original segment, captured under the lock.
struct SegmentView {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    file: Arc<File>,
    path: PathBuf,
    largest_timestamp: i64,
    offset_entries: usize,
    time_entries: usize,
}

/// One cleaned segment replacing `count` originals starting at `first` (indexes into the
/// pass's views, equal to indexes into the log's segments).
struct CleanedGroup {
    first: usize,
    count: usize,
    segment: Segment,
}

/// One cleaner pass on one log, from plan to commit. Dropping it before the commit removes
/// its `.cleaned` files.
pub(crate) struct Compaction {
    dir: PathBuf,
    io: Arc<dyn LogIo>,
    generation: u64,
    _busy: BusyGuard,
    views: Vec<SegmentView>,
    first_dirty: i64,
    end: i64,
    now_ms: i64,
    tombstone_horizon: i64,
    segment_bytes: u64,
    segment_index_bytes: u64,
    index_interval: u64,
    /// Producer id → last offset of its latest batch, for batches that must stay (empty).
    producer_last_offsets: HashMap<i64, i64>,
    config: CleanerConfig,
    groups: Vec<CleanedGroup>,
    /// Base offset of the cleaned segment being written, if any.
    pending: Option<i64>,
    stats: CompactionStats,
    /// Whether the `.cleaned` files are still this pass's to delete.
    owns_files: bool,
}

impl Drop for Compaction {
    fn drop(&mut self) {
        if !self.owns_files {
            return;
        }
        let bases = self.groups.iter().map(|g| g.segment.base_offset);
        for base in bases.chain(self.pending) {
            for ext in EXTS {
                let path = suffixed(&self.dir, base, ext, CLEANED_SUFFIX);
                if let Err(e) = remove_if_exists(self.io.as_ref(), &path) {
                    debug!(file = %path.display(), "cannot remove cleaned file: {e}");
                }
            }
        }
    }
}

impl Log {
    /// Number of leading segments the cleaner may touch now (never the active one).
    fn cleanable_segment_count(&self, now_ms: i64) -> usize {
        let min_lag = self.config.min_compaction_lag_ms;
        let mut k = 0;
        while k + 1 < self.segments.len() {
            let seg = &self.segments[k];
            if self
                .max_cleanable_offset
                .is_some_and(|max| seg.next_offset > max)
            {
                break;
            }
            if min_lag > 0 && seg.largest_timestamp() > now_ms.saturating_sub(min_lag) {
                break;
            }
            k += 1;
        }
        k
    }

    /// How much the cleaner could clean at `now_ms`, and whether the dirty ratio or
    /// `max.compaction.lag.ms` call for a pass ([`CleanableInfo::needs_cleaning`]).
    pub fn cleanable(&self, now_ms: i64) -> CleanableInfo {
        let k = self.cleanable_segment_count(now_ms);
        let first_dirty = self.first_dirty_offset();
        let (mut clean_bytes, mut dirty_bytes) = (0, 0);
        for seg in &self.segments[..k] {
            if seg.next_offset <= first_dirty {
                clean_bytes += seg.size;
            } else {
                dirty_bytes += seg.size;
            }
        }
        let cutoff = now_ms.saturating_sub(self.config.max_compaction_lag_ms.max(0));
        let n = self.segments.len();
        let earliest = self.segments[..n - 1]
            .iter()
            .filter(|s| s.next_offset > first_dirty && !s.is_empty())
            .filter_map(|s| s.rolling_based_timestamp)
            .filter(|&t| t > 0)
            .min();
        let max_compaction_delay_ms = earliest.map_or(0, |t| cutoff.saturating_sub(t).max(0));
        CleanableInfo {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: self.segments[k].base_offset,
            clean_bytes,
            dirty_bytes,
            max_compaction_delay_ms,
            tombstones_expired: k > 0 && self.tombstones_expired(now_ms),
        }
    }

    fn tombstones_expired(&self, now_ms: i64) -> bool {
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms.max(0));
        self.oldest_clean_tombstone_ms
            .is_some_and(|ts| ts < horizon)
    }

    /// One cleaner pass on this log at time `now_ms` with default [`CleanerConfig`]; see
    /// [`Log::compact_with`].
    pub fn compact(&mut self, now_ms: i64) -> Result<CompactionStats> {
        self.compact_with(now_ms, &CleanerConfig::default())
    }

    /// One cleaner pass on this log at time `now_ms`, whatever the dirty ratio (the
    /// [`crate::LogManager::run_cleaner`] applies the trigger): deduplicates the cleanable range
    /// by key and removes expired tombstones, as described in the [`crate::cleaner`] module.
    /// Does nothing (and returns idle stats) unless `cleanup.policy` includes `compact`, or
    /// when nothing is dirty or another pass on this log is running. Holds `&mut self`
    /// throughout; [`compact_shared`] does the heavy part outside the lock.
    pub fn compact_with(&mut self, now_ms: i64, config: &CleanerConfig) -> Result<CompactionStats> {
        let Some(mut pass) = self.plan_compaction(now_ms, config)? else {
            return Ok(CompactionStats::idle(self.first_dirty_offset()));
        };
        pass.prepare()?;
        self.commit_compaction(pass)
    }

    /// Captures what a pass needs; `None` when there is nothing to do.
    pub(crate) fn plan_compaction(
        &self,
        now_ms: i64,
        config: &CleanerConfig,
    ) -> Result<Option<Compaction>> {
        self.ensure_open()?;
        if !self.config.cleanup_policy.compact {
            return Ok(None);
        }
        let k = self.cleanable_segment_count(now_ms);
        let first_dirty = self.first_dirty_offset();
        let end = self.segments[k].base_offset;
        if k == 0 || (end <= first_dirty && !self.tombstones_expired(now_ms)) {
            return Ok(None);
        }
        if self
            .cleaner_busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            debug!(tp = %self.topic_partition(), "cleaner pass already running");
            return Ok(None);
        }
        let busy = BusyGuard(Arc::clone(&self.cleaner_busy));
        let views = self.segments[..k]
            .iter()
            .map(|s| SegmentView {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                size: s.size,
                file: Arc::clone(&s.file),
                path: s.path.clone(),
                largest_timestamp: s.largest_timestamp(),
                offset_entries: s.offset_index.len(),
                time_entries: s.time_index.len(),
            })
            .collect();
        let producer_last_offsets = self
            .producers
            .iter()
            .filter_map(|e| e.batches.back().map(|b| (e.producer_id, b.last_offset)))
            .collect();
        let c = &self.config;
        Ok(Some(Compaction {
            dir: self.dir.clone(),
            io: Arc::clone(&self.io),
            generation: self.generation,
            _busy: busy,
            views,
            first_dirty,
            end,
            now_ms,
            tombstone_horizon: now_ms.saturating_sub(c.delete_retention_ms.max(0)),
            segment_bytes: c.segment_bytes.max(0) as u64,
            segment_index_bytes: c.segment_index_bytes.max(0) as u64,
            index_interval: c.index_interval_bytes.max(0) as u64,
            producer_last_offsets,
            config: config.clone(),
            groups: Vec::new(),
            pending: None,
            stats: CompactionStats::idle(first_dirty),
            owns_files: true,
        }))
    }

    /// Swaps the prepared cleaned segments in (see the module docs for the protocol).
    pub(crate) fn commit_compaction(&mut self, mut pass: Compaction) -> Result<CompactionStats> {
        self.ensure_open()?;
        let current = pass.dir == self.dir
            && pass.generation == self.generation
            && self.segments.len() > pass.views.len()
            && pass.views.iter().zip(&self.segments).all(|(v, s)| {
                v.base_offset == s.base_offset
                    && v.next_offset == s.next_offset
                    && v.size == s.size
                    && Arc::ptr_eq(&v.file, &s.file)
            });
        if !current {
            info!(tp = %self.topic_partition(), "log changed during the cleaner pass; discarding it");
            pass.stats.aborted = true;
            return Ok(pass.stats.clone());
        }
        if !pass.groups.is_empty() {
            pass.owns_files = false;
            if let Err(e) = pass.rename_to_swap() {
                warn!(tp = %self.topic_partition(), "cleaner swap failed before its commit point: {e}");
                if let Err(e2) = pass.remove_pass_files() {
                    self.go_offline(&e2);
                }
                return Err(e);
            }
            if let Err(e) = pass.finish_swap() {
                self.go_offline(&e);
                return Err(e);
            }
            let groups = std::mem::take(&mut pass.groups);
            for g in groups.into_iter().rev() {
                let mut seg = g.segment;
                seg.path = self.dir.join(segment_file_name(seg.base_offset, "log"));
                self.segments.splice(g.first..g.first + g.count, [seg]);
            }
            self.generation += 1;
        }
        self.first_dirty_offset = self.first_dirty_offset.max(pass.end);
        self.oldest_clean_tombstone_ms = pass.stats.oldest_tombstone_ms;
        let s = &pass.stats;
        info!(tp = %self.topic_partition(), first_dirty = s.first_dirty_offset, end = s.end_offset,
            segments_read = s.segments_read, segments_written = s.segments_written,
            bytes_read = s.bytes_read, bytes_written = s.bytes_written,
            records_read = s.records_read, records_retained = s.records_retained,
            "log cleaned");
        Ok(pass.stats.clone())
    }

    fn go_offline(&mut self, e: &StorageError) {
        warn!(tp = %self.topic_partition(), "cleaner swap failed after its commit point; taking \
            the log offline until the next start completes it: {e}");
        self.closed = true;
        self.failed = true;
    }
}

impl Compaction {
    /// Builds the key map and writes the cleaned segments (no lock needed).
    pub(crate) fn prepare(&mut self) -> Result<()> {
        let mut map = KeyMap::default();
        let n = self.views.len();
        let dirty_from = self
            .views
            .iter()
            .position(|v| v.next_offset > self.first_dirty)
            .unwrap_or(n);
        let mut end_index = n;
        for i in dirty_from..n {
            self.index_segment(i, &mut map)?;
            if map.memory() > self.config.dedupe_buffer_size && i + 1 < n {
                end_index = i + 1;
                info!(dir = %self.dir.display(), keys = map.len(), end = self.views[end_index].base_offset,
                    "cleaner key map full; cleaning a shorter range");
                break;
            }
        }
        if end_index < n {
            self.end = self.views[end_index].base_offset;
        }
        self.stats.end_offset = self.end;
        self.stats.keys = map.len();
        self.stats.segments_read = end_index;
        for (first, count) in self.groups_for(end_index) {
            self.clean_group(first, count, &map)?;
        }
        Ok(())
    }

    /// Adds the keys of the dirty records of segment `i` to the map.
    fn index_segment(&self, i: usize, map: &mut KeyMap) -> Result<()> {
        let v = &self.views[i];
        let mut scanner = Scanner::new(&v.file, &v.path, 0, v.size, self.config.io_buffer_size);
        while let Some(step) = scanner.next_batch(true)? {
            let (h, pos) = step.map_err(|(_, e)| StorageError::Corrupt(e))?;
            if h.is_control() || h.is_transactional() || h.last_offset() < self.first_dirty {
                continue;
            }
            let decoded = decode_batch(scanner.batch_bytes(pos, h.size())?)?;
            for r in decoded.records {
                if r.offset >= self.first_dirty {
                    if let Some(key) = r.key {
                        map.put(key, r.offset);
                    }
                }
            }
        }
        Ok(())
    }

    /// Kafka's `groupSegmentsBySize`: adjacent segments whose sizes add up to at most
    /// `segment.bytes`, whose index files would fit `segment.index.bytes`, and whose offsets
    /// stay within `i32::MAX` of the group's base.
    fn groups_for(&self, n: usize) -> Vec<(usize, usize)> {
        let views = &self.views[..n];
        let mut groups = Vec::new();
        let mut i = 0;
        while i < views.len() {
            let head = &views[i];
            let (mut size, mut oi, mut ti) = (head.size, head.offset_entries, head.time_entries);
            let mut j = i + 1;
            while let Some(v) = views.get(j) {
                let fits = size + v.size <= self.segment_bytes
                    && ((oi + v.offset_entries) * 8) as u64 <= self.segment_index_bytes
                    && ((ti + v.time_entries) * 12) as u64 <= self.segment_index_bytes
                    && v.next_offset - 1 - head.base_offset <= i32::MAX as i64;
                if !fits {
                    break;
                }
                size += v.size;
                oi += v.offset_entries;
                ti += v.time_entries;
                j += 1;
            }
            groups.push((i, j - i));
            i = j;
        }
        groups
    }

    /// Writes the cleaned version of views `first..first + count` to `<base>.log.cleaned`
    /// (+ indexes), fsynced. Keeps it only if something changed or segments were merged.
    fn clean_group(&mut self, first: usize, count: usize, map: &KeyMap) -> Result<()> {
        let base = self.views[first].base_offset;
        let path = suffixed(&self.dir, base, "log", CLEANED_SUFFIX);
        self.pending = Some(base);
        let mut segment = Segment::create_at(path, base, self.now_ms)?;
        let mut stats = std::mem::take(&mut self.stats);
        let written = self.write_group(first, count, map, &mut segment, &mut stats);
        self.stats = stats;
        let changed = written? || count > 1;
        if changed {
            self.stats.segments_written += 1;
            self.stats.segments_replaced += count;
            self.stats.bytes_written += segment.size;
            self.stats.bytes_replaced += self.views[first..first + count]
                .iter()
                .map(|v| v.size)
                .sum::<u64>();
            self.groups.push(CleanedGroup {
                first,
                count,
                segment,
            });
        } else {
            drop(segment);
            for ext in EXTS {
                let p = suffixed(&self.dir, base, ext, CLEANED_SUFFIX);
                remove_if_exists(self.io.as_ref(), &p)?;
            }
        }
        self.pending = None;
        Ok(())
    }

    /// Fills `seg` from the originals, then writes and fsyncs it and its indexes. Returns
    /// whether any record was removed.
    fn write_group(
        &self,
        first: usize,
        count: usize,
        map: &KeyMap,
        seg: &mut Segment,
        stats: &mut CompactionStats,
    ) -> Result<bool> {
        let group_end = self.views[first + count - 1].next_offset;
        let mut out = Writer {
            io: Arc::clone(&self.io),
            buf: Vec::with_capacity(self.config.io_buffer_size.min(1 << 20)),
            buf_start: 0,
            limit: self.config.io_buffer_size.max(4096),
            interval: self.index_interval,
        };
        let mut changed = false;
        for v in &self.views[first..first + count] {
            changed |= self.clean_segment(v, map, group_end, seg, &mut out, stats)?;
        }
        out.flush(seg)?;
        seg.seal_time_index();
        let io = self.io.as_ref();
        let ip = suffixed(&self.dir, seg.base_offset, "index", CLEANED_SUFFIX);
        let tp = suffixed(&self.dir, seg.base_offset, "timeindex", CLEANED_SUFFIX);
        seg.offset_index.write_out(io, &ip, true)?;
        seg.time_index.write_out(io, &tp, true)?;
        io.sync(&seg.file, &seg.path).at(&seg.path)?;
        seg.log_unsynced = false;
        Ok(changed)
    }

    /// Copies the retained part of one original segment into `seg`. Returns whether
    /// anything was removed.
    fn clean_segment(
        &self,
        v: &SegmentView,
        map: &KeyMap,
        group_end: i64,
        seg: &mut Segment,
        out: &mut Writer,
        stats: &mut CompactionStats,
    ) -> Result<bool> {
        let mut changed = false;
        let mut scanner = Scanner::new(&v.file, &v.path, 0, v.size, self.config.io_buffer_size);
        while let Some(step) = scanner.next_batch(true)? {
            let (h, pos) = step.map_err(|(_, e)| StorageError::Corrupt(e))?;
            stats.bytes_read += h.size() as u64;
            let bytes = scanner.batch_bytes(pos, h.size())?;
            if h.is_control() || h.is_transactional() {
                stats.records_read += h.record_count.max(0) as u64;
                stats.records_retained += h.record_count.max(0) as u64;
                out.append(seg, bytes, &h)?;
                continue;
            }
            let decoded = decode_batch(bytes)?;
            let fallback_ts = if h.max_timestamp >= 0 {
                h.max_timestamp
            } else {
                v.largest_timestamp
            };
            let total = decoded.records.len();
            let mut retained = Vec::with_capacity(total);
            for r in decoded.records {
                match verdict(&r, map, self.tombstone_horizon, fallback_ts) {
                    Verdict::Keep => {
                        if r.value.is_none() {
                            let ts = if r.timestamp >= 0 {
                                r.timestamp
                            } else {
                                fallback_ts
                            };
                            let oldest = stats.oldest_tombstone_ms.get_or_insert(ts);
                            *oldest = (*oldest).min(ts);
                        }
                        retained.push(r);
                    }
                    Verdict::Superseded => stats.superseded_removed += 1,
                    Verdict::ExpiredTombstone => stats.tombstones_removed += 1,
                    Verdict::NoKey => stats.keyless_removed += 1,
                }
            }
            stats.records_read += total as u64;
            stats.records_retained += retained.len() as u64;
            if retained.len() == total {
                out.append(seg, bytes, &h)?;
                continue;
            }
            changed = true;
            let keep_empty = h.next_offset() == group_end
                || (h.has_producer_id()
                    && self.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset()));
            if retained.is_empty() && !keep_empty {
                continue;
            }
            let rebuilt = rebuild_batch(&h, retained)?;
            let nh = BatchHeader::parse(&rebuilt)?;
            out.append(seg, &rebuilt, &nh)?;
        }
        Ok(changed)
    }

    /// Step 2: every `.cleaned` file becomes `.swap` (indexes first, the log last), then the
    /// directory is fsynced: the commit point.
    fn rename_to_swap(&self) -> Result<()> {
        let io = self.io.as_ref();
        for g in &self.groups {
            for ext in EXTS {
                let from = suffixed(&self.dir, g.segment.base_offset, ext, CLEANED_SUFFIX);
                let to = suffixed(&self.dir, g.segment.base_offset, ext, SWAP_SUFFIX);
                io.rename(&from, &to).at(&from)?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Undoes step 2 after a failure before the commit point.
    fn remove_pass_files(&self) -> Result<()> {
        let io = self.io.as_ref();
        for g in &self.groups {
            for ext in EXTS {
                for suffix in [SWAP_SUFFIX, CLEANED_SUFFIX] {
                    remove_if_exists(io, &suffixed(&self.dir, g.segment.base_offset, ext, suffix))?;
                }
            }
        }
        sync_dir(&self.dir)
    }

    /// Steps 3 and 4: delete the replaced segments, then give the swap files their final
    /// names (the log first).
    fn finish_swap(&self) -> Result<()> {
        let io = self.io.as_ref();
        for g in &self.groups {
            for v in &self.views[g.first..g.first + g.count] {
                for ext in EXTS {
                    remove_if_exists(io, &self.dir.join(segment_file_name(v.base_offset, ext)))?;
                }
            }
        }
        sync_dir(&self.dir)?;
        for g in &self.groups {
            for ext in ["log", "index", "timeindex"] {
                let from = suffixed(&self.dir, g.segment.base_offset, ext, SWAP_SUFFIX);
                let to = self.dir.join(segment_file_name(g.segment.base_offset, ext));
                io.rename(&from, &to).at(&from)?;
            }
        }
        sync_dir(&self.dir)
    }
}

/// Buffered appends to a cleaned segment, maintaining its indexes.
struct Writer {
    io: Arc<dyn LogIo>,
    buf: Vec<u8>,
    buf_start: u64,
    limit: usize,
    interval: u64,
}

impl Writer {
    fn append(&mut self, seg: &mut Segment, batch: &[u8], h: &BatchHeader) -> Result<()> {
        let pos = seg.size;
        self.buf.extend_from_slice(batch);
        seg.size += batch.len() as u64;
        seg.note_batch(h, pos, self.interval);
        if self.buf.len() >= self.limit {
            self.flush(seg)?;
        }
        Ok(())
    }

    fn flush(&mut self, seg: &Segment) -> Result<()> {
        if !self.buf.is_empty() {
            self.io
                .write_at(&seg.file, &seg.path, &self.buf, self.buf_start)
                .at(&seg.path)?;
            self.buf.clear();
        }
        self.buf_start = seg.size;
        Ok(())
    }
}

/// A cleaner pass on a shared log that holds the log's lock only briefly: the plan under the
/// read lock, the heavy reading and writing with no lock (appends and reads go on), the swap
/// under the write lock. Same semantics as [`Log::compact_with`]. Blocks the calling thread
/// for the whole pass; call it from a blocking task.
pub fn compact_shared(
    log: &SharedLog,
    now_ms: i64,
    config: &CleanerConfig,
) -> Result<CompactionStats> {
    let planned = log.read().plan_compaction(now_ms, config)?;
    let Some(mut pass) = planned else {
        return Ok(CompactionStats::idle(log.read().first_dirty_offset()));
    };
    pass.prepare()?;
    log.write().commit_compaction(pass)
}

// ----- recovery at open -------------------------------------------------------------------

/// The end offset of the batches in a swap file (scanning headers).
fn swap_end_offset(path: &Path, base: i64) -> Result<i64> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let mut scanner = Scanner::new(&file, path, 0, len, 64 << 10);
    let mut end = base;
    while let Some(step) = scanner.next_batch(false)? {
        match step {
            Ok((h, _)) => end = end.max(h.next_offset()),
            Err((pos, e)) => {
                warn!(file = %path.display(), pos, "damaged swap file: {e}");
                break;
            }
        }
    }
    Ok(end)
}

/// Finishes or undoes a cleaner swap interrupted by a crash (see the module docs). Called
/// by [`Log::open`] before it lists the segments. Returns whether anything was found.
pub(crate) fn recover_interrupted_swaps(dir: &Path) -> Result<bool> {
    let mut cleaned = Vec::new();
    let mut any_log_cleaned = false;
    let mut log_swaps = Vec::new();
    let mut other_swaps = Vec::new();
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(CLEANED_SUFFIX) {
            any_log_cleaned |= stem
                .strip_suffix(".log")
                .and_then(parse_offset_name)
                .is_some();
            cleaned.push(path.clone());
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match stem.strip_suffix(".log").and_then(parse_offset_name) {
                Some(base) => log_swaps.push((base, path.clone())),
                None => other_swaps.push((path.clone(), dir.join(stem))),
            }
        } else if let Some(base) = name.strip_suffix(".log").and_then(parse_offset_name) {
            bases.push(base);
        }
    }
    if cleaned.is_empty() && log_swaps.is_empty() && other_swaps.is_empty() {
        return Ok(false);
    }
    let remove = |p: &Path| -> Result<()> {
        match fs::remove_file(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(p, e)),
        }
    };
    for p in &cleaned {
        remove(p)?;
    }
    if any_log_cleaned {
        warn!(dir = %dir.display(), "rolling back a cleaner pass interrupted before its commit point");
        for (_, p) in &log_swaps {
            remove(p)?;
        }
        for (p, _) in &other_swaps {
            remove(p)?;
        }
    } else {
        log_swaps.sort_unstable();
        for (base, swap) in &log_swaps {
            let end = swap_end_offset(swap, *base)?.max(base + 1);
            warn!(dir = %dir.display(), base_offset = base, end_offset = end,
                "completing a cleaner swap interrupted after its commit point");
            for &o in bases.iter().filter(|&&o| o >= *base && o < end) {
                for ext in EXTS {
                    remove(&dir.join(segment_file_name(o, ext)))?;
                }
            }
            let target = dir.join(segment_file_name(*base, "log"));
            fs::rename(swap, &target).at(swap)?;
        }
        for (swap, target) in &other_swaps {
            // An index whose log is in place (renamed before it) follows it; anything else
            // is an orphan.
            let log = target.with_extension("log");
            let is_index = matches!(
                target.extension().and_then(|e| e.to_str()),
                Some("index" | "timeindex")
            );
            if is_index && log.exists() {
                fs::rename(swap, target).at(swap)?;
            } else {
                remove(swap)?;
            }
        }
    }
    sync_dir(dir)?;
    Ok(true)
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
