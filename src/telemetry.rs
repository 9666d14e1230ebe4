//! Prometheus metrics: the recorder, the `/metrics` route, and the names
//! leadql records (one place, so dashboards can rely on them).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Webhook deliveries answered, by `outcome`: `stored`, `duplicate`, `stale`,
/// or the error code of the answer (`malformed_json`, `invalid_payload`,
/// `unauthorized`, `payload_too_large`, `unsupported_media_type`,
/// `database_unavailable`, `shutting_down`, `storage_failed`, `unreadable_body`).
pub const DELIVERIES: &str = "leadql_deliveries_total";
/// Seconds from a delivery's body being read to its answer.
pub const INGEST_SECONDS: &str = "leadql_ingest_seconds";
/// Deliveries per committed batch.
pub const BATCH_SIZE: &str = "leadql_ingest_batch_size";

/// GraphQL operations answered, by `operation` (the operation name, or
/// `anonymous`) and `outcome` (`ok`, `error`, `timeout`).
pub const GRAPHQL_OPERATIONS: &str = "leadql_graphql_operations_total";
/// Seconds to execute a GraphQL operation, by `operation`.
pub const GRAPHQL_SECONDS: &str = "leadql_graphql_seconds";
/// SQL statements one GraphQL operation ran, by `operation` (a rising
/// figure for the same operation points at an N+1 pattern).
pub const GRAPHQL_STATEMENTS: &str = "leadql_graphql_statements";
/// Open GraphQL subscriptions.
pub const SUBSCRIPTIONS: &str = "leadql_subscriptions_open";
/// Times a subscriber fell behind the in-memory buffer and caught up from
/// the database.
pub const CATCH_UPS: &str = "leadql_subscription_catch_ups_total";
/// Database pool connections, by `state`: `idle` or `in_use`.
pub const DB_CONNECTIONS: &str = "leadql_db_connections";
/// SQL statements run, all callers.
pub const DB_STATEMENTS: &str = "leadql_db_statements_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's metrics recorder (installed on first use; the `metrics`
/// facade has one recorder per process).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(INGEST_SECONDS.to_string()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(BATCH_SIZE.to_string()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(GRAPHQL_SECONDS.to_string()),
                        &[
                            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                            2.5, 10.0,
                        ],
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(GRAPHQL_STATEMENTS.to_string()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            let upkeep = handle.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        upkeep.run_upkeep();
                    }
                });
            }
            handle
        })
        .clone()
}

/// `GET /metrics`: Prometheus text format.
pub async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

/// Count one answered delivery.
pub fn delivery(outcome: &'static str, started: std::time::Instant) {
    metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
    metrics::histogram!(INGEST_SECONDS).record(started.elapsed().as_secs_f64());
}

tokio::task_local! {
    /// Statements run by the current GraphQL operation.
    static STATEMENTS: Arc<AtomicU64>;
}

/// Called for every statement the database connection runs.
pub fn statement(_info: &sea_orm::metric::Info<'_>) {
    count_statement();
}

/// Count one statement (also for statements run outside sea-orm's pool,
/// see `store::held`).
pub fn count_statement() {
    metrics::counter!(DB_STATEMENTS).increment(1);
    let _ = STATEMENTS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
}

/// Run one GraphQL operation, counting its statements and recording its
/// outcome and duration.
pub async fn graphql_operation<T>(
    operation: Option<&str>,
    fut: impl std::future::Future<Output = T>,
    outcome: impl FnOnce(&T) -> &'static str,
) -> T {
    let started = std::time::Instant::now();
    let counter = Arc::new(AtomicU64::new(0));
    let out = STATEMENTS.scope(counter.clone(), fut).await;
    let name = operation_label(operation);
    let labels = [("operation", name)];
    metrics::counter!(GRAPHQL_OPERATIONS, "operation" => labels[0].1.clone(), "outcome" => outcome(&out)).increment(1);
    metrics::histogram!(GRAPHQL_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    metrics::histogram!(GRAPHQL_STATEMENTS, &labels).record(counter.load(Ordering::Relaxed) as f64);
    out
}

/// Operation names come from clients: keep them short and plain so a
/// careless client cannot flood the metrics with odd labels.
fn operation_label(operation: Option<&str>) -> String {
    match operation {
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name.to_string()
        }
        Some(_) => "invalid_name".to_string(),
        None => "anonymous".to_string(),
    }
}
