//! What a batch reads before deciding: the bodies and versions stored
//! already, the projection facts of the leads it touches, and (on
//! PostgreSQL) the per-lead locks that serialise writers.

use crate::ingest::payload::Delivery;
use crate::ingest::payload::Kind;
use crate::store::projection::LeadFacts;
use crate::store::rollup::VariableKey;
use entity::{activity, variable};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A logged body (`kind` "h"), a lead with a row ("l"), the current
/// version of an activity ("a") or update ("u") (see [`stored_state`]), or
/// what the rollups count of a stored activity: its conversation's turn
/// count ("c") or its number of tool calls ("t"), in `n` (see
/// [`Stored::read_measures`]).
#[derive(FromQueryResult)]
pub(super) struct Version {
    kind: String,
    id: String,
    lead_id: String,
    timestamp: i64,
    version_hash: String,
    n: Option<i64>,
}

/// What is stored already of a batch's bodies, activities and updates.
pub(super) struct Stored {
    /// Bodies logged before this batch.
    pub(super) logged: HashSet<String>,
    /// Current version (timestamp, body hash) of each activity and update.
    pub(super) activities: HashMap<String, (i64, String)>,
    pub(super) updates: HashMap<String, (i64, String)>,
    /// The lead each stored activity belongs to now.
    pub(super) lead_of: HashMap<String, String>,
    /// The batch's leads that have a row already (live batches only).
    pub(super) leads: HashSet<String>,
    /// The turn count of each replaced activity's conversation, where it
    /// has one, and each replaced activity's number of tool calls, where it
    /// made any: what its replacement takes from the rollup (live batches
    /// only, read by [`Stored::read_measures`] once the batch is decided).
    pub(super) turn_counts: HashMap<String, i64>,
    pub(super) tool_calls: HashMap<String, i64>,
    /// The variables the replaced activities extracted: what their
    /// replacements take from the variable rollup (live batches only).
    pub(super) variables: Vec<VariableKey>,
}

impl Stored {
    pub(super) async fn read<C: ConnectionTrait>(
        txn: &C,
        deliveries: &[&Delivery],
        live: bool,
    ) -> Result<Stored, DbErr> {
        let mut stored = Stored {
            logged: HashSet::new(),
            activities: HashMap::new(),
            updates: HashMap::new(),
            lead_of: HashMap::new(),
            leads: HashSet::new(),
            turn_counts: HashMap::new(),
            tool_calls: HashMap::new(),
            variables: Vec::new(),
        };
        for v in stored_state(txn, deliveries, live).await? {
            match v.kind.as_str() {
                "h" => {
                    stored.logged.insert(v.id);
                }
                "l" => {
                    stored.leads.insert(v.id);
                }
                "a" => {
                    stored.lead_of.insert(v.id.clone(), v.lead_id);
                    stored
                        .activities
                        .insert(v.id, (v.timestamp, v.version_hash));
                }
                _ => {
                    stored.updates.insert(v.id, (v.timestamp, v.version_hash));
                }
            }
        }
        Ok(stored)
    }

    /// Read what the rollups count of the stored versions of `replaced`
    /// activities: their conversations' turn counts ("c") and their tool
    /// calls ("t"), in one query, and their variables in another; none
    /// when nothing is replaced (most batches: new activities and stale
    /// repeats replace nothing).
    pub(super) async fn read_measures<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        replaced: &[&str],
    ) -> Result<(), DbErr> {
        if replaced.is_empty() {
            return Ok(());
        }
        let of_activity = |kind: &str, table: &str, n: Expr| {
            Query::select()
                .expr_as(Expr::val(kind), "kind")
                .expr_as(Expr::col("activity_id"), "id")
                .expr_as(Expr::val(""), "lead_id")
                .expr_as(Expr::val(0_i64), "timestamp")
                .expr_as(Expr::val(""), "version_hash")
                .expr_as(n, "n")
                .from(Alias::new(table))
                .and_where(Expr::col("activity_id").is_in(replaced.iter().copied()))
                .take()
        };
        let mut query = of_activity(
            "c",
            "conversations",
            Expr::cust("CAST(turn_count AS BIGINT)"),
        );
        let mut tool_calls = of_activity("t", "tool_calls", Expr::cust("COUNT(*)"));
        tool_calls.group_by_col("activity_id");
        query.union(UnionType::All, tool_calls);
        let backend = txn.get_database_backend();
        for v in Version::find_by_statement(backend.build(&query))
            .all(txn)
            .await?
        {
            match v.kind.as_str() {
                "c" => {
                    if let Some(n) = v.n {
                        self.turn_counts.insert(v.id, n);
                    }
                }
                _ => {
                    self.tool_calls.insert(v.id, v.n.unwrap_or(0));
                }
            }
        }
        use variable::Column as V;
        self.variables = variable::Entity::find()
            .select_only()
            .columns([V::Name, V::ValueText, V::ProjectId])
            .filter(V::ActivityId.is_in(replaced.iter().copied()))
            .into_model::<VariableKey>()
            .all(txn)
            .await?;
        Ok(())
    }
}

/// In one query: which of the batch's bodies are already logged (`kind`
/// "h", live batches only), which of its leads have a row ("l", live),
/// and the current versions of its activities ("a") and updates ("u").
pub(super) async fn stored_state<C: ConnectionTrait>(
    txn: &C,
    deliveries: &[&Delivery],
    live: bool,
) -> Result<Vec<Version>, DbErr> {
    let ids = |kind: Kind| -> Vec<sea_orm::Value> {
        deliveries
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.source_id.clone().into())
            .collect()
    };
    // Typed, so PostgreSQL's UNION finds one type for the column.
    let no_number = || Expr::cust("CAST(NULL AS BIGINT)");
    let version_query = |kind: &str, table: &'static str, ids: Vec<sea_orm::Value>| {
        Query::select()
            .expr_as(Expr::val(kind), "kind")
            .columns(["id", "lead_id", "timestamp", "version_hash"])
            .expr_as(no_number(), "n")
            .from(table)
            .and_where(Expr::col("id").is_in(ids))
            .take()
    };
    let mut parts = Vec::new();
    if live {
        let hashes: Vec<sea_orm::Value> = deliveries
            .iter()
            .map(|d| d.body_hash.clone().into())
            .collect();
        parts.push(
            Query::select()
                .expr_as(Expr::val("h"), "kind")
                .expr_as(Expr::col("body_hash"), "id")
                .columns(["lead_id", "timestamp"])
                .expr_as(Expr::col("body_hash"), "version_hash")
                .expr_as(no_number(), "n")
                .from("deliveries")
                .and_where(Expr::col("body_hash").is_in(hashes))
                .take(),
        );
        let leads: BTreeSet<&str> = deliveries.iter().map(|d| d.lead_id.as_str()).collect();
        parts.push(
            Query::select()
                .expr_as(Expr::val("l"), "kind")
                .column("id")
                .expr_as(Expr::col("id"), "lead_id")
                .expr_as(Expr::val(0_i64), "timestamp")
                .expr_as(Expr::val(""), "version_hash")
                .expr_as(no_number(), "n")
                .from("leads")
                .and_where(Expr::col("id").is_in(leads))
                .take(),
        );
    }
    let (activities, updates) = (ids(Kind::Activity), ids(Kind::Update));
    if !activities.is_empty() {
        parts.push(version_query("a", "activities", activities));
    }
    if !updates.is_empty() {
        parts.push(version_query("u", "lead_updates", updates));
    }
    let mut parts = parts.into_iter();
    let Some(mut query) = parts.next() else {
        return Ok(Vec::new());
    };
    for part in parts {
        query.union(UnionType::All, part);
    }
    let backend = txn.get_database_backend();
    Version::find_by_statement(backend.build(&query))
        .all(txn)
        .await
}

/// The projection facts of every activity of `leads`, as stored now.
pub(super) async fn lead_facts<C: ConnectionTrait>(
    txn: &C,
    leads: &[String],
) -> Result<HashMap<String, Vec<LeadFacts>>, DbErr> {
    let mut facts: HashMap<String, Vec<LeadFacts>> =
        leads.iter().map(|l| (l.clone(), Vec::new())).collect();
    if !leads.is_empty() {
        let rows = activity::Entity::find()
            .filter(activity::Column::LeadId.is_in(leads.iter().map(String::as_str)))
            .into_partial_model::<LeadFacts>()
            .all(txn)
            .await?;
        for f in rows {
            facts.entry(f.lead_id.clone()).or_default().push(f);
        }
    }
    Ok(facts)
}

/// Serialise concurrent writers (other instances, other workers) per lead
/// on PostgreSQL: transaction-scoped advisory locks, taken in one order so
/// two batches never wait on each other in a cycle.
pub(super) async fn lock_leads<'a>(
    txn: &impl ConnectionTrait,
    lead_ids: impl Iterator<Item = &'a str>,
) -> Result<(), DbErr> {
    let keys: BTreeSet<i64> = lead_ids
        .map(|id| {
            let digest = Sha256::digest(id.as_bytes());
            i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
        })
        .collect();
    let keys: Vec<i64> = keys.into_iter().collect();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n)",
        [keys.into()],
    ))
    .await?;
    Ok(())
}
