//! The small I/O seam every segment and index write goes through.
//!
//! Only the operations that decide durability are behind the trait: positioned writes of
//! segment and index bytes, fsyncs, and the renames and removals of the cleaner's swap
//! protocol (so that tests can crash between any two of them). Reads use
//! `std::os::unix::fs::FileExt` directly. The
//! log holds one `Arc<dyn LogIo>`, so the cost is one virtual call per append, never per byte.
//! Tests swap in [`crate::testing::FaultyIo`] to tear writes and simulate crashes.

use bytes::Bytes;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Writes and syncs of log files.
pub trait LogIo: Send + Sync + fmt::Debug {
    /// Writes all of `data` at byte `position` of `file` (whose path is `path`).
    fn write_at(&self, file: &File, path: &Path, data: &[u8], position: u64) -> io::Result<()>;
    /// Makes everything written to `file` durable (fdatasync).
    fn sync(&self, file: &File, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to` (replacing `to`), as the log cleaner's swap protocol does.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Removes the file at `path` (the log cleaner's swap protocol and its leftovers).
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// The real thing: `pwrite` and `fdatasync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdIo;

impl LogIo for StdIo {
    fn write_at(&self, file: &File, _path: &Path, data: &[u8], position: u64) -> io::Result<()> {
        file.write_all_at(data, position)
    }

    fn sync(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }
}

/// A byte range of a segment file, returned by reads so that the caller can copy (or later
/// `sendfile`) the data outside the log's lock.
///
/// The slice holds the segment's file handle: if the segment is deleted meanwhile (retention,
/// DeleteRecords), the unlinked file stays readable until the last slice is dropped. A
/// truncation of the same segment (follower divergence) can shorten the file under the slice;
/// the read then fails with `UnexpectedEof`, as in Kafka.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment file.
    pub file: Arc<File>,
    /// Byte position of the first batch.
    pub position: u64,
    /// Length in bytes (whole batches).
    pub len: usize,
}

impl FileSlice {
    /// Reads the bytes with one positioned read (`pread`).
    pub fn read_bytes(&self) -> io::Result<Bytes> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(Bytes::from(buf))
    }

    /// Reads the bytes into `buf`, which must be exactly [`FileSlice::len`] long.
    pub fn read_into(&self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() != self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer length mismatch",
            ));
        }
        self.file.read_exact_at(buf, self.position)
    }
}
