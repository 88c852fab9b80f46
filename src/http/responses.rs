//! The groups of error answers that the routes' OpenAPI annotations share, so each route
//! lists its errors in one line. Routes and the OpenAPI document both import these; the
//! document imports the routes, so they live apart from it.

use super::error::ErrorBody;

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
