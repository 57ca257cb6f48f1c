use thiserror::Error;

/// Everything that can go wrong between us and the database.
#[derive(Debug, Error)]
pub enum DbError {
    /// The URL names no backend we speak.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// No connection could be had from the pool (database down, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A connection could not be opened.
    #[error("database connection failed: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations could not be applied or reverted.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A unique value (username, national id…) is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The row the caller named does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

impl DbError {
    /// True when the database (rather than the caller's input) is at fault and a retry may help.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Unavailable(_) | DbError::Connection(_) => true,
            DbError::Query(diesel::result::Error::DatabaseError(kind, _)) => matches!(
                kind,
                diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::Unknown
            ),
            _ => false,
        }
    }
}
