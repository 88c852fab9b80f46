//! The operator's console: the files under `console/`, compiled in and served at
//! `/console` with headers that keep the page to its own origin. The page itself uses the
//! same authenticated REST routes as any other client.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

/// Only this server's own files and API; no inline script or style, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// A file of `console/` with its media type.
macro_rules! asset {
    ($file:literal, $media_type:expr) => {
        (
            $file,
            $media_type,
            include_str!(concat!("../../console/", $file)),
        )
    };
}

/// (file name, media type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("schema-form.js", JS),
    asset!("catalogue.js", JS),
    asset!("search.js", JS),
    asset!("tool.js", JS),
    asset!("register.js", JS),
    asset!("executions.js", JS),
    asset!("charts.js", JS),
    asset!("health.js", JS),
];

const JS: &str = "text/javascript; charset=utf-8";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    let Some((_, media_type, body)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        return super::error::ApiError::NotFound {
            code: crate::domain::ErrorCode::RouteNotFound,
            message: format!("no console file '{name}'"),
        }
        .into_response();
    };
    let mut response = (StatusCode::OK, *body).into_response();
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, *media_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Revalidated on every load, so a new binary's console is used at once.
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
