//! Source offset storage: a local file (standalone) or a compacted topic (distributed).
//!
//! Keys are written as Kafka Connect writes them to `offset.storage.topic`:
//! `["<connector>", {<source partition>}]`, values are the source offset object.

use crate::connector::OffsetReader;
use crate::error::{ConnectError, Result};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where committed source offsets live.
pub trait OffsetStore: Send + Sync {
    /// The committed offset of `partition` for `connector`.
    fn get(&self, connector: &str, partition: &serde_json::Value) -> Option<serde_json::Value>;
    /// Durably records offsets; returns once they are stored.
    fn put(
        &self,
        connector: &str,
        entries: Vec<(serde_json::Value, serde_json::Value)>,
    ) -> BoxFuture<'_, Result<()>>;
    /// Every committed `(partition, offset)` of `connector`.
    fn entries(&self, connector: &str) -> Vec<(serde_json::Value, serde_json::Value)>;
    /// Catches up with offsets written by other workers (distributed mode).
    fn sync(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// The offset-topic key for a connector's source partition.
pub fn offset_key(connector: &str, partition: &serde_json::Value) -> String {
    serde_json::json!([connector, partition]).to_string()
}

/// Offsets kept in memory and (optionally) in a JSON file, as `offset.storage.file.filename`.
#[derive(Debug, Default)]
pub struct FileOffsetStore {
    path: Option<PathBuf>,
    data: Mutex<BTreeMap<String, serde_json::Value>>,
    write: tokio::sync::Mutex<()>,
}

impl FileOffsetStore {
    /// Loads the store from `path` (an absent file is an empty store).
    pub fn open(path: Option<PathBuf>) -> Result<FileOffsetStore> {
        let mut data = BTreeMap::new();
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) if !bytes.is_empty() => {
                    data = serde_json::from_slice(&bytes).map_err(|e| {
                        ConnectError::config(
                            "offset.storage.file.filename",
                            format!("{} is not a Fjord offsets file: {e}", p.display()),
                        )
                    })?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(FileOffsetStore {
            path,
            data: Mutex::new(data),
            write: tokio::sync::Mutex::new(()),
        })
    }
}

/// The `(partition, offset)` pairs of `connector` in a map keyed by [`offset_key`].
pub fn entries_of(
    data: &BTreeMap<String, serde_json::Value>,
    connector: &str,
) -> Vec<(serde_json::Value, serde_json::Value)> {
    data.iter()
        .filter_map(|(k, v)| {
            let key: serde_json::Value = serde_json::from_str(k).ok()?;
            (key.get(0)?.as_str()? == connector)
                .then(|| (key.get(1).cloned().unwrap_or_default(), v.clone()))
        })
        .collect()
}

impl OffsetStore for FileOffsetStore {
    fn entries(&self, connector: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
        entries_of(&self.data.lock(), connector)
    }

    fn get(&self, connector: &str, partition: &serde_json::Value) -> Option<serde_json::Value> {
        self.data
            .lock()
            .get(&offset_key(connector, partition))
            .cloned()
    }

    fn put(
        &self,
        connector: &str,
        entries: Vec<(serde_json::Value, serde_json::Value)>,
    ) -> BoxFuture<'_, Result<()>> {
        let connector = connector.to_string();
        Box::pin(async move {
            let _guard = self.write.lock().await;
            let snapshot = {
                let mut data = self.data.lock();
                for (p, o) in entries {
                    data.insert(offset_key(&connector, &p), o);
                }
                serde_json::to_vec_pretty(&*data)
                    .map_err(|e| ConnectError::External(e.to_string()))?
            };
            if let Some(path) = &self.path {
                let tmp = path.with_extension("tmp");
                tokio::fs::write(&tmp, &snapshot).await?;
                tokio::fs::File::open(&tmp).await?.sync_all().await?;
                tokio::fs::rename(&tmp, path).await?;
            }
            Ok(())
        })
    }
}

/// An [`OffsetReader`] for one connector over a store.
pub(crate) struct ConnectorOffsets {
    pub(crate) store: Arc<dyn OffsetStore>,
    pub(crate) connector: String,
}

impl OffsetReader for ConnectorOffsets {
    fn offset(&self, partition: &serde_json::Value) -> Option<serde_json::Value> {
        self.store.get(&self.connector, partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn file_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        let s = FileOffsetStore::open(Some(path.clone())).unwrap();
        s.put("c", vec![(json!({"f": 1}), json!({"pos": 10}))])
            .await
            .unwrap();
        s.put("c", vec![(json!({"f": 1}), json!({"pos": 20}))])
            .await
            .unwrap();
        let s = FileOffsetStore::open(Some(path.clone())).unwrap();
        assert_eq!(s.get("c", &json!({"f": 1})), Some(json!({"pos": 20})));
        assert_eq!(s.entries("c"), vec![(json!({"f": 1}), json!({"pos": 20}))]);
        assert!(s.entries("other").is_empty());
        assert_eq!(s.get("other", &json!({"f": 1})), None);
        std::fs::write(&path, "garbage").unwrap();
        let err = FileOffsetStore::open(Some(path)).unwrap_err().to_string();
        assert!(err.contains("offset.storage.file.filename"), "{err}");
    }
}
