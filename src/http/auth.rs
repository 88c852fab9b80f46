//! API keys for the operator routes: `Authorization: Bearer <key>` or `X-API-Key: <key>`,
//! compared in constant time. With no keys configured the routes are open (loopback only,
//! unless `ADMIN_AUTH=disabled`; see `App::build`).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use crate::{config::Secret, error::ApiError};

#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<Secret>>);

impl ApiKeys {
    /// Keys from a comma-separated list; blanks are ignored.
    pub fn parse(list: Option<&Secret>) -> Self {
        let keys = list
            .map(|list| {
                list.expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();
        Self(Arc::new(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn accepts(&self, presented: &str) -> bool {
        // Every key is compared, so the time taken does not tell which one matched.
        self.0.iter().fold(false, |found, key| {
            found | bool::from(key.expose().as_bytes().ct_eq(presented.as_bytes()))
        })
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Middleware: 401 unless the request carries one of the keys.
pub async fn require_key(State(keys): State<ApiKeys>, request: Request, next: Next) -> Response {
    if keys.is_empty() {
        return next.run(request).await;
    }
    match presented_key(request.headers()) {
        Some(key) if keys.accepts(key) => next.run(request).await,
        Some(_) => ApiError::Unauthorized("the API key is not valid".into()).into_response(),
        None => ApiError::Unauthorized(
            "this route needs an API key: Authorization: Bearer <key> or X-API-Key: <key>".into(),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_and_matched_exactly() {
        let keys = ApiKeys::parse(Some(&Secret::new(" one, two ,,")));
        assert!(keys.accepts("one") && keys.accepts("two"));
        assert!(!keys.accepts("on") && !keys.accepts("one ") && !keys.accepts(""));
        assert!(ApiKeys::parse(None).is_empty());
        assert!(ApiKeys::parse(Some(&Secret::new(" , "))).is_empty());
    }
}
