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

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::TryStreamExt;
use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use super::{
    own_changes::OwnChanges,
    rows::{TOOL_COLUMNS, VECTOR_COLUMNS, tool_from_row, vector_from_row},
};
use crate::{
    domain::Tool,
    index::{catalogue::CatalogueIndex, shared_vectors::VectorRow, vector::VectorIndex},
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

/// These tools as stored, by id; a deleted one is missing.
async fn read_tools(pool: &PgPool, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Tool>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {TOOL_COLUMNS} FROM tools WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| tool_from_row(row).map(|tool| (tool.id, tool)))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
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
        if let Some((id, vector, description, meta)) = vector_from_row(&row)? {
            index.upsert(id, &vector, description.as_deref(), meta);
        }
    }
    Ok(index)
}

/// These tools' vectors, by id; a tool without one is missing.
async fn read_vectors_of(pool: &PgPool, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, VectorRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {VECTOR_COLUMNS} FROM tools \
         WHERE id = ANY($1) AND embedding IS NOT NULL AND embedding_model IS NOT NULL"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut vectors = HashMap::with_capacity(rows.len());
    for row in &rows {
        if let Some(stored) = vector_from_row(row)? {
            vectors.insert(stored.0, stored);
        }
    }
    Ok(vectors)
}

/// The most notifications followed with one read of the tools they name.
const NOTIFICATIONS_READ_TOGETHER: usize = 1_000;

/// Follows the catalogue's notifications, whichever replica caused them: the tool named is
/// dropped from the tool cache and read again into the catalogue index (and the replica's
/// vectors), and subscribers are told of changed definitions. After a lost connection it
/// listens again, then re-reads everything (notifications sent meanwhile are gone) and
/// signals a change.
pub(super) async fn follow_changes(pool: PgPool, mut listener: PgListener, followers: Followers) {
    loop {
        let (refreshed, catalogue_changed) = match listener.try_recv().await {
            Ok(Some(first)) => {
                // The notifications that arrived with it are followed together: a batch of
                // writes announces each of its tools, and one read serves them all.
                let mut named: Vec<(Uuid, bool)> = Vec::new();
                let mut position: HashMap<Uuid, usize> = HashMap::new();
                let mut unnamed = false;
                let mut catalogue_changed = false;
                let mut next = Some(first);
                while let Some(notification) = next.take() {
                    // A stored embedding changes no definition: nothing to re-index, nobody
                    // to tell.
                    let definition = notification.channel() != EMBEDDING_CHANNEL;
                    catalogue_changed |= definition;
                    match Uuid::parse_str(notification.payload()) {
                        Ok(id) => match position.get(&id) {
                            Some(&at) => named[at].1 |= definition,
                            None => {
                                position.insert(id, named.len());
                                named.push((id, definition));
                            }
                        },
                        Err(_) => unnamed = true,
                    }
                    if named.len() < NOTIFICATIONS_READ_TOGETHER {
                        next = listener.next_buffered();
                    }
                }
                let refreshed = match unnamed {
                    true => followers.reload(&pool).await,
                    false => followers.refresh(&pool, &named).await,
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

    /// Follows changes of these tools, each with `true` when the catalogue's channel named
    /// it (its text, filters or existence), otherwise only its embedding changed. The tools
    /// and their vectors are read in one query each.
    async fn refresh(&self, pool: &PgPool, changes: &[(Uuid, bool)]) -> StoreResult<()> {
        for (id, _) in changes {
            self.mirror.tool_cache().drop_tool(id);
        }
        let start = self.own_changes.begin_read();
        let redefined: Vec<Uuid> = changes
            .iter()
            .filter(|(_, definition)| *definition)
            .map(|(id, _)| *id)
            .collect();
        let tools = read_tools(pool, &redefined).await;
        let vectors = match self.mirror.vectors() {
            Some(_) => {
                let ids: Vec<Uuid> = changes.iter().map(|(id, _)| *id).collect();
                read_vectors_of(pool, &ids).await.map(Some)
            }
            None => Ok(None),
        };
        self.own_changes.end_read(start, |changed| {
            let (mut tools, mut vectors) = (tools?, vectors?);
            for (id, definition) in changes {
                if changed.contains(id) {
                    continue;
                }
                let tool = definition.then(|| tools.remove(id));
                let vector = vectors.as_mut().map(|vectors| vectors.remove(id));
                self.mirror.apply_read(*id, tool, vector);
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
                let changes: Vec<(Uuid, bool)> = ids.into_iter().map(|id| (id, true)).collect();
                if let Err(err) = followers.refresh(&pool, &changes).await {
                    // The notification connection is likely lost too; its return reloads
                    // everything.
                    tracing::warn!(%err, "cannot re-read tools after a failed write");
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
