//! Logging set-up and the request span that carries the request id into every log line.

use axum::{extract::MatchedPath, http::Request};
use tracing::Span;
use tracing::{Event, Subscriber, field::Field, level_filters::LevelFilter};
use tracing_subscriber::{
    EnvFilter, fmt,
    fmt::writer::BoxMakeWriter,
    layer::{Context, Layer},
    prelude::*,
};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global subscriber; `RUST_LOG` overrides the default filter. Logs go to
/// standard output unless `to_stderr`.
pub fn init(format: LogFormat, to_stderr: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let hang_ups = ClientHangUps::under(&filter);
    let registry = tracing_subscriber::registry().with(filter).with(hang_ups);
    let writer = BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    });
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().compact().with_writer(writer))
            .try_init(),
    };
    if let Err(err) = result {
        eprintln!("logging was already initialised: {err}");
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

/// The span of one HTTP request: method, matched route and the `x-request-id`.
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
    tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        route,
        uri = %request.uri().path(),
    )
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

    #[test]
    fn client_hang_ups_are_written_only_with_debug_logging() {
        assert_eq!(written("info"), 1);
        assert_eq!(written("warn,rmcp=info"), 1);
        assert_eq!(written("debug"), 2);
    }
}
