//! Fetch: read whole batches from segments, long-poll until `min_bytes` or `max_wait_ms`.
//!
//! Waiting fetches register with each partition's notifier *before* reading, so an append
//! that lands between the read and the wait still wakes them: no lost wake-ups, no polling.

use super::{HandlerResult, RequestContext};
use crate::errors::storage_error_code;
use crate::fetch_response::{encode, FetchedPartition, FetchedTopic};
use crate::partition::Partition;
use bytes::Bytes;
use fjord_common::ErrorCode;
use futures::future::select_all;
use kafka_protocol::messages::FetchRequest;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::futures::Notified;

/// Fetch sessions (KIP-227) are optional for a broker: answering with session id 0 tells the
/// client to send full fetch requests, which every client supports.
const NO_SESSION: i32 = 0;

struct Wanted {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    max_bytes: i32,
    hosted: Option<Arc<Partition>>,
}

pub(crate) async fn handle(ctx: &RequestContext<'_>) -> HandlerResult {
    let request: FetchRequest = ctx.decode()?;
    let version = ctx.version();
    let correlation_id = ctx.request.correlation_id();
    if version >= 7 && request.session_id != NO_SESSION {
        let chunks = encode(
            version,
            correlation_id,
            ErrorCode::FetchSessionIdNotFound.code(),
            NO_SESSION,
            &[],
        );
        return Ok(Some(chunks));
    }
    if version >= 7 && request.session_id == NO_SESSION && request.session_epoch > 0 {
        let chunks = encode(
            version,
            correlation_id,
            ErrorCode::InvalidFetchSessionEpoch.code(),
            NO_SESSION,
            &[],
        );
        return Ok(Some(chunks));
    }
    let read_committed = version >= 4 && request.isolation_level == 1;
    let topic_names: Vec<Bytes> = request
        .topics
        .iter()
        .map(|t| t.topic.0.clone().into_bytes())
        .collect();
    let mut wanted = Vec::new();
    for (ti, topic) in request.topics.iter().enumerate() {
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic: ti,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                current_leader_epoch: if version >= 9 {
                    p.current_leader_epoch
                } else {
                    -1
                },
                max_bytes: p.partition_max_bytes,
                hosted: ctx.broker.partitions.get(topic.topic.as_str(), p.partition),
            });
        }
    }
    let max_bytes = if version >= 3 && request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;

    loop {
        // Register for wake-ups before reading (see module docs).
        let mut waiters: Vec<Pin<Box<Notified<'_>>>> = wanted
            .iter()
            .filter_map(|w| w.hosted.as_ref())
            .map(|p| Box::pin(p.data_arrived.notified()))
            .collect();
        for w in waiters.iter_mut() {
            w.as_mut().enable();
        }
        let (partitions, bytes, any_error) = read_all(&wanted, max_bytes, read_committed);
        let expired = tokio::time::Instant::now() >= deadline;
        if bytes >= min_bytes.max(1) || any_error || expired || waiters.is_empty() || min_bytes == 0
        {
            let mut topics: Vec<FetchedTopic> = topic_names
                .iter()
                .map(|name| FetchedTopic {
                    name: name.clone(),
                    partitions: Vec::new(),
                })
                .collect();
            for (w, fetched) in wanted.iter().zip(partitions) {
                topics[w.topic].partitions.push(fetched);
            }
            return Ok(Some(encode(
                version,
                correlation_id,
                0,
                NO_SESSION,
                &topics,
            )));
        }
        tokio::select! {
            _ = select_all(waiters) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
) -> (Vec<FetchedPartition>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut fetched = FetchedPartition {
            partition: w.partition,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            read_committed,
            records: Some(Bytes::new()),
        };
        let Some(p) = &w.hosted else {
            fetched.error_code = ErrorCode::UnknownTopicOrPartition.code();
            any_error = true;
            out.push(fetched);
            continue;
        };
        if let Err(code) = p.check_leader_epoch(w.current_leader_epoch) {
            fetched.error_code = code.code();
            any_error = true;
            out.push(fetched);
            continue;
        }
        let hw = p.high_watermark();
        fetched.high_watermark = hw;
        fetched.last_stable_offset = hw;
        let limit = (w.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
        // KIP-74: the first partition with data may exceed the limits by one batch so that
        // a batch larger than max.partition.fetch.bytes never blocks a consumer.
        let min_one = total == 0;
        let read = {
            let log = p.log.read();
            fetched.log_start_offset = log.log_start_offset();
            if limit == 0 && !min_one {
                Ok(None)
            } else {
                log.read(w.fetch_offset, limit, hw, min_one)
                    .map(|r| r.slice)
            }
        };
        match read {
            Ok(Some(slice)) => match slice.read_bytes() {
                Ok(data) => {
                    total += data.len();
                    fetched.records = Some(data);
                }
                Err(e) => {
                    tracing::error!(tp = %p.tp, error = %e, "reading segment failed");
                    fetched.error_code = ErrorCode::KafkaStorageError.code();
                    any_error = true;
                }
            },
            Ok(None) => {}
            Err(e) => {
                let code = storage_error_code(&e);
                if code != ErrorCode::OffsetOutOfRange {
                    tracing::error!(tp = %p.tp, error = %e, "fetch failed");
                }
                fetched.error_code = code.code();
                any_error = true;
            }
        }
        out.push(fetched);
    }
    (out, total, any_error)
}
