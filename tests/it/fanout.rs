//! Live feeds share their work: what an event's subscribers ask for is
//! read once for all of them, so the statements an event costs do not
//! grow with the number of subscribers.

use crate::common::*;
use crate::scoped_feeds::new_lead;
use serde_json::{json, Value};
use std::time::Duration;

/// A sales team's feed, as in the issue that asked for this.
const TEAM: &str = "subscription($p: String!) {
  dispositionChanged(filter: { projectId: { eq: $p } }) { disposition activity { id } lead { id projectId } } }";
/// A dashboard's activity feed, with the lead of each.
const ACTIVITIES: &str = "subscription($p: String!) {
  activityRecorded(filter: { projectId: { eq: $p } }) { id type lead { id projectId } } }";

const PROJECT: &str = "project-team-7";
const EVENTS: usize = 4;
const WAIT: Duration = Duration::from_secs(20);

/// Read until the two results the new `lead` brings arrive (its
/// disposition change and its activity, in either order), checking them;
/// results of other leads are skipped when `skip`, else fail. False if
/// they do not all come within `wait`.
async fn receive_lead(client: &mut WsClient, lead: &str, skip: bool, wait: Duration) -> bool {
    let receive = async {
        let mut kinds = Vec::new();
        while kinds.len() < 2 {
            let Some(data) = client.next_data(wait).await else {
                return false;
            };
            if let Some(e) = data.get("dispositionChanged") {
                if skip && e["lead"]["id"] != json!(lead) {
                    continue;
                }
                assert_eq!(e["lead"]["id"], json!(lead), "{data}");
                assert_eq!(e["lead"]["projectId"], json!(PROJECT), "{data}");
                assert_eq!(e["activity"]["id"], json!(format!("{lead}-call")), "{data}");
                kinds.push("disposition");
            } else {
                let a = &data["activityRecorded"];
                if skip && a["lead"]["id"] != json!(lead) {
                    continue;
                }
                assert_eq!(a["id"], json!(format!("{lead}-call")), "{data}");
                assert_eq!(a["lead"]["id"], json!(lead), "{data}");
                assert_eq!(a["lead"]["projectId"], json!(PROJECT), "{data}");
                kinds.push("activity");
            }
        }
        kinds.sort();
        assert_eq!(kinds, ["activity", "disposition"], "lead {lead}");
        true
    };
    // The client answers keep-alive pings while it waits: bound the whole.
    tokio::time::timeout(wait, receive).await.unwrap_or(false)
}

/// Statements the subscriptions ran for `EVENTS` new leads of the team's
/// project, with `subscribers` subscribed to both feeds, each on a
/// connection of its own. Each lead is delivered once every subscriber has
/// received the one before, so each is published and read on its own.
async fn statements_for(s: &TestServer, subscribers: usize, round: &str) -> f64 {
    let base = s.url("");
    let mut clients = Vec::new();
    for _ in 0..subscribers {
        let mut client = WsClient::connect(&base, "graphql-transport-ws").await;
        client.subscribe("d", TEAM, json!({ "p": PROJECT })).await;
        client
            .subscribe("a", ACTIVITIES, json!({ "p": PROJECT }))
            .await;
        clients.push(client);
    }
    // Leads until one is received by everyone: from then on every
    // subscription is live (none is starting, or reading the table).
    for attempt in 0.. {
        assert!(attempt < 20, "the subscriptions never all went live");
        let warm = format!("{round}-warm-{attempt}");
        let (status, _) = s.deliver(new_lead(&warm, Some(PROJECT))).await;
        assert_eq!(status, 200);
        let mut everyone = true;
        for client in &mut clients {
            everyone &= receive_lead(client, &warm, true, Duration::from_secs(2)).await;
        }
        if everyone {
            break;
        }
    }
    let before = sample(&s.metrics().await, "leadql_subscription_statements_total");
    for i in 0..EVENTS {
        let lead = format!("{round}-lead-{i}");
        let (status, _) = s.deliver(new_lead(&lead, Some(PROJECT))).await;
        assert_eq!(status, 200);
        for client in &mut clients {
            assert!(
                receive_lead(client, &lead, false, WAIT).await,
                "lead {lead}: a subscriber did not get it"
            );
        }
    }
    let after = sample(&s.metrics().await, "leadql_subscription_statements_total");
    for client in clients {
        client.close().await;
    }
    after - before
}

#[tokio::test]
async fn statements_per_event_do_not_grow_with_subscribers() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let one = statements_for(&s, 1, "one").await;
    let many = statements_for(&s, 200, "many").await;
    eprintln!("statements for {EVENTS} events: {one} with 1 subscriber, {many} with 200");
    assert!(one > 0.0, "reading the events' rows is counted");
    assert_eq!(
        many, one,
        "statements for {EVENTS} events: {one} with 1 subscriber, {many} with 200"
    );
    s.stop().await;
}

/// A busy (not connected) call of a new lead of the team's project.
fn busy_lead(lead: &str) -> String {
    SEED_BUSY
        .replace("69610xxxxxxxxxxxx5990420", lead)
        .replace("69647xxxxxxxxxxxx3b0727a", &format!("{lead}-call"))
        .replace("681dbxxxxxxxxxxxx1645120", PROJECT)
}

/// Filters of `activityRecorded`: some decided in memory on the rows the
/// subscribers share, some (variables, search, and `or` over one) asked of
/// the database for each batch.
const FILTERS: [&str; 5] = [
    r#"{ "callStatus": { "eq": "completed" } }"#,
    r#"{ "not": { "callStatus": { "eq": "busy" } } }"#,
    r#"{ "variable": { "name": "Urgency", "eq": "Very Urgent" } }"#,
    r#"{ "search": "expert" }"#,
    r#"{ "or": [{ "callStatus": { "eq": "busy" } }, { "variable": { "name": "Urgency", "eq": "Very Urgent" } }] }"#,
];

/// Read messages until every subscription of `subscriptions` has had the
/// activity `sentinel`; the activity ids each had before it, per
/// subscription. None if that takes longer than `wait`.
async fn until_sentinel(
    client: &mut WsClient,
    subscriptions: usize,
    sentinel: &str,
    wait: Duration,
) -> Option<Vec<Vec<String>>> {
    let mut seen = vec![Vec::new(); subscriptions];
    let mut done = vec![false; subscriptions];
    let read = async {
        while done.iter().any(|d| !d) {
            let message = client.next_message(wait).await?;
            assert_eq!(message["type"], "next", "{message}");
            assert!(message["payload"].get("errors").is_none(), "{message}");
            let i: usize = message["id"].as_str()?.parse().ok()?;
            let id = message["payload"]["data"]["activityRecorded"]["id"]
                .as_str()?
                .to_string();
            if id == sentinel {
                done[i] = true;
            } else if !done[i] {
                seen[i].push(id);
            }
        }
        Some(())
    };
    tokio::time::timeout(wait, read).await.ok()??;
    Some(seen)
}

#[tokio::test]
async fn live_activities_pass_the_filters_their_query_passes() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let mut client = WsClient::connect(&s.url(""), "graphql-transport-ws").await;
    for (i, filter) in FILTERS.iter().enumerate() {
        let filter: Value = serde_json::from_str(filter).unwrap();
        client
            .subscribe(
                &i.to_string(),
                "subscription($f: ActivityFilter) { activityRecorded(filter: $f) { id } }",
                json!({ "f": filter }),
            )
            .await;
    }
    // A connected call passes every filter: deliver one until all five
    // have it (then they are all live).
    let mut went_live = false;
    for attempt in 0..20 {
        let warm = format!("warm-{attempt}");
        assert_eq!(s.deliver(new_lead(&warm, Some(PROJECT))).await.0, 200);
        let sentinel = format!("{warm}-call");
        if until_sentinel(
            &mut client,
            FILTERS.len(),
            &sentinel,
            Duration::from_secs(2),
        )
        .await
        .is_some()
        {
            went_live = true;
            break;
        }
    }
    assert!(went_live, "the subscriptions never all went live");

    for i in 0..3 {
        assert_eq!(
            s.deliver(new_lead(&format!("connected-{i}"), Some(PROJECT)))
                .await
                .0,
            200
        );
        assert_eq!(s.deliver(busy_lead(&format!("busy-{i}"))).await.0, 200);
    }
    assert_eq!(s.deliver(new_lead("last", Some(PROJECT))).await.0, 200);
    let live = until_sentinel(&mut client, FILTERS.len(), "last-call", WAIT)
        .await
        .expect("every subscription has the last activity");

    for (filter, mut live) in FILTERS.iter().zip(live) {
        let filter: Value = serde_json::from_str(filter).unwrap();
        let answer = s
            .query(
                "query($f: ActivityFilter) { activities(filter: $f, first: 100) { nodes { id } } }",
                json!({ "f": filter }),
            )
            .await;
        let mut stored: Vec<String> = answer["activities"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .filter(|id| !id.starts_with("warm-") && id != "last-call")
            .collect();
        stored.sort();
        live.sort();
        assert!(!stored.is_empty(), "{filter}: the data has matches");
        assert_eq!(live, stored, "{filter}: live and stored answers differ");
    }
    client.close().await;
    s.stop().await;
}
