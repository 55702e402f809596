//! Facts about the running appliance: liveness and public identity.

use std::time::Duration;

use crate::store::{Store, instance::Instance};

use super::ServiceError;

/// How long a health check waits for the database before declaring it unavailable.
pub const HEALTH_DB_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct SystemService {
    store: Store,
    instance: Instance,
}

impl SystemService {
    pub fn new(store: Store, instance: Instance) -> Self {
        Self { store, instance }
    }

    /// Succeeds when the database answers a query within [`HEALTH_DB_TIMEOUT`].
    pub async fn health(&self) -> Result<(), ServiceError> {
        match tokio::time::timeout(HEALTH_DB_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "health check: database failed");
                Err(ServiceError::Unavailable("the database is not answering"))
            }
            Err(_) => Err(ServiceError::Unavailable("the database is not answering")),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.instance
    }
}
