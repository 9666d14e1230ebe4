//! `leadql import` and HTTP delivery of the same file give identical tables.

use crate::common::*;
use std::process::Command;

#[tokio::test]
async fn import_and_http_give_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payloads.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_leadql"))
        .args(["generate", "--leads", "60", "--seed", "5", "--output"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let mut text = std::fs::read_to_string(&file).unwrap();
    // A malformed line and one without identity: rejected either way.
    text.push_str("{\"activityId\": \"broken\n{\"leadId\": \"x\", \"timestamp\": 1}\n");
    std::fs::write(&file, &text).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let imported_db = TestDb::new().await;
    let output = Command::new(env!("CARGO_BIN_EXE_leadql"))
        .arg("import")
        .arg(&file)
        .env("DATABASE_URL", &imported_db.url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8(output.stdout).unwrap();

    let http_db = TestDb::new().await;
    let server = TestServer::start(&http_db).await;
    let (mut stored, mut duplicate, mut stale, mut rejected) = (0, 0, 0, 0);
    for line in &lines {
        let (status, answer) = server.deliver(line.to_string()).await;
        match (status, answer["status"].as_str()) {
            (200, Some("stored")) => stored += 1,
            (200, Some("duplicate")) => duplicate += 1,
            (200, Some("stale")) => stale += 1,
            (400 | 422, _) => rejected += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(rejected, 2);
    assert!(duplicate > 0, "the generator repeats some deliveries");
    // Import runs deliveries concurrently, so which version of an activity
    // arrives first (stored or stale) may differ; the totals may not.
    let (i_stored, i_duplicate, i_stale, i_rejected) = parse_summary(&summary);
    assert_eq!(i_stored + i_stale, stored + stale, "{summary}");
    assert_eq!(
        (i_duplicate, i_rejected),
        (duplicate, rejected),
        "{summary}"
    );

    let imported = leadql::store::connect(&imported_db.url).await.unwrap();
    assert_same_state(&snapshot(&imported).await, &snapshot(server.db()).await);
    for table in ["deliveries", "rejected_deliveries"] {
        assert_eq!(
            count(&imported, table).await,
            count(server.db(), table).await,
            "{table}"
        );
    }
    imported.close().await.unwrap();
    server.stop().await;
}

/// "stored N, duplicate N, stale N, rejected N"
fn parse_summary(text: &str) -> (u64, u64, u64, u64) {
    let numbers: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4, "summary: {text}");
    (numbers[0], numbers[1], numbers[2], numbers[3])
}
