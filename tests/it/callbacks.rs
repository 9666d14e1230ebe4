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
