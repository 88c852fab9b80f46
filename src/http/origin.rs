//! Guards against DNS rebinding and cross-site requests on the REST routes.
//!
//! A web page can make a browser send requests to a name it rebinds to 127.0.0.1; the
//! browser then talks to this server with the attacker's name in `Host` and `Origin`.
//! So, while the `/admin` routes are open (no credentials configured), every route answers
//! only to the `Host` names of `MCP_ALLOWED_HOSTS`; and whatever the credentials, a
//! state-changing request from a browser page must come from an origin that
//! `CORS_ALLOWED_ORIGINS` lists, or from the server's own pages. `/mcp` has the same checks
//! in the MCP transport (with `MCP_ALLOWED_ORIGINS`); health probes are exempt, since
//! orchestrators address them by the pod's IP.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

#[derive(Clone)]
pub struct RequestOrigins {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: any `Host`.
    allowed_hosts: Option<Vec<Authority>>,
    /// `None`: any browser origin.
    allowed_origins: Option<Vec<String>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    /// `name`, `name:port`, `[v6]:port` or a bare IPv6 address, case-folded.
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if let Ok(authority) = value.parse::<axum::http::uri::Authority>() {
            return Some(Self {
                host: normalize_host(authority.host()),
                port: authority.port_u16(),
            });
        }
        Some(Self {
            host: normalize_host(value),
            port: None,
        })
    }

    fn allows(&self, presented: &Authority) -> bool {
        self.host == presented.host && self.port.is_none_or(|port| presented.port == Some(port))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn comma_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

impl RequestOrigins {
    /// `check_hosts` is whether `Host` is checked at all (while `/admin` is open).
    pub fn new(check_hosts: bool, allowed_hosts: &str, cors_origins: Option<&str>) -> Self {
        let hosts = comma_list(allowed_hosts);
        let allowed_hosts = (check_hosts && !hosts.contains(&"*"))
            .then(|| hosts.iter().filter_map(|h| Authority::parse(h)).collect());
        let origins = comma_list(cors_origins.unwrap_or_default());
        let allowed_origins = (!origins.contains(&"*")).then(|| {
            origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect()
        });
        Self {
            inner: Arc::new(Inner {
                allowed_hosts,
                allowed_origins,
            }),
        }
    }

    fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        if path == "/health" || path.starts_with("/health/") || path == "/mcp" {
            return Ok(());
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if let Some(allowed) = &self.inner.allowed_hosts
            && let Some(host) = host
        {
            let presented = Authority::parse(host);
            if !presented.is_some_and(|p| allowed.iter().any(|a| a.allows(&p))) {
                return Err(ApiError::Refused {
                    code: crate::domain::ErrorCode::HostNotAllowed,
                    message: format!(
                        "this server does not answer to the Host '{host}' while /admin is open; \
                         add it to MCP_ALLOWED_HOSTS or configure admin credentials"
                    ),
                });
            }
        }
        let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !changes_state {
            return Ok(());
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("null").trim();
        if self.origin_is_allowed(origin, host) {
            return Ok(());
        }
        Err(ApiError::Refused {
            code: crate::domain::ErrorCode::OriginNotAllowed,
            message: format!(
                "requests from the browser origin '{origin}' may not change anything here; \
                 list it in CORS_ALLOWED_ORIGINS to allow it"
            ),
        })
    }

    fn origin_is_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(allowed) = &self.inner.allowed_origins else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if allowed.contains(&origin) {
            return true;
        }
        // The server's own pages (the API explorer at /docs) post to where they came from.
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        matches!((authority, host), (Some(authority), Some(host))
            if authority.eq_ignore_ascii_case(host.trim()))
    }
}

/// Middleware: 403 `host_not_allowed` or `origin_not_allowed`, else the route.
pub async fn guard(
    State(origins): State<RequestOrigins>,
    request: Request,
    next: Next,
) -> Response {
    match origins.check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn hosts_are_matched_by_name_and_optional_port() {
        let origins = RequestOrigins::new(true, "localhost,127.0.0.1,::1,api.example:8443", None);
        let get =
            |host: &str| origins.check(&Method::GET, "/admin/tools", &headers(&[("host", host)]));
        for ok in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:1",
            "[::1]:8080",
            "api.example:8443",
        ] {
            assert!(get(ok).is_ok(), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "api.example:8080",
            "127.0.0.2",
            "localhost.evil",
        ] {
            assert_eq!(
                get(refused).unwrap_err().code(),
                "host_not_allowed",
                "{refused}"
            );
        }
        let probe = origins.check(
            &Method::GET,
            "/health/live",
            &headers(&[("host", "10.0.0.7:8080")]),
        );
        assert!(probe.is_ok());
        let unchecked = RequestOrigins::new(false, "localhost", None);
        assert!(
            unchecked
                .check(&Method::GET, "/admin/tools", &headers(&[("host", "evil")]))
                .is_ok()
        );
    }

    #[test]
    fn browser_origins_may_change_state_only_when_listed_or_same_origin() {
        let origins = RequestOrigins::new(false, "*", Some("https://ui.example"));
        let post = |origin: &str| {
            origins.check(
                &Method::POST,
                "/admin/tools",
                &headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]),
            )
        };
        assert!(post("https://ui.example").is_ok());
        assert!(post("http://127.0.0.1:8080").is_ok());
        assert_eq!(
            post("https://evil.example").unwrap_err().code(),
            "origin_not_allowed"
        );
        assert_eq!(post("null").unwrap_err().code(), "origin_not_allowed");
        let read = origins.check(
            &Method::GET,
            "/admin/tools",
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ]),
        );
        assert!(read.is_ok());
        let any = RequestOrigins::new(false, "*", Some("*"));
        let post_any = any.check(
            &Method::DELETE,
            "/admin/tools/x",
            &headers(&[("origin", "https://evil.example")]),
        );
        assert!(post_any.is_ok());
    }
}
