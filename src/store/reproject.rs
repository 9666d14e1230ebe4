//! Rebuilding every projection from the raw delivery log, after a parser
//! fix or a schema change. The feeds' logs (disposition events, recorded
//! activities) are history and are kept; so are the projections of leads
//! whose bodies retention pruned.

use super::batch::{apply_batch, Mode};
use crate::ingest::payload::callback::Rules;
use crate::ingest::payload::parse;
use entity::{
    activity, analysis, callback, conversation, delivery, lead, lead_update, message, tool_call,
    variable,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use std::collections::HashSet;

/// Delete the rows of `E` that `scope` selects.
async fn clear<E: EntityTrait>(txn: &DatabaseTransaction, scope: Condition) -> Result<(), DbErr> {
    E::delete_many().filter(scope).exec(txn).await?;
    Ok(())
}

/// What `reproject` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReprojectSummary {
    /// Deliveries replayed from the log.
    pub replayed: u64,
    /// Logged bodies the current parser no longer accepts (left out).
    pub unreadable: u64,
    /// Leads there are now.
    pub leads: u64,
    /// Deliveries whose bodies retention removed (`leadql prune`).
    pub pruned: u64,
    /// Leads kept as they were, not rebuilt: some of their deliveries'
    /// bodies were pruned.
    pub kept_leads: u64,
}

/// Replay the delivery log, in arrival order, into empty projections, in
/// one transaction: readers see the old projections until it commits.
/// `rules` read promised callbacks, as ingest does.
///
/// A lead with a pruned delivery (see [`super::retention`]) cannot be
/// rebuilt: its projections, and those of any lead sharing an activity or
/// update id with a pruned delivery, are kept as they are, and their
/// deliveries are not replayed.
pub async fn reproject(
    db: &DatabaseConnection,
    rules: &Rules,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ReprojectSummary, DbErr> {
    const PAGE: u64 = 500;
    let txn = db.begin().await?;
    let mut summary = ReprojectSummary {
        pruned: delivery::Entity::find()
            .filter(delivery::Column::PrunedAt.is_not_null())
            .count(&txn)
            .await?,
        ..Default::default()
    };
    let kept_query = Query::select()
        .distinct()
        .column(delivery::Column::LeadId)
        .from(delivery::Entity)
        .and_where(
            Expr::col(delivery::Column::SourceId).in_subquery(
                Query::select()
                    .column(delivery::Column::SourceId)
                    .from(delivery::Entity)
                    .and_where(Expr::col(delivery::Column::PrunedAt).is_not_null())
                    .to_owned(),
            ),
        )
        .to_owned();
    let kept: HashSet<String> = if summary.pruned == 0 {
        HashSet::new()
    } else {
        txn.query_all(&kept_query)
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?
    };
    summary.kept_leads = kept.len() as u64;
    // What is rebuilt: every lead but the kept ones.
    let rebuilt = |lead: Expr| {
        let mut scope = Condition::all();
        if !kept.is_empty() {
            scope = scope.add(lead.not_in_subquery(kept_query.clone()));
        }
        scope
    };
    let rebuilt_activities = rebuilt(Expr::col(activity::Column::LeadId));
    let parts = |activity_id: Expr| {
        let mut scope = Condition::all();
        if !kept.is_empty() {
            scope = scope.add(
                activity_id.in_subquery(
                    Query::select()
                        .column(activity::Column::Id)
                        .from(activity::Entity)
                        .cond_where(rebuilt_activities.clone())
                        .to_owned(),
                ),
            );
        }
        scope
    };
    clear::<message::Entity>(&txn, parts(Expr::col(message::Column::ActivityId))).await?;
    clear::<tool_call::Entity>(&txn, parts(Expr::col(tool_call::Column::ActivityId))).await?;
    clear::<variable::Entity>(&txn, parts(Expr::col(variable::Column::ActivityId))).await?;
    clear::<analysis::Entity>(&txn, parts(Expr::col(analysis::Column::ActivityId))).await?;
    clear::<conversation::Entity>(&txn, parts(Expr::col(conversation::Column::ActivityId))).await?;
    clear::<activity::Entity>(&txn, rebuilt_activities.clone()).await?;
    clear::<lead_update::Entity>(&txn, rebuilt(Expr::col(lead_update::Column::LeadId))).await?;
    clear::<lead::Entity>(&txn, rebuilt(Expr::col(lead::Column::Id))).await?;
    clear::<callback::Entity>(&txn, rebuilt(Expr::col(callback::Column::LeadId))).await?;

    let mut after = 0_i64;
    let mut passed = 0_u64;
    loop {
        let page = delivery::Entity::find()
            .filter(delivery::Column::Id.gt(after))
            .order_by_asc(delivery::Column::Id)
            .limit(PAGE)
            .all(&txn)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        passed += page.len() as u64;
        let mut parsed = Vec::with_capacity(page.len());
        for row in page.iter().filter(|row| !kept.contains(&row.lead_id)) {
            match parse(row.body.as_bytes()) {
                Ok(d) => parsed.push(d),
                Err(rejection) => {
                    tracing::warn!(
                        delivery_id = row.id,
                        error = rejection.message(),
                        "logged delivery no longer parses"
                    );
                    summary.unreadable += 1;
                }
            }
        }
        let refs: Vec<_> = parsed.iter().collect();
        apply_batch(&txn, &refs, super::now_ms(), Mode::Replay, rules).await?;
        summary.replayed += parsed.len() as u64;
        progress(passed);
    }
    // The rollup counts every activity, the kept leads' too.
    super::rollup::rebuild(&txn).await?;
    summary.leads = lead::Entity::find().count(&txn).await?;
    txn.commit().await?;
    Ok(summary)
}
