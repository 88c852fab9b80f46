//! The OpenAPI 3.1 description of the REST routes, generated from the handlers'
//! annotations, served at `GET /openapi.json` with a Swagger UI at `/docs` (its files are
//! compiled in, so the page works without internet).
//!
//! `/mcp` itself is not described here: it speaks JSON-RPC as the MCP specification
//! defines, not REST.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tool-registry",
        description = "A registry of tools that AI agents list, find and call. Agents use the \
                       `agents` routes (or MCP at /mcp); operators use `admin`.",
    ),
    modifiers(&Credentials),
    tags(
        (name = "agents", description = "List, find and call tools"),
        (name = "admin", description = "Manage the catalogue (admin credentials)"),
        (name = "health", description = "Probes"),
        (name = "observability", description = "Metrics"),
    )
)]
struct ApiDoc;

/// The two ways to present credentials: `Authorization: Bearer` (a key or a JWT) and
/// `X-API-Key`.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// The document of every REST route, from the same routers the service serves.
pub fn document() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(super::mcp_rest::router())
        .merge(super::routes::admin())
        .merge(super::health::router())
        .merge(super::observe::router())
        .into_openapi()
}
