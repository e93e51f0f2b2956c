//! Fetch requests and the records of completed fetches.
//!
//! A completed fetch keeps the partition's raw record bytes and is decoded one batch at a
//! time as `poll` asks for records, so a large prefetched response costs nothing until used.
//! Records below the position (the broker returns whole batches), control batches and, for
//! `read_committed`, batches of aborted transactions are skipped.

use super::ConsumerRecord;
use crate::conn::sb;
use crate::error::{ClientError, Result};
use crate::records::{read_batch, ReadRecord};
use bytes::Bytes;
use fjord_common::TopicPartition;
use fjord_protocol::batch::BatchHeader;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::AbortedTransaction;
use kafka_protocol::messages::{FetchRequest, TopicName};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Fetch parameters from the consumer settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchParams {
    pub(crate) max_wait_ms: i32,
    pub(crate) min_bytes: i32,
    pub(crate) max_bytes: i32,
    pub(crate) partition_max_bytes: i32,
    pub(crate) isolation_level: i8,
}

/// One partition to fetch.
#[derive(Debug, Clone)]
pub(crate) struct FetchTarget {
    pub(crate) tp: TopicPartition,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: Option<i32>,
}

/// Builds a sessionless Fetch request (session id 0, epoch -1: full fetches every time).
pub(crate) fn build_request(
    version: i16,
    params: FetchParams,
    targets: &[FetchTarget],
) -> FetchRequest {
    let mut req = FetchRequest::default();
    req.replica_id = (-1).into();
    req.max_wait_ms = params.max_wait_ms;
    req.min_bytes = params.min_bytes;
    req.max_bytes = params.max_bytes;
    req.isolation_level = params.isolation_level;
    req.session_id = 0;
    req.session_epoch = -1;
    let mut by_topic: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for t in targets {
        let mut p = FetchPartition::default();
        p.partition = t.tp.partition;
        p.fetch_offset = t.offset;
        p.partition_max_bytes = params.partition_max_bytes;
        if version >= 9 {
            p.current_leader_epoch = t.leader_epoch.unwrap_or(-1);
        }
        by_topic.entry(t.tp.topic.as_str()).or_default().push(p);
    }
    req.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut ft = FetchTopic::default();
            ft.topic = TopicName(sb(topic));
            ft.partitions = partitions;
            ft
        })
        .collect();
    req
}

/// The data of one partition from one fetch response, consumed as `poll` goes.
pub(crate) struct CompletedFetch {
    pub(crate) tp: TopicPartition,
    pub(crate) topic: Arc<str>,
    /// The offset this fetch was for; discarded if the position moved meanwhile.
    pub(crate) fetch_offset: i64,
    data: Bytes,
    pos: usize,
    pending: VecDeque<ReadRecord>,
    /// Position to move to once `pending` is empty (end of the current batch).
    batch_next_offset: Option<i64>,
    batch_leader_epoch: i32,
    read_committed: bool,
    aborted: Vec<(i64, i64)>,
    aborted_producers: HashSet<i64>,
    check_crcs: bool,
    /// Set once it is validated against the consumer's position.
    pub(crate) started: bool,
    /// The offset after the last complete batch: where the position will be once this fetch
    /// is drained, so the next fetch for the partition can be sent before that (None when the
    /// response holds no complete batch).
    pub(crate) end_offset: Option<i64>,
}

impl CompletedFetch {
    pub(crate) fn new(
        tp: TopicPartition,
        topic: Arc<str>,
        fetch_offset: i64,
        data: Bytes,
        read_committed: bool,
        aborted: Option<&[AbortedTransaction]>,
        check_crcs: bool,
    ) -> Self {
        let mut aborted: Vec<(i64, i64)> = aborted
            .unwrap_or_default()
            .iter()
            .map(|a| (*a.producer_id, a.first_offset))
            .collect();
        // Consumed from the back in first-offset order.
        aborted.sort_by_key(|a| std::cmp::Reverse(a.1));
        let end_offset = end_of_complete_batches(&data);
        CompletedFetch {
            tp,
            topic,
            fetch_offset,
            data,
            pos: 0,
            pending: VecDeque::new(),
            batch_next_offset: None,
            batch_leader_epoch: -1,
            read_committed,
            aborted,
            aborted_producers: HashSet::new(),
            check_crcs,
            started: false,
            end_offset,
        }
    }

    /// True when nothing is left to return.
    pub(crate) fn is_drained(&self) -> bool {
        self.pending.is_empty() && self.pos >= self.data.len()
    }

    /// Appends up to `max` records at or after `*position` to `out`, advancing `*position`
    /// and `*epoch`.
    pub(crate) fn take(
        &mut self,
        max: usize,
        position: &mut i64,
        epoch: &mut Option<i32>,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        let start = out.len();
        while out.len() - start < max {
            if let Some(r) = self.pending.pop_front() {
                if r.offset >= *position {
                    *position = r.offset + 1;
                    if self.batch_leader_epoch >= 0 {
                        *epoch = Some(self.batch_leader_epoch);
                    }
                    out.push(ConsumerRecord {
                        topic: self.topic.clone(),
                        partition: self.tp.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
                continue;
            }
            if let Some(next) = self.batch_next_offset.take() {
                // The batch is done: skip past its tail (compacted or filtered records).
                *position = (*position).max(next);
            }
            if self.pos >= self.data.len() {
                break;
            }
            let rest = &self.data[self.pos..];
            let header = match BatchHeader::parse(rest) {
                Ok(h) if h.size() <= rest.len() => h,
                // A partial batch at the end of a response is normal: fetch it again.
                _ => {
                    self.pos = self.data.len();
                    break;
                }
            };
            let batch = self.data.slice(self.pos..self.pos + header.size());
            self.pos += header.size();
            if header.last_offset() < *position {
                continue;
            }
            if self.read_committed {
                while let Some(&(pid, first)) = self.aborted.last() {
                    if first > header.last_offset() {
                        break;
                    }
                    self.aborted_producers.insert(pid);
                    self.aborted.pop();
                }
                if header.is_control() {
                    if is_abort_marker(&batch, self.check_crcs) {
                        self.aborted_producers.remove(&header.producer_id);
                    }
                    self.batch_next_offset = Some(header.next_offset());
                    continue;
                }
                if header.is_transactional() && self.aborted_producers.contains(&header.producer_id)
                {
                    self.batch_next_offset = Some(header.next_offset());
                    continue;
                }
            }
            if header.is_control() {
                self.batch_next_offset = Some(header.next_offset());
                continue;
            }
            let mut records = Vec::with_capacity(header.record_count.max(0) as usize);
            read_batch(&batch, self.check_crcs, &mut records).map_err(|e| match e {
                ClientError::Kafka { code, message, .. } => ClientError::Kafka {
                    code,
                    message,
                    context: format!("{} at offset {}", self.tp, header.base_offset),
                },
                other => other,
            })?;
            self.pending.extend(records);
            self.batch_next_offset = Some(header.next_offset());
            self.batch_leader_epoch = header.partition_leader_epoch;
        }
        if self.pending.is_empty() {
            if let Some(next) = self.batch_next_offset.take() {
                *position = (*position).max(next);
            }
        }
        Ok(())
    }
}

/// The next offset after the last complete batch of `data` (headers only, nothing decoded).
fn end_of_complete_batches(data: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let mut end = None;
    while pos < data.len() {
        match BatchHeader::parse(&data[pos..]) {
            Ok(h) if h.size() <= data.len() - pos => {
                end = Some(h.next_offset());
                pos += h.size();
            }
            _ => break,
        }
    }
    end
}

/// Whether a control batch holds an ABORT marker (control record key: version, type 0).
fn is_abort_marker(batch: &Bytes, check_crcs: bool) -> bool {
    let mut records = Vec::new();
    if read_batch(batch, check_crcs, &mut records).is_err() {
        return false;
    }
    records
        .first()
        .and_then(|r| r.key.as_ref())
        .is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_protocol::batch::set_base_offset;
    use fjord_protocol::compression::Compression;
    use fjord_protocol::records::{BatchBuilder, Record};

    fn batch(base: i64, n: usize, pid: i64, transactional: bool) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None, 1000)
            .base_offset(base)
            .producer(pid, 0, 0)
            .transactional(transactional);
        for i in 0..n {
            b.push(Record::new(
                Some(format!("k{}", base + i as i64).into_bytes()),
                Some(vec![b'v']),
            ));
        }
        let mut v = b.build().unwrap().to_vec();
        set_base_offset(&mut v, base);
        v
    }

    fn fetch(data: Vec<u8>, fetch_offset: i64) -> CompletedFetch {
        CompletedFetch::new(
            TopicPartition::new("t", 0),
            Arc::from("t"),
            fetch_offset,
            Bytes::from(data),
            false,
            None,
            true,
        )
    }

    #[test]
    fn skips_records_below_the_position_and_respects_max() {
        let mut data = batch(0, 5, -1, false);
        data.extend(batch(5, 5, -1, false));
        let mut f = fetch(data, 3);
        let mut position = 3;
        let mut epoch = None;
        let mut out = Vec::new();
        f.take(4, &mut position, &mut epoch, &mut out).unwrap();
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![3, 4, 5, 6]);
        assert_eq!(position, 7);
        out.clear();
        f.take(100, &mut position, &mut epoch, &mut out).unwrap();
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![7, 8, 9]);
        assert_eq!(position, 10);
        assert!(f.is_drained());
        assert_eq!(out[0].key.as_deref(), Some(&b"k7"[..]));
    }

    #[test]
    fn end_offset_is_after_the_last_complete_batch() {
        let mut data = batch(10, 3, -1, false);
        data.extend(batch(13, 4, -1, false));
        assert_eq!(fetch(data.clone(), 10).end_offset, Some(17));
        // A partial trailing batch does not count: the next fetch starts at its first offset.
        let third = batch(17, 2, -1, false);
        data.extend_from_slice(&third[..third.len() - 3]);
        assert_eq!(fetch(data, 10).end_offset, Some(17));
        let only_partial = third[..third.len() - 1].to_vec();
        assert_eq!(fetch(only_partial, 17).end_offset, None);
    }

    #[test]
    fn a_partial_trailing_batch_is_ignored() {
        let mut data = batch(0, 2, -1, false);
        let second = batch(2, 2, -1, false);
        data.extend_from_slice(&second[..second.len() - 5]);
        let mut f = fetch(data, 0);
        let (mut position, mut epoch, mut out) = (0, None, Vec::new());
        f.take(100, &mut position, &mut epoch, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(position, 2);
    }

    #[test]
    fn read_committed_drops_aborted_transactions() {
        // Producer 7 aborts offsets 0..2 (marker at 2); producer 8 commits 3..4.
        let mut data = batch(0, 2, 7, true);
        let mut marker = BatchBuilder::new(Compression::None, 1000)
            .producer(7, 0, 2)
            .transactional(true);
        marker.push(Record::new(
            Some(vec![0, 0, 0, 0]),
            Some(vec![0, 0, 0, 0, 0, 0]),
        ));
        let mut m = marker.build().unwrap().to_vec();
        // Make it a control batch: set the control bit and recompute the CRC.
        m[22] |= 0x20;
        let crc = fjord_protocol::batch::compute_crc(&m);
        m[17..21].copy_from_slice(&crc.to_be_bytes());
        set_base_offset(&mut m, 2);
        data.extend(m);
        data.extend(batch(3, 2, 8, true));
        let aborted = {
            let mut a = AbortedTransaction::default();
            a.producer_id = 7.into();
            a.first_offset = 0;
            vec![a]
        };
        let mut f = CompletedFetch::new(
            TopicPartition::new("t", 0),
            Arc::from("t"),
            0,
            Bytes::from(data.clone()),
            true,
            Some(&aborted),
            true,
        );
        let (mut position, mut epoch, mut out) = (0, None, Vec::new());
        f.take(100, &mut position, &mut epoch, &mut out).unwrap();
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![3, 4]);
        assert_eq!(position, 5);
        // read_uncommitted sees everything but the control batch.
        let mut f = fetch(data, 0);
        let (mut position, mut epoch, mut out) = (0, None, Vec::new());
        f.take(100, &mut position, &mut epoch, &mut out).unwrap();
        let offsets: Vec<i64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 3, 4]);
    }
}
