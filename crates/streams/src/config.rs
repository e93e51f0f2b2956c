//! [`StreamsConfig`]: the settings of a streams application, with Kafka Streams' key names.

use crate::error::{Result, StreamsError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of a [`crate::KafkaStreams`] application.
///
/// Keys, as in Kafka Streams: `application.id` (also the consumer group and the prefix of
/// internal topics), `bootstrap.servers`, `commit.interval.ms` (default 30000),
/// `state.dir` (default `<temp dir>/fjord-streams`), `replication.factor` of internal topics
/// (default -1: the broker's default), `poll.ms` (default 100),
/// `default.deserialization.exception.handler` (`logAndFail`, the default: a record that
/// does not decode stops the application; `logAndContinue`: it is logged and skipped). Keys starting with
/// `consumer.` or `producer.` are passed to the embedded clients without the prefix (e.g.
/// `consumer.session.timeout.ms`).
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub(crate) application_id: String,
    pub(crate) bootstrap_servers: String,
    pub(crate) commit_interval: Duration,
    pub(crate) state_dir: PathBuf,
    pub(crate) replication_factor: i16,
    pub(crate) poll: Duration,
    /// Skip (log) records that fail to decode instead of stopping.
    pub(crate) continue_on_bad_records: bool,
    pub(crate) consumer: BTreeMap<String, String>,
    pub(crate) producer: BTreeMap<String, String>,
}

impl StreamsConfig {
    /// Settings with defaults for everything but the application id and the brokers.
    pub fn new(application_id: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        StreamsConfig {
            application_id: application_id.into(),
            bootstrap_servers: bootstrap_servers.into(),
            commit_interval: Duration::from_millis(30_000),
            state_dir: std::env::temp_dir().join("fjord-streams"),
            replication_factor: -1,
            poll: Duration::from_millis(100),
            continue_on_bad_records: false,
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }

    /// Settings from `key=value` pairs; `application.id` and `bootstrap.servers` are
    /// required, unknown keys are errors.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut app = None;
        let mut bootstrap = None;
        let mut rest = Vec::new();
        for (k, v) in pairs {
            match k.as_ref() {
                "application.id" => app = Some(v.into()),
                "bootstrap.servers" => bootstrap = Some(v.into()),
                other => rest.push((other.to_string(), v.into())),
            }
        }
        let app = app.ok_or_else(|| StreamsError::config("application.id", "missing"))?;
        let bootstrap =
            bootstrap.ok_or_else(|| StreamsError::config("bootstrap.servers", "missing"))?;
        let mut config = StreamsConfig::new(app, bootstrap);
        for (k, v) in rest {
            config = config.set(&k, v)?;
        }
        Ok(config)
    }

    /// Sets one key by name.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let number = |v: &str| -> Result<u64> {
            v.parse::<u64>()
                .map_err(|e| StreamsError::config(key, format!("{v:?} is not a number: {e}")))
        };
        match key {
            "commit.interval.ms" => self.commit_interval = Duration::from_millis(number(&value)?),
            "poll.ms" => self.poll = Duration::from_millis(number(&value)?),
            "state.dir" => self.state_dir = PathBuf::from(value),
            "replication.factor" => {
                self.replication_factor = value
                    .parse()
                    .map_err(|e| StreamsError::config(key, format!("{value:?}: {e}")))?
            }
            "default.deserialization.exception.handler" => {
                self.continue_on_bad_records = match value.rsplit('.').next().unwrap_or_default() {
                    "logAndFail" | "LogAndFailExceptionHandler" => false,
                    "logAndContinue" | "LogAndContinueExceptionHandler" => true,
                    other => {
                        return Err(StreamsError::config(
                            key,
                            format!("{other:?}: use logAndFail or logAndContinue"),
                        ))
                    }
                }
            }
            "application.id" => self.application_id = value,
            "bootstrap.servers" => self.bootstrap_servers = value,
            k if k.starts_with("consumer.") => {
                self.consumer
                    .insert(k["consumer.".len()..].to_string(), value);
            }
            k if k.starts_with("producer.") => {
                self.producer
                    .insert(k["producer.".len()..].to_string(), value);
            }
            _ => return Err(StreamsError::config(key, "unknown key")),
        }
        Ok(self)
    }

    /// `commit.interval.ms`: how often offsets are committed (after flushing outputs and
    /// stores).
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// `state.dir`: where persistent stores live (`<state.dir>/<application.id>/<task>`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_parsed_and_unknown_keys_rejected() {
        let c = StreamsConfig::from_pairs([
            ("application.id", "app"),
            ("bootstrap.servers", "h:1"),
            ("commit.interval.ms", "250"),
            ("consumer.session.timeout.ms", "6000"),
        ])
        .unwrap();
        assert_eq!(c.commit_interval, Duration::from_millis(250));
        assert_eq!(c.consumer["session.timeout.ms"], "6000");
        assert!(StreamsConfig::from_pairs([("bootstrap.servers", "h:1")]).is_err());
        assert!(StreamsConfig::new("a", "b").set("nope", "1").is_err());
        let skip = StreamsConfig::new("a", "b")
            .set(
                "default.deserialization.exception.handler",
                "logAndContinue",
            )
            .unwrap();
        assert!(skip.continue_on_bad_records);
        assert!(StreamsConfig::new("a", "b")
            .set("default.deserialization.exception.handler", "sometimes")
            .is_err());
        assert!(StreamsConfig::new("a", "b")
            .set("commit.interval.ms", "x")
            .is_err());
    }
}
