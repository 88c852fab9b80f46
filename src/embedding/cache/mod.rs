//! The decorators stacked over the provider, outermost first: the per-text cache in memory,
//! the shared cache in Redis, and the metering of the provider's calls.

pub mod memory;
pub mod metered;
pub mod redis;
