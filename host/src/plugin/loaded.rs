//! One plugin version, compiled, checked against the world, and ready to instantiate.
//!
//! Contract: `Plugin::load` either returns a plugin that matches `task-events:plugin@1.x` and
//! whose `manifest()` answered, or a `LoadError` that says what is wrong (not a component, which
//! exports or imports do not match, a trapping manifest, a manifest or declared effects the host
//! refuses). A plugin that exports `effects` (1.1.0) has its `publishes()` read at load; one
//! that does not (1.0.0) declares nothing (see `effects`). Every call (`handle`, `manifest`,
//! `golden_cases`) runs on a fresh `Store` and instance, under the runtime's memory limit and
//! call deadline, and is synchronous: callers run it off the async executor. A trap, a deadline
//! or a memory-limit hit is a `CallError` naming the plugin and the limit; the host goes on.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Instance};
use wasmtime::{Store, Trap};

use super::bindings::timed::{self, TimedOutcome};
use super::bindings::{
    Delivery, EFFECTS_EXPORT, EFFECTS_PUBLISHES, EXPECTED_EXPORTS, EventPlugin, EventPluginPre,
    GoldenCase, Manifest, Outcome, TIMERS_EXPORT, WORLD_VERSION,
};
use super::effects::{EffectPolicy, ManifestViolation};
use super::runtime::Runtime;
use super::sandbox::Sandbox;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    NotAComponent(String),
    #[error(
        "the plugin does not fit the world task-events:plugin/event-plugin@{WORLD_VERSION}: {0}"
    )]
    WorldMismatch(String),
    #[error("the plugin's manifest() failed: {0}")]
    Manifest(#[source] CallError),
    #[error("the plugin's manifest is invalid: {0}")]
    BadManifest(String),
    #[error("the plugin's effects() failed: {0}")]
    Effects(#[source] CallError),
    #[error("the host refuses the plugin's manifest: {0}")]
    Refused(#[from] ManifestViolation),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("plugin {plugin} ran past its deadline of {limit_ms} ms")]
    Deadline { plugin: String, limit_ms: u128 },
    #[error(
        "plugin {plugin} hit its memory limit: it asked for {desired} bytes, the limit is {limit}"
    )]
    MemoryLimit {
        plugin: String,
        desired: usize,
        limit: usize,
    },
    #[error("plugin {plugin} trapped: {reason}")]
    Trap { plugin: String, reason: String },
}

impl CallError {
    /// Which limit or failure, as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Deadline { .. } => "deadline",
            CallError::MemoryLimit { .. } => "memory",
            CallError::Trap { .. } => "trap",
        }
    }
}

pub struct Plugin {
    pub name: String,
    pub version: String,
    /// Hex sha256 of the .wasm bytes: the plugin's identity across loads.
    pub sha256: String,
    pub manifest: Manifest,
    /// What the plugin may publish (its declared topics and the host's caps).
    pub effects: EffectPolicy,
    label: Arc<str>,
    pre: EventPluginPre<Sandbox>,
    /// The `timers` export (1.2.0), when the plugin has it.
    timers: Option<timed::GuestIndices>,
    runtime: Runtime,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({} sha256:{})", self.label, &self.sha256[..12])
    }
}

/// Hex sha256 of plugin bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Plugin {
    /// Compiles and checks `bytes`. Slow (compilation): call it off the request path.
    pub fn load(runtime: &Runtime, bytes: &[u8]) -> Result<Plugin, LoadError> {
        check_is_component(bytes)?;
        let component = Component::new(runtime.engine(), bytes)
            .map_err(|e| LoadError::NotAComponent(format!("the plugin does not compile: {e:#}")))?;
        Plugin::from_component(runtime, component, sha256_hex(bytes))
    }

    /// Checks an already compiled component (e.g. from the on-disk cache) against the world.
    pub fn from_component(
        runtime: &Runtime,
        component: Component,
        sha256: String,
    ) -> Result<Plugin, LoadError> {
        check_exports(runtime, &component)?;
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WorldMismatch(format!("{e:#}")))?;
        // Without the export the plugin sets no timers; with a mismatched one it is refused.
        let timers = match instance_pre
            .component()
            .get_export_index(None, TIMERS_EXPORT)
        {
            None => None,
            Some(_) => Some(
                timed::GuestIndices::new(&instance_pre)
                    .map_err(|e| LoadError::WorldMismatch(format!("{e:#}")))?,
            ),
        };
        let pre = EventPluginPre::new(instance_pre)
            .map_err(|e| LoadError::WorldMismatch(format!("{e:#}")))?;
        let mut plugin = Plugin {
            name: String::new(),
            version: String::new(),
            label: Arc::from(format!("unnamed plugin sha256:{}", &sha256[..12])),
            sha256,
            manifest: Manifest {
                name: String::new(),
                version: String::new(),
                schema_versions: vec![],
                subscriptions: vec![],
                retry_policies: vec![],
            },
            effects: EffectPolicy::nothing(runtime.limits().effects),
            pre,
            timers,
            runtime: runtime.clone(),
        };
        let manifest = plugin.manifest_call().map_err(LoadError::Manifest)?;
        check_manifest(&manifest)?;
        let declared = plugin.declared_topics()?;
        plugin.effects = EffectPolicy::new(&manifest, declared, runtime.limits().effects)?;
        plugin.name = manifest.name.clone();
        plugin.version = manifest.version.clone();
        plugin.label = Arc::from(format!("{}@{}", manifest.name, manifest.version));
        plugin.manifest = manifest;
        Ok(plugin)
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Handles one delivery on a fresh instance.
    pub fn handle(&self, delivery: &Delivery) -> Result<Outcome, CallError> {
        self.call(|plugin, store| {
            plugin
                .task_events_plugin_handler()
                .call_handle(store, delivery)
        })
    }

    /// Handles one delivery on a fresh instance through `timers.handle` when the plugin
    /// exports it, else `handler.handle` with no timer changes.
    pub fn handle_timed(&self, delivery: &Delivery) -> Result<TimedOutcome, CallError> {
        self.call_instance(|instance, store| self.handle_on(instance, store, delivery))
    }

    /// Handles `deliveries` in order on one instance, each call under its own deadline: what a
    /// bulk batch's entries share when the operator asks for it (`--bulk-instance`). The
    /// instance, and whatever its memory holds, lives until the last of them, or until a call
    /// fails (trap, deadline, memory limit): the next delivery then gets a fresh instance.
    pub fn handle_on_one_instance(
        &self,
        deliveries: &[Delivery],
    ) -> Vec<Result<TimedOutcome, CallError>> {
        let mut results = Vec::with_capacity(deliveries.len());
        while results.len() < deliveries.len() {
            let rest = &deliveries[results.len()..];
            let failed = self.call_instance(|instance, store| {
                for delivery in rest {
                    store.set_epoch_deadline(self.runtime.deadline_ticks());
                    results.push(Ok(self.handle_on(instance, store, delivery)?));
                }
                Ok(())
            });
            if let Err(error) = failed {
                results.push(Err(error));
            }
        }
        results
    }

    /// One `handle` call on a live instance.
    fn handle_on(
        &self,
        instance: &Instance,
        store: &mut Store<Sandbox>,
        delivery: &Delivery,
    ) -> wasmtime::Result<TimedOutcome> {
        match &self.timers {
            Some(timers) => timers
                .load(&mut *store, instance)?
                .call_handle(&mut *store, delivery),
            None => {
                let plugin = EventPlugin::new(&mut *store, instance)?;
                let outcome = plugin
                    .task_events_plugin_handler()
                    .call_handle(&mut *store, delivery)?;
                Ok(TimedOutcome {
                    outcome,
                    timers: Vec::new(),
                })
            }
        }
    }

    /// The golden cases the plugin ships for its own canary.
    pub fn golden_cases(&self) -> Result<Vec<GoldenCase>, CallError> {
        self.call(|plugin, store| plugin.task_events_plugin_handler().call_golden_cases(store))
    }

    fn manifest_call(&self) -> Result<Manifest, CallError> {
        self.call(|plugin, store| plugin.task_events_plugin_handler().call_manifest(store))
    }

    /// The topics the plugin declares (`effects.publishes`), or `None` when it does not export
    /// `effects` (built against 1.0.0).
    fn declared_topics(&self) -> Result<Option<Vec<String>>, LoadError> {
        let component = self.pre.instance_pre().component();
        let Some(interface) = component.get_export_index(None, EFFECTS_EXPORT) else {
            return Ok(None);
        };
        let Some(func) = component.get_export_index(Some(&interface), EFFECTS_PUBLISHES) else {
            return Err(LoadError::WorldMismatch(format!(
                "it exports {EFFECTS_EXPORT} without the function `{EFFECTS_PUBLISHES}`"
            )));
        };
        self.call_instance(|instance, store| {
            let publishes = instance.get_typed_func::<(), (Vec<String>,)>(&mut *store, &func)?;
            let (topics,) = publishes.call(&mut *store, ())?;
            Ok(Some(topics))
        })
        .map_err(LoadError::Effects)
    }

    /// Runs `f` against a fresh instance under the runtime's limits: the one way every export is
    /// called (tests use it to reach `schema` and `recurrence` too).
    pub fn call<R>(
        &self,
        f: impl FnOnce(&EventPlugin, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.call_instance(|instance, store| {
            let plugin = EventPlugin::new(&mut *store, instance)?;
            f(&plugin, store)
        })
    }

    /// `call` on the raw instance (for optional exports outside the required world).
    fn call_instance<R>(
        &self,
        f: impl FnOnce(&Instance, &mut Store<Sandbox>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let limits = self.runtime.limits();
        let sandbox = Sandbox::new(
            self.label.clone(),
            limits.memory_bytes,
            limits.max_log_lines_per_call,
            self.runtime.log_budget().clone(),
        );
        let mut store = Store::new(self.runtime.engine(), sandbox);
        // Counted from before instantiation until the store (and its instance) is gone.
        let _live = self.runtime.live_instance();
        store.limiter(|s| s);
        store.set_epoch_deadline(self.runtime.deadline_ticks());
        store.epoch_deadline_trap();
        let result = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .and_then(|instance| f(&instance, &mut store));
        let result = result.map_err(|e| self.classify(&store, e));
        drop(store);
        result
    }

    fn classify(&self, store: &Store<Sandbox>, error: wasmtime::Error) -> CallError {
        let plugin = self.label.to_string();
        if let Some(hit) = store.data().memory_hit {
            return CallError::MemoryLimit {
                plugin,
                desired: hit.desired,
                limit: hit.limit,
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            let limit_ms = self.runtime.limits().call_deadline.as_millis();
            return CallError::Deadline { plugin, limit_ms };
        }
        let mut reason = format!("{error:#}");
        if reason.len() > 2048 {
            let mut cut = 2048;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        CallError::Trap { plugin, reason }
    }
}

/// Components and core modules share the `\0asm` magic; the layer field tells them apart. A core
/// module is the most common mistake (built for wasm32-unknown-unknown or wasip1), so say so.
pub(crate) fn check_is_component(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotAComponent(
            "the file is not WebAssembly (no \\0asm header); is it truncated or the wrong file?"
                .into(),
        ));
    }
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::NotAComponent(
            "the file is a core wasm module, not a component: build the plugin for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"
                .into(),
        ));
    }
    Ok(())
}

/// A readable list of the world's interfaces the plugin does not export, or exports at an
/// incompatible major version, before wasmtime's own (terser) type check runs.
fn check_exports(runtime: &Runtime, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exported: Vec<&str> = ty.exports(runtime.engine()).map(|(name, _)| name).collect();
    let major = WORLD_VERSION.split('.').next().unwrap_or("1");
    let mut missing = Vec::new();
    for expected in EXPECTED_EXPORTS {
        let found = exported.iter().find_map(|name| {
            let (iface, version) = name.split_once('@')?;
            (iface == expected).then_some(version)
        });
        match found {
            Some(version) if version.split('.').next() == Some(major) => {}
            Some(version) => {
                missing.push(format!("{expected}@{major}.x (the plugin has @{version})"))
            }
            None => missing.push(format!("{expected}@{major}.x")),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(LoadError::WorldMismatch(format!(
        "missing exports: {}; the plugin exports: [{}]",
        missing.join(", "),
        exported.join(", ")
    )))
}

/// Paths the host serves itself; a subscription route may not take one of them.
const RESERVED_ROUTES: [&str; 2] = ["/healthz", "/metrics"];
const RESERVED_PREFIXES: [&str; 5] = ["/dapr/", "/admin", "/v1.0/", "/v1.0-", "/job/"];

/// A subscription route becomes an axum route, so it must be a plain path: a pattern
/// (`{id}`, `*rest`) or a path the host serves itself would make the router refuse to start.
fn check_route(route: &str) -> Result<(), &'static str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-_.~".contains(c);
    if !route.starts_with('/')
        || route.len() < 2
        || !route.chars().all(plain)
        || route.contains("//")
    {
        return Err("must be a plain path: / followed by letters, digits, -, _, . or ~");
    }
    if RESERVED_ROUTES.contains(&route) || RESERVED_PREFIXES.iter().any(|p| route.starts_with(p)) {
        return Err(
            "is a path the host serves itself (/healthz, /metrics, /dapr/, /admin, /v1.0, /job/)",
        );
    }
    Ok(())
}

fn check_manifest(m: &Manifest) -> Result<(), LoadError> {
    if m.name.trim().is_empty() {
        return Err(LoadError::BadManifest("the name is empty".into()));
    }
    // Name and version tag every log line of the plugin: they must not be able to break one.
    for (what, text) in [("name", &m.name), ("version", &m.version)] {
        if text.len() > 128 || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(LoadError::BadManifest(format!(
                "the {what} {:?} is longer than 128 bytes or has whitespace or control characters",
                text.chars().take(64).collect::<String>()
            )));
        }
    }
    let mut routes = std::collections::HashSet::new();
    for s in &m.subscriptions {
        if let Err(why) = check_route(&s.route) {
            return Err(LoadError::BadManifest(format!(
                "route {:?} of topic {:?} {why}",
                s.route, s.topic
            )));
        }
        if s.pubsub.is_empty() || s.topic.is_empty() {
            return Err(LoadError::BadManifest(format!(
                "subscription {:?} has an empty pubsub or topic",
                s.route
            )));
        }
        if !routes.insert(s.route.as_str()) {
            return Err(LoadError::BadManifest(format!(
                "route {:?} is used twice",
                s.route
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_route;
    use crate::plugin::canary::outcome_to_json;
    use crate::plugin::testing::bundled_plugin;

    #[test]
    fn the_task_plugin_declares_the_topics_it_publishes_to() {
        let plugin = bundled_plugin();
        assert_eq!(
            plugin.effects.declared(),
            Some(vec!["reminders", "task-events"])
        );
    }

    #[test]
    fn fresh_instances_give_byte_identical_output() {
        // Every call runs on a fresh instance with fresh random seeds (sandbox); none of it may
        // reach the output.
        let plugin = bundled_plugin();
        for case in plugin.golden_cases().unwrap() {
            let runs: Vec<String> = (0..3)
                .map(|_| outcome_to_json(&plugin.handle(&case.delivery).unwrap()).to_string())
                .collect();
            assert!(
                runs.iter().all(|r| *r == runs[0]),
                "{}: {runs:#?}",
                case.name
            );
        }
    }

    #[test]
    fn routes_must_be_plain_paths_the_host_does_not_serve_itself() {
        for ok in ["/events/task-events", "/events/reminders.v2", "/a_b~c"] {
            assert_eq!(check_route(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/",
            "events",
            "/healthz",
            "/metrics",
            "/dapr/subscribe",
            "/admin/plugin",
            "/v1.0/publish/x",
            "/v1.0-embedded/topics",
            "/e/{id}",
            "/e/*rest",
            "/a//b",
            "/a b",
        ] {
            assert!(check_route(bad).is_err(), "{bad}");
        }
    }
}
