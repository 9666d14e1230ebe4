//! What the benchmarks share: the release server as a child process, a
//! fresh PostgreSQL database, settings from the environment, percentiles.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(database_url: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_leadql"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("LEADQL_LOG", "warn")
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

    /// Peak resident memory of the server process, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
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
