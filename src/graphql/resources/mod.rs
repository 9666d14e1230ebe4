//! The resources of the API, one file each: its declaration (every field
//! written once: column, type, description, filter, sort), its object
//! type's relations and nested connections, and its root query fields.

pub mod activity;
pub mod analysis;
pub mod callback;
pub mod conversation;
pub mod disposition_event;
pub mod lead;
pub mod lead_update;
pub mod live;
pub mod message;
pub mod timeline;
pub mod tool_call;

use super::engine::filter::{condition_of, Filter};
use super::engine::loader::{Loaders, Lookup};
use super::engine::page::PageArgs;
use super::engine::resource::{ColumnSet, Resource};
use crate::error::ApiError;
use crate::store::read::{Reader, Scoped};
use async_graphql::{Context, Result};
use sea_orm::{Condition, EntityTrait};
use std::sync::Arc;

pub(crate) fn reader<'a>(ctx: &'a Context<'_>) -> &'a Reader {
    ctx.data_unchecked::<Reader>()
}

pub(crate) fn loaders<'a>(ctx: &'a Context<'_>) -> &'a Arc<Loaders> {
    ctx.data_unchecked::<Arc<Loaders>>()
}

/// The condition of an optional filter.
pub(crate) fn condition<F: Filter>(ctx: &Context<'_>, filter: Option<&F>) -> Result<Condition> {
    condition_of(filter, reader(ctx))
}

/// The condition of an optional filter plus a description of the
/// arguments, so siblings asking the same thing share one statement.
pub(crate) fn shape<F: Filter + std::fmt::Debug, O: std::fmt::Debug>(
    ctx: &Context<'_>,
    filter: Option<&F>,
    order: &O,
    args: &PageArgs,
) -> Result<(Condition, String)> {
    let cond = condition(ctx, filter)?;
    Ok((cond, format!("{filter:?}|{order:?}|{args:?}")))
}

/// The columns of `R` this field's selection reads.
pub(crate) fn selected<R: Resource>(ctx: &Context<'_>) -> ColumnSet {
    R::selected(ctx.field().selection_set())
}

/// The row of `R` whose `column` holds `value`, batched with the same
/// lookups of sibling fields, reading what this field's selection needs.
pub(crate) async fn look_up<R>(
    ctx: &Context<'_>,
    column: <R::Entity as EntityTrait>::Column,
    value: &str,
) -> Result<Option<Arc<R>>>
where
    R: Resource,
    R::Entity: Scoped,
    <R::Entity as EntityTrait>::Column: Send + Sync,
{
    loaders(ctx)
        .load_one(Lookup::<R>::new(column, value, selected::<R>(ctx)))
        .await
        .map_err(|e| ApiError::database(&e).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{IdenStatic, Iterable};

    /// Every column of `R`'s table is declared, or named in `internal`
    /// (kept for ingest, not part of the API).
    fn declared_or_internal<R: Resource>(internal: &[&str]) {
        let declared: Vec<&str> = R::declared().iter().map(|(_, c)| c.as_str()).collect();
        for column in <R::Entity as EntityTrait>::Column::iter() {
            let name = column.as_str();
            assert!(
                declared.contains(&name) != internal.contains(&name),
                "column {name} of {} must be declared in its resource or listed as internal, not both or neither",
                std::any::type_name::<R>()
            );
        }
    }

    /// A column added to an entity and forgotten in its resource's
    /// declaration fails here.
    #[test]
    fn every_column_is_declared_or_internal() {
        declared_or_internal::<lead::Lead>(&[]);
        declared_or_internal::<activity::Activity>(&[
            "version_hash",
            "analysis_summary",
            "callback_promised",
            "callback_tool_call_id",
            "callback_date",
            "callback_time",
            "callback_offset",
        ]);
        declared_or_internal::<conversation::Conversation>(&[]);
        declared_or_internal::<message::Message>(&["lead_id"]);
        declared_or_internal::<tool_call::ToolCall>(&[]);
        declared_or_internal::<analysis::Analysis>(&[]);
        declared_or_internal::<lead_update::LeadUpdate>(&["version_hash"]);
        declared_or_internal::<disposition_event::DispositionEvent>(&[]);
        declared_or_internal::<callback::Callback>(&["superseded_by", "closed_at"]);
    }
}
