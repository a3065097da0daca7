//! The embedded sidecar's errors, in two families.
//!
//! - [`EmbeddedError`]: opening the data dir failed. Fatal at startup; the message says what the
//!   operator should do.
//! - [`ApiError`]: one request failed. It carries daprd's HTTP status and `errorCode` (so the HTTP
//!   routes answer exactly as daprd would) and a [`Class`] that tells the in-process caller
//!   (`crate::sidecar`) whether to retry, re-read, or give up.
//!
//! [`StoreError`] is a storage failure inside redb; it always becomes a retriable `ApiError`.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sidecar::SidecarError;

/// Why [`super::Embedded::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot create the embedded sidecar's data dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data dir {dir} is locked by another task-events-host (the file {file} is open in another \
         process): stop that process, or give this one a different data dir"
    )]
    Locked { dir: PathBuf, file: PathBuf },
    #[error(
        "{file} was written by an older redb file format ({found}); upgrade it with the redb \
         version that wrote it, or move it away to start empty"
    )]
    UpgradeRequired { file: PathBuf, found: u8 },
    #[error(
        "{file} was created with {stored} partitions per topic, but {configured} are configured: \
         keys would move to other partitions and lose their order. Configure {stored} partitions, \
         or start with an empty data dir"
    )]
    PartitionsChanged {
        file: PathBuf,
        stored: u32,
        configured: u32,
    },
    #[error("invalid embedded sidecar configuration: {0}")]
    Config(String),
    #[error("cannot open the embedded store {file}: {source}")]
    Storage { file: PathBuf, source: redb::Error },
}

/// A redb operation failed (I/O error, full disk, corruption) or its blocking task panicked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("embedded store: {0}")]
    Redb(#[from] redb::Error),
    #[error("embedded store: stored record {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("embedded store: the blocking storage task failed: {0}")]
    Task(String),
    #[error(
        "embedded store: state key {key:?} changed outside the delivery that staged it; the message is delivered again"
    )]
    Raced { key: String },
}

macro_rules! redb_into_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
redb_into_store_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What an in-process caller should do about an [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Retrying the same request will not help (unknown pubsub/store, bad input).
    Rejected,
    /// A concurrency check failed (etag mismatch, first-write on an existing key).
    Conflict,
    /// Storage failed; nothing was written; try again later.
    Unavailable,
}

/// A failed sidecar request, shaped like daprd's answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub class: Class,
}

impl ApiError {
    pub fn rejected(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            class: Class::Rejected,
        }
    }

    pub fn conflict(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            class: Class::Conflict,
        }
    }

    /// A storage failure during the operation named by `code` (500, as daprd answers broker and
    /// store errors).
    pub fn storage(code: &'static str, e: StoreError) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code,
            message: e.to_string(),
            class: Class::Unavailable,
        }
    }

    pub fn into_sidecar(self) -> SidecarError {
        let msg = format!("{} ({})", self.message, self.code);
        match self.class {
            Class::Rejected => SidecarError::from_status(self.status.as_u16(), msg),
            Class::Conflict => SidecarError::Conflict(msg),
            Class::Unavailable => SidecarError::Unavailable(msg),
        }
    }
}

impl IntoResponse for ApiError {
    /// daprd's older error body: `{"errorCode","message"}` with `application/json`.
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errorCode": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}
