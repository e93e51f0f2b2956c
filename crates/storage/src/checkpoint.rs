//! Kafka's small text files: offset checkpoints (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`, and later
//! `replication-offset-checkpoint`), all written
//! atomically through a temporary file, fsync and rename.
//!
//! Format (version 0):
//! ```text
//! 0
//! <number of entries>
//! <topic> <partition> <offset>
//! ...
//! ```

use crate::error::{IoContext, Result, StorageError};
use fjord_common::TopicPartition;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the per-log-dir recovery point checkpoint.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the per-log-dir log start offset checkpoint.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Name of the per-log-dir checkpoint of each compacted partition's first dirty offset (the
/// end of the part the log cleaner has already deduplicated), as Kafka's
/// `cleaner-offset-checkpoint`.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Marker written on clean shutdown, removed at startup.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Replaces `path` with `contents` atomically: write `<path>.tmp`, fsync it, rename it over
/// `path`, fsync the directory. A crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    write().at(&tmp)?;
    fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Renders offset checkpoint entries in Kafka's format.
pub fn format_offsets<'a>(entries: impl IntoIterator<Item = (&'a TopicPartition, i64)>) -> String {
    let mut lines: Vec<String> = entries
        .into_iter()
        .map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition))
        .collect();
    lines.sort();
    let mut out = format!("0\n{}\n", lines.len());
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Parses Kafka's offset checkpoint format.
pub fn parse_offsets(path: &Path, text: &str) -> Result<HashMap<TopicPartition, i64>> {
    let bad = |reason: String| StorageError::MalformedFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("0") => {}
        other => return Err(bad(format!("unsupported version {other:?}"))),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("missing entry count".into()))?;
    let mut out = HashMap::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| bad("fewer entries than announced".into()))?;
        let mut parts = line.split_whitespace();
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("malformed line '{line}'")));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| bad(format!("bad partition in '{line}'")))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| bad(format!("bad offset in '{line}'")))?;
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(bad("more entries than announced".into()));
    }
    Ok(out)
}

/// Reads an offset checkpoint file; a missing file is an empty checkpoint.
pub fn read_offsets(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    match fs::read_to_string(path) {
        Ok(text) => parse_offsets(path, &text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Writes an offset checkpoint file atomically.
pub fn write_offsets<'a>(
    path: &Path,
    entries: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
) -> Result<()> {
    write_atomic(path, format_offsets(entries).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        let a = TopicPartition::new("orders", 0);
        let b = TopicPartition::new("my.topic-x", 12);
        write_offsets(&path, [(&a, 42), (&b, 7)]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "0\n2\nmy.topic-x 12 7\norders 0 42\n");
        let back = read_offsets(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[&a], 42);
        assert_eq!(back[&b], 7);
        assert!(!tmp_path(&path).exists());
        assert!(read_offsets(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rejects_malformed_files() {
        let p = Path::new("x");
        assert!(parse_offsets(p, "1\n0\n").is_err());
        assert!(parse_offsets(p, "0\n2\nt 0 1\n").is_err());
        assert!(parse_offsets(p, "0\n1\nt zero 1\n").is_err());
        assert!(parse_offsets(p, "0\n1\nt 0 1\nu 0 2\n").is_err());
        assert!(parse_offsets(p, "0\n1\nt 0 1 9\n").is_err());
        assert_eq!(parse_offsets(p, "0\n0\n").unwrap().len(), 0);
    }
}
