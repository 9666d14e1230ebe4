//! OpenTelemetry traces: the real binary, pointed at an OTLP/HTTP receiver
//! started here, exports a webhook delivery (request → delivery, and the
//! batch that committed it as a trace of its own linked to the delivery),
//! a GraphQL operation with its SQL statements, and a subscription's
//! catch-up; an incoming W3C `traceparent` is continued.

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every span received, with its resource's `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

/// An OTLP/HTTP receiver on a free port: its base URL and what it got.
async fn receiver() -> (String, Received) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    let received = Received::default();
    async fn traces(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Vec<u8>) {
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/x-protobuf",
            "OTLP over HTTP with protobuf"
        );
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
        let mut spans = received.0.lock().unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        // An empty ExportTraceServiceResponse.
        (StatusCode::OK, Vec::new())
    }
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        Any::IntValue(n) => Some(*n),
        _ => None,
    }
}

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Wait until `done` holds for what was received (the exporter sends
    /// every 100 ms here).
    async fn until(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..200 {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let names: Vec<String> = self.spans().iter().map(|s| s.name.clone()).collect();
        panic!("no {what} among the exported spans: {names:?}");
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The SQL statements' spans (named after their operation, `SELECT`).
fn sql_spans(spans: &[Span]) -> Vec<&Span> {
    spans
        .iter()
        .filter(|s| string_attribute(&s.attributes, "db.query.text").is_some())
        .collect()
}

/// `span` and its ancestors within `spans`, nearest first.
fn is_descendant(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

const INCOMING_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_SPAN: &str = "00f067aa0ba902b7";
const QUERY_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const QUERY_SPAN: &str = "b7ad6b7169203331";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn requests_deliveries_statements_and_catch_ups_are_traced() {
    let (otlp, received) = receiver().await;
    let db = TestDb::new().await;
    let (_server, base) = ServerProcess::start(
        &db.url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    // A delivery inside the sender's trace.
    let delivered = client
        .post(format!("{base}/webhooks/activity"))
        .header("content-type", "application/json")
        .header(
            "traceparent",
            format!("00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"),
        )
        .body(SEED_CONNECTED)
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);

    // A lead history inside a frontend's trace.
    let lead_id = serde_json::from_str::<Value>(SEED_CONNECTED).unwrap()["leadId"]
        .as_str()
        .unwrap()
        .to_string();
    let answer: Value = client
        .post(format!("{base}/graphql"))
        .header("traceparent", format!("00-{QUERY_TRACE}-{QUERY_SPAN}-01"))
        .json(&json!({
            "query": "query LeadHistory($id: ID!) { lead(id: $id) { id activities { nodes { id } } dispositionHistory { nodes { disposition } } } }",
            "variables": {"id": lead_id},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["lead"]["id"], json!(lead_id), "{answer}");
    let activities = answer["data"]["lead"]["activities"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    assert!(activities >= 1, "{answer}");

    // A subscriber resuming from the start catches up from the table.
    let mut ws = WsClient::connect(&base, "graphql-transport-ws").await;
    ws.subscribe(
        "1",
        "subscription { dispositionChanged(after: \"0\") { cursor } }",
        json!({}),
    )
    .await;
    let event = ws.next_data(Duration::from_secs(10)).await;
    assert!(event.is_some(), "the stored event is delivered on catch-up");

    // The delivery: the request continues the sender's trace, the delivery
    // span is inside it, and the batch is a trace of its own linked to it.
    let spans = received
        .until("committed batch", |s| {
            !named(s, "ingest.commit").is_empty() && !named(s, "webhook.delivery").is_empty()
        })
        .await;
    let request = spans
        .iter()
        .find(|s| s.name == "POST /webhooks/activity")
        .expect("a span for the webhook request");
    assert_eq!(hex(&request.trace_id), INCOMING_TRACE);
    assert_eq!(hex(&request.parent_span_id), INCOMING_SPAN);
    assert_eq!(
        int_attribute(&request.attributes, "http.response.status_code"),
        Some(200),
        "{:?}",
        request.attributes
    );
    let delivery = named(&spans, "webhook.delivery")[0];
    assert!(is_descendant(&spans, delivery, request));
    assert_eq!(
        string_attribute(&delivery.attributes, "leadql.delivery.outcome").as_deref(),
        Some("stored")
    );
    let batch = named(&spans, "ingest.batch")[0];
    assert_ne!(
        batch.trace_id, request.trace_id,
        "the batch is its own trace"
    );
    assert!(batch.parent_span_id.is_empty(), "the batch is a root span");
    assert_eq!(int_attribute(&batch.attributes, "deliveries"), Some(1));
    let linked = batch
        .links
        .iter()
        .find(|l| l.trace_id == request.trace_id)
        .expect("the batch links to the delivery it committed");
    let waiting = spans
        .iter()
        .find(|s| s.span_id == linked.span_id)
        .expect("the linked span was exported");
    assert!(
        waiting.span_id == delivery.span_id || is_descendant(&spans, waiting, delivery),
        "the link points into the delivery"
    );
    let commit = named(&spans, "ingest.commit")[0];
    assert_eq!(commit.parent_span_id, batch.span_id);
    assert!(
        delivery.start_time_unix_nano <= commit.start_time_unix_nano
            && commit.start_time_unix_nano <= delivery.end_time_unix_nano,
        "the commit ran while the delivery waited for it"
    );

    // The operation: inside the frontend's trace, its SQL statements
    // inside it, each with its text, duration and rows.
    let spans = received
        .until("GraphQL operation", |s| {
            !named(s, "graphql LeadHistory").is_empty()
                && s.iter().any(|s| s.name == "POST /graphql")
        })
        .await;
    let request = spans.iter().find(|s| s.name == "POST /graphql").unwrap();
    assert_eq!(hex(&request.trace_id), QUERY_TRACE);
    assert_eq!(hex(&request.parent_span_id), QUERY_SPAN);
    let operation = named(&spans, "graphql LeadHistory")[0];
    assert!(is_descendant(&spans, operation, request));
    assert_eq!(
        string_attribute(&operation.attributes, "graphql.operation.name").as_deref(),
        Some("LeadHistory")
    );
    let statements: Vec<&Span> = sql_spans(&spans)
        .into_iter()
        .filter(|s| is_descendant(&spans, s, operation))
        .collect();
    assert!(
        statements.len() >= 2,
        "the lead, its activities and its dispositions are read: {statements:?}"
    );
    assert_eq!(
        int_attribute(&operation.attributes, "db.statements"),
        Some(statements.len() as i64),
        "one span per statement the operation ran"
    );
    for statement in &statements {
        let text = string_attribute(&statement.attributes, "db.query.text").unwrap();
        assert!(text.to_ascii_uppercase().starts_with("SELECT"), "{text}");
        assert!(statement.end_time_unix_nano >= statement.start_time_unix_nano);
        assert!(int_attribute(&statement.attributes, "db.response.returned_rows").is_some());
    }
    let activity_rows = statements
        .iter()
        .filter(|s| {
            string_attribute(&s.attributes, "db.query.text")
                .is_some_and(|t| t.contains("FROM \"activities\""))
        })
        .filter_map(|s| int_attribute(&s.attributes, "db.response.returned_rows"))
        .max();
    assert!(
        activity_rows >= Some(activities as i64),
        "the activities statement says how many rows it returned"
    );

    // The catch-up, with the events it read.
    let spans = received
        .until("catch-up", |s| {
            !named(s, "catch up dispositionChanged").is_empty()
        })
        .await;
    let catch_up = named(&spans, "catch up dispositionChanged")[0];
    assert_eq!(
        int_attribute(&catch_up.attributes, "leadql.catch_up.after"),
        Some(0)
    );
    assert!(
        int_attribute(&catch_up.attributes, "leadql.catch_up.events") >= Some(1),
        "the stored event was read in the catch-up"
    );
    assert!(sql_spans(&spans)
        .iter()
        .any(|s| is_descendant(&spans, s, catch_up)));

    let services: Vec<String> = received
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    assert!(services.iter().all(|s| s == "leadql"), "{services:?}");
    ws.close().await;
}

#[tokio::test]
async fn an_exporter_protocol_other_than_http_protobuf_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_leadql"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", "sqlite::memory:")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc") && stderr.contains("http/protobuf"),
        "{stderr}"
    );
}
