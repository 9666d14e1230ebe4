//! What a project-scoped API key receives over subscriptions, on every path
//! that can emit an event or resolve its fields: live events, the catch-up
//! from the table (`after`), events ingested by another instance
//! (PostgreSQL NOTIFY), the nested `lead` and `activity`, and leads whose
//! project is unknown (a scoped key sees nothing of them).
//!
//! Run as a user would: `leadql serve` with a webhook secret, keys made
//! with `leadql keys create`, deliveries through the webhook.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

pub(crate) const SECRET: &str = "webhook-s3cret";
const QUIET: Duration = Duration::from_millis(1500);

const DISPOSITIONS: &str = "subscription($after: String) { dispositionChanged(after: $after) {
    cursor disposition lead { id projectId } activity { id leadId projectId } } }";
const ACTIVITIES: &str =
    "subscription { activityRecorded { id leadId projectId lead { id projectId } } }";

/// A connected call of a new lead: the seed's connected payload with its
/// lead, activity and project replaced; `None` leaves no `projectId`
/// anywhere in it.
pub(crate) fn new_lead(lead: &str, project: Option<&str>) -> String {
    fn strip_projects(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("projectId");
                map.values_mut().for_each(strip_projects);
            }
            Value::Array(items) => items.iter_mut().for_each(strip_projects),
            _ => {}
        }
    }
    let text = SEED_CONNECTED
        .replace("6966163xxxxxxxxxxff92", lead)
        .replace("6966179xxxxxxxxxxaf8ef", &format!("{lead}-call"))
        .replace("681db2dxxxxxxxxxxxx120", project.unwrap_or("-"));
    let mut body: Value = serde_json::from_str(&text).unwrap();
    if project.is_none() {
        strip_projects(&mut body);
    }
    body.to_string()
}

/// `leadql keys create ARGS…` with the real binary; the key it prints.
pub(crate) fn create_key(database_url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadql"))
        .args(["keys", "create"])
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LEADQL_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Wait until the server at `base` knows its keys: a request without
/// one is refused (the API is no longer open) and `key` is accepted.
async fn until_accepted(base: &str, key: &str) {
    let client = reqwest::Client::new();
    let status = |key: Option<String>| {
        let mut request = client
            .post(format!("{base}/graphql"))
            .json(&json!({ "query": "{ leadFunnel { count } }" }));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..100 {
        if status(None).await == 401 && status(Some(key.to_string())).await == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {base} never accepted a new key");
}

pub(crate) async fn deliver(base: &str, body: String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/webhooks/activity"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {SECRET}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// One subscriber: a key's connection with both feeds open.
struct Subscriber {
    ws: WsClient,
    /// Projects it may see; None: all.
    scope: Option<Vec<&'static str>>,
}

/// The lead ids a subscriber received, per feed, after checking that
/// every nested object it got lies in its scope.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    dispositions: BTreeSet<String>,
    activities: BTreeSet<String>,
}

impl Subscriber {
    async fn open(base: &str, key: &str, scope: Option<Vec<&'static str>>) -> Subscriber {
        let ws = WsClient::connect_with(
            base,
            "graphql-transport-ws",
            json!({ "Authorization": format!("Bearer {key}") }),
        )
        .await
        .unwrap();
        Subscriber { ws, scope }
    }

    async fn subscribe(&mut self, after: Option<&str>) {
        self.ws
            .subscribe("d", DISPOSITIONS, json!({ "after": after }))
            .await;
        if after.is_none() {
            self.ws.subscribe("a", ACTIVITIES, json!({})).await;
        }
    }

    fn in_scope(&self, project: &Value) -> bool {
        match &self.scope {
            None => true,
            Some(projects) => project.as_str().is_some_and(|p| projects.contains(&p)),
        }
    }

    async fn seen(&mut self) -> Seen {
        let mut seen = Seen::default();
        for data in self.ws.drain(QUIET).await {
            if let Some(e) = data.get("dispositionChanged") {
                for project in [&e["lead"]["projectId"], &e["activity"]["projectId"]] {
                    assert!(self.in_scope(project), "outside the key's scope: {e}");
                }
                seen.dispositions
                    .insert(e["lead"]["id"].as_str().unwrap().into());
            }
            if let Some(a) = data.get("activityRecorded") {
                for project in [&a["projectId"], &a["lead"]["projectId"]] {
                    assert!(self.in_scope(project), "outside the key's scope: {a}");
                }
                seen.activities.insert(a["leadId"].as_str().unwrap().into());
            }
        }
        seen
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The sequence: keys made while `subscribe_at` runs, three
/// subscribers there (every project; project A; projects A and C), new
/// leads delivered to `ingest_at` in projects B, A, C and none; then the
/// same subscribers resume from the start of the table.
async fn scoped_feeds(database_url: &str, ingest_at: &str, subscribe_at: &str) {
    let all = create_key(database_url, &["--name", "all"]);
    let a = create_key(database_url, &["--name", "scoped", "--project", "A"]);
    let ac = create_key(
        database_url,
        &["--name", "pair", "--project", "A", "--project", "C"],
    );
    for key in [&all, &a, &ac] {
        until_accepted(subscribe_at, key).await;
        until_accepted(ingest_at, key).await;
    }
    let mut subscribers = vec![
        Subscriber::open(subscribe_at, &all, None).await,
        Subscriber::open(subscribe_at, &a, Some(vec!["A"])).await,
        Subscriber::open(subscribe_at, &ac, Some(vec!["A", "C"])).await,
    ];
    for s in &mut subscribers {
        s.subscribe(None).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (lead, project) in [
        ("lead-b", Some("B")),
        ("lead-a", Some("A")),
        ("lead-c", Some("C")),
        ("lead-unknown", None),
    ] {
        deliver(ingest_at, new_lead(lead, project)).await;
    }
    let expected = [
        set(&["lead-a", "lead-b", "lead-c", "lead-unknown"]),
        set(&["lead-a"]),
        set(&["lead-a", "lead-c"]),
    ];
    for (s, leads) in subscribers.iter_mut().zip(&expected) {
        let live = s.seen().await;
        assert_eq!(
            live,
            Seen {
                dispositions: leads.clone(),
                activities: leads.clone()
            },
            "live events for scope {:?}",
            s.scope
        );
    }
    // Resuming from the start reads the table: the same events.
    for (s, leads) in subscribers.iter_mut().zip(&expected) {
        s.ws.close_subscription("d").await;
        s.subscribe(Some("0")).await;
        let replayed = s.seen().await;
        assert_eq!(
            replayed.dispositions, *leads,
            "replayed events for scope {:?}",
            s.scope
        );
    }
    // Queries agree: a scoped key finds no lead of an unknown project.
    let client = reqwest::Client::new();
    for (key, visible) in [(&all, true), (&a, false), (&ac, false)] {
        let body: Value = client
            .post(format!("{subscribe_at}/graphql"))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({ "query": "{ lead(id: \"lead-unknown\") { id } leads(filter: {projectId: {isNull: true}}) { totalCount } }" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["lead"].is_object(), visible, "{body}");
        assert_eq!(
            body["data"]["leads"]["totalCount"],
            json!(if visible { 1 } else { 0 }),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_scoped_key_feed_carries_only_its_projects_events() {
    let db = TestDb::new().await;
    let (_server, base) = ServerProcess::start(&db.url, &[("LEADQL_WEBHOOK_SECRET", SECRET)]).await;
    scoped_feeds(&db.url, &base, &base).await;
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (NOTIFY between instances): set LEADQL_TEST_DATABASE_URL"
)]
async fn a_scoped_key_feed_on_another_instance_carries_only_its_projects_events() {
    let db = TestDb::new().await;
    assert!(db.postgres().is_some(), "needs LEADQL_TEST_DATABASE_URL");
    let env = [("LEADQL_WEBHOOK_SECRET", SECRET)];
    let (_ingesting, ingest_at) = ServerProcess::start(&db.url, &env).await;
    let (_serving, subscribe_at) = ServerProcess::start(&db.url, &env).await;
    scoped_feeds(&db.url, &ingest_at, &subscribe_at).await;
}

/// A key made after the server started, presented before the server's
/// periodic reload has read it: it is looked up, not answered as the open
/// API (which would show it every project, live and in queries).
#[tokio::test]
async fn a_key_presented_before_the_reload_is_scoped_at_once() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let key = leadql::access::create(
        s.db(),
        Some("team-a"),
        &["A".into()],
        leadql::access::Role::Full,
    )
    .await
    .unwrap()
    .key;
    let mut subscriber = Subscriber::open(&base, &key, Some(vec!["A"])).await;
    subscriber.subscribe(None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (lead, project) in [("lead-b", Some("B")), ("lead-a", Some("A"))] {
        let (status, body) = s.deliver(new_lead(lead, project)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        subscriber.seen().await,
        Seen {
            dispositions: set(&["lead-a"]),
            activities: set(&["lead-a"])
        }
    );
    let body: Value = s
        .client
        .post(s.url("/graphql"))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({ "query": "{ leads { nodes { id } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["leads"]["nodes"], json!([{ "id": "lead-a" }]));
    // Without a key the API is closed now.
    assert_eq!(
        s.client
            .post(s.url("/graphql"))
            .json(&json!({ "query": "{ leads { nodes { id } } }" }))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    s.stop().await;
}

/// A connection opened while the API was open does not keep seeing every
/// project once a key exists: it is closed and must reconnect with a key.
#[tokio::test]
async fn an_open_connection_is_closed_when_the_first_key_is_made() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let mut open = WsClient::connect(&s.url(""), "graphql-transport-ws").await;
    open.subscribe("d", DISPOSITIONS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    leadql::access::create(s.db(), Some("first"), &[], leadql::access::Role::Full)
        .await
        .unwrap();
    s.state.keys.reload().await.unwrap();
    let (code, reason) = open
        .close_frame(Duration::from_secs(5))
        .await
        .expect("the connection is closed");
    assert_eq!(code, 4403);
    assert!(reason.contains("API key is required"), "{reason}");
    s.stop().await;
}

/// A key whose stored project list cannot be read is refused, never
/// taken as a key for every project.
#[tokio::test]
async fn a_key_with_an_unreadable_scope_is_refused() {
    use sea_orm::{ConnectionTrait, Statement};
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let (status, body) = s.deliver(new_lead("lead-b", Some("B"))).await;
    assert_eq!(status, 200, "{body}");
    let key = leadql::access::create(
        s.db(),
        Some("odd"),
        &["A".into()],
        leadql::access::Role::Full,
    )
    .await
    .unwrap()
    .key;
    let backend = s.db().get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE api_keys SET projects = '\"A\"'::jsonb",
        _ => "UPDATE api_keys SET projects = '\"A\"'",
    };
    s.db()
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    s.state.keys.reload().await.unwrap();
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("authorization", format!("Bearer {key}"))
        .json(&json!({ "query": "{ leads { nodes { id } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    s.stop().await;
}
