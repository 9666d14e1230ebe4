//! API keys: scoped keys see their projects only, everywhere; missing,
//! wrong and revoked keys are refused over HTTP and WebSocket; keys are
//! stored hashed; a webhook secret is not a key; per-key rate limits.

use crate::common::*;
use crate::filters::demo_server;
use entity::{activity, api_key, disposition_event, lead};
use leadql::config::Config;
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// POST a query with an API key; the status and the answer.
async fn ask(s: &TestServer, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let mut request = s
        .client
        .post(s.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    answer(request.send().await.unwrap()).await
}

/// The `data` of a query that must succeed.
async fn data(s: &TestServer, key: &str, query: &str, variables: Value) -> Value {
    let (status, body) = ask(s, Some(key), query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

async fn key(s: &TestServer, name: &str, projects: &[&str]) -> String {
    let projects: Vec<String> = projects.iter().map(|p| p.to_string()).collect();
    let created = leadql::access::create(s.db(), Some(name), &projects, leadql::access::Role::Full)
        .await
        .unwrap();
    s.state.keys.reload().await.unwrap();
    created.key
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_scoped_key_sees_only_its_projects_everywhere() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 60).await;
    let leads = lead::Entity::find().all(s.db()).await.unwrap();
    let mut per_project: HashMap<String, usize> = HashMap::new();
    for l in &leads {
        if let Some(p) = &l.project_id {
            *per_project.entry(p.clone()).or_default() += 1;
        }
    }
    let mut projects: Vec<(&String, &usize)> = per_project.iter().collect();
    projects.sort_by(|a, b| b.1.cmp(a.1));
    let (a, b) = (projects[0].0.clone(), projects[1].0.clone());
    let mine: BTreeSet<String> = leads
        .iter()
        .filter(|l| l.project_id.as_deref() == Some(&a))
        .map(|l| l.id.clone())
        .collect();
    let theirs = leads
        .iter()
        .find(|l| l.project_id.as_deref() == Some(&b))
        .unwrap()
        .id
        .clone();
    let activities = activity::Entity::find().all(s.db()).await.unwrap();
    let my_activities: Vec<&activity::Model> = activities
        .iter()
        .filter(|x| mine.contains(&x.lead_id))
        .collect();
    let their_activity = activities
        .iter()
        .find(|x| x.lead_id == theirs)
        .unwrap()
        .id
        .clone();
    let their_conversation = activities
        .iter()
        .find(|x| !mine.contains(&x.lead_id) && x.has_conversation)
        .unwrap()
        .id
        .clone();

    let scoped = key(&s, "team-a", &[&a]).await;
    let everyone = key(&s, "admin", &[]).await;

    // Root lists: only leads of A, and rows that belong to them.
    let d = data(
        &s,
        &scoped,
        "{ leads(first: 500) { totalCount nodes { id projectId } } }",
        json!({}),
    )
    .await;
    let ids: BTreeSet<String> = strings(&d["leads"], "id").into_iter().collect();
    assert_eq!(ids, mine);
    assert_eq!(
        d["leads"]["totalCount"].as_u64().unwrap() as usize,
        mine.len()
    );
    let query = "{ activities(first: 500) { totalCount nodes { leadId } }
                   conversations(first: 500) { nodes { leadId } }
                   analyses(first: 500) { nodes { leadId } }
                   toolCalls(first: 500) { nodes { leadId } } }";
    let d = data(&s, &scoped, query, json!({})).await;
    assert_eq!(
        d["activities"]["totalCount"].as_u64().unwrap() as usize,
        my_activities.len()
    );
    for list in ["activities", "conversations", "analyses", "toolCalls"] {
        let owners = strings(&d[list], "leadId");
        assert!(!owners.is_empty(), "{list}");
        assert!(
            owners.iter().all(|o| mine.contains(o)),
            "{list} shows another project's rows"
        );
    }
    // Single lookups of another project's objects answer null.
    let d = data(
        &s,
        &scoped,
        "query($l: ID!, $a: ID!, $c: ID!) { lead(id: $l) { id } activity(id: $a) { id } conversation(id: $c) { id } }",
        json!({ "l": theirs, "a": their_activity, "c": their_conversation }),
    )
    .await;
    assert_eq!(
        d,
        json!({ "lead": null, "activity": null, "conversation": null })
    );
    let d = data(
        &s,
        &everyone,
        "query($l: ID!) { lead(id: $l) { id } }",
        json!({ "l": theirs }),
    )
    .await;
    assert_eq!(d["lead"]["id"], json!(theirs), "an unscoped key sees it");
    // Nested fields under a visible lead.
    let one_of_mine = mine.iter().next().unwrap();
    let d = data(
        &s,
        &scoped,
        "query($l: ID!) { lead(id: $l) { activities { nodes { lead { projectId } } } dispositionHistory { nodes { lead { id } } } } }",
        json!({ "l": one_of_mine }),
    )
    .await;
    for node in d["lead"]["activities"]["nodes"].as_array().unwrap() {
        assert_eq!(node["lead"]["projectId"], json!(a));
    }
    // Aggregates count only A.
    let d = data(
        &s,
        &scoped,
        "{ leadFunnel { count } callStats { attempts } dispositionCounts { count } }",
        json!({}),
    )
    .await;
    let funnel: i64 = d["leadFunnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(funnel as usize, mine.len());
    let attempts = my_activities
        .iter()
        .filter(|x| x.r#type.as_deref() == Some("call"))
        .count();
    assert_eq!(
        d["callStats"]["attempts"].as_u64().unwrap() as usize,
        attempts
    );
    let counted: i64 = d["dispositionCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(
        counted as usize,
        my_activities
            .iter()
            .filter(|x| x.analysis_disposition.is_some())
            .count()
    );
    let d = data(
        &s,
        &everyone,
        "{ activities(first: 0) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        d["activities"]["totalCount"].as_u64().unwrap() as usize,
        activities.len()
    );
    let d = data(&s, &everyone, "{ leadFunnel { count } }", json!({})).await;
    let all: i64 = d["leadFunnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(all as usize, leads.len());
    // Search.
    let q = "{ leads(filter: {search: \"insurance\"}, first: 500) { nodes { id } } }";
    let found = strings(&data(&s, &scoped, q, json!({})).await["leads"], "id");
    let found_all = strings(&data(&s, &everyone, q, json!({})).await["leads"], "id");
    assert!(!found.is_empty() && found.len() < found_all.len());
    assert!(found.iter().all(|id| mine.contains(id)));

    // Subscriptions: only A's events, replayed and live.
    let base = s.url("");
    let feed =
        "subscription { dispositionChanged(after: \"0\") { cursor leadId lead { projectId } } }";
    let mut team = WsClient::connect_with(
        &base,
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {scoped}") }),
    )
    .await
    .unwrap();
    team.subscribe("1", feed, json!({})).await;
    let mut admin = WsClient::connect_with(
        &base,
        "graphql-ws",
        json!({ "Authorization": format!("Bearer {everyone}") }),
    )
    .await
    .unwrap();
    admin.subscribe("1", feed, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    leadql::demo::load(&s.state, 30).await.unwrap();
    let seen_team = team.drain(Duration::from_millis(1500)).await;
    let seen_admin = admin.drain(Duration::from_millis(1500)).await;
    let events = disposition_event::Entity::find().all(s.db()).await.unwrap();
    let of_a = events
        .iter()
        .filter(|e| e.project_id.as_deref() == Some(a.as_str()))
        .count();
    assert_eq!(seen_team.len(), of_a, "team A gets exactly A's events");
    assert!(seen_team
        .iter()
        .all(|e| e["dispositionChanged"]["lead"]["projectId"] == json!(a)));
    assert_eq!(
        seen_admin.len(),
        events.len(),
        "an unscoped key gets them all"
    );
    s.stop().await;
}

#[tokio::test]
async fn missing_wrong_and_revoked_keys_are_refused() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.webhook_secret = Some(leadql::ingest::auth::WebhookSecret::new("webhook-s3cret"));
    let s = TestServer::start_with(config).await;
    let query = "{ leadFunnel { count } }";
    // No key yet: open.
    let (status, _) = ask(&s, None, query, json!({})).await;
    assert_eq!(status, 200);

    let good = key(&s, "reader", &[]).await;
    for (key, expected) in [
        (None, "an API key is required"),
        (Some("not-a-key"), "not valid"),
        (Some("webhook-s3cret"), "not valid"),
    ] {
        let (status, body) = ask(&s, key, query, json!({})).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("authorization", format!("Token {good}"))
        .json(&json!({"query": query}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(ask(&s, Some(&good), query, json!({})).await.0, 200);

    // Over WebSocket: the key goes in connection_init.
    let base = s.url("");
    for payload in [json!({}), json!({ "Authorization": "Bearer nope" })] {
        let refused = WsClient::connect_with(&base, "graphql-transport-ws", payload.clone()).await;
        let reason = refused
            .err()
            .unwrap_or_else(|| panic!("{payload} was accepted"));
        assert!(reason.contains("API key"), "{reason}");
    }
    let mut client = WsClient::connect_with(
        &base,
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {good}") }),
    )
    .await
    .unwrap();
    client
        .subscribe(
            "1",
            "subscription { dispositionChanged { cursor } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Revoked: refused, and its open subscription is closed.
    leadql::access::revoke(s.db(), "reader").await.unwrap();
    s.state.keys.reload().await.unwrap();
    let (status, body) = ask(&s, Some(&good), query, json!({})).await;
    assert_eq!(status, 401, "{body}");
    let closed = client.close_frame(Duration::from_secs(5)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(4403));
    let refused = WsClient::connect_with(
        &base,
        "graphql-ws",
        json!({ "Authorization": format!("Bearer {good}") }),
    )
    .await;
    assert!(refused.err().unwrap().contains("revoked"));
    // The webhook still takes its own secret, not API keys.
    let response = s
        .client
        .post(s.url("/webhooks/activity"))
        .header("authorization", "Bearer webhook-s3cret")
        .header("content-type", "application/json")
        .body(SEED_BUSY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let created = leadql::access::create(
        s.db(),
        Some("ops"),
        &["P".into()],
        leadql::access::Role::Full,
    )
    .await
    .unwrap();
    assert!(created.key.starts_with("lql_") && created.key.len() > 40);
    let rows = api_key::Entity::find().all(s.db()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let text = format!("{row:?}");
    assert!(
        !text.contains(&created.key),
        "the key is stored in clear: {text}"
    );
    assert!(!text.contains(&created.key[8..]), "{text}");
    assert_eq!(row.key_hash, leadql::access::hash(&created.key));
    assert_eq!(row.projects, Some(json!(["P"])));
    assert_eq!(row.last_used_at, None);
    // Using it records when (for `leadql keys list`).
    s.state.keys.reload().await.unwrap();
    let (status, _) = ask(
        &s,
        Some(&created.key),
        "{ leadFunnel { count } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let mut used = None;
    for _ in 0..50 {
        used = api_key::Entity::find().all(s.db()).await.unwrap()[0].last_used_at;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(used.is_some(), "last use recorded");
    s.stop().await;
}

#[tokio::test]
async fn each_key_is_rate_limited_with_a_clear_error() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.rate_limit = 2;
    let s = TestServer::start_with(config).await;
    let fast = key(&s, "fast", &[]).await;
    let other = key(&s, "other", &[]).await;
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..12 {
        let response = s
            .client
            .post(s.url("/graphql"))
            .header("authorization", format!("Bearer {fast}"))
            .json(&json!({ "query": "{ leadFunnel { count } }" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            refused = Some(response.json::<Value>().await.unwrap());
        }
    }
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    let body = refused.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at most 2 per second"));
    // Another key has its own allowance.
    assert_eq!(
        ask(&s, Some(&other), "{ leadFunnel { count } }", json!({}))
            .await
            .0,
        200
    );
    s.stop().await;
}
