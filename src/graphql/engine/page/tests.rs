//! Keyset pages against a sort in memory.

use super::super::order::OrderDirection;
use super::super::resource::Resource;
use super::*;
use crate::graphql::resources::lead::{lead_key, Lead, LeadOrderBy, LeadOrderField};
use entity::lead;
use sea_orm::{ActiveModelTrait, IntoActiveModel, Schema};

/// Leads with NULLs in the nullable sort columns, and ties.
async fn leads() -> (sea_orm::DatabaseConnection, Vec<lead::Model>) {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let backend = db.get_database_backend();
    let table = Schema::new(backend).create_table_from_entity(lead::Entity);
    db.execute_raw(backend.build(&table)).await.unwrap();
    let mut all = Vec::new();
    for i in 0..41 {
        let m = lead::Model {
            id: format!("L{i:02}"),
            reference_id: None,
            project_id: None,
            process_id: None,
            name: (i % 4 != 0).then(|| format!("n{}", i % 7)),
            state: None,
            disposition: None,
            disposition_type: None,
            summary: None,
            last_activity_id: None,
            last_activity_at: (i % 5 != 0).then_some((i % 9) as i64),
            first_activity_at: None,
            activity_count: i % 3,
        };
        m.clone().into_active_model().insert(&db).await.unwrap();
        all.push(m);
    }
    (db, all)
}

fn ids(page: &Page<Lead>) -> Vec<String> {
    page.rows
        .iter()
        .map(|(_, m)| m.id.get().unwrap().to_string())
        .collect()
}

/// Paging forward and backward by every page size gives the order
/// a sort in memory gives (NULL smallest, ties by id), whichever
/// segments the cursors fall in.
#[tokio::test]
async fn segments_page_like_a_sort_in_memory() {
    let (db, all) = leads().await;
    let null_first = |v: &Option<i64>| v.map_or((0, 0), |v| (1, v));
    for (field, desc) in [
        (LeadOrderField::LastActivityAt, true),
        (LeadOrderField::LastActivityAt, false),
        (LeadOrderField::Name, true),
        (LeadOrderField::Name, false),
        (LeadOrderField::ActivityCount, true),
    ] {
        let direction = if desc {
            OrderDirection::Desc
        } else {
            OrderDirection::Asc
        };
        let key = lead_key(Some(&[LeadOrderBy { field, direction }]));
        let mut expected = all.clone();
        expected.sort_by(|a, b| {
            let by = match field {
                LeadOrderField::LastActivityAt => {
                    null_first(&a.last_activity_at).cmp(&null_first(&b.last_activity_at))
                }
                LeadOrderField::Name => a.name.cmp(&b.name),
                _ => a.activity_count.cmp(&b.activity_count),
            };
            let by = by.then_with(|| a.id.cmp(&b.id));
            if desc {
                by.reverse()
            } else {
                by
            }
        });
        let expected: Vec<String> = expected.into_iter().map(|m| m.id).collect();
        for size in 1..=7 {
            let mut forward = Vec::new();
            let mut after = None;
            loop {
                let args = PageArgs {
                    first: Some(size),
                    after: after.clone(),
                    ..Default::default()
                };
                let window = args.window(&key).unwrap();
                let p = page::<Lead, _>(
                    &db,
                    lead::Entity::find(),
                    &key,
                    &window,
                    &Reads::columns(Lead::key_columns()),
                )
                .await
                .unwrap();
                forward.extend(ids(&p));
                if !p.info.has_next_page {
                    break;
                }
                after = p.info.end_cursor.clone();
            }
            assert_eq!(forward, expected, "{field:?} desc={desc} first={size}");
            let mut backward = Vec::new();
            let mut before = None;
            loop {
                let args = PageArgs {
                    last: Some(size),
                    before: before.clone(),
                    ..Default::default()
                };
                let window = args.window(&key).unwrap();
                let p = page::<Lead, _>(
                    &db,
                    lead::Entity::find(),
                    &key,
                    &window,
                    &Reads::columns(Lead::key_columns()),
                )
                .await
                .unwrap();
                let mut ids = ids(&p);
                ids.extend(backward);
                backward = ids;
                if !p.info.has_previous_page {
                    break;
                }
                before = p.info.start_cursor.clone();
            }
            assert_eq!(backward, expected, "{field:?} desc={desc} last={size}");
        }
    }
}
