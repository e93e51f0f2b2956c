//! The sender task: drains ready batches into Produce requests, handles responses, retries,
//! and the idempotent producer's id/epoch/sequence bookkeeping.
//!
//! Ordering rules (the Java client's, simplified):
//! * a partition sends its batches in creation order, at most
//!   `max.in.flight.requests.per.connection` at a time, one batch per request;
//! * a batch that must be retried goes back into its queue in creation order and is resent
//!   only once nothing else of that partition is in flight, so a retry never overtakes;
//! * with idempotence, sequences are assigned when a batch is first drained. An
//!   OUT_OF_ORDER_SEQUENCE_NUMBER on the next expected batch, an UNKNOWN_PRODUCER_ID, or a
//!   batch that fails after getting a sequence, bumps the epoch (InitProducerId with the
//!   current id and epoch, KIP-360; a new id from older brokers) once nothing is in flight;
//!   every partition then restarts at sequence 0 and queued batches are restamped.

use super::accumulator::{next_seq, Batch, BatchOutcome, PartitionQueue, TopicQueues};
use super::request::{self, PartitionRecords, ProduceHeader, TopicRecords};
use super::Inner;
use crate::cluster::{needs_metadata_refresh, ConnKey, Metadata};
use crate::config::Acks;
use crate::error::{ClientError, Result};
use crate::records::restamp;
use fjord_common::ErrorCode;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProduceRequest, ProduceResponse};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the sender wakes up with nothing to do (expiry, metadata age).
const IDLE_TICK: Duration = Duration::from_millis(250);

type Drained = Vec<(Arc<TopicQueues>, Batch)>;

enum Event {
    Produced {
        node: i32,
        batches: Drained,
        result: Result<Option<ProduceResponse>>,
    },
    Connected {
        node: i32,
        result: Result<()>,
    },
    Metadata(Result<Arc<Metadata>>),
    ProducerId(Result<(i64, i16)>),
}

struct Sender {
    inner: Arc<Inner>,
    events: FuturesUnordered<BoxFuture<'static, Event>>,
    node_in_flight: HashMap<i32, usize>,
    total_in_flight: usize,
    connecting: HashSet<i32>,
    refreshing: bool,
    next_refresh: Instant,
    /// Producer id and epoch; `(-1, -1)` until InitProducerId succeeded.
    producer: (i64, i16),
    need_epoch_bump: bool,
    pid_in_flight: bool,
    pid_attempts: u32,
    next_pid_attempt: Instant,
}

pub(super) async fn run(inner: Arc<Inner>) {
    let mut sender = Sender {
        inner: inner.clone(),
        events: FuturesUnordered::new(),
        node_in_flight: HashMap::new(),
        total_in_flight: 0,
        connecting: HashSet::new(),
        refreshing: false,
        next_refresh: Instant::now(),
        producer: (-1, -1),
        need_epoch_bump: false,
        pid_in_flight: false,
        pid_attempts: 0,
        next_pid_attempt: Instant::now(),
    };
    sender.run().await;
    inner.cluster.close();
    inner.stopped_flag.store(true, Ordering::Release);
    inner.stopped.notify_waiters();
}

impl Sender {
    fn idempotent(&self) -> bool {
        self.inner.settings.idempotence
    }

    async fn run(&mut self) {
        loop {
            let closing = self.inner.closing.load(Ordering::Acquire);
            if self.inner.fatal.lock().is_some() {
                self.fail_everything();
                if closing && self.total_in_flight == 0 {
                    return;
                }
            }
            if closing && self.total_in_flight == 0 && self.is_empty() {
                return;
            }
            let now = Instant::now();
            self.maybe_init_producer_id(now);
            self.maybe_refresh_metadata(now, false);
            let mut next = now + IDLE_TICK;
            let events_seen = self.inner.batch_events.load(Ordering::SeqCst);
            loop {
                let (sent, wake) = self.drain(Instant::now());
                next = next.min(wake);
                if !sent {
                    break;
                }
            }
            // Appends wake the sender only while it has room to send something.
            let max = self.inner.settings.max_in_flight;
            let brokers = self.inner.cluster.metadata().brokers.len().max(1);
            let room = self.node_in_flight.values().filter(|n| **n >= max).count() < brokers;
            self.inner.sender_idle.store(room, Ordering::SeqCst);
            if room && self.inner.batch_events.load(Ordering::SeqCst) != events_seen {
                self.inner.sender_idle.store(false, Ordering::SeqCst);
                continue;
            }
            let wakeup = self.inner.wakeup.notified();
            tokio::select! {
                biased;
                Some(event) = self.events.next(), if !self.events.is_empty() => self.on_event(event),
                _ = wakeup => {}
                _ = tokio::time::sleep_until(next.into()) => {}
            }
            // Handle every event that is already done before draining again.
            while let Some(Some(event)) = self.events.next().now_or_never() {
                self.on_event(event);
            }
        }
    }

    fn topics(&self) -> Vec<Arc<TopicQueues>> {
        self.inner.topics.read().values().cloned().collect()
    }

    fn is_empty(&self) -> bool {
        self.topics().iter().all(|t| {
            t.partitions
                .read()
                .iter()
                .all(|q| q.lock().batches.is_empty())
        })
    }

    fn fail_everything(&mut self) {
        let err = self
            .inner
            .fatal
            .lock()
            .clone()
            .unwrap_or(ClientError::Closed);
        for topic in self.topics() {
            let queues = topic.partitions.read().clone();
            for q in queues {
                let mut q = q.lock();
                while let Some(b) = q.batches.pop_front() {
                    self.finish(b, Err(err.clone()));
                }
            }
        }
    }

    fn finish(&self, batch: Batch, outcome: BatchOutcome) {
        batch.completion.complete(outcome);
        self.inner.memory.add_permits(batch.memory);
        self.inner.incomplete.lock().remove(&batch.id);
    }

    fn maybe_init_producer_id(&mut self, now: Instant) {
        if !self.idempotent()
            || self.pid_in_flight
            || (self.producer.0 >= 0 && !self.need_epoch_bump)
            || self.total_in_flight > 0
            || now < self.next_pid_attempt
            || self.inner.fatal.lock().is_some()
        {
            return;
        }
        if self.producer.0 < 0 && self.is_empty() {
            // Nothing to send yet: get the id lazily, with the first batch.
            return;
        }
        self.pid_in_flight = true;
        let cluster = self.inner.cluster.clone();
        let current = self.producer;
        let timeout = self.inner.settings.net.request_timeout;
        self.events.push(
            async move {
                let result = init_producer_id(&cluster, current, timeout).await;
                Event::ProducerId(result)
            }
            .boxed(),
        );
    }

    fn maybe_refresh_metadata(&mut self, now: Instant, urgent: bool) {
        if self.refreshing || now < self.next_refresh {
            return;
        }
        let stale = self
            .inner
            .cluster
            .metadata()
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.inner.settings.net.metadata_max_age);
        if !urgent && !stale {
            return;
        }
        self.refreshing = true;
        let cluster = self.inner.cluster.clone();
        self.events
            .push(async move { Event::Metadata(cluster.refresh().await) }.boxed());
    }

    /// Drains ready batches into one request per broker. Returns whether anything was sent
    /// and when to look again.
    fn drain(&mut self, now: Instant) -> (bool, Instant) {
        let settings = &self.inner.settings;
        let linger = settings.linger;
        let flushing = self.inner.flushing.load(Ordering::Acquire) > 0
            || self.inner.closing.load(Ordering::Acquire);
        let max_in_flight = settings.max_in_flight;
        let can_send = !self.idempotent()
            || (self.producer.0 >= 0 && !self.need_epoch_bump && !self.pid_in_flight);
        let md = self.inner.cluster.metadata();
        let mut next = now + IDLE_TICK;
        let mut requests: HashMap<i32, (Drained, usize)> = HashMap::new();
        let mut need_metadata = false;
        let mut connect: Vec<i32> = Vec::new();
        let mut bump = false;
        for topic in self.topics() {
            let info = md.topics.get(&*topic.name);
            let queues = topic.partitions.read().clone();
            for (p, queue) in queues.iter().enumerate() {
                let mut q = queue.lock();
                bump |= self.expire(&mut q, now);
                let Some(front) = q.batches.front() else {
                    continue;
                };
                if !can_send {
                    continue;
                }
                if let Some(at) = front.ready_at(linger, flushing) {
                    if at > now {
                        next = next.min(at);
                        continue;
                    }
                }
                if front.attempts > 0 && q.in_flight > 0 {
                    continue; // a retry waits for the partition's in-flight batches
                }
                if q.in_flight >= max_in_flight {
                    continue;
                }
                let leader = info
                    .and_then(|t| t.partition(p as i32))
                    .filter(|pi| pi.leader >= 0)
                    .map(|pi| pi.leader);
                let Some(leader) = leader else {
                    need_metadata = true;
                    continue;
                };
                if self.node_in_flight.get(&leader).copied().unwrap_or(0) >= max_in_flight {
                    continue;
                }
                if self.connecting.contains(&leader) {
                    continue;
                }
                if !requests.contains_key(&leader)
                    && self
                        .inner
                        .cluster
                        .live_connection(ConnKey::Node(leader))
                        .is_none()
                {
                    if !connect.contains(&leader) {
                        connect.push(leader);
                    }
                    continue;
                }
                let entry = requests.entry(leader).or_insert_with(|| (Vec::new(), 0));
                if !entry.0.is_empty() && entry.1 + front.size + 64 > settings.max_request_size {
                    continue;
                }
                let Some(mut batch) = q.batches.pop_front() else {
                    continue;
                };
                if self.idempotent() && batch.base_sequence < 0 {
                    batch.base_sequence = q.next_sequence;
                    q.next_sequence = next_seq(q.next_sequence, batch.record_count);
                }
                q.in_flight += 1;
                entry.1 += batch.size + 64;
                entry.0.push((topic.clone(), batch));
            }
        }
        if bump {
            self.need_epoch_bump = true;
        }
        if need_metadata {
            self.maybe_refresh_metadata(now, true);
        }
        for node in connect {
            self.connecting.insert(node);
            let cluster = self.inner.cluster.clone();
            self.events.push(
                async move {
                    let result = cluster.connection(ConnKey::Node(node)).await.map(|_| ());
                    Event::Connected { node, result }
                }
                .boxed(),
            );
        }
        let sent = !requests.is_empty();
        for (node, (batches, _)) in requests {
            self.dispatch(node, batches);
        }
        (sent, next)
    }

    /// Fails batches that waited longer than `delivery.timeout.ms` (never in-flight ones).
    /// Returns whether an expired batch had a sequence (which calls for an epoch bump).
    fn expire(&self, q: &mut PartitionQueue, now: Instant) -> bool {
        let timeout = self.inner.settings.delivery_timeout;
        let mut bump = false;
        while q
            .batches
            .front()
            .is_some_and(|b| now.duration_since(b.created) >= timeout)
        {
            if let Some(b) = q.batches.pop_front() {
                bump |= b.base_sequence >= 0;
                let err = ClientError::Timeout(format!(
                    "{} record(s) for partition {} expired after delivery.timeout.ms ({timeout:?})",
                    b.record_count, b.partition
                ));
                self.finish(b, Err(err));
            }
        }
        bump
    }

    fn dispatch(&mut self, node: i32, mut batches: Drained) {
        let inner = self.inner.clone();
        let settings = &inner.settings;
        let producer = if self.idempotent() {
            self.producer
        } else {
            (-1, -1)
        };
        // Seal (compress, stamp, CRC) outside every lock.
        let mut sealed = Vec::with_capacity(batches.len());
        let mut failed = Vec::new();
        for (topic, mut batch) in batches.drain(..) {
            if batch.sealed.is_none() {
                if let Some(writer) = batch.writer.take() {
                    match writer.seal(
                        settings.compression,
                        producer.0,
                        producer.1,
                        batch.base_sequence,
                    ) {
                        Ok(bytes) => {
                            batch.producer = producer;
                            batch.size = bytes.len();
                            batch.sealed = Some(bytes);
                        }
                        Err(e) => {
                            failed.push((topic, batch, e));
                            continue;
                        }
                    }
                }
            } else if batch.producer != producer {
                if let Some(bytes) = &batch.sealed {
                    batch.sealed =
                        Some(restamp(bytes, producer.0, producer.1, batch.base_sequence));
                    batch.producer = producer;
                }
            }
            sealed.push((topic, batch));
        }
        let batches = sealed;
        for (topic, batch, e) in failed {
            tracing::error!(topic = %topic.name, error = %e, "sealing a batch failed");
            let mut batch = batch;
            batch.attempts = u32::MAX;
            self.on_batch(&topic, batch, Err(e));
        }
        if batches.is_empty() {
            return;
        }
        let Some(conn) = self.inner.cluster.live_connection(ConnKey::Node(node)) else {
            let err = ClientError::network(format!("node {node}"), "connection lost");
            self.on_produced(node, batches, Err(err), false);
            return;
        };
        let version = match conn.version(ApiKey::Produce) {
            Ok(v) => v,
            Err(e) => {
                self.on_produced(node, batches, Err(e), false);
                return;
            }
        };
        let acks = settings.acks.wire();
        let timeout_ms = settings
            .net
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let mut topics: Vec<TopicRecords<'_>> = Vec::new();
        for (topic, batch) in &batches {
            let records = PartitionRecords {
                partition: batch.partition,
                records: batch.sealed.clone().unwrap_or_default(),
            };
            match topics.last_mut() {
                Some(t) if t.name == &*topic.name => t.partitions.push(records),
                _ => topics.push(TopicRecords {
                    name: &topic.name,
                    partitions: vec![records],
                }),
            }
        }
        let correlation_id = conn.next_correlation_id();
        let chunks = request::encode(
            &ProduceHeader {
                version,
                correlation_id,
                client_id: conn.client_id(),
                acks,
                timeout_ms,
            },
            &topics,
        );
        drop(topics);
        *self.node_in_flight.entry(node).or_insert(0) += 1;
        self.total_in_flight += 1;
        let timeout = settings.net.request_timeout + Duration::from_millis(500);
        if settings.acks == Acks::None {
            let result = conn.send_only_encoded(chunks).map(|_| None);
            self.events.push(
                async move {
                    Event::Produced {
                        node,
                        batches,
                        result,
                    }
                }
                .boxed(),
            );
            return;
        }
        match conn.start_encoded::<ProduceRequest>(chunks, correlation_id, version, timeout) {
            Ok(fut) => self.events.push(
                async move {
                    let result = fut.await.map(Some);
                    Event::Produced {
                        node,
                        batches,
                        result,
                    }
                }
                .boxed(),
            ),
            Err(e) => self.on_produced(node, batches, Err(e), true),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Produced {
                node,
                batches,
                result,
            } => self.on_produced(node, batches, result, true),
            Event::Connected { node, result } => {
                self.connecting.remove(&node);
                if let Err(e) = result {
                    tracing::debug!(node, error = %e, "producer could not connect");
                    self.maybe_refresh_metadata(Instant::now(), true);
                }
            }
            Event::Metadata(result) => {
                self.refreshing = false;
                match result {
                    Ok(md) => {
                        self.next_refresh = Instant::now();
                        self.apply_metadata(&md);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "producer metadata refresh failed");
                        self.next_refresh = Instant::now() + self.inner.settings.net.retry_backoff;
                    }
                }
            }
            Event::ProducerId(result) => {
                self.pid_in_flight = false;
                match result {
                    Ok(pid) => {
                        tracing::debug!(producer_id = pid.0, epoch = pid.1, "producer id assigned");
                        self.producer = pid;
                        self.need_epoch_bump = false;
                        self.pid_attempts = 0;
                        self.reset_sequences();
                    }
                    Err(e) if e.is_retriable() || self.pid_attempts < 3 => {
                        tracing::debug!(error = %e, "InitProducerId failed; retrying");
                        let delay = self.inner.settings.net.retry_delay(self.pid_attempts);
                        self.pid_attempts += 1;
                        self.next_pid_attempt = Instant::now() + delay;
                        if !e.is_retriable() {
                            // An epoch bump the broker refuses: start over with a new id.
                            self.producer = (-1, -1);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "idempotent producer cannot get a producer id");
                        self.inner
                            .set_fatal(ClientError::Fatal(format!("InitProducerId failed: {e}")));
                    }
                }
            }
        }
    }

    /// After a new producer id or epoch: every partition restarts at sequence 0; batches
    /// waiting for a retry get new sequences in order.
    fn reset_sequences(&mut self) {
        let producer = self.producer;
        for topic in self.topics() {
            let queues = topic.partitions.read().clone();
            for q in queues {
                let mut q = q.lock();
                q.last_acked_sequence = -1;
                let mut seq = 0;
                for b in q.batches.iter_mut() {
                    if b.base_sequence >= 0 {
                        b.base_sequence = seq;
                        seq = next_seq(seq, b.record_count);
                        if let Some(bytes) = &b.sealed {
                            b.sealed =
                                Some(restamp(bytes, producer.0, producer.1, b.base_sequence));
                            b.producer = producer;
                        }
                    }
                }
                q.next_sequence = seq;
            }
        }
    }

    fn apply_metadata(&self, md: &Metadata) {
        for topic in self.topics() {
            if let Some(info) = md.topics.get(&*topic.name) {
                let count = info
                    .partitions
                    .iter()
                    .map(|p| p.partition + 1)
                    .max()
                    .unwrap_or(0);
                topic.grow(count.max(0) as usize);
                *topic.available.write() = info
                    .partitions
                    .iter()
                    .filter(|p| p.leader >= 0)
                    .map(|p| p.partition)
                    .collect();
            }
        }
    }

    fn on_produced(
        &mut self,
        node: i32,
        batches: Drained,
        result: Result<Option<ProduceResponse>>,
        counted: bool,
    ) {
        if counted {
            if let Some(n) = self.node_in_flight.get_mut(&node) {
                *n = n.saturating_sub(1);
            }
            self.total_in_flight = self.total_in_flight.saturating_sub(1);
        }
        match result {
            Err(e) => {
                if needs_metadata_refresh(&e) {
                    self.maybe_refresh_metadata(Instant::now(), true);
                }
                for (topic, batch) in batches {
                    self.on_batch(&topic, batch, Err(e.clone()));
                }
            }
            Ok(None) => {
                for (topic, batch) in batches {
                    self.on_batch(&topic, batch, Ok((-1, -1)));
                }
            }
            Ok(Some(response)) => {
                let mut refresh = false;
                let mut results = Vec::with_capacity(batches.len());
                for (topic, batch) in batches {
                    let found = response
                        .responses
                        .iter()
                        .filter(|t| t.name.as_str() == &*topic.name)
                        .flat_map(|t| t.partition_responses.iter())
                        .find(|p| p.index == batch.partition);
                    let outcome = match found {
                        Some(p)
                            if p.error_code == 0
                                || p.error_code == ErrorCode::DuplicateSequenceNumber.code() =>
                        {
                            Ok((p.base_offset, p.log_append_time_ms))
                        }
                        Some(p) => Err(ClientError::kafka(
                            p.error_code,
                            p.error_message.as_ref().map(|m| m.as_str()),
                            format!("{}-{}", topic.name, p.index),
                        )),
                        None => Err(ClientError::protocol(format!(
                            "no produce response for {}-{}",
                            topic.name, batch.partition
                        ))),
                    };
                    if let Err(e) = &outcome {
                        refresh |= needs_metadata_refresh(e);
                    }
                    results.push((topic, batch, outcome));
                }
                for (topic, batch, outcome) in results {
                    self.on_batch(&topic, batch, outcome);
                }
                if refresh {
                    self.maybe_refresh_metadata(Instant::now(), true);
                }
            }
        }
    }

    /// Completes, retries or fails one batch after its request returned.
    fn on_batch(&mut self, topic: &TopicQueues, mut batch: Batch, outcome: BatchOutcome) {
        let Some(queue) = topic.queue(batch.partition) else {
            self.finish(
                batch,
                Err(ClientError::protocol("partition queue vanished")),
            );
            return;
        };
        let mut q = queue.lock();
        q.in_flight = q.in_flight.saturating_sub(1);
        let err = match outcome {
            Ok(ok) => {
                if batch.base_sequence >= 0 {
                    q.last_acked_sequence = next_seq(batch.base_sequence, batch.record_count - 1);
                }
                drop(q);
                self.finish(batch, Ok(ok));
                return;
            }
            Err(e) => e,
        };
        let code = err.code();
        let idempotent = self.idempotent() && batch.base_sequence >= 0;
        let retriable = match code {
            Some(ErrorCode::OutOfOrderSequenceNumber) if idempotent => {
                let expected = next_seq(q.last_acked_sequence, 1);
                if batch.base_sequence == expected {
                    // The broker lost what came before this batch: it cannot be retried
                    // safely; start a new epoch for what follows.
                    self.need_epoch_bump = true;
                    false
                } else {
                    true // an earlier batch failed; this one is resent after it
                }
            }
            Some(ErrorCode::UnknownProducerId) | Some(ErrorCode::InvalidProducerEpoch)
                if idempotent =>
            {
                self.need_epoch_bump = true;
                true
            }
            _ => err.is_retriable(),
        };
        let expired = batch.created.elapsed() >= self.inner.settings.delivery_timeout;
        let closing_hard = self.inner.fatal.lock().is_some();
        if retriable && !expired && !closing_hard && batch.attempts < self.inner.settings.retries {
            let delay = self.inner.settings.net.retry_delay(batch.attempts);
            batch.attempts += 1;
            batch.retry_at = Some(Instant::now() + delay);
            tracing::debug!(topic = %topic.name, partition = batch.partition, attempt = batch.attempts, error = %err, "retrying batch");
            q.requeue(batch);
            return;
        }
        if idempotent {
            // A hole in the sequence: later batches need a new epoch.
            self.need_epoch_bump = true;
        }
        drop(q);
        tracing::debug!(topic = %topic.name, partition = batch.partition, error = %err, "batch failed");
        self.finish(batch, Err(err));
    }
}

/// InitProducerId for an idempotent (non-transactional) producer; bumps the epoch of
/// `current` when the broker supports it (v3+), else asks for a new id.
async fn init_producer_id(
    cluster: &crate::cluster::Cluster,
    current: (i64, i16),
    timeout: Duration,
) -> Result<(i64, i16)> {
    let conn = cluster.any_connection().await?;
    let version = conn.version(ApiKey::InitProducerId)?;
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    if version >= 3 && current.0 >= 0 {
        req.producer_id = current.0.into();
        req.producer_epoch = current.1;
    }
    let response = conn.request_at(&req, version, timeout).await?;
    ClientError::check(response.error_code, None, "InitProducerId")?;
    Ok((*response.producer_id, response.producer_epoch))
}
