//! Fault injection for crash-consistency tests.
//!
//! [`FaultyIo`] implements [`LogIo`] and can tear a write after a byte budget (the first part
//! of the data reaches the file, the rest never does), crash at a given rename or file removal
//! (the log cleaner's swap protocol), refuse every later operation (the process "died"), and
//! fail fsyncs. A test appends through a log opened with it, drops the log
//! without closing it (a kill -9 leaves the page cache intact), and reopens the directory
//! with `clean_shutdown: false` to check recovery.

use crate::io::{LogIo, StdIo};
use parking_lot::Mutex;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Default)]
struct State {
    /// Bytes that may still be written before the crash; `None` = unlimited.
    budget: Option<u64>,
    /// Renames and removals that may still happen before the crash; `None` = unlimited.
    fs_op_budget: Option<u64>,
    fs_ops: u64,
    crashed: bool,
    fail_syncs: bool,
    written: u64,
    syncs: u64,
}

/// A [`LogIo`] that can tear writes, crash and fail syncs on command.
#[derive(Debug, Default)]
pub struct FaultyIo {
    state: Mutex<State>,
}

impl FaultyIo {
    /// A fault injector that behaves like [`StdIo`] until told otherwise.
    pub fn new() -> Arc<Self> {
        Arc::new(FaultyIo::default())
    }

    /// After `bytes` more bytes (over all files), the write that crosses the budget is torn:
    /// only its first part is written, it fails, and every later write or sync fails too.
    pub fn crash_after_bytes(&self, bytes: u64) {
        self.state.lock().budget = Some(bytes);
    }

    /// After `ops` more renames or file removals, the next one does not happen, fails, and
    /// every later write, sync, rename or removal fails too.
    pub fn crash_after_fs_ops(&self, ops: u64) {
        self.state.lock().fs_op_budget = Some(ops);
    }

    /// Renames and removals done so far through this injector.
    pub fn fs_ops(&self) -> u64 {
        self.state.lock().fs_ops
    }

    /// Makes every later fsync fail (or succeed again).
    pub fn fail_syncs(&self, fail: bool) {
        self.state.lock().fail_syncs = fail;
    }

    /// True once the injected crash happened.
    pub fn crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Bytes written so far through this injector.
    pub fn bytes_written(&self) -> u64 {
        self.state.lock().written
    }

    /// Successful fsyncs so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }
}

fn crash_error() -> io::Error {
    io::Error::other("injected crash")
}

impl LogIo for FaultyIo {
    fn write_at(&self, file: &File, path: &Path, data: &[u8], position: u64) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.crashed {
            return Err(crash_error());
        }
        if let Some(budget) = s.budget {
            if data.len() as u64 > budget {
                let part = &data[..budget as usize];
                StdIo.write_at(file, path, part, position)?;
                s.written += budget;
                s.budget = Some(0);
                s.crashed = true;
                return Err(crash_error());
            }
            s.budget = Some(budget - data.len() as u64);
        }
        StdIo.write_at(file, path, data, position)?;
        s.written += data.len() as u64;
        Ok(())
    }

    fn sync(&self, file: &File, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.crashed {
            return Err(crash_error());
        }
        if s.fail_syncs {
            return Err(io::Error::other("injected fsync failure"));
        }
        s.syncs += 1;
        StdIo.sync(file, path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs_op(|| StdIo.rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fs_op(|| StdIo.remove_file(path))
    }
}

impl FaultyIo {
    fn fs_op(&self, op: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.crashed {
            return Err(crash_error());
        }
        match s.fs_op_budget {
            Some(0) => {
                s.crashed = true;
                return Err(crash_error());
            }
            Some(n) => s.fs_op_budget = Some(n - 1),
            None => {}
        }
        s.fs_ops += 1;
        op()
    }
}
