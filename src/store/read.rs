//! Every read the API makes for a caller starts here: [`Reader::find`] is
//! the one place that decides which rows of a table a caller may see (a
//! relation joined to a visible row belongs to the same lead and is
//! visible with it, see `graphql::engine::join`). A reader made for
//! an API key scoped to projects sees those projects' leads and everything
//! that belongs to them, in lists, lookups, nested fields, aggregates,
//! search and subscriptions alike.

use crate::access::Role;
use crate::clock::Clock;
use entity::{
    activity, analysis, callback, conversation, disposition_event, lead, lead_rollup, lead_update,
    message, tool_call, variable,
};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, Select};
use std::sync::Arc;

pub use super::held::{ReadDb, Spares};

/// A read handle for one request (or one WebSocket connection).
#[derive(Clone)]
pub struct Reader {
    db: ReadDb,
    /// Where the rollups are read (see [`super::connect_rollups`]); None:
    /// through `db`.
    rollups: Option<ReadDb>,
    projects: Option<Arc<Vec<String>>>,
    role: Role,
    clock: Clock,
    /// The moment a request reads at, so every field of one answer agrees
    /// on what is due (None: the clock's time at each question, for
    /// long-lived readers).
    moment: Option<i64>,
}

/// A table whose rows belong to projects.
pub trait Scoped: EntityTrait {
    /// The rows that belong to one of `projects`.
    fn visible(projects: &[String]) -> Condition;
}

/// Rows of the leads of `projects`, by their `lead_id` column.
fn of_leads(lead_id: impl ColumnTrait, projects: &[String]) -> Condition {
    let leads = Query::select()
        .column(lead::Column::Id)
        .from(lead::Entity)
        .and_where(lead::Column::ProjectId.is_in(projects.iter().cloned()))
        .to_owned();
    Condition::all().add(lead_id.in_subquery(leads))
}

impl Scoped for lead::Entity {
    fn visible(projects: &[String]) -> Condition {
        Condition::all().add(lead::Column::ProjectId.is_in(projects.iter().cloned()))
    }
}

/// Disposition events carry the lead's project as it was when the event
/// happened, and are visible by it: stored ones by this condition, live
/// ones by [`Reader::sees_project`], which must agree with it (an event of
/// no known project is visible to no scoped reader).
impl Scoped for disposition_event::Entity {
    fn visible(projects: &[String]) -> Condition {
        Condition::all().add(disposition_event::Column::ProjectId.is_in(projects.iter().cloned()))
    }
}

/// Callbacks carry their lead's project (recomputed with the lead), and
/// are visible by it: stored ones by this condition (served by the
/// project's index), live ones by [`Reader::sees_project`].
impl Scoped for callback::Entity {
    fn visible(projects: &[String]) -> Condition {
        Condition::all().add(callback::Column::ProjectId.is_in(projects.iter().cloned()))
    }
}

/// Lead counts are visible by the leads' project, as leads are.
impl Scoped for lead_rollup::Entity {
    fn visible(projects: &[String]) -> Condition {
        Condition::all().add(lead_rollup::Column::ProjectId.is_in(projects.iter().cloned()))
    }
}

macro_rules! scoped_by_lead {
    ($($module:ident),*) => {
        $(impl Scoped for $module::Entity {
            fn visible(projects: &[String]) -> Condition {
                of_leads($module::Column::LeadId, projects)
            }
        })*
    };
}
scoped_by_lead!(
    activity,
    conversation,
    analysis,
    tool_call,
    message,
    variable,
    lead_update
);

impl Reader {
    /// A reader that sees everything.
    pub fn new(db: DatabaseConnection) -> Self {
        Reader::scoped(db, None)
    }

    /// A reader that sees only `projects` (None: everything); each
    /// statement takes a connection from the pool (for long-lived readers).
    pub fn scoped(db: DatabaseConnection, projects: Option<Arc<Vec<String>>>) -> Self {
        Reader {
            db: ReadDb::pooled(db),
            rollups: None,
            projects,
            role: Role::Full,
            clock: Clock::System,
            moment: None,
        }
    }

    /// A reader for one request: its statements share one connection,
    /// taken at the first and returned when the last clone is dropped.
    pub fn for_request(
        db: DatabaseConnection,
        spares: Spares,
        projects: Option<Arc<Vec<String>>>,
    ) -> Self {
        Reader {
            db: ReadDb::held(db, spares),
            rollups: None,
            projects,
            role: Role::Full,
            clock: Clock::System,
            moment: None,
        }
    }

    /// This reader, reading the rollups through `db` (from
    /// [`super::connect_rollups`]).
    pub fn with_rollups(mut self, db: DatabaseConnection) -> Self {
        self.rollups = Some(ReadDb::pooled(db));
        self
    }

    /// This reader, for a key of `role`: personal fields, and filters and
    /// sorts over them, are refused unless the role reads them.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// This reader, telling the time by `clock`; `frozen`: at the moment
    /// it was made, for all its questions (one request's answer).
    pub fn with_clock(mut self, clock: &Clock, frozen: bool) -> Self {
        self.moment = frozen.then(|| clock.now_ms());
        self.clock = clock.clone();
        self
    }

    /// Now, epoch ms: what PENDING and DUE are judged against.
    pub fn now_ms(&self) -> i64 {
        self.moment.unwrap_or_else(|| self.clock.now_ms())
    }

    /// The clock this reader tells the time by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// What this reader may read of the rows it sees.
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn db(&self) -> &ReadDb {
        &self.db
    }

    /// Where statements that read only the rollups (and a window's ragged
    /// ends) run: connections that plan them once for any values.
    pub fn rollups(&self) -> &ReadDb {
        self.rollups.as_ref().unwrap_or(&self.db)
    }

    /// The projects this reader is limited to, if any.
    pub fn projects(&self) -> Option<&[String]> {
        self.projects.as_deref().map(Vec::as_slice)
    }

    /// Whether this reader may see a row that belongs to `project` (None:
    /// no known project, seen by unscoped readers only): the in-memory
    /// twin of [`Scoped::visible`], for events that arrive live.
    pub fn sees_project(&self, project: Option<&str>) -> bool {
        match &self.projects {
            None => true,
            Some(projects) => project.is_some_and(|p| projects.iter().any(|q| q == p)),
        }
    }

    /// The rows of `E` this reader may see.
    pub fn find<E: Scoped>(&self) -> Select<E> {
        match &self.projects {
            Some(projects) => E::find().filter(E::visible(projects)),
            None => E::find(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel, NotSet, Schema};

    /// Stored events (by SQL) and live ones (in memory) are seen alike.
    #[tokio::test]
    async fn stored_and_live_events_are_visible_alike() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let backend = db.get_database_backend();
        db.execute_raw(
            backend
                .build(&Schema::new(backend).create_table_from_entity(disposition_event::Entity)),
        )
        .await
        .unwrap();
        let projects = [Some("A"), Some("B"), Some("C"), None, Some("")];
        for (i, project) in projects.iter().enumerate() {
            disposition_event::ActiveModel {
                id: NotSet,
                ..disposition_event::Model {
                    id: 0,
                    lead_id: format!("L{i}"),
                    activity_id: format!("X{i}"),
                    project_id: project.map(str::to_string),
                    previous_disposition: None,
                    disposition: "Interested".into(),
                    disposition_type: None,
                    occurred_at: 1,
                    recorded_at: 1,
                }
                .into_active_model()
            }
            .insert(&db)
            .await
            .unwrap();
        }
        let all = disposition_event::Entity::find().all(&db).await.unwrap();
        for scope in [
            None,
            Some(vec![]),
            Some(vec!["A"]),
            Some(vec!["A", "C"]),
            Some(vec![""]),
        ] {
            let reader = Reader::scoped(
                db.clone(),
                scope.map(|s| Arc::new(s.into_iter().map(String::from).collect())),
            );
            let mut stored: Vec<String> = reader
                .find::<disposition_event::Entity>()
                .all(reader.db())
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.lead_id)
                .collect();
            stored.sort();
            let live: Vec<String> = all
                .iter()
                .filter(|e| reader.sees_project(e.project_id.as_deref()))
                .map(|e| e.lead_id.clone())
                .collect();
            assert_eq!(stored, live, "scope {:?}", reader.projects());
            if reader.projects().is_some() {
                assert!(!live.contains(&"L3".to_string()), "no project: unseen");
            }
        }
    }
}
