//! What the product does, without HTTP: authentication and sessions,
//! enrollment, the sync exchange and its authorization, central events,
//! catalog, rosters and holidays, audited personal data, and the report
//! arithmetic. Handlers in `web` parse a request, call in here, and turn
//! an [`OpError`] into their response; this layer calls down into `store`
//! only.

pub mod admin;
pub mod auth;
pub mod central;
pub mod complaints;
pub mod enroll;
pub mod followups;
pub mod reports;
pub mod seal;
pub mod setup;
pub mod sync;

use std::time::Duration;

use crate::store::{Db, StoreError};

/// Why an operation refused, in the terms a caller can act on. Each
/// refusal carries a stable machine-readable code and a message in Bahasa
/// Indonesia and English; the HTTP layer maps the kind to a status.
#[derive(Debug)]
pub enum OpError {
    Refused {
        kind: Refusal,
        code: &'static str,
        message: String,
    },
    /// The store failed: never the caller's fault.
    Store(StoreError),
    /// A bug or an environment failure (a task panicked, hashing failed).
    Internal(String),
}

/// The kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed input (400).
    BadRequest,
    /// Well-formed but not acceptable (422).
    Unprocessable,
    /// No such thing, or not visible to the caller (404).
    NotFound,
    /// Not allowed for this caller (403).
    Forbidden,
    /// Not allowed in the current state (409).
    Conflict,
    /// Who is asking is not proven (401).
    Unauthorized,
    /// Too many attempts; try again after the wait (429).
    TooMany(Duration),
}

impl OpError {
    pub fn new(kind: Refusal, code: &'static str, message: impl std::fmt::Display) -> OpError {
        OpError::Refused { kind, code, message: message.to_string() }
    }

    pub fn bad_request(code: &'static str, message: impl std::fmt::Display) -> OpError {
        OpError::new(Refusal::BadRequest, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl std::fmt::Display) -> OpError {
        OpError::new(Refusal::Unprocessable, code, message)
    }

    pub fn missing(field: &str) -> OpError {
        OpError::unprocessable("missing_field", format!("kolom {field} wajib diisi / field {field} is required"))
    }

    pub fn not_found() -> OpError {
        OpError::new(Refusal::NotFound, "not_found", "tidak ditemukan / not found")
    }

    pub fn forbidden() -> OpError {
        OpError::new(
            Refusal::Forbidden,
            "forbidden",
            "peran Anda tidak diizinkan melakukan ini / your role may not do this",
        )
    }

    pub fn unauthorized() -> OpError {
        OpError::new(Refusal::Unauthorized, "unauthorized", "silakan masuk terlebih dahulu / please log in")
    }

    pub fn internal(detail: impl std::fmt::Display) -> OpError {
        OpError::Internal(detail.to_string())
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        OpError::Store(e)
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Refused { code, message, .. } => write!(f, "{code}: {message}"),
            OpError::Store(e) => write!(f, "store: {e}"),
            OpError::Internal(e) => write!(f, "internal: {e}"),
        }
    }
}

impl std::error::Error for OpError {}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpError> + Send + 'static,
) -> Result<T, OpError> {
    tokio::task::spawn_blocking(f).await.map_err(OpError::internal)?
}

/// Runs `f` in a write transaction on a blocking thread.
pub async fn write<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut dyn crate::store::Sql) -> Result<T, OpError> + Send + 'static,
) -> Result<T, OpError> {
    let db = db.clone();
    blocking(move || db.write(f)).await
}

/// Runs `f` on a read connection on a blocking thread.
pub async fn read<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut dyn crate::store::Sql) -> Result<T, OpError> + Send + 'static,
) -> Result<T, OpError> {
    let db = db.clone();
    blocking(move || db.read(f)).await
}
