//! Tells connected MCP clients that the tool list changed.
//!
//! Session-era clients get `notifications/tools/list_changed` on their session; 2026-07-28
//! clients get it on their `subscriptions/listen` stream. The store's change feed drives
//! both (with PostgreSQL it carries every replica's changes); bursts such as an import are
//! folded into one notification.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{Peer, RoleServer};
use tokio::sync::broadcast;

use crate::store::ToolStore;

/// Changes this close together become one notification.
const FOLD_WINDOW: Duration = Duration::from_millis(50);

pub struct ChangeHub {
    sessions: Mutex<Vec<Peer<RoleServer>>>,
    listeners: broadcast::Sender<()>,
}

impl ChangeHub {
    /// A hub fed by the store's change feed until the store's feed closes.
    pub fn start(store: &Arc<dyn ToolStore>) -> Arc<Self> {
        let hub = Arc::new(Self {
            sessions: Mutex::new(Vec::new()),
            listeners: broadcast::channel(16).0,
        });
        let mut changes = store.catalogue_changes();
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                tokio::time::sleep(FOLD_WINDOW).await;
                while changes.try_recv().is_ok() {}
                let Some(hub) = weak.upgrade() else {
                    return;
                };
                hub.announce().await;
            }
        });
        hub
    }

    /// Remembers a session-era client until its session ends.
    pub fn add_session(&self, peer: Peer<RoleServer>) {
        self.sessions
            .lock()
            .expect("session list lock poisoned")
            .push(peer);
    }

    /// A receiver for a 2026-07-28 `subscriptions/listen` stream.
    pub fn listen(&self) -> broadcast::Receiver<()> {
        self.listeners.subscribe()
    }

    async fn announce(&self) {
        let _ = self.listeners.send(());
        let sessions: Vec<Peer<RoleServer>> = {
            let mut sessions = self.sessions.lock().expect("session list lock poisoned");
            sessions.retain(|peer| !peer.is_transport_closed());
            sessions.clone()
        };
        for peer in sessions {
            if let Err(err) = peer.notify_tool_list_changed().await {
                tracing::debug!(%err, "an MCP session went away before hearing of a change");
            }
        }
    }
}
