//! The built-in connector plugins, found by Kafka's class names or short aliases.

use crate::connector::{Connector, ConnectorType, SinkTask, SourceTask};

/// A task instance of either kind.
pub enum TaskInstance {
    /// A source task.
    Source(Box<dyn SourceTask>),
    /// A sink task.
    Sink(Box<dyn SinkTask>),
}

/// One installed connector plugin.
#[derive(Clone, Copy)]
pub struct Plugin {
    /// Full class name, as reported by `GET /connector-plugins`.
    pub class: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Source or sink.
    pub kind: ConnectorType,
    /// Creates a connector.
    pub new_connector: fn() -> Box<dyn Connector>,
    /// Creates a task.
    pub new_task: fn() -> TaskInstance,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({})", self.class)
    }
}

impl Plugin {
    /// Whether `name` names this plugin (full class, simple class name, or alias).
    pub fn matches(&self, name: &str) -> bool {
        let simple = self.class.rsplit('.').next().unwrap_or(self.class);
        name == self.class
            || name == simple
            || self.aliases.contains(&name)
            || simple.strip_suffix("Connector") == Some(name)
    }

    /// The version reported by the REST API.
    pub fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

/// Every built-in plugin.
pub fn builtin() -> &'static [Plugin] {
    static PLUGINS: &[Plugin] = &[
        Plugin {
            class: "org.apache.kafka.connect.file.FileStreamSinkConnector",
            aliases: &[],
            kind: ConnectorType::Sink,
            new_connector: || Box::new(crate::file::FileStreamSinkConnector::default()),
            new_task: || TaskInstance::Sink(Box::new(crate::file::FileStreamSinkTask::default())),
        },
        Plugin {
            class: "org.apache.kafka.connect.file.FileStreamSourceConnector",
            aliases: &[],
            kind: ConnectorType::Source,
            new_connector: || Box::new(crate::file::FileStreamSourceConnector::default()),
            new_task: || {
                TaskInstance::Source(Box::new(crate::file::FileStreamSourceTask::default()))
            },
        },
        Plugin {
            class: "io.fjord.connect.http.HttpSinkConnector",
            aliases: &["HttpSink"],
            kind: ConnectorType::Sink,
            new_connector: || Box::new(crate::http_sink::HttpSinkConnector::default()),
            new_task: || TaskInstance::Sink(Box::new(crate::http_sink::HttpSinkTask::default())),
        },
        Plugin {
            class: "io.fjord.connect.postgres.PostgresSinkConnector",
            aliases: &[
                "PostgresSink",
                "io.confluent.connect.jdbc.JdbcSinkConnector",
            ],
            kind: ConnectorType::Sink,
            new_connector: || Box::new(crate::postgres::PostgresSinkConnector::default()),
            new_task: || TaskInstance::Sink(Box::new(crate::postgres::PostgresSinkTask::default())),
        },
        Plugin {
            class: "io.fjord.connect.postgres.PostgresSourceConnector",
            aliases: &[
                "PostgresSource",
                "io.confluent.connect.jdbc.JdbcSourceConnector",
            ],
            kind: ConnectorType::Source,
            new_connector: || Box::new(crate::postgres::PostgresSourceConnector::default()),
            new_task: || {
                TaskInstance::Source(Box::new(crate::postgres::PostgresSourceTask::default()))
            },
        },
    ];
    PLUGINS
}

/// The plugin named `name`.
pub fn find(name: &str) -> Option<&'static Plugin> {
    let name = name.trim();
    builtin().iter().find(|p| p.matches(name))
}
