//! Subscription benchmark, shaped as a sales floor: many WebSocket
//! subscribers in teams, each team subscribed to `dispositionChanged` of
//! its own project with the lead and activity of each change; new leads
//! posted at a steady rate, spread over the teams' projects; for every
//! event each subscriber receives, the time from the webhook's 200 answer
//! for the delivery that caused it to the receipt. Checks that no
//! subscriber received another project's event and counts the receipts
//! against those expected; measures the server's memory per idle
//! connection. Prints a table (SQLite and PostgreSQL).
//!
//!     cargo bench --bench subscribe
//!
//! Environment: LEADQL_BENCH_SUBSCRIBERS (comma-separated, default 1000),
//! LEADQL_BENCH_TEAMS (default 50), LEADQL_BENCH_RATE (new leads per
//! second, default 200), LEADQL_BENCH_SECONDS (default 20),
//! LEADQL_BENCH_BURST (new leads posted at once half-way, 64 at a time;
//! default 0: the p99 of receipts more than 2 s after it says whether a
//! backlog outlived it),
//! LEADQL_BENCH_POSTGRES (admin URL, or "off").

#[path = "support/mod.rs"]
mod support;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{env_or, percentile, postgres_database, Server};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A team's feed: its project's disposition changes, with the lead and
/// activity of each.
const FEED: &str = "subscription($p: String!) { dispositionChanged(filter: { projectId: { eq: $p } }) { disposition activity { id } lead { id projectId } } }";

/// The platform's connected call (an "Interested" lead), as the template
/// of every new lead.
const SEED: &str = include_str!("../fixtures/connected-interested.json");

fn project(team: usize) -> String {
    format!("bench-project-{team:02}")
}

/// New lead `i`, of the project of team `i % teams`.
fn new_lead(i: usize, teams: usize) -> String {
    SEED.replace("6966163xxxxxxxxxxff92", &format!("bench-lead-{i}"))
        .replace("6966179xxxxxxxxxxaf8ef", &format!("bench-lead-{i}-call"))
        .replace("681db2dxxxxxxxxxxxx120", &project(i % teams))
}

/// When each activity's delivery was acknowledged, since the start.
type Acks = Arc<Mutex<HashMap<String, Duration>>>;

/// One subscriber of `team`: what it received (activity, when, whether
/// the lead was of its team's project).
async fn subscriber(
    base: String,
    team: usize,
    start: Instant,
    ready: Arc<tokio::sync::Barrier>,
) -> Vec<(String, Duration, bool)> {
    let url = format!("{}/graphql/ws", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    ws.send(Message::Text(
        json!({"type": "connection_init"}).to_string().into(),
    ))
    .await
    .unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            if t.contains("connection_ack") {
                break;
            }
        }
    }
    let subscribe = json!({"id": "1", "type": "subscribe",
        "payload": {"query": FEED, "variables": {"p": project(team)}}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    ready.wait().await;
    let mut received = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
    {
        if let Message::Text(text) = message {
            let at = start.elapsed();
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "next" {
                let event = &value["payload"]["data"]["dispositionChanged"];
                let activity = event["activity"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let ours = event["lead"]["projectId"] == json!(project(team));
                received.push((activity, at, ours));
            } else if value["type"] == "ping" {
                let _ = ws
                    .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await;
            }
        }
    }
    received
}

async fn run(
    backend: &str,
    url: &str,
    subscribers: usize,
    teams: usize,
    rate: usize,
    seconds: usize,
    burst: usize,
) -> String {
    let server = Server::start(url).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_mib();
    let start = Instant::now();
    let ready = Arc::new(tokio::sync::Barrier::new(subscribers + 1));
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        tasks.push(tokio::spawn(subscriber(
            server.base.clone(),
            i % teams,
            start,
            ready.clone(),
        )));
    }
    ready.wait().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What an open, subscribed, idle connection holds.
    let per_connection_kib = (server.rss_mib() - rss_before) * 1024.0 / subscribers as f64;

    let cpu_before = server.cpu_seconds();
    // New leads at `rate` per second (and, half-way, a burst of `burst`
    // more at once); remember when each was acknowledged.
    let steady = rate * seconds;
    let leads = steady + burst;
    // Each lead's change goes to every subscriber of its team.
    let expected: usize = (0..leads)
        .map(|i| (0..subscribers).filter(|s| s % teams == i % teams).count())
        .sum();
    let acks: Acks = Arc::new(Mutex::new(HashMap::new()));
    let client = reqwest::Client::new();
    let senders = Arc::new(tokio::sync::Semaphore::new(64));
    let post = |i: usize| {
        let (client, acks, base) = (client.clone(), acks.clone(), server.base.clone());
        let senders = senders.clone();
        tokio::spawn(async move {
            let _sender = senders.acquire_owned().await.unwrap();
            let response = client
                .post(format!("{base}/webhooks/activity"))
                .header("content-type", "application/json")
                .body(new_lead(i, teams))
                .send()
                .await
                .expect("post");
            let at = start.elapsed();
            assert!(response.status().is_success());
            acks.lock()
                .unwrap()
                .entry(format!("bench-lead-{i}-call"))
                .or_insert(at);
            at
        })
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut posts = Vec::new();
    let mut bursts = Vec::new();
    let mut burst_started = Duration::ZERO;
    for i in 0..steady {
        tick.tick().await;
        if i == steady / 2 {
            burst_started = start.elapsed();
            bursts.extend((steady..leads).map(post));
        }
        posts.push(post(i));
    }
    for p in posts {
        p.await.unwrap();
    }
    let mut burst_acked = Duration::ZERO;
    for b in bursts {
        burst_acked = burst_acked.max(b.await.unwrap());
    }
    let rss = server.peak_rss_mib();
    let mut latencies = Vec::new();
    // Receipts of leads acknowledged more than 2 s after the burst's last:
    // whether a backlog outlived it.
    let mut after_burst = Vec::new();
    let mut delivered = 0usize;
    let mut misdirected = 0usize;
    let acks = acks.lock().unwrap().clone();
    for t in tasks {
        for (activity, at, ours) in t.await.unwrap() {
            delivered += 1;
            misdirected += usize::from(!ours);
            if let Some(acked) = acks.get(&activity) {
                // An event may reach a subscriber before its sender has
                // read the 200: that counts as no delay.
                let latency = at.saturating_sub(*acked).as_secs_f64() * 1000.0;
                latencies.push(latency);
                if burst > 0 && *acked > burst_acked + Duration::from_secs(2) {
                    after_burst.push(latency);
                }
            }
        }
    }
    // The receipts' wait ends 5 s after the last; not counted as CPU.
    let cpu_seconds = server.cpu_seconds() - cpu_before;
    latencies.sort_by(|a, b| a.total_cmp(b));
    after_burst.sort_by(|a, b| a.total_cmp(b));
    assert_eq!(
        misdirected, 0,
        "events reached subscribers of other projects"
    );
    let burst = if burst > 0 {
        format!(
            "{burst} at once, acknowledged in {:.1} s; p99 {:.1} ms from 2 s after",
            (burst_acked - burst_started).as_secs_f64(),
            percentile(&after_burst, 0.99)
        )
    } else {
        "none".to_string()
    };
    format!(
        "| {backend} | {subscribers} in {teams} teams | {rate} | {burst} | {delivered} of {expected} | {:.1} | {:.1} | {:.1} | {rss:.0} | {per_connection_kib:.0} | {cpu_seconds:.1} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    )
}

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::var("LEADQL_BENCH_SUBSCRIBERS")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let teams = env_or("LEADQL_BENCH_TEAMS", 50).max(1);
    let rate = env_or("LEADQL_BENCH_RATE", 200);
    let burst = env_or("LEADQL_BENCH_BURST", 0);
    let seconds = env_or("LEADQL_BENCH_SECONDS", 20);
    let postgres = std::env::var("LEADQL_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (n, &subscribers) in counts.iter().enumerate() {
        let sqlite = format!("sqlite://{}/sub{n}.db?mode=rwc", dir.path().display());
        rows.push(run("SQLite", &sqlite, subscribers, teams, rate, seconds, burst).await);
        if postgres != "off" {
            if let Some(url) = postgres_database(&postgres, "leadql_bench_subscribe") {
                rows.push(run("PostgreSQL", &url, subscribers, teams, rate, seconds, burst).await);
            }
        }
    }
    println!();
    println!("| database | subscribers | new leads/s | burst | events received | p50 ms | p99 ms | max ms | server peak RSS MiB | idle KiB per connection | server CPU s |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}
