//! Shared harness for the end-to-end tests: the host as a child process, the plugins, a
//! daprd stand-in written from dapr-contract.md, and task events to send.

pub mod admin;
pub mod daprd;
pub mod embedded_api;
pub mod events;
pub mod host;
pub mod http;
pub mod plugins;
