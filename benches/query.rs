//! Query benchmark: `leadql generate --leads N`, `leadql import`, then the
//! release server answering typical queries over HTTP from 8 concurrent
//! clients, on SQLite and PostgreSQL, at each size. Prints a
//! table of medians.
//!
//!     cargo bench --bench query
//!
//! - history: one lead's full history (activities, analyses, transcripts,
//!   tool calls, updates) for a random lead;
//! - page: "Interested" leads of a random project, newest first, 50;
//! - deep_page: all leads, newest first, 50, after a random lead's cursor
//!   (on average half the list before it);
//! - counts: dispositionCounts of a random project over a random 7 days,
//!   by day;
//! - totals: dispositionCounts and leadFunnel of a random project, all
//!   time (from the rollups); totals_exact: the same in forms the rollups
//!   do not answer, so the rows are counted instead (the baseline);
//! - stats: callStats of a random project, all time (from the rollup);
//!   stats_exact: the same with the filter under `and`, counted from the
//!   rows (the baseline);
//! - variable_page: the newest 20 activities with a random urgency
//!   (a variable filter); variable_count: that list's totalCount (from the
//!   variables table); variable_count_exact: the same count with the
//!   filter under `and`, counted from the activities (the baseline);
//! - callbacks: the DUE callbacks of a random project, earliest first, 50
//!   (a sales floor's screen);
//! - timeline: one lead's timeline, a random lead;
//! - page_count: the totalCount of page's list (from the lead rollup);
//!   page_count_exact: the same counted from the leads (the baseline);
//! - window_page: a random project's activities in a random 7 days, newest
//!   first, 20; window_count: that list's totalCount (from the activity
//!   rollup); window_count_exact: the same under `and` (the baseline);
//! - or_page / or_count: a random project's leads with either of two
//!   dispositions (an `or`), newest first, 50, and that list's totalCount
//!   (from the lead rollup);
//! - search_page / search_count: leads whose conversations mention a
//!   random one of three terms (two common ones, one no call has), newest
//!   first, 50, and that list's totalCount.
//!
//! Environment: LEADQL_BENCH_LEADS (comma-separated sizes, default
//! "10000,100000"), LEADQL_BENCH_REQUESTS (per query kind, default 2000),
//! LEADQL_BENCH_CLIENTS (default 8), LEADQL_BENCH_RUNS (rounds per query,
//! the median round is printed; default 3), LEADQL_BENCH_KINDS (which
//! queries, default all of them but search_page and search_count, in the
//! order above),
//! LEADQL_BENCH_POSTGRES (admin URL, or "off"), LEADQL_BENCH_SQLITE ("off"
//! measures PostgreSQL alone), LEADQL_BENCH_URL (measure a server that is already running, on
//! its data, instead: e.g. http://127.0.0.1:8080), LEADQL_BENCH_TRACES
//! (`off`, `on`: OpenTelemetry traces exported to a receiver in the
//! benchmark, or `both`: each database measured without and with, by two
//! servers on the same data, the rounds alternating between them),
//! LEADQL_BENCH_BIN (another build's `leadql` instead of this one's).

#[path = "support/mod.rs"]
mod support;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use support::{env_or, percentile, postgres_database, trace_variants, Server};

const HISTORY: &str = "query History($id: ID!) { lead(id: $id) {
  id name disposition dispositionType summary state lastActivityAt updates { id success error data timestamp }
  activities(first: 100) { nodes { id timestamp type callStatus attemptNumber isConnected variables
    analysis { disposition dispositionType summary }
    conversation { turnCount messages(first: 200) { nodes { role content timestamp } }
      toolCalls { nodes { name arguments response success } } } } } } }";

const PAGE: &str = "query Page($project: String!) {
  leads(filter: { projectId: { eq: $project }, disposition: { eq: \"Interested\" } },
        orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }], first: 50) {
    pageInfo { hasNextPage endCursor } edges { cursor node { id name disposition lastActivityAt summary } } } }";

/// All leads, newest first, 50, from a random lead's place in that order
/// (a client deep in a long list: half the leads lie before it on average).
const DEEP_PAGE: &str = "query DeepPage($after: String!) {
  leads(orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }], first: 50, after: $after) {
    pageInfo { hasNextPage endCursor } edges { cursor node { id name disposition lastActivityAt summary } } } }";

const COUNTS: &str = "query Counts($project: String!, $from: DateTime!, $to: DateTime!) {
  dispositionCounts(bucket: DAY, filter: { projectId: { eq: $project }, timestamp: { gte: $from, lt: $to } }) {
    bucketStart disposition dispositionType count } }";

const CALLBACKS: &str = "query Callbacks($project: String!) {
  callbacks(filter: { status: [DUE], projectId: { eq: $project } }, orderBy: [{ field: DUE_AT }], first: 50) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id dueAt localDate localTime timezone lead { id name } } } } }";

const TIMELINE: &str = "query Timeline($id: ID!) { lead(id: $id) {
  id name timeline(first: 100) { pageInfo { hasNextPage endCursor }
    edges { cursor node { at kind summary fromState toState } } } } }";

/// A dashboard's totals for a project: its activities per outcome and its
/// leads per disposition, all time (answered from the rollups).
const TOTALS: &str = "query Totals($project: String!) {
  dispositionCounts(filter: { projectId: { eq: $project } }) { disposition dispositionType count }
  leadFunnel(filter: { projectId: { eq: $project } }) { disposition dispositionType count } }";

/// The same totals in forms the rollups do not answer, counted from the
/// activities and leads (the baseline): each filter with a condition
/// every row meets that the rollup does not answer (`timestamp` not null;
/// a lead's `activityCount`, which the lead rollup does not hold). The
/// rollups answer `and`, `or` and `not` over their own fields.
const TOTALS_EXACT: &str = "query TotalsExact($project: String!) {
  dispositionCounts(filter: { projectId: { eq: $project }, timestamp: { isNull: false } }) { disposition dispositionType count }
  leadFunnel(filter: { projectId: { eq: $project }, activityCount: { gte: 0 } }) { disposition dispositionType count } }";

/// A project's call statistics, all time (from the activity rollup)...
const STATS: &str = "query Stats($project: String!) {
  callStats(filter: { projectId: { eq: $project } }) {
    attempts connected connectRate averageTurnCount toolCalls } }";

/// ...and the same with a condition every activity meets that the
/// rollup does not answer (`timestamp` not null), counted from the
/// activities, their conversations and tool calls (the baseline).
const STATS_EXACT: &str = "query StatsExact($project: String!) {
  callStats(filter: { projectId: { eq: $project }, timestamp: { isNull: false } }) {
    attempts connected connectRate averageTurnCount toolCalls } }";

/// A list filtered by an extracted variable (a random one of the
/// generator's urgencies; "None" matches most calls, "Very Urgent" a few
/// percent): its first page, newest first...
const VARIABLE_PAGE: &str = "query VariablePage($v: String!) {
  activities(filter: { variable: { name: \"Urgency\", eq: $v } },
             orderBy: [{ field: TIMESTAMP, direction: DESC }], first: 20) {
    pageInfo { hasNextPage endCursor } nodes { id timestamp callStatus } } }";

/// ...its `totalCount` (counted in the variables table)...
const VARIABLE_COUNT: &str = "query VariableCount($v: String!) {
  activities(filter: { variable: { name: \"Urgency\", eq: $v } }) { totalCount } }";

/// ...and the same count with the filter under `and`, which counts the
/// activities (the baseline).
const VARIABLE_COUNT_EXACT: &str = "query VariableCountExact($v: String!) {
  activities(filter: { and: [{ variable: { name: \"Urgency\", eq: $v } }] }) { totalCount } }";

/// The count of PAGE's list (from the lead rollup)...
const PAGE_COUNT: &str = "query PageCount($project: String!) {
  leads(filter: { projectId: { eq: $project }, disposition: { eq: \"Interested\" } }) { totalCount } }";

/// ...and the same with a condition every lead meets on a field the
/// rollup does not hold, counted from the leads (the baseline).
const PAGE_COUNT_EXACT: &str = "query PageCountExact($project: String!) {
  leads(filter: { projectId: { eq: $project }, disposition: { eq: \"Interested\" }, activityCount: { gte: 0 } }) {
    totalCount } }";

/// A project's activities in a random 7 days, newest first, 20...
const WINDOW_PAGE: &str = "query WindowPage($project: String!, $from: DateTime!, $to: DateTime!) {
  activities(filter: { projectId: { eq: $project }, timestamp: { gte: $from, lt: $to } },
             orderBy: [{ field: TIMESTAMP, direction: DESC }], first: 20) {
    pageInfo { hasNextPage endCursor } nodes { id timestamp callStatus } } }";

/// ...that list's count (from the activity rollup)...
const WINDOW_COUNT: &str = "query WindowCount($project: String!, $from: DateTime!, $to: DateTime!) {
  activities(filter: { projectId: { eq: $project }, timestamp: { gte: $from, lt: $to } }) { totalCount } }";

/// ...and the same with a condition every activity meets that the
/// rollup does not answer (`timestamp` not null), counted from the
/// activities (the baseline).
const WINDOW_COUNT_EXACT: &str = "query WindowCountExact($project: String!, $from: DateTime!, $to: DateTime!) {
  activities(filter: { projectId: { eq: $project }, timestamp: { gte: $from, lt: $to, isNull: false } }) {
    totalCount } }";

/// A project's calls with either of two outcomes (an `or` on the
/// analysis disposition), newest first, 20...
const OUTCOME_PAGE: &str = "query OutcomePage($project: String!) {
  activities(filter: { projectId: { eq: $project },
                       or: [{ disposition: { eq: \"Interested\" } }, { disposition: { eq: \"Callback Requested\" } }] },
             orderBy: [{ field: TIMESTAMP, direction: DESC }], first: 20) {
    pageInfo { hasNextPage endCursor } nodes { id timestamp callStatus } } }";

/// ...that list's count (from the activity rollup)...
const OUTCOME_COUNT: &str = "query OutcomeCount($project: String!) {
  activities(filter: { projectId: { eq: $project },
                       or: [{ disposition: { eq: \"Interested\" } }, { disposition: { eq: \"Callback Requested\" } }] }) {
    totalCount } }";

/// ...and counted from the activities (the baseline).
const OUTCOME_COUNT_EXACT: &str = "query OutcomeCountExact($project: String!) {
  activities(filter: { projectId: { eq: $project }, timestamp: { isNull: false },
                       or: [{ disposition: { eq: \"Interested\" } }, { disposition: { eq: \"Callback Requested\" } }] }) {
    totalCount } }";

/// A project's leads with either of two outcomes (an `or`), newest
/// first, 50...
const OR_PAGE: &str = "query OrPage($project: String!) {
  leads(filter: { projectId: { eq: $project },
                  or: [{ disposition: { eq: \"Interested\" } }, { disposition: { eq: \"Callback Requested\" } }] },
        orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }], first: 50) {
    pageInfo { hasNextPage endCursor } nodes { id name disposition lastActivityAt } } }";

/// ...and that list's count.
const OR_COUNT: &str = "query OrCount($project: String!) {
  leads(filter: { projectId: { eq: $project },
                  or: [{ disposition: { eq: \"Interested\" } }, { disposition: { eq: \"Callback Requested\" } }] }) {
    totalCount } }";

/// Leads whose conversations mention a random one of a few terms (text
/// search), newest first, 50...
const SEARCH_PAGE: &str = "query SearchPage($term: String!) {
  leads(filter: { search: $term }, orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }], first: 50) {
    pageInfo { hasNextPage endCursor } nodes { id name disposition lastActivityAt } } }";

/// ...and that list's count.
const SEARCH_COUNT: &str = "query SearchCount($term: String!) {
  leads(filter: { search: $term }) { totalCount } }";

/// Search terms: two that many conversations hold (English ones; those
/// in either language that reached the price), and one none does.
const TERMS: &[&str] = &["evening", "799", "no such words"];

const URGENCIES: &[&str] = &["Very Urgent", "Urgent", "Normal", "None"];

/// The query kinds, in the order they run.
const KINDS: &[&str] = &[
    "history",
    "page",
    "deep_page",
    "counts",
    "totals",
    "totals_exact",
    "stats",
    "stats_exact",
    "variable_page",
    "variable_count",
    "variable_count_exact",
    "callbacks",
    "timeline",
    "page_count",
    "page_count_exact",
    "window_page",
    "window_count",
    "window_count_exact",
    "or_page",
    "or_count",
    "outcome_page",
    "outcome_count",
    "outcome_count_exact",
    "search_page",
    "search_count",
];

/// Kinds measured only when LEADQL_BENCH_KINDS names them: a common
/// term's search page takes about a second at 100,000 leads, so a default
/// run would take hours.
const NAMED_ONLY: &[&str] = &["search_page", "search_count"];

struct Sample {
    leads: Vec<String>,
    /// The sampled leads' cursors in DEEP_PAGE's order.
    deep_cursors: Vec<String>,
    projects: Vec<String>,
    first_ms: i64,
    last_ms: i64,
}

async fn graphql(client: &reqwest::Client, base: &str, query: &str, variables: Value) -> Value {
    let response = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("JSON answer");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// What the timed loop reads of an answer: whether it has data and errors,
/// without building a JSON tree (the clients share this machine's two cores
/// with the server, so their own work shows up in every latency).
#[derive(serde::Deserialize)]
struct Checked {
    data: Option<serde::de::IgnoredAny>,
    errors: Option<Value>,
}

/// One request of the timed loop: the answer must be a 200 with data and
/// no errors.
async fn check(client: &reqwest::Client, url: &str, body: Vec<u8>) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let bytes = response.bytes().await.expect("answer");
    let answer: Checked = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: not a GraphQL answer ({e}): {bytes:?}"));
    assert!(status.is_success(), "{status}: {bytes:?}");
    assert!(answer.errors.is_none(), "{:?}", answer.errors);
    assert!(answer.data.is_some(), "no data: {bytes:?}");
}

fn ms(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

/// Lead ids, projects and the time range to draw requests from.
async fn sample(client: &reqwest::Client, base: &str) -> Sample {
    let mut leads = Vec::new();
    let mut deep_cursors = Vec::new();
    let mut projects = std::collections::BTreeSet::new();
    let mut after = Value::Null;
    for _ in 0..8 {
        let data = graphql(
            client,
            base,
            "query($after: String) { leads(first: 500, after: $after, orderBy: [{field: ID}]) { pageInfo { endCursor } nodes { id projectId } } }",
            json!({ "after": after }),
        )
        .await;
        for n in data["leads"]["nodes"].as_array().unwrap() {
            leads.push(n["id"].as_str().unwrap().to_string());
            if let Some(p) = n["projectId"].as_str() {
                projects.insert(p.to_string());
            }
        }
        after = data["leads"]["pageInfo"]["endCursor"].clone();
    }
    // A cursor is the sort key of its row: the same lead found by id, in
    // the same order, gives its cursor in the whole list.
    for ids in leads.chunks(100) {
        let data = graphql(
            client,
            base,
            "query($ids: [String!]!) { leads(filter: { id: { in: $ids } }, first: 100,
               orderBy: [{ field: LAST_ACTIVITY_AT, direction: DESC }]) { edges { cursor } } }",
            json!({ "ids": ids }),
        )
        .await;
        for e in data["leads"]["edges"].as_array().unwrap() {
            deep_cursors.push(e["cursor"].as_str().unwrap().to_string());
        }
    }
    let range = graphql(
        client,
        base,
        "{ first: activities(first: 1) { nodes { timestamp } } last: activities(last: 1) { nodes { timestamp } } }",
        json!({}),
    )
    .await;
    Sample {
        leads,
        deep_cursors,
        projects: projects.into_iter().collect(),
        first_ms: ms(&range["first"]["nodes"][0]["timestamp"]),
        last_ms: ms(&range["last"]["nodes"][0]["timestamp"]),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// Latencies (ms) of `requests` requests of one kind from `clients` tasks.
async fn run(
    base: &str,
    kind: &str,
    sample: &Arc<Sample>,
    requests: usize,
    clients: usize,
) -> (Vec<f64>, f64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/graphql");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, next, sample, url, kind) = (
            client.clone(),
            next.clone(),
            sample.clone(),
            url.clone(),
            kind.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let (query, variables) = match kind.as_str() {
                    "history" => (HISTORY, json!({ "id": sample.leads[rng.random_range(0..sample.leads.len())] })),
                    "page" => (PAGE, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "deep_page" => (DEEP_PAGE, json!({ "after": sample.deep_cursors[rng.random_range(0..sample.deep_cursors.len())] })),
                    "callbacks" => (CALLBACKS, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "totals" => (TOTALS, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "totals_exact" => (TOTALS_EXACT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "stats" => (STATS, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "stats_exact" => (STATS_EXACT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "variable_page" => (VARIABLE_PAGE, json!({ "v": URGENCIES[rng.random_range(0..URGENCIES.len())] })),
                    "variable_count" => (VARIABLE_COUNT, json!({ "v": URGENCIES[rng.random_range(0..URGENCIES.len())] })),
                    "variable_count_exact" => (VARIABLE_COUNT_EXACT, json!({ "v": URGENCIES[rng.random_range(0..URGENCIES.len())] })),
                    "timeline" => (TIMELINE, json!({ "id": sample.leads[rng.random_range(0..sample.leads.len())] })),
                    "page_count" => (PAGE_COUNT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "page_count_exact" => (PAGE_COUNT_EXACT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "or_page" => (OR_PAGE, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "or_count" => (OR_COUNT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "outcome_page" => (OUTCOME_PAGE, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "outcome_count" => (OUTCOME_COUNT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "outcome_count_exact" => (OUTCOME_COUNT_EXACT, json!({ "project": sample.projects[rng.random_range(0..sample.projects.len())] })),
                    "search_page" => (SEARCH_PAGE, json!({ "term": TERMS[rng.random_range(0..TERMS.len())] })),
                    "search_count" => (SEARCH_COUNT, json!({ "term": TERMS[rng.random_range(0..TERMS.len())] })),
                    windowed => {
                        let week = 7 * 86_400_000;
                        let span = (sample.last_ms - sample.first_ms - week).max(1);
                        let from = sample.first_ms + rng.random_range(0..span);
                        (
                            match windowed {
                                "window_page" => WINDOW_PAGE,
                                "window_count" => WINDOW_COUNT,
                                "window_count_exact" => WINDOW_COUNT_EXACT,
                                _ => COUNTS,
                            },
                            json!({
                                "project": sample.projects[rng.random_range(0..sample.projects.len())],
                                "from": rfc3339(from),
                                "to": rfc3339(from + week),
                            }),
                        )
                    }
                };
                let body = serde_json::to_vec(&json!({ "query": query, "variables": variables }))
                    .unwrap();
                let sent = Instant::now();
                check(&client, &url, body).await;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    (latencies, seconds)
}

fn import(database_url: &str, file: &std::path::Path) -> f64 {
    let started = Instant::now();
    let output = Command::new(support::leadql_binary())
        .arg("import")
        .arg(file)
        .env("DATABASE_URL", database_url)
        .env("LEADQL_LOG", "warn")
        .output()
        .expect("run leadql import");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sizes: Vec<usize> = std::env::var("LEADQL_BENCH_LEADS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let requests = env_or("LEADQL_BENCH_REQUESTS", 2000);
    let clients = env_or("LEADQL_BENCH_CLIENTS", 8);
    let postgres = std::env::var("LEADQL_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let sqlite = std::env::var("LEADQL_BENCH_SQLITE").map_or(true, |v| v != "off");
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    if let Ok(base) = std::env::var("LEADQL_BENCH_URL") {
        let target = Target {
            name: "running server",
            base: &base,
            server: None,
        };
        measure(&[target], requests, clients, &mut rows).await;
        print(rows);
        return;
    }
    let variants = trace_variants().await;
    for &leads in &sizes {
        let file = dir.path().join(format!("leads{leads}.ndjson"));
        let output = Command::new(support::leadql_binary())
            .args([
                "generate",
                "--leads",
                &leads.to_string(),
                "--seed",
                "11",
                "-o",
            ])
            .arg(&file)
            .output()
            .expect("run leadql generate");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let payloads = count_lines(&file);
        let mut databases = Vec::new();
        if sqlite {
            databases.push((
                "SQLite",
                format!("sqlite://{}/q{leads}.db?mode=rwc", dir.path().display()),
                Storage::File(dir.path().join(format!("q{leads}.db"))),
            ));
        }
        if postgres != "off" {
            let name = format!("leadql_bench_query_{leads}");
            match postgres_database(&postgres, &name) {
                Some(url) => {
                    databases.push(("PostgreSQL", url.clone(), Storage::Database { url, name }))
                }
                None => eprintln!("PostgreSQL not reachable at {postgres}: skipped"),
            }
        }
        for (backend, url, storage) in databases {
            let seconds = import(&url, &file);
            let bytes = storage.bytes();
            eprintln!(
                "{leads} leads ({payloads} payloads) imported into {backend} in {seconds:.0}s \
                 ({:.0} payloads/s); {:.2} GiB on disk, {:.1} KiB per payload",
                payloads as f64 / seconds,
                bytes as f64 / (1u64 << 30) as f64,
                bytes as f64 / 1024.0 / payloads.max(1) as f64,
            );
            // Every variant's server runs at once, on the same data, and the
            // rounds alternate between them: a variant is compared with the
            // others under the same machine load, not a minute apart.
            let mut servers = Vec::new();
            for (label, env, _) in &variants {
                servers.push((
                    format!("{backend}{label}"),
                    Server::start_with(&url, env).await,
                ));
            }
            let targets: Vec<Target> = servers
                .iter()
                .map(|(name, server)| Target {
                    name,
                    base: &server.base,
                    server: Some(server),
                })
                .collect();
            measure(&targets, requests, clients, &mut rows).await;
            for (name, server) in &servers {
                eprintln!("{name}: server peak RSS {:.0} MiB", server.peak_rss_mib());
            }
            for (_, _, sink) in &variants {
                if let Some(sink) = sink {
                    eprintln!("{} KiB of traces exported so far", sink.received() / 1024);
                }
            }
            // A million leads take tens of GiB per database: each size's
            // data goes once it is measured.
            drop(servers);
            storage.remove(&postgres);
        }
        let _ = std::fs::remove_file(&file);
        // The rows so far, in case a larger size does not finish.
        eprintln!("after {leads} leads:");
        for row in &rows {
            eprintln!("{row}");
        }
    }
    print(rows);
}

fn count_lines(file: &std::path::Path) -> usize {
    use std::io::BufRead;
    let file = std::fs::File::open(file).expect("open the generated file");
    std::io::BufReader::new(file).lines().count()
}

/// Where a benchmark database lives: what it takes on disk, and removing
/// it once measured.
enum Storage {
    /// A SQLite file (with its `-wal` and `-shm`).
    File(std::path::PathBuf),
    /// A PostgreSQL database: its URL, and its name to drop it by.
    Database { url: String, name: String },
}

impl Storage {
    fn sqlite_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| std::path::PathBuf::from(format!("{}{suffix}", path.display())))
            .collect()
    }

    fn bytes(&self) -> u64 {
        match self {
            Storage::File(path) => Storage::sqlite_files(path)
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
            Storage::Database { url, .. } => Command::new("psql")
                .args([url, "-qAtc", "SELECT pg_database_size(current_database())"])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        }
    }

    fn remove(&self, admin: &str) {
        match self {
            Storage::File(path) => {
                for f in Storage::sqlite_files(path) {
                    let _ = std::fs::remove_file(f);
                }
            }
            Storage::Database { name, .. } => {
                let _ = Command::new("psql")
                    .args([
                        admin,
                        "-qAtc",
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ])
                    .output();
            }
        }
    }
}

/// A server to measure, and the name of its rows.
struct Target<'a> {
    name: &'a str,
    base: &'a str,
    /// The server's process, for its CPU time (none for a server already
    /// running elsewhere).
    server: Option<&'a Server>,
}

/// Run the query kinds against every target, a row each per target: the
/// rounds alternate between the targets, and each target's median round
/// is printed with its server CPU per request over all its rounds.
async fn measure(targets: &[Target<'_>], requests: usize, clients: usize, rows: &mut Vec<String>) {
    let client = reqwest::Client::new();
    let base = targets[0].base;
    let sample = Arc::new(sample(&client, base).await);
    let counts = graphql(
        &client,
        base,
        "{ leads(first: 0) { totalCount } activities(first: 0) { totalCount } }",
        json!({}),
    )
    .await;
    let leads = counts["leads"]["totalCount"].as_i64().unwrap();
    let activities = counts["activities"]["totalCount"].as_i64().unwrap();
    let rounds = env_or("LEADQL_BENCH_RUNS", 3).max(1);
    let kinds = std::env::var("LEADQL_BENCH_KINDS").unwrap_or_else(|_| {
        let default = KINDS.iter().filter(|k| !NAMED_ONLY.contains(k));
        default.copied().collect::<Vec<_>>().join(",")
    });
    for kind in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        assert!(
            KINDS.contains(&kind),
            "LEADQL_BENCH_KINDS: unknown query {kind:?} ({})",
            KINDS.join(", ")
        );
        // Warm up (caches, connections), then measure `rounds` times and
        // keep the round with the median p50: this machine is noisy.
        for t in targets {
            run(t.base, kind, &sample, requests / 10, clients).await;
        }
        let mut results: Vec<Vec<(Vec<f64>, f64)>> = targets.iter().map(|_| Vec::new()).collect();
        let mut cpu = vec![0.0; targets.len()];
        for _ in 0..rounds {
            for (i, t) in targets.iter().enumerate() {
                let before = t.server.map_or(f64::NAN, Server::cpu_seconds);
                results[i].push(run(t.base, kind, &sample, requests, clients).await);
                cpu[i] += t.server.map_or(f64::NAN, Server::cpu_seconds) - before;
            }
        }
        let mut first: Option<(f64, f64)> = None;
        for ((t, mut results), cpu) in targets.iter().zip(results).zip(cpu) {
            let served: usize = results.iter().map(|r| r.0.len()).sum();
            let cpu_ms = cpu * 1000.0 / served as f64;
            results.sort_by(|a, b| percentile(&a.0, 0.5).total_cmp(&percentile(&b.0, 0.5)));
            let (latencies, seconds) = results.swap_remove(rounds / 2);
            let p50 = percentile(&latencies, 0.5);
            // Beside the first target's row, each other's ratio to it.
            let versus = match first {
                None => {
                    first = Some((p50, cpu_ms));
                    String::new()
                }
                Some((p50_0, cpu_0)) => format!(
                    " (p50 {:+.0}%, CPU {:+.0}%)",
                    (p50 / p50_0 - 1.0) * 100.0,
                    (cpu_ms / cpu_0 - 1.0) * 100.0
                ),
            };
            rows.push(format!(
                "| {leads} | {activities} | {} | {kind} | {} | {p50:.2} | {:.2} | {:.0} | {cpu_ms:.2}{versus} |",
                t.name,
                latencies.len(),
                percentile(&latencies, 0.99),
                latencies.len() as f64 / seconds
            ));
        }
    }
}

fn print(rows: Vec<String>) {
    println!();
    println!("| leads | activities | database | query | requests | p50 ms | p99 ms | requests/s | server CPU ms/request |");
    println!("|---:|---:|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}
