//! `leadql import` and HTTP delivery of the same file give identical tables.

use crate::common::*;
use std::process::Command;

#[tokio::test]
async fn import_and_http_give_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated(&dir, 60, 5);
    let mut text = std::fs::read_to_string(&file).unwrap();
    // A malformed line and one without identity: rejected either way.
    text.push_str("{\"activityId\": \"broken\n{\"leadId\": \"x\", \"timestamp\": 1}\n");
    std::fs::write(&file, &text).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let imported_db = TestDb::new().await;
    let summary = import(&[], &file, &imported_db.url);

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

    // Batch boundaries change nothing: the same file in batches of five
    // (instead of one batch of the whole file) gives the same tables.
    let small_db = TestDb::new().await;
    let (s_stored, s_duplicate, s_stale, s_rejected) =
        parse_summary(&import(&["--ingest-batch", "5"], &file, &small_db.url));
    assert_eq!(s_stored + s_stale, stored + stale);
    assert_eq!((s_duplicate, s_rejected), (duplicate, rejected));
    let small = leadql::store::connect(&small_db.url).await.unwrap();
    assert_same_state(&snapshot(&small).await, &snapshot(server.db()).await);
    small.close().await.unwrap();
    server.stop().await;
}

/// `leadql generate --leads <leads> --seed <seed>` written into `dir`.
fn generated(dir: &tempfile::TempDir, leads: u32, seed: u32) -> std::path::PathBuf {
    let file = dir.path().join("payloads.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_leadql"))
        .args([
            "generate",
            "--leads",
            &leads.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--output")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    file
}

/// `leadql import <options> <file>` into `database_url`; its summary line.
fn import(options: &[&str], file: &std::path::Path, database_url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_leadql"))
        .arg("import")
        .args(options)
        .arg(file)
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
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

/// With autovacuum off (here for the activities table, whatever the
/// server's setting), ingest analyzes the database itself as it grows:
/// a batch's key lookups would otherwise be planned as whole-table scans.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite plans key lookups without statistics)"
)]
async fn ingest_analyzes_the_tables_when_autovacuum_is_off() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let conn = &server.state.db;
    conn.execute_unprepared("ALTER TABLE activities SET (autovacuum_enabled = false)")
        .await
        .unwrap();
    let analyzed = || async {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'activities'::regclass",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<f64>("", "n").unwrap()
    };
    // Never analyzed: PostgreSQL knows no row count.
    assert_eq!(analyzed().await, -1.0);
    let stored = leadql::demo::load(&server.state, 500).await.unwrap();
    assert!(
        stored > 1_000,
        "{stored} deliveries: past the first threshold"
    );
    // The writer analyzes after answering the batch that crossed the
    // threshold, so the load may return first.
    let mut rows = analyzed().await;
    for _ in 0..100 {
        if rows >= 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        rows = analyzed().await;
    }
    assert!(rows > 500.0, "activities analyzed: reltuples {rows}");
}

/// After `leadql import`, PostgreSQL's rollups are in the order their
/// counts read them (clustered on those indexes), and count as before.
#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (SQLite's counts read covering indexes, not the rollup rows)"
)]
async fn import_leaves_the_rollups_in_count_order() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let file = generated(&dir, 40, 9);
    let db = TestDb::new().await;
    import(&[], &file, &db.url);
    let conn = leadql::store::connect(&db.url).await.unwrap();
    for (table, index) in leadql::store::rollup::CLUSTERED {
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT i.indisclustered AS c, (SELECT count(*) FROM {table}) AS n \
                     FROM pg_index i WHERE i.indexrelid = '{index}'::regclass"
                ),
            ))
            .await
            .unwrap()
            .expect("the index exists");
        assert!(
            row.try_get::<bool>("", "c").unwrap(),
            "{table} clustered on {index}"
        );
        assert!(row.try_get::<i64>("", "n").unwrap() > 0, "{table} has rows");
    }
    // Rewritten, and still what counting afresh gives.
    assert_reproject_keeps(&conn).await;
    conn.close().await.unwrap();
}
