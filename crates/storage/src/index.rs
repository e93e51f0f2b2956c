//! Sparse offset and time indexes, kept in memory and appended to their files in batches.
//!
//! `.index`: 8-byte entries, relative offset (u32 BE) + byte position (u32 BE): the batch at
//! that position has that (relative) last offset.
//! `.timeindex`: 12-byte entries, timestamp (i64 BE) + relative offset (u32 BE): the largest
//! timestamp in the segment up to the batch ending at that offset.

use crate::error::{IoContext, Result};
use crate::io::LogIo;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

/// One fixed-size index entry.
pub(crate) trait IndexEntry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

/// Offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Last offset of the batch, relative to the segment's base offset.
    pub(crate) rel: u32,
    /// Byte position of the batch in the segment file.
    pub(crate) pos: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel.to_be_bytes());
        out.extend_from_slice(&self.pos.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            pos: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Largest timestamp so far in the segment.
    pub(crate) ts: i64,
    /// Relative last offset of the batch that carried it.
    pub(crate) rel: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.rel.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[0..8]);
        TimeEntry {
            ts: i64::from_be_bytes(ts),
            rel: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// An index: all entries in memory; `written` of them are already in the file.
#[derive(Debug, Clone)]
pub(crate) struct Index<E> {
    pub(crate) entries: Vec<E>,
    /// Entries already written to the file.
    written: usize,
    /// The file may hold more than `written` entries (after truncation or rebuild).
    file_too_long: bool,
    /// Entries written since the last fsync.
    unsynced: bool,
}

impl<E: IndexEntry> Index<E> {
    /// A new, empty index whose file (if any) must be rewritten.
    pub(crate) fn new_empty() -> Self {
        Index {
            entries: Vec::new(),
            written: 0,
            file_too_long: true,
            unsynced: false,
        }
    }

    /// Loads an index file. `Ok(None)` when the file is missing or its size is not a multiple
    /// of the entry size.
    pub(crate) fn load(path: &Path) -> Result<Option<Self>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::StorageError::io(path, e)),
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let written = entries.len();
        Ok(Some(Index {
            entries,
            written,
            file_too_long: false,
            unsynced: false,
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub(crate) fn push(&mut self, e: E) {
        self.entries.push(e);
    }

    /// Keeps the first `n` entries.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.entries.len() {
            self.entries.truncate(n);
            if n < self.written {
                self.written = n;
                self.file_too_long = true;
            }
        }
    }

    /// Drops every entry; the file will be rewritten from scratch.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.written = 0;
        self.file_too_long = true;
    }

    /// True when memory and file differ or the file is not synced.
    #[cfg(test)]
    pub(crate) fn needs_write(&self) -> bool {
        self.written != self.entries.len() || self.file_too_long || self.unsynced
    }

    /// Writes pending entries to `path` (and fsyncs when `sync`).
    pub(crate) fn write_out(&mut self, io: &dyn LogIo, path: &Path, sync: bool) -> Result<()> {
        let pending = self.written != self.entries.len() || self.file_too_long;
        if !(pending || (sync && self.unsynced)) {
            return Ok(());
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        if self.file_too_long {
            file.set_len((self.written * E::SIZE) as u64).at(path)?;
            self.file_too_long = false;
            self.unsynced = true;
        }
        if self.written < self.entries.len() {
            let mut buf = Vec::with_capacity((self.entries.len() - self.written) * E::SIZE);
            for e in &self.entries[self.written..] {
                e.encode(&mut buf);
            }
            io.write_at(&file, path, &buf, (self.written * E::SIZE) as u64)
                .at(path)?;
            self.written = self.entries.len();
            self.unsynced = true;
        }
        if sync && self.unsynced {
            io.sync(&file, path).at(path)?;
            self.unsynced = false;
        }
        Ok(())
    }
}

impl Index<OffsetEntry> {
    /// The entry with the largest relative offset ≤ `rel`.
    pub(crate) fn floor_offset(&self, rel: u32) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| e.rel <= rel);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// The entry with the largest position ≤ `pos`.
    pub(crate) fn floor_position(&self, pos: u64) -> Option<OffsetEntry> {
        let i = self.entries.partition_point(|e| (e.pos as u64) <= pos);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// Entries strictly increasing in offset and position, positions inside `size` bytes.
    pub(crate) fn is_sane(&self, size: u64) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].rel < w[1].rel && w[0].pos < w[1].pos)
            && self.entries.last().is_none_or(|e| (e.pos as u64) < size)
    }
}

impl Index<TimeEntry> {
    /// The entry with the largest timestamp strictly below `ts`.
    pub(crate) fn floor_below(&self, ts: i64) -> Option<TimeEntry> {
        let i = self.entries.partition_point(|e| e.ts < ts);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// Entries strictly increasing in timestamp and non-decreasing in offset.
    pub(crate) fn is_sane(&self) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].ts < w[1].ts && w[0].rel <= w[1].rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdIo;

    #[test]
    fn offset_lookups() {
        let mut idx = Index::<OffsetEntry>::new_empty();
        for (rel, pos) in [(9, 4100), (20, 8300), (31, 12500)] {
            idx.push(OffsetEntry { rel, pos });
        }
        assert_eq!(idx.floor_offset(5), None);
        assert_eq!(idx.floor_offset(9).unwrap().pos, 4100);
        assert_eq!(idx.floor_offset(19).unwrap().pos, 4100);
        assert_eq!(idx.floor_offset(20).unwrap().pos, 8300);
        assert_eq!(idx.floor_offset(1000).unwrap().pos, 12500);
        assert_eq!(idx.floor_position(8299).unwrap().rel, 9);
        assert_eq!(idx.floor_position(8300).unwrap().rel, 20);
        assert_eq!(idx.floor_position(100), None);
        assert!(idx.is_sane(12501));
        assert!(!idx.is_sane(12500));
        idx.push(OffsetEntry {
            rel: 30,
            pos: 13000,
        });
        assert!(!idx.is_sane(20000));
    }

    #[test]
    fn time_lookups() {
        let mut idx = Index::<TimeEntry>::new_empty();
        for (ts, rel) in [(100, 3), (200, 7), (300, 7)] {
            idx.push(TimeEntry { ts, rel });
        }
        assert_eq!(idx.floor_below(100), None);
        assert_eq!(idx.floor_below(101).unwrap().rel, 3);
        assert_eq!(idx.floor_below(300).unwrap().ts, 200);
        assert!(idx.is_sane());
        idx.push(TimeEntry { ts: 300, rel: 9 });
        assert!(!idx.is_sane());
    }

    #[test]
    fn writes_incrementally_and_truncates_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut idx = Index::<OffsetEntry>::new_empty();
        for i in 0..10 {
            idx.push(OffsetEntry {
                rel: i,
                pos: i * 100,
            });
        }
        idx.write_out(&StdIo, &path, false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 80);
        idx.push(OffsetEntry { rel: 10, pos: 1000 });
        idx.write_out(&StdIo, &path, true).unwrap();
        assert!(!idx.needs_write());
        let loaded = Index::<OffsetEntry>::load(&path).unwrap().unwrap();
        assert_eq!(loaded.entries, idx.entries);
        idx.truncate(4);
        idx.write_out(&StdIo, &path, true).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 32);
        fs::write(&path, [0u8; 7]).unwrap();
        assert!(Index::<OffsetEntry>::load(&path).unwrap().is_none());
        assert!(Index::<OffsetEntry>::load(&dir.path().join("none"))
            .unwrap()
            .is_none());
    }
}
