//! Prometheus metrics: one process-wide recorder, rendered by `GET /metrics`.
//!
//! Counters and histograms are recorded where things happen (HTTP middleware, search,
//! executions, the embedder layers); levels that are cheap to read on demand (catalogue size,
//! pool connections, embedding backlog) are set as gauges just before each render.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: sub-millisecond searches up to slow upstream tools.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histogram samples are folded into buckets (the recorder's upkeep).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Several apps in one process (tests)
/// share it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread can be started");
        handle
    })
}

/// Describes every metric once so the scrape carries HELP lines.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency by method and route"
    );
    describe_counter!(
        "find_tool_requests_total",
        "find_tool searches by requested and answered mode"
    );
    describe_histogram!(
        "find_tool_duration_seconds",
        "find_tool latency by answered mode"
    );
    describe_counter!(
        "tool_executions_total",
        "tool calls by tool and status (success, error, timeout)"
    );
    describe_histogram!(
        "tool_execution_duration_seconds",
        "tool call latency by tool"
    );
    describe_counter!(
        "embedding_requests_total",
        "calls to the embedding provider by outcome"
    );
    describe_counter!(
        "embedding_texts_total",
        "texts sent to the embedding provider"
    );
    describe_histogram!(
        "embedding_request_duration_seconds",
        "latency of calls to the embedding provider"
    );
    describe_counter!(
        "embedding_retries_total",
        "retried calls to the HTTP embedding endpoint"
    );
    describe_counter!(
        "embedding_short_circuited_total",
        "calls refused while the circuit breaker was open"
    );
    describe_gauge!(
        "embedding_breaker_state",
        "circuit breaker of the embedding endpoint: 0 closed, 1 half open, 2 open"
    );
    describe_counter!(
        "embedding_cache_hits_total",
        "texts answered by a cache tier (memory, redis)"
    );
    describe_counter!(
        "embedding_cache_misses_total",
        "texts a cache tier (memory, redis) did not hold"
    );
    describe_counter!(
        "embedding_cache_errors_total",
        "failed or timed-out round trips to the shared cache (redis)"
    );
    describe_counter!(
        "embedding_cache_skipped_total",
        "batches that skipped the shared cache (redis) while it was paused after an error"
    );
    describe_gauge!(
        "catalogue_tools",
        "registered tools by state (active, inactive)"
    );
    describe_gauge!(
        "catalogue_pending_embeddings",
        "tools waiting for an embedding of the current model"
    );
    describe_gauge!("db_pool_connections", "database pool connections by state");
    describe_counter!(
        "execution_records_written_total",
        "execution records written to the store"
    );
    describe_counter!(
        "execution_records_lost_total",
        "execution records given up: the database did not take them within EXECUTION_RETRY_MS, \
         or shutdown came first"
    );
    describe_counter!(
        "execution_records_reduced_total",
        "execution records the database refused as they were, stored without their result"
    );
    describe_counter!(
        "execution_record_write_failures_total",
        "failed attempts to write execution records (each retry or refusal counts)"
    );
    describe_gauge!(
        "execution_records_backlog",
        "execution records queued or being written"
    );
    describe_counter!(
        "rate_limited_requests_total",
        "requests refused by the rate limiter"
    );
    describe_gauge!(
        "vector_search_place",
        "1 for where this replica searches vectors (memory or index), chosen at start"
    );
    describe_gauge!("mcp_sessions", "open MCP sessions");
    describe_gauge!(
        "mcp_change_subscribers",
        "MCP sessions told of catalogue changes"
    );
    describe_counter!(
        "mcp_sessions_refused_total",
        "MCP initialize requests refused at MCP_MAX_SESSIONS"
    );
    describe_gauge!("http_connections_open", "open client connections");
    describe_counter!(
        "stdio_upstream_restarts_total",
        "restarts of a stdio upstream MCP server's child, by upstream"
    );
    describe_gauge!(
        "stdio_upstream_running",
        "1 while a stdio upstream MCP server's child runs, by upstream"
    );
    describe_counter!(
        "http_connections_refused_total",
        "client connections closed at once beyond HTTP_MAX_CONNECTIONS and the probe reserve"
    );
    describe_counter!(
        "mcp_name_map_builds_total",
        "portable name maps built (MCP_PORTABLE_NAMES), once per catalogue change used"
    );
    describe_counter!(
        "http_panics_total",
        "request handlers that panicked, each answered 500 internal_error"
    );
    describe_counter!(
        "http_connections_timed_out_total",
        "client connections closed for slow headers or idleness, by reason"
    );
}
