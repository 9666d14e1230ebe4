//! leadql turns the webhook stream of an AI voice-calling platform into a
//! GraphQL API for lead histories and live disposition feeds.
//!
//! The path of one delivery: [`ingest::webhook`] (route) → [`ingest::payload`]
//! (parse) → [`ingest::pipeline`] (group commit) → [`store`] (one
//! transaction) → answer.

pub mod access;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod feed;
pub mod generate;
pub mod graphql;
pub mod import;
pub mod ingest;
pub mod otel;
pub mod store;
pub mod telemetry;
mod unread;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use config::Config;
use ingest::pipeline::{Ingestor, PipelineConfig};
use sea_orm::DatabaseConnection;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Where GraphQL requests read (see [`store::connect_reads`]).
    pub reads: DatabaseConnection,
    /// Where GraphQL reads the rollups (see [`store::connect_rollups`]).
    pub rollups: DatabaseConnection,
    pub ingestor: Ingestor,
    /// Room for webhook deliveries being stored (`LEADQL_INGEST_QUEUE`).
    pub ingest_room: Arc<tokio::sync::Semaphore>,
    pub config: Arc<Config>,
    pub schema: graphql::LeadqlSchema,
    /// The same schema for query texts validated before (see
    /// [`graphql::known_schema`]).
    pub known_schema: graphql::LeadqlSchema,
    pub feed: feed::Feed,
    /// Becomes true when the server starts shutting down (WebSockets close).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Open WebSocket connections.
    pub connections: Connections,
    /// API keys for GraphQL.
    pub keys: access::Keys,
    /// Requests per key per second (None: unlimited).
    pub limiter: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    pub limits: graphql::Limits,
    /// Connections kept between GraphQL requests (see `store::held`).
    pub spares: store::read::Spares,
    /// This instance's metrics (served at `/metrics`).
    pub metrics: telemetry::Metrics,
    /// Automatic persisted queries' texts.
    pub persisted: graphql::persisted::Persisted,
}

impl AppState {
    /// Connect, migrate and start the ingest pipeline.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let metrics = telemetry::Metrics::new();
        let mut db = store::connect_with(
            &config.database_url,
            config.db_connections,
            config.sqlite_cache_mib,
        )
        .await?;
        db.set_metric_callback(metrics.statement_callback());
        store::migrate(&db).await?;
        store::case::check_postgres(&db).await;
        store::spawn_checkpointer(&db);
        store::spawn_retention(&db, config.retention(), config.prune_every);
        let mut pipeline = if config.bulk {
            PipelineConfig::for_import(db.get_database_backend())
        } else {
            PipelineConfig::for_backend(db.get_database_backend())
        };
        if let Some(batch) = config.ingest_batch {
            pipeline.max_batch = batch.max(1);
        }
        if let Some(workers) = config.ingest_workers {
            if let Some(warning) = pipeline.set_workers(db.get_database_backend(), workers) {
                tracing::warn!("{warning}");
            }
        }
        let feed = feed::Feed::start(
            db.clone(),
            config.subscription_buffer,
            metrics.clone(),
            config.clock.clone(),
        )
        .await?;
        let stopping = tokio::sync::watch::Sender::new(false);
        let keys = access::Keys::start(db.clone()).await?;
        let limiter = std::num::NonZeroU32::new(config.rate_limit).map(|rate| {
            let burst = rate.saturating_mul(std::num::NonZeroU32::new(2).unwrap_or(rate));
            Arc::new(governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        let mut writer = store::connect_writer(
            &db,
            &config.database_url,
            pipeline.workers,
            config.sqlite_cache_mib,
        )
        .await?;
        writer.set_metric_callback(metrics.statement_callback());
        let ingestor = Ingestor::start(
            writer,
            pipeline,
            feed.clone(),
            metrics.clone(),
            Arc::new(config.callbacks.rules()),
        );
        let limits = config.limits();
        let mut reads = store::connect_reads(
            &db,
            &config.database_url,
            config.db_connections,
            limits.timeout,
        )
        .await?;
        reads.set_metric_callback(metrics.statement_callback());
        let spares = store::read::Spares::for_pool(&reads);
        let mut rollups = store::connect_rollups(&db, &config.database_url, limits.timeout).await?;
        rollups.set_metric_callback(metrics.statement_callback());
        Ok(AppState {
            db,
            reads,
            rollups,
            ingestor,
            ingest_room: Arc::new(tokio::sync::Semaphore::new(config.ingest_queue.max(1))),
            schema: graphql::schema(limits, Some(feed.clone())),
            known_schema: graphql::known_schema(limits, Some(feed.clone())),
            feed,
            shutdown: stopping.subscribe(),
            stopping: Arc::new(stopping),
            connections: Connections::default(),
            keys,
            limiter,
            limits,
            spares,
            metrics,
            persisted: graphql::persisted::Persisted::new(config.persisted_queries),
            config: Arc::new(config),
        })
    }
}

/// Counts open WebSocket connections, so shutdown can wait for their
/// close frames to go out.
#[derive(Clone, Default)]
pub struct Connections(Arc<std::sync::atomic::AtomicUsize>);

impl Connections {
    /// Count a connection while the guard lives.
    pub fn open(&self) -> ConnectionGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ConnectionGuard(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub struct ConnectionGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The HTTP application.
///
/// Every request carries a request id: the caller's `x-request-id` when it
/// sends one, else a new UUID; it is on the request's log span and is
/// returned in the `x-request-id` response header.
pub fn app(state: AppState) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    let trace = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        });
    let cors = cors(&state.config.cors_origins);
    let compression = tower_http::compression::CompressionLayer::new();
    Router::new()
        .merge(ingest::webhook::router())
        .merge(graphql::router(state.config.body_limit).layer(compression))
        .merge(graphql::ws_router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move |State(state): State<AppState>| async move {
                // GraphQL's reads have a pool of their own on PostgreSQL
                // (on SQLite `reads` is `db`, counted once).
                let pools: &[&sea_orm::DatabaseConnection] = match state.db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => &[&state.db, &state.reads],
                    _ => &[&state.db],
                };
                store::record_pool_metrics(pools, &state.metrics);
                telemetry::render(State(state.metrics)).await
            }),
        )
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::from_fn(unread::close_if_unread))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(trace)
                // Only when traces are on: nothing on the path otherwise.
                .option_layer(otel::enabled().then(|| axum::middleware::from_fn(otel::request)))
                .layer(PropagateRequestIdLayer::x_request_id())
                .option_layer(cors),
        )
        .with_state(state)
}

/// CORS for browser frontends on other origins; none unless configured.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| match HeaderValue::from_str(o) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        tracing::warn!(origin = %o, "ignoring an invalid CORS origin");
                        None
                    }
                }),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .expose_headers([header::HeaderName::from_static("x-request-id")])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match store::ping(&state.db).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "error": "database_unavailable", "message": "the database is unreachable" }),
                ),
            )
        }
    }
}

/// Serve `state` on `listener` until `shutdown` completes; in-flight
/// deliveries finish (committed and answered) before this returns.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "leadql listening");
    if state.config.socket_send_buffer > 0 {
        // Accepted connections inherit the listening socket's buffer size.
        socket2::SockRef::from(&listener)
            .set_send_buffer_size(state.config.socket_send_buffer)
            .map_err(|e| anyhow::anyhow!("setting the socket send buffer: {e}"))?;
    }
    let stopping = state.stopping.clone();
    let connections = state.connections.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests, closing subscriptions");
            // WebSockets are no longer the server's once upgraded: tell
            // them to send their close frames.
            stopping.send_replace(true);
        })
        .await?;
    // Give the close frames a moment to go out.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while connections.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
