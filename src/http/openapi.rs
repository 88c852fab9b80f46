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
use crate::error::ErrorBody;

// The enums below are never built: they name groups of error answers that the handlers'
// annotations share, so each route lists its errors in one line.

/// Answers of every guarded route: credentials, rate limit, storage, deadline.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    #[response(status = 401, description = "Missing or invalid credentials")]
    Unauthorized(ErrorBody<'static>),
    #[response(status = 403, description = "A token without the route's scope")]
    Forbidden(ErrorBody<'static>),
    #[response(status = 429, description = "Over the rate limit; see Retry-After")]
    TooManyRequests(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "The storage or the embedder is unavailable"
    )]
    Unavailable(ErrorBody<'static>),
    #[response(status = 504, description = "The request took too long")]
    Timeout(ErrorBody<'static>),
}

/// Answers about a request body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(status = 400, description = "Malformed JSON")]
    MalformedJson(ErrorBody<'static>),
    #[response(status = 413, description = "The body is too large")]
    TooLarge(ErrorBody<'static>),
    #[response(status = 415, description = "The body is not JSON")]
    NotJson(ErrorBody<'static>),
    #[response(status = 422, description = "A field is invalid (named in `field`)")]
    Invalid(ErrorBody<'static>),
}

/// Answers of routes that name a tool by its id in the path.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ToolIdErrors {
    #[response(status = 404, description = "No such tool")]
    NotFound(ErrorBody<'static>),
    #[response(
        status = 422,
        description = "The id is not a UUID, or a parameter is invalid"
    )]
    Invalid(ErrorBody<'static>),
}

/// Answers about query parameters.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum QueryErrors {
    #[response(
        status = 422,
        description = "A parameter is invalid (named in `field`)"
    )]
    Invalid(ErrorBody<'static>),
}

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
        .merge(super::admin::router())
        .merge(super::health::router())
        .merge(super::observe::router())
        .into_openapi()
}
