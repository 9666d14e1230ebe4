//! Prometheus metrics: the recorder, the `/metrics` route, and the names
//! leadql records (one place, so dashboards can rely on them).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
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
