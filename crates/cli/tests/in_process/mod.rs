//! An in-process broker for the end-to-end tests of the client and of the command line.
#![allow(dead_code)]

use std::net::SocketAddr;

pub(crate) type TestError = Box<dyn std::error::Error + Send + Sync>;

/// A broker serving on loopback with its data in a temporary directory.
pub(crate) struct TestBroker {
    running: Option<fjord_broker::RunningBroker>,
    pub(crate) addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// Logs to stderr when `FJORD_TEST_LOG` holds a filter (e.g. `fjord_client=debug`).
pub(crate) fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("FJORD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

impl TestBroker {
    /// A broker on a free port with a fresh directory.
    pub(crate) async fn start() -> Result<TestBroker, TestError> {
        Self::start_at(tempfile::tempdir()?, 0).await
    }

    /// A broker on `port` (0 = any) keeping its data in `dir` (for restarts).
    pub(crate) async fn start_at(
        dir: tempfile::TempDir,
        port: u16,
    ) -> Result<TestBroker, TestError> {
        init_logs();
        let config = fjord_broker::BrokerConfig::from_sources(
            None,
            &[
                format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
                format!("log.dirs={}", dir.path().display()),
                "group.initial.rebalance.delay.ms=0".into(),
            ],
        )?;
        let running = fjord_broker::Broker::open(config)?.serve().await?;
        let addr = running.local_addrs()[0];
        Ok(TestBroker {
            running: Some(running),
            addr,
            dir,
        })
    }

    /// The bootstrap address.
    pub(crate) fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the broker cleanly and hands back its directory.
    pub(crate) async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }

    /// Stops the broker cleanly.
    pub(crate) async fn stop(self) {
        drop(self.stop_keep_dir().await);
    }
}
