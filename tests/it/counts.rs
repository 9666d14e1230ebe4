//! `totalCount`: however a list's count is found (from the rows the filter
//! selects, from the side table a `variable` filter lives in, or from the
//! rollups), it is the number of nodes the list pages through, for a key
//! of every project and for a scoped key.

use crate::common::*;
use crate::rollup::loaded_server;
use leadql::config::Config;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A page of `list` ("activities" or "leads") with its count.
fn page_query(list: &str) -> String {
    let kind = if list == "leads" { "Lead" } else { "Activity" };
    format!(
        "query($f: {kind}Filter, $after: String) {{
  {list}(filter: $f, first: 100, after: $after) {{
    totalCount nodes {{ id }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

/// `list`'s count alone (no page is read).
fn count_query(list: &str) -> String {
    let kind = if list == "leads" { "Lead" } else { "Activity" };
    format!("query($f: {kind}Filter) {{ {list}(filter: $f) {{ totalCount }} }}")
}

/// POST a GraphQL query as `key`; its `data`.
async fn data(server: &TestServer, key: &str, query: &str, variables: Value) -> Value {
    let request = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }));
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(
        body.get("errors").is_none(),
        "{body}\nvariables: {variables}"
    );
    body["data"].clone()
}

/// The activities' `totalCount` (as the first page gives it), and the ids
/// of every page.
async fn count_and_nodes(server: &TestServer, key: &str, filter: &Value) -> (i64, Vec<String>) {
    count_and_nodes_of(server, key, "activities", filter).await
}

/// `list`'s `totalCount` (as its first page gives it), and the ids of
/// every page.
async fn count_and_nodes_of(
    server: &TestServer,
    key: &str,
    list: &str,
    filter: &Value,
) -> (i64, Vec<String>) {
    let query = page_query(list);
    let mut after = Value::Null;
    let mut total = None;
    let mut ids = Vec::new();
    loop {
        let answer = data(server, key, &query, json!({ "f": filter, "after": after })).await;
        let list = &answer[list];
        total.get_or_insert(list["totalCount"].as_i64().unwrap());
        ids.extend(
            list["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if !list["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = list["pageInfo"]["endCursor"].clone();
    }
    (total.unwrap(), ids)
}

/// `list`'s `totalCount` for `filter` as `key` sees it, checked: asked
/// with its first page and asked alone (no page is read), it is the
/// number of distinct nodes its pages hold.
fn checked_count(
    runtime: &tokio::runtime::Runtime,
    server: &TestServer,
    key: &str,
    list: &str,
    filter: &Value,
) -> Result<i64, TestCaseError> {
    let (total, ids) = runtime.block_on(count_and_nodes_of(server, key, list, filter));
    let alone = runtime.block_on(data(
        server,
        key,
        &count_query(list),
        json!({ "f": filter }),
    ));
    prop_assert_eq!(
        &alone[list]["totalCount"],
        &json!(total),
        "alone: {}",
        filter
    );
    let distinct: BTreeSet<&String> = ids.iter().collect();
    prop_assert_eq!(distinct.len(), ids.len(), "a node twice: {}", filter);
    prop_assert_eq!(total, ids.len() as i64, "{} filter {}", list, filter);
    Ok(total)
}

/// A key that reads only `project`, or every project (None).
async fn key_for(server: &TestServer, project: Option<&str>) -> String {
    let projects: Vec<String> = project.into_iter().map(str::to_string).collect();
    let key = leadql::access::create(server.db(), None, &projects, leadql::access::Role::Full)
        .await
        .unwrap()
        .key;
    server.state.keys.reload().await.unwrap();
    key
}

/// Every (name, value) of the stored variables, and the projects.
pub(crate) async fn variables_and_projects(
    server: &TestServer,
) -> (Vec<(String, Option<String>)>, Vec<String>) {
    use sea_orm::EntityTrait;
    let rows = entity::variable::Entity::find()
        .all(server.db())
        .await
        .unwrap();
    let pairs: BTreeSet<(String, Option<String>)> =
        rows.into_iter().map(|v| (v.name, v.value_text)).collect();
    let projects: BTreeSet<String> = entity::lead::Entity::find()
        .all(server.db())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|l| l.project_id)
        .collect();
    (pairs.into_iter().collect(), projects.into_iter().collect())
}

/// A variable condition on `name`: the name alone, a value, a value among
/// others, part of a value (in another case), or a value no row has.
fn variable(name: &str, value: Option<&str>, how: usize) -> Value {
    let value = value.unwrap_or("");
    match how {
        0 => json!({ "name": name }),
        1 => json!({ "name": name, "eq": value }),
        2 => json!({ "name": name, "in": [value, "Normal", "no such value"] }),
        3 => {
            let part: String = value.chars().skip(1).take(3).collect();
            json!({ "name": name, "contains": part.to_uppercase() })
        }
        _ => json!({ "name": name, "eq": "no such value" }),
    }
}

#[test]
fn total_counts_equal_the_nodes_of_every_page_for_any_filter() {
    let runtime = property_runtime();
    let db = runtime.block_on(TestDb::new());
    let server = runtime.block_on(loaded_server(&db, 41));
    let (pairs, projects) = runtime.block_on(variables_and_projects(&server));
    assert!(
        pairs.len() > 10 && projects.len() >= 2,
        "{pairs:?} {projects:?}"
    );
    let every = runtime.block_on(key_for(&server, None));
    let scoped = runtime.block_on(key_for(&server, Some(&projects[0])));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0usize..5,
        0usize..9,
        any::<bool>(),
    );
    let non_empty = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(a, b, how, wrap, as_scoped)| {
            let (name, value) = a.get(&pairs);
            let one = variable(name, value.as_deref(), how);
            let (other_name, other_value) = b.get(&pairs);
            let other = json!({ "variable": variable(other_name, other_value.as_deref(), 1) });
            // The variable condition alone (counted in the variables
            // table), or with other conditions (counted from the rows).
            let filter = match wrap {
                0 | 1 => json!({ "variable": one }),
                2 => json!({ "and": [{ "variable": one }] }),
                3 => json!({ "variable": one, "type": { "eq": "call" } }),
                4 => json!({ "or": [{ "variable": one }, other] }),
                5 => json!({ "not": { "variable": one } }),
                // With a project (also counted in the variables table).
                6 => json!({ "variable": one, "projectId": { "eq": projects[a.index(projects.len())] } }),
                7 => json!({ "variable": one, "projectId": { "in": [projects[0], "no such project"] } }),
                _ => json!({ "search": "the" }),
            };
            let key = if as_scoped { &scoped } else { &every };
            let total = checked_count(&runtime, &server, key, "activities", &filter)?;
            if total > 0 {
                non_empty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let non_empty = non_empty.into_inner();
    assert!(non_empty > 10, "only {non_empty} filters matched anything");
    runtime.block_on(server.stop());
}

/// Which path counts a filter that is one variable condition, alone or
/// with its project: for a key of every project, the variable rollup (a
/// count added to its row is counted, a variables row of no activity is
/// not); for a scoped key, the variables table (that row is counted, for
/// the keys that see its lead); for any other filter, the activities.
#[tokio::test]
async fn a_variable_filter_alone_is_counted_in_the_rollup_or_the_variables_table() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new().await;
    let server = loaded_server(&db, 42).await;
    let (_, projects) = variables_and_projects(&server).await;
    let lead: entity::lead::Model = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::lead::Entity::find()
            .filter(entity::lead::Column::ProjectId.eq(projects[0].clone()))
            .one(server.db())
            .await
            .unwrap()
            .unwrap()
    };
    let alone = json!({ "variable": { "name": "Urgency", "eq": "None" } });
    let wrapped = json!({ "and": [alone] });
    let every = key_for(&server, None).await;
    let inside = key_for(&server, Some(&projects[0])).await;
    let outside = key_for(&server, Some(&projects[1])).await;
    let mut before = Vec::new();
    for key in [&every, &inside, &outside] {
        let (total, ids) = count_and_nodes(&server, key, &alone).await;
        assert_eq!(total, ids.len() as i64);
        assert_eq!(count_and_nodes(&server, key, &wrapped).await.0, total);
        before.push(total);
    }
    assert!(before.iter().all(|n| *n > 0), "{before:?}");
    server
        .db()
        .execute_unprepared(&format!(
            "INSERT INTO variables (activity_id, name, lead_id, project_id, value_text) \
             VALUES ('no-such-activity', 'Urgency', '{}', '{}', 'None')",
            lead.id, projects[0]
        ))
        .await
        .unwrap();
    server
        .db()
        .execute_unprepared(&format!(
            "UPDATE variable_rollups SET activities = activities + 2 \
             WHERE name = 'Urgency' AND value_text = 'None' AND project_id = '{}'",
            projects[0]
        ))
        .await
        .unwrap();
    for (key, more, was) in [
        (&every, 2, before[0]),
        (&inside, 1, before[1]),
        (&outside, 0, before[2]),
    ] {
        let (total, ids) = count_and_nodes(&server, key, &alone).await;
        assert_eq!(ids.len() as i64, was, "the nodes are the activities'");
        assert_eq!(total, was + more, "counted in the rollup or the variables");
        let (total, ids) = count_and_nodes(&server, key, &wrapped).await;
        assert_eq!(
            (total, ids.len() as i64),
            (was, was),
            "counted from the activities"
        );
    }
    // With the row's project it is counted there too; with another
    // project it is not.
    let in_project = |project: &str| json!({ "variable": { "name": "Urgency", "eq": "None" }, "projectId": { "eq": project } });
    let (total, ids) = count_and_nodes(&server, &every, &in_project(&projects[0])).await;
    assert_eq!(
        total,
        ids.len() as i64 + 2,
        "the rollup's row of its project counted"
    );
    let (total, ids) = count_and_nodes(&server, &inside, &in_project(&projects[0])).await;
    assert_eq!(
        total,
        ids.len() as i64 + 1,
        "the variables row of its project counted"
    );
    let (total, ids) = count_and_nodes(&server, &every, &in_project(&projects[1])).await;
    assert_eq!(total, ids.len() as i64, "no row of the other project");
    assert!(total > 0, "the other project has such activities");
    server.stop().await;
}

/// A lead filter built from `projectId`, `disposition` and
/// `dispositionType` conditions under `and`, `or` and `not` (which the lead
/// rollup answers), or with a field it does not hold (counted from the
/// leads).
fn lead_filter(project: &str, disposition: &str, shape: usize) -> Value {
    let p = json!({ "projectId": { "eq": project } });
    let d = json!({ "disposition": { "eq": disposition.to_lowercase() } });
    let t = json!({ "dispositionType": { "in": ["POSITIVE", "neutral"] } });
    match shape {
        0 => json!({}),
        1 => p,
        2 => json!({ "projectId": { "eq": project }, "disposition": { "isNull": false } }),
        3 => json!({ "or": [d, t], "and": [p] }),
        4 => json!({ "not": { "or": [d, { "disposition": { "isNull": true } }] } }),
        5 => json!({ "and": [{ "not": p }, { "dispositionType": { "ne": "failure" } }] }),
        6 => json!({ "or": [d, { "state": { "isNull": false } }] }),
        _ => json!({ "projectId": { "startsWith": &project[..4] }, "activityCount": { "gte": 2 } }),
    }
}

/// Lead lists and activity windows counted from the rollups (and, for
/// other filters, from the rows) give the number of nodes they page
/// through, for every key.
#[test]
fn rolled_up_total_counts_equal_the_nodes_of_every_page() {
    let runtime = property_runtime();
    let db = runtime.block_on(TestDb::new());
    let server = runtime.block_on(loaded_server(&db, 43));
    let (_, projects) = runtime.block_on(variables_and_projects(&server));
    let (dispositions, first, last) = runtime.block_on(async {
        use sea_orm::EntityTrait;
        let leads = entity::lead::Entity::find().all(server.db()).await.unwrap();
        let dispositions: BTreeSet<String> =
            leads.iter().filter_map(|l| l.disposition.clone()).collect();
        let activities = entity::activity::Entity::find()
            .all(server.db())
            .await
            .unwrap();
        let first = activities.iter().map(|a| a.timestamp).min().unwrap();
        let last = activities.iter().map(|a| a.timestamp).max().unwrap();
        (dispositions.into_iter().collect::<Vec<_>>(), first, last)
    });
    assert!(projects.len() >= 2 && dispositions.len() >= 2);
    let every = runtime.block_on(key_for(&server, None));
    let scoped = runtime.block_on(key_for(&server, Some(&projects[0])));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0usize..8,
        0..=(last - first),
        0..=(last - first),
        any::<bool>(),
    );
    let non_empty = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(p, d, shape, from, length, as_scoped)| {
            let key = if as_scoped { &scoped } else { &every };
            let project = p.get(&projects);
            let iso = |ms: i64| {
                chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            };
            let window = json!({
                "projectId": { "eq": project },
                "timestamp": { "gte": iso(first + from), "lt": iso(first + from + length) },
            });
            for (list, filter) in [
                (
                    "leads",
                    lead_filter(project, d.get(&dispositions).as_str(), shape),
                ),
                ("activities", window),
            ] {
                if checked_count(&runtime, &server, key, list, &filter)? > 0 {
                    non_empty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .unwrap();
    let non_empty = non_empty.into_inner();
    assert!(non_empty > 20, "only {non_empty} lists had nodes");
    runtime.block_on(server.stop());
}

/// Every page of `list`'s rows ("activities" or "leads") for `filter` in
/// `order` as `key` sees them, 7 at a time, read forward with
/// `first`/`after` or backward with `last`/`before`: per page, its edges
/// (cursor and id) and pageInfo.
async fn all_pages(
    server: &TestServer,
    key: &str,
    list: &str,
    filter: &Value,
    order: &Value,
    backward: bool,
) -> Vec<Value> {
    let kind = if list == "leads" { "Lead" } else { "Activity" };
    let query = format!(
        "query($f: {kind}Filter, $o: [{kind}OrderBy!], $first: Int, $after: String, $last: Int, $before: String) {{
  {list}(filter: $f, orderBy: $o, first: $first, after: $after, last: $last, before: $before) {{
    edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    let mut pages = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let variables = if backward {
            json!({ "f": filter, "o": order, "last": 7, "before": cursor })
        } else {
            json!({ "f": filter, "o": order, "first": 7, "after": cursor })
        };
        let page = data(server, key, &query, variables).await[list].clone();
        let info = &page["pageInfo"];
        let (more, next) = if backward {
            (&info["hasPreviousPage"], &info["startCursor"])
        } else {
            (&info["hasNextPage"], &info["endCursor"])
        };
        let more = more.as_bool().unwrap();
        cursor = next.clone();
        pages.push(page);
        if !more {
            return pages;
        }
    }
}

/// A page of a common variable value's activities, or of the activities
/// or leads a common term matches, can be read by walking the list in time order and
/// asking each row (`walk_from` matches or more) instead of reading every
/// match and sorting: both plans page through the same rows, with the
/// same cursors and page info, forward and backward, in both time orders,
/// with and without a project, for a key of every project and a scoped
/// one. One server takes the walk for any match (on PostgreSQL, a search
/// walks as far as it takes), the other never does.
#[tokio::test]
async fn a_page_walked_in_time_order_holds_the_rows_of_the_sorted_matches() {
    let db = TestDb::new().await;
    let loaded = loaded_server(&db, 43).await;
    // Walks wherever it may (any match; as many rows as it takes).
    let walked = TestServer::start_with(Config {
        walk_from: 1,
        walk_first: 1_000_000,
        ..Config::for_database(&db.url)
    })
    .await;
    // On PostgreSQL a search walks 12 rows, then reads the list when
    // those hold no more than a page of 7: some pages from each.
    let partly = TestServer::start_with(Config {
        walk_from: 1,
        walk_first: 12,
        ..Config::for_database(&db.url)
    })
    .await;
    // Never walks (no count reaches a million here; no rows first).
    let listed = TestServer::start_with(Config {
        walk_from: 1_000_000,
        walk_first: 0,
        ..Config::for_database(&db.url)
    })
    .await;
    let (_, projects) = variables_and_projects(&loaded).await;
    let every = key_for(&loaded, None).await;
    let scoped = key_for(&loaded, Some(&projects[0])).await;
    for server in [&walked, &partly, &listed] {
        server.state.keys.reload().await.unwrap();
    }
    let in_project = |i: usize| json!({ "eq": projects[i] });
    let activities = [
        json!({ "variable": { "name": "Urgency", "eq": "None" } }),
        json!({ "variable": { "name": "Urgency", "in": ["Urgent", "Very Urgent"] } }),
        json!({ "variable": { "name": "Urgency", "contains": "URG" }, "projectId": in_project(1) }),
        json!({ "variable": { "name": "circle" }, "projectId": { "in": [projects[0], projects[1]] } }),
        json!({ "variable": { "name": "Urgency", "eq": "no such value" } }),
        json!({ "search": "evening" }),
        json!({ "search": "EVEN", "projectId": in_project(0) }),
        json!({ "search": "no call says this" }),
        json!({ "search": "an" }),
    ];
    let leads = [
        json!({ "search": "evening" }),
        json!({ "search": "the" }),
        json!({ "search": "EVEN", "projectId": in_project(1) }),
        json!({ "search": "no call says this" }),
        json!({ "search": "an" }),
    ];
    let cases = activities
        .iter()
        .map(|f| ("activities", f, "TIMESTAMP"))
        .chain(leads.iter().map(|f| ("leads", f, "LAST_ACTIVITY_AT")));
    let mut rows_seen = 0;
    for (list, filter, time) in cases {
        let orders = [
            json!(null),
            json!([{ "field": time, "direction": "DESC" }]),
            json!([{ "field": time, "direction": "ASC" }]),
        ];
        for order in &orders {
            for backward in [false, true] {
                for key in [&every, &scoped] {
                    let expected = all_pages(&listed, key, list, filter, order, backward).await;
                    for server in [&walked, &partly] {
                        let got = all_pages(server, key, list, filter, order, backward).await;
                        assert_eq!(got, expected, "{list} {filter} {order} backward {backward}");
                    }
                    rows_seen += expected
                        .iter()
                        .map(|p| p["edges"].as_array().unwrap().len())
                        .sum::<usize>();
                }
            }
        }
    }
    assert!(rows_seen > 600, "only {rows_seen} rows compared");
    for server in [walked, partly, listed, loaded] {
        server.stop().await;
    }
}
