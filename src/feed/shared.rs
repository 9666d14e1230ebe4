//! The rows a published event's subscribers ask for, read once for all of
//! them.
//!
//! Every subscriber to a feed resolves its own selection, but the rows it
//! resolves it from are the same for all: the event's lead and activity
//! (`dispositionChanged { lead activity }`), a batch's activities and their
//! leads (`activityRecorded { … lead }`), a due callback's lead and call
//! (`callbackDue { lead activity }`). [`Shared`] reads them with one
//! statement per kind for a whole page of events (or a committed batch),
//! when the first subscriber asks, and hands the same rows to the others,
//! so an event costs the same statements with one subscriber or a
//! thousand. The rows are read unscoped: each subscriber decides what it
//! may see by the lead's project ([`crate::store::read::Reader::sees_project`]),
//! as `Scoped::visible` does in SQL.
//!
//! The feed's buffer keeps the last few thousand events (and so their
//! [`Shared`]) until newer ones overwrite them; the rows read for them are
//! let go a few seconds after publication ([`Shared::release`]), and read
//! again should a late subscriber still ask.

use entity::{activity, activity_event, callback, disposition_event, lead};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// A read shared by the subscribers that waited on it: one failure is
/// everyone's.
pub type Loaded<T> = Result<T, Arc<DbErr>>;

/// The activities of one page of events or one batch, with their leads.
pub struct Shared {
    db: DatabaseConnection,
    /// The activities to read, each once.
    activity_ids: Vec<String>,
    /// For a page of `activity_events`: each entry's id (its cursor) and
    /// activity, in id order.
    entries: Vec<(i64, String)>,
    /// The leads to read: the events' (None: the activities').
    lead_ids: Option<Vec<String>>,
    activities: Cell<Activities>,
    leads: Cell<Leads>,
}

/// Leads by id.
pub type Leads = HashMap<String, Arc<lead::Model>>;

/// A read made once for all who wait on it, until released.
struct Cell<T>(Mutex<Arc<OnceCell<Loaded<Arc<T>>>>>);

impl<T> Cell<T> {
    fn new() -> Self {
        Cell(Mutex::new(Arc::new(OnceCell::new())))
    }

    fn current(&self) -> Arc<OnceCell<Loaded<Arc<T>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn release(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(OnceCell::new());
    }
}

/// Activities by id, and in timestamp order.
pub struct Activities {
    pub ordered: Vec<Arc<activity::Model>>,
    by_id: HashMap<String, usize>,
}

impl Activities {
    pub fn get(&self, id: &str) -> Option<&Arc<activity::Model>> {
        self.by_id.get(id).map(|&i| &self.ordered[i])
    }
}

impl Shared {
    /// For a page of published disposition events.
    pub fn for_events(db: DatabaseConnection, events: &[disposition_event::Model]) -> Arc<Shared> {
        Self::of_rows(
            db,
            events
                .iter()
                .map(|e| (e.lead_id.as_str(), e.activity_id.as_str())),
        )
    }

    /// For a page of callbacks that came due: their leads and the calls
    /// that promised them.
    pub fn for_callbacks(db: DatabaseConnection, callbacks: &[callback::Model]) -> Arc<Shared> {
        Self::of_rows(
            db,
            callbacks
                .iter()
                .map(|c| (c.lead_id.as_str(), c.activity_id.as_str())),
        )
    }

    /// For rows that each name a lead and an activity.
    fn of_rows<'a>(
        db: DatabaseConnection,
        rows: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Arc<Shared> {
        let (mut lead_ids, activity_ids): (Vec<String>, Vec<String>) = rows
            .map(|(lead, activity)| (lead.to_string(), activity.to_string()))
            .unzip();
        lead_ids.sort();
        lead_ids.dedup();
        Arc::new(Shared {
            db,
            activity_ids,
            entries: Vec::new(),
            lead_ids: Some(lead_ids),
            activities: Cell::new(),
            leads: Cell::new(),
        })
    }

    /// For a page of activity events: the activities stored by one or
    /// more commits.
    pub fn for_activities(db: DatabaseConnection, events: &[activity_event::Model]) -> Arc<Shared> {
        let mut activity_ids: Vec<String> = events.iter().map(|e| e.activity_id.clone()).collect();
        activity_ids.sort();
        activity_ids.dedup();
        Arc::new(Shared {
            db,
            activity_ids,
            entries: events
                .iter()
                .map(|e| (e.id, e.activity_id.clone()))
                .collect(),
            lead_ids: None,
            activities: Cell::new(),
            leads: Cell::new(),
        })
    }

    /// The activities' ids, each once.
    pub fn activity_ids(&self) -> &[String] {
        &self.activity_ids
    }

    /// A page of activity events: each one's id and activity, in id order
    /// (empty for disposition events).
    pub fn entries(&self) -> &[(i64, String)] {
        &self.entries
    }

    /// Let go of the rows read (they are read again if asked for).
    pub fn release(&self) {
        self.activities.release();
        self.leads.release();
    }

    /// The activities (those still stored), oldest first.
    pub async fn activities(&self) -> Loaded<Arc<Activities>> {
        let cell = self.activities.current();
        let loaded = cell
            .get_or_init(|| async {
                let mut ordered = Vec::with_capacity(self.activity_ids.len());
                for ids in self.activity_ids.chunks(CHUNK) {
                    ordered.extend(
                        activity::Entity::find()
                            .filter(activity::Column::Id.is_in(ids.iter().cloned()))
                            .all(&self.db)
                            .await?
                            .into_iter()
                            .map(Arc::new),
                    );
                }
                ordered.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
                let by_id = ordered
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a.id.clone(), i))
                    .collect();
                Ok::<_, Arc<DbErr>>(Arc::new(Activities { ordered, by_id }))
            })
            .await;
        loaded.clone()
    }

    /// The leads of the events or activities, by id, as they are now.
    pub async fn leads(&self) -> Loaded<Arc<Leads>> {
        let cell = self.leads.current();
        let loaded = cell
            .get_or_init(|| async {
                let ids: Vec<String> = match &self.lead_ids {
                    Some(ids) => ids.clone(),
                    None => {
                        let mut ids: Vec<String> = self
                            .activities()
                            .await?
                            .ordered
                            .iter()
                            .map(|a| a.lead_id.clone())
                            .collect();
                        ids.sort();
                        ids.dedup();
                        ids
                    }
                };
                let mut leads = HashMap::with_capacity(ids.len());
                for ids in ids.chunks(CHUNK) {
                    for l in lead::Entity::find()
                        .filter(lead::Column::Id.is_in(ids.iter().cloned()))
                        .all(&self.db)
                        .await?
                    {
                        leads.insert(l.id.clone(), Arc::new(l));
                    }
                }
                Ok::<_, Arc<DbErr>>(Arc::new(leads))
            })
            .await;
        loaded.clone()
    }

    /// The project a row of `lead_id` belongs to, for deciding who sees it
    /// (None: the lead is unknown or has no project).
    pub async fn project_of(&self, lead_id: &str) -> Loaded<Option<String>> {
        Ok(self
            .leads()
            .await?
            .get(lead_id)
            .and_then(|l| l.project_id.clone()))
    }
}

/// Ids per statement: far below SQLite's and PostgreSQL's limits on
/// bound values.
const CHUNK: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Schema};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory database with the activity and lead tables, counting
    /// the statements run on it.
    async fn counted() -> (DatabaseConnection, Arc<AtomicUsize>) {
        let mut db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let backend = db.get_database_backend();
        let schema = Schema::new(backend);
        db.execute(&schema.create_table_from_entity(activity::Entity))
            .await
            .unwrap();
        db.execute(&schema.create_table_from_entity(lead::Entity))
            .await
            .unwrap();
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        (db, statements)
    }

    #[tokio::test]
    async fn many_readers_share_one_read_until_it_is_released() {
        let (db, statements) = counted().await;
        let entry = |id, activity: &str| activity_event::Model {
            id,
            activity_id: activity.into(),
            recorded_at: 0,
        };
        let shared = Shared::for_activities(db, &[entry(1, "a1"), entry(2, "a2")]);
        let readers = (0..50).map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move { shared.activities().await.map(|a| a.ordered.len()) })
        });
        for reader in readers {
            assert_eq!(reader.await.unwrap().unwrap(), 0);
        }
        assert_eq!(
            statements.load(Ordering::SeqCst),
            1,
            "one read for 50 readers"
        );
        shared.activities().await.unwrap();
        assert_eq!(statements.load(Ordering::SeqCst), 1, "kept until released");
        shared.release();
        shared.activities().await.unwrap();
        assert_eq!(
            statements.load(Ordering::SeqCst),
            2,
            "read again once released"
        );
    }
}
