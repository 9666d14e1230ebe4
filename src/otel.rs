//! OpenTelemetry traces over OTLP/HTTP (protobuf), on when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, off otherwise.
//!
//! The spans are ordinary `tracing` spans with the target [`TARGET`] at
//! DEBUG level: the OpenTelemetry layer (`tracing-opentelemetry`) takes
//! them when traces are on; the log layer's default filter (`info`) does
//! not, so with traces off each span is a disabled callsite — a cached
//! check, nothing recorded. What is traced: each HTTP request (continuing
//! an incoming W3C `traceparent`), a webhook delivery and the batch that
//! committed it (a span of its own, linked to every delivery in it), each
//! GraphQL operation with its SQL statements (text, duration, rows), and a
//! subscriber's catch-up from the database.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of leadql's trace spans.
pub const TARGET: &str = "leadql::otel";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Are traces being exported?
///
/// (Numbers go to spans as `i64`: tracing-opentelemetry writes `u64`
/// fields as strings.)
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Is an OTLP endpoint configured in the environment?
pub fn configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// The exporter, kept to flush what is buffered when the process ends.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// The exporter and the layer that feeds it, when an endpoint is
    /// configured. The service is `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`), default `leadql`; the SDK reads the
    /// other standard variables (headers, sampler, batch settings).
    /// Only OTLP over HTTP with protobuf is built in: a `grpc` or
    /// `http/json` protocol setting is refused with a message saying so.
    pub fn from_env<S>() -> anyhow::Result<Option<(Traces, impl tracing_subscriber::Layer<S>)>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        if !configured() {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Ok(protocol) = std::env::var(name) {
                if !protocol.is_empty() && protocol != "http/protobuf" {
                    anyhow::bail!(
                        "{name}={protocol}: leadql exports traces over OTLP/HTTP with protobuf only; set it to http/protobuf or leave it unset"
                    );
                }
            }
        }
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
            || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
                v.split(',')
                    .any(|kv| kv.trim().starts_with("service.name="))
            });
        if !named {
            resource = resource.with_service_name("leadql");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        // Only the attributes leadql sets: no source location, thread,
        // target or busy/idle timings on every span (a third of the bytes
        // exported), and no OpenTelemetry context kept per entered span
        // (nothing here reads it).
        let layer = tracing_opentelemetry::layer()
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_tracer(provider.tracer("leadql"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(TARGET, tracing::Level::DEBUG)
                    .with_target("leadql", tracing::Level::INFO),
            );
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Some((Traces { provider }, layer)))
    }

    /// Export what is still buffered and stop.
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(err) = self.provider.shutdown() {
            eprintln!("traces: the last spans could not be exported: {err}");
        }
    }
}

use tracing_subscriber::Layer as _;

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Make `span` continue the trace of an incoming W3C `traceparent` (and
/// `tracestate`) header, when traces are on and the request has one.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

/// A span for one SQL statement: its text, the database, and (recorded by
/// the caller once read) the rows it returned. Disabled when traces are off.
pub fn statement(backend: sea_orm::DbBackend, sql: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let system = match backend {
        sea_orm::DbBackend::Postgres => "postgresql",
        sea_orm::DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    let operation = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    // Under the GraphQL operation that runs it (which is not entered, see
    // `telemetry::graphql_operation`), else under whatever is current.
    let parent = crate::telemetry::operation_span().or_else(|| tracing::Span::current().id());
    tracing::debug_span!(
        target: TARGET,
        parent: parent,
        "db.query",
        otel.name = %operation,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = %operation,
        db.query.text = sql,
        db.response.returned_rows = tracing::field::Empty,
    )
}

/// A span for one GraphQL operation over HTTP; the caller records
/// `db.statements` (how many SQL statements it ran) at the end.
pub fn operation(name: &str) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "graphql.operation",
        otel.name = %format!("graphql {name}"),
        graphql.operation.name = name,
        db.statements = tracing::field::Empty,
    )
}

/// A span for one webhook delivery, from its body read to its answer; the
/// caller records `leadql.delivery.outcome` (the status or error code).
pub fn delivery() -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "webhook.delivery",
        leadql.delivery.outcome = tracing::field::Empty,
    )
}

/// A span for one batch of deliveries committed together: a trace of its
/// own, linked to the span of every delivery in it (which waited for it).
pub fn batch(size: usize, deliveries: impl Iterator<Item = Option<tracing::Id>>) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::debug_span!(target: TARGET, parent: None, "ingest.batch", deliveries = size as i64);
    for id in deliveries {
        span.follows_from(id);
    }
    span
}

/// The current span, when traces are on (for work handed to another task).
pub fn current() -> Option<tracing::Span> {
    enabled().then(tracing::Span::current)
}

/// The commit of a batch, inside the batch's span.
pub fn commit(batch: &tracing::Span) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(target: TARGET, parent: batch, "ingest.commit")
}

/// One page of a subscriber's catch-up from the database (events after
/// `after`); the caller records `leadql.catch_up.events`.
pub fn catch_up(field: &str, after: i64) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        target: TARGET,
        "subscription.catch_up",
        otel.name = %format!("catch up {field}"),
        graphql.subscription.field = field,
        leadql.catch_up.after = after,
        leadql.catch_up.events = tracing::field::Empty,
    )
}
