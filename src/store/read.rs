//! Every read the API makes starts here: [`Reader::find`] is the one place
//! that decides which rows of a table a caller may see. A reader made for
//! an API key scoped to projects sees those projects' leads and everything
//! that belongs to them, in lists, lookups, nested fields, aggregates,
//! search and subscriptions alike.

use entity::{
    activity, analysis, conversation, disposition_event, lead, lead_update, message, tool_call,
    variable,
};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, Select};
use std::sync::Arc;

pub use super::held::{ReadDb, Spares};

/// A read handle for one request (or one WebSocket connection).
#[derive(Clone)]
pub struct Reader {
    db: ReadDb,
    projects: Option<Arc<Vec<String>>>,
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

/// Disposition events carry the lead's project as it was: live events are
/// checked by it in memory, so stored ones are too.
impl Scoped for disposition_event::Entity {
    fn visible(projects: &[String]) -> Condition {
        Condition::all().add(disposition_event::Column::ProjectId.is_in(projects.iter().cloned()))
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
            projects,
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
            projects,
        }
    }

    pub fn db(&self) -> &ReadDb {
        &self.db
    }

    /// The projects this reader is limited to, if any.
    pub fn projects(&self) -> Option<&[String]> {
        self.projects.as_deref().map(Vec::as_slice)
    }

    /// The rows of `E` this reader may see.
    pub fn find<E: Scoped>(&self) -> Select<E> {
        match &self.projects {
            Some(projects) => E::find().filter(E::visible(projects)),
            None => E::find(),
        }
    }
}
