//! The GraphQL API over HTTP: a lead's history, paging, limits, the HTTP
//! conventions, the committed schema, and batched loading.

use crate::common::{sample_of, TestDb, TestServer, SEED_CONNECTED};
use crate::filters::demo_server;
use leadql::config::Config;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const HISTORY: &str = "query($id: ID!) { lead(id: $id) {
    id name disposition dispositionType summary activityCount lastActivityAt
    activities { totalCount edges { cursor node {
      id timestamp type callStatus variables input
      analysis { disposition dispositionType summary success }
      conversation { id turnCount
        messages(first: 500) { totalCount nodes { role content position } }
        toolCalls { nodes { name toolCallId arguments response success utteranceId timestamp } } } } } }
    updates { id success } } }";

#[tokio::test]
async fn a_leads_full_history_in_one_query() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    leadql::demo::load(&s.state, 0).await.expect("fixtures");
    let seed: Value = serde_json::from_str(SEED_CONNECTED).unwrap();
    let result = &seed["activity"]["result"];
    let lead_id = seed["leadId"].as_str().unwrap();

    let data = s.query(HISTORY, json!({ "id": lead_id })).await;
    let lead = &data["lead"];
    assert_eq!(lead["id"], json!(lead_id));
    assert_eq!(lead["disposition"], result["analysis"]["disposition"]);
    let edges = lead["activities"]["edges"].as_array().unwrap();
    assert_eq!(edges.len() as i64, lead["activityCount"].as_i64().unwrap());
    assert_eq!(lead["activities"]["totalCount"], lead["activityCount"]);
    let times: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(times, sorted, "activities in time order");

    let call = edges
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["id"] == seed["activityId"])
        .expect("the connected call is in the history");
    assert_eq!(
        call["variables"], result["variables"],
        "extracted variables, as sent"
    );
    assert_eq!(call["input"], result["input"]);
    assert_eq!(
        call["analysis"]["disposition"],
        result["analysis"]["disposition"]
    );
    assert_eq!(
        call["analysis"]["dispositionType"],
        result["analysis"]["dispositionType"]
    );
    assert_eq!(call["analysis"]["summary"], result["analysis"]["summary"]);
    let conversation = &call["conversation"];
    assert_eq!(
        conversation["turnCount"],
        result["conversation"]["turnCount"]
    );
    let sent: Vec<(&Value, &Value)> = result["conversation"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["role"], &m["content"]))
        .collect();
    let got: Vec<(&Value, &Value)> = conversation["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["role"], &m["content"]))
        .collect();
    assert_eq!(got, sent, "the transcript, in order");
    let tools = conversation["toolCalls"]["nodes"].as_array().unwrap();
    let sent_tools = result["conversation"]["toolCalls"].as_array().unwrap();
    assert_eq!(tools.len(), sent_tools.len());
    let schedule = tools
        .iter()
        .find(|t| t["name"] == "scheduleExpertCallback")
        .expect("the scheduleExpertCallback tool call");
    assert_eq!(schedule["arguments"], sent_tools[0]["arguments"]);
    assert_eq!(schedule["response"], sent_tools[0]["response"]);
    assert_eq!(schedule["toolCallId"], sent_tools[0]["tool_call_id"]);
    assert_eq!(schedule["success"], json!(true));
    assert_eq!(
        schedule["timestamp"],
        json!("2026-01-13T10:05:50.067+00:00")
    );

    // Unknown ids answer null, not an error.
    let data = s.query("{ lead(id: \"nope\") { id } activity(id: \"nope\") { id } conversation(id: \"nope\") { id } }", json!({})).await;
    assert_eq!(
        data,
        json!({ "lead": null, "activity": null, "conversation": null })
    );
    s.stop().await;
}

/// Page through all leads under `order`, forward then backward; each lead
/// once, in order, with the right totalCount and pageInfo.
async fn walk(s: &TestServer, order: &Value, page: i64, all: &BTreeSet<String>) {
    let forward = "query($o: [LeadOrderBy!], $n: Int, $after: String) { leads(orderBy: $o, first: $n, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } } } }";
    let backward = "query($o: [LeadOrderBy!], $n: Int, $before: String) { leads(orderBy: $o, last: $n, before: $before) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } } } }";
    let ids = |conn: &Value| -> Vec<String> {
        conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut seen_forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = s
            .query(forward, json!({ "o": order, "n": page, "after": after }))
            .await;
        let conn = &data["leads"];
        assert_eq!(conn["totalCount"].as_u64().unwrap() as usize, all.len());
        let info = &conn["pageInfo"];
        assert_eq!(info["hasPreviousPage"], json!(!after.is_null()), "{order}");
        let edges = conn["edges"].as_array().unwrap();
        assert_eq!(info["startCursor"], edges[0]["cursor"]);
        assert_eq!(info["endCursor"], edges[edges.len() - 1]["cursor"]);
        seen_forward.extend(ids(conn));
        if !info["hasNextPage"].as_bool().unwrap() {
            break;
        }
        assert_eq!(edges.len() as i64, page, "a full page before the last");
        after = info["endCursor"].clone();
    }
    let set: BTreeSet<String> = seen_forward.iter().cloned().collect();
    assert_eq!(
        set.len(),
        seen_forward.len(),
        "no lead twice going forward ({order})"
    );
    assert_eq!(&set, all, "every lead going forward ({order})");

    let mut seen_backward = Vec::new();
    let mut before = Value::Null;
    loop {
        let data = s
            .query(backward, json!({ "o": order, "n": page, "before": before }))
            .await;
        let conn = &data["leads"];
        let info = &conn["pageInfo"];
        assert_eq!(info["hasNextPage"], json!(!before.is_null()));
        let mut page_ids = ids(conn);
        page_ids.extend(seen_backward);
        seen_backward = page_ids;
        if !info["hasPreviousPage"].as_bool().unwrap() {
            break;
        }
        before = info["startCursor"].clone();
    }
    assert_eq!(
        seen_backward, seen_forward,
        "backward pages give the same order ({order})"
    );
}

#[tokio::test]
async fn paging_visits_every_lead_once_under_every_order() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 250).await;
    let all: BTreeSet<String> = {
        use sea_orm::EntityTrait;
        entity::lead::Entity::find()
            .all(s.db())
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect()
    };
    assert!(all.len() > 250);
    let orders = [
        json!(null),
        json!([{ "field": "LAST_ACTIVITY_AT", "direction": "DESC" }]),
        json!([{ "field": "LAST_ACTIVITY_AT" }]),
        json!([{ "field": "FIRST_ACTIVITY_AT", "direction": "DESC" }]),
        json!([{ "field": "NAME" }]),
        json!([{ "field": "NAME", "direction": "DESC" }]),
        json!([{ "field": "ACTIVITY_COUNT", "direction": "DESC" }]),
        json!([{ "field": "ID" }]),
        json!([{ "field": "ACTIVITY_COUNT" }, { "field": "NAME", "direction": "DESC" }]),
        json!([{ "field": "NAME" }, { "field": "LAST_ACTIVITY_AT", "direction": "DESC" }]),
    ];
    for order in &orders {
        walk(&s, order, 37, &all).await;
    }
    // The order really is the one asked for (names ascending, nulls first).
    let data = s
        .query(
            r#"{ leads(orderBy: [{field: NAME}], first: 500) { nodes { name } } }"#,
            json!({}),
        )
        .await;
    let names: Vec<Option<String>> = data["leads"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().map(str::to_string))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // Nested lists page the same way.
    let lead = s.query(r#"{ leads(orderBy: [{field: ACTIVITY_COUNT, direction: DESC}], first: 1) { nodes { id activityCount } } }"#, json!({})).await;
    let lead = &lead["leads"]["nodes"][0];
    let count = lead["activityCount"].as_i64().unwrap();
    assert!(count >= 3);
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = s
            .query(
                "query($id: ID!, $after: String) { lead(id: $id) { activities(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id timestamp } } } }",
                json!({ "id": lead["id"], "after": after }),
            )
            .await;
        let conn = &data["lead"]["activities"];
        assert_eq!(conn["totalCount"].as_i64().unwrap(), count);
        seen.extend(
            conn["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len() as i64, count);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len() as i64, count);
    s.stop().await;
}

/// The error messages of an answer.
fn errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {body}"))
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn abusive_queries_get_clear_errors() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 20).await;
    let cases: Vec<(&str, &str)> = vec![
        ("{ leads(first: 501) { totalCount } }", "`first` may be at most 500 (got 501)"),
        ("{ leads(last: 1000) { totalCount } }", "`last` may be at most 500"),
        ("{ leads(first: -1) { totalCount } }", "`first` must not be negative"),
        ("{ leads(first: 1, last: 1) { totalCount } }", "give `first` or `last`, not both"),
        ("{ leads(after: \"garbage\") { totalCount } }", "`after` is not a cursor this list gave out"),
        ("{ leads(before: \"e30\") { totalCount } }", "`before` was made for a different orderBy"),
        ("{ leads(first: 1) { nodes { activities(first: 900) { totalCount } } } }", "`first` may be at most 500"),
        (
            "{ leads(first: 500) { nodes { activities(first: 500) { nodes { conversation { messages(first: 500) { nodes { content } } } } } } } }",
            "the query costs more than the limit of 250000",
        ),
        (
            "{ leads(first: 1) { nodes { activities(first: 1) { nodes { lead { activities(first: 1) { nodes { lead { activities(first: 1) { nodes { lead { activities(first: 1) { nodes { lead { activities(first: 1) { nodes { id } } } } } } } } } } } } } } } } }",
            "the query nests deeper than the limit of 16 levels",
        ),
        ("{ leads { nodes { nope } } }", "Unknown field \"nope\""),
        ("{ leads(", "expected"),
    ];
    // Twice: a query text is validated in full until it has passed once.
    for _round in 0..2 {
        for (query, expected) in &cases {
            let body = s.graphql(query, json!({})).await;
            let messages = errors(&body);
            assert!(
                messages.iter().any(|m| m.contains(expected)),
                "{query}: expected an error containing {expected:?}, got {messages:?}"
            );
        }
    }
    // A text that passed is still held to the limits, which depend on its
    // variables, and to its variables' types.
    let sized = "query($n: Int) { leads(first: $n) { nodes { activities(first: $n) { nodes { conversation { messages(first: $n) { nodes { content } } } } } } } }";
    let data = s.query(sized, json!({ "n": 2 })).await;
    assert!(!data["leads"]["nodes"].as_array().unwrap().is_empty());
    let body = s.graphql(sized, json!({ "n": 500 })).await;
    assert!(
        errors(&body)
            .iter()
            .any(|m| m.contains("the query costs more than the limit of 250000")),
        "{body}"
    );
    let body = s.graphql(sized, json!({ "n": "many" })).await;
    assert!(!errors(&body).is_empty(), "{body}");
    assert!(body["data"]["leads"].is_null(), "{body}");
    // A cursor from another order is refused, not misread.
    let data = s
        .query("{ leads(first: 1) { pageInfo { endCursor } } }", json!({}))
        .await;
    let cursor = data["leads"]["pageInfo"]["endCursor"].clone();
    let body = s
        .graphql(
            "query($c: String) { leads(orderBy: [{field: NAME}], after: $c) { totalCount } }",
            json!({ "c": cursor }),
        )
        .await;
    assert!(errors(&body)[0].contains("different orderBy"));
    // A filter nested past the limit.
    let mut filter = json!({ "name": { "eq": "x" } });
    for _ in 0..20 {
        filter = json!({ "not": filter });
    }
    let body = s
        .graphql(
            "query($f: LeadFilter) { leads(filter: $f) { totalCount } }",
            json!({ "f": filter }),
        )
        .await;
    assert!(errors(&body)[0].contains("deeper than 16"), "{body}");
    // Errors carry a code.
    let body = s
        .graphql("{ leads(first: 501) { totalCount } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // And the server still answers.
    assert_eq!(s.get_status("/healthz").await, 200);
    s.stop().await;
}

#[tokio::test]
async fn graphql_over_http_conventions() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.cors_origins = vec!["https://app.example.com".into()];
    let s = TestServer::start_with(config).await;
    leadql::demo::load(&s.state, 30).await.unwrap();

    // GET with the query in the URL.
    let response = s
        .client
        .get(s.url("/graphql"))
        .query(&[
            (
                "query",
                "query Count($n: Int) { leads(first: $n) { totalCount } }",
            ),
            ("variables", "{\"n\": 1}"),
            ("operationName", "Count"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["leads"]["totalCount"].as_i64().unwrap() > 30);

    // application/graphql-response+json when asked: 400 for a request that
    // cannot run, 200 with the same error for plain JSON clients.
    for (accept, status, content_type) in [
        (
            "application/graphql-response+json",
            400,
            "application/graphql-response+json",
        ),
        ("application/json", 200, "application/json"),
    ] {
        let response = s
            .client
            .post(s.url("/graphql"))
            .header("accept", accept)
            .json(&json!({ "query": "{ leads { nodes { nope } } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{accept}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type));
        let body: Value = response.json().await.unwrap();
        assert!(errors(&body)[0].contains("nope"));
    }
    // A field error (bad argument value at run time) still has data: 200.
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ leads(first: 501) { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Not GraphQL at all: 400 with a message.
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(!errors(&body)[0].is_empty());
    let response = s.client.get(s.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // Compression when the client accepts it.
    let response = s
        .client
        .post(s.url("/graphql"))
        .header("accept-encoding", "gzip")
        .json(&json!({ "query": "{ leads(first: 200) { nodes { id name summary } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );

    // CORS for the configured origin only.
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Operations show in the metrics by name.
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"leadql_graphql_operations_total{operation="Count",outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"leadql_graphql_operations_total{operation="anonymous",outcome="error"}"#));
    s.stop().await;
}

#[tokio::test]
async fn a_query_past_the_time_limit_is_stopped() {
    let db = TestDb::new().await;
    let mut config = Config::for_database(&db.url);
    config.query_timeout = 0.000_001;
    let s = TestServer::start_with(config).await;
    leadql::demo::load(&s.state, 30).await.unwrap();
    let body = s
        .graphql("{ leads(first: 50) { totalCount nodes { activities(first: 10) { nodes { conversation { messages(first: 20) { nodes { content } } } } } } } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
    assert!(errors(&body)[0].contains("ran longer than"));
    s.stop().await;
}

#[tokio::test]
async fn requests_cut_off_mid_statement_leave_later_answers_right() {
    // A request keeps one connection for its statements and hands it to
    // the next request. Requests whose client goes away mid-statement (the
    // server drops them there) must not disturb the answers of the
    // requests that come after them on the same connections.
    let db = TestDb::new().await;
    let s = demo_server(&db, 120).await;
    let data = s
        .query(
            "{ leads(first: 500, orderBy: [{field: ID}]) { nodes { id name } } }",
            json!({}),
        )
        .await;
    let leads: Vec<(String, Value)> = data["leads"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_string(), n["name"].clone()))
        .collect();
    let heavy = "{ leads(first: 500) { nodes { activities(first: 50) { nodes { conversation { messages(first: 100) { nodes { content } } } } } } } }";
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(3))
        .build()
        .unwrap();
    for round in 0..10 {
        let cut = (0..4).map(|_| {
            impatient
                .post(s.url("/graphql"))
                .json(&json!({ "query": heavy }))
                .send()
        });
        let _ = futures::future::join_all(cut).await;
        for (id, name) in leads.iter().skip(round * 7).take(7) {
            let data = s
                .query(
                    "query($id: ID!) { lead(id: $id) { id name } }",
                    json!({ "id": id }),
                )
                .await;
            assert_eq!(data["lead"]["id"], json!(id), "round {round}");
            assert_eq!(&data["lead"]["name"], name, "round {round}");
        }
    }
    assert_eq!(s.get_status("/healthz").await, 200);
    s.stop().await;
}

#[test]
fn schema_graphql_is_what_leadql_schema_prints() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let current = leadql::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` and commit it"
    );
    // Every type and field is described, for GraphiQL's docs pane.
    let schema = leadql::graphql::schema(Default::default(), None);
    let introspection = futures::executor::block_on(schema.execute(
        "{ __schema { types { name kind description fields { name description } inputFields { name description } } } }",
    ));
    let types = introspection.data.into_json().unwrap();
    let mut missing = Vec::new();
    for t in types["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if name.starts_with("__") || t["kind"] == "SCALAR" {
            continue;
        }
        if t["description"].is_null() {
            missing.push(name.to_string());
        }
        let fields = t["fields"].as_array().into_iter().flatten();
        for f in fields.chain(t["inputFields"].as_array().into_iter().flatten()) {
            if f["description"].is_null() {
                missing.push(format!("{name}.{}", f["name"].as_str().unwrap()));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

/// The statements one operation ran, from the metrics of `operation`.
async fn statements(s: &TestServer, operation: &str) -> f64 {
    let metrics = s.metrics().await;
    let series = format!("leadql_graphql_statements_sum{{operation=\"{operation}\"}}");
    sample_of(&metrics, &series).unwrap_or_else(|| panic!("no {series} in {metrics}"))
}

#[tokio::test]
async fn nested_fields_load_in_a_bounded_number_of_statements() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 80).await;
    let query = |n: usize| {
        format!(
            "query History{n} {{ leads(first: {n}) {{ nodes {{ id name updates {{ id }} lastActivity {{ id }}
              activities(first: 5) {{ totalCount nodes {{ id lead {{ id }}
                analysis {{ disposition }}
                conversation {{ turnCount messages(first: 5) {{ nodes {{ content }} }} toolCalls(first: 5) {{ nodes {{ name activity {{ id }} }} }} }} }} }} }} }} }}"
        )
    };
    for n in [1, 5, 50] {
        let body = s.graphql(&query(n), json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["leads"]["nodes"].as_array().unwrap().len(), n);
    }
    let one = statements(&s, "History1").await;
    let five = statements(&s, "History5").await;
    let fifty = statements(&s, "History50").await;
    // One statement per list or lookup level, however many leads: leads,
    // updates, last activity, activities with their lead, analysis and
    // conversation joined (+ their count), messages, tool calls, the tool
    // calls' activities.
    assert_eq!(
        five, fifty,
        "50 leads cost what 5 cost ({one}, {five}, {fifty})"
    );
    assert_eq!(fifty, 8.0, "statements for 50 leads");
    s.stop().await;
}

#[tokio::test]
#[cfg_attr(
    leadql_graphiql_cdn,
    ignore = "built without npm: GraphiQL loads from a CDN (see graphiql::tests)"
)]
async fn browsers_get_graphiql_served_from_the_binary() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let response = s
        .client
        .get(s.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    // Every script and style comes from leadql itself, none from a CDN.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/graphql/assets/"))
        .collect();
    assert_eq!(assets.len(), 5, "{html}");
    assert!(!html.contains("https://"), "no third-party URLs: {html}");
    for asset in assets {
        let response = s.client.get(s.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.text().await.unwrap();
        if asset.ends_with(".js") {
            assert!(content_type.starts_with("text/javascript"));
            assert!(body.len() > 5_000, "{asset} is a real bundle");
        } else {
            assert!(content_type.starts_with("text/css"));
            assert!(
                body.contains(".graphiql-container"),
                "{asset} is GraphiQL's stylesheet"
            );
        }
    }
    assert!(s
        .client
        .get(s.url("/graphql/assets/graphiql.min.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("createFetcher"));
    assert_eq!(s.get_status("/graphql/assets/nope.js").await, 404);

    // The default tabs are on the page, and each query among them runs as
    // it is on the demo data (the subscription tab: tests/it/graphiql_browser.rs).
    leadql::demo::load_recent(&s.state, 50).await.unwrap();
    let since = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339();
    let mut queries = 0;
    for (query, variables) in leadql::graphql::graphiql::TABS {
        assert!(
            html.contains(&serde_json::to_string(query).unwrap()),
            "{query}"
        );
        if query.contains("subscription ") {
            continue;
        }
        let variables: Value = match variables.replace("SINCE_TODAY", &since) {
            text if text.is_empty() => json!({}),
            text => serde_json::from_str(&text).unwrap(),
        };
        let data = s.query(query, variables).await;
        assert!(
            !data.as_object().unwrap().values().any(Value::is_null),
            "{data}"
        );
        queries += 1;
    }
    assert_eq!(queries, 2);
    s.stop().await;
}

#[tokio::test]
async fn fields_come_back_in_the_order_asked_for() {
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    leadql::demo::load(&s.state, 3).await.unwrap();
    let response = s
        .client
        .post(s.url("/graphql"))
        .json(&json!({ "query": "{ leads(first: 1) { totalCount nodes { name id } } callStats { toolCalls attempts } }" }))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(at("\"leads\"") < at("\"callStats\""), "{text}");
    assert!(at("\"totalCount\"") < at("\"nodes\""), "{text}");
    assert!(at("\"name\"") < at("\"id\""), "{text}");
    assert!(at("\"toolCalls\"") < at("\"attempts\""), "{text}");
    s.stop().await;
}

/// The PostgreSQL index behind a project's leads by disposition carries
/// every lead column, so a page is read from the index alone: a column
/// added to leads and forgotten in the index fails here.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite has no covering indexes)"
)]
async fn the_lead_page_index_covers_every_lead_column() {
    use sea_orm::{ConnectionTrait, IdenStatic, Iterable, Statement};
    let db = TestDb::new().await;
    assert!(db.postgres().is_some(), "needs LEADQL_TEST_DATABASE_URL");
    let s = TestServer::start(&db).await;
    let row = s
        .db()
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'leads_project_disposition_page'",
        ))
        .await
        .unwrap()
        .expect("the index exists");
    let definition: String = row.try_get("", "indexdef").unwrap();
    let columns = definition
        .split_once(" USING ")
        .map(|(_, cols)| cols)
        .unwrap_or_default();
    let words: BTreeSet<&str> = columns
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for column in entity::lead::Column::iter() {
        let name = column.as_str();
        assert!(words.contains(name), "leads.{name} is not in {definition}");
    }
    s.stop().await;
}

/// Activities sort by the language the platform inferred: NULLs first
/// ascending, then by id, page after page.
#[tokio::test]
async fn activities_sort_and_page_by_language() {
    let db = TestDb::new().await;
    let s = demo_server(&db, 40).await;
    let query = "query($after: String) { activities(orderBy: [{field: LANGUAGE}], first: 17, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id language } } }";
    let mut seen: Vec<(Option<String>, String)> = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = s.query(query, json!({ "after": after })).await;
        let conn = &data["activities"];
        for n in conn["nodes"].as_array().unwrap() {
            seen.push((
                n["language"].as_str().map(str::to_string),
                n["id"].as_str().unwrap().to_string(),
            ));
        }
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    use sea_orm::EntityTrait;
    let stored = entity::activity::Entity::find().all(s.db()).await.unwrap();
    assert_eq!(seen.len(), stored.len());
    let languages: BTreeSet<Option<String>> = seen.iter().map(|(l, _)| l.clone()).collect();
    assert!(
        languages.contains(&Some("hi".to_string())) && languages.contains(&Some("en".to_string())),
        "the data has calls in Hindi and English: {languages:?}"
    );
    s.stop().await;
}

/// Page 101 of a project's leads by disposition, newest first, reads about
/// as many index entries as page 1: on PostgreSQL by EXPLAIN ANALYZE of
/// the statement the server runs, on SQLite by the plan's index bound.
#[tokio::test]
async fn a_deep_page_reads_what_the_first_reads() {
    use async_graphql::InputType;
    use leadql::graphql::engine::join::Reads;
    use leadql::graphql::engine::order::OrderDirection;
    use leadql::graphql::engine::page::{statements, PageArgs};
    use leadql::graphql::engine::resource::Resource;
    use leadql::graphql::resources::lead::{
        lead_key, Lead, LeadFilter, LeadOrderBy, LeadOrderField,
    };
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let backend = s.db().get_database_backend();
    let series = match backend {
        DbBackend::Postgres => "SELECT i FROM generate_series(1, 6000) AS s(i)",
        _ => "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 6000) SELECT i FROM s",
    };
    for (project, disposition) in [("P", "Interested"), ("P", "Busy"), ("Q", "Interested")] {
        s.db()
            .execute_unprepared(&format!(
                "INSERT INTO leads (id, project_id, disposition, last_activity_at, activity_count, name, summary) \
                 SELECT '{project}{disposition}' || i, '{project}', '{disposition}', 1768000000000 + i * 1000, 1, 'n', 's' \
                 FROM ({series}) AS series"
            ))
            .await
            .unwrap();
    }
    s.db().execute_unprepared("ANALYZE").await.unwrap();

    // The cursor of page 100's last row, through the API.
    let query = "query($after: String) { leads(filter: {projectId: {eq: \"P\"}, disposition: {eq: \"interested\"}},
        orderBy: [{field: LAST_ACTIVITY_AT, direction: DESC}], first: 50, after: $after) {
        pageInfo { endCursor } nodes { id name lastActivityAt summary } } }";
    let mut after = Value::Null;
    for _ in 0..100 {
        let data = s.query(query, json!({ "after": after })).await;
        after = data["leads"]["pageInfo"]["endCursor"].clone();
    }
    let page_101 = s.query(query, json!({ "after": after })).await;
    let nodes = page_101["leads"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert_eq!(nodes[0]["id"], json!("PInterested1000"), "rows 5001-5050");

    // The statement each page runs first, built as the resolver builds it.
    let filter = LeadFilter::parse(Some(
        async_graphql::Value::from_json(
            json!({"projectId": {"eq": "P"}, "disposition": {"eq": "interested"}}),
        )
        .unwrap(),
    ))
    .unwrap();
    let cond =
        leadql::graphql::engine::filter::condition(&filter, backend, leadql::access::Role::Full)
            .unwrap();
    let key = lead_key(Some(&[LeadOrderBy {
        field: LeadOrderField::LastActivityAt,
        direction: OrderDirection::Desc,
    }]));
    let cols = ["name", "lastActivityAt", "summary"]
        .iter()
        .fold(Lead::key_columns(), |set, f| set.union(Lead::columns_of(f)));
    let first_statement = |after: Option<String>| {
        let args = PageArgs {
            first: Some(50),
            after,
            ..Default::default()
        };
        let window = args.window(&key).unwrap();
        let select = entity::lead::Entity::find().filter(cond.clone());
        let stmt =
            statements::<Lead>(select, &key, &window, &Reads::columns(cols), backend).remove(0);
        backend.build(&stmt)
    };
    let page_1 = first_statement(None);
    let page_101 = first_statement(after.as_str().map(str::to_string));
    match backend {
        DbBackend::Postgres => {
            // Index entries read: rows an index scan returned plus rows
            // it read and dropped.
            fn read(plan: &Value) -> f64 {
                let own = if plan["Node Type"].as_str().unwrap_or("").contains("Index") {
                    plan["Actual Rows"].as_f64().unwrap_or(0.0)
                        + plan["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
                } else {
                    0.0
                };
                own + plan["Plans"]
                    .as_array()
                    .map(|p| p.iter().map(read).sum())
                    .unwrap_or(0.0)
            }
            let mut entries = Vec::new();
            for stmt in [page_1, page_101] {
                let explain = Statement::from_sql_and_values(
                    backend,
                    format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", stmt.sql),
                    stmt.values.map(|v| v.0).unwrap_or_default(),
                );
                let row = s.db().query_one_raw(explain).await.unwrap().unwrap();
                let plan: Value = row.try_get("", "QUERY PLAN").unwrap();
                entries.push(read(&plan[0]["Plan"]));
            }
            assert!(entries[0] >= 50.0, "page 1 reads its rows: {entries:?}");
            assert!(
                entries[1] <= entries[0] * 1.3 + 5.0,
                "page 101 reads about what page 1 reads (index entries {entries:?})"
            );
        }
        _ => {
            let explain = Statement::from_sql_and_values(
                backend,
                format!("EXPLAIN QUERY PLAN {}", page_101.sql),
                page_101.values.map(|v| v.0).unwrap_or_default(),
            );
            let plan: Vec<String> = s
                .db()
                .query_all_raw(explain)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String>("", "detail").unwrap())
                .collect();
            let search = plan
                .iter()
                .find(|d| d.contains("leads_project_disposition_ci"))
                .unwrap_or_else(|| panic!("the page uses the index: {plan:?}"));
            assert!(
                search.contains("(last_activity_at,id)<(?,?)"),
                "the index scan starts at the cursor: {plan:?}"
            );
        }
    }
    s.stop().await;
}

/// On PostgreSQL a lead name's substring (three characters or more) is
/// found through the trigram index on names, whatever its case, and the
/// count is exact.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite has no index for `contains` on names)"
)]
async fn a_lead_name_substring_is_looked_up_by_trigrams() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    s.db()
        .execute_unprepared(
            "INSERT INTO leads (id, name, last_activity_at, activity_count) \
             SELECT 'L' || i, CASE i % 70 WHEN 0 THEN 'Sara Khan ' || i WHEN 1 THEN 'SARA KHAN' \
             ELSE 'Meera Iyer ' || i END, 1768000000000 + i, 1 \
             FROM generate_series(1, 7000) AS s(i)",
        )
        .await
        .unwrap();
    // What a server's autovacuum (or the end of `leadql import`) does: move
    // the index's pending entries into the index, and count the rows.
    s.db()
        .execute_unprepared("VACUUM ANALYZE leads")
        .await
        .unwrap();
    let data = s
        .query(
            r#"{ leads(filter: {name: {contains: "kHaN"}}) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["leads"]["totalCount"], 200, "{data}");

    // With sequential scans ruled out, the plan reads the index (without
    // it, PostgreSQL would have to scan anyway).
    let txn = s.db().begin().await.unwrap();
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let plan = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "EXPLAIN (FORMAT JSON) SELECT count(*) FROM leads WHERE name ILIKE '%kHaN%'",
        ))
        .await
        .unwrap()
        .unwrap();
    let plan: Value = plan.try_get("", "QUERY PLAN").unwrap();
    assert!(
        plan.to_string().contains("leads_name_trgm"),
        "the count reads the trigram index: {plan}"
    );
    txn.rollback().await.unwrap();
    s.stop().await;
}
