//! Retention: `prune` removes old raw bodies and old rejected deliveries;
//! every projection stays, repeats stay duplicates, and `reproject` keeps
//! the leads it can no longer rebuild.

use crate::common::*;
use entity::delivery;
use leadql::store::{prune, Retention};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

fn lead_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["leadId"].as_str().unwrap().to_string()
}

/// Pages of a SQLite database holding data (not on its free list).
async fn sqlite_pages_in_use(db: &sea_orm::DatabaseConnection) -> i64 {
    let mut pages = 0;
    for (pragma, sign) in [("page_count", 1), ("freelist_count", -1)] {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!("SELECT * FROM pragma_{pragma}()"),
            ))
            .await
            .unwrap()
            .unwrap();
        pages += sign * row.try_get_by_index::<i64>(0).unwrap();
    }
    pages
}

#[tokio::test]
async fn pruned_bodies_keep_projections_duplicates_and_the_leads_reproject_cannot_rebuild() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let old = leadql::generate::generate(15, 21);
    let new = leadql::generate::generate(10, 22);
    let old_leads: BTreeSet<String> = old.iter().map(|b| lead_of(b)).collect();
    let new_leads: BTreeSet<String> = new.iter().map(|b| lead_of(b)).collect();
    assert!(
        old_leads.is_disjoint(&new_leads),
        "two seeds, two sets of leads"
    );
    for body in &old {
        assert_eq!(server.deliver(body.clone()).await.0, 200);
    }
    assert_eq!(server.deliver("{not json").await.0, 400);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = leadql::store::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for body in &new {
        assert_eq!(server.deliver(body.clone()).await.0, 200);
    }
    assert_eq!(server.deliver("[1, 2").await.0, 400);
    let before = snapshot(server.db()).await;
    let log = || {
        delivery::Entity::find()
            .order_by_asc(delivery::Column::Id)
            .all(server.db())
    };
    let logged = log().await.unwrap();
    let old_rows: Vec<&delivery::Model> =
        logged.iter().filter(|d| d.received_at < cutoff).collect();
    assert!(old_rows.len() >= old_leads.len() && old_rows.len() < logged.len());
    let old_bytes: usize = old_rows.iter().map(|d| d.body.len()).sum();

    // Everything received before the cutoff: judged "now" at the cutoff,
    // with an age of zero.
    let retention = Retention {
        deliveries: Some(Duration::ZERO),
        rejected: Some(Duration::ZERO),
    };
    let sqlite = server.db().get_database_backend() == sea_orm::DbBackend::Sqlite;
    let used_before = if sqlite {
        sqlite_pages_in_use(server.db()).await
    } else {
        0
    };
    let summary = prune(server.db(), retention, cutoff, 0).await.unwrap();
    if sqlite {
        // The log's pages are given back for new rows, not left holding
        // emptied rows.
        let freed = used_before - sqlite_pages_in_use(server.db()).await;
        assert!(
            freed as usize * 4096 > old_bytes / 2,
            "{freed} pages freed for {old_bytes} bytes of bodies"
        );
    }
    assert_eq!(summary.deliveries as usize, old_rows.len());
    assert_eq!(summary.bytes as usize, old_bytes);
    assert_eq!(summary.rejected, 1, "the old rejection only");
    assert_eq!(count(server.db(), "rejected_deliveries").await, 1);
    let after = log().await.unwrap();
    assert_eq!(after.len(), logged.len(), "rows stay; bodies go");
    for (was, is) in logged.iter().zip(&after) {
        assert_eq!((was.id, &was.body_hash), (is.id, &is.body_hash));
        if was.received_at < cutoff {
            assert_eq!(is.body, "");
            assert_eq!(is.pruned_at, Some(cutoff));
        } else {
            assert_eq!(is.body, was.body);
            assert_eq!(is.pruned_at, None);
        }
    }
    assert_same_state(&before, &snapshot(server.db()).await);
    // A second pass finds nothing more.
    assert_eq!(
        prune(server.db(), retention, cutoff, 0).await.unwrap(),
        leadql::store::PruneSummary {
            walked_to: summary.walked_to,
            ..Default::default()
        }
    );

    // A repeat of a pruned body is still recognised.
    let (status, answer) = server.deliver(old[0].clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );
    // The API still answers from the projections.
    let lead = old_leads.iter().next().unwrap();
    let data = server
        .query(
            "query($id: ID!) { lead(id: $id) { id activities(first: 10) { totalCount } } }",
            json!({ "id": lead }),
        )
        .await;
    assert_eq!(data["lead"]["id"], json!(lead));
    assert!(data["lead"]["activities"]["totalCount"].as_i64().unwrap() > 0);

    // Damage every lead; reproject rebuilds the new ones and keeps the old.
    server
        .db()
        .execute_unprepared("UPDATE leads SET disposition = 'wrong'")
        .await
        .unwrap();
    let summary = leadql::store::reproject(server.db(), &Default::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.pruned as usize, old_rows.len());
    assert_eq!(summary.kept_leads as usize, old_leads.len());
    assert_eq!(summary.replayed as usize, logged.len() - old_rows.len());
    assert_eq!(summary.leads as usize, old_leads.len() + new_leads.len());
    let leads = entity::lead::Entity::find().all(server.db()).await.unwrap();
    for lead in &leads {
        let rebuilt = lead.disposition.as_deref() != Some("wrong");
        assert_eq!(rebuilt, new_leads.contains(&lead.id), "lead {}", lead.id);
    }
    // Apart from the damage left on the kept leads, the state is as before.
    server
        .db()
        .execute_unprepared("UPDATE leads SET disposition = NULL WHERE disposition = 'wrong'")
        .await
        .unwrap();
    let mut expected = before.clone();
    let mut restored = snapshot(server.db()).await;
    for state in [&mut expected, &mut restored] {
        // The kept leads' damage is counted there as it is in the leads.
        state.remove("lead_rollups");
        let leads = state.get_mut("leads").unwrap();
        *leads = leads
            .iter()
            .map(|row| {
                let mut v: Value = serde_json::from_str(row).unwrap();
                if old_leads.contains(v["id"].as_str().unwrap()) {
                    v["disposition"] = Value::Null;
                }
                v.to_string()
            })
            .collect();
        leads.sort();
    }
    assert_same_state(&expected, &restored);
    assert!(
        entity::activity::Entity::find()
            .filter(entity::activity::Column::LeadId.is_in(old_leads.iter().cloned()))
            .all(server.db())
            .await
            .unwrap()
            .len()
            >= old_leads.len(),
        "the kept leads' activities are still there"
    );
    server.stop().await;
}

/// `serve --prune-deliveries-older-than` prunes in the background.
#[tokio::test]
async fn serve_prunes_old_bodies_by_itself() {
    let db = TestDb::new().await;
    let server = TestServer::start_with(leadql::config::Config {
        prune_deliveries_older_than: Some(Duration::from_millis(1)),
        prune_every: Duration::from_millis(50),
        ..leadql::config::Config::for_database(&db.url)
    })
    .await;
    let body = leadql::demo::FIXTURES[0].1.to_string();
    assert_eq!(server.deliver(body.clone()).await.0, 200);
    let mut pruned = false;
    for _ in 0..100 {
        let row = delivery::Entity::find().one(server.db()).await.unwrap();
        if row.as_ref().is_some_and(|d| d.pruned_at.is_some()) {
            assert_eq!(row.unwrap().body, "");
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pruned, "the body was not pruned within five seconds");
    let (status, answer) = server.deliver(body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(count(server.db(), "leads").await, 1);
    server.stop().await;
}

/// The command line: `leadql prune` says what it removed, `reproject` what
/// it kept, and a mistyped age is refused with the reason.
#[tokio::test]
async fn the_prune_command_reports_and_reproject_says_what_it_kept() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for (_, body) in leadql::demo::FIXTURES {
        assert_eq!(server.deliver(body.to_string()).await.0, 200);
    }
    let leads = count(server.db(), "leads").await;
    let pruned = count(server.db(), "deliveries").await;
    server.stop().await;
    let leadql = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadql"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("LEADQL_LOG", "error")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = leadql(&["prune", "--deliveries-older-than", "1d"]);
    assert!(ok, "{text}");
    assert!(text.contains("pruned the bodies of 0 deliveries"), "{text}");
    let (ok, text) = leadql(&["prune", "--deliveries-older-than", "0s"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("pruned the bodies of {pruned} deliveries")),
        "{text}"
    );
    let (ok, text) = leadql(&["reproject"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("kept {leads} leads as they were")),
        "{text}"
    );
    let (ok, text) = leadql(&["prune", "--deliveries-older-than", "ninety days"]);
    assert!(!ok);
    assert!(text.contains("write an age such as 90d"), "{text}");
    let (ok, text) = leadql(&["prune"]);
    assert!(!ok);
    assert!(text.contains("--deliveries-older-than"), "{text}");
}
