//! Rebuilding every projection from the raw delivery log, after a parser
//! fix or a schema change. The feeds' logs (disposition events, recorded
//! activities) are history and are kept.

use super::batch::{apply_batch, Mode};
use crate::ingest::payload::callback::Rules;
use crate::ingest::payload::parse;
use entity::{
    activity, analysis, callback, conversation, delivery, lead, lead_update, message, tool_call,
    variable,
};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

/// What `reproject` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReprojectSummary {
    /// Deliveries replayed from the log.
    pub replayed: u64,
    /// Logged bodies the current parser no longer accepts (left out).
    pub unreadable: u64,
    pub leads: u64,
}

/// Replay the whole delivery log, in arrival order, into empty projections,
/// in one transaction: readers see the old projections until it commits.
/// `rules` read promised callbacks, as ingest does.
pub async fn reproject(
    db: &DatabaseConnection,
    rules: &Rules,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ReprojectSummary, DbErr> {
    const PAGE: u64 = 500;
    let txn = db.begin().await?;
    message::Entity::delete_many().exec(&txn).await?;
    tool_call::Entity::delete_many().exec(&txn).await?;
    variable::Entity::delete_many().exec(&txn).await?;
    analysis::Entity::delete_many().exec(&txn).await?;
    conversation::Entity::delete_many().exec(&txn).await?;
    activity::Entity::delete_many().exec(&txn).await?;
    lead_update::Entity::delete_many().exec(&txn).await?;
    lead::Entity::delete_many().exec(&txn).await?;
    callback::Entity::delete_many().exec(&txn).await?;

    let mut summary = ReprojectSummary::default();
    let mut after = 0_i64;
    loop {
        let page = delivery::Entity::find()
            .filter(delivery::Column::Id.gt(after))
            .order_by_asc(delivery::Column::Id)
            .limit(PAGE)
            .all(&txn)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut parsed = Vec::with_capacity(page.len());
        for row in &page {
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
        progress(summary.replayed + summary.unreadable);
    }
    summary.leads = lead::Entity::find().count(&txn).await?;
    txn.commit().await?;
    Ok(summary)
}
