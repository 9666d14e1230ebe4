//! OpenTelemetry traces over OTLP/HTTP (protobuf), on when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, off otherwise.
//!
//! Most spans are ordinary `tracing` spans with the target [`TARGET`] at
//! DEBUG level: the OpenTelemetry layer (`tracing-opentelemetry`) takes
//! them when traces are on; the log layer's default filter (`info`) does
//! not, so with traces off each span is a disabled callsite — a cached
//! check, nothing recorded. The spans of the hot path, an HTTP request
//! ([`request`]), a GraphQL operation and its SQL statements, are made with
//! the OpenTelemetry SDK directly ([`Operation`], [`Statement`]); with
//! traces off they are an empty `Option`. What is traced: each HTTP request (continuing
//! an incoming W3C `traceparent`), a webhook delivery and the batch that
//! committed it (a span of its own, linked to every delivery in it), each
//! GraphQL operation with its SQL statements (text, duration, rows), and a
//! subscriber's catch-up from the database.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span as SdkSpan};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
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
        let tracer = provider.tracer("leadql");
        // The first provider's tracer stays: a process sets traces up once.
        let _ = TRACER.set(tracer.clone());
        let layer = tracing_opentelemetry::layer()
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_tracer(tracer)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(TARGET, tracing::Level::DEBUG),
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

tokio::task_local! {
    /// The trace context of the HTTP request being served on this task.
    static REQUEST: Context;
}

/// The trace context of the HTTP request this task serves, if traced.
fn request_context() -> Option<Context> {
    REQUEST.try_with(Context::clone).ok()
}

/// Middleware: the span of one HTTP request (`POST /graphql`), continuing
/// the trace of an incoming W3C `traceparent` (and `tracestate`) header,
/// with its status code; the spans of the work it does are its children.
/// Made with the SDK directly, like [`Operation`]: a `tracing` span is
/// entered on every poll of the request, and through
/// `tracing-opentelemetry` every enter and exit is a registry lookup.
pub async fn request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(tracer) = tracer() else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let parent = if headers.contains_key("traceparent") {
        TraceContextPropagator::new().extract(&Headers(headers))
    } else {
        Context::new()
    };
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.clone()),
        KeyValue::new("url.path", path.clone()),
    ];
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        attributes.push(KeyValue::new("leadql.request_id", id.to_string()));
    }
    let span = tracer
        .span_builder(format!("{method} {path}"))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(span);
    let response = REQUEST.scope(cx.clone(), next.run(request)).await;
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    ));
    span.end();
    response
}

/// The tracer, when traces are on.
fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get().filter(|_| enabled())
}

/// The tracer of [`Operation`] and [`Statement`] spans: the same provider
/// (sampler, exporter) as the `tracing` layer's.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The span of one GraphQL operation over HTTP, a child of the request's.
///
/// It and its statements' spans ([`Statement`]) are made with the
/// OpenTelemetry SDK itself rather than as `tracing` spans: they are the
/// spans of the hot path (a lead history is one operation and four or five
/// statements), and through `tracing-opentelemetry` each one costs a
/// registry entry, field visitors and string copies, and an enter and exit
/// on every poll of the statement (traces cost a history 13–19% more
/// server CPU that way). Ended by [`Operation::finish`] or when dropped.
pub struct Operation(Option<Context>);

impl Operation {
    /// Record how many SQL statements the operation ran, and end it.
    pub fn finish(&self, statements: u64) {
        if let Some(cx) = &self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new("db.statements", statements as i64));
            span.end();
        }
    }

    /// The context its statements' spans are children of.
    pub fn context(&self) -> Option<&Context> {
        self.0.as_ref()
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if let Some(cx) = &self.0 {
            cx.span().end();
        }
    }
}

/// A span for one GraphQL operation over HTTP, under the current
/// (request) span; the caller ends it with [`Operation::finish`].
pub fn operation(name: &str) -> Operation {
    let Some(tracer) = tracer() else {
        return Operation(None);
    };
    let parent = request_context().unwrap_or_default();
    let span = tracer
        .span_builder(format!("graphql {name}"))
        .with_attributes([KeyValue::new("graphql.operation.name", name.to_string())])
        .start_with_context(tracer, &parent);
    Operation(Some(parent.with_span(span)))
}

/// The span of one SQL statement: its text, the database, and (once read)
/// the rows it returned; ended when dropped. See [`Operation`] for why it
/// is not a `tracing` span.
pub struct Statement(Option<SdkSpan>);

impl Statement {
    /// Record the rows the statement returned.
    pub fn rows(&mut self, rows: usize) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new("db.response.returned_rows", rows as i64));
        }
    }

    /// Mark the statement as failed, with the database's error.
    pub fn failed(&mut self, err: &dyn std::fmt::Display) {
        if let Some(span) = &mut self.0 {
            span.set_status(opentelemetry::trace::Status::error(err.to_string()));
        }
    }
}

/// A span for one SQL statement, under the GraphQL operation that runs it
/// (`operation`, from the task running it), else under the HTTP request
/// this task serves, else under the current `tracing` span (a
/// subscription's catch-up); nothing when traces are off or the statement
/// runs outside all three.
pub fn statement(backend: sea_orm::DbBackend, sql: &str, operation: Option<Context>) -> Statement {
    let Some(tracer) = tracer() else {
        return Statement(None);
    };
    let parent = match operation.or_else(request_context) {
        Some(cx) => cx,
        None => {
            let current = tracing::Span::current();
            if current.is_none() {
                return Statement(None);
            }
            current.context()
        }
    };
    if !parent.has_active_span() {
        return Statement(None);
    }
    let system = match backend {
        sea_orm::DbBackend::Postgres => "postgresql",
        sea_orm::DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    let verb = sql.split_whitespace().next().unwrap_or("SQL");
    let operation: std::borrow::Cow<'static, str> =
        match ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(verb))
        {
            Some(known) => known.into(),
            None => verb.to_ascii_uppercase().into(),
        };
    let span = tracer
        .span_builder(operation.clone())
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("db.system.name", system),
            KeyValue::new("db.operation.name", operation),
            KeyValue::new("db.query.text", sql.to_string()),
        ])
        .start_with_context(tracer, &parent);
    Statement(Some(span))
}

/// A span for one webhook delivery, from its body read to its answer,
/// under the HTTP request's span; the caller records
/// `leadql.delivery.outcome` (the status or error code).
pub fn delivery() -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::debug_span!(
        target: TARGET,
        "webhook.delivery",
        leadql.delivery.outcome = tracing::field::Empty,
    );
    if let Some(request) = request_context() {
        let _ = span.set_parent(request);
    }
    span
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
