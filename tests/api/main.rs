//! Integration tests: one binary, real stores (SQLite file and PostgreSQL with pgvector)
//! and the real HTTP server on loopback.

mod helpers;

mod backup;
mod bad_input;
mod call_tool;
mod console;
mod distributed_tracing;
mod exhaustion;
mod faults;
mod find_tool;
mod hardening;
mod http_admin;
mod http_errors;
mod lifecycle;
mod mcp;
mod openapi;
mod outbound;
mod postgres_schema;
mod recording;
mod retrieval_quality;
mod shared_cache;
mod stdio;
mod store_contract;
mod upstream;
mod versions;
