//! `HttpSink`: POSTs batches of record values as a JSON array to a URL, retrying with
//! exponential back-off. Settings: `http.api.url` (plain `http://`), `topics`,
//! `batch.max.size` (records per request, default 100), `max.retries` (default 5),
//! `retry.backoff.ms` (first back-off, doubled per retry up to 10 s; default 300),
//! `request.timeout.ms` (default 30000). Each element of the array is
//! `{"topic", "partition", "offset", "key", "value"}` with key and value as JSON.
//! A batch that still fails after the retries fails the task, so its offsets are not committed.

use crate::config::{ConfigDef, ConfigType, Importance, Props, PropsExt, Validator};
use crate::connector::{Connector, SinkTask};
use crate::data::SinkRecord;
use crate::error::{ConnectError, Result};
use futures::future::BoxFuture;
use serde_json::json;
use std::time::Duration;

fn def() -> ConfigDef {
    ConfigDef::new()
        .define(
            "http.api.url",
            ConfigType::String,
            None,
            Importance::High,
            "URL to POST batches to (http:// only).",
        )
        .with_validator(Validator::NonEmpty)
        .define(
            "batch.max.size",
            ConfigType::Int,
            Some("100"),
            Importance::Medium,
            "Records per request.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: 1_000_000,
        })
        .define(
            "max.retries",
            ConfigType::Int,
            Some("5"),
            Importance::Medium,
            "Retries of a failed request.",
        )
        .with_validator(Validator::Range { min: 0, max: 1000 })
        .define(
            "retry.backoff.ms",
            ConfigType::Int,
            Some("300"),
            Importance::Medium,
            "First back-off; doubles per retry (max 10 s).",
        )
        .with_validator(Validator::Range {
            min: 0,
            max: 600_000,
        })
        .define(
            "request.timeout.ms",
            ConfigType::Int,
            Some("30000"),
            Importance::Low,
            "Timeout of one request.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: 600_000,
        })
}

/// `HttpSink` connector.
#[derive(Debug, Default)]
pub struct HttpSinkConnector {
    props: Props,
}

impl Connector for HttpSinkConnector {
    fn config_def(&self) -> ConfigDef {
        def()
    }
    fn start(&mut self, props: &Props) -> Result<()> {
        def().check(props)?;
        if !props.required("http.api.url")?.starts_with("http://") {
            return Err(ConnectError::config(
                "http.api.url",
                "only http:// URLs are supported",
            ));
        }
        self.props = props.clone();
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }
}

/// Posts batches.
#[derive(Debug, Default)]
pub struct HttpSinkTask {
    url: String,
    batch: usize,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
}

/// The back-off before retry `attempt` (0-based): `first * 2^attempt`, at most 10 s.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    first
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(10))
}

impl HttpSinkTask {
    async fn post(&self, body: serde_json::Value) -> Result<()> {
        let mut attempt = 0;
        loop {
            let outcome = crate::http::request("POST", &self.url, Some(&body), self.timeout).await;
            let error = match outcome {
                Ok(r) if (200..300).contains(&r.status) => return Ok(()),
                Ok(r) => format!(
                    "HTTP {} from {}: {}",
                    r.status,
                    self.url,
                    String::from_utf8_lossy(&r.body)
                ),
                Err(e) => e.to_string(),
            };
            if attempt >= self.retries {
                return Err(ConnectError::External(format!(
                    "giving up after {} attempts: {error}",
                    attempt + 1
                )));
            }
            tracing::warn!(%error, attempt, "HTTP sink request failed, retrying");
            tokio::time::sleep(backoff(self.backoff, attempt)).await;
            attempt += 1;
        }
    }
}

impl SinkTask for HttpSinkTask {
    fn start(&mut self, props: Props) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.url = props.required("http.api.url")?.to_string();
            self.batch =
                usize::try_from(props.i64_or("batch.max.size", 100)?.max(1)).unwrap_or(100);
            self.retries = u32::try_from(props.i64_or("max.retries", 5)?.max(0)).unwrap_or(5);
            self.backoff =
                Duration::from_millis(props.i64_or("retry.backoff.ms", 300)?.max(0).unsigned_abs());
            self.timeout = Duration::from_millis(
                props
                    .i64_or("request.timeout.ms", 30_000)?
                    .max(1)
                    .unsigned_abs(),
            );
            Ok(())
        })
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            for chunk in records.chunks(self.batch) {
                let body: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|r| {
                        json!({
                            "topic": r.record.topic,
                            "partition": r.record.kafka_partition,
                            "offset": r.kafka_offset,
                            "key": r.record.key.to_json(),
                            "value": r.record.value.to_json(),
                        })
                    })
                    .collect();
                self.post(serde_json::Value::Array(body)).await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        // Every put returns only after its batches were accepted.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ConnectRecord, Value};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 0), Duration::from_millis(100));
        assert_eq!(backoff(b, 3), Duration::from_millis(800));
        assert_eq!(backoff(b, 30), Duration::from_secs(10));
    }

    /// A server that answers 503 to the first `fail` requests, then 200, and keeps bodies.
    async fn flaky_server(
        fail: usize,
    ) -> (
        String,
        Arc<parking_lot::Mutex<Vec<String>>>,
        Arc<AtomicUsize>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", listener.local_addr().unwrap());
        let bodies = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (b, h) = (bodies.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let n = h.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers, then Content-Length bytes of body.
                let body = loop {
                    let r = s.read(&mut chunk).await.unwrap_or(0);
                    if r == 0 {
                        break String::new();
                    }
                    buf.extend_from_slice(&chunk[..r]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break String::from_utf8_lossy(&buf[end + 4..end + 4 + len])
                                .to_string();
                        }
                    }
                };
                let status = if n < fail {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                if n >= fail {
                    b.lock().push(body);
                }
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        (url, bodies, hits)
    }

    fn records(n: i64) -> Vec<SinkRecord> {
        (0..n)
            .map(|i| SinkRecord {
                record: ConnectRecord::new("t", Value::Int64(i)),
                kafka_offset: i,
            })
            .collect()
    }

    #[tokio::test]
    async fn posts_batches_and_retries_failures() {
        let (url, bodies, hits) = flaky_server(2).await;
        let mut t = HttpSinkTask::default();
        let mut p = Props::new();
        p.insert("http.api.url".into(), url);
        p.insert("batch.max.size".into(), "2".into());
        p.insert("retry.backoff.ms".into(), "1".into());
        t.start(p).await.unwrap();
        t.put(records(3)).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 4, "two 503s, then two batches");
        let got: Vec<serde_json::Value> = bodies
            .lock()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(got[0].as_array().unwrap().len(), 2);
        assert_eq!(got[0][1]["value"], 1);
        assert_eq!(got[1][0]["offset"], 2);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries() {
        let (url, _, hits) = flaky_server(100).await;
        let mut t = HttpSinkTask::default();
        let mut p = Props::new();
        p.insert("http.api.url".into(), url);
        p.insert("max.retries".into(), "2".into());
        p.insert("retry.backoff.ms".into(), "1".into());
        t.start(p).await.unwrap();
        let err = t.put(records(1)).await.unwrap_err().to_string();
        assert!(
            err.contains("after 3 attempts") && err.contains("503"),
            "{err}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }
}
