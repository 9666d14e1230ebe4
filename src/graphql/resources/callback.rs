//! Callbacks: what the agent promised a lead ("call me at 6 in the
//! evening"), projected at ingest from the lead's activities (see
//! `store::callbacks`). Whether an open one is PENDING or DUE depends on
//! the time, so the status is computed when asked, against the request's
//! moment (the reader's clock), in SQL for filters and here for the field.

use super::activity::{activity_of, Activity};
use super::lead::{lead_of, Lead};
use super::{condition, look_up, reader};
use crate::graphql::engine::connection::{connection, cost, root};
use crate::graphql::engine::filter::Against;
use crate::graphql::engine::join::Join;
use crate::graphql::engine::order::order_input;
use crate::graphql::engine::page::{PageArgs, SortKey};
use crate::graphql::engine::resource::resource;
use crate::store::callbacks::{DONE, OPEN, SUPERSEDED};
use async_graphql::{ComplexObject, Context, Enum, Object, Result, ID};
use chrono::{DateTime, Utc};
use entity::{activity, callback, lead};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, QueryFilter};
use std::sync::Arc;

/// A callback the agent promised in a call: when, in which zone it was
/// read, and whether it has been honoured.
#[resource(
    entity = callback,
    filter = CallbackFilter,
    filter_doc = "Which callbacks to include.",
    order = CallbackOrderField,
    order_doc = "Fields callbacks can be sorted by.",
    joins = callback_joins,
    complex
)]
pub struct Callback {
    /// The callback's id: the id of the activity in which it was promised
    /// (one promise per call).
    #[field(key)]
    id: ID,
    /// The lead to call back.
    #[field(key, filter)]
    lead_id: ID,
    /// The activity (call) in which it was promised.
    #[field(key)]
    activity_id: ID,
    /// The lead's project.
    #[field(filter)]
    project_id: Option<String>,
    /// The tool call that recorded the promise (null when only the call's
    /// variables did).
    tool_call_id: Option<String>,
    /// When the call in which it was promised happened.
    #[field(filter, sort)]
    requested_at: DateTime<Utc>,
    /// The promised moment; null when its text could not be read.
    #[field(key, filter, column = due_at, name = "dueAt")]
    due: Option<DateTime<Utc>>,
    /// The promised moment, earliest first; callbacks whose moment could
    /// not be read come last.
    #[field(key, hidden, sort, column = due_order)]
    due_at: i64,
    /// The date as sent, e.g. "13/01/2026".
    local_date: Option<String>,
    /// The time as sent, e.g. "18:00".
    local_time: Option<String>,
    /// The IANA zone or UTC offset the local date and time were read in:
    /// the project's (`LEADQL_PROJECT_TIMEZONES`), else the offset the
    /// payload itself showed, else `LEADQL_TIMEZONE`.
    timezone: Option<String>,
    /// `open`, `done` or `superseded` (see `status`).
    #[field(key, hidden)]
    state: String,
    /// The call attempt that honoured it.
    #[field(key, hidden)]
    fulfilled_by: Option<String>,
    /// The lead's id while open (see `Lead.nextCallback`).
    #[field(hidden)]
    open_lead_id: Option<String>,
    /// PENDING, DUE, DONE or SUPERSEDED, any of them.
    #[filter_only(with = status_condition)]
    status: Vec<CallbackStatus>,
}

/// A callback's lead and promising call come with it when asked for (the
/// same lead's rows: visible with it).
fn callback_joins() -> Vec<Join<callback::Entity>> {
    vec![
        Join::to::<Lead>("lead", callback::Column::LeadId, lead::Column::Id),
        Join::to::<Activity>(
            "activity",
            callback::Column::ActivityId,
            activity::Column::Id,
        ),
    ]
}

/// Where a callback stands, now.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallbackStatus {
    /// Its moment is still ahead (or could not be read), and it is not
    /// done or superseded.
    Pending,
    /// Its moment has passed and no call attempt has been made on the
    /// lead since 15 minutes before it.
    Due,
    /// A call attempt on the lead was made from 15 minutes before its
    /// moment on (`fulfilledBy`).
    Done,
    /// A newer callback was promised for the same lead before this one was
    /// done.
    Superseded,
}

/// Callbacks in any of `statuses` at the moment of `at`: an open one is
/// DUE once `due_order` (its moment; the largest value when unknown) is
/// not after now. An empty list matches nothing.
fn status_condition(statuses: &[CallbackStatus], at: Against) -> Condition {
    let open = || callback::Column::State.eq(OPEN);
    let due_order = || Expr::col((callback::Entity, callback::Column::DueOrder));
    statuses
        .iter()
        .fold(Condition::any(), |any, status| match status {
            CallbackStatus::Pending => {
                any.add(Condition::all().add(open()).add(due_order().gt(at.now())))
            }
            CallbackStatus::Due => {
                any.add(Condition::all().add(open()).add(due_order().lte(at.now())))
            }
            CallbackStatus::Done => any.add(callback::Column::State.eq(DONE)),
            CallbackStatus::Superseded => any.add(callback::Column::State.eq(SUPERSEDED)),
        })
}

order_input!(
    CallbackOrderBy,
    CallbackOrderField,
    callback,
    "How to sort callbacks; ties are broken by id. Default: DUE_AT ASC (unknown moments last)."
);

/// The sort key of `orderBy`, then the id.
pub fn callback_key(order: Option<&[CallbackOrderBy]>) -> SortKey<callback::Entity> {
    let parts = match order {
        Some(o) if !o.is_empty() => o.iter().map(CallbackOrderBy::part).collect(),
        _ => vec![CallbackOrderField::DueAt.part(false)],
    };
    SortKey::new(
        parts,
        vec![crate::graphql::engine::page::KeyPart::of::<ID>(
            "id",
            callback::Column::Id,
            false,
        )],
    )
}

connection!(
    CallbackConnection,
    CallbackEdge,
    Callback,
    "A page of callbacks (Relay connection).",
    "An edge in a list of callbacks: one node and its cursor."
);

impl Callback {
    /// The status at `now_ms`.
    pub fn status_at(&self, now_ms: i64) -> Result<CallbackStatus> {
        Ok(match self.state.key()?.as_str() {
            DONE => CallbackStatus::Done,
            SUPERSEDED => CallbackStatus::Superseded,
            _ if *self.due_at.key()? <= now_ms => CallbackStatus::Due,
            _ => CallbackStatus::Pending,
        })
    }

    /// Its place in the `callbackDue` feed: its moment, then its id.
    pub fn feed_cursor(&self) -> Result<String> {
        Ok(format!(
            "{}:{}",
            self.due_at.key()?,
            self.id.key()?.as_str()
        ))
    }
}

#[ComplexObject]
impl Callback {
    /// Where it stands now: PENDING, DUE, DONE or SUPERSEDED.
    async fn status(&self, ctx: &Context<'_>) -> Result<CallbackStatus> {
        self.status_at(reader(ctx).now_ms())
    }

    /// Its place in the `callbackDue` feed: pass it as `after` to resume
    /// after it.
    async fn cursor(&self) -> Result<String> {
        self.feed_cursor()
    }

    /// The lead to call back, as it is now.
    async fn lead(&self, ctx: &Context<'_>) -> Result<Arc<Lead>> {
        lead_of(ctx, self.lead_id.key()?, &self.joined).await
    }

    /// The call in which it was promised.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Arc<Activity>> {
        activity_of(ctx, self.activity_id.key()?, &self.joined).await
    }

    /// The call attempt that honoured it (DONE only).
    async fn fulfilled_by(&self, ctx: &Context<'_>) -> Result<Option<Arc<Activity>>> {
        match (self.state.key()?.as_str(), self.fulfilled_by.key()?) {
            (DONE, Some(id)) => look_up::<Activity>(ctx, activity::Column::Id, id).await,
            _ => Ok(None),
        }
    }
}

/// The root fields for callbacks.
#[derive(Default)]
pub struct CallbackQuery;

#[Object]
impl CallbackQuery {
    /// Promised callbacks, earliest moment first unless `orderBy` says
    /// otherwise: e.g. `filter: {status: [DUE], projectId: {eq: "…"}}` is
    /// whom a sales floor must call now.
    #[graphql(complexity = "cost(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn callbacks(
        &self,
        ctx: &Context<'_>,
        filter: Option<CallbackFilter>,
        order_by: Option<Vec<CallbackOrderBy>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<CallbackConnection> {
        let cond = condition(ctx, filter.as_ref())?;
        let r = reader(ctx);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        let select = r.find::<callback::Entity>().filter(cond);
        let (page, total) = root(ctx, r, select, callback_key(order_by.as_deref()), args).await?;
        Ok(CallbackConnection::from_page(page, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::engine::filter::render;
    use sea_orm::DbBackend;

    /// PostgreSQL compares with the moment through a one-row subquery, so
    /// a statement's plan does not depend on it (see `Against::now`);
    /// SQLite takes the value.
    #[test]
    fn the_moment_of_a_status_is_a_subquery_on_postgres_only() {
        let at = |backend| Against {
            backend,
            now_ms: 1_768_307_400_000,
        };
        let due = [CallbackStatus::Due, CallbackStatus::Pending];
        assert_eq!(
            render::<callback::Entity>(
                status_condition(&due, at(DbBackend::Postgres)),
                DbBackend::Postgres
            ),
            r#"("callbacks"."state" = 'open' AND "callbacks"."due_order" <= (SELECT 1768307400000)) OR ("callbacks"."state" = 'open' AND "callbacks"."due_order" > (SELECT 1768307400000))"#
        );
        assert_eq!(
            render::<callback::Entity>(
                status_condition(&due, at(DbBackend::Sqlite)),
                DbBackend::Sqlite
            ),
            r#"("callbacks"."state" = 'open' AND "callbacks"."due_order" <= 1768307400000) OR ("callbacks"."state" = 'open' AND "callbacks"."due_order" > 1768307400000)"#
        );
    }
}
