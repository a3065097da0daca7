//! Shared harness for the end-to-end tests: the host and the standalone sidecar as child
//! processes, a fault-injecting proxy, a recording Dapr app, the plugins, and task events.

pub mod admin;
pub mod dapr_mode;
pub mod embedded_api;
pub mod events;
pub mod host;
pub mod http;
pub mod plugins;
pub mod process;
pub mod proxy;
pub mod sidecar_process;
pub mod test_app;
pub mod wait;
