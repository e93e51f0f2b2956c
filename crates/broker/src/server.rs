//! TCP listener and per-connection request loop.
//!
//! A connection's requests are handled one at a time, in order, exactly as Kafka does (it
//! mutes a channel until the response is sent), so responses are naturally in request order.
//! A writer task owns the socket's write half and coalesces queued responses into few writes.
//! Anything wrong with a frame closes that one connection with a log line; other connections
//! are unaffected.

use crate::broker::Broker;
use crate::handlers;
use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// A response frame as one or more chunks (record data is never copied into a header buffer).
pub(crate) type ResponseChunks = Vec<Bytes>;

pub(crate) async fn accept_loop(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        serve_connection(broker, stream, peer, shutdown).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Why a connection is being closed.
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// Peer closed or I/O failed.
    Io(std::io::Error),
    /// A protocol violation; logged at warn.
    Protocol(String),
}

async fn serve_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel::<ResponseChunks>(128);
    let writer = tokio::spawn(write_loop(write_half, rx));
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let max = broker.config.socket_request_max_bytes;
    let mut buffer = BytesMut::new();
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, &mut buffer, max) => frame,
            _ = shutdown.changed() => break None,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break None,
            Err(reason) => break Some(reason),
        };
        match handlers::handle(&broker, frame, peer).await {
            Ok(Some(response)) => {
                if tx.send(response).await.is_err() {
                    break None;
                }
                // Let the writer send it now: woken from here it waits in this worker's LIFO
                // slot, which no other worker may take, until this task yields.
                tokio::task::yield_now().await;
            }
            Ok(None) => {}
            Err(reason) => break Some(reason),
        }
    };
    match reason {
        Some(CloseReason::Protocol(why)) => tracing::warn!(%peer, "closing connection: {why}"),
        Some(CloseReason::Io(e)) => tracing::debug!(%peer, error = %e, "connection closed"),
        None => tracing::debug!(%peer, "connection closed"),
    }
    drop(tx);
    let _ = writer.await;
}

/// Reads one frame into `buffer`'s allocation. Once the previous frame has been dropped the
/// same allocation is reused, so a stream of large produce requests does not allocate (and
/// fault in fresh pages) per request.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, CloseReason> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(CloseReason::Io(e)),
    }
    let len = i32::from_be_bytes(len);
    if len < 0 {
        return Err(CloseReason::Protocol(format!("negative frame size {len}")));
    }
    let len = len as usize;
    if len > max {
        return Err(CloseReason::Protocol(format!(
            "frame of {len} bytes is larger than socket.request.max.bytes ({max})"
        )));
    }
    buffer.clear();
    buffer.reserve(len);
    while buffer.len() < len {
        let want = len - buffer.len();
        let n = reader
            .read_buf(&mut (&mut *buffer).limit(want))
            .await
            .map_err(CloseReason::Io)?;
        if n == 0 {
            return Err(CloseReason::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(buffer.split().freeze()))
}

async fn write_loop(
    write_half: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<ResponseChunks>,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    while let Some(chunks) = rx.recv().await {
        let mut pending = Some(chunks);
        while let Some(chunks) = pending.take() {
            for chunk in chunks {
                if let Err(e) = writer.write_all(&chunk).await {
                    tracing::debug!(error = %e, "write failed");
                    return;
                }
            }
            pending = rx.try_recv().ok();
        }
        if let Err(e) = writer.flush().await {
            tracing::debug!(error = %e, "flush failed");
            return;
        }
    }
    let _ = writer.shutdown().await;
}
