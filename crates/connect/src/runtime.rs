//! Starting and stopping workers: standalone mode and the REST listener.

use crate::config::{Props, PropsExt};
use crate::error::{ConnectError, Result};
use crate::offsets::FileOffsetStore;
use crate::worker::{Worker, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A worker with its REST listener running.
pub struct RunningWorker {
    worker: Worker,
    addr: SocketAddr,
    stop_rest: Option<oneshot::Sender<()>>,
    rest: Option<JoinHandle<std::io::Result<()>>>,
    background: Vec<JoinHandle<()>>,
    aborts: Vec<tokio::task::AbortHandle>,
    /// Told to finish on a clean shutdown (then awaited); aborted on kill.
    graceful: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for RunningWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunningWorker({})", self.addr)
    }
}

impl RunningWorker {
    /// The worker.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The REST base URL (`http://host:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn add_background(&mut self, task: JoinHandle<()>) {
        self.background.push(task);
    }

    pub(crate) fn add_graceful(&mut self, stop: oneshot::Sender<()>, task: JoinHandle<()>) {
        self.graceful.push((stop, task));
    }

    pub(crate) fn add_abort(&mut self, task: tokio::task::AbortHandle) {
        self.aborts.push(task);
    }

    fn stop_background(&mut self) {
        for (_, g) in self.graceful.drain(..) {
            g.abort();
        }
        for b in self.background.drain(..) {
            b.abort();
        }
        for a in self.aborts.drain(..) {
            a.abort();
        }
    }

    /// Stops the REST listener and every task cleanly (tasks flush and commit).
    pub async fn shutdown(mut self) {
        self.worker.shutdown().await;
        for (stop, task) in std::mem::take(&mut self.graceful) {
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        self.stop_background();
        if let Some(tx) = self.stop_rest.take() {
            let _ = tx.send(());
        }
        if let Some(r) = self.rest.take() {
            let _ = r.await;
        }
    }

    /// Stops everything at once without flushing or committing, as a killed process would.
    pub fn kill(mut self) {
        self.worker.abort();
        self.stop_background();
        if let Some(r) = self.rest.take() {
            r.abort();
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.stop_background();
        if let Some(r) = self.rest.take() {
            r.abort();
        }
        self.worker.abort();
    }
}

/// Binds the REST listener of `config` (port 0 picks a free port and the worker id follows).
pub(crate) async fn bind_rest(
    mut config: WorkerConfig,
) -> Result<(WorkerConfig, tokio::net::TcpListener)> {
    let listener = tokio::net::TcpListener::bind(&config.rest_addr)
        .await
        .map_err(|e| {
            ConnectError::config(
                "listeners",
                format!("cannot listen on {}: {e}", config.rest_addr),
            )
        })?;
    let addr = listener.local_addr()?;
    if config.worker_id.ends_with(":0") {
        let host = config.worker_id.trim_end_matches(":0").to_string();
        config.worker_id = format!("{host}:{}", addr.port());
    }
    Ok((config, listener))
}

pub(crate) fn start_rest(
    worker: Worker,
    listener: tokio::net::TcpListener,
) -> Result<RunningWorker> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let rest = tokio::spawn(crate::rest::serve(worker.clone(), listener, async move {
        let _ = rx.await;
    }));
    Ok(RunningWorker {
        worker,
        addr,
        stop_rest: Some(tx),
        rest: Some(rest),
        background: Vec::new(),
        aborts: Vec::new(),
        graceful: Vec::new(),
    })
}

/// Starts a standalone worker: offsets in `offset.storage.file.filename` (in memory when
/// absent), connectors from `connectors` (each a `.properties` set with `name`).
pub async fn start_standalone(
    worker_props: Props,
    connectors: Vec<Props>,
) -> Result<RunningWorker> {
    let path = worker_props.get("offset.storage.file.filename").cloned();
    let offsets = Arc::new(FileOffsetStore::open(path.map(Into::into))?);
    let (config, listener) = bind_rest(WorkerConfig::from_props(worker_props)?).await?;
    let worker = Worker::new(config, offsets);
    for c in connectors {
        let name = c.required("name")?.to_string();
        worker.put_connector_config(&name, c).await?;
    }
    start_rest(worker, listener)
}
