//! The connector and task traits that sources and sinks implement.
//!
//! A *connector* reads its configuration and splits the work into task configurations; the
//! worker then runs one *task* per configuration. Source tasks are polled for records (with a
//! source partition and offset each); sink tasks are given records and flushed before their
//! Kafka offsets are committed.

use crate::config::{ConfigDef, Props};
use crate::data::{SinkRecord, SourceRecord};
use crate::error::Result;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Whether a connector reads from an external system or writes to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorType {
    /// External system → topics.
    Source,
    /// Topics → external system.
    Sink,
}

impl ConnectorType {
    /// `source` or `sink`, as the REST API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        }
    }
}

/// A connector: validates its configuration and splits the work into tasks.
pub trait Connector: Send {
    /// The declared configuration (used by validation and the validate endpoint).
    fn config_def(&self) -> ConfigDef;
    /// Starts with the connector's configuration (already validated against `config_def`).
    fn start(&mut self, props: &Props) -> Result<()>;
    /// Up to `max_tasks` task configurations.
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>>;
    /// Stops.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Looks up committed source offsets for a source task.
pub trait OffsetReader: Send + Sync {
    /// The last committed offset of `partition` (a JSON object), if any.
    fn offset(&self, partition: &serde_json::Value) -> Option<serde_json::Value>;
}

/// What a source task gets at start.
#[derive(Clone)]
pub struct SourceTaskContext {
    /// Committed offsets of this connector.
    pub offsets: Arc<dyn OffsetReader>,
}

impl std::fmt::Debug for SourceTaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceTaskContext")
    }
}

/// A source task: reads records from an external system.
pub trait SourceTask: Send {
    /// Starts with the task configuration; resume from `context.offsets`.
    fn start(&mut self, props: Props, context: SourceTaskContext) -> BoxFuture<'_, Result<()>>;
    /// Returns the next records; may wait a little (e.g. a poll interval) and return none.
    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>>;
    /// Called after offsets up to the acknowledged records were committed.
    fn commit(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Stops and releases resources.
    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A sink task: writes records to an external system.
pub trait SinkTask: Send {
    /// Starts with the task configuration.
    fn start(&mut self, props: Props) -> BoxFuture<'_, Result<()>>;
    /// Writes (or buffers) records.
    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>>;
    /// Makes everything given to `put` durable; offsets are committed only after this succeeds.
    fn flush(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Stops and releases resources.
    fn stop(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
