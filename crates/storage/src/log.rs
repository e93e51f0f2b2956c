//! One partition's log: segments, leader-epoch cache, producer state, recovery.

use crate::checkpoint::{sync_dir, write_atomic};
use crate::config::{LogConfig, TimestampType};
use crate::epoch::{EpochEntry, LeaderEpochCache};
use crate::error::{IoContext, Result, StorageError};
use crate::io::{FileSlice, LogIo, StdIo};
use crate::producer::{ProducerCheck, ProducerStateEntry, ProducerStateManager};
use crate::segment::{parse_offset_name, segment_file_name, HeaderReader, Scanner, Segment};
use fjord_common::{Clock, TopicPartition};
use fjord_protocol::batch::{
    set_base_offset, set_log_append_time_split, set_partition_leader_epoch, validate_batch,
    BatchError, BatchHeader, BatchIter, HEADER_SIZE,
};
use fjord_protocol::records::decode_batch;
use parking_lot::RwLock;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// A log shared between request handlers: reads take the read lock, appends the write lock.
pub type SharedLog = Arc<RwLock<Log>>;

/// File name of the topic id file inside a partition directory.
pub const PARTITION_METADATA: &str = "partition.metadata";

/// How to open a log.
#[derive(Debug, Clone)]
pub struct LogOpenOptions {
    /// Offset below which everything is known to be fsynced (from
    /// `recovery-point-offset-checkpoint`); recovery starts at the segment holding it.
    pub recovery_point: i64,
    /// Log start offset (from `log-start-offset-checkpoint`); at least the first segment's base.
    pub log_start_offset: i64,
    /// Whether the log dir was shut down cleanly (`.kafka_cleanshutdown` present); skips the
    /// recovery scan.
    pub clean_shutdown: bool,
    /// The I/O seam; [`StdIo`] unless a test injects faults.
    pub io: Arc<dyn LogIo>,
    /// First offset the log cleaner has not deduplicated yet (from
    /// `cleaner-offset-checkpoint`); `None` treats the whole log as dirty. Ignored when outside
    /// `[log start, log end]`.
    pub first_dirty_offset: Option<i64>,
}

impl Default for LogOpenOptions {
    fn default() -> Self {
        LogOpenOptions {
            recovery_point: 0,
            log_start_offset: 0,
            clean_shutdown: false,
            io: Arc::new(StdIo),
            first_dirty_offset: None,
        }
    }
}

/// Who is appending as leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: control batches are refused and idempotence is checked.
    Client,
    /// The broker itself (transaction markers, coordinator records): control batches allowed.
    Coordinator,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// Offset of the first record appended (or of the original, for a duplicate).
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest timestamp of the appended batches.
    pub max_timestamp: i64,
    /// Last offset of the batch carrying `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// The broker time stamped into the batch for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// Records appended.
    pub record_count: i64,
    /// True when the batch was a retry of one already in the log and was not appended again.
    pub duplicate: bool,
}

/// The result of a read: whole batches from one segment, to be copied outside the lock.
#[derive(Debug, Clone)]
pub struct LogRead {
    /// The bytes, `None` when nothing is returned.
    pub slice: Option<FileSlice>,
    /// Base offset of the first returned batch (may be below the requested offset, as in
    /// Kafka); the requested offset when nothing is returned.
    pub first_offset: i64,
    /// Where the next read should start: the base offset of the first batch not returned.
    pub next_offset: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

impl LogRead {
    /// Bytes returned.
    pub fn len(&self) -> usize {
        self.slice.as_ref().map_or(0, |s| s.len)
    }

    /// True when no batch is returned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    /// The record's timestamp.
    pub timestamp: i64,
    /// The record's offset.
    pub offset: i64,
    /// Leader epoch of the batch holding it, if known.
    pub leader_epoch: Option<i32>,
}

/// One partition's log. See the crate docs for layout and invariants.
pub struct Log {
    pub(crate) dir: PathBuf,
    tp: TopicPartition,
    pub(crate) config: LogConfig,
    clock: Arc<dyn Clock>,
    pub(crate) io: Arc<dyn LogIo>,
    /// Never empty; sorted by base offset; the last one is active.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    recovery_point: i64,
    epochs: LeaderEpochCache,
    pub(crate) producers: ProducerStateManager,
    /// Offsets of the producer snapshot files on disk, ascending.
    snapshots: Vec<i64>,
    topic_id: Option<String>,
    last_flush_ms: i64,
    dir_dirty: bool,
    pub(crate) closed: bool,
    /// Set when a cleaner swap failed half-way: the log is closed and must not be marked as
    /// cleanly shut down (the next start completes the swap).
    pub(crate) failed: bool,
    /// The cleaner's first dirty offset (see [`Log::first_dirty_offset`]).
    pub(crate) first_dirty_offset: i64,
    /// The cleaner never cleans a segment reaching this offset (the partition's high
    /// watermark or last stable offset); `None` = only the active segment is uncleanable.
    pub(crate) max_cleanable_offset: Option<i64>,
    /// Bumped whenever data below the active segment is removed or replaced (truncation,
    /// segment deletion, a cleaner swap), so that a cleaner pass prepared outside the lock can
    /// tell that its view is stale.
    pub(crate) generation: u64,
    /// True while a cleaner pass on this log is in progress.
    pub(crate) cleaner_busy: Arc<AtomicBool>,
    /// Timestamp of the oldest tombstone the last cleaner pass kept (it becomes removable
    /// `delete.retention.ms` later, which makes the log eligible for a pass by itself).
    pub(crate) oldest_clean_tombstone_ms: Option<i64>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("recovery_point", &self.recovery_point)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

impl Log {
    /// Opens (creating if needed) the log in partition directory `dir`
    /// (`<log.dir>/<topic>-<partition>`), recovering it when the shutdown was not clean.
    pub fn open(
        dir: impl AsRef<Path>,
        tp: TopicPartition,
        config: LogConfig,
        opts: LogOpenOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Log> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).at(&dir)?;
        let now = clock.now_ms();
        let io = Arc::clone(&opts.io);
        crate::cleaner::recover_interrupted_swaps(&dir)?;
        let mut bases = Vec::new();
        let mut snapshots = Vec::new();
        let mut indexes = Vec::new();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if [".deleted", ".cleaned", ".swap", ".tmp"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                debug!(file = %path.display(), "removing leftover file");
                remove_file_if_exists(&path)?;
            } else if let Some(base) = name.strip_suffix(".log").and_then(parse_offset_name) {
                bases.push(base);
            } else if let Some(o) = name.strip_suffix(".snapshot").and_then(parse_offset_name) {
                snapshots.push(o);
            } else if let Some(stem) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
            {
                if parse_offset_name(stem).is_some() {
                    indexes.push((path.clone(), stem.to_string()));
                }
            }
        }
        bases.sort_unstable();
        snapshots.sort_unstable();
        for (path, stem) in indexes {
            if !dir.join(format!("{stem}.log")).exists() {
                debug!(file = %path.display(), "removing orphaned index");
                remove_file_if_exists(&path)?;
            }
        }

        let interval = config.index_interval_bytes.max(0) as u64;
        let recover_from = (!opts.clean_shutdown).then(|| {
            bases
                .partition_point(|&b| b <= opts.recovery_point)
                .saturating_sub(1)
        });
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        let mut recovered = false;
        for (i, &base) in bases.iter().enumerate() {
            let mut seg = Segment::open(&dir, base, now, 0)?;
            let in_recovery = recover_from.is_some_and(|r| i >= r);
            let mut cut = 0;
            if in_recovery {
                cut = seg.recover(io.as_ref(), interval)?;
                recovered = true;
            } else if !seg.load()? {
                warn!(segment = %seg.path.display(), "index files missing or damaged; rebuilding");
                seg.recover(io.as_ref(), interval)?;
                recovered = true;
            }
            if recovered && i + 1 < bases.len() {
                // Inactive segments end their time index with their max timestamp.
                seg.seal_time_index();
                seg.write_indexes(io.as_ref(), false)?;
            }
            if let Some(prev) = segments.last() {
                if seg.base_offset < prev.next_offset {
                    return Err(StorageError::InconsistentLog {
                        path: dir.clone(),
                        reason: format!(
                            "segment {} starts below the end offset {} of the previous segment",
                            seg.base_offset, prev.next_offset
                        ),
                    });
                }
            }
            segments.push(seg);
            if in_recovery && cut > 0 {
                for &later in &bases[i + 1..] {
                    warn!(tp = %tp, base_offset = later, "deleting segment after a truncated one");
                    for ext in ["log", "index", "timeindex"] {
                        remove_file_if_exists(&dir.join(segment_file_name(later, ext)))?;
                    }
                }
                break;
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, opts.log_start_offset.max(0), now, 0)?);
        }
        let epochs = LeaderEpochCache::load(&dir)?;
        let topic_id = read_topic_id(&dir)?;
        let first_base = segments[0].base_offset;
        let mut log = Log {
            dir,
            tp,
            config,
            clock,
            io,
            segments,
            log_start_offset: opts.log_start_offset.max(first_base),
            recovery_point: 0,
            epochs,
            producers: ProducerStateManager::new(first_base),
            snapshots,
            topic_id,
            last_flush_ms: now,
            dir_dirty: true,
            closed: false,
            failed: false,
            first_dirty_offset: 0,
            max_cleanable_offset: None,
            generation: 0,
            cleaner_busy: Arc::new(AtomicBool::new(false)),
            oldest_clean_tombstone_ms: None,
        };
        if let Some(active) = log.segments.last_mut() {
            active.roll_jitter_ms = jitter(&log.config);
        }
        let leo = log.log_end_offset();
        if log.log_start_offset > leo {
            warn!(tp = %log.tp, log_start = log.log_start_offset, log_end = leo,
                "log start offset beyond the log end; starting the log afresh there");
            let start = log.log_start_offset;
            log.truncate_fully_and_start_at(start)?;
        }
        let leo = log.log_end_offset();
        let mut epochs_changed = log.epochs.truncate_from_end(leo);
        epochs_changed |= log.epochs.truncate_from_start(log.log_start_offset);
        if epochs_changed {
            log.epochs.flush(&log.dir)?;
        }
        log.rebuild_producer_state()?;
        let leo = log.log_end_offset();
        log.first_dirty_offset = match opts.first_dirty_offset {
            Some(o) if o >= log.log_start_offset && o <= leo => o,
            _ => log.log_start_offset,
        };
        if recovered {
            log.recovery_point = log.segments[0].base_offset;
            log.flush()?;
        } else {
            log.recovery_point = opts
                .recovery_point
                .clamp(log.log_start_offset.min(leo), leo);
        }
        info!(tp = %log.tp, log_start = log.log_start_offset, log_end = leo,
            segments = log.segments.len(), recovered, "log loaded");
        Ok(log)
    }

    /// Creates an empty log in `dir` (or opens what is there, cleanly).
    pub fn create(
        dir: impl AsRef<Path>,
        tp: TopicPartition,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Log> {
        let opts = LogOpenOptions {
            clean_shutdown: true,
            ..LogOpenOptions::default()
        };
        Log::open(dir, tp, config, opts, clock)
    }

    // ----- accessors -------------------------------------------------------------------

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// Everything below this offset is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments (at least one).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }

    /// The newest leader epoch in the cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The leader-epoch cache entries, oldest first.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// OffsetForLeaderEpoch: the largest epoch ≤ `epoch` and its end offset (the start of the
    /// next epoch, or the log end for the latest epoch).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The epoch of the leader that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_for_offset(offset)
    }

    /// State of one idempotent producer.
    pub fn producer_state(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(producer_id)
    }

    /// Number of producers tracked.
    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The topic id from `partition.metadata`.
    pub fn topic_id(&self) -> Option<&str> {
        self.topic_id.as_deref()
    }

    /// True after `close` (or a failed shutdown): no further operations are accepted.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed {
            return Err(StorageError::Closed(self.tp.to_string()));
        }
        Ok(())
    }

    fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let n = self.segments.len() - 1;
        &mut self.segments[n]
    }

    /// Index of the segment that would hold `offset` (the last with base ≤ offset).
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    // ----- configuration and metadata --------------------------------------------------------

    /// The cleaner's first dirty offset: everything below it (from the log start) has been
    /// deduplicated by a previous cleaner pass; the next pass builds its key map from here.
    /// Persisted by the [`crate::LogManager`] in `cleaner-offset-checkpoint`.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset.clamp(
            self.log_start_offset,
            self.log_end_offset().max(self.log_start_offset),
        )
    }

    /// Bounds what the log cleaner may touch: segments holding offsets at or beyond `offset`
    /// are never cleaned. The partition should set it to its high watermark (or last stable
    /// offset) as that moves, so that a record is never removed in favour of a newer one that
    /// a follower truncation could still take away. `None` (the default) leaves only the
    /// active segment uncleanable, which is right for a single replica.
    pub fn set_max_cleanable_offset(&mut self, offset: Option<i64>) {
        self.max_cleanable_offset = offset;
    }

    /// The bound set by [`Log::set_max_cleanable_offset`].
    pub fn max_cleanable_offset(&self) -> Option<i64> {
        self.max_cleanable_offset
    }

    /// Replaces the configuration (takes effect for subsequent appends, rolls and retention).
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Persists the topic id in `partition.metadata` (`version: 0\ntopic_id: <id>`).
    pub fn set_topic_id(&mut self, topic_id: &str) -> Result<()> {
        self.ensure_open()?;
        if self.topic_id.as_deref() == Some(topic_id) {
            return Ok(());
        }
        let text = format!("version: 0\ntopic_id: {topic_id}");
        write_atomic(&self.dir.join(PARTITION_METADATA), text.as_bytes())?;
        self.topic_id = Some(topic_id.to_string());
        Ok(())
    }

    // ----- appends -----------------------------------------------------------------------

    /// Appends one producer batch as leader: validates it, assigns offsets from the log end,
    /// stamps `leader_epoch` (and LogAppendTime), checks idempotence, writes it.
    ///
    /// `batch` is not modified: the fields the leader sets all lie in the batch's first
    /// [`HEADER_SIZE`] bytes, so a patched copy of those is written followed by the records as
    /// they came. A request buffer can be appended from directly, without copying its records.
    pub fn append_as_leader(&mut self, batch: &[u8], leader_epoch: i32) -> Result<LogAppendInfo> {
        self.append_as_leader_from(batch, leader_epoch, AppendOrigin::Client)
    }

    /// [`Log::append_as_leader`] with an explicit origin.
    pub fn append_as_leader_from(
        &mut self,
        batch: &[u8],
        leader_epoch: i32,
        origin: AppendOrigin,
    ) -> Result<LogAppendInfo> {
        self.ensure_open()?;
        let header = BatchHeader::parse(batch)?;
        if header.size() < batch.len() {
            return Err(StorageError::InvalidRecord(
                "a produce request may carry exactly one record batch per partition".into(),
            ));
        }
        let max = self.config.max_message_bytes.max(0) as usize;
        if batch.len() > max {
            return Err(StorageError::RecordTooLarge {
                size: batch.len(),
                max,
            });
        }
        let segment_bytes = self.config.segment_bytes.max(0) as usize;
        if batch.len() > segment_bytes {
            return Err(StorageError::BatchLargerThanSegment {
                size: batch.len(),
                segment_bytes,
            });
        }
        let header = validate_batch(batch)?;
        if header.record_count <= 0
            || header.record_count as i64 != header.last_offset_delta as i64 + 1
        {
            return Err(StorageError::InvalidRecord(format!(
                "record count {} does not match the offset delta {}",
                header.record_count, header.last_offset_delta
            )));
        }
        if header.is_control() && origin == AppendOrigin::Client {
            return Err(StorageError::InvalidRecord(
                "clients may not write control batches".into(),
            ));
        }
        if self.config.cleanup_policy.compact && !header.is_control() {
            crate::cleaner::check_keys(batch, &self.tp)?;
        }
        let now = self.clock.now_ms();
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        if !log_append_time {
            self.check_timestamps(&header, now)?;
        }
        if header.has_producer_id() {
            if let ProducerCheck::Duplicate(m) = self.producers.check_client_batch(&header)? {
                debug!(tp = %self.tp, producer_id = header.producer_id, first_offset = m.first_offset,
                    "duplicate batch; returning the original offsets");
                return Ok(LogAppendInfo {
                    first_offset: m.first_offset,
                    last_offset: m.last_offset,
                    max_timestamp: m.max_timestamp,
                    offset_of_max_timestamp: m.last_offset,
                    log_append_time: -1,
                    record_count: m.last_offset - m.first_offset + 1,
                    duplicate: true,
                });
            }
        }
        let base = self.log_end_offset();
        let max_ts = if log_append_time {
            now
        } else {
            header.max_timestamp
        };
        self.maybe_roll(
            batch.len(),
            max_ts,
            base + header.last_offset_delta as i64,
            base,
            now,
        )?;
        let short = || StorageError::InvalidRecord("batch shorter than its header".into());
        let (head, records) = batch.split_at_checked(HEADER_SIZE).ok_or_else(short)?;
        let mut head: [u8; HEADER_SIZE] = head.try_into().map_err(|_| short())?;
        set_base_offset(&mut head, base);
        set_partition_leader_epoch(&mut head, leader_epoch);
        if log_append_time {
            set_log_append_time_split(&mut head, records, now);
        }
        let header = BatchHeader::parse(&head)?;
        let interval = self.config.index_interval_bytes.max(0) as u64;
        let io = Arc::clone(&self.io);
        self.active_mut()
            .append_parts(io.as_ref(), &head, records, &header, interval)?;
        if leader_epoch >= 0 && self.epochs.latest_epoch().is_none_or(|l| leader_epoch > l) {
            self.epochs.assign(leader_epoch, base);
            self.epochs.flush(&self.dir)?;
        }
        self.producers.update(&header);
        self.maybe_flush_by_messages()?;
        Ok(LogAppendInfo {
            first_offset: base,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            offset_of_max_timestamp: header.last_offset(),
            log_append_time: if log_append_time { now } else { -1 },
            record_count: header.record_count as i64,
            duplicate: false,
        })
    }

    fn check_timestamps(&self, h: &BatchHeader, now: i64) -> Result<()> {
        let after = self.config.effective_timestamp_after_max_ms();
        if h.max_timestamp >= 0 && h.max_timestamp > now.saturating_add(after) {
            return Err(StorageError::InvalidTimestamp {
                timestamp: h.max_timestamp,
                now,
                reason: "later than message.timestamp.after.max.ms allows",
            });
        }
        let before = self.config.effective_timestamp_before_max_ms();
        if h.base_timestamp >= 0 && h.base_timestamp < now.saturating_sub(before) {
            return Err(StorageError::InvalidTimestamp {
                timestamp: h.base_timestamp,
                now,
                reason: "earlier than message.timestamp.before.max.ms allows",
            });
        }
        Ok(())
    }

    /// Appends batches replicated from the leader, keeping their offsets and epochs. Offsets
    /// must be at least the log end and increasing. A torn batch at the very end of `batches`
    /// (a fetch cut at its size limit) is ignored, as Kafka does.
    pub fn append_as_follower(&mut self, batches: &[u8]) -> Result<LogAppendInfo> {
        self.ensure_open()?;
        let segment_bytes = self.config.segment_bytes.max(0) as usize;
        let mut expected = self.log_end_offset();
        let mut ranges = Vec::new();
        for item in BatchIter::new(batches) {
            let (h, range) = match item {
                Ok(x) => x,
                Err(BatchError::Truncated { .. }) if !ranges.is_empty() => break,
                Err(e) => return Err(e.into()),
            };
            validate_batch(&batches[range.clone()])?;
            if h.base_offset < expected {
                return Err(StorageError::UnexpectedAppendOffset {
                    expected_at_least: expected,
                    found: h.base_offset,
                });
            }
            if h.size() > segment_bytes {
                return Err(StorageError::BatchLargerThanSegment {
                    size: h.size(),
                    segment_bytes,
                });
            }
            expected = h.next_offset();
            ranges.push((h, range));
        }
        if ranges.is_empty() {
            return Err(StorageError::InvalidRecord(
                "no record batch to append".into(),
            ));
        }
        let now = self.clock.now_ms();
        let interval = self.config.index_interval_bytes.max(0) as u64;
        let io = Arc::clone(&self.io);
        let mut info = LogAppendInfo {
            first_offset: ranges[0].0.base_offset,
            last_offset: -1,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            log_append_time: -1,
            record_count: 0,
            duplicate: false,
        };
        let mut epochs_changed = false;
        for (h, range) in ranges {
            self.maybe_roll(
                h.size(),
                h.max_timestamp,
                h.last_offset(),
                h.base_offset,
                now,
            )?;
            self.active_mut()
                .append(io.as_ref(), &batches[range], &h, interval)?;
            if h.partition_leader_epoch >= 0 {
                epochs_changed |= self.epochs.assign(h.partition_leader_epoch, h.base_offset);
            }
            self.producers.update(&h);
            info.last_offset = h.last_offset();
            info.record_count += h.record_count as i64;
            if h.max_timestamp > info.max_timestamp {
                info.max_timestamp = h.max_timestamp;
                info.offset_of_max_timestamp = h.last_offset();
            }
        }
        if epochs_changed {
            self.epochs.flush(&self.dir)?;
        }
        self.maybe_flush_by_messages()?;
        Ok(info)
    }

    fn maybe_flush_by_messages(&mut self) -> Result<()> {
        if self.log_end_offset() - self.recovery_point >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(())
    }

    /// Kafka's `LogSegment.shouldRoll`, then roll to a new segment at `new_base`.
    fn maybe_roll(
        &mut self,
        batch_size: usize,
        max_timestamp: i64,
        last_offset: i64,
        new_base: i64,
        now: i64,
    ) -> Result<()> {
        let c = &self.config;
        let seg = self.active();
        // Kafka's `maxSegmentMs`: a compacted log rolls at least every max.compaction.lag.ms so
        // that the cleaner can reach its records.
        let segment_ms = if c.cleanup_policy.compact && c.max_compaction_lag_ms > 0 {
            c.segment_ms.min(c.max_compaction_lag_ms)
        } else {
            c.segment_ms
        };
        let overflow = last_offset - seg.base_offset > i32::MAX as i64;
        let should = if seg.is_empty() {
            overflow
        } else {
            let waited = match seg.rolling_based_timestamp {
                Some(t) if t >= 0 => max_timestamp.saturating_sub(t),
                _ => now.saturating_sub(seg.created_ms),
            };
            let max_offset_entries = (c.segment_index_bytes.max(0) / 8) as usize;
            let max_time_entries = (c.segment_index_bytes.max(0) / 12) as usize;
            seg.size + batch_size as u64 > c.segment_bytes.max(0) as u64
                || waited > segment_ms.saturating_sub(seg.roll_jitter_ms)
                || seg.offset_index.len() >= max_offset_entries
                || seg.time_index.len() >= max_time_entries
                || overflow
        };
        if should {
            self.roll_at(new_base)?;
        }
        Ok(())
    }

    /// Starts a new segment at the log end (no-op when the active segment is empty).
    pub fn roll(&mut self) -> Result<()> {
        self.ensure_open()?;
        let leo = self.log_end_offset();
        self.roll_at(leo)
    }

    fn roll_at(&mut self, new_base: i64) -> Result<()> {
        let now = self.clock.now_ms();
        let io = Arc::clone(&self.io);
        if self.active().is_empty() {
            if self.active().base_offset == new_base {
                return Ok(());
            }
            if let Some(seg) = self.segments.pop() {
                seg.delete_files()?;
            }
        } else {
            let active = self.active_mut();
            active.seal_time_index();
            active.write_indexes(io.as_ref(), false)?;
        }
        self.producers.advance_end_offset(new_base);
        self.take_snapshot(new_base, false)?;
        let mut seg = Segment::create(&self.dir, new_base, now, jitter(&self.config))?;
        seg.created_ms = now;
        debug!(tp = %self.tp, base_offset = new_base, "rolled new segment");
        self.segments.push(seg);
        self.dir_dirty = true;
        Ok(())
    }

    // ----- reads -------------------------------------------------------------------------

    /// Reads whole batches from one segment, starting with the batch containing
    /// `start_offset`, up to `max_bytes` (at least one batch when `min_one_batch`), never
    /// returning a batch whose last offset is ≥ `max_offset` (exclusive bound, e.g. the high
    /// watermark). Cheap: index look-ups and a few header reads; the data is read by the caller
    /// from the returned [`FileSlice`] outside the lock.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<LogRead> {
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset;
        if start_offset < log_start || start_offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: start_offset,
                log_start,
                log_end,
            });
        }
        let mut out = LogRead {
            slice: None,
            first_offset: start_offset,
            next_offset: start_offset,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        if start_offset == log_end || max_offset <= start_offset {
            return Ok(out);
        }
        for seg in &self.segments[self.segment_index_for(start_offset)..] {
            let mut reader = HeaderReader::new(seg);
            let Some((start_pos, first)) =
                seg.find_batch(start_offset.max(seg.base_offset), &mut reader)?
            else {
                continue;
            };
            if first.last_offset() >= max_offset {
                return Ok(out);
            }
            let (mut end, mut end_next) = (seg.size, seg.next_offset);
            if max_offset < seg.next_offset {
                if let Some((p, h)) = seg.find_batch(max_offset, &mut reader)? {
                    end = p;
                    end_next = h.base_offset;
                }
            }
            let limit = start_pos.saturating_add(max_bytes as u64);
            let (mut stop, mut next) = if limit >= end {
                (end, end_next)
            } else {
                seg.boundary_before(start_pos, limit, end, &mut reader)?
            };
            if stop == start_pos {
                if !min_one_batch {
                    return Ok(out);
                }
                stop = start_pos + first.size() as u64;
                next = first.next_offset();
            }
            out.first_offset = first.base_offset;
            out.next_offset = next;
            out.slice = Some(FileSlice {
                file: Arc::clone(&seg.file),
                position: start_pos,
                len: (stop - start_pos) as usize,
            });
            return Ok(out);
        }
        Ok(out)
    }

    /// ListOffsets by timestamp: the first record (at or after the log start) whose timestamp
    /// is ≥ `timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>> {
        let start = self.log_start_offset;
        for seg in &self.segments {
            if seg.max_timestamp < timestamp || seg.next_offset <= start {
                continue;
            }
            let from = seg
                .time_index
                .floor_below(timestamp)
                .map_or(seg.base_offset, |e| seg.base_offset + e.rel as i64)
                .max(start);
            let mut reader = HeaderReader::new(seg);
            let Some((mut pos, _)) = seg.find_batch(from, &mut reader)? else {
                continue;
            };
            while pos < seg.size {
                let h = reader.header_at(pos)?;
                if h.max_timestamp >= timestamp && h.last_offset() >= start {
                    let bytes = seg.read_batch(pos, h.size())?;
                    let decoded = decode_batch(&bytes)?;
                    if let Some(r) = decoded
                        .records
                        .iter()
                        .find(|r| r.timestamp >= timestamp && r.offset >= start)
                    {
                        return Ok(Some(TimestampAndOffset {
                            timestamp: r.timestamp,
                            offset: r.offset,
                            leader_epoch: (h.partition_leader_epoch >= 0)
                                .then_some(h.partition_leader_epoch),
                        }));
                    }
                }
                pos += h.size() as u64;
            }
        }
        Ok(None)
    }

    /// ListOffsets -3 (MAX_TIMESTAMP): the record with the largest timestamp (the first such
    /// record), or `None` for a log without timestamps.
    pub fn max_timestamp(&self) -> Result<Option<TimestampAndOffset>> {
        let mut best: Option<&Segment> = None;
        for seg in &self.segments {
            if seg.max_timestamp >= 0 && best.is_none_or(|b| seg.max_timestamp > b.max_timestamp) {
                best = Some(seg);
            }
        }
        let Some(seg) = best else {
            return Ok(None);
        };
        let mut reader = HeaderReader::new(seg);
        let Some((pos, h)) = seg.find_batch(seg.offset_of_max_timestamp, &mut reader)? else {
            return Ok(None);
        };
        let bytes = seg.read_batch(pos, h.size())?;
        let decoded = decode_batch(&bytes)?;
        let epoch = (h.partition_leader_epoch >= 0).then_some(h.partition_leader_epoch);
        let found = decoded
            .records
            .iter()
            .find(|r| r.timestamp == seg.max_timestamp)
            .map(|r| (r.timestamp, r.offset))
            .unwrap_or((h.max_timestamp, h.last_offset()));
        Ok(Some(TimestampAndOffset {
            timestamp: found.0,
            offset: found.1,
            leader_epoch: epoch,
        }))
    }

    // ----- leader epochs -----------------------------------------------------------------

    /// Records that `epoch` starts at `start_offset` (becoming leader) and persists the cache.
    pub fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        self.ensure_open()?;
        if self.epochs.assign(epoch, start_offset) {
            self.epochs.flush(&self.dir)?;
        }
        Ok(())
    }

    // ----- log start, truncation, retention --------------------------------------------------

    /// Moves the log start offset forward to `new_start` (never backwards, never past the log
    /// end). Segments are not deleted here; see [`Log::delete_records_before`]. Returns whether
    /// it moved.
    pub fn maybe_increment_log_start_offset(&mut self, new_start: i64) -> Result<bool> {
        self.ensure_open()?;
        let log_end = self.log_end_offset();
        if new_start > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: new_start,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        if new_start <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = new_start;
        if self.epochs.truncate_from_start(new_start) {
            self.epochs.flush(&self.dir)?;
        }
        Ok(true)
    }

    /// DeleteRecords: moves the log start offset to `offset` and deletes segments entirely
    /// below it. Returns the number of segments deleted.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<usize> {
        self.maybe_increment_log_start_offset(offset)?;
        self.delete_log_start_breached_segments()
    }

    fn delete_log_start_breached_segments(&mut self) -> Result<usize> {
        let start = self.log_start_offset;
        self.delete_old_segments(|_, next| next.is_some_and(|n| n.base_offset <= start))
    }

    /// Deletes whole segments by the log start offset and, when `cleanup.policy` contains
    /// `delete`, by `retention.bytes` and `retention.ms`, as Kafka's `deleteOldSegments`.
    /// Returns the number of segments deleted.
    pub fn enforce_retention(&mut self) -> Result<usize> {
        self.ensure_open()?;
        let mut deleted = self.delete_log_start_breached_segments()?;
        if !self.config.cleanup_policy.delete {
            return Ok(deleted);
        }
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let size = self.size_bytes() as i64;
            if size >= retention_bytes {
                let mut diff = size - retention_bytes;
                deleted += self.delete_old_segments(|seg, _| {
                    if diff - seg.size as i64 >= 0 {
                        diff -= seg.size as i64;
                        true
                    } else {
                        false
                    }
                })?;
            }
        }
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let now = self.clock.now_ms();
            deleted += self.delete_old_segments(|seg, _| {
                now.saturating_sub(seg.largest_timestamp()) > retention_ms
            })?;
        }
        Ok(deleted)
    }

    /// Deletes the oldest segments while `pred(segment, next segment)` holds. The active
    /// segment is deleted only when non-empty, after rolling a new one.
    fn delete_old_segments(
        &mut self,
        mut pred: impl FnMut(&Segment, Option<&Segment>) -> bool,
    ) -> Result<usize> {
        let mut n = 0;
        while n < self.segments.len() {
            let seg = &self.segments[n];
            let next = self.segments.get(n + 1);
            let last_and_empty = next.is_none() && seg.is_empty();
            if !last_and_empty && pred(seg, next) {
                n += 1;
            } else {
                break;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        if n == self.segments.len() {
            self.roll()?;
        }
        self.generation += 1;
        for seg in self.segments.drain(..n) {
            info!(tp = %self.tp, base_offset = seg.base_offset, next_offset = seg.next_offset,
                size = seg.size, "deleting segment");
            seg.delete_files()?;
        }
        self.dir_dirty = true;
        let first = self.segments[0].base_offset;
        if first > self.log_start_offset {
            self.log_start_offset = first;
            if self.epochs.truncate_from_start(first) {
                self.epochs.flush(&self.dir)?;
            }
        }
        self.recovery_point = self.recovery_point.max(first);
        self.first_dirty_offset = self.first_dirty_offset.max(self.log_start_offset);
        self.delete_snapshots(|o| o < first)?;
        Ok(n)
    }

    /// Removes every record at or after `offset` (follower divergence). The batch containing
    /// `offset` is removed whole, so the new log end may be below `offset`. Truncating below
    /// the log start empties the log and restarts it at `offset`. Returns whether anything
    /// was removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool> {
        self.ensure_open()?;
        if offset < 0 {
            return Err(StorageError::InvalidRecord(format!(
                "cannot truncate to offset {offset}"
            )));
        }
        if offset >= self.log_end_offset() {
            return Ok(false);
        }
        if offset < self.log_start_offset {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(true);
        }
        info!(tp = %self.tp, offset, log_end = self.log_end_offset(), "truncating log");
        self.generation += 1;
        while self.segments.len() > 1 && self.active().base_offset > offset {
            if let Some(seg) = self.segments.pop() {
                seg.delete_files()?;
            }
            self.dir_dirty = true;
        }
        let now = self.clock.now_ms();
        let io = Arc::clone(&self.io);
        self.active_mut().truncate_to(io.as_ref(), offset, now)?;
        let leo = self.log_end_offset();
        self.recovery_point = self.recovery_point.min(leo);
        self.log_start_offset = self.log_start_offset.min(leo);
        self.first_dirty_offset = self.first_dirty_offset.min(leo);
        if self.epochs.truncate_from_end(leo) {
            self.epochs.flush(&self.dir)?;
        }
        self.rebuild_producer_state()?;
        Ok(true)
    }

    /// Deletes everything and restarts the log empty at `offset` (log start = log end =
    /// recovery point = `offset`), as a follower does when its log is too far behind.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.ensure_open()?;
        info!(tp = %self.tp, offset, "truncating log fully");
        self.generation += 1;
        for seg in self.segments.drain(..) {
            seg.delete_files()?;
        }
        let now = self.clock.now_ms();
        self.segments.push(Segment::create(
            &self.dir,
            offset,
            now,
            jitter(&self.config),
        )?);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.recovery_point = offset;
        self.first_dirty_offset = offset;
        if self.epochs.clear() {
            self.epochs.flush(&self.dir)?;
        }
        self.delete_snapshots(|_| true)?;
        self.producers = ProducerStateManager::new(offset);
        Ok(())
    }

    // ----- producer state ----------------------------------------------------------------

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(segment_file_name(offset, "snapshot"))
    }

    fn take_snapshot(&mut self, offset: i64, sync: bool) -> Result<()> {
        let bytes = self.producers.encode_snapshot_at(offset);
        let path = self.snapshot_path(offset);
        if sync {
            write_atomic(&path, &bytes)?;
        } else {
            fs::write(&path, &bytes).at(&path)?;
        }
        if let Err(i) = self.snapshots.binary_search(&offset) {
            self.snapshots.insert(i, offset);
        }
        Ok(())
    }

    fn delete_snapshots(&mut self, mut pred: impl FnMut(i64) -> bool) -> Result<()> {
        let mut keep = Vec::with_capacity(self.snapshots.len());
        for &o in &self.snapshots {
            if pred(o) {
                remove_file_if_exists(&self.snapshot_path(o))?;
            } else {
                keep.push(o);
            }
        }
        self.snapshots = keep;
        Ok(())
    }

    /// Loads the newest valid snapshot at or below the log end and replays batch headers
    /// from there.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        let leo = self.log_end_offset();
        self.delete_snapshots(|o| o > leo)?;
        let mut state = None;
        while let Some(&o) = self.snapshots.last() {
            let path = self.snapshot_path(o);
            let loaded = fs::read(&path)
                .map_err(|e| StorageError::io(&path, e))
                .and_then(|b| ProducerStateManager::decode_snapshot(&path, &b));
            match loaded {
                Ok(mut s) => {
                    s.set_end_offset(o);
                    state = Some(s);
                    break;
                }
                Err(e) => {
                    warn!(tp = %self.tp, snapshot = %path.display(), "ignoring producer snapshot: {e}");
                    remove_file_if_exists(&path)?;
                    self.snapshots.pop();
                }
            }
        }
        let mut state =
            state.unwrap_or_else(|| ProducerStateManager::new(self.segments[0].base_offset));
        let from = state.end_offset();
        for seg in &self.segments {
            if seg.next_offset <= from || seg.is_empty() {
                continue;
            }
            let start_pos = if from > seg.base_offset {
                let mut reader = HeaderReader::new(seg);
                match seg.find_batch(from, &mut reader)? {
                    Some((p, _)) => p,
                    None => continue,
                }
            } else {
                0
            };
            let mut scanner = Scanner::new(&seg.file, &seg.path, start_pos, seg.size, 64 << 10);
            while let Some(step) = scanner.next_batch(false)? {
                match step {
                    Ok((h, _)) if h.base_offset >= from => state.update(&h),
                    Ok(_) => {}
                    Err((pos, e)) => {
                        warn!(tp = %self.tp, segment = %seg.path.display(), pos,
                            "stopping producer state rebuild at an unreadable batch: {e}");
                        break;
                    }
                }
            }
        }
        state.advance_end_offset(leo);
        self.producers = state;
        Ok(())
    }

    /// Forgets producers idle for longer than `expiration_ms` (`producer.id.expiration.ms`).
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    // ----- durability ----------------------------------------------------------------------

    /// fsyncs every segment (and the indexes of inactive ones) from the recovery point to the
    /// log end, and moves the recovery point to the log end.
    pub fn flush(&mut self) -> Result<()> {
        self.ensure_open()?;
        self.flush_segments(true)
    }

    fn flush_segments(&mut self, include_active: bool) -> Result<()> {
        let io = Arc::clone(&self.io);
        let from = self.segment_index_for(self.recovery_point);
        let n = self.segments.len();
        let upto = if include_active { n } else { n - 1 };
        for i in from..upto {
            self.segments[i].flush(io.as_ref(), i + 1 == n)?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = if include_active {
            self.log_end_offset()
        } else {
            self.active().base_offset.max(self.recovery_point)
        };
        if include_active {
            self.last_flush_ms = self.clock.now_ms();
        }
        Ok(())
    }

    /// Periodic flush: segments rolled since the last flush are fsynced (as Kafka flushes on
    /// roll), and everything when `flush.ms` has passed since the last flush. Returns whether
    /// anything was flushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool> {
        self.ensure_open()?;
        let unflushed = self.log_end_offset() > self.recovery_point;
        if unflushed && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms {
            self.flush_segments(true)?;
            self.last_flush_ms = now_ms;
            return Ok(true);
        }
        if self.recovery_point < self.active().base_offset {
            self.flush_segments(false)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Flushes everything, writes the indexes and a producer snapshot, and closes the log.
    pub fn close(mut self) -> Result<()> {
        self.close_in_place()
    }

    pub(crate) fn close_in_place(&mut self) -> Result<()> {
        if self.failed {
            return Err(StorageError::InconsistentLog {
                path: self.dir.clone(),
                reason: "a log cleaner swap failed half-way; the next start completes it".into(),
            });
        }
        if self.closed {
            return Ok(());
        }
        let io = Arc::clone(&self.io);
        {
            let active = self.active_mut();
            active.trim_file()?;
            active.seal_time_index();
        }
        for seg in &mut self.segments {
            seg.write_indexes(io.as_ref(), true)?;
        }
        self.flush_segments(true)?;
        let leo = self.log_end_offset();
        self.take_snapshot(leo, true)?;
        let first = self.segments[0].base_offset;
        self.delete_snapshots(|o| o < first)?;
        self.closed = true;
        debug!(tp = %self.tp, log_end = leo, "log closed");
        Ok(())
    }

    /// Deletes the log's directory and everything in it.
    pub fn delete(mut self) -> Result<()> {
        self.delete_in_place()
    }

    pub(crate) fn delete_in_place(&mut self) -> Result<()> {
        self.closed = true;
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.dir, e)),
        }
    }

    /// Renames the partition directory (used before deletion); the log stays usable.
    pub(crate) fn rename_dir(&mut self, new_dir: PathBuf) -> Result<()> {
        fs::rename(&self.dir, &new_dir).at(&self.dir)?;
        for seg in &mut self.segments {
            seg.set_dir(&new_dir);
        }
        self.dir = new_dir;
        Ok(())
    }
}

fn jitter(config: &LogConfig) -> i64 {
    let max = config.segment_jitter_ms.min(config.segment_ms);
    if max <= 0 {
        0
    } else {
        (random_u64() % max as u64) as i64
    }
}

fn read_topic_id(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(PARTITION_METADATA);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("topic_id:") {
            return Ok(Some(id.trim().to_string()));
        }
    }
    Err(StorageError::MalformedFile {
        path,
        reason: "no topic_id line".into(),
    })
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
