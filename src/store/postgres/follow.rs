//! How a PostgreSQL replica keeps its mirror current: it follows the catalogue's
//! notifications (whichever replica wrote) and re-reads what they name, and its own writes
//! change the mirror before they commit, tracked so that a re-read racing them is not applied
//! (see `own_changes`).
//!
//! With vectors in memory (`DATABASE_VECTOR_SEARCH=memory`) the database stays the truth and
//! the copy follows it. The replica's own writes change the copy *before* their transaction
//! commits, while holding the row's lock, and every change (its own and every other
//! replica's) is read back from the database when its notification arrives, one after the
//! other. A later write of the same row waits for the lock, so its notification, and the
//! re-read it causes, come after any earlier write's own change of the copy: the last
//! re-read of a tool always sets what the database holds.

use std::{sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use super::{
    own_changes::OwnChanges,
    rows::{TOOL_COLUMNS, VECTOR_COLUMNS, tool_from_row, vector_from_row},
};
use crate::{
    domain::Tool,
    index::{catalogue::CatalogueIndex, shared_vectors::StoredVector, vector::VectorIndex},
    store::{StoreResult, mirror::Mirror},
};

/// The channel migration 0002's triggers announce catalogue changes on.
const CHANGE_CHANNEL: &str = "tool_catalogue_changed";
/// The channel migration 0005's trigger announces a tool's new embedding model on: no change
/// of the catalogue, but the tool as served shows its model.
const EMBEDDING_CHANNEL: &str = "tool_embedding_changed";

pub(super) async fn listen_for_changes(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([CHANGE_CHANNEL, EMBEDDING_CHANNEL])
        .await?;
    Ok(listener)
}

/// The catalogue index of every stored tool, decoded one at a time: the whole catalogue
/// decoded at once took several times the memory the index keeps.
async fn read_catalogue(pool: &PgPool) -> StoreResult<CatalogueIndex> {
    let query = format!("SELECT {TOOL_COLUMNS} FROM tools");
    let mut rows = sqlx::query(&query).fetch(pool);
    let mut index = CatalogueIndex::default();
    while let Some(row) = rows.try_next().await? {
        index.add(&tool_from_row(&row)?);
    }
    tracing::debug!(tools = index.len(), "catalogue index loaded");
    Ok(index)
}

/// One tool as stored; `None` once deleted.
async fn read_tool(pool: &PgPool, id: Uuid) -> StoreResult<Option<Tool>> {
    let row = sqlx::query(&format!("SELECT {TOOL_COLUMNS} FROM tools WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(tool_from_row).transpose()?)
}

/// Every stored vector, in a fresh index.
async fn read_vectors(pool: &PgPool) -> StoreResult<VectorIndex> {
    // Rows are taken one at a time: all of them at once would hold every vector twice.
    let query = format!(
        "SELECT {VECTOR_COLUMNS} FROM tools \
         WHERE embedding IS NOT NULL AND embedding_model IS NOT NULL"
    );
    let mut rows = sqlx::query(&query).fetch(pool);
    let mut index = VectorIndex::default();
    while let Some(row) = rows.try_next().await? {
        if let Some((id, vector, meta)) = vector_from_row(&row)? {
            index.upsert(id, &vector, meta);
        }
    }
    Ok(index)
}

/// One tool's vector.
async fn read_vector(pool: &PgPool, id: Uuid) -> StoreResult<StoredVector> {
    let row = sqlx::query(&format!(
        "SELECT {VECTOR_COLUMNS} FROM tools \
         WHERE id = $1 AND embedding IS NOT NULL AND embedding_model IS NOT NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(vector_from_row).transpose()?.flatten())
}

/// Follows the catalogue's notifications, whichever replica caused them: the tool named is
/// dropped from the tool cache and read again into the catalogue index (and the replica's
/// vectors), and subscribers are told of changed definitions. After a lost connection it
/// listens again, then re-reads everything (notifications sent meanwhile are gone) and
/// signals a change.
pub(super) async fn follow_changes(pool: PgPool, mut listener: PgListener, followers: Followers) {
    loop {
        let (refreshed, catalogue_changed) = match listener.try_recv().await {
            Ok(Some(notification)) => {
                let id = Uuid::parse_str(notification.payload()).ok();
                // A stored embedding changes no definition: nothing to re-index, nobody to tell.
                let catalogue_changed = notification.channel() != EMBEDDING_CHANNEL;
                let refreshed = match id {
                    Some(id) => followers.refresh(&pool, id, catalogue_changed).await,
                    None => followers.reload(&pool).await,
                };
                (refreshed, catalogue_changed)
            }
            Ok(None) | Err(_) => {
                // Until listening again, other replicas' changes go unheard: tools are read
                // from the database meanwhile (calls included: a tool switched off elsewhere
                // must not run from a stale copy).
                followers.mirror.tool_cache().suspend();
                let Some(again) = listen_again(&pool).await else {
                    return;
                };
                listener = again;
                (followers.reload(&pool).await, true)
            }
        };
        if let Err(err) = refreshed {
            tracing::warn!(%err, "catalogue refresh failed; re-reading the catalogue");
            followers.retry_reload(&pool).await;
        }
        if catalogue_changed {
            followers.mirror.signal_change();
        }
    }
}

/// What a replica keeps current from its own writes and the catalogue's notifications.
#[derive(Clone)]
pub(super) struct Followers {
    /// The catalogue index, the vectors when searched in memory, the tool cache and the
    /// change signal.
    pub(super) mirror: Mirror,
    own_changes: Arc<OwnChanges>,
}

impl Followers {
    pub(super) fn new(mirror: Mirror) -> Self {
        Self {
            mirror,
            own_changes: Arc::default(),
        }
    }

    /// An own write of these tools is about to change the copies, before its transaction
    /// commits.
    pub(super) fn begin_write(&self, pool: &PgPool, ids: Vec<Uuid>) -> OwnWrite {
        for id in &ids {
            self.own_changes.begin_write(*id);
        }
        OwnWrite {
            followers: self.clone(),
            pool: pool.clone(),
            ids,
            applied: false,
        }
    }

    /// Follows one tool's change: `definition` when the catalogue's channel named it (its
    /// text, filters or existence), otherwise only its embedding changed.
    async fn refresh(&self, pool: &PgPool, id: Uuid, definition: bool) -> StoreResult<()> {
        self.mirror.tool_cache().drop_tool(&id);
        let start = self.own_changes.begin_read();
        let tool = match definition {
            true => read_tool(pool, id).await.map(Some),
            false => Ok(None),
        };
        let vector = match self.mirror.vectors() {
            Some(_) => read_vector(pool, id).await.map(Some),
            None => Ok(None),
        };
        self.own_changes.end_read(start, |changed| {
            let (tool, vector) = (tool?, vector?);
            if !changed.contains(&id) {
                self.mirror.apply_read(id, tool, vector);
            }
            Ok(())
        })
    }

    /// Re-reads everything: changes may have gone unheard.
    pub(super) async fn reload(&self, pool: &PgPool) -> StoreResult<()> {
        self.mirror.tool_cache().clear();
        let start = self.own_changes.begin_read();
        let catalogue = read_catalogue(pool).await;
        let vectors = match self.mirror.vectors() {
            Some(_) => read_vectors(pool).await.map(Some),
            None => Ok(None),
        };
        self.own_changes.end_read(start, |changed| {
            let (catalogue, vectors) = (catalogue?, vectors?);
            let keep: Vec<Uuid> = changed.ids().copied().collect();
            self.mirror.replace(catalogue, vectors, &keep);
            Ok(())
        })
    }

    /// Re-reads everything until it succeeds (the database may be restarting).
    async fn retry_reload(&self, pool: &PgPool) {
        while !pool.is_closed() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.reload(pool).await {
                Ok(()) => return,
                Err(err) => tracing::debug!(%err, "catalogue reload failed; retrying"),
            }
        }
    }
}

/// An own write of some tools whose changes of the copies may be ahead of the database.
/// Dropped before [`OwnWrite::applied`] (its commit failed, or the caller was abandoned), the
/// tools are read back, since the database may have kept what it had.
#[must_use = "an own write settles once its commit is applied"]
pub(super) struct OwnWrite {
    followers: Followers,
    pool: PgPool,
    ids: Vec<Uuid>,
    applied: bool,
}

impl OwnWrite {
    /// The write committed and every copy shows it.
    pub(super) fn applied(mut self) {
        self.applied = true;
    }
}

impl Drop for OwnWrite {
    fn drop(&mut self) {
        for id in &self.ids {
            self.followers.own_changes.settle(*id);
        }
        if self.applied {
            return;
        }
        // Spawned, so that the re-reads run to their end whatever becomes of the caller.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (followers, pool) = (self.followers.clone(), self.pool.clone());
            let ids = std::mem::take(&mut self.ids);
            runtime.spawn(async move {
                for id in ids {
                    if let Err(err) = followers.refresh(&pool, id, true).await {
                        // The notification connection is likely lost too; its return
                        // reloads everything.
                        tracing::warn!(%err, "cannot re-read a tool after a failed write");
                        return;
                    }
                }
            });
        }
    }
}

/// A new listener once the database answers again; `None` when the store is closing.
async fn listen_again(pool: &PgPool) -> Option<PgListener> {
    while !pool.is_closed() {
        match listen_for_changes(pool).await {
            Ok(listener) => return Some(listener),
            Err(err) => {
                tracing::warn!(%err, "cannot listen for catalogue changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    None
}
