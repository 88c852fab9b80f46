//! An HTTP tool's call: the arguments as JSON body (or query for GET and DELETE), the URL
//! guarded, the answer capped and read as JSON. Failures are outcomes, never errors.

use serde_json::Value;
use tracing::Instrument;

use super::{Outcome, url_guard::UrlGuard};

pub(super) async fn call(
    http: &reqwest::Client,
    guard: UrlGuard,
    url: &str,
    method: &str,
    headers: &std::collections::BTreeMap<String, String>,
    arguments: Value,
    max_response_bytes: usize,
) -> Outcome {
    let mut url = match reqwest::Url::parse(url) {
        Ok(url) => url,
        Err(err) => return Outcome::Error(format!("invalid tool URL: {err}")),
    };
    if let Err(refused) = guard.check_url(&url) {
        return Outcome::Error(refused);
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let sends_query = matches!(method, reqwest::Method::GET | reqwest::Method::DELETE);
    if sends_query {
        url.query_pairs_mut().extend_pairs(query_pairs(&arguments));
    }
    let span = crate::telemetry::otel::http_client_span(&method, &url);
    let mut request = http
        .request(method, url)
        .headers(crate::telemetry::otel::outgoing_headers_of(&span));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if !sends_query {
        request = request.json(&arguments);
    }
    let response = match request.send().instrument(span.clone()).await {
        Ok(response) => response,
        Err(err) => {
            crate::telemetry::otel::set_error(&span, "request failed");
            return Outcome::Error(describe_request_error(err));
        }
    };
    let status = response.status();
    crate::telemetry::otel::responded(&span, status);
    let body = match read_capped(response, max_response_bytes).await {
        Ok(body) => body,
        Err(message) => return Outcome::Error(message),
    };
    if !status.is_success() {
        let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Outcome::Error(format!("the tool answered HTTP {status}: {snippet}"));
    }
    match serde_json::from_slice(&body) {
        Ok(value) => Outcome::Success(value),
        Err(err) => Outcome::Error(format!("the tool's answer is not JSON: {err}")),
    }
}

/// Top-level arguments as query parameters; non-string values are written as JSON.
fn query_pairs(arguments: &Value) -> Vec<(String, String)> {
    arguments
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The full error chain (reqwest's top-level message hides the refusal reason), naming
/// only the host: a tool's path and query may carry its credentials (`/bot<token>/`,
/// `appid=`), which no list of secret names catches.
fn describe_request_error(err: reqwest::Error) -> String {
    let host = err.url().and_then(|url| {
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        })
    });
    let err = err.without_url();
    let mut message = match host {
        Some(host) => format!("the tool at {host} could not be reached: {err}"),
        None => format!("the tool could not be reached: {err}"),
    };
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len as usize > limit)
    {
        return Err(format!("the tool's answer is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("the tool's answer is larger than {limit} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) => return Err(describe_request_error(err)),
        }
    }
}
