//! Idempotent producer state: per producer id, the epoch and the last five batches'
//! sequence ranges and offsets, as Kafka's `ProducerStateManager`, plus snapshots.
//!
//! Snapshot file `<20-digit offset>.snapshot` (state of all batches below that offset),
//! big-endian:
//! ```text
//! 0   magic "FJPS"
//! 4   version u16 = 1
//! 6   crc32c u32 of every byte from offset 10 to the end
//! 10  offset i64 (same as the file name)
//! 18  producer count u32
//! 22  per producer: producer_id i64, epoch i16, last_timestamp i64, batch count u8,
//!     then per batch: first_seq i32, last_seq i32, first_offset i64, last_offset i64,
//!     max_timestamp i64
//! ```

use crate::error::{Result, StorageError};
use fjord_protocol::batch::BatchHeader;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// How many batches per producer are remembered for duplicate detection (Kafka: 5, the
/// maximum `max.in.flight.requests.per.connection` with idempotence).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;

const MAGIC: &[u8; 4] = b"FJPS";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 22;
const BATCH_LEN: usize = 32;

/// Sequence range and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Base sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// Base offset assigned by the log.
    pub first_offset: i64,
    /// Last offset assigned by the log.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
}

/// What the log knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The current producer epoch.
    pub epoch: i16,
    /// Up to [`NUM_BATCHES_TO_RETAIN`] latest batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the producer's latest batch.
    pub last_timestamp: i64,
}

impl ProducerStateEntry {
    /// The last sequence written by this producer in its current epoch, `-1` if none.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }

    fn find_duplicate(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if h.producer_epoch != self.epoch {
            return None;
        }
        let last_seq = h.last_sequence();
        self.batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            .copied()
    }
}

/// The result of checking a leader append against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Append it.
    Append,
    /// Already in the log: answer with these offsets and do not append.
    Duplicate(BatchMetadata),
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// Producer id → state, reflecting every batch below `end_offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    end_offset: i64,
}

impl ProducerStateManager {
    /// Empty state whose batches start at `offset`.
    pub fn new(offset: i64) -> Self {
        ProducerStateManager {
            producers: HashMap::new(),
            end_offset: offset,
        }
    }

    /// The offset up to which (exclusive) batches are reflected.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// State of one producer.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every tracked producer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &ProducerStateEntry> + '_ {
        self.producers.values()
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Kafka's checks for a client batch (`ProducerAppendInfo` with origin client):
    /// duplicate of one of the last five batches → [`ProducerCheck::Duplicate`]; older epoch →
    /// `InvalidProducerEpoch`; newer epoch must start at sequence 0 and the same epoch must
    /// continue the sequence (wrapping at `i32::MAX`), else `OutOfOrderSequence`. Producers the
    /// log does not know may start at any sequence (KIP-360). Control batches only check the
    /// epoch.
    pub fn check_client_batch(&self, h: &BatchHeader) -> Result<ProducerCheck> {
        let pid = h.producer_id;
        let Some(entry) = self.producers.get(&pid) else {
            return Ok(ProducerCheck::Append);
        };
        if let Some(dup) = entry.find_duplicate(h) {
            return Ok(ProducerCheck::Duplicate(dup));
        }
        if h.producer_epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: pid,
                current: entry.epoch,
                found: h.producer_epoch,
            });
        }
        if h.is_control() {
            return Ok(ProducerCheck::Append);
        }
        if h.producer_epoch != entry.epoch {
            if h.base_sequence != 0 && entry.epoch >= 0 {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: pid,
                    expected: 0,
                    found: h.base_sequence,
                });
            }
        } else if entry.epoch >= 0 && !in_sequence(entry.last_seq(), h.base_sequence) {
            let expected = if entry.last_seq() == i32::MAX {
                0
            } else {
                entry.last_seq() + 1
            };
            return Err(StorageError::OutOfOrderSequence {
                producer_id: pid,
                expected,
                found: h.base_sequence,
            });
        }
        Ok(ProducerCheck::Append)
    }

    /// Records an appended batch (offsets already assigned). Batches without a producer id
    /// only move the end offset.
    pub fn update(&mut self, h: &BatchHeader) {
        self.end_offset = self.end_offset.max(h.next_offset());
        if !h.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerStateEntry {
                producer_id: h.producer_id,
                epoch: -1,
                batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                last_timestamp: -1,
            });
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        if h.is_control() {
            return;
        }
        if entry.batches.len() == NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        });
    }

    /// Removes producers whose latest batch is older than `now_ms - max_age_ms`
    /// (`producer.id.expiration.ms`). Returns how many were removed.
    pub fn remove_expired(&mut self, now_ms: i64, max_age_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < max_age_ms);
        before - self.producers.len()
    }

    /// Moves the end offset forward (no batches in between, e.g. a roll or follower gap).
    pub fn advance_end_offset(&mut self, offset: i64) {
        self.end_offset = self.end_offset.max(offset);
    }

    /// Sets the end offset (after loading a snapshot named by its offset).
    pub fn set_end_offset(&mut self, offset: i64) {
        self.end_offset = offset;
    }

    /// Encodes the state as a snapshot at [`ProducerStateManager::end_offset`].
    pub fn encode_snapshot(&self) -> Vec<u8> {
        self.encode_snapshot_at(self.end_offset)
    }

    /// Encodes the state as a snapshot labelled with `offset`.
    pub fn encode_snapshot_at(&self, offset: i64) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        let mut out = Vec::with_capacity(HEADER_LEN + ids.len() * (19 + 5 * BATCH_LEN));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.max_timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out[10..]);
        out[6..10].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a snapshot, checking magic, version, CRC and lengths.
    pub fn decode_snapshot(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: &str| StorageError::MalformedFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER_LEN || &bytes[0..4] != MAGIC {
            return Err(bad("not a producer snapshot"));
        }
        let mut r = Reader { bytes, pos: 4 };
        if r.u16()? != VERSION {
            return Err(bad("unsupported snapshot version"));
        }
        let crc = r.u32()?;
        if crc != crc32c::crc32c(&bytes[10..]) {
            return Err(bad("snapshot CRC mismatch"));
        }
        let end_offset = r.i64()?;
        let count = r.u32()?;
        let mut producers = HashMap::with_capacity((count as usize).min(1 << 16));
        for _ in 0..count {
            let producer_id = r.i64()?;
            let epoch = r.u16()? as i16;
            let last_timestamp = r.i64()?;
            let n = r.u8()? as usize;
            if n > NUM_BATCHES_TO_RETAIN {
                return Err(bad("too many batches for one producer"));
            }
            let mut batches = VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.u32()? as i32,
                    last_seq: r.u32()? as i32,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    max_timestamp: r.i64()?,
                });
            }
            producers.insert(
                producer_id,
                ProducerStateEntry {
                    producer_id,
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        if r.pos != bytes.len() {
            return Err(bad("trailing bytes in snapshot"));
        }
        Ok(ProducerStateManager {
            producers,
            end_offset,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.pos + N;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| StorageError::MalformedFile {
                path: Default::default(),
                reason: "snapshot truncated".into(),
            })?;
        let mut a = [0u8; N];
        a.copy_from_slice(slice);
        self.pos = end;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_protocol::compression::Compression;
    use fjord_protocol::records::{BatchBuilder, Record};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(Compression::None, 1000)
            .producer(pid, epoch, seq)
            .base_offset(base);
        for _ in 0..n {
            b.push(Record::new(None, Some(b"v".to_vec())));
        }
        BatchHeader::parse(&b.build().unwrap()).unwrap()
    }

    fn err_kind(r: Result<ProducerCheck>) -> &'static str {
        match r {
            Err(StorageError::OutOfOrderSequence { .. }) => "out_of_order",
            Err(StorageError::InvalidProducerEpoch { .. }) => "epoch",
            Ok(ProducerCheck::Append) => "append",
            Ok(ProducerCheck::Duplicate(_)) => "duplicate",
            Err(_) => "other",
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStateManager::new(0);
        // Unknown producer: any sequence accepted.
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 42, 3, 0))),
            "append"
        );
        s.update(&header(7, 0, 42, 3, 0)); // seq 42..=44 at offsets 0..=2
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 45, 1, 0))),
            "append"
        );
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 46, 1, 0))),
            "out_of_order"
        );
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 44, 1, 0))),
            "out_of_order"
        );
        match s.check_client_batch(&header(7, 0, 42, 3, 0)).unwrap() {
            ProducerCheck::Duplicate(m) => {
                assert_eq!((m.first_offset, m.last_offset), (0, 2));
            }
            other => panic!("{other:?}"),
        }
        // Same first seq but different length is not a duplicate.
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 42, 2, 0))),
            "out_of_order"
        );
        // New epoch must start at 0.
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 1, 5, 1, 0))),
            "out_of_order"
        );
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 1, 0, 1, 0))),
            "append"
        );
        s.update(&header(7, 1, 0, 1, 3));
        // Old epoch fenced.
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 45, 1, 0))),
            "epoch"
        );
        // A duplicate from the old epoch is not a duplicate any more.
        assert_eq!(
            err_kind(s.check_client_batch(&header(7, 0, 42, 3, 0))),
            "epoch"
        );
    }

    #[test]
    fn keeps_five_batches_and_wraps() {
        let mut s = ProducerStateManager::new(0);
        for i in 0..7 {
            s.update(&header(1, 0, i, 1, i as i64));
        }
        let e = s.get(1).unwrap();
        assert_eq!(e.batches.len(), NUM_BATCHES_TO_RETAIN);
        assert_eq!(e.batches.front().unwrap().first_seq, 2);
        assert_eq!(
            err_kind(s.check_client_batch(&header(1, 0, 2, 1, 0))),
            "duplicate"
        );
        assert_eq!(
            err_kind(s.check_client_batch(&header(1, 0, 1, 1, 0))),
            "out_of_order"
        );
        let mut s = ProducerStateManager::new(0);
        s.update(&header(2, 0, i32::MAX - 1, 2, 0)); // ends at i32::MAX
        assert_eq!(s.get(2).unwrap().last_seq(), i32::MAX);
        assert_eq!(
            err_kind(s.check_client_batch(&header(2, 0, 0, 1, 0))),
            "append"
        );
        assert_eq!(
            err_kind(s.check_client_batch(&header(2, 0, 1, 1, 0))),
            "out_of_order"
        );
    }

    #[test]
    fn snapshot_round_trip_and_crc() {
        let mut s = ProducerStateManager::new(0);
        for pid in 0..10 {
            for i in 0..(pid % 7) {
                s.update(&header(
                    pid,
                    (pid % 3) as i16,
                    i as i32 * 2,
                    2,
                    100 * pid + i * 2,
                ));
            }
        }
        let bytes = s.encode_snapshot();
        let back = ProducerStateManager::decode_snapshot(Path::new("x"), &bytes).unwrap();
        assert_eq!(back, s);
        for i in [0, 5, 8, 12, 30, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                ProducerStateManager::decode_snapshot(Path::new("x"), &bad).is_err(),
                "byte {i}"
            );
        }
        assert!(
            ProducerStateManager::decode_snapshot(Path::new("x"), &bytes[..bytes.len() - 1])
                .is_err()
        );
    }

    #[test]
    fn expiration() {
        let mut s = ProducerStateManager::new(0);
        s.update(&header(1, 0, 0, 1, 0)); // timestamp 1000
        assert_eq!(s.remove_expired(1500, 1000), 0);
        assert_eq!(s.remove_expired(2000, 1000), 1);
        assert!(s.is_empty());
    }
}
