//! `task-events-host sidecar`: the embedded sidecar on its own, for any Dapr app.
//!
//! It is what `serve` runs in-process, behind its own port: daprd's publish, bulk publish,
//! state and metadata APIs, durable in one redb file under `--data-dir`, delivering to the app
//! at `--app-port` (or `--app-url`) over HTTP as daprd does: it waits for the app to listen,
//! reads `GET /dapr/subscribe` once, and POSTs every record to the subscribed route, with
//! routing rules, rawPayload, bulkSubscribe and dead-letter topics. Point any Dapr SDK's HTTP
//! client at `--dapr-http-port` to develop a pub/sub app without Docker or daprd. Several
//! `--app-url`s are replicas of one app sharing the partitions, like a Kafka consumer group.
//!
//! Shutdown (SIGTERM or Ctrl-C): the API stops accepting, in-flight deliveries finish, exit 0.

use anyhow::Context as _;
use axum::middleware::from_fn_with_state;
use tokio_util::sync::CancellationToken;

use crate::config::SidecarArgs;
use crate::dapr::auth::require_dapr_api_token;
use crate::embedded::{AppChannel, Embedded, HttpApp};

/// Runs the sidecar until SIGTERM or Ctrl-C.
pub async fn run(args: SidecarArgs) -> anyhow::Result<()> {
    let app_urls = args.app_urls();
    anyhow::ensure!(
        !app_urls.is_empty(),
        "say where the app listens: --app-port PORT or --app-url URL (repeat --app-url for replicas)"
    );
    let embedded = Embedded::open(args.embedded.config(&args.app_id, &args.state_store))?;
    let dapr_api_token = crate::config::non_empty("DAPR_API_TOKEN", args.dapr_api_token.clone());
    let app_api_token = crate::config::non_empty("APP_API_TOKEN", args.app_api_token.clone());
    let routes = match &dapr_api_token {
        Some(token) => embedded
            .routes()
            .layer(from_fn_with_state(token.clone(), require_dapr_api_token)),
        None => embedded.routes(),
    };
    let address = std::net::SocketAddr::new(args.listen, args.dapr_http_port);
    crate::config::warn_if_exposed(address, dapr_api_token.is_some(), "DAPR_API_TOKEN");
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} (set --dapr-http-port)"))?;
    tracing::info!(
        app = ?app_urls,
        data_dir = %args.embedded.data_dir.display(),
        "sidecar API on http://{}",
        listener.local_addr()?
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(crate::serve::wait_for_signal(shutdown.clone()));
    let replicas: Vec<HttpApp> = app_urls
        .iter()
        .map(|url| HttpApp::new(url, app_api_token.clone(), args.app_timeout()))
        .collect();
    let app = AppChannel::Http(replicas.into());
    let delivery = {
        let (embedded, shutdown) = (embedded.clone(), shutdown.clone());
        tokio::spawn(async move { embedded.run_delivery(app, shutdown).await })
    };
    crate::http_server::serve(listener, routes, args.http.limits(), shutdown.clone()).await;
    delivery.await?;
    tracing::info!("stopped");
    Ok(())
}
