//! `dispositionCounts`, `callStats`, `leadFunnel` and the `totalCount` of
//! `leads` and `activities` from the rollups: the same answers
//! as counting the activities and leads, for every filter the rollups
//! answer, and the exact count for every other (a wider filter; for
//! activities, a scoped key).

use crate::common::*;
use proptest::prelude::*;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const HOUR: i64 = 3_600_000;

/// Generated leads, plus older versions (over an hour older, another
/// outcome; or, for every twelfth, moments older with another
/// conversation) of every fourth activity, delivered newest first so the
/// older ones arrive stale, and some again so duplicates happen.
pub(crate) async fn loaded_server(db: &TestDb, seed: u64) -> TestServer {
    let server = TestServer::start(db).await;
    let mut bodies = Vec::new();
    for (i, body) in leadql::generate::generate(40, seed).into_iter().enumerate() {
        if i % 4 == 0 {
            let mut older: Value = serde_json::from_str(&body).unwrap();
            if let Some(ts) = older["timestamp"].as_i64() {
                if i % 12 == 0 {
                    // Moments older, in the same rows as the newer version
                    // and other activities, with another conversation: the
                    // newer version moves what callStats counts of it.
                    older["timestamp"] = (ts - 17).into();
                    let conversation = &mut older["activity"]["result"]["conversation"];
                    if conversation.is_object() {
                        conversation["turnCount"] = 99.into();
                        conversation["toolCalls"] = json!([]);
                    }
                } else {
                    older["timestamp"] = (ts - 2 * HOUR - 17).into();
                    let analysis = &mut older["activity"]["result"]["analysis"];
                    if analysis.is_object() {
                        analysis["disposition"] = "Older Outcome".into();
                    }
                }
                // Other variables: another value, one the newer version
                // lacks, and one fewer (the newer version moves and
                // removes what the variable rollup counts of it).
                let variables = &mut older["activity"]["result"]["variables"]["variables"];
                if let Some(variables) = variables.as_object_mut() {
                    variables.insert("Urgency".into(), "Older Urgency".into());
                    variables.insert("olderOnly".into(), json!(i % 3));
                    variables.remove("circle");
                }
                // Half of them arrive first (then replaced), half after (stale).
                if i % 8 == 0 {
                    bodies.insert(0, older.to_string());
                } else {
                    bodies.push(older.to_string());
                }
            }
        }
        if i % 9 == 0 {
            bodies.push(body.clone());
        }
        bodies.push(body);
    }
    for body in bodies {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    server
}

fn counts_query(filter: &Value, bucket: Option<&str>) -> (String, Value) {
    let bucket = bucket.map(|b| format!(", bucket: {b}")).unwrap_or_default();
    (
        format!(
            "query($f: ActivityFilter) {{ dispositionCounts(filter: $f{bucket}) {{ disposition dispositionType bucketStart count }} }}"
        ),
        json!({ "f": filter }),
    )
}

/// The answer for `filter`, and the exact one (see [`exact`]).
async fn both(server: &TestServer, filter: &Value, bucket: Option<&str>) -> (Value, Value) {
    let (q, vars) = counts_query(filter, bucket);
    let rolled = server.query(&q, vars).await["dispositionCounts"].clone();
    let (q, vars) = counts_query(&exact("activities", filter), bucket);
    let exact = server.query(&q, vars).await["dispositionCounts"].clone();
    (rolled, exact)
}

const STATS: &str = "query($f: ActivityFilter) { callStats(filter: $f) {
  attempts connected connectRate averageTurnCount toolCalls } }";

const FUNNEL: &str =
    "query($f: LeadFilter) { leadFunnel(filter: $f) { disposition dispositionType count } }";

/// `filter` in a form no rollup answers, so the rows are counted: the
/// filter under `and` (which moves an activity filter's window out of
/// the top, where the activity rollup takes it), with a condition every
/// row meets that the rollup does not answer (both rollups answer `and`,
/// `or` and `not` over the fields they hold): a lead's `activityCount`,
/// which the lead rollup does not hold; an activity's `timestamp` not
/// null, which the activity rollup does not take.
fn exact(list: &str, filter: &Value) -> Value {
    match list {
        "leads" => json!({ "and": [filter], "activityCount": { "gte": 0 } }),
        _ => json!({ "and": [filter], "timestamp": { "isNull": false } }),
    }
}

/// `field` of `query` over `list` for `filter`, and the exact one.
async fn rolled_and_exact(
    server: &TestServer,
    (query, field, list): (&str, &str, &str),
    filter: &Value,
) -> (Value, Value) {
    let mut answers = Vec::new();
    for f in [filter.clone(), exact(list, filter)] {
        answers.push(server.query(query, json!({ "f": f })).await[field].clone());
    }
    let exact = answers.pop().unwrap_or_default();
    (answers.pop().unwrap_or_default(), exact)
}

/// `callStats` for `filter`, and the exact one.
async fn stats(server: &TestServer, filter: &Value) -> (Value, Value) {
    rolled_and_exact(server, (STATS, "callStats", "activities"), filter).await
}

/// The funnel for `filter`, and the exact one.
async fn funnels(server: &TestServer, filter: &Value) -> (Value, Value) {
    rolled_and_exact(server, (FUNNEL, "leadFunnel", "leads"), filter).await
}

/// `totalCount` of the root list `list` ("leads" or "activities") for
/// `filter`, and the exact one.
async fn totals(server: &TestServer, list: &str, filter: &Value) -> (i64, i64) {
    let kind = if list == "leads" { "Lead" } else { "Activity" };
    let query = format!("query($f: {kind}Filter) {{ {list}(filter: $f) {{ totalCount }} }}");
    let (rolled, exact) = rolled_and_exact(server, (&query, list, list), filter).await;
    let count = |v: &Value| v["totalCount"].as_i64().unwrap();
    (count(&rolled), count(&exact))
}

/// A filter on a disposition field, in one of the ways the lead filter
/// compares them (which ignore case, so the spelling varies).
fn disposition_filter(how: usize, a: &str, b: &str) -> Option<Value> {
    match how {
        0 => None,
        1 => Some(json!({ "eq": a })),
        2 => Some(json!({ "eq": a.to_uppercase() })),
        3 => Some(json!({ "in": [a.to_lowercase(), b] })),
        4 => Some(json!({ "ne": a })),
        5 => Some(json!({ "notIn": [b] })),
        6 => Some(json!({ "isNull": true })),
        7 => Some(json!({ "contains": &a[..a.len().min(3)] })),
        _ => Some(json!({ "startsWith": &b[..b.len().min(2)] })),
    }
}

#[test]
fn rolled_up_counts_equal_the_exact_counts_for_any_filter_they_answer() {
    let runtime = property_runtime();
    let db = runtime.block_on(TestDb::new());
    let server = runtime.block_on(loaded_server(&db, 31));
    let (projects, first, last, dispositions, types) = runtime.block_on(async {
        let activities = entity::activity::Entity::find().all(server.db());
        use sea_orm::EntityTrait;
        let activities = activities.await.unwrap();
        let projects: BTreeSet<String> = activities
            .iter()
            .filter_map(|a| a.project_id.clone())
            .collect();
        let first = activities.iter().map(|a| a.timestamp).min().unwrap();
        let last = activities.iter().map(|a| a.timestamp).max().unwrap();
        let leads = entity::lead::Entity::find().all(server.db()).await.unwrap();
        let dispositions: BTreeSet<String> =
            leads.iter().filter_map(|l| l.disposition.clone()).collect();
        let types: BTreeSet<String> = leads
            .iter()
            .filter_map(|l| l.disposition_type.clone())
            .collect();
        let list = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        (list(projects), first, last, list(dispositions), list(types))
    });
    assert!(dispositions.len() >= 2 && types.len() >= 2);
    assert!(
        projects.len() >= 2,
        "the generator spreads leads over projects"
    );
    let hours = (last - first) / HOUR + 2;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        0usize..6,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        proptest::option::of(bound(hours)),
        proptest::option::of(bound(hours)),
        proptest::option::of(prop::sample::select(vec!["HOUR", "DAY", "WEEK"])),
        (
            0usize..9,
            0usize..9,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            0usize..5,
        ),
    );
    let non_empty = std::sync::atomic::AtomicUsize::new(0);
    let non_empty_stats = std::sync::atomic::AtomicUsize::new(0);
    let non_empty_leads = std::sync::atomic::AtomicUsize::new(0);
    let non_empty_outcomes = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(how, a, b, from, until, bucket, lead_how)| {
            let (pa, pb) = (a.get(&projects), b.get(&projects));
            let project = match how {
                0 => None,
                1 => Some(json!({ "eq": pa })),
                2 => Some(json!({ "in": [pa, pb] })),
                3 => Some(json!({ "ne": pa })),
                4 => Some(json!({ "startsWith": &pa[..pa.len().min(3)] })),
                _ => Some(json!({ "eq": "no-such-project" })),
            };
            let start = first / HOUR * HOUR;
            let mut timestamp = serde_json::Map::new();
            if let Some((h, offset, inclusive)) = from {
                let op = if inclusive { "gte" } else { "gt" };
                timestamp.insert(op.into(), iso(start + h * HOUR + offset));
            }
            if let Some((h, offset, inclusive)) = until {
                let op = if inclusive { "lte" } else { "lt" };
                timestamp.insert(op.into(), iso(start + h * HOUR + offset));
            }
            let mut filter = serde_json::Map::new();
            if let Some(p) = project {
                filter.insert("projectId".into(), p);
            }
            if !timestamp.is_empty() {
                filter.insert("timestamp".into(), Value::Object(timestamp));
            }
            let filter = Value::Object(filter);
            let (rolled, exact) = runtime.block_on(both(&server, &filter, bucket));
            prop_assert_eq!(&rolled, &exact, "filter {} bucket {:?}", filter, bucket);
            let (rolled, exact) = runtime.block_on(stats(&server, &filter));
            prop_assert_eq!(&rolled, &exact, "callStats, filter {}", filter);
            if rolled["attempts"].as_i64() > Some(0) {
                non_empty_stats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // The lead funnel by the same project condition.
            let leads = match filter.get("projectId") {
                Some(p) => json!({ "projectId": p }),
                None => json!({}),
            };
            let (rolled, exact) = runtime.block_on(funnels(&server, &leads));
            prop_assert_eq!(&rolled, &exact, "lead filter {}", leads);
            if !rolled.as_array().unwrap().is_empty() {
                non_empty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // The lists' totalCount: activities by the same filter, leads
            // by the project and their dispositions.
            let (rolled, exact) = runtime.block_on(totals(&server, "activities", &filter));
            prop_assert_eq!(rolled, exact, "activities, filter {}", filter);
            let (d, t, da, ta, shape) = lead_how;
            let (d1, d2) = (da.get(&dispositions), a.get(&dispositions));
            let (t1, t2) = (ta.get(&types), b.get(&types));
            let (d, t) = (disposition_filter(d, d1, d2), disposition_filter(t, t1, t2));
            let mut flat = leads.as_object().unwrap().clone();
            if let Some(d) = &d {
                flat.insert("disposition".into(), d.clone());
            }
            if let Some(t) = &t {
                flat.insert("dispositionType".into(), t.clone());
            }
            let (d, t) = (
                json!({ "disposition": d.unwrap_or(json!({ "eq": d2 })) }),
                json!({ "dispositionType": t.unwrap_or(json!({ "eq": t2 })) }),
            );
            let project = leads.clone();
            let leads = match shape {
                0 => Value::Object(flat),
                1 => json!({ "or": [d, t], "and": [project] }),
                2 => json!({ "not": flat }),
                3 => json!({ "and": [project, { "not": { "or": [d, { "and": [t] }] } }] }),
                _ => json!({ "or": [], "not": { "not": d }, "and": [t, project] }),
            };
            let (rolled, exact) = runtime.block_on(totals(&server, "leads", &leads));
            prop_assert_eq!(rolled, exact, "leads, filter {}", leads);
            if exact > 0 {
                non_empty_leads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let (rolled, exact) = runtime.block_on(funnels(&server, &leads));
            prop_assert_eq!(&rolled, &exact, "lead filter {}", leads);
            // The activities by the same conditions on their analysis
            // disposition and type, in the same shapes, the window at the
            // top.
            let mut activities = leads.as_object().unwrap().clone();
            if let Some(window) = filter.get("timestamp") {
                activities.insert("timestamp".into(), window.clone());
            }
            let activities = Value::Object(activities);
            let (rolled, exact) = runtime.block_on(both(&server, &activities, bucket));
            prop_assert_eq!(
                &rolled,
                &exact,
                "activities {} bucket {:?}",
                activities,
                bucket
            );
            if !exact.as_array().unwrap().is_empty() {
                non_empty_outcomes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let (rolled, exact) = runtime.block_on(stats(&server, &activities));
            prop_assert_eq!(&rolled, &exact, "callStats, activities {}", activities);
            let (rolled, exact) = runtime.block_on(totals(&server, "activities", &activities));
            prop_assert_eq!(rolled, exact, "activities, filter {}", activities);
            Ok(())
        })
        .unwrap();
    let non_empty = non_empty.into_inner();
    assert!(non_empty > 10, "only {non_empty} filters matched anything");
    let non_empty = non_empty_stats.into_inner();
    assert!(non_empty > 10, "only {non_empty} filters had calls");
    let non_empty = non_empty_leads.into_inner();
    assert!(
        non_empty > 10,
        "only {non_empty} lead filters matched a lead"
    );
    let non_empty = non_empty_outcomes.into_inner();
    assert!(
        non_empty > 10,
        "only {non_empty} activity filters on outcomes matched an activity"
    );
    runtime.block_on(server.stop());
}

/// The `totalCount` of activities with a variable (alone or beside a
/// project condition), which the variable rollup answers, equals the
/// count of the activities, for values held now, values only replaced
/// versions held (`Older Urgency`, `olderOnly`), and values nobody has.
#[test]
fn variable_counts_from_the_rollup_equal_the_exact_counts() {
    let runtime = property_runtime();
    let db = runtime.block_on(TestDb::new());
    let server = runtime.block_on(loaded_server(&db, 33));
    let (pairs, projects) = runtime.block_on(crate::counts::variables_and_projects(&server));
    // The values held now (a variable's JSON null has no text to compare).
    let mut values: Vec<(String, String)> = pairs
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
    assert!(projects.len() >= 2 && values.len() > 20);
    assert!(
        !values.iter().any(|(_, v)| v == "Older Urgency"),
        "replaced versions' variables are gone"
    );
    for (name, value) in [
        ("Urgency", "Older Urgency"),
        ("olderOnly", "1"),
        ("Urgency", "Not A Value"),
        ("noSuchName", "x"),
    ] {
        values.push((name.into(), value.into()));
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0usize..5,
        0usize..6,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    );
    let non_empty = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(v, w, how, project_how, a, b)| {
            let (name, value) = v.get(&values);
            let other = &w.get(&values).1;
            let mut variable = json!({ "name": name });
            match how {
                0 => {}
                1 => variable["eq"] = json!(value),
                2 => variable["in"] = json!([value, other]),
                3 => {
                    let part: String = value.chars().skip(1).take(3).collect();
                    variable["contains"] = json!(part.to_uppercase());
                }
                _ => variable["in"] = json!([]),
            }
            let (pa, pb) = (a.get(&projects), b.get(&projects));
            let mut filter = json!({ "variable": variable });
            match project_how {
                0 => {}
                1 => filter["projectId"] = json!({ "eq": pa }),
                2 => filter["projectId"] = json!({ "in": [pa, pb] }),
                3 => filter["projectId"] = json!({ "ne": pa }),
                4 => filter["projectId"] = json!({ "startsWith": &pa[..pa.len().min(3)] }),
                _ => filter["projectId"] = json!({ "isNull": true }),
            }
            let (rolled, exact) = runtime.block_on(totals(&server, "activities", &filter));
            prop_assert_eq!(rolled, exact, "filter {}", filter);
            if exact > 0 {
                non_empty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let non_empty = non_empty.into_inner();
    assert!(non_empty > 10, "only {non_empty} filters matched anything");
    runtime.block_on(server.stop());
}

/// A window's bound: an hour from the first activity's, an offset into it
/// (often none: whole hours; else a millisecond either side of the hour,
/// or anywhere), and whether it includes the moment.
fn bound(hours: i64) -> impl Strategy<Value = (i64, i64, bool)> {
    let offset = prop_oneof![
        3 => Just(0),
        1 => Just(1),
        1 => Just(HOUR - 1),
        2 => 0..HOUR,
    ];
    (0..hours, offset, any::<bool>())
}

fn iso(ms: i64) -> Value {
    json!(chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Which path answers: double every rolled-up count, and only the filters
/// the rollup answers (for a reader of every project) see it.
#[tokio::test]
async fn the_rollup_answers_only_what_it_can_answer_exactly() {
    let db = TestDb::new().await;
    let server = loaded_server(&db, 32).await;
    // A project with an activity without an outcome (which the counts by
    // outcome leave out and the list counts), whichever row comes first.
    let project: String = {
        use entity::activity::Column as A;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        entity::activity::Entity::find()
            .filter(A::AnalysisDisposition.is_null())
            .filter(A::ProjectId.is_not_null())
            .order_by_asc(A::Id)
            .one(server.db())
            .await
            .unwrap()
            .expect("an activity without an outcome")
            .project_id
            .unwrap()
    };
    let total = |answer: &Value| -> i64 {
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_i64().unwrap())
            .sum()
    };
    let by_project = json!({ "projectId": { "eq": project } });
    let (rolled, exact) = both(&server, &by_project, None).await;
    assert_eq!(rolled, exact);
    let counted = total(&exact);
    assert!(counted > 0);
    let lead_filter = json!({ "projectId": { "eq": project } });
    let (funnel, exact_funnel) = funnels(&server, &lead_filter).await;
    assert_eq!(funnel, exact_funnel);
    let leads = total(&exact_funnel);
    assert!(leads > 0);
    let (call_stats, exact_stats) = stats(&server, &by_project).await;
    assert_eq!(call_stats, exact_stats);
    let attempts = exact_stats["attempts"].as_i64().unwrap();
    assert!(attempts > 0 && exact_stats["toolCalls"].as_i64().unwrap() > 0);
    let with_outcome =
        json!({ "projectId": { "eq": project }, "disposition": { "isNull": false } });
    let (lead_total, exact_lead_total) = totals(&server, "leads", &with_outcome).await;
    assert_eq!(lead_total, exact_lead_total);
    assert!(lead_total > 0);
    let (activity_total, exact_activity_total) = totals(&server, "activities", &by_project).await;
    assert_eq!(activity_total, exact_activity_total);
    assert!(
        activity_total > counted,
        "activities without an outcome count too"
    );
    server
        .db()
        .execute_unprepared(
            "UPDATE activity_rollups SET activities = 2 * activities, calls = 2 * calls, \
             connected = 2 * connected, turn_counts = 2 * turn_counts, turns = 2 * turns, \
             tool_calls = 2 * tool_calls",
        )
        .await
        .unwrap();
    server
        .db()
        .execute_unprepared("UPDATE lead_rollups SET leads = 2 * leads")
        .await
        .unwrap();
    let urgent = json!({ "projectId": { "eq": project }, "variable": { "name": "Urgency", "in": ["Urgent", "Very Urgent"] } });
    let (variable_total, exact_variable_total) = totals(&server, "activities", &urgent).await;
    assert_eq!(variable_total, exact_variable_total);
    assert!(variable_total > 0);
    server
        .db()
        .execute_unprepared("UPDATE variable_rollups SET activities = 2 * activities")
        .await
        .unwrap();
    assert_eq!(
        totals(&server, "activities", &urgent).await,
        (2 * variable_total, variable_total)
    );
    let (rolled, exact) = both(&server, &by_project, None).await;
    assert_eq!((total(&rolled), total(&exact)), (2 * counted, counted));
    let (funnel, exact_funnel) = funnels(&server, &lead_filter).await;
    assert_eq!((total(&funnel), total(&exact_funnel)), (2 * leads, leads));
    let (doubled, exact) = stats(&server, &by_project).await;
    assert_eq!(exact, exact_stats);
    for field in ["attempts", "connected", "toolCalls"] {
        assert_eq!(
            doubled[field].as_i64(),
            exact[field].as_i64().map(|n| 2 * n)
        );
    }
    // Rates of doubled counts are the same rates.
    assert_eq!(doubled["connectRate"], exact["connectRate"]);
    assert_eq!(doubled["averageTurnCount"], exact["averageTurnCount"]);
    assert_eq!(
        totals(&server, "leads", &with_outcome).await,
        (2 * lead_total, lead_total)
    );
    assert_eq!(
        totals(&server, "activities", &by_project).await,
        (2 * activity_total, activity_total)
    );
    // `and`, `or` and `not` over the fields the lead rollup holds: from it.
    let nested = json!({ "or": [{ "projectId": { "eq": project } }], "not": { "disposition": { "isNull": true } } });
    assert_eq!(
        totals(&server, "leads", &nested).await,
        (2 * lead_total, lead_total)
    );
    // ...and over the fields the activity rollup holds: from it.
    let outcomes = json!({
        "or": [{ "projectId": { "eq": project }, "disposition": { "isNull": false } },
               { "not": { "projectId": { "ne": project } }, "dispositionType": { "in": ["x"] } }],
        "timestamp": { "gte": "2000-01-01T00:00:00Z" }
    });
    let (once, outcomes_counted) = totals(&server, "activities", &outcomes).await;
    assert!(outcomes_counted > 0 && outcomes_counted < activity_total);
    assert_eq!(once, 2 * outcomes_counted);
    let (rolled, by_day) = both(&server, &outcomes, Some("DAY")).await;
    assert_eq!(total(&rolled), 2 * total(&by_day));
    assert_eq!(total(&by_day), counted);
    // A funnel or a list filtered on anything else counts the leads.
    let by_state = json!({ "projectId": { "eq": project }, "state": { "isNull": false } });
    let (q, v) = (FUNNEL, json!({ "f": by_state }));
    let once = server.query(q, v).await["leadFunnel"].clone();
    assert_eq!(once, funnels(&server, &by_state).await.1);
    let (once, counted_leads) = totals(&server, "leads", &by_state).await;
    assert_eq!(once, counted_leads);
    // Another field, or a window within one hour: counted from the
    // activities.
    for filter in [
        json!({ "projectId": { "eq": project }, "type": { "eq": "call" } }),
        json!({ "projectId": { "eq": project }, "timestamp": { "gte": "2026-01-01T08:10:00Z", "lt": "2026-01-01T08:50:00Z" } }),
        json!({ "timestamp": { "eq": "2026-01-01T08:10:00Z" } }),
    ] {
        let (q, vars) = counts_query(&filter, None);
        let once = server.query(&q, vars).await["dispositionCounts"].clone();
        let (q, vars) = counts_query(&self::exact("activities", &filter), None);
        assert_eq!(once, server.query(&q, vars).await["dispositionCounts"]);
        let (once, counted_activities) = totals(&server, "activities", &filter).await;
        assert_eq!(once, counted_activities);
    }
    // A key scoped to the project sees activities by their lead's project:
    // counted exactly, as before.
    let key = leadql::access::create(
        server.db(),
        Some("scoped"),
        std::slice::from_ref(&project),
        leadql::access::Role::Full,
    )
    .await
    .unwrap()
    .key;
    server.state.keys.reload().await.unwrap();
    let as_scoped = |query: String, variables: Value| {
        let request = server
            .client
            .post(server.url("/graphql"))
            .bearer_auth(&key)
            .json(&json!({ "query": query, "variables": variables }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (q, vars) = counts_query(&by_project, None);
    let answer = as_scoped(q, vars).await;
    assert_eq!(total(&answer["data"]["dispositionCounts"]), counted);
    let answer = as_scoped(STATS.into(), json!({ "f": by_project })).await;
    assert_eq!(answer["data"]["callStats"], exact_stats);
    // Leads are visible by their project, which the lead rollup records:
    // the scoped key's funnel comes from it (doubled here).
    let answer = as_scoped("{ leadFunnel { count } }".into(), json!({})).await;
    assert_eq!(total(&answer["data"]["leadFunnel"]), 2 * leads);
    let query = "query($f: ActivityFilter) { activities(filter: $f) { totalCount } }";
    let answer = as_scoped(query.into(), json!({ "f": by_project })).await;
    assert_eq!(
        answer["data"]["activities"]["totalCount"].as_i64(),
        Some(activity_total)
    );
    // The variable rollup does not know the leads' projects: a scoped
    // key's count of a variable reads the variables.
    let answer = as_scoped(query.into(), json!({ "f": urgent })).await;
    assert_eq!(
        answer["data"]["activities"]["totalCount"].as_i64(),
        Some(variable_total)
    );
    let query = "query($f: LeadFilter) { leads(filter: $f) { totalCount } }";
    let answer = as_scoped(query.into(), json!({ "f": with_outcome })).await;
    assert_eq!(
        answer["data"]["leads"]["totalCount"].as_i64(),
        Some(2 * lead_total)
    );
    server.stop().await;
}

/// On PostgreSQL the server reads the rollups through connections of
/// their own that plan each statement once for any values (see
/// `store::connect_rollups`: at a million leads PostgreSQL otherwise
/// planned every count again), while its other connections keep
/// PostgreSQL's own choice.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite plans every statement once anyway)"
)]
async fn rollups_are_read_through_generically_planned_connections() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    assert_eq!(server.deliver(SEED_CONNECTED).await.0, 200);
    let conn = leadql::store::connect(&db.url).await.unwrap();
    // The last statement of each backend under the rollups' application
    // name: the server's rollup reads ran on such a connection.
    let rollup_statements = || last_statements(&conn, leadql::store::ROLLUP_APPLICATION);
    // Over WebSocket: a root list's totalCount from the lead rollup.
    let base = server.url("");
    let mut ws = WsClient::connect(&base, "graphql-transport-ws").await;
    ws.subscribe("1", "{ leads { totalCount } }", json!({}))
        .await;
    let total = ws
        .next_data(std::time::Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(total["leads"]["totalCount"], json!(1), "{total}");
    let last = rollup_statements().await;
    assert!(
        last.iter().any(|q| q.contains("lead_rollups")),
        "rollup connections' last statements: {last:?}"
    );
    ws.close().await;
    // Over HTTP: dispositionCounts from the activity rollup.
    let counted = server
        .query("{ dispositionCounts { disposition count } }", json!({}))
        .await;
    assert_eq!(
        counted["dispositionCounts"][0]["count"],
        json!(1),
        "{counted}"
    );
    let last = rollup_statements().await;
    assert!(
        last.iter().any(|q| q.contains("activity_rollups")),
        "rollup connections' last statements: {last:?}"
    );
    let rollups =
        leadql::store::connect_rollups(&conn, &db.url, std::time::Duration::from_secs(10))
            .await
            .unwrap();
    assert_eq!(
        postgres_setting(&rollups, "plan_cache_mode").await,
        "force_generic_plan"
    );
    assert_eq!(postgres_setting(&conn, "plan_cache_mode").await, "auto");
    server.stop().await;
}
