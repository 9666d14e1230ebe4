//! GraphiQL in a real browser (Debian's chromium, driven by playwright-core
//! through tests/browser/graphiql.mjs): the docs pane lists the root types,
//! the default tabs run on the demo data, and a subscription started in
//! GraphiQL shows a delivery made while it is open, with the API key typed
//! into the Headers tab (the API is closed: a key exists).

use crate::common::*;
use crate::scoped_feeds::new_lead;
use leadql::access::Role;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SEED_LEAD: &str = "6966163xxxxxxxxxxff92";

/// The next JSON line of the driver; fails on its errors.
async fn next_step(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("the browser driver answers within 90 s")
        .expect("read the driver's output")
        .expect("the driver ended early");
    let step: Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("the driver printed something else: {line}"));
    if matches!(step["step"].as_str(), Some("failed") | Some("pageerror")) {
        panic!("in the browser: {step}");
    }
    step
}

/// GraphiQL's result pane, parsed.
fn result(step: &Value) -> Value {
    let text = step["result"].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|_| panic!("result pane: {step}"))
}

/// A JSON value with every number as JavaScript holds it (a float), so
/// GraphiQL's `14` equals the server's `14.0`.
fn as_js(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.into_iter().map(as_js).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, as_js(v))).collect()),
        other => other,
    }
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_browser),
    ignore = "needs Node.js, playwright-core (`npm ci` in tests/browser) and chromium (Debian's package); .ci/run installs them"
)]
#[cfg_attr(
    leadql_graphiql_cdn,
    ignore = "built without npm: GraphiQL would load from a CDN"
)]
async fn graphiql_runs_queries_and_live_subscriptions_in_a_browser() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    leadql::demo::load_recent(&s.state, 200).await.unwrap();
    let key = leadql::access::create(s.db(), Some("browser"), &[], Role::Full)
        .await
        .unwrap()
        .key;
    s.state.keys.reload().await.unwrap();
    let refused = s
        .client
        .post(s.url("/graphql"))
        .json(&json!({ "query": "{ leadFunnel { count } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the API is closed without the key");

    let mut driver = tokio::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/graphiql.mjs"
        ))
        .arg(s.url("/graphql"))
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut stdin = driver.stdin.take().unwrap();
    let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();

    let docs = next_step(&mut lines).await;
    let text = docs["text"].as_str().unwrap_or_default();
    assert!(text.contains("query: Query"), "docs pane: {text}");
    assert!(
        text.contains("subscription: Subscription"),
        "docs pane: {text}"
    );

    let history = result(&next_step(&mut lines).await);
    assert!(history.get("errors").is_none(), "{history}");
    assert_eq!(history["data"]["lead"]["id"], SEED_LEAD, "{history}");
    assert!(
        !history["data"]["lead"]["activities"]["nodes"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{history}"
    );

    assert_eq!(next_step(&mut lines).await["step"], "subscribed");
    // The subscription is open on the server (its connection_init carried
    // the key from the Headers tab), then a new lead is delivered.
    let mut open = 0.0;
    for _ in 0..100 {
        open = sample(&s.metrics().await, "leadql_subscriptions_open");
        if open >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 1.0, "GraphiQL's subscription is open on the server");
    let lead = "browser-lead-1";
    let (status, answer) = s.deliver(new_lead(lead, Some("browser-project"))).await;
    assert_eq!(status, 200, "{answer}");
    stdin
        .write_all(format!("{lead}\n").as_bytes())
        .await
        .unwrap();
    let event = result(&next_step(&mut lines).await);
    let event = &event["data"]["dispositionChanged"];
    assert_eq!(event["lead"]["id"], lead, "{event}");
    assert_eq!(event["lead"]["projectId"], "browser-project", "{event}");
    assert_eq!(event["disposition"], "Interested", "{event}");

    // Today's counts, as the tab computes "today", equal the server's.
    let counts = result(&next_step(&mut lines).await);
    assert!(counts.get("errors").is_none(), "{counts}");
    let since = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let expected = s
        .client
        .post(s.url("/graphql"))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({
            "query": leadql::graphql::graphiql::TABS[2].0,
            "variables": { "since": since },
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(as_js(counts), as_js(expected));

    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), driver.wait())
        .await
        .expect("the driver ends")
        .unwrap();
    assert!(status.success(), "driver: {status}");
    s.stop().await;
}
