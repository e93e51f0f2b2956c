//! The durable metadata log of a single-voter quorum.
//!
//! One line per committed batch: `<crc32c as 8 hex digits> <JSON array of records>\n`.
//! A batch is fsynced before `append` returns, so a controller result is either wholly
//! committed or absent. On open, a torn or corrupt tail (crash mid-write) is cut off.

use crate::records::MetadataRecord;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

const FILE_NAME: &str = "metadata.log";

/// Errors of the metadata log.
#[derive(Debug, Error)]
pub enum MetadataLogError {
    /// File I/O failed.
    #[error("metadata log I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record could not be serialised.
    #[error("cannot encode metadata records: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Append-only, fsynced log of metadata record batches.
#[derive(Debug)]
pub struct MetadataLog {
    path: PathBuf,
    file: File,
    batches: u64,
}

impl MetadataLog {
    /// Opens (or creates) the log in `dir` and returns it with every committed record in order.
    pub fn open(dir: &Path) -> Result<(MetadataLog, Vec<MetadataRecord>), MetadataLogError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetadataLogError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(FILE_NAME);
        let mut records = Vec::new();
        let mut valid_len: u64 = 0;
        let mut batches = 0;
        if path.exists() {
            let reader = BufReader::new(File::open(&path).map_err(io(&path))?);
            for line in reader.split(b'\n') {
                let Ok(line) = line else { break };
                match decode_line(&line) {
                    Some(batch) => {
                        valid_len += line.len() as u64 + 1;
                        batches += 1;
                        records.extend(batch);
                    }
                    None => break,
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        if len != valid_len {
            tracing::warn!(
                path = %path.display(),
                kept = valid_len,
                dropped = len - valid_len.min(len),
                "metadata log had a torn or corrupt tail; truncating it"
            );
            file.set_len(valid_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        let mut log = MetadataLog {
            path,
            file,
            batches,
        };
        log.seek_end()?;
        Ok((log, records))
    }

    fn seek_end(&mut self) -> Result<(), MetadataLogError> {
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::End(0))
            .map(|_| ())
            .map_err(|source| MetadataLogError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Appends one batch atomically and fsyncs it. An empty batch is a no-op.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), MetadataLogError> {
        if records.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec(records)?;
        let mut line = format!("{:08x} ", crc32c::crc32c(&json)).into_bytes();
        line.extend_from_slice(&json);
        line.push(b'\n');
        let io = |source| MetadataLogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.batches += 1;
        Ok(())
    }

    /// Number of committed batches.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

fn decode_line(line: &[u8]) -> Option<Vec<MetadataRecord>> {
    if line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(&line[..8]).ok()?, 16).ok()?;
    let json = &line[9..];
    if crc32c::crc32c(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;

    fn rec(n: i64) -> MetadataRecord {
        MetadataRecord::ProducerIds {
            node_id: 1,
            next_producer_id: n,
        }
    }

    #[test]
    fn appends_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, records) = MetadataLog::open(dir.path()).unwrap();
            assert!(records.is_empty());
            log.append(&[rec(1), rec(2)]).unwrap();
            log.append(&[rec(3)]).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let full = std::fs::read(&path).unwrap();
        // Cut inside the second batch: only the first survives, and appending still works.
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        let (mut log, records) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(records, vec![rec(1), rec(2)]);
        log.append(&[rec(4)]).unwrap();
        drop(log);
        let (_, records) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(records, vec![rec(1), rec(2), rec(4)]);
    }

    #[test]
    fn corrupt_byte_stops_replay_there() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = MetadataLog::open(dir.path()).unwrap();
            log.append(&[rec(1)]).unwrap();
            log.append(&[rec(2)]).unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 4] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(records, vec![rec(1)]);
    }
}
