//! One TCP connection to one broker: pipelined requests, responses matched in order.
//!
//! A writer task owns the socket's write half and a reader task its read half. A request is
//! encoded by the caller (with the next correlation id), handed to the writer, which records
//! it as in flight *before* writing it; the reader takes the oldest in-flight entry for each
//! response frame, checks the correlation id and hands the raw frame back to the caller, who
//! decodes it. Kafka brokers answer a connection's requests in order, so a FIFO is enough.
//!
//! The connection negotiates API versions (ApiVersions, KIP-511 fallback) before it is handed
//! out. Any I/O error, an unexpected correlation id or a request timeout closes the whole
//! connection and fails everything in flight with a retriable network error; the owner
//! (`cluster`) reconnects with back-off on the next use.

use crate::error::{ClientError, Result};
use bytes::{Buf, Bytes, BytesMut};
use fjord_protocol::frame::{decode_response, encode_request};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Request, StrBytes};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// Largest response frame accepted (Kafka's `fetch.max.bytes` default is 50 MiB; leave room).
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// The API version range this client implements for each API it uses. Ranges stop below
/// versions whose semantics the client does not implement (topic ids in Fetch/Produce ≥ 13,
/// OffsetCommit/OffsetFetch ≥ 10).
pub(crate) fn client_range(key: ApiKey) -> Option<(i16, i16)> {
    use ApiKey::*;
    Some(match key {
        Produce => (3, 11),
        Fetch => (4, 12),
        ListOffsets => (1, 7),
        Metadata => (1, 12),
        OffsetCommit => (2, 9),
        OffsetFetch => (1, 7),
        FindCoordinator => (0, 4),
        JoinGroup => (0, 9),
        Heartbeat => (0, 4),
        LeaveGroup => (0, 5),
        SyncGroup => (0, 5),
        DescribeGroups => (0, 5),
        ListGroups => (0, 4),
        ApiVersions => (0, 3),
        CreateTopics => (2, 7),
        DeleteTopics => (1, 5),
        DeleteRecords => (0, 2),
        InitProducerId => (0, 4),
        OffsetForLeaderEpoch => (2, 4),
        DescribeConfigs => (1, 4),
        AlterConfigs => (0, 2),
        CreatePartitions => (0, 3),
        DeleteGroups => (0, 2),
        IncrementalAlterConfigs => (0, 1),
        OffsetDelete => (0, 0),
        DescribeCluster => (0, 1),
        _ => return None,
    })
}

/// Kafka's name of an API, for errors.
pub(crate) fn api_name(key: ApiKey) -> String {
    format!("{key:?}")
}

/// The API key of a generated request type.
pub(crate) fn api_key_of<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY)
        .map_err(|_| ClientError::protocol(format!("unknown API key {}", R::KEY)))
}

/// A string for the generated messages.
pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

type Reply = oneshot::Sender<Result<Bytes>>;

struct InFlight {
    correlation_id: i32,
    reply: Reply,
}

struct Shared {
    /// `host:port`, for errors.
    addr: String,
    /// Bytes not yet written, in order (requests are written directly while it is empty).
    backlog: Mutex<VecDeque<Bytes>>,
    write_half: OwnedWriteHalf,
    /// Wakes the flush task when the backlog gets data.
    backlog_ready: Notify,
    /// In-flight requests, oldest first; `None` once closed (and drained).
    in_flight: Mutex<Option<VecDeque<InFlight>>>,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
}

impl Shared {
    /// Closes the connection: fails everything in flight. Idempotent.
    fn close(&self, reason: &str) {
        let drained = {
            let mut guard = self.in_flight.lock();
            self.closed.store(true, Ordering::Release);
            guard.take()
        };
        {
            let mut r = self.close_reason.lock();
            if r.is_none() {
                *r = Some(reason.to_string());
            }
        }
        if let Some(pending) = drained {
            if !pending.is_empty() {
                tracing::debug!(broker = %self.addr, in_flight = pending.len(), "connection closed: {reason}");
            }
            for p in pending {
                let _ = p.reply.send(Err(ClientError::network(&self.addr, reason)));
            }
        }
    }

    fn error(&self) -> ClientError {
        let reason = self
            .close_reason
            .lock()
            .clone()
            .unwrap_or_else(|| "connection closed".to_string());
        ClientError::network(&self.addr, reason)
    }
}

struct Inner {
    shared: Arc<Shared>,
    node_id: i32,
    next_correlation_id: AtomicI32,
    client_id: StrBytes,
    versions: OnceLock<HashMap<i16, (i16, i16)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close("connection dropped");
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

/// A cheap-to-clone handle on one broker connection.
#[derive(Clone)]
pub(crate) struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.shared.addr)
            .field("node_id", &self.inner.node_id)
            .finish()
    }
}

impl Connection {
    /// Connects to `addr`, starts the I/O tasks and negotiates API versions.
    pub(crate) async fn connect(
        addr: &str,
        node_id: i32,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Connection> {
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ClientError::network(addr, format!("connect failed: {e}"))),
            Err(_) => {
                return Err(ClientError::network(
                    addr,
                    format!("connect timed out after {connect_timeout:?}"),
                ))
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%addr, error = %e, "set_nodelay failed");
        }
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            backlog: Mutex::new(VecDeque::new()),
            write_half,
            backlog_ready: Notify::new(),
            in_flight: Mutex::new(Some(VecDeque::new())),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
        });
        let writer = tokio::spawn(flush_loop(shared.clone()));
        let reader = tokio::spawn(read_loop(shared.clone(), read_half));
        let conn = Connection {
            inner: Arc::new(Inner {
                shared,
                node_id,
                next_correlation_id: AtomicI32::new(0),
                client_id: sb(client_id),
                versions: OnceLock::new(),
                tasks: Mutex::new(vec![writer, reader]),
            }),
        };
        conn.negotiate_versions(request_timeout).await?;
        Ok(conn)
    }

    async fn negotiate_versions(&self, timeout: Duration) -> Result<()> {
        let mut version = 3i16;
        for _ in 0..3 {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req.client_software_name = StrBytes::from_static_str("fjord-client");
                req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
            }
            let frame = self
                .round_trip::<ApiVersionsRequest>(&req, version, timeout)
                .await?;
            // A broker that does not know our version answers in the v0 layout (KIP-511).
            let response = match decode_response::<ApiVersionsResponse>(
                ApiKey::ApiVersions,
                version,
                frame.clone(),
            ) {
                Ok((_, r)) if r.error_code == 0 => r,
                _ => {
                    let (_, r) =
                        decode_response::<ApiVersionsResponse>(ApiKey::ApiVersions, 0, frame)?;
                    if r.error_code == fjord_common::ErrorCode::UnsupportedVersion.code()
                        && version > 0
                    {
                        let broker_max = r
                            .api_keys
                            .iter()
                            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                            .map(|k| k.max_version)
                            .unwrap_or(0);
                        version = broker_max.clamp(0, version - 1);
                        continue;
                    }
                    ClientError::check(r.error_code, None, "ApiVersions")?;
                    r
                }
            };
            let map = response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            let _ = self.inner.versions.set(map);
            return Ok(());
        }
        Err(ClientError::UnsupportedVersion {
            api: "ApiVersions".into(),
        })
    }

    /// The broker's node id (negative for bootstrap connections).
    pub(crate) fn node_id(&self) -> i32 {
        self.inner.node_id
    }

    /// `host:port`.
    pub(crate) fn addr(&self) -> &str {
        &self.inner.shared.addr
    }

    /// True once the connection failed or was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// Closes the connection, failing everything in flight.
    pub(crate) fn close(&self, reason: &str) {
        self.inner.shared.close(reason);
        for t in self.inner.tasks.lock().iter() {
            t.abort();
        }
    }

    /// The highest version of `key` both sides support.
    pub(crate) fn version(&self, key: ApiKey) -> Result<i16> {
        let unsupported = || ClientError::UnsupportedVersion { api: api_name(key) };
        let (cmin, cmax) = client_range(key).ok_or_else(unsupported)?;
        let versions = self.inner.versions.get().ok_or_else(unsupported)?;
        let (bmin, bmax) = versions
            .get(&(key as i16))
            .copied()
            .ok_or_else(unsupported)?;
        let (lo, hi) = (cmin.max(bmin), cmax.min(bmax));
        if lo > hi {
            return Err(unsupported());
        }
        Ok(hi)
    }

    /// The correlation id for the next request.
    pub(crate) fn next_correlation_id(&self) -> i32 {
        self.inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            & i32::MAX
    }

    /// The `client.id` sent in request headers.
    pub(crate) fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    fn encode<R: Request>(&self, req: &R, version: i16) -> Result<(Bytes, i32)> {
        let correlation_id = self.next_correlation_id();
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.inner.client_id.clone());
        let frame = encode_request(&header, req)?;
        Ok((frame, correlation_id))
    }

    /// Registers the request as in flight and writes it: directly when nothing is queued
    /// before it, else behind the backlog (written by the flush task).
    fn submit(
        &self,
        frame: Bytes,
        correlation_id: i32,
    ) -> Result<oneshot::Receiver<Result<Bytes>>> {
        let (reply, rx) = oneshot::channel();
        self.write(frame, Some((correlation_id, reply)))?;
        Ok(rx)
    }

    fn write(&self, frame: Bytes, reply: Option<(i32, Reply)>) -> Result<()> {
        self.write_chunks(vec![frame], reply)
    }

    /// Registers the reply (if any) and writes `chunks`, one frame in pieces, with one
    /// vectored write when nothing is queued before them; what the socket does not take goes
    /// to the backlog, in order.
    fn write_chunks(&self, chunks: Vec<Bytes>, reply: Option<(i32, Reply)>) -> Result<()> {
        let shared = &self.inner.shared;
        let mut backlog = shared.backlog.lock();
        {
            // In flight before written: the response cannot come first.
            let mut q = shared.in_flight.lock();
            let Some(q) = q.as_mut() else {
                return Err(shared.error());
            };
            if let Some((correlation_id, reply)) = reply {
                q.push_back(InFlight {
                    correlation_id,
                    reply,
                });
            }
        }
        let mut written = 0;
        if backlog.is_empty() {
            let slices: Vec<std::io::IoSlice<'_>> =
                chunks.iter().map(|c| std::io::IoSlice::new(c)).collect();
            match shared.write_half.try_write_vectored(&slices) {
                Ok(n) => written = n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drop(backlog);
                    // Fails the request just registered too; its caller sees the error.
                    shared.close(&format!("write failed: {e}"));
                    return Ok(());
                }
            }
        }
        for mut chunk in chunks {
            if written >= chunk.len() {
                written -= chunk.len();
                continue;
            }
            chunk.advance(written);
            written = 0;
            backlog.push_back(chunk);
        }
        if backlog.is_empty() {
            return Ok(());
        }
        drop(backlog);
        shared.backlog_ready.notify_one();
        Ok(())
    }

    async fn await_reply(
        &self,
        rx: oneshot::Receiver<Result<Bytes>>,
        timeout: Duration,
        key: ApiKey,
    ) -> Result<Bytes> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.inner.shared.error()),
            Err(_) => {
                // Responses come in order: a missing one wedges the connection (as Java does,
                // disconnect and let everything in flight be retried).
                let reason = format!("{key:?} request timed out after {timeout:?}");
                self.close(&reason);
                Err(ClientError::Timeout(format!("{reason} ({})", self.addr())))
            }
        }
    }

    async fn round_trip<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let key = api_key_of::<R>()?;
        let (frame, correlation_id) = self.encode(req, version)?;
        let rx = self.submit(frame, correlation_id)?;
        self.await_reply(rx, timeout, key).await
    }

    /// Sends `req` at `version` and decodes the response.
    pub(crate) async fn request_at<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let key = api_key_of::<R>()?;
        let frame = self.round_trip(req, version, timeout).await?;
        let (_, response) = decode_response::<R::Response>(key, version, frame)?;
        Ok(response)
    }

    /// Queues `req` and returns a future for the decoded response. The request is queued (and
    /// so ordered after earlier ones) before this returns; pipelining is the caller's choice.
    pub(crate) fn start<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static>
    where
        R::Response: Send + 'static,
    {
        let key = api_key_of::<R>()?;
        let (frame, correlation_id) = self.encode(req, version)?;
        let rx = self.submit(frame, correlation_id)?;
        let this = self.clone();
        Ok(async move {
            let frame = this.await_reply(rx, timeout, key).await?;
            let (_, response) = decode_response::<R::Response>(key, version, frame)?;
            Ok(response)
        })
    }

    /// [`Connection::start`] for a request already encoded as chunks (see
    /// `producer::request`) under `correlation_id`.
    pub(crate) fn start_encoded<R: Request>(
        &self,
        chunks: Vec<Bytes>,
        correlation_id: i32,
        version: i16,
        timeout: Duration,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static>
    where
        R::Response: Send + 'static,
    {
        let key = api_key_of::<R>()?;
        let (reply, rx) = oneshot::channel();
        self.write_chunks(chunks, Some((correlation_id, reply)))?;
        let this = self.clone();
        Ok(async move {
            let frame = this.await_reply(rx, timeout, key).await?;
            let (_, response) = decode_response::<R::Response>(key, version, frame)?;
            Ok(response)
        })
    }

    /// Writes an encoded request that gets no response (produce with acks=0).
    pub(crate) fn send_only_encoded(&self, chunks: Vec<Bytes>) -> Result<()> {
        self.write_chunks(chunks, None)
    }
}

async fn flush_loop(shared: Arc<Shared>) {
    loop {
        shared.backlog_ready.notified().await;
        loop {
            if let Err(e) = shared.write_half.writable().await {
                shared.close(&format!("write failed: {e}"));
                return;
            }
            let mut backlog = shared.backlog.lock();
            while !backlog.is_empty() {
                let slices: Vec<std::io::IoSlice<'_>> = backlog
                    .iter()
                    .take(64)
                    .map(|c| std::io::IoSlice::new(c))
                    .collect();
                let mut written = match shared.write_half.try_write_vectored(&slices) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        drop(backlog);
                        shared.close(&format!("write failed: {e}"));
                        return;
                    }
                };
                while let Some(front) = backlog.front_mut() {
                    if written < front.len() {
                        front.advance(written);
                        break;
                    }
                    written -= front.len();
                    backlog.pop_front();
                }
            }
            if backlog.is_empty() {
                break;
            }
        }
    }
}

async fn read_loop(shared: Arc<Shared>, read_half: OwnedReadHalf) {
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let reason = loop {
        let mut len = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut len).await {
            break if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "connection closed by the broker".to_string()
            } else {
                format!("read failed: {e}")
            };
        }
        let len = i32::from_be_bytes(len);
        if len < 4 || len as usize > MAX_RESPONSE_BYTES {
            break format!("invalid response frame size {len}");
        }
        let len = len as usize;
        let mut buf = BytesMut::with_capacity(len);
        let mut failed = None;
        while buf.len() < len {
            let mut limited = (&mut reader).take((len - buf.len()) as u64);
            match limited.read_buf(&mut buf).await {
                Ok(0) => {
                    failed = Some("connection closed by the broker mid-frame".to_string());
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    failed = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        if let Some(reason) = failed {
            break reason;
        }
        let frame = buf.freeze();
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let pending = {
            let mut guard = shared.in_flight.lock();
            guard.as_mut().and_then(|q| q.pop_front())
        };
        match pending {
            Some(p) if p.correlation_id == correlation_id => {
                let _ = p.reply.send(Ok(frame));
            }
            Some(p) => {
                let reason = format!(
                    "response correlation id {correlation_id} does not match the oldest request ({})",
                    p.correlation_id
                );
                let _ = p
                    .reply
                    .send(Err(ClientError::network(&shared.addr, &reason)));
                break reason;
            }
            None => break format!("unexpected response with correlation id {correlation_id}"),
        }
    };
    shared.close(&reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers ApiVersions (v3, every API at 0..=20), then waits until told to
    /// and returns everything else the client sent.
    async fn raw_server() -> (String, oneshot::Sender<()>, JoinHandle<Vec<u8>>) {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (go, wait) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut len = [0u8; 4];
            socket.read_exact(&mut len).await.expect("request size");
            let mut request = vec![0u8; i32::from_be_bytes(len) as usize];
            socket.read_exact(&mut request).await.expect("request");
            let correlation_id =
                i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
            let mut response = ApiVersionsResponse::default();
            for key in 0..=20i16 {
                let mut v = ApiVersion::default();
                v.api_key = key;
                v.max_version = 20;
                response.api_keys.push(v);
            }
            let frame = fjord_protocol::frame::encode_response(
                ApiKey::ApiVersions,
                3,
                correlation_id,
                &response,
            )
            .expect("encode");
            socket.write_all(&frame).await.expect("respond");
            let _ = wait.await;
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.expect("read");
            rest
        });
        (addr, go, server)
    }

    #[tokio::test]
    async fn chunked_writes_arrive_whole_and_in_order_past_a_full_socket() {
        let (addr, go, server) = raw_server().await;
        let timeout = Duration::from_secs(10);
        let conn = Connection::connect(&addr, 1, "test", timeout, timeout)
            .await
            .expect("connect");
        // 24 MiB in chunks of many sizes, written while the server reads nothing: the socket
        // fills, vectored writes stop part-way through a chunk and the rest goes through the
        // backlog, behind which later frames queue.
        let mut expected = Vec::new();
        for frame in 0..12u32 {
            let chunks: Vec<Bytes> = [7usize, 1 << 20, 3, 1 << 20, 0, 5]
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let fill = (frame * 16 + i as u32) as u8;
                    Bytes::from((0..*n).map(|j| fill ^ (j % 251) as u8).collect::<Vec<u8>>())
                })
                .collect();
            for c in &chunks {
                expected.extend_from_slice(c);
            }
            conn.write_chunks(chunks, None).expect("queued");
        }
        let _ = go.send(());
        // Wait for the backlog to drain before closing the socket.
        while !conn.inner.shared.backlog.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        drop(conn);
        let received = server.await.expect("server");
        assert_eq!(received.len(), expected.len());
        assert!(
            received == expected,
            "bytes arrived out of order or damaged"
        );
    }

    #[test]
    fn client_ranges_stay_below_topic_id_versions() {
        assert_eq!(client_range(ApiKey::Fetch), Some((4, 12)));
        assert_eq!(client_range(ApiKey::Produce), Some((3, 11)));
        assert!(client_range(ApiKey::ConsumerGroupHeartbeat).is_none());
    }
}
