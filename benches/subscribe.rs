//! Subscription benchmark: many WebSocket subscribers to
//! `dispositionChanged` on one release server, payloads posted at a steady
//! rate; for every event each subscriber receives, the time from the
//! webhook's 200 answer for the delivery that caused it to the receipt.
//! Prints a table (SQLite and PostgreSQL).
//!
//!     cargo bench --bench subscribe
//!
//! Environment: LEADQL_BENCH_SUBSCRIBERS (default 1000), LEADQL_BENCH_RATE
//! (payloads per second, default 200), LEADQL_BENCH_SECONDS (default 20),
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

const FEED: &str = "subscription { dispositionChanged { cursor activityId leadId disposition previousDisposition occurredAt } }";

/// When each activity's delivery was acknowledged, since the start.
type Acks = Arc<Mutex<HashMap<String, Duration>>>;

async fn subscriber(
    base: String,
    start: Instant,
    ready: Arc<tokio::sync::Barrier>,
) -> Vec<(String, Duration)> {
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
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": FEED}});
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
                let activity = value["payload"]["data"]["dispositionChanged"]["activityId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                received.push((activity, at));
            } else if value["type"] == "ping" {
                let _ = ws
                    .send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await;
            }
        }
    }
    received
}

async fn run(backend: &str, url: &str, subscribers: usize, rate: usize, seconds: usize) -> String {
    let server = Server::start(url).await;
    let start = Instant::now();
    let ready = Arc::new(tokio::sync::Barrier::new(subscribers + 1));
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        tasks.push(tokio::spawn(subscriber(
            server.base.clone(),
            start,
            ready.clone(),
        )));
    }
    ready.wait().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Payloads at `rate` per second; remember when each was acknowledged.
    let payloads = leadql::generate::generate(rate * seconds / 2 + 10, 77);
    let payloads: Vec<String> = payloads.into_iter().take(rate * seconds).collect();
    let acks: Acks = Arc::new(Mutex::new(HashMap::new()));
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut posts = Vec::new();
    for body in payloads {
        tick.tick().await;
        let (client, acks, base) = (client.clone(), acks.clone(), server.base.clone());
        posts.push(tokio::spawn(async move {
            let activity = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["activityId"].as_str().map(str::to_string));
            let response = client
                .post(format!("{base}/webhooks/activity"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let at = start.elapsed();
            assert!(response.status().is_success());
            if let Some(activity) = activity {
                acks.lock().unwrap().entry(activity).or_insert(at);
            }
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    let rss = server.peak_rss_mib();
    let mut latencies = Vec::new();
    let mut delivered = 0usize;
    let acks = acks.lock().unwrap().clone();
    for t in tasks {
        for (activity, at) in t.await.unwrap() {
            delivered += 1;
            if let Some(acked) = acks.get(&activity) {
                // An event may reach a subscriber before its sender has
                // read the 200: that counts as no delay.
                latencies.push(at.saturating_sub(*acked).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    format!(
        "| {backend} | {subscribers} | {rate} | {delivered} | {:.1} | {:.1} | {:.1} | {rss:.0} |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    )
}

#[tokio::main]
async fn main() {
    let subscribers = env_or("LEADQL_BENCH_SUBSCRIBERS", 1000);
    let rate = env_or("LEADQL_BENCH_RATE", 200);
    let seconds = env_or("LEADQL_BENCH_SECONDS", 20);
    let postgres = std::env::var("LEADQL_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let dir = tempfile::tempdir().unwrap();
    let mut rows = vec![
        run(
            "SQLite",
            &format!("sqlite://{}/sub.db?mode=rwc", dir.path().display()),
            subscribers,
            rate,
            seconds,
        )
        .await,
    ];
    if postgres != "off" {
        if let Some(url) = postgres_database(&postgres, "leadql_bench_subscribe") {
            rows.push(run("PostgreSQL", &url, subscribers, rate, seconds).await);
        }
    }
    println!();
    println!("| database | subscribers | payloads/s | events received | p50 ms | p99 ms | max ms | server peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}
