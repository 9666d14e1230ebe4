//! Callbacks: read from the promising call in the zone that applies,
//! PENDING / DUE / DONE / SUPERSEDED at their edges against a clock the
//! test sets, the same whatever order the calls arrive in, listed for a
//! sales floor (by project and status, in due order, unknown moments
//! last) and on their lead, and scoped like every other row.

use crate::common::*;
use chrono::{DateTime, Utc};
use leadql::clock::Clock;
use leadql::config::Config;
use serde_json::{json, Value};

/// 2026-01-13T12:30:00Z: the seed's "13/01/2026 18:00" at the +05:30 the
/// payload shows.
const DUE: i64 = 1_768_307_400_000;
const MINUTE: i64 = 60_000;

fn at(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// The seed's interested call, as `activity` of `lead` in `project` at
/// `ts`, promising `date` `time` (in its tool call and its variables).
fn promise(activity: &str, lead: &str, project: &str, ts: i64, date: &str, time: &str) -> String {
    let mut v: Value = serde_json::from_str(SEED_CONNECTED).unwrap();
    v["activityId"] = json!(activity);
    v["leadId"] = json!(lead);
    v["timestamp"] = json!(ts);
    v["activity"]["result"]["projectId"] = json!(project);
    let arguments = &mut v["activity"]["result"]["conversation"]["toolCalls"][0]["arguments"];
    arguments["callbackDate"] = json!(date);
    arguments["callbackTime"] = json!(time);
    let variables = &mut v["activity"]["result"]["variables"]["variables"];
    variables["callbackDate"] = json!(date);
    variables["callbackTime"] = json!(time);
    variables["Followup_time"] = json!(format!("{date} {time}"));
    v.to_string()
}

/// The seed's busy call (a call attempt promising nothing).
fn call(activity: &str, lead: &str, project: &str, ts: i64) -> String {
    let mut v: Value = serde_json::from_str(SEED_BUSY).unwrap();
    v["activityId"] = json!(activity);
    v["leadId"] = json!(lead);
    v["timestamp"] = json!(ts);
    v["activity"]["result"]["projectId"] = json!(project);
    v.to_string()
}

async fn server_at(db: &TestDb, now: i64) -> (TestServer, Clock) {
    let clock = Clock::manual(now);
    let server = TestServer::start_with(Config {
        clock: clock.clone(),
        ..Config::for_database(&db.url)
    })
    .await;
    (server, clock)
}

async fn deliver_all(server: &TestServer, bodies: &[String]) {
    for body in bodies {
        let (status, answer) = server.deliver(body.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
}

const FIELDS: &str = "id leadId activityId toolCallId requestedAt dueAt localDate localTime \
                      timezone status cursor lead { id } activity { id } fulfilledBy { id }";

/// A lead's callbacks and next callback.
async fn of_lead(server: &TestServer, lead: &str) -> Value {
    let answer = server
        .query(
            &format!(
                "query($id: ID!) {{ lead(id: $id) {{ nextCallback {{ id status }} \
                 callbacks {{ totalCount nodes {{ {FIELDS} }} }} }} }}"
            ),
            json!({ "id": lead }),
        )
        .await;
    answer["lead"].clone()
}

fn ids(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_seeds_callback_is_due_at_1230_utc_pending_until_then_and_due_from_then() {
    let db = TestDb::new().await;
    let (server, clock) = server_at(&db, DUE - 1).await;
    deliver_all(&server, &[SEED_CONNECTED.to_string()]).await;
    let seed: Value = serde_json::from_str(SEED_CONNECTED).unwrap();
    let lead = seed["leadId"].as_str().unwrap();
    let activity = seed["activityId"].as_str().unwrap();

    let before = of_lead(&server, lead).await;
    assert_eq!(before["callbacks"]["totalCount"], 1, "{before}");
    let callback = &before["callbacks"]["nodes"][0];
    assert_eq!(callback["id"], activity);
    assert_eq!(callback["leadId"], lead);
    assert_eq!(callback["activityId"], activity);
    assert_eq!(callback["activity"]["id"], activity);
    assert_eq!(callback["lead"]["id"], lead);
    assert_eq!(
        callback["toolCallId"],
        seed["activity"]["result"]["conversation"]["toolCalls"][0]["tool_call_id"]
    );
    assert_eq!(callback["dueAt"], at(DUE), "18:00 at +05:30");
    assert_eq!(
        callback["requestedAt"],
        at(seed["timestamp"].as_i64().unwrap())
    );
    assert_eq!(callback["localDate"], "13/01/2026");
    assert_eq!(callback["localTime"], "18:00");
    assert_eq!(callback["timezone"], "+05:30");
    assert_eq!(callback["status"], "PENDING", "a millisecond before");
    assert_eq!(callback["fulfilledBy"], Value::Null);
    assert_eq!(callback["cursor"], format!("{DUE}:{activity}"));
    assert_eq!(before["nextCallback"]["id"], activity);

    clock.set_ms(DUE);
    let after = of_lead(&server, lead).await;
    assert_eq!(
        after["callbacks"]["nodes"][0]["status"], "DUE",
        "exactly at dueAt"
    );
    assert_eq!(after["nextCallback"]["status"], "DUE");
    server.stop().await;
}

#[tokio::test]
async fn a_call_from_fifteen_minutes_before_honours_the_promise_whatever_the_delivery_order() {
    let db = TestDb::new().await;
    let (server, _clock) = server_at(&db, DUE + 60 * MINUTE).await;
    let made = DUE - 120 * MINUTE;
    // The honouring call is delivered before the promise it honours.
    deliver_all(
        &server,
        &[
            call("edge-call", "on-the-edge", "P", DUE - 15 * MINUTE),
            promise(
                "edge-promise",
                "on-the-edge",
                "P",
                made,
                "13/01/2026",
                "18:00",
            ),
            promise(
                "early-promise",
                "too-early",
                "P",
                made,
                "13/01/2026",
                "18:00",
            ),
            call("early-call", "too-early", "P", DUE - 15 * MINUTE - 1),
        ],
    )
    .await;

    let edge = of_lead(&server, "on-the-edge").await;
    let callback = &edge["callbacks"]["nodes"][0];
    assert_eq!(callback["status"], "DONE", "{edge}");
    assert_eq!(callback["fulfilledBy"]["id"], "edge-call");
    assert_eq!(edge["nextCallback"], Value::Null, "nothing left to do");

    let early = of_lead(&server, "too-early").await;
    let callback = &early["callbacks"]["nodes"][0];
    assert_eq!(
        callback["status"], "DUE",
        "a call a millisecond too early does not count"
    );
    assert_eq!(callback["fulfilledBy"], Value::Null);
    assert_eq!(early["nextCallback"]["id"], "early-promise");

    // Delivered again in the other order, to a fresh database: the same rows.
    let other = TestDb::new().await;
    let (again, _clock) = server_at(&other, DUE + 60 * MINUTE).await;
    deliver_all(
        &again,
        &[
            promise(
                "early-promise",
                "too-early",
                "P",
                made,
                "13/01/2026",
                "18:00",
            ),
            call("early-call", "too-early", "P", DUE - 15 * MINUTE - 1),
            promise(
                "edge-promise",
                "on-the-edge",
                "P",
                made,
                "13/01/2026",
                "18:00",
            ),
            call("edge-call", "on-the-edge", "P", DUE - 15 * MINUTE),
        ],
    )
    .await;
    assert_eq!(
        snapshot(server.db()).await["callbacks"],
        snapshot(again.db()).await["callbacks"]
    );
    server.stop().await;
    again.stop().await;
}

#[tokio::test]
async fn a_newer_promise_before_the_first_was_honoured_supersedes_it() {
    let db = TestDb::new().await;
    let (server, _clock) = server_at(&db, DUE + 600 * MINUTE).await;
    deliver_all(
        &server,
        &[
            promise("first", "L", "P", DUE - 300 * MINUTE, "13/01/2026", "18:00"),
            // Called again before 18:00 and moved to 20:00.
            promise(
                "second",
                "L",
                "P",
                DUE - 200 * MINUTE,
                "13/01/2026",
                "20:00",
            ),
            // The call at 20:05 honours the second and promises a third.
            promise("third", "L", "P", DUE + 125 * MINUTE, "14/01/2026", "6 PM"),
        ],
    )
    .await;
    let lead = of_lead(&server, "L").await;
    let statuses: Vec<(&str, &str)> = lead["callbacks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("first", "SUPERSEDED"),
            ("second", "DONE"),
            ("third", "PENDING")
        ]
    );
    assert_eq!(lead["callbacks"]["nodes"][1]["fulfilledBy"]["id"], "third");
    assert_eq!(lead["nextCallback"]["id"], "third");
    let superseded = server
        .query(
            "{ callbacks(filter: {status: [SUPERSEDED, DONE]}) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&superseded["callbacks"]), ["first", "second"]);
    server.stop().await;
}

#[tokio::test]
async fn the_sales_floor_lists_a_projects_due_callbacks_in_due_order_and_unknown_moments_last() {
    let db = TestDb::new().await;
    let now = DUE + 30 * MINUTE;
    let (server, _clock) = server_at(&db, now).await;
    let made = DUE - 600 * MINUTE;
    deliver_all(
        &server,
        &[
            promise("p1-1800", "a", "P1", made, "13/01/2026", "18:00"),
            promise("p1-1745", "b", "P1", made, "13/01/2026", "17:45"),
            promise("p1-1801", "c", "P1", made, "2026-01-13", "6:01 PM"),
            promise("p1-later", "d", "P1", made, "13/01/2026", "21:00"),
            promise("p1-unreadable", "e", "P1", made, "someday", "soon"),
            promise("p2-1700", "f", "P2", made, "13/01/2026", "17:00"),
        ],
    )
    .await;
    let due = server
        .query(
            "query($p: String!) { callbacks(filter: {status: [DUE], projectId: {eq: $p}}) \
             { totalCount nodes { id status } } }",
            json!({ "p": "P1" }),
        )
        .await;
    assert_eq!(due["callbacks"]["totalCount"], 3);
    assert_eq!(ids(&due["callbacks"]), ["p1-1745", "p1-1800", "p1-1801"]);

    // Every callback of P1, two at a time: due order, unknown moments last.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = server
            .query(
                "query($after: String) { callbacks(first: 2, after: $after, \
                 filter: {projectId: {eq: \"P1\"}}) { nodes { id dueAt status } \
                 pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        seen.extend(ids(&page["callbacks"]));
        if page["callbacks"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["callbacks"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_string);
    }
    assert_eq!(
        seen,
        ["p1-1745", "p1-1800", "p1-1801", "p1-later", "p1-unreadable"]
    );
    let pending = server
        .query(
            "{ callbacks(filter: {status: [PENDING]}, orderBy: [{field: DUE_AT, direction: DESC}]) \
             { nodes { id dueAt localDate localTime } } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&pending["callbacks"]), ["p1-unreadable", "p1-later"]);
    let unreadable = &pending["callbacks"]["nodes"][0];
    assert_eq!(unreadable["dueAt"], Value::Null);
    assert_eq!(unreadable["localDate"], "someday");
    assert_eq!(unreadable["localTime"], "soon");
    let none = server
        .query(
            "{ callbacks(filter: {status: []}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        none["callbacks"]["totalCount"], 0,
        "an empty status list matches nothing"
    );

    // A key scoped to P2 sees P2's callback only, whatever it asks.
    let key = leadql::access::create(
        server.db(),
        Some("p2"),
        &["P2".to_string()],
        leadql::access::Role::Full,
    )
    .await
    .unwrap()
    .key;
    server.state.keys.reload().await.unwrap();
    let scoped: Value = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&key)
        .json(&json!({ "query": "{ callbacks { nodes { id } } lead(id: \"a\") { id } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&scoped["data"]["callbacks"]), ["p2-1700"], "{scoped}");
    assert_eq!(scoped["data"]["lead"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn a_projects_zone_comes_first_then_the_payloads_offset_then_the_default() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.clock = Clock::manual(DUE);
    config.callbacks.project_timezones =
        leadql::ingest::payload::callback::Zone::parse_projects("London=Europe/London").unwrap();
    config.callbacks.timezone =
        leadql::ingest::payload::callback::Zone::parse("America/New_York").unwrap();
    let server = TestServer::start_with(config).await;
    let mut no_offset: Value = serde_json::from_str(&promise(
        "plain",
        "n",
        "Elsewhere",
        DUE,
        "14/01/2026",
        "09:30",
    ))
    .unwrap();
    // Without its local currentDate the payload shows no offset.
    for part in ["variables", "input"] {
        let local = if part == "variables" {
            &mut no_offset["activity"]["result"]["variables"]["variables"]
        } else {
            &mut no_offset["activity"]["result"]["input"]
        };
        local.as_object_mut().unwrap().remove("currentDate");
    }
    deliver_all(
        &server,
        &[
            promise("london", "l", "London", DUE, "14/01/2026", "09:30"),
            promise("shown", "s", "Elsewhere", DUE, "14/01/2026", "09:30"),
            no_offset.to_string(),
        ],
    )
    .await;
    let all = server
        .query(
            "{ callbacks(orderBy: [{field: REQUESTED_AT}]) { nodes { id dueAt timezone } } }",
            json!({}),
        )
        .await;
    let by_id = |id: &str| {
        all["callbacks"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {all}"))
    };
    assert_eq!(by_id("london")["timezone"], "Europe/London");
    assert_eq!(by_id("london")["dueAt"], "2026-01-14T09:30:00+00:00");
    assert_eq!(by_id("shown")["timezone"], "+05:30");
    assert_eq!(by_id("shown")["dueAt"], "2026-01-14T04:00:00+00:00");
    assert_eq!(by_id("plain")["timezone"], "America/New_York");
    assert_eq!(by_id("plain")["dueAt"], "2026-01-14T14:30:00+00:00");
    server.stop().await;
}

const DUE_FEED: &str = "subscription($f: CallbackFilter, $after: String) { \
    callbackDue(filter: $f, after: $after) { id status dueAt cursor lead { id } activity { id } } }";

/// The ids of `callbackDue` results, and the last cursor.
fn due_ids(results: &[Value]) -> (Vec<String>, Option<String>) {
    let ids = results
        .iter()
        .map(|r| r["callbackDue"]["id"].as_str().unwrap().to_string())
        .collect();
    let cursor = results
        .last()
        .map(|r| r["callbackDue"]["cursor"].as_str().unwrap().to_string());
    (ids, cursor)
}

/// Time for a subscription to start (the protocol does not acknowledge
/// one).
const SUBSCRIBED: std::time::Duration = std::time::Duration::from_millis(300);

/// Long enough for the feed's pump to notice a moved clock (it wakes at
/// the next moment it knows, and at least once a second).
const QUIET: std::time::Duration = std::time::Duration::from_millis(1500);

#[tokio::test]
async fn callback_due_fires_once_per_open_callback_at_its_moment_in_order_and_resumes() {
    let db = TestDb::new().await;
    let (server, clock) = server_at(&db, DUE - 120 * MINUTE).await;
    let made = DUE - 300 * MINUTE;
    deliver_all(
        &server,
        &[
            promise("a-1800", "a", "P1", made, "13/01/2026", "18:00"),
            promise("b-1745", "b", "P1", made, "13/01/2026", "17:45"),
            promise("c-1800-done", "c", "P1", made, "13/01/2026", "18:00"),
            call("c-call", "c", "P1", DUE - 10 * MINUTE),
            promise("d-1900", "d", "P1", made, "13/01/2026", "19:00"),
            promise("e-unreadable", "e", "P1", made, "13/01/2026", "teatime"),
            promise("f-1750", "f", "P2", made, "13/01/2026", "17:50"),
        ],
    )
    .await;
    let base = server.url("");
    let mut everything = WsClient::connect(&base, "graphql-transport-ws").await;
    everything.subscribe("1", DUE_FEED, json!({})).await;
    let mut p1_due = WsClient::connect(&base, "graphql-transport-ws").await;
    p1_due
        .subscribe(
            "1",
            DUE_FEED,
            json!({ "f": { "projectId": { "eq": "P1" }, "status": ["DUE"] } }),
        )
        .await;
    tokio::time::sleep(SUBSCRIBED).await;
    let mut bad = WsClient::connect(&base, "graphql-transport-ws").await;
    bad.subscribe("1", DUE_FEED, json!({ "after": "tomorrow" }))
        .await;
    let refused = bad.next_message(QUIET).await.expect("an answer");
    assert!(
        refused
            .to_string()
            .contains("`after` must be the `cursor` of a Callback"),
        "{refused}"
    );

    clock.set_ms(DUE - 15 * MINUTE - 1);
    assert!(
        everything.drain(QUIET).await.is_empty(),
        "nothing is due yet"
    );
    clock.set_ms(DUE - 15 * MINUTE);
    let first = everything.drain(QUIET).await;
    assert_eq!(due_ids(&first).0, ["b-1745"]);
    assert_eq!(first[0]["callbackDue"]["status"], "DUE");
    assert_eq!(first[0]["callbackDue"]["lead"]["id"], "b");
    assert_eq!(first[0]["callbackDue"]["activity"]["id"], "b-1745");
    clock.set_ms(DUE);
    let second = everything.drain(QUIET).await;
    // c was honoured before its moment: it never comes due.
    assert_eq!(due_ids(&second).0, ["f-1750", "a-1800"]);
    let (_, cursor) = due_ids(&second);
    everything.close().await;

    // While this client is away, d comes due.
    clock.set_ms(DUE + 60 * MINUTE);
    let p1 = p1_due.drain(QUIET).await;
    assert_eq!(due_ids(&p1).0, ["b-1745", "a-1800", "d-1900"]);

    let mut resumed = WsClient::connect(&base, "graphql-transport-ws").await;
    resumed
        .subscribe("1", DUE_FEED, json!({ "after": cursor }))
        .await;
    let missed = resumed.drain(QUIET).await;
    assert_eq!(
        due_ids(&missed).0,
        ["d-1900"],
        "exactly what came due while away"
    );
    clock.set_ms(DUE + 24 * 60 * MINUTE);
    assert!(
        resumed.drain(QUIET).await.is_empty(),
        "an unreadable moment never comes due, and nothing comes twice"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_callback_that_came_due_while_the_server_was_down_is_sent_to_a_client_that_resumes() {
    let db = TestDb::new().await;
    let (server, clock) = server_at(&db, DUE - 60 * MINUTE).await;
    let made = DUE - 300 * MINUTE;
    deliver_all(
        &server,
        &[
            promise("early", "a", "P", made, "13/01/2026", "17:15"),
            promise("later", "b", "P", made, "13/01/2026", "18:00"),
            promise("latest", "c", "P", made, "13/01/2026", "19:00"),
        ],
    )
    .await;
    let mut client = WsClient::connect(&server.url(""), "graphql-transport-ws").await;
    client.subscribe("1", DUE_FEED, json!({})).await;
    // The protocol does not acknowledge a subscription: give it time to
    // start before anything comes due.
    tokio::time::sleep(SUBSCRIBED).await;
    clock.set_ms(DUE - 30 * MINUTE);
    let (seen, cursor) = due_ids(&client.drain(QUIET).await);
    assert_eq!(seen, ["early"]);
    client.close().await;
    server.stop().await;

    // Down past 18:00; up again at 18:30.
    let (server, _clock) = server_at(&db, DUE + 30 * MINUTE).await;
    let mut client = WsClient::connect(&server.url(""), "graphql-transport-ws").await;
    client
        .subscribe("1", DUE_FEED, json!({ "after": cursor }))
        .await;
    let (missed, _) = due_ids(&client.drain(QUIET).await);
    assert_eq!(missed, ["later"]);
    server.stop().await;
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (several instances share one database)"
)]
async fn every_instance_sends_the_same_due_callbacks_and_a_client_may_resume_on_another() {
    let db = TestDb::new().await;
    assert!(db.postgres().is_some(), "needs LEADQL_TEST_DATABASE_URL");
    let (_a, base_a) = ServerProcess::start(&db.url, &[]).await;
    let (_b, base_b) = ServerProcess::start(&db.url, &[]).await;
    let mut on_a = WsClient::connect(&base_a, "graphql-transport-ws").await;
    on_a.subscribe("1", DUE_FEED, json!({})).await;
    tokio::time::sleep(SUBSCRIBED).await;
    // Real time here: promises two and four seconds ahead, in the
    // payload's own +05:30, stored through instance B.
    let now = leadql::store::now_ms();
    let local = |ms: i64| {
        let t =
            DateTime::<Utc>::from_timestamp_millis(ms).unwrap() + chrono::Duration::minutes(330);
        (
            t.format("%d/%m/%Y").to_string(),
            t.format("%H:%M:%S").to_string(),
        )
    };
    // Whole seconds: the text has no milliseconds.
    let soon = (now / 1000 + 2) * 1000;
    let (d1, t1) = local(soon);
    let (d2, t2) = local(soon + 2000);
    let client = reqwest::Client::new();
    for body in [
        promise("first", "x", "P", now - 60_000, &d1, &t1),
        promise("second", "y", "P", now - 60_000, &d2, &t2),
    ] {
        let status = client
            .post(format!("{base_b}/webhooks/activity"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let first = on_a
        .next_data(std::time::Duration::from_secs(10))
        .await
        .expect("the first came due on A");
    assert_eq!(first["callbackDue"]["id"], "first");
    assert_eq!(first["callbackDue"]["dueAt"], at(soon));
    let cursor = first["callbackDue"]["cursor"].clone();
    on_a.close().await;
    // Resumed on B: the rest, once.
    let mut on_b = WsClient::connect(&base_b, "graphql-transport-ws").await;
    on_b.subscribe("1", DUE_FEED, json!({ "after": cursor }))
        .await;
    let second = on_b
        .next_data(std::time::Duration::from_secs(10))
        .await
        .expect("the second came due");
    assert_eq!(second["callbackDue"]["id"], "second");
    assert!(on_b.drain(QUIET).await.is_empty(), "nothing twice");
}

const TIMELINE: &str = "query($id: ID!, $kinds: [TimelineKind!], $first: Int, $after: String, \
    $last: Int, $before: String) { lead(id: $id) { timeline(kinds: $kinds, first: $first, \
    after: $after, last: $last, before: $before) { totalCount \
    edges { cursor node { at kind summary fromState toState activity { id } \
    dispositionEvent { previousDisposition disposition } update { id success } callback { id } } } \
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";

#[tokio::test]
async fn a_leads_timeline_lists_everything_that_happened_oldest_first_and_pages_both_ways() {
    let db = TestDb::new().await;
    let (server, clock) = server_at(&db, DUE - MINUTE).await;
    let seed: Value = serde_json::from_str(SEED_CONNECTED).unwrap();
    let lead = seed["leadId"].as_str().unwrap().to_string();
    let called = seed["timestamp"].as_i64().unwrap();
    let earlier = called - 3_600_000;
    let mut busy: Value = serde_json::from_str(SEED_BUSY).unwrap();
    busy["leadId"] = json!(lead);
    busy["activityId"] = json!("busy-call");
    busy["timestamp"] = json!(earlier);
    let update = include_str!("../../fixtures/update-success.json");
    // Delivered out of order: the timeline is in the order things happened.
    deliver_all(
        &server,
        &[
            busy.to_string(),
            update.to_string(),
            SEED_CONNECTED.to_string(),
        ],
    )
    .await;
    let ask = |vars: Value| {
        let server = &server;
        let lead = lead.clone();
        async move {
            let mut vars = vars;
            vars["id"] = json!(lead);
            server.query(TIMELINE, vars).await["lead"]["timeline"].clone()
        }
    };
    let kinds = |t: &Value| -> Vec<String> {
        t["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["kind"].as_str().unwrap().to_string())
            .collect()
    };

    let before_due = ask(json!({})).await;
    assert_eq!(
        kinds(&before_due),
        [
            "CALL",
            "STATE_CHANGE",
            "DISPOSITION_CHANGE",
            "CALL",
            "STATE_CHANGE",
            "DISPOSITION_CHANGE",
            "CALLBACK_REQUESTED",
            "LEAD_UPDATE"
        ],
        "{before_due}"
    );
    clock.set_ms(DUE);
    let all = ask(json!({})).await;
    let nodes: Vec<&Value> = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(all["totalCount"], 9);
    assert_eq!(kinds(&all).last().map(String::as_str), Some("CALLBACK_DUE"));
    assert_eq!(nodes[0]["at"], at(earlier));
    assert_eq!(nodes[0]["activity"]["id"], "busy-call");
    assert_eq!(nodes[1]["fromState"], busy["activity"]["fromState"]);
    assert_eq!(nodes[1]["toState"], busy["activity"]["toState"]);
    assert_eq!(nodes[1]["activity"]["id"], "busy-call");
    assert_eq!(nodes[2]["dispositionEvent"]["disposition"], "Attempted");
    assert_eq!(
        nodes[2]["dispositionEvent"]["previousDisposition"],
        Value::Null
    );
    assert_eq!(nodes[3]["at"], at(called));
    assert_eq!(nodes[4]["summary"], "make_second_call → interested");
    assert_eq!(nodes[5]["summary"], "Attempted → Interested");
    assert_eq!(nodes[6]["callback"]["id"], seed["activityId"]);
    assert_eq!(nodes[7]["update"]["success"], true);
    assert_eq!(nodes[7]["activity"], Value::Null);
    assert_eq!(nodes[8]["at"], at(DUE));
    assert_eq!(nodes[8]["callback"]["id"], seed["activityId"]);
    let cursors: Vec<String> = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_string())
        .collect();

    // Three at a time forward, and four at a time backward: the same list.
    let mut forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = ask(json!({ "first": 3, "after": after })).await;
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null());
        forward.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["cursor"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(forward, cursors);
    let mut backward: Vec<Value> = Vec::new();
    let mut before = Value::Null;
    loop {
        let page = ask(json!({ "last": 4, "before": before })).await;
        let mut chunk: Vec<Value> = page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["cursor"].clone())
            .collect();
        chunk.extend(backward);
        backward = chunk;
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(backward, cursors);

    let callbacks_only = ask(json!({ "kinds": ["CALLBACK_REQUESTED", "CALLBACK_DUE"] })).await;
    assert_eq!(
        kinds(&callbacks_only),
        ["CALLBACK_REQUESTED", "CALLBACK_DUE"]
    );
    assert_eq!(callbacks_only["totalCount"], 2);

    let refused = server
        .graphql(TIMELINE, json!({ "id": lead, "after": "yesterday" }))
        .await;
    assert!(
        refused
            .to_string()
            .contains("must be the cursor of a timeline entry"),
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test]
async fn generated_data_has_callbacks_honoured_late_missed_superseded_and_unreadable_in_several_zones(
) {
    let db = TestDb::new().await;
    // Long after the generated month: every moment has passed.
    let (server, _clock) = server_at(&db, DUE + 365 * 24 * 60 * MINUTE).await;
    let generated = leadql::generate::generate(400, 3);
    for body in &generated {
        assert_eq!(server.deliver(body.clone()).await.0, 200);
    }
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server
            .query(
                "query($after: String) { callbacks(first: 500, after: $after) { nodes { \
                 id status dueAt timezone localDate localTime fulfilledBy { timestamp } } \
                 pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        all.extend(page["callbacks"]["nodes"].as_array().unwrap().clone());
        if page["callbacks"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["callbacks"]["pageInfo"]["endCursor"].clone();
    }
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|c| f(c)).count();
    let millis = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let on_time = count(&|c| {
        c["status"] == "DONE"
            && !c["dueAt"].is_null()
            && (millis(&c["fulfilledBy"]["timestamp"]) - millis(&c["dueAt"])).abs() <= 15 * MINUTE
    });
    let late = count(&|c| {
        c["status"] == "DONE"
            && !c["dueAt"].is_null()
            && millis(&c["fulfilledBy"]["timestamp"]) - millis(&c["dueAt"]) >= 60 * MINUTE
    });
    let missed = count(&|c| c["status"] == "DUE");
    let superseded = count(&|c| c["status"] == "SUPERSEDED");
    let unreadable = count(&|c| c["dueAt"].is_null());
    let twelve_hour = count(&|c| c["localTime"].as_str().is_some_and(|t| t.ends_with('M')));
    let iso = count(&|c| c["localDate"].as_str().is_some_and(|d| d.contains('-')));
    for (what, n) in [
        ("honoured on time", on_time),
        ("honoured late", late),
        ("missed", missed),
        ("superseded", superseded),
        ("unreadable", unreadable),
        ("12-hour times", twelve_hour),
        ("ISO dates", iso),
    ] {
        assert!(n > 0, "no {what} callbacks among {}", all.len());
    }
    let zones: std::collections::BTreeSet<&str> =
        all.iter().filter_map(|c| c["timezone"].as_str()).collect();
    assert!(
        zones.contains("+05:30") && zones.contains("+04:00") && zones.contains("+00:00"),
        "{zones:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn demo_data_has_callbacks_due_now_and_still_ahead() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    leadql::demo::load_recent(&server.state, 300).await.unwrap();
    let statuses = server
        .query(
            "{ due: callbacks(filter: {status: [DUE]}) { totalCount } \
               pending: callbacks(filter: {status: [PENDING]}) { totalCount } \
               done: callbacks(filter: {status: [DONE]}) { totalCount } }",
            json!({}),
        )
        .await;
    for kind in ["due", "pending", "done"] {
        assert!(
            statuses[kind]["totalCount"].as_i64().unwrap() > 0,
            "no {kind} callbacks in the demo: {statuses}"
        );
    }
    let future_calls = server
        .query(
            "query($now: DateTime!) { activities(filter: {timestamp: {gt: $now}}) { totalCount } }",
            json!({ "now": Utc::now().to_rfc3339() }),
        )
        .await;
    assert_eq!(
        future_calls["activities"]["totalCount"], 0,
        "no call happens in the future"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_newer_version_of_a_call_can_withdraw_or_move_its_promise() {
    let db = TestDb::new().await;
    let (server, _clock) = server_at(&db, DUE).await;
    let made = DUE - 300 * MINUTE;
    deliver_all(
        &server,
        &[
            promise("withdrawn", "w", "P", made, "13/01/2026", "18:00"),
            promise("moved", "from", "P", made, "13/01/2026", "18:00"),
            // Newer versions: the first without a promise, the second on
            // another lead.
            call("withdrawn", "w", "P", made + 1),
            promise("moved", "to", "P", made + 1, "13/01/2026", "19:00"),
        ],
    )
    .await;
    assert_eq!(of_lead(&server, "w").await["callbacks"]["totalCount"], 0);
    assert_eq!(of_lead(&server, "from").await["callbacks"]["totalCount"], 0);
    let to = of_lead(&server, "to").await;
    assert_eq!(ids(&to["callbacks"]), ["moved"]);
    assert_eq!(to["callbacks"]["nodes"][0]["localTime"], "19:00");
    // The same as storing only the newest versions.
    let fresh = TestDb::new().await;
    let (again, _clock) = server_at(&fresh, DUE).await;
    deliver_all(
        &again,
        &[
            call("withdrawn", "w", "P", made + 1),
            promise("moved", "to", "P", made + 1, "13/01/2026", "19:00"),
        ],
    )
    .await;
    assert_eq!(
        snapshot(server.db()).await["callbacks"],
        snapshot(again.db()).await["callbacks"]
    );
    server.stop().await;
    again.stop().await;
}
