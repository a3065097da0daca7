//! Everything that speaks Dapr: the app callback daprd calls, the CloudEvent envelope, API
//! tokens, and the client for daprd's own API.

pub mod app;
pub mod auth;
pub mod client;
pub mod envelope;
pub(crate) mod fields;
mod status;

pub use status::Status;
