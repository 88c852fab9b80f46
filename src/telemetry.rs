//! Logging set-up and the request span that carries the request id (and, with tracing on,
//! the trace and span ids) into every log line.

pub mod otel;

use std::time::Duration;

use axum::{extract::MatchedPath, http::Request, response::Response};
use tower_http::trace::{DefaultOnResponse, OnResponse};
use tracing::Span;
use tracing::{Event, Subscriber, field::Empty, field::Field, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, fmt,
    fmt::writer::BoxMakeWriter,
    layer::{Context, Layer},
    prelude::*,
    registry::LookupSpan,
};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// What a caught panic said, for its log line and error.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Installs the global subscriber; `RUST_LOG` overrides the default filter. Logs go to
/// standard output unless `to_stderr`. With an OTLP endpoint set, spans are exported too
/// (see [`otel`]); the log filter applies to the logs alone, so the DEBUG spans that feed
/// the traces are never written to the logs and cost nothing when tracing is off.
pub fn init(format: LogFormat, to_stderr: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let traces = otel::layer().unwrap_or_else(|err| {
        eprintln!("OpenTelemetry tracing is off: {err}");
        None
    });
    let writer = BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    });
    if let Err(err) = subscriber(format, writer, filter, traces).try_init() {
        eprintln!("logging was already initialised: {err}");
    }
}

type Traces = Option<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>>;

/// The logs (under `filter`), the hang-up filter and the trace export when present. Without
/// traces the stack has no placeholder layer: an absent layer would keep every callsite
/// alive, the DEBUG spans included.
fn subscriber(
    format: LogFormat,
    writer: BoxMakeWriter,
    filter: EnvFilter,
    traces: Traces,
) -> Box<dyn Subscriber + Send + Sync> {
    let hang_ups = ClientHangUps::under(&filter);
    match traces {
        Some(traces) => Box::new(
            tracing_subscriber::registry()
                .with(traces)
                .with(rmcp_only(hang_ups))
                .with(logs(format, writer, filter)),
        ),
        None => Box::new(
            tracing_subscriber::registry()
                .with(rmcp_only(hang_ups))
                .with(logs(format, writer, filter)),
        ),
    }
}

/// The hang-up filter, filtered to rmcp's callsites: an unfiltered layer would keep every
/// callsite alive.
fn rmcp_only<S>(hang_ups: ClientHangUps) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    hang_ups
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target().starts_with("rmcp")
        }))
        .boxed()
}

fn logs<S>(
    format: LogFormat,
    writer: BoxMakeWriter,
    filter: EnvFilter,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer()
            .compact()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    }
}

/// rmcp logs at ERROR when an MCP client closes its connection before every response of
/// its session was sent (`… during drain`): an ordinary hang-up, not a fault. These lines
/// are shown only when debug logging is on.
struct ClientHangUps {
    shown: bool,
}

impl ClientHangUps {
    fn under(filter: &EnvFilter) -> Self {
        Self {
            shown: filter
                .max_level_hint()
                .is_none_or(|level| level >= LevelFilter::DEBUG),
        }
    }
}

const HANG_UP_MESSAGES: [&str; 2] = [
    "failed to send pending response during drain",
    "response send task failed during drain",
];

impl<S: Subscriber> Layer<S> for ClientHangUps {
    fn event_enabled(&self, event: &Event<'_>, _context: Context<'_, S>) -> bool {
        if self.shown || !event.metadata().target().starts_with("rmcp") {
            return true;
        }
        let mut message = MessageOf(None);
        event.record(&mut message);
        !message
            .0
            .is_some_and(|text| HANG_UP_MESSAGES.contains(&text.as_str()))
    }
}

struct MessageOf(Option<String>);

impl tracing::field::Visit for MessageOf {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The span of one HTTP request: method, matched route and the `x-request-id`. With tracing
/// on, it is the HTTP server span: it continues the caller's `traceparent` and carries the
/// trace and span ids into the logs.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let span = tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        route,
        uri = %request.uri().path(),
        trace_id = Empty,
        span_id = Empty,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
    );
    if otel::enabled() {
        otel::continue_trace(
            &span,
            request.headers(),
            format!("{} {route}", request.method()),
        );
        otel::set_attribute(&span, "http.request.method", request.method().to_string());
        otel::set_attribute(&span, "http.route", route.to_owned());
        otel::set_attribute(&span, "url.path", request.uri().path().to_owned());
    }
    span
}

/// Logs each response as before and, with tracing on, gives the server span its status.
#[derive(Clone)]
pub struct OnRequestDone(pub DefaultOnResponse);

impl<B> OnResponse<B> for OnRequestDone {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        if otel::enabled() {
            let status = response.status();
            otel::set_attribute(
                span,
                "http.response.status_code",
                i64::from(status.as_u16()),
            );
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        self.0.on_response(response, latency, span);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    struct CountEvents(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for CountEvents {
        fn on_event(&self, _event: &Event<'_>, _context: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many of a hang-up and an unrelated rmcp error a filter of `directives` writes.
    fn written(directives: &str) -> usize {
        let filter = EnvFilter::new(directives);
        let hang_ups = ClientHangUps::under(&filter);
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(hang_ups)
            .with(CountEvents(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rmcp::service", error = "broken pipe",
                "failed to send pending response during drain");
            tracing::error!(target: "rmcp::service", "something else failed");
        });
        seen.load(Ordering::SeqCst)
    }

    /// With tracing off, the DEBUG spans that instrument the hot path are disabled at their
    /// callsites (never built) under the default log filter, and INFO ones still log.
    #[test]
    fn debug_spans_are_disabled_without_tracing() {
        let writer = BoxMakeWriter::new(std::io::sink);
        let subscriber = subscriber(
            LogFormat::Json,
            writer,
            EnvFilter::new(DEFAULT_FILTER),
            None,
        );
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::span_enabled!(tracing::Level::DEBUG));
            assert!(tracing::debug_span!("inner").is_disabled());
            assert!(tracing::span_enabled!(tracing::Level::INFO));
        });
    }

    #[test]
    fn client_hang_ups_are_written_only_with_debug_logging() {
        assert_eq!(written("info"), 1);
        assert_eq!(written("warn,rmcp=info"), 1);
        assert_eq!(written("debug"), 2);
    }
}
