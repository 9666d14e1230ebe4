//! Keys take effect at once, on every instance: a key works the moment
//! `leadql keys create` returns, the first key closes the open API for the
//! very next request (SQLite) or within milliseconds (PostgreSQL, by
//! NOTIFY), and a key `leadql keys revoke` revoked is refused everywhere
//! within a second. Run as a user would: the real binary serving, the real binary
//! making and revoking keys, no pause in between.

use crate::common::*;
use crate::scoped_feeds::{create_key, deliver, new_lead, SECRET};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// `leadql keys ARGS…` with the real binary; its standard output.
fn keys(database_url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadql"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LEADQL_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The status and the lead ids a request sees.
async fn leads(base: &str, key: Option<&str>) -> (u16, BTreeSet<String>) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ leads { nodes { id } } }" }));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let ids = body["data"]["leads"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (status, ids)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Deliveries to `ingest_at`, questions to `ask_at` (the same server, or
/// another instance on the same database).
async fn keys_take_effect_at_once(database_url: &str, ingest_at: &str, ask_at: &str) {
    let postgres = database_url.starts_with("postgres");
    deliver(ingest_at, new_lead("lead-a", Some("A"))).await;
    deliver(ingest_at, new_lead("lead-b", Some("B"))).await;
    // No key yet: the API is open.
    assert_eq!(leads(ask_at, None).await, (200, set(&["lead-a", "lead-b"])));

    // The first key, made with no name, works at once and sees its
    // project only; the API is closed for the next request on SQLite, and
    // within milliseconds (a NOTIFY) on PostgreSQL.
    let scoped = create_key(database_url, &["--project", "A"]);
    assert_eq!(leads(ask_at, Some(&scoped)).await, (200, set(&["lead-a"])));
    if postgres {
        within_a_second(ask_at, None, "the open API").await;
    } else {
        assert_eq!(
            leads(ask_at, None).await.0,
            401,
            "the first key closes the API"
        );
    }

    // A key made while others exist works at once too.
    let full = create_key(database_url, &["--name", "full"]);
    assert_eq!(
        leads(ask_at, Some(&full)).await,
        (200, set(&["lead-a", "lead-b"]))
    );

    // The unnamed key got a name of its own, shown by `keys list`.
    let list = keys(database_url, &["list"]);
    let generated = list
        .lines()
        .find(|l| l.starts_with("key-"))
        .unwrap_or_else(|| panic!("no generated name in {list}"));
    assert!(generated.contains("\tA\tfull\t"), "{generated}");
    let name = generated.split('\t').next().unwrap();

    // `--role analyst`: listed with its role, and reads what it may at once.
    let analyst = create_key(database_url, &["--name", "analyst", "--role", "analyst"]);
    let list = keys(database_url, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("analyst\t") && l.contains("\tall projects\tanalyst\t")),
        "{list}"
    );
    assert_eq!(
        leads(ask_at, Some(&analyst)).await,
        (200, set(&["lead-a", "lead-b"]))
    );

    // Revoked: refused everywhere within a second; the other key is not.
    keys(database_url, &["revoke", name]);
    within_a_second(ask_at, Some(&scoped), "the revoked key").await;
    assert_eq!(leads(ask_at, Some(&full)).await.0, 200);
}

/// Requests with `key` are refused (401) within a second from now.
async fn within_a_second(base: &str, key: Option<&str>, what: &str) {
    let since = Instant::now();
    loop {
        let (status, _) = leads(base, key).await;
        if status == 401 {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{what} still answered {status} after {:?}",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn keys_take_effect_the_moment_the_command_returns() {
    let db = TestDb::new().await;
    let (_server, base) = ServerProcess::start(&db.url, &[("LEADQL_WEBHOOK_SECRET", SECRET)]).await;
    keys_take_effect_at_once(&db.url, &base, &base).await;
}

#[tokio::test]
#[cfg_attr(
    not(leadql_test_postgres),
    ignore = "PostgreSQL only (two instances on one database): set LEADQL_TEST_DATABASE_URL"
)]
async fn keys_take_effect_at_once_on_another_instance() {
    let db = TestDb::new().await;
    assert!(db.postgres().is_some(), "needs LEADQL_TEST_DATABASE_URL");
    let env = [("LEADQL_WEBHOOK_SECRET", SECRET)];
    let (_first, ingest_at) = ServerProcess::start(&db.url, &env).await;
    let (_second, ask_at) = ServerProcess::start(&db.url, &env).await;
    keys_take_effect_at_once(&db.url, &ingest_at, &ask_at).await;
}

/// A burst of requests with keys nobody made (each looked up before it is
/// refused, the lookups shared) is refused, and a real key still works.
#[tokio::test]
async fn unknown_keys_are_refused_in_a_burst() {
    let db = TestDb::new().await;
    let (_server, base) = ServerProcess::start(&db.url, &[("LEADQL_WEBHOOK_SECRET", SECRET)]).await;
    let key = create_key(&db.url, &["--name", "real"]);
    let mut asks = Vec::new();
    for i in 0..64 {
        let base = base.clone();
        asks.push(tokio::spawn(async move {
            leads(&base, Some(&format!("lql_not-a-key-{i}"))).await.0
        }));
    }
    for ask in asks {
        assert_eq!(ask.await.unwrap(), 401);
    }
    assert_eq!(leads(&base, Some(&key)).await.0, 200);
}

/// Reloads run concurrently (the poll, the LISTEN task, requests); one that
/// read the keys before a change and finished after a later reload must
/// not put the older set back. Each round flips a key between revoked and
/// active while other tasks reload without pause, then reloads and checks
/// that the key's state is the one just written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_reload_never_undoes_a_newer_one() {
    use sea_orm::{ConnectionTrait, Statement};
    let db = TestDb::new().await;
    let s = TestServer::start(&db).await;
    let key = leadql::access::create(s.db(), Some("flip"), &[], leadql::access::Role::Full)
        .await
        .unwrap()
        .key;
    let header = format!("Bearer {key}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut busy = Vec::new();
    for _ in 0..8 {
        let keys = s.state.keys.clone();
        let stop = stop.clone();
        busy.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                keys.reload().await.unwrap();
            }
        }));
    }
    let backend = s.db().get_database_backend();
    for round in 0..400 {
        let revoked = round % 2 == 0;
        let value = if revoked { "1" } else { "NULL" };
        let sql = format!("UPDATE api_keys SET revoked_at = {value}");
        s.db()
            .execute_raw(Statement::from_string(backend, sql))
            .await
            .unwrap();
        s.state.keys.reload().await.unwrap();
        assert_eq!(
            s.state.keys.authenticate(Some(&header)).is_err(),
            revoked,
            "round {round}: the key's state is not the one just written"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in busy {
        task.await.unwrap();
    }
    s.stop().await;
}
