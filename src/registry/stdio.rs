//! Starting the stdio upstream servers that active tools name, when the registry serves.

use std::collections::HashSet;

use super::ToolRegistry;
use crate::domain::{Implementation, RegistryError};

impl ToolRegistry {
    /// Starts the child of every stdio server an active tool names (`STDIO_START=startup`).
    /// Servers whose command is not allowed are skipped (their calls say why).
    pub async fn start_stdio_servers(&self) -> Result<usize, RegistryError> {
        let mut servers = HashSet::new();
        self.visit_active(|tool| {
            if let Implementation::Mcp {
                stdio: Some(server),
                ..
            } = tool.implementation
            {
                servers.insert(server);
            }
        })
        .await?;
        let stdio = self.executor().stdio();
        let mut started = 0;
        for server in servers {
            match stdio.start(&server) {
                Ok(()) => started += 1,
                Err(refused) => tracing::warn!(
                    upstream = %server.name,
                    "not starting a stdio upstream: {refused}"
                ),
            }
        }
        Ok(started)
    }
}
