//! `reproject` rebuilds the same projections from the delivery log.

use crate::common::*;
use sea_orm::{ConnectionTrait, EntityTrait};

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
    let exact = "{ dispositionCounts(filter: { and: [{}] }) { disposition count } }";
    let counted = server.query(all_time, serde_json::json!({})).await;
    assert!(!counted["dispositionCounts"].as_array().unwrap().is_empty());
    assert_eq!(counted, server.query(exact, serde_json::json!({})).await);
    server.stop().await;
}
