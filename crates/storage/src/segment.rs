//! One segment: a `.log` file of record batches plus its in-memory indexes.

use crate::error::{IoContext, Result, StorageError};
use crate::index::{Index, OffsetEntry, TimeEntry};
use crate::io::LogIo;
use fjord_protocol::batch::{validate_batch, BatchError, BatchHeader, HEADER_SIZE};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::warn;

/// File name of a segment file: 20-digit zero-padded base offset plus extension.
pub fn segment_file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Parses the 20-digit offset part of a segment, index or snapshot file name.
pub fn parse_offset_name(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

const HEADER_CHUNK: usize = 4096;

/// Reads batch headers at arbitrary positions through a small buffer (reads use it to walk
/// from an index entry to the wanted batch without touching record data).
pub(crate) struct HeaderReader<'a> {
    file: &'a File,
    path: &'a Path,
    limit: u64,
    buf: [u8; HEADER_CHUNK],
    start: u64,
    len: usize,
}

impl<'a> HeaderReader<'a> {
    pub(crate) fn new(seg: &'a Segment) -> Self {
        HeaderReader {
            file: &seg.file,
            path: &seg.path,
            limit: seg.size,
            buf: [0; HEADER_CHUNK],
            start: 0,
            len: 0,
        }
    }

    /// The header of the batch at `pos`, checked to lie wholly below the segment size.
    pub(crate) fn header_at(&mut self, pos: u64) -> Result<BatchHeader> {
        let truncated = |available: u64, needed: usize| {
            StorageError::Corrupt(BatchError::Truncated {
                available: available as usize,
                needed,
            })
        };
        if pos + HEADER_SIZE as u64 > self.limit {
            return Err(truncated(self.limit.saturating_sub(pos), HEADER_SIZE));
        }
        if pos < self.start || pos + HEADER_SIZE as u64 > self.start + self.len as u64 {
            let n = (self.limit - pos).min(HEADER_CHUNK as u64) as usize;
            self.file
                .read_exact_at(&mut self.buf[..n], pos)
                .at(self.path)?;
            self.start = pos;
            self.len = n;
        }
        let off = (pos - self.start) as usize;
        let h = BatchHeader::parse(&self.buf[off..self.len])?;
        if pos + h.size() as u64 > self.limit {
            return Err(truncated(self.limit - pos, h.size()));
        }
        Ok(h)
    }
}

/// Sequential scanner over a segment file, optionally validating each batch (CRC).
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    end: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
    chunk: usize,
}

/// One step of a scan: a batch and its position, or the position and reason it stopped.
pub(crate) type ScanStep = std::result::Result<(BatchHeader, u64), (u64, BatchError)>;

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, from: u64, end: u64, chunk: usize) -> Self {
        Scanner {
            file,
            path,
            end,
            pos: from,
            buf: Vec::new(),
            buf_start: 0,
            buf_len: 0,
            chunk,
        }
    }

    fn fill(&mut self, pos: u64, need: usize) -> Result<()> {
        if pos >= self.buf_start && pos + need as u64 <= self.buf_start + self.buf_len as u64 {
            return Ok(());
        }
        let n = (need.max(self.chunk) as u64).min(self.end - pos) as usize;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        self.file
            .read_exact_at(&mut self.buf[..n], pos)
            .at(self.path)?;
        self.buf_start = pos;
        self.buf_len = n;
        Ok(())
    }

    /// The next batch, `None` at the end; after an invalid batch the scan is over.
    pub(crate) fn next_batch(&mut self, validate: bool) -> Result<Option<ScanStep>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let pos = self.pos;
        let remaining = self.end - pos;
        self.pos = self.end; // until proven valid
        if remaining < HEADER_SIZE as u64 {
            let e = BatchError::Truncated {
                available: remaining as usize,
                needed: HEADER_SIZE,
            };
            return Ok(Some(Err((pos, e))));
        }
        self.fill(pos, HEADER_SIZE)?;
        let off = (pos - self.buf_start) as usize;
        let h = match BatchHeader::parse(&self.buf[off..self.buf_len]) {
            Ok(h) => h,
            Err(e) => return Ok(Some(Err((pos, e)))),
        };
        let size = h.size();
        if size as u64 > remaining {
            let e = BatchError::Truncated {
                available: remaining as usize,
                needed: size,
            };
            return Ok(Some(Err((pos, e))));
        }
        if validate {
            self.fill(pos, size)?;
            let off = (pos - self.buf_start) as usize;
            if let Err(e) = validate_batch(&self.buf[off..off + size]) {
                return Ok(Some(Err((pos, e))));
            }
        }
        self.pos = pos + size as u64;
        Ok(Some(Ok((h, pos))))
    }

    /// The bytes of the batch at `pos` of `size` bytes that [`Scanner::next_batch`] just
    /// returned, when it was called with `validate` (the batch is then in the buffer).
    pub(crate) fn batch_bytes(&mut self, pos: u64, size: usize) -> Result<&[u8]> {
        self.fill(pos, size)?;
        let off = (pos - self.buf_start) as usize;
        Ok(&self.buf[off..off + size])
    }
}

/// A segment: its file, size, end offset and indexes.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
    /// Bytes of valid batches; anything in the file beyond is never read.
    pub(crate) size: u64,
    /// Offset after the last batch (`base_offset` when empty).
    pub(crate) next_offset: i64,
    pub(crate) offset_index: Index<OffsetEntry>,
    pub(crate) time_index: Index<TimeEntry>,
    /// Largest batch max timestamp, -1 if none.
    pub(crate) max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`, -1 if none.
    pub(crate) offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch (Kafka's `rollingBasedTimestamp`).
    pub(crate) rolling_based_timestamp: Option<i64>,
    /// When this segment object was created (segment.ms fallback without timestamps).
    pub(crate) created_ms: i64,
    pub(crate) bytes_since_last_index_entry: u64,
    pub(crate) log_unsynced: bool,
    pub(crate) roll_jitter_ms: i64,
}

impl Segment {
    fn new(base_offset: i64, path: PathBuf, file: File, size: u64, now: i64, jitter: i64) -> Self {
        Segment {
            base_offset,
            path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            offset_index: Index::new_empty(),
            time_index: Index::new_empty(),
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            rolling_based_timestamp: None,
            created_ms: now,
            bytes_since_last_index_entry: 0,
            log_unsynced: false,
            roll_jitter_ms: jitter,
        }
    }

    /// Creates an empty segment (replacing stale files of the same base offset).
    pub(crate) fn create(dir: &Path, base_offset: i64, now: i64, jitter: i64) -> Result<Self> {
        let path = dir.join(segment_file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .at(&path)?;
        remove_if_exists(&path.with_extension("index"))?;
        remove_if_exists(&path.with_extension("timeindex"))?;
        Ok(Segment::new(base_offset, path, file, 0, now, jitter))
    }

    /// Creates an empty segment whose file is `path` (any name, e.g. the cleaner's
    /// `<base>.log.cleaned`); its index files are the caller's business.
    pub(crate) fn create_at(path: PathBuf, base_offset: i64, now: i64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .at(&path)?;
        Ok(Segment::new(base_offset, path, file, 0, now, 0))
    }

    /// Opens an existing segment file; indexes still have to be loaded or rebuilt.
    pub(crate) fn open(dir: &Path, base_offset: i64, now: i64, jitter: i64) -> Result<Self> {
        let path = dir.join(segment_file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let size = file.metadata().at(&path)?.len();
        Ok(Segment::new(base_offset, path, file, size, now, jitter))
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.path.with_extension("index")
    }

    pub(crate) fn time_index_path(&self) -> PathBuf {
        self.path.with_extension("timeindex")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn rel(&self, offset: i64) -> u32 {
        (offset - self.base_offset) as u32
    }

    /// Updates end offset, max timestamp and indexes for a batch written at `pos`.
    pub(crate) fn note_batch(&mut self, h: &BatchHeader, pos: u64, index_interval: u64) {
        let last = h.last_offset();
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = last;
        }
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(h.max_timestamp);
        }
        if self.bytes_since_last_index_entry > index_interval {
            self.offset_index.push(OffsetEntry {
                rel: self.rel(last),
                pos: pos as u32,
            });
            self.maybe_append_time_entry();
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += h.size() as u64;
        self.next_offset = h.next_offset();
    }

    fn maybe_append_time_entry(&mut self) {
        let last_ts = self.time_index.last().map_or(i64::MIN, |e| e.ts);
        if self.max_timestamp >= 0 && self.max_timestamp > last_ts {
            let rel = self.rel(self.offset_of_max_timestamp);
            self.time_index.push(TimeEntry {
                ts: self.max_timestamp,
                rel,
            });
        }
    }

    /// Makes the time index end with the segment's max timestamp (on roll and close), so that
    /// the max survives a restart without rescanning.
    pub(crate) fn seal_time_index(&mut self) {
        self.maybe_append_time_entry();
    }

    /// Appends one batch (offsets already assigned).
    pub(crate) fn append(
        &mut self,
        io: &dyn LogIo,
        batch: &[u8],
        h: &BatchHeader,
        index_interval: u64,
    ) -> Result<()> {
        let pos = self.size;
        io.write_at(&self.file, &self.path, batch, pos)
            .at(&self.path)?;
        self.size += batch.len() as u64;
        self.log_unsynced = true;
        self.note_batch(h, pos, index_interval);
        Ok(())
    }

    /// Appends one batch given as its (patched) header and its records. Small batches are
    /// joined and written at once; larger ones with a write each, which costs less than
    /// copying them. A crash between the two leaves a torn batch at the end, which recovery
    /// cuts off as it does a torn single write.
    pub(crate) fn append_parts(
        &mut self,
        io: &dyn LogIo,
        head: &[u8],
        records: &[u8],
        h: &BatchHeader,
        index_interval: u64,
    ) -> Result<()> {
        /// Below this, a copy is cheaper than a second system call.
        const JOIN_BELOW: usize = 64 * 1024;
        if records.len() < JOIN_BELOW {
            return self.append(io, &[head, records].concat(), h, index_interval);
        }
        let pos = self.size;
        // As with one write, the size moves only once both succeeded: after a failure the
        // next append overwrites whatever part of this one reached the file.
        self.log_unsynced = true;
        io.write_at(&self.file, &self.path, head, pos)
            .at(&self.path)?;
        io.write_at(&self.file, &self.path, records, pos + head.len() as u64)
            .at(&self.path)?;
        self.size = pos + (head.len() + records.len()) as u64;
        self.note_batch(h, pos, index_interval);
        Ok(())
    }

    /// Position and header of the first batch whose last offset is ≥ `offset`.
    pub(crate) fn find_batch(
        &self,
        offset: i64,
        reader: &mut HeaderReader<'_>,
    ) -> Result<Option<(u64, BatchHeader)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let mut pos = if offset <= self.base_offset {
            0
        } else {
            self.offset_index
                .floor_offset(self.rel(offset))
                .map_or(0, |e| e.pos as u64)
        };
        while pos < self.size {
            let h = reader.header_at(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size() as u64;
        }
        Ok(None)
    }

    /// The largest batch boundary in `(from, limit]` below `end`, starting from the batch at
    /// `from`; returns the boundary and the base offset of the batch that starts there.
    pub(crate) fn boundary_before(
        &self,
        from: u64,
        limit: u64,
        end: u64,
        reader: &mut HeaderReader<'_>,
    ) -> Result<(u64, i64)> {
        let mut pos = match self.offset_index.floor_position(limit) {
            Some(e) if e.pos as u64 > from => e.pos as u64,
            _ => from,
        };
        loop {
            if pos >= end {
                return Ok((end, self.next_offset));
            }
            let h = reader.header_at(pos)?;
            let next = pos + h.size() as u64;
            if next > limit {
                return Ok((pos, h.base_offset));
            }
            pos = next;
        }
    }

    /// Reads the whole batch at `pos` of `size` bytes.
    pub(crate) fn read_batch(&self, pos: u64, size: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; size];
        self.file.read_exact_at(&mut buf, pos).at(&self.path)?;
        Ok(buf)
    }

    /// Rebuilds end offset, max timestamp and indexes from the file, validating every batch,
    /// and truncates the file at the first invalid or torn batch. Returns the bytes cut off.
    pub(crate) fn recover(&mut self, io: &dyn LogIo, index_interval: u64) -> Result<u64> {
        self.offset_index.clear();
        self.time_index.clear();
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.rolling_based_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        self.next_offset = self.base_offset;
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let mut scanner = Scanner::new(&file, &path, 0, self.size, 1 << 20);
        let mut valid_end = 0u64;
        let mut problem: Option<String> = None;
        while let Some(step) = scanner.next_batch(true)? {
            match step {
                Ok((h, pos)) => {
                    if h.base_offset < self.next_offset
                        || h.last_offset() - self.base_offset > i32::MAX as i64
                    {
                        problem = Some(format!(
                            "batch at position {pos} has offsets {}..={} out of order (segment \
                             base {}, expected at least {})",
                            h.base_offset,
                            h.last_offset(),
                            self.base_offset,
                            self.next_offset
                        ));
                        break;
                    }
                    self.note_batch(&h, pos, index_interval);
                    valid_end = pos + h.size() as u64;
                }
                Err((pos, e)) => {
                    problem = Some(format!("invalid batch at position {pos}: {e}"));
                    break;
                }
            }
        }
        let cut = self.size - valid_end;
        if cut > 0 {
            warn!(
                segment = %self.path.display(),
                valid_bytes = valid_end,
                truncated_bytes = cut,
                next_offset = self.next_offset,
                "truncating segment during recovery: {}",
                problem.as_deref().unwrap_or("trailing bytes")
            );
            self.file.set_len(valid_end).at(&self.path)?;
            self.size = valid_end;
            self.log_unsynced = true;
        }
        // Recovered bytes may exist only in the page cache (kill -9): make the next flush sync.
        self.log_unsynced = self.size > 0;
        self.write_indexes(io, false)?;
        Ok(cut)
    }

    /// Loads and sanity-checks the index files and finds the end offset and max timestamp
    /// from the tail of the file. `Ok(false)` means the indexes or the tail are damaged and the
    /// segment must be recovered.
    pub(crate) fn load(&mut self) -> Result<bool> {
        let oi = Index::<OffsetEntry>::load(&self.index_path())?;
        let ti = Index::<TimeEntry>::load(&self.time_index_path())?;
        if self.size == 0 {
            self.offset_index = Index::new_empty();
            self.time_index = Index::new_empty();
            return Ok(true);
        }
        let (Some(oi), Some(ti)) = (oi, ti) else {
            return Ok(false);
        };
        if !oi.is_sane(self.size) || !ti.is_sane() {
            return Ok(false);
        }
        self.offset_index = oi;
        self.time_index = ti;
        self.load_tail()
    }

    /// Recomputes `next_offset` and the max timestamp from the last index entries to the end of
    /// the file (headers only). `Ok(false)` when the tail does not match the indexes.
    pub(crate) fn load_tail(&mut self) -> Result<bool> {
        let last_index = self.offset_index.last().copied();
        let last_time = self.time_index.last().copied();
        self.max_timestamp = last_time.map_or(-1, |e| e.ts);
        self.offset_of_max_timestamp = last_time.map_or(-1, |e| self.base_offset + e.rel as i64);
        self.rolling_based_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        self.next_offset = self.base_offset;
        if self.size == 0 {
            return Ok(last_index.is_none() && last_time.is_none());
        }
        let mut start = last_index.map_or(0, |e| e.pos as u64);
        if let Some(t) = last_time {
            let p = self
                .offset_index
                .floor_offset(t.rel)
                .map_or(0, |e| e.pos as u64);
            start = start.min(p);
        }
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        // Every index entry in the scanned range must point at a batch start and name that
        // batch's last offset; every time entry there must name some batch's last offset.
        let mut entries = self
            .offset_index
            .entries
            .iter()
            .skip_while(|e| (e.pos as u64) < start)
            .peekable();
        let mut times = self
            .time_index
            .entries
            .iter()
            .skip_while(|e| {
                self.offset_index
                    .floor_offset(e.rel)
                    .map_or(0, |o| o.pos as u64)
                    < start
            })
            .peekable();
        let mut scanner = Scanner::new(&file, &path, start, self.size, 64 << 10);
        while let Some(step) = scanner.next_batch(false)? {
            let Ok((h, pos)) = step else {
                return Ok(false);
            };
            if h.base_offset < self.next_offset
                || h.last_offset() - self.base_offset > i32::MAX as i64
            {
                return Ok(false);
            }
            let rel = self.rel(h.last_offset());
            while let Some(e) = entries.peek() {
                if (e.pos as u64) > pos {
                    break;
                }
                if e.pos as u64 != pos || e.rel != rel {
                    return Ok(false);
                }
                entries.next();
            }
            while let Some(t) = times.peek() {
                if t.rel > rel {
                    break;
                }
                if t.rel != rel {
                    return Ok(false);
                }
                times.next();
            }
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.last_offset();
            }
            self.next_offset = h.next_offset();
        }
        if entries.next().is_some() || times.next().is_some() {
            return Ok(false);
        }
        if let Some(t) = last_time {
            if self.base_offset + t.rel as i64 >= self.next_offset {
                return Ok(false);
            }
        }
        let mut reader = HeaderReader::new(self);
        let first_ts = reader.header_at(0)?.max_timestamp;
        self.rolling_based_timestamp = Some(first_ts);
        Ok(true)
    }

    /// Removes every batch whose last offset is ≥ `offset` (the batch containing `offset` goes
    /// entirely). Returns the bytes removed.
    pub(crate) fn truncate_to(&mut self, io: &dyn LogIo, offset: i64, now: i64) -> Result<u64> {
        let found = {
            let mut reader = HeaderReader::new(self);
            self.find_batch(offset, &mut reader)?
        };
        let Some((pos, h)) = found else {
            return Ok(0);
        };
        let removed = self.size - pos;
        self.file.set_len(pos).at(&self.path)?;
        self.size = pos;
        self.log_unsynced = true;
        let n = self
            .offset_index
            .entries
            .partition_point(|e| (e.pos as u64) < pos);
        self.offset_index.truncate(n);
        let base = self.base_offset;
        let m = self
            .time_index
            .entries
            .partition_point(|e| base + (e.rel as i64) < h.base_offset);
        self.time_index.truncate(m);
        if !self.load_tail()? {
            warn!(segment = %self.path.display(), "indexes inconsistent after truncation; rebuilding");
            self.recover(io, 0)?;
        }
        if self.size == 0 {
            self.created_ms = now;
            self.rolling_based_timestamp = None;
        }
        Ok(removed)
    }

    /// Writes pending index entries (and fsyncs them when `sync`).
    pub(crate) fn write_indexes(&mut self, io: &dyn LogIo, sync: bool) -> Result<()> {
        let ip = self.index_path();
        let tp = self.time_index_path();
        self.offset_index.write_out(io, &ip, sync)?;
        self.time_index.write_out(io, &tp, sync)
    }

    /// fsyncs the segment file; for inactive segments also writes and fsyncs the indexes.
    pub(crate) fn flush(&mut self, io: &dyn LogIo, active: bool) -> Result<()> {
        if !active {
            self.write_indexes(io, true)?;
        }
        if self.log_unsynced {
            io.sync(&self.file, &self.path).at(&self.path)?;
            self.log_unsynced = false;
        }
        Ok(())
    }

    /// Cuts bytes beyond `size` left by a failed write.
    pub(crate) fn trim_file(&mut self) -> Result<()> {
        let len = self.file.metadata().at(&self.path)?.len();
        if len != self.size {
            self.file.set_len(self.size).at(&self.path)?;
            self.log_unsynced = true;
        }
        Ok(())
    }

    /// The largest timestamp for retention: the max batch timestamp, or the file's mtime when
    /// no batch carries one.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Deletes the segment's files (open handles stay readable).
    pub(crate) fn delete_files(&self) -> Result<()> {
        remove_if_exists(&self.path)?;
        remove_if_exists(&self.index_path())?;
        remove_if_exists(&self.time_index_path())
    }

    /// Points the segment at a renamed directory.
    pub(crate) fn set_dir(&mut self, dir: &Path) {
        if let Some(name) = self.path.file_name() {
            self.path = dir.join(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdIo;
    use fjord_protocol::batch::set_base_offset;
    use fjord_protocol::compression::Compression;
    use fjord_protocol::records::{BatchBuilder, Record};

    fn batch(base: i64, n: usize, ts: i64, value_len: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None, ts).base_offset(base);
        for _ in 0..n {
            b.push(Record::new(None, Some(vec![7u8; value_len])));
        }
        b.build().unwrap().to_vec()
    }

    fn filled(dir: &Path, batches: usize) -> Segment {
        let mut seg = Segment::create(dir, 100, 0, 0).unwrap();
        let mut offset = 100;
        for i in 0..batches {
            let mut b = batch(0, 3, 1000 + i as i64, 500);
            set_base_offset(&mut b, offset);
            let h = BatchHeader::parse(&b).unwrap();
            seg.append(&StdIo, &b, &h, 1024).unwrap();
            offset = h.next_offset();
        }
        seg
    }

    #[test]
    fn names() {
        assert_eq!(segment_file_name(42, "log"), "00000000000000000042.log");
        assert_eq!(parse_offset_name("00000000000000000042"), Some(42));
        assert_eq!(parse_offset_name("42"), None);
        assert_eq!(parse_offset_name("0000000000000000004x"), None);
    }

    #[test]
    fn index_guided_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let seg = filled(dir.path(), 20);
        assert!(seg.offset_index.len() > 3, "sparse index has entries");
        assert_eq!(seg.next_offset, 160);
        let mut r = HeaderReader::new(&seg);
        for target in 100..160 {
            let (pos, h) = seg.find_batch(target, &mut r).unwrap().unwrap();
            assert!(
                h.base_offset <= target && target <= h.last_offset(),
                "{target}"
            );
            assert_eq!(pos, ((h.base_offset - 100) / 3) as u64 * h.size() as u64);
        }
        assert!(seg.find_batch(160, &mut r).unwrap().is_none());
        let size = seg.size / 20;
        let (b, next) = seg
            .boundary_before(0, size * 5 + 10, seg.size, &mut r)
            .unwrap();
        assert_eq!((b, next), (size * 5, 115));
        let (b, next) = seg
            .boundary_before(size * 2, seg.size + 1000, seg.size, &mut r)
            .unwrap();
        assert_eq!((b, next), (seg.size, 160));
    }

    #[test]
    fn recover_rebuilds_the_same_indexes_and_cuts_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = filled(dir.path(), 20);
        seg.seal_time_index();
        let (oi, ti, size) = (
            seg.offset_index.entries.clone(),
            seg.time_index.entries.clone(),
            seg.size,
        );
        seg.write_indexes(&StdIo, true).unwrap();
        // Clean load reproduces everything.
        let mut again = Segment::open(dir.path(), 100, 0, 0).unwrap();
        assert!(again.load().unwrap());
        assert_eq!(again.offset_index.entries, oi);
        assert_eq!((again.next_offset, again.max_timestamp), (160, 1019));
        // Torn tail.
        seg.file.set_len(size - 10).unwrap();
        let mut torn = Segment::open(dir.path(), 100, 0, 0).unwrap();
        assert!(!torn.load().unwrap());
        let cut = torn.recover(&StdIo, 1024).unwrap();
        assert_eq!(cut, size / 20 - 10);
        assert_eq!(torn.next_offset, 157);
        assert_eq!(torn.max_timestamp, 1018);
        assert!(torn.offset_index.entries.iter().all(|e| oi.contains(e)));
        assert!(torn.time_index.entries.len() <= ti.len());
    }

    #[test]
    fn truncate_keeps_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = filled(dir.path(), 10);
        let removed = seg.truncate_to(&StdIo, 115, 5).unwrap();
        assert_eq!(seg.next_offset, 115);
        assert_eq!(removed, seg.size);
        assert_eq!(seg.max_timestamp, 1004);
        seg.truncate_to(&StdIo, 113, 5).unwrap();
        assert_eq!(seg.next_offset, 112, "batch 112..=114 removed entirely");
        seg.truncate_to(&StdIo, 100, 5).unwrap();
        assert!(seg.is_empty());
        assert_eq!(seg.next_offset, 100);
        assert_eq!(seg.rolling_based_timestamp, None);
        assert_eq!(seg.max_timestamp, -1);
    }
}
