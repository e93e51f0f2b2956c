//! FileStreamSource and FileStreamSink, with Kafka's names and settings (`file`, `topic`,
//! `topics`, `batch.size`). Source offsets are `{"position": <byte offset>}` for the
//! partition `{"filename": <file>}`, so a restarted task resumes after the last committed line.

use crate::config::{ConfigDef, ConfigType, Importance, Props, PropsExt, Validator};
use crate::connector::{Connector, SinkTask, SourceTask, SourceTaskContext};
use crate::data::{ConnectRecord, Schema, SchemaType, SinkRecord, SourceRecord, Value};
use crate::error::{ConnectError, Result};
use futures::future::BoxFuture;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

fn source_def() -> ConfigDef {
    ConfigDef::new()
        .define("file", ConfigType::String, None, Importance::High, "Source filename.")
        .with_validator(Validator::NonEmpty)
        .define("topic", ConfigType::List, None, Importance::High, "The topic to publish data to")
        .with_validator(Validator::NonEmpty)
        .define(
            "batch.size",
            ConfigType::Int,
            Some("2000"),
            Importance::Low,
            "The maximum number of records the source task can read from the file each time it is polled",
        )
        .with_validator(Validator::Range { min: 1, max: i64::from(i32::MAX) })
}

fn sink_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            "file",
            ConfigType::String,
            None,
            Importance::High,
            "Destination filename.",
        )
        .with_validator(Validator::NonEmpty)
}

/// `org.apache.kafka.connect.file.FileStreamSourceConnector`.
#[derive(Debug, Default)]
pub struct FileStreamSourceConnector {
    props: Props,
}

impl Connector for FileStreamSourceConnector {
    fn config_def(&self) -> ConfigDef {
        source_def()
    }
    fn start(&mut self, props: &Props) -> Result<()> {
        source_def().check(props)?;
        if props.list("topic").len() != 1 {
            return Err(ConnectError::config("topic", "'topic' in FileStreamSourceConnector configuration requires definition of a single topic"));
        }
        self.props = props.clone();
        Ok(())
    }
    fn task_configs(&self, _max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone()])
    }
}

/// Reads new lines of a file.
#[derive(Debug, Default)]
pub struct FileStreamSourceTask {
    file: String,
    topic: String,
    batch_size: usize,
    position: u64,
    pending: Vec<u8>,
}

impl SourceTask for FileStreamSourceTask {
    fn start(&mut self, props: Props, ctx: SourceTaskContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.file = props.required("file")?.to_string();
            self.topic = props.required("topic")?.trim().to_string();
            self.batch_size =
                usize::try_from(props.i64_or("batch.size", 2000)?.max(1)).unwrap_or(2000);
            self.position = ctx
                .offsets
                .offset(&json!({"filename": self.file}))
                .and_then(|o| o.get("position").and_then(|p| p.as_u64()))
                .unwrap_or(0);
            Ok(())
        })
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            match tokio::fs::File::open(&self.file).await {
                Ok(mut f) => {
                    let read_from = self.position + self.pending.len() as u64;
                    f.seek(std::io::SeekFrom::Start(read_from)).await?;
                    let mut buf = Vec::new();
                    f.take(1 << 20).read_to_end(&mut buf).await?;
                    self.pending.extend_from_slice(&buf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ConnectError::External(format!(
                        "cannot open {}: {e}",
                        self.file
                    )))
                }
            }
            while out.len() < self.batch_size {
                let Some(nl) = self.pending.iter().position(|b| *b == b'\n') else {
                    break;
                };
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                self.position += line.len() as u64;
                let text = String::from_utf8_lossy(&line[..line.len() - 1])
                    .trim_end_matches('\r')
                    .to_string();
                let mut record = ConnectRecord::new(self.topic.clone(), Value::String(text));
                record.value_schema = Some(Schema::of(SchemaType::String));
                out.push(SourceRecord {
                    source_partition: json!({"filename": self.file}),
                    source_offset: json!({"position": self.position}),
                    record,
                });
            }
            if out.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(out)
        })
    }
}

/// `org.apache.kafka.connect.file.FileStreamSinkConnector`.
#[derive(Debug, Default)]
pub struct FileStreamSinkConnector {
    props: Props,
}

impl Connector for FileStreamSinkConnector {
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }
    fn start(&mut self, props: &Props) -> Result<()> {
        sink_def().check(props)?;
        self.props = props.clone();
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }
}

/// Appends record values as lines.
#[derive(Debug, Default)]
pub struct FileStreamSinkTask {
    file: Option<tokio::fs::File>,
}

impl SinkTask for FileStreamSinkTask {
    fn start(&mut self, props: Props) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let path = props.required("file")?.to_string();
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
                .map_err(|e| ConnectError::External(format!("cannot open {path}: {e}")))?;
            self.file = Some(f);
            Ok(())
        })
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let f = self
                .file
                .as_mut()
                .ok_or_else(|| ConnectError::Unavailable("sink task not started".into()))?;
            let mut buf = String::new();
            for r in records {
                buf.push_str(&r.record.value.to_text());
                buf.push('\n');
            }
            f.write_all(buf.as_bytes()).await?;
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if let Some(f) = self.file.as_mut() {
                f.flush().await?;
                f.sync_data().await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::OffsetReader;
    use std::sync::Arc;

    struct Fixed(Option<serde_json::Value>);
    impl OffsetReader for Fixed {
        fn offset(&self, _: &serde_json::Value) -> Option<serde_json::Value> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn source_reads_complete_lines_and_resumes_from_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut props = Props::new();
        props.insert("file".into(), path.display().to_string());
        props.insert("topic".into(), "t".into());
        let mut task = FileStreamSourceTask::default();
        let ctx = SourceTaskContext {
            offsets: Arc::new(Fixed(None)),
        };
        task.start(props.clone(), ctx).await.unwrap();
        let recs = task.poll().await.unwrap();
        let lines: Vec<_> = recs.iter().map(|r| r.record.value.to_text()).collect();
        assert_eq!(lines, vec!["one", "two"]);
        assert_eq!(recs[1].source_offset, json!({"position": 8}));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let recs = task.poll().await.unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].record.value, Value::from("three"));

        let mut task = FileStreamSourceTask::default();
        let ctx = SourceTaskContext {
            offsets: Arc::new(Fixed(Some(json!({"position": 4})))),
        };
        task.start(props, ctx).await.unwrap();
        let recs = task.poll().await.unwrap();
        assert_eq!(recs[0].record.value, Value::from("two"));
    }

    #[test]
    fn source_connector_needs_one_topic_and_a_file() {
        let mut c = FileStreamSourceConnector::default();
        let mut p = Props::new();
        p.insert("topic".into(), "a,b".into());
        assert!(c.start(&p).unwrap_err().to_string().contains("file"));
        p.insert("file".into(), "/tmp/x".into());
        assert!(c.start(&p).unwrap_err().to_string().contains("topic"));
    }
}
