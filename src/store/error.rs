//! What a storage operation can fail with.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another tool already has this name.
    #[error("a tool named '{0}' already exists")]
    Duplicate(String),
    /// The database cannot be reached right now; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Classifies a driver error; `name` is the tool name a unique violation refers to.
    pub(crate) fn from_sqlx(err: sqlx::Error, name: Option<&str>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Duplicate(name.unwrap_or_default().to_owned())
            }
            // A protocol error is the server answering garbage, as one does while it shuts
            // down or starts (e.g. to the TLS request of a new connection).
            sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if is_connection_loss(db.code().as_deref()) => {
                Self::Unavailable(err.to_string())
            }
            _ => Self::Other(err.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::from_sqlx(err, None)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Other(other.to_string()),
        }
    }
}

/// SQLSTATE classes that mean the server went away or is shutting down
/// (08: connection exception, 57P0x: operator intervention / shutdown).
fn is_connection_loss(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn lost_or_garbled_connections_are_unavailable_not_internal() {
        let classify = |err: sqlx::Error| StoreError::from_sqlx(err, None);
        assert!(matches!(
            classify(sqlx::Error::Protocol(
                "unexpected response from SSLRequest: 0x00".into()
            )),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }
}
