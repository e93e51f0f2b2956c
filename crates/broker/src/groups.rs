//! The group coordinator service: drives the pure `fjord-coordinator` state machine.

use crate::broker::Broker;
use crate::config::BrokerConfig;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Owns the coordinator and its driver task.
pub(crate) struct GroupService {}

impl GroupService {
    pub(crate) fn new(_config: &BrokerConfig) -> Self {
        GroupService {}
    }

    pub(crate) fn start(
        &self,
        _broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let _ = shutdown.changed().await;
        })
    }
}
