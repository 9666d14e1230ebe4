//! What the benchmarks share: the release server as a child process, a
//! fresh PostgreSQL database, settings from the environment, percentiles.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The leadql binary the benchmarks run: this build's, or the one
/// `LEADQL_BENCH_BIN` names (to compare another build against this one
/// with the same load generator, run by run).
pub fn leadql_binary() -> std::path::PathBuf {
    std::env::var_os("LEADQL_BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_leadql").into())
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[]).await
    }

    /// Start it with `env` added (e.g. the OTLP endpoint of [`TraceSink`]).
    pub async fn start_with(database_url: &str, env: &[(String, String)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(leadql_binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("LEADQL_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .expect("start leadql");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                return Server { child, base };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("leadql did not start");
    }

    /// CPU time the server process has used so far (user + system), in
    /// seconds.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.child.id())
    }

    /// Resident memory of the server process now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.status_mib("VmRSS:")
    }

    /// Peak resident memory of the server process, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_mib("VmHWM:")
    }

    fn status_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn postgres_database(admin: &str, name: &str) -> Option<String> {
    let run = |sql: &str| {
        Command::new("psql")
            .args([admin, "-qAtc", sql])
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    run(&format!("DROP DATABASE IF EXISTS {name}"))?;
    run(&format!("CREATE DATABASE {name}"))?;
    // The same server and parameters (e.g. `?sslmode=disable`), database `name`.
    let (url, params) = admin.split_once('?').unwrap_or((admin, ""));
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    let params = if params.is_empty() {
        String::new()
    } else {
        format!("?{params}")
    };
    Some(format!("{base}/{name}{params}"))
}

/// The `p` quantile (0..1) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// An OTLP/HTTP receiver that accepts every trace export and counts its
/// bytes: what a collector costs the server, without a collector.
pub struct TraceSink {
    pub endpoint: String,
    pub bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl TraceSink {
    pub async fn start() -> TraceSink {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                counted.fetch_add(body.len() as u64, Ordering::Relaxed);
                async {}
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TraceSink { endpoint, bytes }
    }

    /// Bytes of traces received so far.
    pub fn received(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `LEADQL_BENCH_TRACES`: `off` (default) measures without traces, `on`
/// with traces exported to a [`TraceSink`], `both` each configuration
/// both ways in the same run. The variants: a label suffix and the
/// server's extra environment.
pub async fn trace_variants() -> Vec<(&'static str, Vec<(String, String)>, Option<Arc<TraceSink>>)>
{
    let setting = std::env::var("LEADQL_BENCH_TRACES").unwrap_or_else(|_| "off".into());
    let on = || async {
        let sink = Arc::new(TraceSink::start().await);
        let env = vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            sink.endpoint.clone(),
        )];
        (", traces on", env, Some(sink))
    };
    match setting.as_str() {
        "off" => vec![("", Vec::new(), None)],
        "on" => vec![on().await],
        "both" => vec![("", Vec::new(), None), on().await],
        other => panic!("LEADQL_BENCH_TRACES={other}: expected off, on or both"),
    }
}

/// CPU time (user and system) process `pid` has used so far, in seconds;
/// NaN when it cannot be read (the process is gone).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: fields 3.. ; utime and
    // stime are fields 14 and 15, in clock ticks (100 per second).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The machine's CPU time so far, busy and in all, in clock ticks summed
/// over its cores (`/proc/stat`): the share idle between two readings.
pub fn machine_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: f64 = values.iter().sum();
    let idle = values.get(3).unwrap_or(&0.0) + values.get(4).unwrap_or(&0.0);
    (all - idle, all)
}

/// CPU seconds used so far by each PostgreSQL backend connected to the
/// database at `url` (other than the one asking), by process id: read from
/// `/proc`, so only for a server on this machine; empty for SQLite or when
/// `psql` cannot ask.
pub fn database_backends_cpu(url: &str) -> std::collections::HashMap<u32, f64> {
    if !url.starts_with("postgres") {
        return Default::default();
    }
    let output = Command::new("psql")
        .args([
            url,
            "-qAtc",
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ])
        .output();
    let Ok(output) = output else {
        return Default::default();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|pid| pid.trim().parse().ok())
        .map(|pid| (pid, process_cpu_seconds(pid)))
        .filter(|(_, cpu)| cpu.is_finite())
        .collect()
}
