//! Roles: an analyst key reads aggregates and every field that is not
//! personal data; each personal field answers null with a `FORBIDDEN`
//! error at its path, and filters, search and sorts over personal fields
//! are refused — at the root, in nested lists and joined objects, in
//! aggregates and in subscriptions. A full key reads all of it.
//!
//! Personal fields are selected under aliases starting with `p_`, so the
//! checks below find them wherever they are in an answer.

use crate::common::*;
use crate::filters::demo_server;
use leadql::access::Role;
use serde_json::{json, Value};
use std::time::Duration;

async fn key(s: &TestServer, name: &str, role: Role) -> String {
    let created = leadql::access::create(s.db(), Some(name), &[], role)
        .await
        .unwrap();
    s.state.keys.reload().await.unwrap();
    created.key
}

async fn ask(s: &TestServer, key: &str, query: &str) -> Value {
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The `p_` fields of an answer: (path, value) for each.
fn personal(data: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, Value)>) {
    match data {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(json!(k));
                if k.starts_with("p_") {
                    out.push((path.clone(), v.clone()));
                } else {
                    personal(v, path, out);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(json!(i));
                personal(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn personal_fields(body: &Value) -> Vec<(Vec<Value>, Value)> {
    let mut out = Vec::new();
    personal(&body["data"], &mut Vec::new(), &mut out);
    out
}

/// An analyst's answer: every personal field is null and has exactly one
/// FORBIDDEN error at its path; nothing else failed.
fn assert_withheld(body: &Value, query: &str) {
    let fields = personal_fields(body);
    assert!(!fields.is_empty(), "no personal field answered: {body}");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    for (path, value) in &fields {
        assert_eq!(value, &Value::Null, "{path:?} in {query}");
        let at: Vec<&Value> = errors.iter().filter(|e| e["path"] == json!(path)).collect();
        assert_eq!(at.len(), 1, "one error at {path:?}: {body}");
        assert_eq!(at[0]["extensions"]["code"], "FORBIDDEN", "{body}");
        assert!(
            at[0]["message"].as_str().unwrap().contains("personal data"),
            "{body}"
        );
    }
    assert_eq!(
        errors.len(),
        fields.len(),
        "only personal fields fail: {body}"
    );
}

/// A full key's answer: no error, and personal data among the values.
fn assert_readable(body: &Value, query: &str) {
    assert!(body.get("errors").is_none(), "{query}: {body}");
    let fields = personal_fields(body);
    assert!(
        fields.iter().any(|(_, v)| !v.is_null()),
        "no personal value in {body}"
    );
}

const READS: [&str; 2] = [
    // Root list, nested lists, joined objects, lookups.
    "{ leads(first: 20) { nodes { id p_name: name p_summary: summary
        updates { id p_data: data p_uextra: extra }
        activities(first: 5) { nodes { id callStatus disposition language
          p_pcid: providerCallId p_lname: leadName p_input: input p_vars: variables
          p_extra: extra p_lsummary: leadSummary
          lead { id disposition p_name: name }
          analysis { disposition p_summary: summary p_extra: extra }
          conversation { turnCount p_sid: callSid p_phone: phoneHash p_extra: extra
            messages(first: 3) { nodes { role position p_content: content p_extra: extra } }
            toolCalls(first: 3) { nodes { name p_args: arguments p_resp: response p_extra: extra } } } } } } } }",
    // The other root lists.
    "{ analyses(first: 5) { nodes { disposition p_summary: summary } }
       toolCalls(first: 5) { nodes { name success p_args: arguments } }
       conversations(first: 5) { nodes { turnCount p_phone: phoneHash } }
       activities(first: 5) { nodes { id p_vars: variables } } }",
];

/// Filters, search and sorts over personal data; each names the field
/// the refusal must mention.
const REFUSED: [(&str, &str); 12] = [
    (
        "{ leads(filter: {name: {eq: \"x\"}}) { totalCount } }",
        "name",
    ),
    (
        "{ leads(filter: {and: [{summary: {contains: \"a\"}}]}) { totalCount } }",
        "summary",
    ),
    (
        "{ leads(filter: {search: \"a\"}) { totalCount } }",
        "search",
    ),
    (
        "{ leads(first: 1, orderBy: [{field: NAME, direction: ASC}]) { nodes { id } } }",
        "name",
    ),
    (
        "{ activities(filter: {variable: {name: \"Urgency\"}}) { totalCount } }",
        "variable",
    ),
    (
        "{ activities(filter: {not: {search: \"a\"}}) { totalCount } }",
        "search",
    ),
    (
        "{ analyses(filter: {summary: {contains: \"a\"}}) { totalCount } }",
        "summary",
    ),
    (
        "{ conversations(filter: {phoneHash: {eq: \"a\"}}) { totalCount } }",
        "phoneHash",
    ),
    (
        "{ conversations(filter: {or: [{search: \"a\"}]}) { totalCount } }",
        "search",
    ),
    (
        "{ leads(first: 2) { nodes { activities(filter: {search: \"a\"}) { totalCount } } } }",
        "search",
    ),
    (
        "{ dispositionCounts(filter: {search: \"a\"}) { disposition count } }",
        "search",
    ),
    (
        "{ leadFunnel(filter: {name: {isNull: false}}) { disposition count } }",
        "name",
    ),
];

#[tokio::test]
async fn an_analyst_key_reads_everything_but_personal_data() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 40).await;
    let analyst = key(&s, "analyst", Role::Analyst).await;
    let full = key(&s, "full", Role::Full).await;

    for query in READS {
        assert_withheld(&ask(&s, &analyst, query).await, query);
        assert_readable(&ask(&s, &full, query).await, query);
    }
    for (query, field) in REFUSED {
        let body = ask(&s, &analyst, query).await;
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {body}"));
        assert!(
            errors
                .iter()
                .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
            "{query}: {body}"
        );
        assert!(
            errors[0]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{query}: {body}"
        );
        let body = ask(&s, &full, query).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
    }
    // Aggregates and non-personal filters stay open to analysts.
    let body = ask(
        &s,
        &analyst,
        "{ dispositionCounts { disposition count } leadFunnel(filter: {disposition: {isNull: false}}) { count }
           callStats { attempts } leads(orderBy: [{field: LAST_ACTIVITY_AT, direction: DESC}], first: 3) { nodes { id disposition } } }",
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!body["data"]["dispositionCounts"]
        .as_array()
        .unwrap()
        .is_empty());
    s.stop().await;
}

/// The feed: an analyst's `activityRecorded` and `dispositionChanged`
/// carry events with their personal fields withheld (also in the nested
/// lead), and a subscription filtering on personal data is refused.
#[tokio::test]
async fn an_analyst_subscription_withholds_personal_data() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let analyst = key(&s, "analyst", Role::Analyst).await;
    let full = key(&s, "full", Role::Full).await;
    let mut subscribers = Vec::new();
    for k in [&analyst, &full] {
        let mut ws = WsClient::connect_with(
            &s.url(""),
            "graphql-transport-ws",
            json!({ "Authorization": format!("Bearer {k}") }),
        )
        .await
        .unwrap();
        ws.subscribe(
            "a",
            "subscription { activityRecorded { id p_lname: leadName p_vars: variables lead { id p_name: name } } }",
            json!({}),
        )
        .await;
        ws.subscribe(
            "d",
            "subscription { dispositionChanged { disposition lead { id p_summary: summary } activity { id p_input: input } } }",
            json!({}),
        )
        .await;
        subscribers.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = s.deliver(SEED_CONNECTED).await;
    assert_eq!(status, 200, "{body}");
    for (i, ws) in subscribers.iter_mut().enumerate() {
        let mut seen = 0;
        while seen < 2 {
            let message = ws
                .next_message(Duration::from_secs(5))
                .await
                .expect("an event");
            assert_eq!(message["type"], "next", "{message}");
            let payload = &message["payload"];
            if i == 0 {
                assert_withheld(payload, "subscription");
            } else {
                assert_readable(payload, "subscription");
            }
            seen += 1;
        }
    }
    // A subscription filtering on personal data is refused at once.
    let ws = &mut subscribers[0];
    ws.subscribe(
        "s",
        "subscription { activityRecorded(filter: {search: \"a\"}) { id } }",
        json!({}),
    )
    .await;
    let message = ws
        .next_message(Duration::from_secs(5))
        .await
        .expect("an answer");
    // A result with the error and no data (then `complete`).
    assert_eq!(message["id"], "s", "{message}");
    assert_eq!(message["payload"]["data"], Value::Null, "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{message}"
    );
    s.stop().await;
}
