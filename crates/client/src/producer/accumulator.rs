//! Per-partition queues of batches, the delivery completions records wait on, and the
//! drain rules (linger, batch full, in-flight limits, retry ordering).

use crate::error::ClientError;
use crate::records::BatchWriter;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// The outcome of one batch: base offset and LogAppendTime (`-1` for CreateTime).
pub(crate) type BatchOutcome = Result<(i64, i64), ClientError>;

#[derive(Default)]
struct CompletionState {
    result: Option<BatchOutcome>,
    wakers: Vec<Waker>,
}

/// Shared by every record of a batch: set once when the batch is acknowledged or fails.
#[derive(Default)]
pub(crate) struct Completion {
    state: Mutex<CompletionState>,
}

impl Completion {
    pub(crate) fn complete(&self, outcome: BatchOutcome) {
        let wakers = {
            let mut st = self.state.lock();
            if st.result.is_some() {
                return;
            }
            st.result = Some(outcome);
            std::mem::take(&mut st.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// The outcome if known; otherwise registers `waker` to be woken on completion.
    pub(crate) fn poll_outcome(&self, waker: &Waker) -> Option<BatchOutcome> {
        let mut st = self.state.lock();
        if let Some(r) = &st.result {
            return Some(r.clone());
        }
        // One task awaiting many records of a batch registers the same waker repeatedly.
        if !st.wakers.iter().rev().take(4).any(|w| w.will_wake(waker)) {
            st.wakers.push(waker.clone());
        }
        None
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.lock().result.is_some()
    }

    /// Waits for completion.
    pub(crate) fn wait(self: &Arc<Self>) -> impl std::future::Future<Output = BatchOutcome> {
        let this = self.clone();
        std::future::poll_fn(move |cx| match this.poll_outcome(cx.waker()) {
            Some(r) => std::task::Poll::Ready(r),
            None => std::task::Poll::Pending,
        })
    }
}

/// A batch of one partition, open (being filled) or closed (sealed, possibly in flight).
pub(crate) struct Batch {
    /// Creation order within the producer (also the order of its partition's batches).
    pub(crate) id: u64,
    pub(crate) partition: i32,
    /// `Some` while records can still be appended.
    pub(crate) writer: Option<BatchWriter>,
    /// The encoded batch once drained.
    pub(crate) sealed: Option<Bytes>,
    pub(crate) record_count: i32,
    /// Uncompressed size estimate, for request sizing.
    pub(crate) size: usize,
    /// True once a record did not fit (nothing more will be appended).
    pub(crate) full: bool,
    pub(crate) created: Instant,
    pub(crate) completion: Arc<Completion>,
    /// `buffer.memory` bytes held until completion.
    pub(crate) memory: usize,
    pub(crate) attempts: u32,
    pub(crate) retry_at: Option<Instant>,
    /// `-1` until the idempotent producer assigns one.
    pub(crate) base_sequence: i32,
    /// Producer id and epoch stamped on the sealed batch.
    pub(crate) producer: (i64, i16),
}

impl Batch {
    pub(crate) fn new(id: u64, partition: i32, writer: BatchWriter, memory: usize) -> Self {
        Batch {
            id,
            partition,
            writer: Some(writer),
            sealed: None,
            record_count: 0,
            size: 0,
            full: false,
            created: Instant::now(),
            completion: Arc::new(Completion::default()),
            memory,
            attempts: 0,
            retry_at: None,
            base_sequence: -1,
            producer: (-1, -1),
        }
    }

    /// Whether the batch may be sent now (or when it will be), ignoring in-flight limits.
    pub(crate) fn ready_at(&self, linger: Duration, flushing: bool) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        if self.full || flushing || self.writer.is_none() {
            None
        } else {
            Some(self.created + linger)
        }
    }
}

/// The batches of one partition and its idempotence bookkeeping.
#[derive(Default)]
pub(crate) struct PartitionQueue {
    /// Oldest first; retried batches go back in creation order, before newer ones.
    pub(crate) batches: VecDeque<Batch>,
    /// Batches of this partition in flight.
    pub(crate) in_flight: usize,
    /// Next sequence number to assign (idempotence).
    pub(crate) next_sequence: i32,
    /// Last sequence acknowledged by the broker (`-1`: none).
    pub(crate) last_acked_sequence: i32,
}

impl PartitionQueue {
    pub(crate) fn new() -> Self {
        PartitionQueue {
            last_acked_sequence: -1,
            ..Default::default()
        }
    }

    /// Puts a batch back for a retry, keeping creation order.
    pub(crate) fn requeue(&mut self, batch: Batch) {
        let at = self
            .batches
            .iter()
            .position(|b| b.id > batch.id)
            .unwrap_or(self.batches.len());
        self.batches.insert(at, batch);
    }
}

/// Sequence after `seq` (wrapping to 0 after `i32::MAX`, as Kafka does).
pub(crate) fn next_seq(seq: i32, count: i32) -> i32 {
    let next = seq as i64 + count as i64;
    if next > i32::MAX as i64 {
        (next - i32::MAX as i64 - 1) as i32
    } else {
        next as i32
    }
}

/// The queues of one topic.
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    pub(crate) partitions: RwLock<Vec<Arc<Mutex<PartitionQueue>>>>,
    /// Sticky partition for keyless records (`-1`: none yet).
    pub(crate) sticky: AtomicI32,
    /// Partitions that currently have a leader.
    pub(crate) available: RwLock<Vec<i32>>,
}

impl TopicQueues {
    pub(crate) fn new(name: &str, partitions: usize, available: Vec<i32>) -> Self {
        TopicQueues {
            name: Arc::from(name),
            partitions: RwLock::new(
                (0..partitions)
                    .map(|_| Arc::new(Mutex::new(PartitionQueue::new())))
                    .collect(),
            ),
            sticky: AtomicI32::new(-1),
            available: RwLock::new(available),
        }
    }

    pub(crate) fn num_partitions(&self) -> i32 {
        self.partitions.read().len() as i32
    }

    /// Grows to `n` partitions (partitions are never removed in Kafka).
    pub(crate) fn grow(&self, n: usize) {
        let mut parts = self.partitions.write();
        while parts.len() < n {
            parts.push(Arc::new(Mutex::new(PartitionQueue::new())));
        }
    }

    pub(crate) fn queue(&self, partition: i32) -> Option<Arc<Mutex<PartitionQueue>>> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.read().get(p).cloned())
    }

    pub(crate) fn sticky_partition(&self) -> i32 {
        self.sticky.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u64, linger_from: Instant) -> Batch {
        let mut b = Batch::new(id, 0, BatchWriter::new(100, 100), 100);
        b.created = linger_from;
        b
    }

    #[test]
    fn linger_and_fullness_decide_readiness() {
        let t0 = Instant::now();
        let linger = Duration::from_millis(5);
        let mut b = batch(1, t0);
        assert_eq!(b.ready_at(linger, false), Some(t0 + linger));
        assert_eq!(b.ready_at(linger, true), None, "flush sends at once");
        b.full = true;
        assert_eq!(b.ready_at(linger, false), None, "a full batch goes at once");
        let mut r = batch(2, t0);
        r.retry_at = Some(t0 + Duration::from_millis(100));
        assert_eq!(
            r.ready_at(linger, true),
            Some(t0 + Duration::from_millis(100))
        );
    }

    #[test]
    fn requeue_keeps_creation_order() {
        let t0 = Instant::now();
        let mut q = PartitionQueue::new();
        q.batches.push_back(batch(5, t0));
        q.batches.push_back(batch(6, t0));
        q.requeue(batch(3, t0));
        q.requeue(batch(2, t0));
        q.requeue(batch(4, t0));
        let ids: Vec<u64> = q.batches.iter().map(|b| b.id).collect();
        assert_eq!(ids, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(next_seq(0, 10), 10);
        assert_eq!(next_seq(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_seq(i32::MAX, 1), 0);
        assert_eq!(next_seq(i32::MAX - 2, 5), 2);
    }

    #[test]
    fn completion_wakes_and_keeps_the_outcome() {
        let c = Arc::new(Completion::default());
        let waker = futures::task::noop_waker();
        assert!(c.poll_outcome(&waker).is_none());
        assert!(c.poll_outcome(&waker).is_none());
        assert_eq!(c.state.lock().wakers.len(), 1, "same waker registered once");
        c.complete(Ok((10, -1)));
        c.complete(Ok((99, -1)));
        assert!(c.is_done());
        assert!(matches!(c.poll_outcome(&waker), Some(Ok((10, -1)))));
    }
}
