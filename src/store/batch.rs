//! Storing a batch of deliveries in one transaction (group commit).
//!
//! The ingest pipeline hands concurrent deliveries here together; they are
//! decided in arrival order (duplicate, stale or stored), written with
//! multi-row statements and committed once, and only then answered. Lead
//! rows are recomputed from their activities, so the result does not depend
//! on delivery order; disposition events record each change of a lead's
//! disposition as this batch saw it.

use super::projection::{project_lead, LeadFacts};
use crate::ingest::payload::{ActivityRows, Delivery, Kind, Projection};
use entity::{
    activity, analysis, conversation, delivery, disposition_event, lead, lead_update, message,
    tool_call, variable,
};
use sea_orm::sea_query::{
    Expr, ExprTrait, MysqlQueryBuilder, OnConflict, PostgresQueryBuilder, Query,
    QueryStatementWriter, SqliteQueryBuilder, UnionType,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    IdenStatic, IntoActiveModel, Iterable, NotSet, QueryFilter, QueryTrait, Statement,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What happened to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// New, or a newer version of an activity: it is now the current data.
    Stored,
    /// The same body was stored before.
    Duplicate,
    /// An older version of something already stored: logged, not applied.
    Stale,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stored => "stored",
            Status::Duplicate => "duplicate",
            Status::Stale => "stale",
        }
    }
}

/// The outcome of one batch: a status per delivery, in order, and the
/// disposition events it recorded (with their ids), to publish after commit.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub statuses: Vec<Status>,
    pub events: Vec<disposition_event::Model>,
}

/// Most rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 500;

/// A logged body (`kind` "h"), or the current version of an activity ("a")
/// or update ("u").
#[derive(FromQueryResult)]
struct Version {
    kind: String,
    id: String,
    lead_id: String,
    timestamp: i64,
    version_hash: String,
}

/// How a batch is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// New deliveries: log them, detect duplicates, record disposition events.
    Live,
    /// Deliveries replayed from the log by `reproject`: projections only.
    Replay,
}

/// Store `deliveries` inside the caller's transaction.
///
/// Round trips are what a batch costs (each is a thread hop for SQLite and
/// a network hop for PostgreSQL), so it reads in two queries and writes
/// every row in one script of multi-row statements built by sea-query.
#[tracing::instrument(skip_all, fields(deliveries = deliveries.len()))]
pub async fn apply_batch<C: ConnectionTrait>(
    txn: &C,
    deliveries: &[&Delivery],
    received_at: i64,
    mode: Mode,
) -> Result<BatchResult, DbErr> {
    let live = mode == Mode::Live;
    if deliveries.is_empty() {
        return Ok(BatchResult::default());
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        lock_leads(txn, deliveries.iter().map(|d| d.lead_id.as_str())).await?;
    }
    let mut stored = Stored::read(txn, deliveries, live).await?;
    let decided = decide(deliveries, &mut stored);
    let affected = affected_leads(deliveries, &decided.statuses, &stored);
    let mut facts = lead_facts(txn, &affected).await?;
    let applied = apply_in_order(
        deliveries,
        &decided.statuses,
        &stored,
        &mut facts,
        live,
        received_at,
    );

    let mut script = Script::new(txn.get_database_backend());
    if live {
        log_deliveries(&mut script, deliveries, &decided, &stored, received_at);
    }
    write_activities(&mut script, &applied, &stored);
    write_updates(&mut script, &applied);
    write_leads(&mut script, &affected, &facts);
    script.execute(txn).await?;
    let events = insert_events(txn, applied.events).await?;
    Ok(BatchResult {
        statuses: decided.statuses,
        events,
    })
}

/// What is stored already of a batch's bodies, activities and updates.
struct Stored {
    /// Bodies logged before this batch.
    logged: HashSet<String>,
    /// Current version (timestamp, body hash) of each activity and update.
    activities: HashMap<String, (i64, String)>,
    updates: HashMap<String, (i64, String)>,
    /// The lead each stored activity belongs to now.
    lead_of: HashMap<String, String>,
}

impl Stored {
    async fn read<C: ConnectionTrait>(
        txn: &C,
        deliveries: &[&Delivery],
        live: bool,
    ) -> Result<Stored, DbErr> {
        let mut stored = Stored {
            logged: HashSet::new(),
            activities: HashMap::new(),
            updates: HashMap::new(),
            lead_of: HashMap::new(),
        };
        for v in stored_state(txn, deliveries, live).await? {
            match v.kind.as_str() {
                "h" => {
                    stored.logged.insert(v.id);
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
}

/// Each delivery's status, and how often each body repeated.
struct Decided<'a> {
    statuses: Vec<Status>,
    duplicates: HashMap<&'a str, i32>,
}

/// Decide each delivery in arrival order: a body seen before is a
/// duplicate; a version not newer than the current one is stale; else it
/// becomes the current version.
fn decide<'a>(deliveries: &[&'a Delivery], stored: &mut Stored) -> Decided<'a> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut statuses = Vec::with_capacity(deliveries.len());
    let mut duplicates: HashMap<&'a str, i32> = HashMap::new();
    for d in deliveries {
        let hash = d.body_hash.as_str();
        let status = if stored.logged.contains(hash) || !seen.insert(hash) {
            *duplicates.entry(hash).or_default() += 1;
            Status::Duplicate
        } else {
            let versions = match d.kind {
                Kind::Activity => &mut stored.activities,
                Kind::Update => &mut stored.updates,
            };
            let candidate = (d.timestamp, d.body_hash.clone());
            match versions.get(&d.source_id) {
                Some(current) if *current >= candidate => Status::Stale,
                _ => {
                    versions.insert(d.source_id.clone(), candidate);
                    Status::Stored
                }
            }
        };
        statuses.push(status);
    }
    Decided {
        statuses,
        duplicates,
    }
}

/// The leads a batch changes: those of its stored deliveries, and the
/// previous leads of activities that moved.
fn affected_leads(deliveries: &[&Delivery], statuses: &[Status], stored: &Stored) -> Vec<String> {
    let mut affected: BTreeSet<String> = BTreeSet::new();
    for (d, status) in deliveries.iter().zip(statuses) {
        if *status == Status::Stored {
            affected.insert(d.lead_id.clone());
            if let Some(previous) = stored.lead_of.get(&d.source_id) {
                affected.insert(previous.clone());
            }
        }
    }
    affected.into_iter().collect()
}

/// The projection facts of every activity of `leads`, as stored now.
async fn lead_facts<C: ConnectionTrait>(
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

/// What the stored deliveries of a batch write: the winning version of
/// each activity and update, and the disposition changes they cause.
struct Applied<'a> {
    activities: Vec<&'a ActivityRows>,
    updates: Vec<&'a lead_update::Model>,
    events: Vec<disposition_event::Model>,
}

/// Apply the stored deliveries to the leads' facts in arrival order,
/// noting each change of a lead's disposition (live batches only).
fn apply_in_order<'a>(
    deliveries: &[&'a Delivery],
    statuses: &[Status],
    stored: &Stored,
    facts: &mut HashMap<String, Vec<LeadFacts>>,
    live: bool,
    received_at: i64,
) -> Applied<'a> {
    // A lead row is a function of its activities, so its stored
    // disposition is the projection of what is stored now.
    let mut dispositions: HashMap<String, Option<String>> = facts
        .iter()
        .map(|(id, list)| (id.clone(), project_lead(id, list).disposition))
        .collect();
    let mut activities: HashMap<&str, &ActivityRows> = HashMap::new();
    let mut updates: HashMap<&str, &lead_update::Model> = HashMap::new();
    let mut events = Vec::new();
    for (d, status) in deliveries.iter().zip(statuses) {
        if *status != Status::Stored {
            continue;
        }
        let rows = match &d.projection {
            Projection::Update(update) => {
                updates.insert(d.source_id.as_str(), update);
                continue;
            }
            Projection::Activity(rows) => rows,
        };
        activities.insert(d.source_id.as_str(), rows);
        if let Some(previous) = stored.lead_of.get(&d.source_id) {
            if let Some(list) = facts.get_mut(previous) {
                list.retain(|f| f.id != d.source_id);
            }
        }
        let list = facts.entry(d.lead_id.clone()).or_default();
        list.retain(|f| f.id != d.source_id);
        list.push(LeadFacts::from(&rows.activity));
        if !live {
            continue;
        }
        let projected = project_lead(&d.lead_id, list);
        let previous = dispositions.get(&d.lead_id).cloned().flatten();
        if let Some(new) = &projected.disposition {
            if previous
                .as_ref()
                .is_none_or(|p| !p.eq_ignore_ascii_case(new))
            {
                events.push(disposition_event::Model {
                    id: 0,
                    lead_id: d.lead_id.clone(),
                    activity_id: d.source_id.clone(),
                    project_id: projected.project_id.clone(),
                    previous_disposition: previous,
                    disposition: new.clone(),
                    disposition_type: projected.disposition_type.clone(),
                    occurred_at: rows.activity.timestamp,
                    recorded_at: received_at,
                });
            }
        }
        dispositions.insert(d.lead_id.clone(), projected.disposition);
    }
    let mut activities: Vec<&ActivityRows> = activities.into_values().collect();
    activities.sort_unstable_by(|a, b| a.activity.id.cmp(&b.activity.id));
    let mut updates: Vec<&lead_update::Model> = updates.into_values().collect();
    updates.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Applied {
        activities,
        updates,
        events,
    }
}

/// The raw log: every non-duplicate body with its outcome, and the repeat
/// count of bodies logged by an earlier batch.
fn log_deliveries(
    script: &mut Script,
    deliveries: &[&Delivery],
    decided: &Decided,
    stored: &Stored,
    received_at: i64,
) {
    let mut repeats = decided.duplicates.clone();
    let mut log_rows = Vec::new();
    for (d, status) in deliveries.iter().zip(&decided.statuses) {
        if *status == Status::Duplicate {
            continue;
        }
        log_rows.push(delivery::ActiveModel {
            id: NotSet,
            ..delivery::Model {
                id: 0,
                body_hash: d.body_hash.clone(),
                kind: d.kind.as_str().to_string(),
                source_id: d.source_id.clone(),
                lead_id: d.lead_id.clone(),
                timestamp: d.timestamp,
                outcome: status.as_str().to_string(),
                body: d.body.clone(),
                received_at,
                duplicate_count: repeats.remove(d.body_hash.as_str()).unwrap_or(0),
            }
            .into_active_model()
        });
    }
    script.insert::<delivery::Entity, _>(
        log_rows,
        Some(
            OnConflict::column(delivery::Column::BodyHash)
                .do_nothing()
                .to_owned(),
        ),
    );
    for (hash, count) in repeats {
        if stored.logged.contains(hash) {
            script.push(
                delivery::Entity::update_many()
                    .col_expr(
                        delivery::Column::DuplicateCount,
                        Expr::col(delivery::Column::DuplicateCount).add(count),
                    )
                    .filter(delivery::Column::BodyHash.eq(hash))
                    .into_query(),
            );
        }
    }
}

/// Each winning activity with its parts; the parts of an older version
/// are replaced.
fn write_activities(script: &mut Script, applied: &Applied, stored: &Stored) {
    let replaced: Vec<&str> = applied
        .activities
        .iter()
        .map(|r| r.activity.id.as_str())
        .filter(|id| stored.lead_of.contains_key(*id))
        .collect();
    if !replaced.is_empty() {
        script.delete_parts::<message::Entity>(message::Column::ActivityId, &replaced);
        script.delete_parts::<tool_call::Entity>(tool_call::Column::ActivityId, &replaced);
        script.delete_parts::<variable::Entity>(variable::Column::ActivityId, &replaced);
        script.delete_parts::<analysis::Entity>(analysis::Column::ActivityId, &replaced);
        script.delete_parts::<conversation::Entity>(conversation::Column::ActivityId, &replaced);
    }
    let winners = &applied.activities;
    script.insert::<activity::Entity, _>(
        winners
            .iter()
            .map(|r| r.activity.clone().into_active_model())
            .collect(),
        Some(upsert::<activity::Entity>(activity::Column::Id)),
    );
    script.insert::<conversation::Entity, _>(
        winners
            .iter()
            .filter_map(|r| r.conversation.clone())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        None,
    );
    script.insert::<message::Entity, _>(
        winners
            .iter()
            .flat_map(|r| r.messages.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        None,
    );
    script.insert::<tool_call::Entity, _>(
        winners
            .iter()
            .flat_map(|r| r.tool_calls.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        None,
    );
    script.insert::<analysis::Entity, _>(
        winners
            .iter()
            .filter_map(|r| r.analysis.clone())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        None,
    );
    script.insert::<variable::Entity, _>(
        winners
            .iter()
            .flat_map(|r| r.variables.iter().cloned())
            .map(IntoActiveModel::into_active_model)
            .collect(),
        None,
    );
}

/// Each winning update result.
fn write_updates(script: &mut Script, applied: &Applied) {
    script.insert::<lead_update::Entity, _>(
        applied
            .updates
            .iter()
            .map(|u| (*u).clone().into_active_model())
            .collect(),
        Some(upsert::<lead_update::Entity>(lead_update::Column::Id)),
    );
}

/// The changed leads, recomputed from their activities.
fn write_leads(script: &mut Script, affected: &[String], facts: &HashMap<String, Vec<LeadFacts>>) {
    let leads: Vec<lead::ActiveModel> = affected
        .iter()
        .map(|id| {
            project_lead(id, facts.get(id).map(Vec::as_slice).unwrap_or_default())
                .into_active_model()
        })
        .collect();
    script.insert::<lead::Entity, _>(leads, Some(upsert::<lead::Entity>(lead::Column::Id)));
}

/// Insert the disposition events, with their ids (the subscription
/// cursor).
async fn insert_events<C: ConnectionTrait>(
    txn: &C,
    events: Vec<disposition_event::Model>,
) -> Result<Vec<disposition_event::Model>, DbErr> {
    if events.is_empty() {
        return Ok(events);
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        // Events take their ids one transaction at a time, held to
        // commit, so ids follow commit order across writers and
        // instances: a subscriber that has seen id N has seen every
        // event below N. Nothing is waited for after this lock.
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(1818584177, 1)")
            .await?;
    }
    let rows: Vec<disposition_event::ActiveModel> = events
        .into_iter()
        .map(|e| disposition_event::ActiveModel {
            id: NotSet,
            ..e.into_active_model()
        })
        .collect();
    disposition_event::Entity::insert_many(rows)
        .exec_with_returning(txn)
        .await
}

/// In one query: which of the batch's bodies are already logged (`kind`
/// "h", live batches only), and the current versions of its activities
/// ("a") and updates ("u").
async fn stored_state<C: ConnectionTrait>(
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
    let version_query = |kind: &str, table: &'static str, ids: Vec<sea_orm::Value>| {
        Query::select()
            .expr_as(Expr::val(kind), "kind")
            .columns(["id", "lead_id", "timestamp", "version_hash"])
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
                .from("deliveries")
                .and_where(Expr::col("body_hash").is_in(hashes))
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

/// `ON CONFLICT (key) DO UPDATE SET` every other column.
fn upsert<E: EntityTrait>(key: E::Column) -> OnConflict {
    let others: Vec<E::Column> = E::Column::iter()
        .filter(|c| c.as_str() != key.as_str())
        .collect();
    OnConflict::column(key).update_columns(others).to_owned()
}

/// Write statements rendered with their values inline (escaped by
/// sea-query) and sent together in one round trip.
struct Script {
    backend: DbBackend,
    sql: String,
}

impl Script {
    fn new(backend: DbBackend) -> Self {
        Script {
            backend,
            sql: String::new(),
        }
    }

    fn push(&mut self, statement: impl QueryStatementWriter) {
        let sql = match self.backend {
            DbBackend::Postgres => statement.to_string(PostgresQueryBuilder),
            DbBackend::Sqlite => statement.to_string(SqliteQueryBuilder),
            _ => statement.to_string(MysqlQueryBuilder),
        };
        self.sql.push_str(&sql);
        self.sql.push_str(";\n");
    }

    /// Delete the rows of `E` that belong to the given activities.
    fn delete_parts<E: EntityTrait>(&mut self, activity_id: E::Column, activities: &[&str]) {
        self.push(
            E::delete_many()
                .filter(activity_id.is_in(activities.iter().copied()))
                .into_query(),
        );
    }

    /// Multi-row inserts of `rows`, `ROWS_PER_INSERT` at a time.
    fn insert<E, A>(&mut self, rows: Vec<A>, on_conflict: Option<OnConflict>)
    where
        E: EntityTrait<ActiveModel = A>,
        A: ActiveModelTrait<Entity = E> + Send,
    {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
            let mut insert = E::insert_many(chunk);
            if let Some(on_conflict) = &on_conflict {
                insert = insert.on_conflict(on_conflict.clone());
            }
            self.push(insert.into_query());
        }
    }

    async fn execute(self, txn: &impl ConnectionTrait) -> Result<(), DbErr> {
        if !self.sql.is_empty() {
            txn.execute_unprepared(&self.sql).await?;
        }
        Ok(())
    }
}

/// Serialise concurrent writers (other instances, other workers) per lead
/// on PostgreSQL: transaction-scoped advisory locks, taken in one order so
/// two batches never wait on each other in a cycle.
async fn lock_leads<'a>(
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
