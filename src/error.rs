//! The HTTP error, where the modules that still answer in it find it; it lives in
//! `http::error`.

pub use crate::http::error::{ApiError, ErrorBody, ErrorDetail};
