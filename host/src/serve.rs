//! `task-events-host serve`: load the plugin, pick the sidecar, serve until SIGTERM.
//!
//! Start-up order matters to daprd (docs/dapr-contract.md §1): it polls the app port and then reads
//! `/dapr/subscribe` once, so the plugin is loaded and checked *before* the port opens: a port
//! that answers always has its subscriptions. Shutdown (SIGTERM or Ctrl-C): stop accepting,
//! finish in-flight deliveries (a delivery waiting to retry answers RETRY at once), stop the
//! embedded delivery loops, exit; after `--shutdown-grace-ms` the process exits anyway.
//!
//! The start-up plugin goes through the same preparation as a swap (compile cache, world check,
//! manifest, canary). Then the plugin can be swapped while serving: the `--guest` file is
//! watched, SIGHUP reloads it, and `/admin/*` swaps and rolls back (docs/operations.md).

use std::sync::Arc;

use anyhow::Context as _;
use axum::middleware::from_fn_with_state;
use tokio_util::sync::CancellationToken;

use crate::config::{ServeArgs, SidecarMode, non_empty, warn_if_exposed};
use crate::dapr::app::{self, App};
use crate::dapr::auth::{require_dapr_api_token, require_metrics_token};
use crate::dapr::client::DaprClient;
use crate::embedded::{AppChannel, Embedded};
use crate::metrics::{Instrumented, Metrics};
use crate::pid_file::PidFile;
use crate::pipeline::Pipeline;
use crate::plugin::cache::CompileCache;
use crate::plugin::loaded::sha256_hex;
use crate::plugin::{Generation, Preparer, Registry, Runtime, Swapper, watch};
use crate::sidecar::Sidecar;

pub async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    // An empty token is no token, as daprd reads it (with a warning), once, here.
    args.app_api_token = non_empty("APP_API_TOKEN", args.app_api_token.take());
    args.dapr_api_token = non_empty("DAPR_API_TOKEN", args.dapr_api_token.take());
    args.swap.admin_token = non_empty("TASK_EVENTS_ADMIN_TOKEN", args.swap.admin_token.take());
    args.metrics_token = non_empty("TASK_EVENTS_METRICS_TOKEN", args.metrics_token.take());
    let http_limits = args.http.limits();
    let runtime = Runtime::new(args.limits.limits())
        .map_err(|e| anyhow::anyhow!("starting the wasm runtime: {e:#}"))?;
    let (bytes, origin) = match &args.guest {
        Some(path) => (
            std::fs::read(path)
                .with_context(|| format!("reading the plugin {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            crate::BUNDLED_PLUGIN.to_vec(),
            "the bundled task plugin".to_string(),
        ),
    };
    // The same path as every later swap: compile cache, world check, manifest, canary.
    let cache_dir = args.swap.cache_dir(&args.embedded.data_dir);
    let cache_key = args.swap.cache_key_file.as_deref();
    let cache = match CompileCache::open(&cache_dir, cache_key, runtime.engine()) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::warn!("{e}; plugins will be compiled on every load");
            None
        }
    };
    let preparer = Preparer::new(runtime.clone(), cache, args.swap.canary_file.clone());
    let served_sha256 = sha256_hex(&bytes);
    let prepared = preparer
        .prepare(bytes)
        .await
        .with_context(|| format!("loading {origin}"))?;
    let plugin = prepared.plugin;
    tracing::info!(
        plugin = plugin.label(),
        sha256 = %plugin.sha256,
        pooling = runtime.pooling(),
        compile_cache = prepared.compiled.as_str(),
        canary_cases = prepared.canary.plugin_cases + prepared.canary.operator_cases,
        took_ms = prepared.took.as_millis(),
        "plugin loaded from {origin}"
    );
    let subscriptions = plugin.manifest.subscriptions.clone();
    let registry = Arc::new(Registry::with_generation(Generation::with_origin(
        1,
        plugin,
        format!("start-up ({origin})"),
        None,
    )));
    let topics: Vec<&str> = subscriptions.iter().map(|s| s.topic.as_str()).collect();
    let metrics = Arc::new(Metrics::new(&topics));
    let swapper = Swapper::start(
        preparer,
        registry.clone(),
        args.swap.rollback_policy(),
        subscriptions.clone(),
    );
    metrics.watch_plugin(swapper.clone());

    let shutdown = CancellationToken::new();
    let (sidecar, embedded) = match args.sidecar_mode() {
        SidecarMode::Dapr { endpoint } => {
            tracing::info!("sidecar: daprd at {endpoint}");
            let client = DaprClient::new(
                endpoint,
                args.dapr_api_token.clone(),
                args.sidecar_timeout(),
            );
            (Arc::new(client) as Sidecar, None)
        }
        SidecarMode::Embedded => {
            let embedded = Embedded::open(args.embedded.config(&args.app_id, &args.state_store))?;
            tracing::info!(
                "sidecar: embedded, data in {}",
                args.embedded.data_dir.display()
            );
            (Arc::new(embedded.clone()) as Sidecar, Some(embedded))
        }
    };

    let pipeline = Arc::new(Pipeline {
        sidecar: Instrumented::wrap(sidecar, metrics.clone()),
        registry,
        metrics,
        state_store: args.state_store.clone(),
        app_id: args.app_id.clone(),
        shutdown: shutdown.clone(),
        sidecar_retry_budget: args.sidecar_retry_budget(),
        legacy_dedupe_prefix: args.legacy_dedupe_prefix.clone().filter(|p| !p.is_empty()),
        record_ttl: std::time::Duration::from_secs(args.record_ttl_secs.max(1)),
        max_in_place_wait: std::time::Duration::from_millis(args.max_in_place_retry_ms),
        bulk_instance: args.bulk_instance,
    });
    let app = Arc::new(App {
        pipeline,
        subscriptions,
        limits: http_limits,
        bulk: (args.bulk_max_messages > 0).then_some(app::BulkSubscribe {
            max_messages: args.bulk_max_messages,
            max_await_ms: args.bulk_max_await_ms,
        }),
    });
    let app_routes = app::router(app.clone());
    let mut public = match &args.app_api_token {
        // route_layer (here and below): an unknown path answers 404, not a token error.
        Some(token) => app_routes
            .clone()
            .route_layer(from_fn_with_state(token.clone(), require_dapr_api_token)),
        None => app_routes.clone(),
    };
    public = public.merge(crate::admin::router(
        swapper.clone(),
        args.swap.admin_token.clone(),
    ));
    public = public.merge(crate::dead_letters::router(
        app,
        args.swap.admin_token.clone(),
    ));
    let mut delivery = None;
    if let Some(embedded) = &embedded {
        let sidecar_routes = match &args.dapr_api_token {
            Some(token) => embedded
                .routes()
                .route_layer(from_fn_with_state(token.clone(), require_dapr_api_token)),
            None => embedded.routes(),
        };
        public = public.merge(sidecar_routes);
        let (embedded, shutdown) = (embedded.clone(), shutdown.clone());
        delivery = Some(tokio::spawn(async move {
            embedded
                .run_delivery(AppChannel::InProcess(app_routes), shutdown)
                .await
        }));
    }

    if let SidecarMode::Dapr { endpoint } = args.sidecar_mode() {
        public = public.merge(crate::not_found::sidecar_off(&endpoint));
    }
    public = public.fallback(crate::not_found::unknown);
    if let Some(token) = &args.metrics_token {
        public = public.layer(from_fn_with_state(
            Arc::<str>::from(token.as_str()),
            require_metrics_token,
        ));
    }

    let address = std::net::SocketAddr::new(args.listen, args.app_port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("listening on {address} (is another process using the port? set --app-port)")
        })?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    warn_if_exposed(address, args.app_api_token.is_some(), "APP_API_TOKEN");
    if embedded.is_some() {
        // The embedded sidecar's publish and state API shares this port.
        warn_if_exposed(address, args.dapr_api_token.is_some(), "DAPR_API_TOKEN");
    }

    tokio::spawn(wait_for_signal(shutdown.clone()));
    watch::spawn_sighup(args.guest.clone(), swapper.clone());
    // A SIGHUP sent to the written id must never meet the default action (exit). tokio installs
    // a signal's process handler on its first registration and keeps it, so registering here,
    // synchronously, covers the moment before spawn_sighup's task first runs.
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let _pid_file = args.pid_file.as_deref().map(PidFile::write).transpose()?;
    if let Some(path) = args.guest.clone().filter(|_| args.swap.watch) {
        watch::spawn_watcher(
            path,
            args.swap.watch_debounce(),
            swapper.clone(),
            served_sha256,
            shutdown.clone(),
        )?;
    }
    let server = crate::http_server::serve(listener, public, http_limits, shutdown.clone());
    let grace = args.shutdown_grace();
    let finished = async {
        server.await;
        if let Some(delivery) = delivery {
            delivery.await?;
        }
        anyhow::Ok(())
    };
    tokio::pin!(finished);
    tokio::select! {
        result = &mut finished => result?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("in-flight deliveries did not finish within {grace:?}; exiting anyway (they will be redelivered)");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

pub(crate) async fn wait_for_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: finishing in-flight deliveries"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: finishing in-flight deliveries"),
    }
    shutdown.cancel();
}
