//! All logs of a broker, across one or more log dirs.

use crate::checkpoint::{
    read_offsets, sync_dir, write_offsets, CLEANER_OFFSET_CHECKPOINT, CLEAN_SHUTDOWN_MARKER,
    LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use crate::cleaner::{compact_shared, CleanerConfig};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::io::{LogIo, StdIo};
use crate::log::{random_u64, Log, LogOpenOptions, SharedLog};
use fjord_common::{Clock, TopicPartition};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tracing::{info, warn};

/// Suffix of a partition directory being deleted.
pub const DELETE_DIR_SUFFIX: &str = "-delete";

/// The KRaft metadata log's topic; its directory is owned by the metadata layer, not loaded here
/// (as in Kafka's `LogManager`).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

struct Managed {
    dir_index: usize,
    log: SharedLog,
}

/// Owns every partition log of the broker's log dirs.
pub struct LogManager {
    dirs: Vec<PathBuf>,
    default_config: RwLock<LogConfig>,
    clock: Arc<dyn Clock>,
    io: Arc<dyn LogIo>,
    logs: RwLock<HashMap<TopicPartition, Managed>>,
    cleaner_config: RwLock<CleanerConfig>,
    /// Serialises writes of `cleaner-offset-checkpoint` (cleaner task vs. checkpointing).
    cleaner_checkpoint_lock: Mutex<()>,
    /// Deleted logs whose files are still open, until [`LogManager::sweep_deleted`] closes
    /// them. Closing an unlinked file frees its pages, which for a large log takes a while
    /// (about 150 ms per GB on the project's VM): that belongs on a maintenance thread, not
    /// on whichever request happened to drop the log last.
    deleted: Mutex<Vec<SharedLog>>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("dirs", &self.dirs)
            .field("logs", &self.logs.read().len())
            .finish_non_exhaustive()
    }
}

struct Job {
    dir_index: usize,
    path: PathBuf,
    tp: TopicPartition,
    opts: LogOpenOptions,
}

impl LogManager {
    /// Loads every `<topic>-<partition>` directory of `log_dirs` (finishing interrupted
    /// deletions, recovering logs of dirs without a clean-shutdown marker), then removes the
    /// markers. Existing logs get `default_config` until the caller updates them.
    pub fn open(
        log_dirs: Vec<PathBuf>,
        default_config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<LogManager> {
        Self::open_with_io(log_dirs, default_config, clock, Arc::new(StdIo))
    }

    /// [`LogManager::open`] with an I/O seam for fault-injection tests.
    pub fn open_with_io(
        log_dirs: Vec<PathBuf>,
        default_config: LogConfig,
        clock: Arc<dyn Clock>,
        io: Arc<dyn LogIo>,
    ) -> Result<LogManager> {
        if log_dirs.is_empty() {
            return Err(StorageError::InconsistentLog {
                path: PathBuf::new(),
                reason: "no log dirs configured".into(),
            });
        }
        let mut jobs = Vec::new();
        let mut seen: HashMap<TopicPartition, PathBuf> = HashMap::new();
        for (dir_index, dir) in log_dirs.iter().enumerate() {
            fs::create_dir_all(dir).at(dir)?;
            let clean = dir.join(CLEAN_SHUTDOWN_MARKER).exists();
            let (recovery, start, clean) = match (
                read_offsets(&dir.join(RECOVERY_POINT_CHECKPOINT)),
                read_offsets(&dir.join(LOG_START_OFFSET_CHECKPOINT)),
            ) {
                (Ok(r), Ok(s)) => (r, s, clean),
                (r, s) => {
                    warn!(dir = %dir.display(), "unreadable checkpoint files ({:?}, {:?}); \
                        recovering every log", r.err(), s.err());
                    (HashMap::new(), HashMap::new(), false)
                }
            };
            let cleaner_offsets = match read_offsets(&dir.join(CLEANER_OFFSET_CHECKPOINT)) {
                Ok(c) => c,
                Err(e) => {
                    warn!(dir = %dir.display(), "unreadable cleaner checkpoint ({e}); \
                        compacted logs are cleaned from their start");
                    HashMap::new()
                }
            };
            info!(dir = %dir.display(), clean_shutdown = clean, "loading log dir");
            for entry in fs::read_dir(dir).at(dir)? {
                let entry = entry.at(dir)?;
                let path = entry.path();
                if !entry.file_type().at(&path)?.is_dir() {
                    continue;
                }
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    info!(dir = %path.display(), "finishing deletion of partition directory");
                    fs::remove_dir_all(&path).at(&path)?;
                    continue;
                }
                let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                    continue;
                };
                if tp.topic == METADATA_TOPIC {
                    continue;
                }
                if let Some(other) = seen.insert(tp.clone(), path.clone()) {
                    return Err(StorageError::InconsistentLog {
                        path,
                        reason: format!("{tp} is also in {}", other.display()),
                    });
                }
                let opts = LogOpenOptions {
                    recovery_point: recovery.get(&tp).copied().unwrap_or(0),
                    log_start_offset: start.get(&tp).copied().unwrap_or(0),
                    clean_shutdown: clean,
                    io: Arc::clone(&io),
                    first_dirty_offset: cleaner_offsets.get(&tp).copied(),
                };
                jobs.push(Job {
                    dir_index,
                    path,
                    tp,
                    opts,
                });
            }
        }
        let logs = open_all(jobs, &default_config, &clock)?;
        for dir in &log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            match fs::remove_file(&marker) {
                Ok(()) => sync_dir(dir)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&marker, e)),
            }
        }
        Ok(LogManager {
            dirs: log_dirs,
            default_config: RwLock::new(default_config),
            clock,
            io,
            logs: RwLock::new(logs),
            cleaner_config: RwLock::new(CleanerConfig::default()),
            cleaner_checkpoint_lock: Mutex::new(()),
            deleted: Mutex::new(Vec::new()),
        })
    }

    /// The log dirs.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The configuration for logs without topic overrides.
    pub fn default_config(&self) -> LogConfig {
        self.default_config.read().clone()
    }

    /// Replaces the default configuration (existing logs keep theirs).
    pub fn set_default_config(&self, config: LogConfig) {
        *self.default_config.write() = config;
    }

    /// The log of a partition, if present.
    pub fn get(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.logs.read().get(tp).map(|m| Arc::clone(&m.log))
    }

    /// The log of a partition, created empty (in the log dir holding the fewest partitions)
    /// if absent. An existing log keeps its configuration.
    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig) -> Result<SharedLog> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let mut logs = self.logs.write();
        if let Some(m) = logs.get(tp) {
            return Ok(Arc::clone(&m.log));
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for m in logs.values() {
            counts[m.dir_index] += 1;
        }
        let dir_index = (0..self.dirs.len())
            .min_by_key(|&i| (counts[i], i))
            .unwrap_or(0);
        let path = self.dirs[dir_index].join(tp.to_string());
        let opts = LogOpenOptions {
            clean_shutdown: true,
            io: Arc::clone(&self.io),
            ..LogOpenOptions::default()
        };
        let log = Log::open(&path, tp.clone(), config, opts, Arc::clone(&self.clock))?;
        sync_dir(&self.dirs[dir_index])?;
        info!(tp = %tp, dir = %path.display(), "created log");
        let log: SharedLog = Arc::new(RwLock::new(log));
        logs.insert(
            tp.clone(),
            Managed {
                dir_index,
                log: Arc::clone(&log),
            },
        );
        Ok(log)
    }

    /// Deletes a partition's log: renames its directory to `<topic>-<partition>.<hex>-delete`
    /// (so a crash mid-way finishes the deletion at the next start), then removes it. Readers
    /// holding file slices keep reading the unlinked files. Returns whether the log existed.
    pub fn delete(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(m) = self.logs.write().remove(tp) else {
            return Ok(false);
        };
        let mut log = m.log.write();
        let parent = self.dirs[m.dir_index].clone();
        let target = parent.join(format!("{tp}.{:016x}{DELETE_DIR_SUFFIX}", random_u64()));
        log.rename_dir(target)?;
        sync_dir(&parent)?;
        log.delete_in_place()?;
        drop(log);
        self.deleted.lock().push(m.log);
        // A log created again under the same name must not inherit the cleaner offset.
        self.write_cleaner_checkpoint(m.dir_index)?;
        info!(tp = %tp, "deleted log");
        Ok(true)
    }

    /// Closes the files of deleted logs nobody else holds any more (which frees their space)
    /// and returns how many were closed. Meant for a maintenance thread.
    pub fn sweep_deleted(&self) -> usize {
        let unused: Vec<SharedLog> = {
            let mut deleted = self.deleted.lock();
            let (unused, held) = std::mem::take(&mut *deleted)
                .into_iter()
                .partition(|log| Arc::strong_count(log) == 1);
            *deleted = held;
            unused
        };
        unused.len()
    }

    /// Every log.
    pub fn all(&self) -> Vec<(TopicPartition, SharedLog)> {
        let mut v: Vec<_> = self
            .logs
            .read()
            .iter()
            .map(|(tp, m)| (tp.clone(), Arc::clone(&m.log)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Writes `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
    /// `cleaner-offset-checkpoint` in every log dir.
    pub fn checkpoint(&self) -> Result<()> {
        type Offsets = Vec<(TopicPartition, i64)>;
        let mut per_dir: Vec<(Offsets, Offsets)> = vec![(Vec::new(), Vec::new()); self.dirs.len()];
        for (tp, m) in self.logs.read().iter() {
            let log = m.log.read();
            per_dir[m.dir_index]
                .0
                .push((tp.clone(), log.recovery_point()));
            per_dir[m.dir_index]
                .1
                .push((tp.clone(), log.log_start_offset()));
        }
        for (dir, (rps, starts)) in self.dirs.iter().zip(per_dir) {
            write_offsets(
                &dir.join(RECOVERY_POINT_CHECKPOINT),
                rps.iter().map(|(t, o)| (t, *o)),
            )?;
            write_offsets(
                &dir.join(LOG_START_OFFSET_CHECKPOINT),
                starts.iter().map(|(t, o)| (t, *o)),
            )?;
        }
        for i in 0..self.dirs.len() {
            self.write_cleaner_checkpoint(i)?;
        }
        Ok(())
    }

    /// Writes `cleaner-offset-checkpoint` of log dir `dir_index`: the first dirty offset of
    /// every log there whose policy includes compact.
    fn write_cleaner_checkpoint(&self, dir_index: usize) -> Result<()> {
        let _guard = self.cleaner_checkpoint_lock.lock();
        let mut entries = Vec::new();
        for (tp, m) in self.logs.read().iter() {
            if m.dir_index != dir_index {
                continue;
            }
            let log = m.log.read();
            if log.config().cleanup_policy.compact {
                entries.push((tp.clone(), log.first_dirty_offset()));
            }
        }
        write_offsets(
            &self.dirs[dir_index].join(CLEANER_OFFSET_CHECKPOINT),
            entries.iter().map(|(t, o)| (t, *o)),
        )
    }

    /// The log cleaner's settings.
    pub fn cleaner_config(&self) -> CleanerConfig {
        self.cleaner_config.read().clone()
    }

    /// Replaces the log cleaner's settings (`log.cleaner.dedupe.buffer.size`, ...).
    pub fn set_cleaner_config(&self, config: CleanerConfig) {
        *self.cleaner_config.write() = config;
    }

    /// One round of the log cleaner at time `now_ms`: picks every log whose policy includes
    /// compact and whose dirty ratio reaches `min.cleanable.dirty.ratio` or whose oldest dirty
    /// record waited beyond `max.compaction.lag.ms` ([`crate::CleanableInfo::needs_cleaning`]),
    /// most overdue and dirtiest first, runs one pass on each with [`compact_shared`] (the
    /// log's lock is held only to plan and to swap), then updates `cleaner-offset-checkpoint`.
    /// Returns how many logs were cleaned; the first error is returned after trying all logs.
    /// Blocks for the whole round: the broker calls it from a blocking background task every
    /// `log.cleaner.backoff.ms`.
    pub fn run_cleaner(&self, now_ms: i64) -> Result<usize> {
        let config = self.cleaner_config();
        let mut candidates = Vec::new();
        for (tp, m) in self.logs.read().iter() {
            let log = m.log.read();
            if log.is_closed() || !log.config().cleanup_policy.compact {
                continue;
            }
            let info = log.cleanable(now_ms);
            if info.needs_cleaning(log.config()) {
                candidates.push((info, tp.clone(), m.dir_index, Arc::clone(&m.log)));
            }
        }
        candidates.sort_by(|a, b| {
            b.0.max_compaction_delay_ms
                .cmp(&a.0.max_compaction_delay_ms)
                .then(b.0.dirty_ratio().total_cmp(&a.0.dirty_ratio()))
        });
        let mut cleaned = 0;
        let mut touched = vec![false; self.dirs.len()];
        let mut first_err = None;
        for (_, tp, dir_index, log) in candidates {
            match compact_shared(&log, now_ms, &config) {
                Ok(stats) if stats.did_work() => {
                    cleaned += 1;
                    touched[dir_index] = true;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(tp = %tp, "log cleaner pass failed: {e}");
                    first_err.get_or_insert(e);
                }
            }
        }
        for (i, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
            if let Err(e) = self.write_cleaner_checkpoint(i) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(cleaned),
        }
    }

    /// Runs [`Log::flush_if_due`] on every log. Returns how many flushed; the first error is
    /// returned after trying all logs.
    pub fn flush_due(&self, now_ms: i64) -> Result<usize> {
        self.for_each_log(|log| log.flush_if_due(now_ms).map(usize::from))
    }

    /// Runs [`Log::enforce_retention`] on every log. Returns the segments deleted.
    pub fn enforce_retention(&self) -> Result<usize> {
        self.for_each_log(|log| log.enforce_retention())
    }

    fn for_each_log(&self, mut f: impl FnMut(&mut Log) -> Result<usize>) -> Result<usize> {
        let mut total = 0;
        let mut first_err = None;
        for (tp, log) in self.all() {
            let mut log = log.write();
            if log.is_closed() {
                continue;
            }
            match f(&mut log) {
                Ok(n) => total += n,
                Err(e) => {
                    warn!(tp = %tp, "log maintenance failed: {e}");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Closes every log (flush, indexes, producer snapshots), writes the checkpoints and the
    /// `.kafka_cleanshutdown` marker in each log dir whose logs all closed cleanly.
    pub fn shutdown(&self) -> Result<()> {
        let mut failed_dirs = vec![false; self.dirs.len()];
        let mut first_err = None;
        for (tp, m) in self.logs.read().iter() {
            if let Err(e) = m.log.write().close_in_place() {
                warn!(tp = %tp, "closing log failed: {e}");
                failed_dirs[m.dir_index] = true;
                first_err.get_or_insert(e);
            }
        }
        self.checkpoint()?;
        for (dir, failed) in self.dirs.iter().zip(failed_dirs) {
            if failed {
                continue;
            }
            let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
            fs::write(&marker, b"").at(&marker)?;
            sync_dir(dir)?;
        }
        info!("log manager shut down");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Persists a partition's topic id in its `partition.metadata`.
    pub fn set_topic_id(&self, tp: &TopicPartition, topic_id: &str) -> Result<()> {
        let log = self.get(tp).ok_or_else(|| StorageError::InconsistentLog {
            path: PathBuf::new(),
            reason: format!("no log for {tp}"),
        })?;
        let mut log = log.write();
        log.set_topic_id(topic_id)
    }

    /// The log dir holding a partition.
    pub fn dir_of(&self, tp: &TopicPartition) -> Option<&Path> {
        self.logs
            .read()
            .get(tp)
            .map(|m| m.dir_index)
            .map(|i| self.dirs[i].as_path())
    }
}

fn open_all(
    jobs: Vec<Job>,
    config: &LogConfig,
    clock: &Arc<dyn Clock>,
) -> Result<HashMap<TopicPartition, Managed>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Log>)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else {
                    break;
                };
                let r = Log::open(
                    &job.path,
                    job.tp.clone(),
                    config.clone(),
                    job.opts.clone(),
                    Arc::clone(clock),
                );
                results.lock().push((i, r));
            });
        }
    });
    let mut logs = HashMap::with_capacity(jobs.len());
    for (i, r) in results.into_inner() {
        let job = &jobs[i];
        let log = r?;
        logs.insert(
            job.tp.clone(),
            Managed {
                dir_index: job.dir_index,
                log: Arc::new(RwLock::new(log)),
            },
        );
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_common::ManualClock;
    use fjord_protocol::compression::Compression;
    use fjord_protocol::records::{BatchBuilder, Record};

    const T0: i64 = 1_700_000_000_000;

    fn batch(n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None, T0);
        for _ in 0..n {
            b.push(Record::new(None, Some(b"value".to_vec())));
        }
        b.build().unwrap().to_vec()
    }

    fn manager(dirs: &[PathBuf]) -> LogManager {
        LogManager::open(
            dirs.to_vec(),
            LogConfig::default(),
            Arc::new(ManualClock::new(T0)),
        )
        .unwrap()
    }

    #[test]
    fn lifecycle_across_two_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        let m = manager(&dirs);
        let tps: Vec<_> = (0..4).map(|p| TopicPartition::new("orders", p)).collect();
        for (i, tp) in tps.iter().enumerate() {
            let log = m.get_or_create(tp, LogConfig::default()).unwrap();
            log.write().append_as_leader(&batch(i + 1), 0).unwrap();
        }
        assert_eq!(m.all().len(), 4);
        let in_a = tps
            .iter()
            .filter(|tp| m.dir_of(tp) == Some(dirs[0].as_path()))
            .count();
        assert_eq!(in_a, 2, "new logs go to the dir with the fewest partitions");
        m.get(&tps[3])
            .unwrap()
            .write()
            .delete_records_before(2)
            .unwrap();
        m.set_topic_id(&tps[0], "topic-id-0").unwrap();
        m.checkpoint().unwrap();
        let text = fs::read_to_string(dirs[0].join(LOG_START_OFFSET_CHECKPOINT)).unwrap();
        assert!(text.starts_with("0\n2\n"), "{text}");
        m.shutdown().unwrap();
        for d in &dirs {
            assert!(d.join(CLEAN_SHUTDOWN_MARKER).exists());
        }
        let rp = read_offsets(&dirs[1].join(RECOVERY_POINT_CHECKPOINT)).unwrap();
        assert_eq!(rp.len(), 2);

        // Leftovers of an interrupted delete and unrelated entries.
        fs::create_dir_all(dirs[0].join("gone-0.0123abcd-delete")).unwrap();
        fs::create_dir_all(dirs[0].join("not a partition")).unwrap();
        fs::create_dir_all(dirs[0].join("__cluster_metadata-0")).unwrap();
        fs::write(dirs[0].join("meta.properties"), "x").unwrap();

        let m = manager(&dirs);
        for d in &dirs {
            assert!(
                !d.join(CLEAN_SHUTDOWN_MARKER).exists(),
                "marker removed at startup"
            );
        }
        assert!(!dirs[0].join("gone-0.0123abcd-delete").exists());
        assert_eq!(m.all().len(), 4);
        for (i, tp) in tps.iter().enumerate() {
            let log = m.get(tp).unwrap();
            let log = log.read();
            assert_eq!(log.log_end_offset(), i as i64 + 1);
            assert_eq!(log.recovery_point(), i as i64 + 1);
        }
        assert_eq!(m.get(&tps[3]).unwrap().read().log_start_offset(), 2);
        assert_eq!(
            m.get(&tps[0]).unwrap().read().topic_id(),
            Some("topic-id-0")
        );

        // Delete: directory renamed then removed, slices stay readable.
        let log = m.get(&tps[1]).unwrap();
        let slice = log
            .read()
            .read(0, 1 << 20, i64::MAX, true)
            .unwrap()
            .slice
            .unwrap();
        let dir = log.read().dir().to_path_buf();
        assert!(m.delete(&tps[1]).unwrap());
        assert!(!dir.exists());
        assert!(m.get(&tps[1]).is_none());
        assert!(!m.delete(&tps[1]).unwrap());
        assert_eq!(slice.read_bytes().unwrap().len(), slice.len);
        assert!(log.write().append_as_leader(&batch(1), 0).is_err());
        // Its files are closed by a sweep, once nobody else holds the log.
        let weak = Arc::downgrade(&log);
        assert_eq!(m.sweep_deleted(), 0, "still held here");
        drop(log);
        assert!(weak.upgrade().is_some(), "kept for the sweep");
        assert_eq!(m.sweep_deleted(), 1);
        assert!(weak.upgrade().is_none());
        assert_eq!(m.sweep_deleted(), 0);
        m.shutdown().unwrap();
        let m = manager(&dirs);
        assert_eq!(m.all().len(), 3);
    }

    #[test]
    fn unclean_start_recovers_torn_tails() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().to_path_buf()];
        let m = manager(&dirs);
        let tp = TopicPartition::new("t", 0);
        let log = m.get_or_create(&tp, LogConfig::default()).unwrap();
        for _ in 0..3 {
            log.write().append_as_leader(&batch(2), 0).unwrap();
        }
        let seg = log.read().dir().join("00000000000000000000.log");
        drop(log);
        drop(m); // no shutdown: a crash
        let len = fs::metadata(&seg).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 5).unwrap();
        let m = manager(&dirs);
        assert_eq!(m.get(&tp).unwrap().read().log_end_offset(), 4);
    }

    #[test]
    fn same_partition_in_two_dirs_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        fs::create_dir_all(dirs[0].join("t-0")).unwrap();
        fs::create_dir_all(dirs[1].join("t-0")).unwrap();
        let r = LogManager::open(dirs, LogConfig::default(), Arc::new(ManualClock::new(T0)));
        assert!(matches!(r, Err(StorageError::InconsistentLog { .. })));
    }

    #[test]
    fn retention_and_flush_run_over_all_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let m = LogManager::open(
            vec![tmp.path().to_path_buf()],
            LogConfig::default(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        let config = LogConfig::default()
            .with_overrides([("retention.ms", "1000"), ("flush.ms", "100")])
            .unwrap();
        for p in 0..3 {
            let log = m
                .get_or_create(&TopicPartition::new("t", p), config.clone())
                .unwrap();
            let mut log = log.write();
            log.append_as_leader(&batch(1), 0).unwrap();
            log.roll().unwrap();
            log.append_as_leader(&batch(1), 0).unwrap();
        }
        assert_eq!(m.flush_due(T0 + 100).unwrap(), 3);
        clock.advance(1001);
        assert_eq!(m.enforce_retention().unwrap(), 6);
        for (_, log) in m.all() {
            let log = log.read();
            assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
        }
    }
}
