//! The in-memory search engine: the catalogue index (BM25 full text, listings in name
//! order), the exact vector index with its SIMD kernels, and the fusion of both rankings.
//!
//! Pure and synchronous: no database, no network, no runtime. The stores keep these
//! structures current with every write (see `store::mirror`); searches read them.

pub mod answers;
pub mod best_k;
pub mod catalogue;
pub mod fusion;
pub mod lexical;
pub mod shared_vectors;
pub mod simd;
pub mod vector;

/// What searches filter a tool by: part of the data model (`domain::listing`), kept in the
/// indexes beside each tool's words and vector.
pub use crate::domain::Facets;
