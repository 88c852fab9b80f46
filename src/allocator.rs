//! The options of the process's allocator, jemalloc, which the service's binary and the
//! bench's server install with `#[global_allocator]` and read from `_rjem_malloc_conf`.

/// Two arenas (not four a core): on two cores they measured as fast and hold less memory;
/// freed pages go back to the system at once (`dirty_decay_ms:0`), so a replica's memory
/// after loading the catalogue is what it keeps, not what loading it took. Measured against
/// the defaults: a replica started on 10,000 tools 78 → 65 MiB, the registering server
/// 96–103 → 76–77 MiB (docs/performance.md, "Allocator"). A C string, as jemalloc reads it.
pub const JEMALLOC_OPTIONS: &[u8; 27] = b"narenas:2,dirty_decay_ms:0\0";
