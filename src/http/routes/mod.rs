//! The operator routes under `/admin`, one file per resource: tools, their versions,
//! embeddings and neighbours, executions and statistics, call series, imports.

pub mod embeddings;
pub mod executions;
pub mod import;
pub mod stats;
pub mod tools;
pub mod versions;

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// Every `/admin` route.
pub fn admin() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tools::router())
        .merge(executions::router())
        .merge(embeddings::router())
        .merge(import::router())
        .merge(versions::router())
        .merge(stats::router())
}
