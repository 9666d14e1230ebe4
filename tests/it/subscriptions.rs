//! Subscriptions over WebSocket: filtered live events in commit order,
//! resume after a cursor (both feeds), both protocols, slow subscribers,
//! and (on PostgreSQL) events crossing between two server processes.

use crate::common::*;
use entity::{activity, activity_event, disposition_event};
use futures::StreamExt;
use leadql::config::Config;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{json, Value};
use std::time::Duration;

const FEED: &str = "subscription($f: DispositionEventFilter, $after: String) {
  dispositionChanged(filter: $f, after: $after) {
    cursor disposition previousDisposition dispositionType occurredAt
    lead { id disposition } activity { id timestamp } } }";

const QUIET: Duration = Duration::from_millis(1500);

/// Every stored event, in id (= commit) order.
async fn stored(s: &TestServer) -> Vec<disposition_event::Model> {
    disposition_event::Entity::find()
        .order_by_asc(disposition_event::Column::Id)
        .all(s.db())
        .await
        .unwrap()
}

const RECORDED: &str = "subscription($f: ActivityFilter, $after: String) {
  activityRecorded(filter: $f, after: $after) { recordedCursor id callStatus lead { id } } }";

/// Every entry of the `activityRecorded` log, in id (= commit) order.
async fn recorded(s: &TestServer) -> Vec<activity_event::Model> {
    activity_event::Entity::find()
        .order_by_asc(activity_event::Column::Id)
        .all(s.db())
        .await
        .unwrap()
}

/// The `recordedCursor` and id of each `activityRecorded` result.
fn recorded_cursors(results: &[Value]) -> Vec<(i64, String)> {
    results
        .iter()
        .filter_map(|r| r.get("activityRecorded"))
        .map(|a| {
            (
                a["recordedCursor"].as_str().unwrap().parse().unwrap(),
                a["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The log as (cursor, activity id) pairs.
fn entries(log: &[activity_event::Model]) -> Vec<(i64, String)> {
    log.iter().map(|e| (e.id, e.activity_id.clone())).collect()
}

/// POST payloads with a few senders at once; all must be acknowledged.
async fn post_all(base: &str, payloads: Vec<String>) {
    let client = reqwest::Client::new();
    let url = format!("{base}/webhooks/activity");
    futures::stream::iter(payloads)
        .map(|body| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

fn cursors(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            e["dispositionChanged"]["cursor"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn filtered_events_arrive_once_in_commit_order() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let mut interested = WsClient::connect(&base, "graphql-transport-ws").await;
    interested
        .subscribe(
            "1",
            FEED,
            json!({ "f": { "disposition": { "eq": "interested" } } }),
        )
        .await;
    let mut everything = WsClient::connect(&base, "graphql-transport-ws").await;
    everything.subscribe("2", FEED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    post_all(&base, leadql::generate::generate(120, 5)).await;
    let got = interested.drain(QUIET).await;
    let all = everything.drain(QUIET).await;

    let events = stored(&s).await;
    let expected: Vec<i64> = events
        .iter()
        .filter(|e| e.disposition.eq_ignore_ascii_case("interested"))
        .map(|e| e.id)
        .collect();
    assert!(expected.len() >= 5, "the data has Interested events");
    assert_eq!(
        cursors(&got),
        expected,
        "exactly the matching events, in commit order"
    );
    assert_eq!(
        cursors(&all),
        events.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    // Each carries the previous and new disposition and the lead.
    for (data, event) in all.iter().zip(&events) {
        let e = &data["dispositionChanged"];
        assert_eq!(e["disposition"], json!(event.disposition));
        assert_eq!(e["previousDisposition"], json!(event.previous_disposition));
        assert_eq!(e["lead"]["id"], json!(event.lead_id));
        assert_eq!(e["activity"]["id"], json!(event.activity_id));
    }
    // The open-subscription gauge counts them.
    let metrics = s.metrics().await;
    assert!(metrics.contains("leadql_subscriptions_open 2"), "{metrics}");
    interested.close().await;
    everything.close().await;
    s.stop().await;
}

#[tokio::test]
async fn resuming_after_a_cursor_misses_nothing_and_repeats_nothing() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let payloads = leadql::generate::generate(150, 8);
    let (first, rest) = payloads.split_at(payloads.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client.subscribe("1", FEED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    post_all(&base, first.to_vec()).await;
    let seen = client.drain(QUIET).await;
    assert!(!seen.is_empty());
    let last_cursor = seen.last().unwrap()["dispositionChanged"]["cursor"].clone();
    client.close().await;

    // While disconnected.
    post_all(&base, second.to_vec()).await;

    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client
        .subscribe("1", FEED, json!({ "after": last_cursor }))
        .await;
    let missed = client.drain(QUIET).await;
    // Live again, while more arrive.
    post_all(&base, third.to_vec()).await;
    let live = client.drain(QUIET).await;

    let mut all = seen.clone();
    all.extend(missed.iter().cloned());
    all.extend(live.iter().cloned());
    let ids: Vec<i64> = stored(&s).await.iter().map(|e| e.id).collect();
    assert!(!missed.is_empty() && !live.is_empty());
    assert_eq!(
        cursors(&all),
        ids,
        "every event exactly once, in order, across the reconnect"
    );

    // A cursor that is not one is refused clearly.
    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client
        .subscribe("9", FEED, json!({ "after": "yesterday" }))
        .await;
    let message = client.next_message(QUIET).await.expect("an answer");
    // A resolver error: a result with `errors` (and no data).
    assert!(
        matches!(message["type"].as_str(), Some("next" | "error")),
        "{message}"
    );
    assert!(message["payload"]["data"].is_null(), "{message}");
    assert!(
        message
            .to_string()
            .contains("must be the `cursor` of a DispositionEvent"),
        "{message}"
    );
    s.stop().await;
}

#[tokio::test]
async fn recorded_activities_resume_after_a_cursor_missing_nothing_repeating_nothing() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    // Versions of the same activities arrive in later parts too.
    let payloads = leadql::generate::generate(150, 9);
    let (first, rest) = payloads.split_at(payloads.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);

    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client.subscribe("1", RECORDED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    post_all(&base, first.to_vec()).await;
    let seen = client.drain(QUIET).await;
    assert!(!seen.is_empty());
    let last_cursor = seen.last().unwrap()["activityRecorded"]["recordedCursor"].clone();
    client.close().await;

    // While disconnected.
    post_all(&base, second.to_vec()).await;

    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client
        .subscribe("1", RECORDED, json!({ "after": last_cursor }))
        .await;
    let missed = client.drain(QUIET).await;
    // Live again, while more arrive.
    post_all(&base, third.to_vec()).await;
    let live = client.drain(QUIET).await;
    client.close().await;

    let log = recorded(&s).await;
    assert!(!missed.is_empty() && !live.is_empty());
    let mut all = seen.clone();
    all.extend(missed.iter().cloned());
    all.extend(live.iter().cloned());
    assert_eq!(
        recorded_cursors(&all),
        entries(&log),
        "every stored activity exactly once, in commit order, across the reconnect"
    );
    // Every stored activity has an entry: the log is the feed.
    let stored = activity::Entity::find().all(s.db()).await.unwrap();
    for a in &stored {
        assert!(
            log.iter().any(|e| e.activity_id == a.id),
            "activity {} has no entry",
            a.id
        );
    }

    // Resuming from the start with a filter replays exactly the entries
    // whose activities pass it (as they are now), in order.
    let completed: std::collections::HashSet<&str> = stored
        .iter()
        .filter(|a| a.call_status.as_deref() == Some("completed"))
        .map(|a| a.id.as_str())
        .collect();
    assert!(!completed.is_empty(), "the data has completed calls");
    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client
        .subscribe(
            "2",
            RECORDED,
            json!({ "after": "0", "f": { "callStatus": { "eq": "completed" } } }),
        )
        .await;
    let replayed = client.drain(QUIET).await;
    let expected: Vec<(i64, String)> = entries(&log)
        .into_iter()
        .filter(|(_, id)| completed.contains(id.as_str()))
        .collect();
    assert_eq!(recorded_cursors(&replayed), expected);

    // A cursor that is not one is refused clearly.
    client
        .subscribe("9", RECORDED, json!({ "after": "last tuesday" }))
        .await;
    let message = client.next_message(QUIET).await.expect("an answer");
    assert!(message["payload"]["data"].is_null(), "{message}");
    assert!(
        message
            .to_string()
            .contains("must be the `recordedCursor` of an Activity"),
        "{message}"
    );
    // Outside the feed an activity has no cursor.
    let outside = s
        .query(
            "{ activities(first: 1) { nodes { id recordedCursor } } }",
            json!({}),
        )
        .await;
    let node = &outside["activities"]["nodes"][0];
    assert!(node["id"].is_string(), "{outside}");
    assert_eq!(node["recordedCursor"], Value::Null, "{outside}");
    s.stop().await;
}

#[tokio::test]
async fn both_websocket_protocols_deliver() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut client = WsClient::connect(&base, protocol).await;
        client
            .subscribe("a", "subscription { activityRecorded(filter: {callStatus: {eq: \"completed\"}}) { id leadId callStatus lead { id } } }", json!({}))
            .await;
        client.subscribe("d", FEED, json!({})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = stored(&s).await.len();
        post_all(&base, leadql::generate::generate(20, protocol.len() as u64)).await;
        let results = client.drain(QUIET).await;
        let activities: Vec<&Value> = results
            .iter()
            .filter(|r| r.get("activityRecorded").is_some())
            .collect();
        let events = results
            .iter()
            .filter(|r| r.get("dispositionChanged").is_some())
            .count();
        assert!(!activities.is_empty(), "{protocol}: activities arrive");
        assert!(activities
            .iter()
            .all(|a| a["activityRecorded"]["callStatus"] == "completed"));
        assert_eq!(
            events,
            stored(&s).await.len() - before,
            "{protocol}: every event"
        );
        client.close().await;
    }
    // Without a GraphQL subprotocol the upgrade is refused with a reason.
    let response = s
        .client
        .get(s.url("/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("graphql-transport-ws"));
    s.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_slows_nothing_and_misses_nothing() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    // A tiny buffer, so the silent subscriber surely falls behind it.
    config.subscription_buffer = 8;
    // And little room in the kernel, so it falls behind within this test.
    config.socket_send_buffer = 4 * 1024;
    let s = TestServer::start_with(config).await;
    let base = s.url("");
    let mut silent = WsClient::connect_small_buffer(&base, "graphql-transport-ws").await;
    silent.subscribe("1", FEED, json!({})).await;
    silent.subscribe("2", RECORDED, json!({})).await;
    let mut reading = WsClient::connect(&base, "graphql-ws").await;
    reading.subscribe("1", FEED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Ingest goes on at full speed while one subscriber reads nothing.
    let started = std::time::Instant::now();
    post_all(&base, leadql::generate::generate(600, 21)).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "ingest took {elapsed:?}");
    // Every delivery is acknowledged, so every event is stored.
    let ids: Vec<i64> = stored(&s).await.iter().map(|e| e.id).collect();
    let read_live = reading.drain_at_least(ids.len(), QUIET).await;

    // Later it reads everything, in order, once.
    assert!(
        ids.len() > 8 * 4,
        "more events than the buffer holds ({})",
        ids.len()
    );
    let expected = ids.len() + recorded(&s).await.len();
    let caught_up = silent.drain_at_least(expected, QUIET).await;
    let (activities, events): (Vec<Value>, Vec<Value>) = caught_up
        .into_iter()
        .partition(|r| r.get("activityRecorded").is_some());
    assert_eq!(cursors(&events), ids);
    assert_eq!(cursors(&read_live), ids);
    // Its activities too, each once, in order.
    assert_eq!(recorded_cursors(&activities), entries(&recorded(&s).await));
    // It did fall behind, and caught up from the database.
    let metrics = s.metrics().await;
    assert!(
        sample(&metrics, "leadql_subscription_catch_ups_total") >= 1.0,
        "{metrics}"
    );
    s.stop().await;
}

/// `activityRecorded` behind its buffer: the feed here keeps one page of
/// activities, and five are published while the subscriber reads nothing.
/// It then reads every activity once, in order, from the log. (Driven
/// through the schema, so the subscriber surely stops reading: a silent
/// socket drains into kernel buffers for a while.)
#[tokio::test]
async fn a_recorded_activities_subscriber_behind_its_buffer_catches_up_from_the_log() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    // A second instance's feed on the same database, buffer 8 events and
    // so one page of activities.
    let feed = leadql::feed::Feed::start(
        s.db().clone(),
        8,
        leadql::telemetry::Metrics::new(),
        Default::default(),
    )
    .await
    .unwrap();
    let schema = leadql::graphql::schema(Default::default(), Some(feed.clone()));
    let request =
        async_graphql::Request::new("subscription { activityRecorded { recordedCursor id } }")
            .data(leadql::store::read::Reader::new(s.db().clone()));
    let mut stream = schema.execute_stream(request);
    // The first poll subscribes; nothing has been stored yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err()
    );

    let payloads = leadql::generate::generate(50, 17);
    for part in payloads.chunks(payloads.len() / 5 + 1) {
        post_all(&base, part.to_vec()).await;
        // Published by this feed (its pump reads the log at least once a
        // second) before the next part is stored: a page each.
        let newest = recorded(&s).await.last().unwrap().id;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while feed.recorded() < newest {
            assert!(std::time::Instant::now() < deadline, "the feed publishes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut got = Vec::new();
    while let Ok(Some(response)) = tokio::time::timeout(QUIET, stream.next()).await {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        got.push(response.data.into_json().unwrap());
    }
    assert_eq!(
        recorded_cursors(&got),
        entries(&recorded(&s).await),
        "every stored activity once, in order, after falling behind"
    );
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_subscriptions_with_a_close_frame() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let base = s.url("");
    let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
    client.subscribe("1", FEED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(s.stop());
    // The socket ends with a close frame (code 1001), not a reset.
    let closed = client.close_frame(Duration::from_secs(10)).await;
    assert_eq!(closed.map(|(code, _)| code), Some(1001));
    stopping.await.unwrap();
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (instances notify each other with LISTEN/NOTIFY)"
)]
async fn events_cross_between_two_server_processes_on_postgresql() {
    let db = TestDb::new().await;
    assert!(db.postgres().is_some(), "needs LEADQL_TEST_DATABASE_URL");
    let (_a, base_a) = ServerProcess::start(&db.url, &[]).await;
    let (_b, base_b) = ServerProcess::start(&db.url, &[]).await;
    let mut on_a = WsClient::connect(&base_a, "graphql-transport-ws").await;
    on_a.subscribe("1", FEED, json!({})).await;
    on_a.subscribe("2", RECORDED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payloads = leadql::generate::generate(60, 13);
    let (before, after) = payloads.split_at(payloads.len() / 2);
    post_all(&base_b, before.to_vec()).await;
    let mut results = on_a.drain(Duration::from_secs(3)).await;
    // Cut A's LISTEN connection: it reconnects and reads what it missed.
    let (admin, name) = db.postgres().unwrap();
    let admin_db = sea_orm::Database::connect(admin.as_str()).await.unwrap();
    let cut = sea_orm::ConnectionTrait::execute_unprepared(
        &admin_db,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND query ILIKE 'LISTEN%'"),
    )
    .await
    .unwrap();
    assert!(cut.rows_affected() >= 2, "both instances were listening");
    post_all(&base_b, after.to_vec()).await;
    results.extend(on_a.drain(Duration::from_secs(4)).await);
    let events: Vec<Value> = results
        .iter()
        .filter(|r| r.get("dispositionChanged").is_some())
        .cloned()
        .collect();
    let s = TestServer::start(&db).await;
    let ids: Vec<i64> = stored(&s).await.iter().map(|e| e.id).collect();
    assert!(!ids.is_empty());
    assert_eq!(
        cursors(&events),
        ids,
        "events ingested by B reach A's subscriber, in order"
    );
    let log = entries(&recorded(&s).await);
    assert_eq!(
        recorded_cursors(&results),
        log,
        "recorded activities cross instances too, each once, in order"
    );
    // A client that dropped off A resumes on B from A's cursor.
    let (cut, _) = log[log.len() / 2].clone();
    let mut on_b = WsClient::connect(&base_b, "graphql-transport-ws").await;
    on_b.subscribe("3", RECORDED, json!({ "after": cut.to_string() }))
        .await;
    assert_eq!(
        recorded_cursors(&on_b.drain(QUIET).await),
        log[log.len() / 2 + 1..].to_vec(),
        "resumed on the other instance: the rest, once"
    );
    s.stop().await;
}
