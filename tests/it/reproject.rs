//! `reproject` rebuilds the same projections from the delivery log.

use crate::common::*;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

#[tokio::test]
async fn reproject_rebuilds_identical_projections() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let mut bodies: Vec<String> = leadql::demo::FIXTURES
        .iter()
        .map(|(_, b)| b.to_string())
        .collect();
    bodies.extend(leadql::generate::generate(40, 11));
    for body in &bodies {
        assert_eq!(server.deliver(body.clone()).await.0, 200);
    }
    let before = snapshot(server.db()).await;
    let events_before = count(server.db(), "disposition_events").await;
    let recorded_before = entity::activity_event::Entity::find()
        .all(server.db())
        .await
        .unwrap();
    assert!(before["leads"].len() > 40);
    assert!(
        before["callbacks"].len() > 5,
        "the fixtures and generated calls promise callbacks"
    );
    assert!(recorded_before.len() >= before["activities"].len());

    // Damage the projections, as a buggy version might have.
    server
        .db()
        .execute_unprepared("UPDATE leads SET disposition = 'wrong', state = NULL")
        .await
        .unwrap();
    server
        .db()
        .execute_unprepared("DELETE FROM messages")
        .await
        .unwrap();
    server
        .db()
        .execute_unprepared("UPDATE callbacks SET state = 'open', due_at = NULL")
        .await
        .unwrap();
    assert_ne!(snapshot(server.db()).await, before);

    let summary = leadql::store::reproject(server.db(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        summary.replayed as i64,
        count(server.db(), "deliveries").await
    );
    assert_eq!(summary.unreadable, 0);
    assert_eq!(summary.leads as usize, before["leads"].len());
    assert_same_state(&before, &snapshot(server.db()).await);
    // History is kept, not duplicated.
    assert_eq!(
        count(server.db(), "disposition_events").await,
        events_before
    );
    assert!(
        entity::disposition_event::Entity::find()
            .all(server.db())
            .await
            .unwrap()
            .len() as i64
            == events_before
    );
    // So is the `activityRecorded` log: the same entries, nothing added.
    assert_eq!(
        entity::activity_event::Entity::find()
            .all(server.db())
            .await
            .unwrap(),
        recorded_before
    );
    server.stop().await;
}

/// A migration that adds a column fills it for the rows stored before:
/// `activities.language` from each activity's `variables` JSON.
#[tokio::test]
async fn the_language_migration_fills_stored_activities() {
    use migration::MigratorTrait;
    let db = TestDb::new().await;
    let conn = leadql::store::connect(&db.url).await.unwrap();
    let before_language = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261201_000005_activity_language")
        .unwrap() as u32;
    migration::Migrator::up(&conn, Some(before_language))
        .await
        .unwrap();
    let variables = |language: &str| {
        format!(r#"'{{"variables": {{"inferredLanguage": {language}, "Urgency": "High"}}}}'"#)
    };
    for (id, vars) in [
        ("a-hi", variables("\"hi\"")),
        ("a-number", variables("3")),
        ("a-none", "NULL".to_string()),
    ] {
        conn.execute_unprepared(&format!(
            "INSERT INTO activities (id, lead_id, timestamp, version_hash, has_conversation, variables) \
             VALUES ('{id}', 'L', 1, 'h', false, {vars})"
        ))
        .await
        .unwrap();
    }
    migration::Migrator::up(&conn, None).await.unwrap();
    let mut found: Vec<(String, Option<String>)> = entity::activity::Entity::find()
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.language))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("a-hi".to_string(), Some("hi".to_string())),
            ("a-none".to_string(), None),
            ("a-number".to_string(), None),
        ]
    );
    conn.close().await.unwrap();
}

/// SQLite's activities table is made again with a rowid (migration 15):
/// a database holding activities in the old WITHOUT ROWID table keeps
/// every row and index, and the API answers as before.
#[tokio::test]
#[cfg_attr(
    leadql_test_postgres,
    ignore = "SQLite only (PostgreSQL tables have no WITHOUT ROWID form)"
)]
async fn the_rowid_migration_keeps_every_activity_and_index() {
    use migration::MigratorTrait;
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for body in leadql::generate::generate(30, 5) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    let conn = server.db().clone();
    let schema = |kind: &'static str| {
        let conn = conn.clone();
        async move {
            let rows = conn
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!(
                        "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'activities' \
                         AND type = '{kind}' ORDER BY name"
                    ),
                ))
                .await
                .unwrap();
            rows.iter()
                .map(|r| {
                    let sql: Option<String> = r.try_get("", "sql").unwrap();
                    (r.try_get::<String>("", "name").unwrap(), sql)
                })
                .collect::<Vec<_>>()
        }
    };
    let table = schema("table").await;
    assert!(
        !table[0].1.as_deref().unwrap().ends_with("WITHOUT ROWID"),
        "a new database has the rowid table: {table:?}"
    );
    let indexes = schema("index").await;
    assert!(
        indexes
            .iter()
            .any(|(name, _)| name == "activities_lead_time")
            && indexes.iter().any(|(_, sql)| sql.is_none()),
        "named indexes and the id's own: {indexes:?}"
    );
    // Every column of every activity, as SQL text (read without the
    // entities, which follow the newest schema).
    let rows = || {
        let conn = conn.clone();
        async move {
            let dump = conn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    "SELECT 'SELECT json_group_array(' || group_concat('quote(' || name || ')', \
                     ' || '','' || ') || ') FROM (SELECT * FROM activities ORDER BY id)' AS q \
                     FROM pragma_table_info('activities')",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<String>("", "q")
                .unwrap();
            let all = conn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    dump,
                ))
                .await
                .unwrap()
                .unwrap();
            let text: String = all.try_get_by_index(0).unwrap();
            serde_json::from_str::<Vec<String>>(&text).unwrap()
        }
    };
    let before = snapshot(&conn).await;
    let stored = rows().await;
    assert_eq!(stored.len(), before["activities"].len());
    assert!(stored.len() > 30);
    let query = "{ activities(first: 5, orderBy: [{ field: TIMESTAMP, direction: DESC }]) { totalCount nodes { id timestamp } } }";
    let answer = server.query(query, json!({})).await;

    // Back to the WITHOUT ROWID table of a database from before...
    let migrations = migration::Migrator::migrations();
    let rowid = migrations
        .iter()
        .position(|m| m.name() == "m20261211_000015_sqlite_activities_rowid")
        .unwrap();
    let since = (migrations.len() - rowid) as u32;
    migration::Migrator::down(&conn, Some(since)).await.unwrap();
    let old = schema("table").await;
    assert!(old[0].1.as_deref().unwrap().ends_with("WITHOUT ROWID"));
    let old_indexes = schema("index").await;
    assert_eq!(
        old_indexes.iter().filter(|(_, sql)| sql.is_some()).count(),
        indexes.iter().filter(|(_, sql)| sql.is_some()).count(),
        "{old_indexes:?}"
    );
    assert_eq!(rows().await, stored);

    // ...and forward again, as leadql migrates it at start.
    leadql::store::migrate(&conn).await.unwrap();
    assert_eq!(schema("table").await, table);
    assert_eq!(schema("index").await, indexes);
    assert_same_state(&before, &snapshot(&conn).await);
    assert_eq!(server.query(query, json!({})).await, answer);
    // Ingest writes to the rebuilt table.
    for body in leadql::generate::generate(3, 6) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    assert!(snapshot(&conn).await["activities"].len() > before["activities"].len());
    server.stop().await;
}

/// A database from before the rollup (its table empty beside stored
/// activities) gets it built from the activities when leadql migrates.
#[tokio::test]
async fn migrating_builds_a_missing_rollup_from_the_activities() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for body in leadql::generate::generate(12, 5) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    let before = snapshot(server.db()).await;
    assert!(!before["activity_rollups"].is_empty());
    server
        .db()
        .execute_unprepared("DELETE FROM activity_rollups")
        .await
        .unwrap();
    leadql::store::migrate(server.db()).await.unwrap();
    assert_same_state(&before, &snapshot(server.db()).await);
    // So is the variable rollup, missing alone (the first start after the
    // migration that added it).
    assert!(!before["variable_rollups"].is_empty());
    server
        .db()
        .execute_unprepared("DELETE FROM variable_rollups")
        .await
        .unwrap();
    assert_ne!(snapshot(server.db()).await, before);
    leadql::store::migrate(server.db()).await.unwrap();
    assert_same_state(&before, &snapshot(server.db()).await);
    // Built once: a rollup that exists is left alone.
    server
        .db()
        .execute_unprepared("UPDATE activity_rollups SET activities = activities + 1")
        .await
        .unwrap();
    leadql::store::migrate(server.db()).await.unwrap();
    assert_ne!(snapshot(server.db()).await, before);
    server.stop().await;
}

/// A database whose rollups hold the keys of before their ordered start
/// (a digest alone) has them counted again under the new keys when it
/// migrates, and ingest then adds to those rows instead of beside them.
#[tokio::test]
async fn migrating_rekeys_the_rollups() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for body in leadql::generate::generate(12, 7) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    let before = snapshot(server.db()).await;
    // Keys of another form, and the migration not yet run.
    for table in ["activity_rollups", "lead_rollups", "variable_rollups"] {
        assert!(!before[table].is_empty(), "{table}");
        let sql = format!("UPDATE {table} SET key = 'older' || key");
        server.db().execute_unprepared(&sql).await.unwrap();
    }
    server
        .db()
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = 'm20261214_000021_ordered_rollup_keys'",
        )
        .await
        .unwrap();
    assert_ne!(snapshot(server.db()).await, before);
    leadql::store::migrate(server.db()).await.unwrap();
    assert_same_state(&before, &snapshot(server.db()).await);
    // The rows ingest changes next are the rebuilt ones: what it leaves
    // equals counting everything afresh.
    for body in leadql::generate::generate(12, 8) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    assert_reproject_keeps(server.db()).await;
    server.stop().await;
}

/// A database from before the 32-day periods (hour and day rows only)
/// gets every span built again when leadql migrates, and answers an
/// all-time count from them as the activities do.
#[tokio::test]
async fn migrating_adds_the_long_periods_to_an_older_rollup() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for body in leadql::generate::generate(12, 6) {
        assert_eq!(server.deliver(body).await.0, 200);
    }
    let before = snapshot(server.db()).await;
    let long = leadql::store::rollup::LONG;
    server
        .db()
        .execute_unprepared(&format!("DELETE FROM activity_rollups WHERE span = {long}"))
        .await
        .unwrap();
    assert_ne!(snapshot(server.db()).await, before);
    leadql::store::migrate(server.db()).await.unwrap();
    assert_same_state(&before, &snapshot(server.db()).await);
    let all_time = "{ dispositionCounts { disposition count } }";
    let exact =
        "{ dispositionCounts(filter: { timestamp: { isNull: false } }) { disposition count } }";
    let counted = server.query(all_time, serde_json::json!({})).await;
    assert!(!counted["dispositionCounts"].as_array().unwrap().is_empty());
    assert_eq!(counted, server.query(exact, serde_json::json!({})).await);
    server.stop().await;
}
