//! The leader-epoch cache: which leader epoch started at which offset (KIP-101), persisted in
//! `leader-epoch-checkpoint`:
//! ```text
//! 0
//! <number of entries>
//! <epoch> <start offset>
//! ...
//! ```

use crate::checkpoint::write_atomic;
use crate::error::{Result, StorageError};
use std::fs;
use std::io;
use std::path::Path;

/// File name of the leader-epoch checkpoint inside a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One entry: `epoch` started at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset written in that epoch.
    pub start_offset: i64,
}

/// Epoch → start offset, strictly increasing in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`; a missing file is an empty cache.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        let bad = |reason: &str| StorageError::MalformedFile {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("0") {
            return Err(bad("unsupported version"));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad("missing entry count"))?;
        let mut cache = Self::default();
        for _ in 0..count {
            let line = lines
                .next()
                .ok_or_else(|| bad("fewer entries than announced"))?;
            let mut parts = line.split_whitespace();
            let epoch = parts.next().and_then(|p| p.parse().ok());
            let offset = parts.next().and_then(|p| p.parse().ok());
            match (epoch, offset, parts.next()) {
                (Some(epoch), Some(start_offset), None) => {
                    cache.assign(epoch, start_offset);
                }
                _ => return Err(bad("malformed entry")),
            }
        }
        Ok(cache)
    }

    /// Writes the checkpoint into `dir` atomically.
    pub fn flush(&self, dir: &Path) -> Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomic(&dir.join(LEADER_EPOCH_CHECKPOINT), text.as_bytes())
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, as Kafka's `LeaderEpochFileCache.assign`:
    /// nothing changes if `epoch` is already the latest with an equal or lower start offset;
    /// otherwise entries with an epoch ≥ `epoch` or a start offset ≥ `start_offset` are removed
    /// first, keeping the cache monotonic. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && start_offset >= last.start_offset {
                return false;
            }
        }
        while let Some(last) = self.entries.last() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// OffsetForLeaderEpoch: the largest epoch ≤ `requested` and the offset where the next
    /// higher epoch starts, or `log_end_offset` if `requested` is the latest epoch. `None` when
    /// the epoch is undefined (-1), newer than every known epoch, or the cache is empty
    /// (Kafka answers UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET then).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        let latest = self.entries.last()?;
        if latest.epoch == requested {
            return Some((requested, log_end_offset));
        }
        // First entry with epoch > requested.
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let higher_entry = self.entries.get(higher)?;
        if higher == 0 {
            // Older than every epoch we know: Kafka answers (requested, first start offset).
            return Some((requested, higher_entry.start_offset));
        }
        Some((self.entries[higher - 1].epoch, higher_entry.start_offset))
    }

    /// The epoch of the leader that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let i = self.entries.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// Removes entries starting at or after `end_offset` (log truncation). Returns whether
    /// anything changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// Moves the cache's start to `start_offset` (log start moved): entries starting at or
    /// before it collapse into one entry of the newest such epoch starting at `start_offset`.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let n = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if n == 0 {
            return false;
        }
        let kept = EpochEntry {
            epoch: self.entries[n - 1].epoch,
            start_offset,
        };
        if n == 1 && self.entries[0] == kept {
            return false;
        }
        self.entries.drain(..n);
        self.entries.insert(0, kept);
        true
    }

    /// Removes every entry.
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            c.assign(e, o);
        }
        c
    }

    #[test]
    fn assign_keeps_monotonic_entries() {
        let mut c = cache(&[(0, 0), (1, 10), (3, 20)]);
        assert!(!c.assign(3, 25), "same epoch, later offset: no change");
        assert!(c.assign(3, 15), "same epoch, earlier offset replaces");
        assert_eq!(
            c.entries().last(),
            Some(&EpochEntry {
                epoch: 3,
                start_offset: 15
            })
        );
        // An older epoch at a later offset (follower copying a divergent leader) drops newer
        // epochs, as Kafka does.
        assert!(c.assign(2, 30));
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 0,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 1,
                    start_offset: 10
                },
                EpochEntry {
                    epoch: 2,
                    start_offset: 30
                }
            ]
        );
        assert!(!c.assign(-1, 40));
        assert_eq!(c.latest_epoch(), Some(2));
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 0), (2, 10), (5, 30)]);
        assert_eq!(c.end_offset_for(5, 42), Some((5, 42)));
        assert_eq!(c.end_offset_for(2, 42), Some((2, 30)));
        assert_eq!(
            c.end_offset_for(3, 42),
            Some((2, 30)),
            "largest epoch ≤ requested"
        );
        assert_eq!(c.end_offset_for(1, 42), Some((1, 10)));
        assert_eq!(
            c.end_offset_for(0, 42),
            Some((0, 0)),
            "older than all known"
        );
        assert_eq!(c.end_offset_for(6, 42), None, "newer than all known");
        assert_eq!(c.end_offset_for(-1, 42), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 5), None);
        assert_eq!(c.epoch_for_offset(9), Some(1));
        assert_eq!(c.epoch_for_offset(10), Some(2));
        assert_eq!(c.epoch_for_offset(100), Some(5));
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (2, 10), (5, 30)]);
        assert!(c.truncate_from_end(30));
        assert_eq!(c.latest_epoch(), Some(2));
        assert!(!c.truncate_from_end(31));
        let mut c = cache(&[(1, 0), (2, 10), (5, 30)]);
        assert!(c.truncate_from_start(15));
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 2,
                    start_offset: 15
                },
                EpochEntry {
                    epoch: 5,
                    start_offset: 30
                }
            ]
        );
        assert!(!c.truncate_from_start(15));
        assert!(!c.truncate_from_start(3));
    }

    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(&[(0, 0), (4, 100)]);
        c.flush(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n4 100\n");
        assert_eq!(LeaderEpochCache::load(dir.path()).unwrap(), c);
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n2\n0 0\n").unwrap();
        assert!(LeaderEpochCache::load(dir.path()).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            LeaderEpochCache::load(empty.path()).unwrap(),
            LeaderEpochCache::default()
        );
    }
}
