//! `fjord connect standalone|distributed`: run a Fjord Connect worker, as
//! `connect-standalone.sh` / `connect-distributed.sh` do.

use crate::util::CliResult;
use clap::Subcommand;
use fjord_connect::config::read_properties_file;
use std::path::PathBuf;

/// The `connect` modes.
#[derive(Subcommand, Debug)]
pub(crate) enum ConnectCommand {
    /// One worker: connectors from properties files, source offsets in a local file.
    Standalone {
        /// The worker properties (bootstrap.servers, converters, offset.storage.file.filename, listeners).
        #[arg(value_name = "worker.properties")]
        worker: PathBuf,
        /// Connector properties files (name, connector.class, ...).
        #[arg(value_name = "connector.properties")]
        connectors: Vec<PathBuf>,
    },
    /// A member of a cluster of workers sharing group.id; configs, offsets and statuses in topics.
    Distributed {
        /// The worker properties (bootstrap.servers, group.id, *.storage.topic, listeners).
        #[arg(value_name = "worker.properties")]
        worker: PathBuf,
    },
}

/// Runs a worker until SIGINT/SIGTERM, then stops its tasks cleanly.
pub(crate) async fn run(command: ConnectCommand) -> CliResult {
    let running = match command {
        ConnectCommand::Standalone { worker, connectors } => {
            let worker = read_properties_file(&worker)?;
            let connectors = connectors
                .iter()
                .map(|p| read_properties_file(p))
                .collect::<Result<Vec<_>, _>>()?;
            fjord_connect::runtime::start_standalone(worker, connectors).await?
        }
        ConnectCommand::Distributed { worker } => {
            fjord_connect::distributed::start_distributed(read_properties_file(&worker)?).await?
        }
    };
    tracing::info!(
        rest = %running.url(),
        worker_id = %running.worker().worker_id(),
        "Fjord Connect worker started"
    );
    wait_for_signal().await;
    tracing::info!("stopping Fjord Connect worker");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
