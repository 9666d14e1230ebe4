//! Prometheus metrics: each server instance's own registry ([`Metrics`]),
//! the `/metrics` route, and the names leadql records (one place, so
//! dashboards can rely on them).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Webhook deliveries answered, by `outcome`: `stored`, `duplicate`, `stale`,
/// or the error code of the answer (`malformed_json`, `invalid_payload`,
/// `unauthorized`, `payload_too_large`, `unsupported_media_type`,
/// `database_unavailable`, `overloaded`, `shutting_down`, `storage_failed`,
/// `unreadable_body`).
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
/// SQL statements run to serve subscriptions: catch-ups from the table,
/// nested fields, and the rows an event's subscribers share (a figure
/// that grows with the subscribers rather than the events means work is
/// done per subscriber).
pub const SUBSCRIPTION_STATEMENTS: &str = "leadql_subscription_statements_total";

/// One instance's metrics: its own Prometheus registry, so two servers in
/// one process (tests, embedding) count apart. Every recording goes
/// through the instance's handle; the `metrics` facade's process-global
/// recorder is never installed. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl Metrics {
    /// A fresh registry with leadql's histogram buckets; its upkeep runs
    /// on the current runtime for as long as the registry lives.
    pub fn new() -> Metrics {
        let buckets: [(&str, &[f64]); 4] = [
            (
                INGEST_SECONDS,
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            ),
            (
                BATCH_SIZE,
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            (
                GRAPHQL_SECONDS,
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            ),
            (
                GRAPHQL_STATEMENTS,
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
            ),
        ];
        let builder = buckets
            .iter()
            .try_fold(PrometheusBuilder::new(), |b, (name, buckets)| {
                b.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let metrics = Metrics {
            recorder: Arc::new(builder.build_recorder()),
        };
        let weak = Arc::downgrade(&metrics.recorder);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    let Some(recorder) = weak.upgrade() else {
                        return;
                    };
                    recorder.handle().run_upkeep();
                }
            });
        }
        metrics
    }

    /// Record into this instance's registry.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// The Prometheus text of every metric recorded so far.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Count one answered delivery.
    pub fn delivery(&self, outcome: &'static str, started: std::time::Instant) {
        self.record(|| {
            metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
            metrics::histogram!(INGEST_SECONDS).record(started.elapsed().as_secs_f64());
        });
    }

    /// A callback for sea-orm that counts every statement a pool runs.
    pub fn statement_callback(&self) -> impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync {
        let metrics = self.clone();
        move |_info| metrics.count_statement()
    }

    /// Count one statement (also for statements run outside sea-orm's
    /// pool, see `store::held`), and charge it to the current operation.
    pub fn count_statement(&self) {
        let subscriptions = in_subscriptions();
        self.record(|| {
            metrics::counter!(DB_STATEMENTS).increment(1);
            if subscriptions {
                metrics::counter!(SUBSCRIPTION_STATEMENTS).increment(1);
            }
        });
        let _ = STATEMENTS.try_with(|n| n.pooled.fetch_add(1, Ordering::Relaxed));
    }

    /// Run one GraphQL operation, counting its statements and recording
    /// its outcome and duration.
    pub async fn graphql_operation<T>(
        &self,
        operation: Option<&str>,
        fut: impl std::future::Future<Output = T>,
        outcome: impl FnOnce(&T) -> &'static str,
    ) -> T {
        let started = std::time::Instant::now();
        let name = operation_label(operation);
        // Its statements find the operation's span through the task-local
        // (see `operation_context`).
        let counter = Arc::new(Statements {
            pooled: AtomicU64::new(0),
            held: AtomicU64::new(0),
            span: crate::otel::operation(&name),
        });
        let out = STATEMENTS.scope(counter.clone(), fut).await;
        let labels = [("operation", name)];
        let held = counter.held.load(Ordering::Relaxed);
        let all = held + counter.pooled.load(Ordering::Relaxed);
        counter.span.finish(all);
        self.record(|| {
            metrics::counter!(GRAPHQL_OPERATIONS, "operation" => labels[0].1.clone(), "outcome" => outcome(&out)).increment(1);
            metrics::histogram!(GRAPHQL_SECONDS, &labels).record(started.elapsed().as_secs_f64());
            metrics::histogram!(GRAPHQL_STATEMENTS, &labels).record(all as f64);
            metrics::counter!(DB_STATEMENTS).increment(held);
        });
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn render(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

/// Statements run by one GraphQL operation: through the pool (counted by
/// sea-orm's callback) and on a connection held for the request.
struct Statements {
    pooled: AtomicU64,
    held: AtomicU64,
    /// The operation's trace span (nothing when traces are off).
    span: crate::otel::Operation,
}

/// The trace context of the GraphQL operation running on this task, if
/// any: the parent of its statements' spans.
pub fn operation_context() -> Option<opentelemetry::Context> {
    STATEMENTS
        .try_with(|n| n.span.context().cloned())
        .ok()
        .flatten()
}

tokio::task_local! {
    static STATEMENTS: Arc<Statements>;
    /// Set while serving a WebSocket connection (and its loads on other
    /// tasks): its statements count as the subscriptions'.
    static SERVING_SUBSCRIPTIONS: ();
}

/// Run `fut` (a WebSocket connection, or a load it hands to another task),
/// counting its statements in [`SUBSCRIPTION_STATEMENTS`].
pub async fn serving_subscriptions<F: std::future::Future>(fut: F) -> F::Output {
    SERVING_SUBSCRIPTIONS.scope((), fut).await
}

/// Is this task serving subscriptions (see [`serving_subscriptions`])?
pub fn in_subscriptions() -> bool {
    SERVING_SUBSCRIPTIONS.try_with(|_| ()).is_ok()
}

/// Count a statement run on a connection held for a request
/// (`store::held`), which sea-orm's callback does not see: charged to the
/// current operation, and added to the instance's total when it ends.
pub fn count_held_statement() {
    let _ = STATEMENTS.try_with(|n| n.held.fetch_add(1, Ordering::Relaxed));
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
