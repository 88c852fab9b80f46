//! Tells connected MCP clients that the tool list changed.
//!
//! Session-era clients get `notifications/tools/list_changed` on their session; 2026-07-28
//! clients get it on their `subscriptions/listen` stream. The store's change feed drives
//! both (with PostgreSQL it carries every replica's changes); bursts such as an import are
//! folded into one notification.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::{Peer, RoleServer};
use tokio::sync::broadcast;

use crate::store::ToolStore;

/// Changes this close together become one notification.
const FOLD_WINDOW: Duration = Duration::from_millis(50);

pub struct ChangeHub {
    sessions: Mutex<HashMap<u64, Peer<RoleServer>>>,
    next_session: AtomicU64,
    listeners: broadcast::Sender<()>,
}

/// A session's place in the hub, given up when the session's handler is dropped (when the
/// session ends), so a closed session's peer is not held until the next change.
pub struct SessionRegistration {
    hub: Weak<ChangeHub>,
    id: u64,
}

impl Drop for SessionRegistration {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.sessions
                .lock()
                .expect("session list lock poisoned")
                .remove(&self.id);
        }
    }
}

impl ChangeHub {
    /// A hub fed by the store's change feed until the store's feed closes.
    pub fn start(store: &Arc<dyn ToolStore>) -> Arc<Self> {
        let hub = Arc::new(Self {
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(0),
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

    /// Remembers a session-era client until the registration is dropped. Sessions whose
    /// transport closed are let go here too.
    pub fn add_session(self: &Arc<Self>, peer: Peer<RoleServer>) -> SessionRegistration {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let mut sessions = self.sessions.lock().expect("session list lock poisoned");
        sessions.retain(|_, peer| !peer.is_transport_closed());
        sessions.insert(id, peer);
        SessionRegistration {
            hub: Arc::downgrade(self),
            id,
        }
    }

    /// Session-era clients currently told of changes.
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .expect("session list lock poisoned")
            .len()
    }

    /// A receiver for a 2026-07-28 `subscriptions/listen` stream.
    pub fn listen(&self) -> broadcast::Receiver<()> {
        self.listeners.subscribe()
    }

    async fn announce(&self) {
        let _ = self.listeners.send(());
        let sessions: Vec<Peer<RoleServer>> = {
            let mut sessions = self.sessions.lock().expect("session list lock poisoned");
            sessions.retain(|_, peer| !peer.is_transport_closed());
            sessions.values().cloned().collect()
        };
        for peer in sessions {
            if let Err(err) = peer.notify_tool_list_changed().await {
                tracing::debug!(%err, "an MCP session went away before hearing of a change");
            }
        }
    }
}
