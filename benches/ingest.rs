//! Ingest benchmark: the release server on a fresh database, generated
//! payloads delivered over HTTP by concurrent senders on the same machine,
//! then `leadql import` of a generated file. Prints a table.
//!
//!     cargo bench --bench ingest
//!
//! Each run is repeated LEADQL_BENCH_RUNS times (default 3) on a fresh
//! database, and the run with the median throughput is printed, with the
//! CPU the server spent per payload, on PostgreSQL the CPU its backends for
//! the run's database spent (a server on this machine), and the share of
//! the machine's CPU left idle.
//!
//! Environment: LEADQL_BENCH_PAYLOADS (default 30000), LEADQL_BENCH_SENDERS
//! (default 32), LEADQL_BENCH_IMPORT (payloads for the import run, default
//! 100000; 0 skips the import runs), LEADQL_BENCH_POSTGRES (admin URL,
//! default postgres://postgres@127.0.0.1:5432/postgres; "off" to skip),
//! LEADQL_BENCH_TRACES (`off`, `on`: OpenTelemetry traces exported to a
//! receiver in the benchmark, or `both`: each HTTP run with and without).
//! LEADQL_BENCH_BIN runs another build's `leadql` instead of this one's.
//! Senders send a delivery refused with 503 and `Retry-After` again after
//! it (overload: `LEADQL_BENCH_SENDERS=256`); p50/p99 are those of the
//! accepted tries.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use support::{env_or, postgres_database, trace_variants, Server};

struct Row {
    name: String,
    payloads: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
    note: String,
}

async fn http_run(
    name: &str,
    database_url: &str,
    payloads: &Arc<Vec<String>>,
    senders: usize,
    env: &[(String, String)],
) -> Row {
    let server = Server::start_with(database_url, env).await;
    let cpu_before = server.cpu_seconds();
    let backends_before = support::database_backends_cpu(database_url);
    let machine_before = support::machine_ticks();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(senders)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/webhooks/activity", server.base);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (client, next, url, payloads) =
            (client.clone(), next.clone(), url.clone(), payloads.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refusals = Vec::new();
            let mut acknowledged = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = payloads.get(i) else { break };
                // As a platform would: a 503 is sent again after its
                // Retry-After; the latency counted is the accepted try's.
                loop {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("send");
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    let _ = response.bytes().await;
                    let took = sent.elapsed().as_secs_f64() * 1000.0;
                    if status == 503 {
                        if let Some(seconds) = retry_after {
                            refusals.push(took);
                            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                            continue;
                        }
                    }
                    latencies.push(took);
                    if status.is_success() {
                        acknowledged += 1;
                    }
                    break;
                }
            }
            (latencies, refusals, acknowledged)
        }));
    }
    let mut latencies = Vec::new();
    let mut refusals = Vec::new();
    let mut acknowledged = 0;
    for task in tasks {
        let (l, r, a) = task.await.unwrap();
        latencies.extend(l);
        refusals.extend(r);
        acknowledged += a;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let rss = server.peak_rss_mib();
    let cpu_ms = (server.cpu_seconds() - cpu_before) * 1000.0 / payloads.len() as f64;
    // PostgreSQL's share: its backends' CPU over the run (a backend opened
    // during the run counts from its start), read before the server stops
    // and closes them. SQLite runs inside the server, counted above.
    let database = support::database_backends_cpu(database_url)
        .into_iter()
        .map(|(pid, cpu)| cpu - backends_before.get(&pid).copied().unwrap_or(0.0))
        .sum::<f64>();
    let database = if database > 0.0 {
        format!(
            ", PostgreSQL CPU {:.3} ms/payload",
            database * 1000.0 / payloads.len() as f64
        )
    } else {
        String::new()
    };
    let machine_after = support::machine_ticks();
    let idle = 1.0 - (machine_after.0 - machine_before.0) / (machine_after.1 - machine_before.1);
    drop(server);
    Row {
        name: name.to_string(),
        payloads: payloads.len(),
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        rss_mib: rss,
        note: format!(
            "{acknowledged} acknowledged, {senders} senders, server CPU {cpu_ms:.3} ms/payload{database}, machine idle {:.0}%{}",
            idle * 100.0,
            refused(&mut refusals)
        ),
    }
}

/// How many tries were refused (503 with Retry-After, sent again after
/// it) and how soon the refusals came, when there were any.
fn refused(refusals: &mut [f64]) -> String {
    if refusals.is_empty() {
        return String::new();
    }
    refusals.sort_by(|a, b| a.total_cmp(b));
    let p99 = refusals[((refusals.len() as f64 * 0.99) as usize).min(refusals.len() - 1)];
    format!(
        "; {} tries refused with 503 (answered in p99 {p99:.1} ms) and sent again",
        refusals.len()
    )
}

fn import_run(name: &str, database_url: &str, file: &std::path::Path, payloads: usize) -> Row {
    let started = Instant::now();
    let output = Command::new(support::leadql_binary())
        .arg("import")
        .arg(file)
        .env("DATABASE_URL", database_url)
        .env("LEADQL_LOG", "warn")
        .output()
        .expect("run leadql import");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Row {
        name: name.to_string(),
        payloads,
        seconds,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        rss_mib: f64::NAN,
        note: String::from_utf8_lossy(&output.stdout).trim().to_string(),
    }
}

/// The run with the median throughput of `runs` repetitions.
fn median(mut rows: Vec<Row>) -> Row {
    rows.sort_by(|a, b| {
        (a.payloads as f64 / a.seconds).total_cmp(&(b.payloads as f64 / b.seconds))
    });
    let runs = rows.len();
    let mut row = rows.swap_remove(runs / 2);
    row.note = format!("median of {runs}; {}", row.note);
    row
}

#[tokio::main]
async fn main() {
    let count = env_or("LEADQL_BENCH_PAYLOADS", 30_000);
    let senders = env_or("LEADQL_BENCH_SENDERS", 32);
    let import_count = env_or("LEADQL_BENCH_IMPORT", 100_000);
    let postgres = std::env::var("LEADQL_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let dir = tempfile::tempdir().unwrap();

    // About 2.2 payloads per lead; generate enough leads for `count`.
    let mut payloads = leadql::generate::generate(count / 2 + 10, 2026);
    payloads.truncate(count);
    let payloads = Arc::new(payloads);
    let bytes: usize = payloads.iter().map(String::len).sum();
    eprintln!(
        "{} payloads, {:.1} KiB on average",
        payloads.len(),
        bytes as f64 / payloads.len() as f64 / 1024.0
    );

    let runs = env_or("LEADQL_BENCH_RUNS", 3).max(1);
    let mut rows = Vec::new();
    // With LEADQL_BENCH_TRACES=both, the runs with and without traces
    // alternate, so both see the same noise.
    let variants = trace_variants().await;
    let mut sqlite_runs: Vec<Vec<Row>> = variants.iter().map(|_| Vec::new()).collect();
    for run in 0..runs {
        for (v, (label, env, _)) in variants.iter().enumerate() {
            let sqlite = format!(
                "sqlite://{}/http{run}-{v}.db?mode=rwc",
                dir.path().display()
            );
            let name = format!("HTTP, SQLite{label}");
            sqlite_runs[v].push(http_run(&name, &sqlite, &payloads, senders, env).await);
        }
    }
    rows.extend(sqlite_runs.into_iter().map(median));
    if postgres != "off" {
        let mut pg_runs: Vec<Vec<Row>> = variants.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (v, (label, env, _)) in variants.iter().enumerate() {
                match postgres_database(&postgres, "leadql_bench_http") {
                    Some(url) => {
                        let name = format!("HTTP, PostgreSQL{label}");
                        pg_runs[v].push(http_run(&name, &url, &payloads, senders, env).await)
                    }
                    None => eprintln!("PostgreSQL not reachable at {postgres}: skipped"),
                }
            }
        }
        rows.extend(pg_runs.into_iter().filter(|r| !r.is_empty()).map(median));
    }
    for (label, _, sink) in &variants {
        if let Some(sink) = sink {
            eprintln!("traces{label}: {} KiB exported", sink.received() / 1024);
        }
    }
    if import_count == 0 {
        print(rows);
        return;
    }

    let mut import_payloads = leadql::generate::generate(import_count / 2 + 10, 7);
    import_payloads.truncate(import_count);
    let file = dir.path().join("import.ndjson");
    std::fs::write(&file, import_payloads.join("\n")).unwrap();
    let mut sqlite_runs = Vec::new();
    for run in 0..runs {
        let sqlite = format!("sqlite://{}/import{run}.db?mode=rwc", dir.path().display());
        sqlite_runs.push(import_run(
            "import, SQLite",
            &sqlite,
            &file,
            import_payloads.len(),
        ));
    }
    rows.push(median(sqlite_runs));
    if postgres != "off" {
        let mut pg_runs = Vec::new();
        for _ in 0..runs {
            if let Some(url) = postgres_database(&postgres, "leadql_bench_import") {
                pg_runs.push(import_run(
                    "import, PostgreSQL",
                    &url,
                    &file,
                    import_payloads.len(),
                ));
            }
        }
        if !pg_runs.is_empty() {
            rows.push(median(pg_runs));
        }
    }
    print(rows);
}

fn print(rows: Vec<Row>) {
    println!();
    println!("| run | payloads | seconds | payloads/s | p50 ms | p99 ms | peak RSS MiB | notes |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {} |",
            r.name,
            r.payloads,
            r.seconds,
            r.payloads as f64 / r.seconds,
            r.p50_ms,
            r.p99_ms,
            r.rss_mib,
            r.note
        );
    }
}
