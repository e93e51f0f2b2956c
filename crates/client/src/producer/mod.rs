//! The producer: partitioning, batching, delivery futures, flush and close.
//!
//! `send` picks the partition (explicit, murmur2 of the key, or the topic's sticky partition
//! for keyless records), appends the record in wire form to that partition's open batch and
//! returns a [`DeliveryFuture`]. Memory is reserved per batch from `buffer.memory`; when it
//! runs out, `send` waits up to `max.block.ms`. A single sender task per producer drains
//! batches that are full or have waited `linger.ms`, groups them per leader into Produce
//! requests (one batch per partition per request), keeps up to
//! `max.in.flight.requests.per.connection` requests in flight per broker, retries retriable
//! errors with back-off until `delivery.timeout.ms`, and runs the idempotent producer's
//! bookkeeping (producer id, per-partition sequence numbers, epoch bumps) as Kafka's Java
//! client does.

mod accumulator;
mod request;
mod sender;

use crate::cluster::Cluster;
use crate::config::{ProducerConfig, ProducerSettings};
use crate::error::{ClientError, Result};
use crate::partitioner::{next_sticky, partition_for_key};
use crate::records::{BatchWriter, Header};
use accumulator::{Batch, Completion, TopicQueues};
use bytes::Bytes;
use fjord_protocol::batch::HEADER_SIZE;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, Semaphore};

/// A record to send.
///
/// ```
/// use fjord_client::ProducerRecord;
/// let record = ProducerRecord::new("orders")
///     .key("customer-17")
///     .value("{\"total\": 12}")
///     .header("source", "web");
/// assert_eq!(record.partition, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic name (shared, so that records for one topic do not each copy its name).
    pub topic: Arc<str>,
    /// Partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key; records with the same key go to the same partition.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone on compacted topics.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// CreateTime in milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers.
    pub fn new(topic: impl Into<Arc<str>>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the CreateTime timestamp (ms since the epoch).
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset; `-1` with `acks=0`.
    pub offset: i64,
    /// The record's CreateTime, or the broker's LogAppendTime for such topics.
    pub timestamp: i64,
}

/// Resolves when the broker acknowledged (or the producer gave up on) one record.
///
/// Dropping it does not cancel the send.
#[must_use = "a delivery future reports whether the record was written"]
pub struct DeliveryFuture {
    completion: Arc<Completion>,
    topic: Arc<str>,
    partition: i32,
    offset_delta: i32,
    timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("done", &self.completion.is_done())
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.completion.poll_outcome(cx.waker()) {
            None => Poll::Pending,
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok((base_offset, log_append_time))) => Poll::Ready(Ok(RecordMetadata {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: if base_offset < 0 {
                    -1
                } else {
                    base_offset + self.offset_delta as i64
                },
                timestamp: if log_append_time >= 0 {
                    log_append_time
                } else {
                    self.timestamp
                },
            })),
        }
    }
}

/// State shared by the producer handles and the sender task.
pub(crate) struct Inner {
    pub(crate) settings: ProducerSettings,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>, FnvBuild>>,
    pub(crate) memory: Semaphore,
    pub(crate) wakeup: Notify,
    pub(crate) closing: AtomicBool,
    pub(crate) flushing: AtomicUsize,
    /// Completions of every batch not yet done, for `flush`.
    pub(crate) incomplete: Mutex<HashMap<u64, Arc<Completion>>>,
    pub(crate) next_batch_id: AtomicU64,
    pub(crate) fatal: Mutex<Option<ClientError>>,
    /// Set with `fatal` (checked on every send without taking the lock).
    failed: AtomicBool,
    /// Signalled when the sender task exits.
    pub(crate) stopped: Notify,
    pub(crate) stopped_flag: AtomicBool,
    /// Set by the sender when it sleeps with room to send: only then do appends wake it.
    pub(crate) sender_idle: AtomicBool,
    /// Counts batch events (new or full batches), so the sender never sleeps past one.
    pub(crate) batch_events: AtomicU64,
    /// Memory taken from `buffer.memory` for batches not created yet.
    spare_memory: AtomicUsize,
    runtime: tokio::runtime::Handle,
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            if let Some(e) = self.fatal.lock().clone() {
                return Err(e);
            }
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// Puts the producer in a fatal state: every later send fails with `error`.
    pub(crate) fn set_fatal(&self, error: ClientError) {
        *self.fatal.lock() = Some(error);
        self.failed.store(true, Ordering::Release);
    }

    /// Takes `n` bytes of memory already reserved from `buffer.memory` but not in use.
    fn take_spare(&self, n: usize) -> bool {
        let mut current = self.spare_memory.load(Ordering::Acquire);
        while current >= n {
            match self.spare_memory.compare_exchange_weak(
                current,
                current - n,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }

    /// A batch was created or filled: wake the sender if it is waiting for one.
    fn batch_event(&self) {
        self.batch_events.fetch_add(1, Ordering::SeqCst);
        if self.sender_idle.swap(false, Ordering::SeqCst) {
            self.wakeup.notify_one();
        }
    }

    fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wakeup.notify_one();
    }

    /// The queues of `topic` if its metadata is known.
    fn cached_topic(&self, topic: &str) -> Option<Arc<TopicQueues>> {
        self.topics.read().get(topic).cloned()
    }

    /// The queues of `topic`, fetching its metadata first when new.
    async fn topic_queues(&self, topic: &str, deadline: Instant) -> Result<Arc<TopicQueues>> {
        if let Some(t) = self.topics.read().get(topic) {
            return Ok(t.clone());
        }
        if topic.is_empty() {
            return Err(ClientError::InvalidArgument("empty topic name".into()));
        }
        let info = self.cluster.topic_metadata(topic, deadline).await?;
        let available = info
            .partitions
            .iter()
            .filter(|p| p.leader >= 0)
            .map(|p| p.partition)
            .collect();
        let count = info
            .partitions
            .iter()
            .map(|p| p.partition + 1)
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        let mut topics = self.topics.write();
        let entry = topics
            .entry(Arc::from(topic))
            .or_insert_with(|| Arc::new(TopicQueues::new(topic, count, available)));
        Ok(entry.clone())
    }

    fn new_batch(&self, partition: i32, record_size: usize, memory: usize) -> Batch {
        let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
        let limit = self.settings.batch_size.max(record_size);
        let batch = Batch::new(
            id,
            partition,
            BatchWriter::new(limit, limit.min(1 << 20)),
            memory,
        );
        self.incomplete.lock().insert(id, batch.completion.clone());
        batch
    }
}

/// An asynchronous, cloneable Kafka producer.
///
/// ```no_run
/// # async fn demo() -> fjord_client::Result<()> {
/// use fjord_client::{Producer, ProducerConfig, ProducerRecord};
/// let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092"))?;
/// let delivery = producer.send(ProducerRecord::new("events").key("k").value("v")).await?;
/// let metadata = delivery.await?;
/// println!("written at {}-{}@{}", metadata.topic, metadata.partition, metadata.offset);
/// producer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("bootstrap", &self.handle.inner.settings.net.bootstrap)
            .finish()
    }
}

/// Dropping the last handle closes the producer (buffered records are still sent).
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.begin_close();
    }
}

/// An upper bound of a record's encoded size (varint overheads at their largest), cheap
/// enough for every send.
fn approx_record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    let mut n = 5 + 1 + 10 + 5 + 5 + 5 + 5;
    n += key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    for h in headers {
        n += 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len);
    }
    n
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Producer {
    /// Creates a producer. Must be called inside a tokio runtime (the sender task is spawned
    /// on it); connections are made lazily.
    pub fn new(config: ProducerConfig) -> Result<Producer> {
        let settings = config.resolve()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClientError::InvalidArgument(
                "Producer::new must be called inside a tokio runtime".into(),
            )
        })?;
        let memory = settings.buffer_memory.min(Semaphore::MAX_PERMITS);
        let inner = Arc::new(Inner {
            cluster: Cluster::new(settings.net.clone()),
            settings,
            topics: RwLock::new(HashMap::with_hasher(FnvBuild)),
            memory: Semaphore::new(memory),
            wakeup: Notify::new(),
            closing: AtomicBool::new(false),
            flushing: AtomicUsize::new(0),
            incomplete: Mutex::new(HashMap::new()),
            next_batch_id: AtomicU64::new(0),
            fatal: Mutex::new(None),
            failed: AtomicBool::new(false),
            stopped: Notify::new(),
            stopped_flag: AtomicBool::new(false),
            sender_idle: AtomicBool::new(false),
            batch_events: AtomicU64::new(0),
            spare_memory: AtomicUsize::new(0),
            runtime: runtime.clone(),
        });
        runtime.spawn(sender::run(inner.clone()));
        Ok(Producer {
            handle: Arc::new(Handle { inner }),
        })
    }

    /// Queues a record and returns a future that resolves once it is acknowledged.
    ///
    /// Waits (up to `max.block.ms`) only for the topic's metadata the first time a topic is
    /// used and when `buffer.memory` is exhausted.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.handle.inner;
        inner.check_open()?;
        // The deadline is computed only when something has to wait (clock reads cost).
        let mut deadline_at: Option<Instant> = None;
        let max_block = inner.settings.max_block;
        let mut deadline = || *deadline_at.get_or_insert_with(|| Instant::now() + max_block);
        let topic = match inner.cached_topic(&record.topic) {
            Some(t) => t,
            None => inner.topic_queues(&record.topic, deadline()).await?,
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let key = record.key.as_deref();
        let value = record.value.as_deref();
        let size = approx_record_size(key, value, &record.headers);
        let total = size + HEADER_SIZE;
        if total > inner.settings.max_request_size {
            return Err(ClientError::RecordTooLarge {
                size: total,
                limit: inner.settings.max_request_size,
                key: "max.request.size",
            });
        }
        if total > inner.settings.buffer_memory {
            return Err(ClientError::RecordTooLarge {
                size: total,
                limit: inner.settings.buffer_memory,
                key: "buffer.memory",
            });
        }
        let num_partitions = topic.num_partitions();
        let keyed = key.is_some() && !inner.settings.ignore_keys;
        let (mut partition, mut may_switch) = match record.partition {
            Some(p) if p < 0 || p >= num_partitions => {
                return Err(ClientError::InvalidArgument(format!(
                    "partition {p} of topic {} is not in [0, {num_partitions})",
                    record.topic
                )))
            }
            Some(p) => (p, false),
            None if keyed => (
                partition_for_key(key.unwrap_or_default(), num_partitions),
                false,
            ),
            None => {
                let sticky = topic.sticky_partition();
                if sticky >= 0 && sticky < num_partitions {
                    (sticky, true)
                } else {
                    let p = next_sticky(None, num_partitions, &topic.available.read());
                    let _ = topic.sticky.compare_exchange(
                        sticky,
                        p,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    (topic.sticky_partition(), true)
                }
            }
        };
        // Memory reserved for a new batch but not used yet (given back on every exit).
        let mut reserved = Reservation {
            sem: &inner.memory,
            bytes: 0,
        };
        let needed = inner
            .settings
            .batch_size
            .max(size)
            .min(inner.settings.buffer_memory);
        loop {
            let queue = topic.queue(partition).ok_or_else(|| {
                ClientError::InvalidArgument(format!("{}-{partition} has no queue", record.topic))
            })?;
            {
                let mut q = queue.lock();
                if let Some(batch) = q.batches.back_mut() {
                    if !batch.full {
                        if let Some(writer) = batch.writer.as_mut() {
                            if let Some(delta) =
                                writer.try_append(timestamp, key, value, &record.headers)
                            {
                                batch.record_count += 1;
                                batch.size = writer.records_size();
                                if batch.size >= inner.settings.batch_size {
                                    batch.full = true;
                                    inner.batch_event();
                                }
                                return Ok(DeliveryFuture {
                                    completion: batch.completion.clone(),
                                    topic: topic.name.clone(),
                                    partition,
                                    offset_delta: delta,
                                    timestamp,
                                });
                            }
                            batch.full = true;
                            inner.batch_event();
                        }
                    }
                }
                if may_switch {
                    // KIP-480: a keyless record that would open a new batch moves the topic to
                    // a new sticky partition first.
                    may_switch = false;
                    drop(q);
                    let next =
                        next_sticky(Some(partition), num_partitions, &topic.available.read());
                    partition = match topic.sticky.compare_exchange(
                        partition,
                        next,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => next,
                        Err(current) if current >= 0 && current < num_partitions => current,
                        Err(_) => next,
                    };
                    continue;
                }
                if reserved.bytes < needed {
                    let missing = needed - reserved.bytes;
                    if inner.take_spare(missing) {
                        reserved.bytes += missing;
                    } else if let Ok(permit) = inner.memory.try_acquire_many(missing as u32) {
                        permit.forget();
                        reserved.bytes += missing;
                    }
                }
                if reserved.bytes >= needed {
                    let mut batch = inner.new_batch(partition, size, needed);
                    reserved.bytes -= needed;
                    let writer = batch
                        .writer
                        .as_mut()
                        .ok_or_else(|| ClientError::protocol("new batch without writer"))?;
                    let delta = writer
                        .try_append(timestamp, key, value, &record.headers)
                        .ok_or_else(|| {
                            ClientError::protocol("record does not fit an empty batch")
                        })?;
                    batch.record_count = 1;
                    batch.size = writer.records_size();
                    if batch.size >= inner.settings.batch_size {
                        batch.full = true;
                    }
                    let future = DeliveryFuture {
                        completion: batch.completion.clone(),
                        topic: topic.name.clone(),
                        partition,
                        offset_delta: delta,
                        timestamp,
                    };
                    q.batches.push_back(batch);
                    drop(q);
                    inner.batch_event();
                    return Ok(future);
                }
            }
            // Out of buffer memory: wait for batches to complete. Take a few batches' worth at
            // once (kept as spare for the next batches) so that a full buffer does not cost a
            // thread wake-up per completed batch.
            let remaining = deadline().saturating_duration_since(Instant::now());
            let wanted = needed - reserved.bytes;
            let chunk = (wanted
                + (3 * inner.settings.batch_size).max(inner.settings.buffer_memory / 32))
            .min(inner.settings.buffer_memory / 4)
            .max(wanted);
            match tokio::time::timeout(remaining, inner.memory.acquire_many(chunk as u32)).await {
                Ok(Ok(permit)) => {
                    permit.forget();
                    reserved.bytes += wanted;
                    inner
                        .spare_memory
                        .fetch_add(chunk - wanted, Ordering::AcqRel);
                }
                Ok(Err(_)) => return Err(ClientError::Closed),
                Err(_) => {
                    return Err(ClientError::Timeout(format!(
                        "buffer.memory exhausted for max.block.ms ({:?})",
                        inner.settings.max_block
                    )))
                }
            }
            inner.check_open()?;
        }
    }

    /// Sends a record and waits for its acknowledgement, blocking the calling thread.
    ///
    /// For synchronous code: call it from a thread outside the runtime, or from a
    /// multi-threaded runtime's worker (it uses `block_in_place`). On a current-thread runtime
    /// it returns an error; use `send(..).await?.await` there.
    pub fn send_sync(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let fut = async {
            let delivery = self.send(record).await?;
            delivery.await
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => Err(ClientError::InvalidArgument(
                    "send_sync would block a current-thread runtime; use send().await".into(),
                )),
                _ => tokio::task::block_in_place(|| handle.block_on(fut)),
            },
            // Outside any runtime: drive it on the producer's runtime.
            Err(_) => self.handle.inner.runtime.block_on(fut),
        }
    }

    /// Sends every buffered record now and waits until all records sent before this call
    /// are acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        let inner = &self.handle.inner;
        let pending: Vec<Arc<Completion>> = inner.incomplete.lock().values().cloned().collect();
        inner.flushing.fetch_add(1, Ordering::AcqRel);
        inner.wakeup.notify_one();
        for c in pending {
            let _ = c.wait().await;
        }
        inner.flushing.fetch_sub(1, Ordering::AcqRel);
        if let Some(e) = inner.fatal.lock().clone() {
            return Err(e);
        }
        Ok(())
    }

    /// Flushes, stops the sender and closes connections. Later sends fail with
    /// [`ClientError::Closed`].
    pub async fn close(&self) -> Result<()> {
        let inner = &self.handle.inner;
        let flushed = self.flush().await;
        inner.begin_close();
        loop {
            let stopped = inner.stopped.notified();
            if inner.stopped_flag.load(Ordering::Acquire) {
                break;
            }
            stopped.await;
        }
        flushed
    }

    /// Partition count of `topic` (fetching metadata if needed), as the partitioner sees it.
    pub async fn partitions_for(&self, topic: &str) -> Result<i32> {
        let inner = &self.handle.inner;
        let deadline = Instant::now() + inner.settings.max_block;
        Ok(inner.topic_queues(topic, deadline).await?.num_partitions())
    }

    /// How long `send` may block (for callers sizing their own timeouts).
    pub fn max_block(&self) -> Duration {
        self.handle.inner.settings.max_block
    }
}

/// FNV-1a: topic names are short and looked up on every send; SipHash's DoS resistance is
/// not needed for a client's own topic names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FnvBuild;

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// The FNV-1a hasher of [`FnvBuild`].
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Memory reserved from `buffer.memory` and not yet attached to a batch.
struct Reservation<'a> {
    sem: &'a Semaphore,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.sem.add_permits(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Acks;
    use fjord_protocol::compression::Compression;

    /// A producer whose broker does not exist, with topic `t` (3 partitions) known, so that
    /// appends can be inspected without anything being sent.
    fn offline_producer(config: ProducerConfig) -> (Producer, Arc<TopicQueues>) {
        let producer = Producer::new(config.linger_ms(600_000)).unwrap();
        let topic = Arc::new(TopicQueues::new("t", 3, vec![0, 1, 2]));
        producer
            .handle
            .inner
            .topics
            .write()
            .insert(Arc::from("t"), topic.clone());
        (producer, topic)
    }

    fn batches(topic: &TopicQueues) -> Vec<Vec<(i32, usize)>> {
        topic
            .partitions
            .read()
            .iter()
            .map(|q| {
                q.lock()
                    .batches
                    .iter()
                    .map(|b| (b.record_count, b.size))
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn keyless_records_fill_a_batch_then_move_to_another_partition() {
        let (producer, topic) = offline_producer(
            ProducerConfig::new("127.0.0.1:9")
                .batch_size(1000)
                .buffer_memory(100_000),
        );
        for _ in 0..25 {
            let _delivery = producer
                .send(ProducerRecord::new("t").value(vec![7u8; 100]))
                .await
                .unwrap();
        }
        let per_partition = batches(&topic);
        let all: Vec<(i32, usize)> = per_partition.iter().flatten().copied().collect();
        // 100-byte values take 108 bytes as records: 9 fit in 1000 bytes.
        let mut counts: Vec<i32> = all.iter().map(|(c, _)| *c).collect();
        counts.sort();
        assert_eq!(counts, vec![7, 9, 9], "{per_partition:?}");
        assert!(all.iter().all(|(_, size)| *size <= 1000));
        // Consecutive batches go to different partitions (one batch per partition here, since
        // a full batch moves the sticky partition and there are three to choose from).
        assert!(per_partition.iter().filter(|b| !b.is_empty()).count() >= 2);
        // Memory is reserved per batch.
        let inner = &producer.handle.inner;
        let reserved = 100_000 - inner.memory.available_permits();
        assert_eq!(reserved, 3 * 1000);
    }

    #[tokio::test]
    async fn keyed_records_follow_murmur2_and_explicit_partitions_are_kept() {
        let (producer, topic) = offline_producer(ProducerConfig::new("127.0.0.1:9"));
        for key in ["a", "b", "c", "order-17", "21"] {
            let d = producer
                .send(ProducerRecord::new("t").key(key).value("v"))
                .await
                .unwrap();
            assert_eq!(d.partition, partition_for_key(key.as_bytes(), 3), "{key}");
        }
        let d = producer
            .send(ProducerRecord::new("t").key("a").partition(2).value("v"))
            .await
            .unwrap();
        assert_eq!(d.partition, 2);
        let total: i32 = batches(&topic).iter().flatten().map(|(c, _)| c).sum();
        assert_eq!(total, 6);
        assert!(producer
            .send(ProducerRecord::new("t").partition(3).value("v"))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn full_buffer_memory_blocks_then_times_out() {
        let (producer, _topic) = offline_producer(
            ProducerConfig::new("127.0.0.1:9")
                .batch_size(1000)
                .buffer_memory(2000)
                .max_block_ms(100),
        );
        // Two batches fit in buffer.memory; each record fills a batch.
        for i in 0..2 {
            let _delivery = producer
                .send(ProducerRecord::new("t").partition(i).value(vec![1u8; 900]))
                .await
                .unwrap();
        }
        let started = Instant::now();
        let err = producer
            .send(ProducerRecord::new("t").partition(2).value(vec![1u8; 900]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Timeout(ref m) if m.contains("buffer.memory")),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Records larger than buffer.memory are rejected at once.
        let err = producer
            .send(ProducerRecord::new("t").value(vec![1u8; 5000]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(fjord_common::ErrorCode::MessageTooLarge));
    }

    #[tokio::test]
    async fn records_keep_headers_timestamps_and_acks_zero_is_accepted() {
        let (producer, topic) =
            offline_producer(ProducerConfig::new("127.0.0.1:9").acks(Acks::None));
        let _delivery = producer
            .send(
                ProducerRecord::new("t")
                    .partition(1)
                    .key("k")
                    .value("v")
                    .header("h", "x")
                    .timestamp(1234),
            )
            .await
            .unwrap();
        let queue = topic.queue(1).unwrap();
        let mut q = queue.lock();
        let batch = q.batches.pop_front().unwrap();
        let sealed = batch
            .writer
            .unwrap()
            .seal(Compression::None, -1, -1, -1)
            .unwrap();
        let decoded = fjord_protocol::records::decode_batch(&sealed).unwrap();
        assert_eq!(decoded.records[0].timestamp, 1234);
        assert_eq!(decoded.records[0].headers[0].key, "h");
        assert_eq!(decoded.records[0].key.as_deref(), Some(&b"k"[..]));
    }
}
