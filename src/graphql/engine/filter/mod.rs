//! Filter inputs, and the one function that folds a filter tree into a
//! sea-orm [`Condition`]: [`condition`].
//!
//! Every list takes the same operator inputs (`StringFilter`,
//! `DateTimeFilter`, `IntFilter`, `BooleanFilter`), combined with `and`,
//! `or` and `not`. Root lists, nested connections and aggregates share the
//! filter types, so a filter means the same thing wherever it is used.

mod memory;

pub use memory::{all, any, Truth};

use crate::access::Role;
use crate::error::bad_input;
use crate::store::case;
use async_graphql::InputObject;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SelectStatement};
#[cfg(test)]
use sea_orm::EntityTrait;
use sea_orm::{Condition, DbBackend, IntoSimpleExpr};

/// How deep `and`/`or`/`not` may nest.
pub const MAX_FILTER_DEPTH: usize = 16;

/// Conditions on a text field. All given operators must hold.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct StringFilter {
    /// Equal to.
    pub eq: Option<String>,
    /// Not equal to (rows where the field is null do not match).
    pub ne: Option<String>,
    /// Equal to one of these.
    #[graphql(name = "in")]
    pub r#in: Option<Vec<String>>,
    /// Equal to none of these (rows where the field is null do not match).
    pub not_in: Option<Vec<String>>,
    /// Contains this text, ignoring case (each letter's Unicode lowercase).
    pub contains: Option<String>,
    /// Starts with this text, ignoring case (each letter's Unicode lowercase).
    pub starts_with: Option<String>,
    /// `true`: the field is null (absent from the payload); `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a time (RFC 3339; compared to the millisecond).
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct DateTimeFilter {
    /// Equal to.
    pub eq: Option<DateTime<Utc>>,
    /// Later than.
    pub gt: Option<DateTime<Utc>>,
    /// At or later than.
    pub gte: Option<DateTime<Utc>>,
    /// Earlier than.
    pub lt: Option<DateTime<Utc>>,
    /// At or earlier than.
    pub lte: Option<DateTime<Utc>>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a whole number.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct IntFilter {
    /// Equal to.
    pub eq: Option<i64>,
    /// Not equal to.
    pub ne: Option<i64>,
    /// Equal to one of these.
    #[graphql(name = "in")]
    pub r#in: Option<Vec<i64>>,
    /// Greater than.
    pub gt: Option<i64>,
    /// Greater than or equal to.
    pub gte: Option<i64>,
    /// Less than.
    pub lt: Option<i64>,
    /// Less than or equal to.
    pub lte: Option<i64>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// Conditions on a true/false field.
#[derive(InputObject, Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct BooleanFilter {
    /// Equal to.
    pub eq: Option<bool>,
    /// `true`: the field is null; `false`: it is set.
    pub is_null: Option<bool>,
}

/// What a filter is evaluated against: the database (how text compares),
/// and the moment of the request (what "due" means, for a callback).
#[derive(Clone, Copy, Debug)]
pub struct Against {
    pub backend: DbBackend,
    /// Now, epoch ms.
    pub now_ms: i64,
}

impl Against {
    /// What `reader`'s statements are evaluated against.
    pub fn of(reader: &crate::store::read::Reader) -> Against {
        Against {
            backend: reader.db().get_database_backend(),
            now_ms: reader.now_ms(),
        }
    }

    /// The moment, as a statement compares a column with it. On PostgreSQL
    /// it is a one-row subquery, `(SELECT $n)`: the planner then estimates
    /// the comparison without looking at the moment, which is new on every
    /// request, so after a statement's first runs its cached generic plan
    /// is used instead of a plan made again for each request. The plan is
    /// the same index scan either way; with the bare value a project's DUE
    /// callbacks page spent 0.55 ms planning and 0.4 ms running, with the
    /// subquery 0.01 ms and 0.17 ms (100,000 leads). SQLite prepares no
    /// such plans and takes the value.
    pub fn now(&self) -> Expr {
        match self.backend {
            DbBackend::Postgres => Expr::SubQuery(
                None,
                Box::new(
                    sea_orm::sea_query::Query::select()
                        .expr(Expr::val(self.now_ms))
                        .to_owned()
                        .into(),
                ),
            ),
            _ => Expr::val(self.now_ms),
        }
    }
}

/// What a filter level contributes besides `and` / `or` / `not`.
pub trait Filter: Sized {
    /// The conditions on this level's own fields.
    fn fields(&self, at: Against) -> Vec<Condition>;
    fn and(&self) -> &[Self];
    fn or(&self) -> &[Self];
    fn not(&self) -> Option<&Self>;
    /// The GraphQL name of a field over personal data this level uses, if
    /// any.
    fn personal(&self) -> Option<&'static str>;
}

/// Fold a filter tree into one condition: a level's fields and its `and`
/// list must all hold, one of `or` must hold (an empty `or` list adds
/// nothing), and `not` must not. Too deep a tree is refused, and so is a
/// field over personal data unless `role` reads it.
pub fn condition<F: Filter>(
    filter: &F,
    backend: DbBackend,
    role: Role,
) -> async_graphql::Result<Condition> {
    let now_ms = crate::store::now_ms();
    condition_at(filter, Against { backend, now_ms }, role)
}

/// [`condition`] at a given moment.
pub fn condition_at<F: Filter>(
    filter: &F,
    at: Against,
    role: Role,
) -> async_graphql::Result<Condition> {
    fold(filter, at, role, 0)
}

fn fold<F: Filter>(
    filter: &F,
    at: Against,
    role: Role,
    depth: usize,
) -> async_graphql::Result<Condition> {
    if depth >= MAX_FILTER_DEPTH {
        return Err(bad_input(format!(
            "the filter nests and/or/not deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    if !role.reads_personal_data() {
        if let Some(field) = filter.personal() {
            return Err(crate::access::forbidden(&format!("filtering on `{field}`")));
        }
    }
    let mut all = Condition::all();
    for c in filter.fields(at) {
        all = all.add(c);
    }
    for f in filter.and() {
        all = all.add(fold(f, at, role, depth + 1)?);
    }
    if !filter.or().is_empty() {
        let mut any = Condition::any();
        for f in filter.or() {
            any = any.add(fold(f, at, role, depth + 1)?);
        }
        all = all.add(any);
    }
    if let Some(f) = filter.not() {
        all = all.add(fold(f, at, role, depth + 1)?.not());
    }
    Ok(all)
}

/// Whether `level` holds for `filter` and for every filter in its `and`,
/// `or` and `not`, at any depth (e.g. "uses only these fields").
pub fn every_level<F: Filter>(filter: &F, level: &impl Fn(&F) -> bool) -> bool {
    level(filter)
        && filter.and().iter().all(|f| every_level(f, level))
        && filter.or().iter().all(|f| every_level(f, level))
        && filter.not().is_none_or(|f| every_level(f, level))
}

/// An optional filter of `reader`'s request, folded; no filter is no
/// condition.
pub fn condition_of<F: Filter>(
    filter: Option<&F>,
    reader: &crate::store::read::Reader,
) -> async_graphql::Result<Condition> {
    match filter {
        Some(f) => condition_at(f, Against::of(reader), reader.role()),
        None => Ok(Condition::all()),
    }
}

fn is_null(col: Expr, null: bool) -> Expr {
    if null {
        col.is_null()
    } else {
        col.is_not_null()
    }
}

/// `%text%`-style pattern with LIKE's wildcards escaped by a backslash
/// (PostgreSQL's default escape; SQLite is told with ESCAPE in [`like`]).
pub(crate) fn like_pattern(prefix: &str, text: &str, suffix: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    format!("{prefix}{escaped}{suffix}")
}

/// Whether a LIKE pattern holds three letters or digits in a row, which a
/// trigram index can look up (wildcards and escapes break a run, as they
/// break pg_trgm's words).
fn has_trigram(pattern: &str) -> bool {
    let mut run = 0;
    for ch in pattern.chars() {
        run = if ch.is_alphanumeric() { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

/// Text ignoring case, as the database compares it (see
/// [`crate::store::case`]): `lower()` on PostgreSQL, `leadql_lower()` on
/// SQLite, whose own `lower()` folds ASCII only.
pub(crate) fn folded(col: Expr, backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Func::lower(col).into(),
        _ => Func::cust(case::SQLITE_FUNCTION).arg(col).into(),
    }
}

/// Case-insensitive LIKE with leadql's case rule: ILIKE on PostgreSQL
/// (its trigram indexes serve it); on SQLite the folded column against
/// the folded pattern.
///
/// On PostgreSQL a pattern without three letters or digits in a row has
/// no trigram, and a trigram index would be read whole for it (100,000
/// entries and then every row, 63-67 ms where reading the table takes 46
/// ms, for `%an%` at 100,000 leads). The pattern is a bound value, so once
/// PostgreSQL plans the statement generically it cannot tell; such a
/// pattern is compared against `col || ''` instead, which no index
/// matches, in a statement of its own.
pub(crate) fn like(col: Expr, pattern: String, backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => {
            // sea-query parenthesises `pattern ESCAPE c` after ILIKE, which
            // PostgreSQL rejects; backslash is its default escape anyway.
            use sea_orm::sea_query::extension::postgres::PgExpr;
            let col = if has_trigram(&pattern) {
                col
            } else {
                Expr::cust_with_expr("$1 || ''", col)
            };
            col.ilike(LikeExpr::new(pattern))
        }
        _ => folded(col, backend).like(LikeExpr::new(case::fold(&pattern)).escape('\\')),
    }
}

/// `EXISTS (rows)`: a question a walk asks of each row it passes (see
/// `page::Reading`). On PostgreSQL the subquery ends in `OFFSET 0`, which
/// keeps the planner from turning it into a join: as a join, the plan it
/// kept for the server's prepared statement read every match, of every
/// project, and sorted them (1.1 s at 100,000 leads for a variable value
/// 97,069 activities have), where asking each row the walk passes stops
/// after a page.
pub(crate) fn asked_of_each(mut rows: SelectStatement, backend: DbBackend) -> Expr {
    if backend == DbBackend::Postgres {
        rows.offset(0);
    }
    Expr::exists(rows)
}

/// A text column; `fold_case` compares `eq`/`ne`/`in`/`notIn` ignoring case
/// too (used for dispositions, which platforms spell inconsistently).
pub fn string(
    col: impl IntoSimpleExpr,
    f: &StringFilter,
    fold_case: bool,
    backend: DbBackend,
) -> Condition {
    let col = col.into_simple_expr();
    let (lhs, norm): (Expr, fn(&str) -> Expr) = if fold_case {
        (folded(col.clone(), backend), |v| Expr::val(case::fold(v)))
    } else {
        (col.clone(), |v| Expr::val(v.to_string()))
    };
    let mut c = Condition::all();
    if let Some(v) = &f.eq {
        c = c.add(lhs.clone().eq(norm(v)));
    }
    if let Some(v) = &f.ne {
        c = c.add(lhs.clone().ne(norm(v)));
    }
    if let Some(vs) = &f.r#in {
        c = c.add(lhs.clone().is_in(vs.iter().map(|v| norm(v))));
    }
    if let Some(vs) = &f.not_in {
        c = c.add(lhs.clone().is_not_in(vs.iter().map(|v| norm(v))));
        c = c.add(col.clone().is_not_null());
    }
    if let Some(v) = &f.contains {
        c = c.add(like(col.clone(), like_pattern("%", v, "%"), backend));
    }
    if let Some(v) = &f.starts_with {
        c = c.add(like(col.clone(), like_pattern("", v, "%"), backend));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

/// A time column stored as epoch milliseconds.
pub fn datetime(col: impl IntoSimpleExpr, f: &DateTimeFilter) -> Condition {
    let col = col.into_simple_expr();
    let ms = |t: &DateTime<Utc>| t.timestamp_millis();
    let mut c = Condition::all();
    if let Some(t) = &f.eq {
        c = c.add(col.clone().eq(ms(t)));
    }
    if let Some(t) = &f.gt {
        c = c.add(col.clone().gt(ms(t)));
    }
    if let Some(t) = &f.gte {
        c = c.add(col.clone().gte(ms(t)));
    }
    if let Some(t) = &f.lt {
        c = c.add(col.clone().lt(ms(t)));
    }
    if let Some(t) = &f.lte {
        c = c.add(col.clone().lte(ms(t)));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

pub fn int(col: impl IntoSimpleExpr, f: &IntFilter) -> Condition {
    let col = col.into_simple_expr();
    let mut c = Condition::all();
    if let Some(v) = f.eq {
        c = c.add(col.clone().eq(v));
    }
    if let Some(v) = f.ne {
        c = c.add(col.clone().ne(v));
    }
    if let Some(vs) = &f.r#in {
        c = c.add(col.clone().is_in(vs.iter().copied()));
    }
    if let Some(v) = f.gt {
        c = c.add(col.clone().gt(v));
    }
    if let Some(v) = f.gte {
        c = c.add(col.clone().gte(v));
    }
    if let Some(v) = f.lt {
        c = c.add(col.clone().lt(v));
    }
    if let Some(v) = f.lte {
        c = c.add(col.clone().lte(v));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

pub fn boolean(col: impl IntoSimpleExpr, f: &BooleanFilter) -> Condition {
    let col = col.into_simple_expr();
    let mut c = Condition::all();
    if let Some(v) = f.eq {
        c = c.add(col.clone().eq(v));
    }
    if let Some(null) = f.is_null {
        c = c.add(is_null(col, null));
    }
    c
}

/// Render a condition on `E` as the WHERE clause text (for tests and logs).
#[cfg(test)]
pub(crate) fn render<E: EntityTrait + Default>(cond: Condition, backend: DbBackend) -> String {
    use sea_orm::{QueryFilter, QueryTrait};
    let sql = E::find().filter(cond).build(backend).to_string();
    sql.split_once(" WHERE ")
        .map(|(_, w)| w.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
