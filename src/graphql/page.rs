//! Relay connections over keyset pagination.
//!
//! A list is ordered by the fields the caller asks for, then by the table's
//! unique key, so the order is total and a cursor (the sort key of a row)
//! pins a position exactly: pages never skip or repeat, and page 1,000 costs
//! what page 1 costs (an index range, no OFFSET). NULL sorts as the smallest
//! value on both databases (first ascending, last descending).

use async_graphql::{Error, ErrorExtensions, SimpleObject};
use base64::Engine;
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Func, NullOrdering, Order, Query, SelectStatement,
    WindowStatement,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde_json::Value;
use std::collections::HashMap;

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE: u64 = 50;
/// The most rows one page may hold.
pub const MAX_PAGE: u64 = 500;

/// One column of a sort key.
pub struct KeyPart<E: EntityTrait> {
    /// The GraphQL name of the field, for cursors and error messages.
    pub name: &'static str,
    pub col: E::Column,
    pub desc: bool,
    pub nullable: bool,
    pub get: fn(&E::Model) -> Value,
}

impl<E: EntityTrait> Clone for KeyPart<E> {
    fn clone(&self) -> Self {
        KeyPart {
            name: self.name,
            col: self.col,
            desc: self.desc,
            nullable: self.nullable,
            get: self.get,
        }
    }
}

/// A total order: the requested fields, then the table's unique key.
pub struct SortKey<E: EntityTrait> {
    pub parts: Vec<KeyPart<E>>,
}

impl<E: EntityTrait> Clone for SortKey<E> {
    fn clone(&self) -> Self {
        SortKey {
            parts: self.parts.clone(),
        }
    }
}

impl<E: EntityTrait> SortKey<E> {
    /// `requested` (field parts), then every part of `unique` not already
    /// there, in the direction of the last requested part.
    pub fn new(requested: Vec<KeyPart<E>>, unique: Vec<KeyPart<E>>) -> Self {
        let desc = requested.last().map(|p| p.desc).unwrap_or(false);
        let mut parts = requested;
        for mut u in unique {
            if !parts.iter().any(|p| p.name == u.name) {
                u.desc = desc;
                parts.push(u);
            }
        }
        SortKey { parts }
    }

    /// Identifies the order a cursor was made for.
    fn signature(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("{}{}", if p.desc { "-" } else { "+" }, p.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The cursor of `model`: its sort key and the order's `signature`
    /// (worked out once per page), as base64 JSON.
    fn cursor(&self, signature: &str, model: &E::Model) -> String {
        #[derive(serde::Serialize)]
        struct Cursor<'a> {
            k: Vec<Value>,
            o: &'a str,
        }
        let json = serde_json::to_vec(&Cursor {
            k: self.parts.iter().map(|p| (p.get)(model)).collect(),
            o: signature,
        })
        .unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(&self, cursor: &str, arg: &str) -> async_graphql::Result<Vec<Value>> {
        let invalid = |why: &str| {
            user_error(format!(
                "`{arg}` is not a cursor this list gave out ({why}); use an edge's `cursor` or `pageInfo.endCursor`"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor.trim_end_matches('='))
            .map_err(|_| invalid("not base64"))?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))?;
        if json.get("o").and_then(Value::as_str) != Some(self.signature().as_str()) {
            return Err(user_error(format!(
                "`{arg}` was made for a different orderBy; cursors are only valid with the orderBy that produced them"
            )));
        }
        let values = json
            .get("k")
            .and_then(Value::as_array)
            .filter(|k| k.len() == self.parts.len())
            .ok_or_else(|| invalid("wrong length"))?;
        for (value, part) in values.iter().zip(&self.parts) {
            let fits = match value {
                Value::Null => part.nullable,
                Value::String(_) | Value::Bool(_) => true,
                Value::Number(n) => n.is_i64(),
                _ => false,
            };
            if !fits {
                return Err(invalid("bad value"));
            }
        }
        Ok(values.clone())
    }

    /// Rows strictly after `values` in this order (`reverse`: strictly
    /// before), as one condition.
    fn beyond(&self, values: &[Value], reverse: bool) -> Condition {
        match self.segments(values, reverse) {
            Some(segments) if segments.is_empty() => nothing(),
            Some(segments) => segments
                .into_iter()
                .fold(Condition::any(), |any, segment| any.add(segment)),
            None => self.beyond_general(values, reverse),
        }
    }

    /// Rows strictly after `values` (`reverse`: strictly before) as
    /// segments in reading order, each one index range: a row-value
    /// comparison on the non-null values, and the NULLs of the first part
    /// as a segment of their own. An `OR` of the two would make an index
    /// read and drop every row it skips on the way to the cursor.
    ///
    /// None when the key has no such form (parts in mixed directions, or
    /// a nullable part after the first): see [`SortKey::beyond_general`].
    fn segments(&self, values: &[Value], reverse: bool) -> Option<Vec<Condition>> {
        let desc = self.parts[0].desc != reverse;
        let simple = self.parts.iter().all(|p| (p.desc != reverse) == desc)
            && self.parts[1..].iter().all(|p| !p.nullable)
            && values[1..].iter().all(|v| !Value::is_null(v));
        if !simple {
            return None;
        }
        // Strictly after `vals` on `parts`, all in direction `desc`.
        let tuple_beyond = |parts: &[KeyPart<E>], vals: &[Value]| {
            let cols = Expr::tuple(parts.iter().map(|p| p.col.into_expr()));
            let vals = Expr::tuple(vals.iter().map(|v| Expr::val(sql_value(v))));
            Condition::all().add(if desc { cols.lt(vals) } else { cols.gt(vals) })
        };
        let first = &self.parts[0];
        let mut segments = Vec::new();
        if Value::is_null(&values[0]) {
            // The rest of the NULLs, then (ascending) every non-null row:
            // NULL is the smallest value.
            if self.parts.len() > 1 {
                segments
                    .push(tuple_beyond(&self.parts[1..], &values[1..]).add(first.col.is_null()));
            }
            if !desc {
                segments.push(Condition::all().add(first.col.is_not_null()));
            }
        } else {
            segments.push(tuple_beyond(&self.parts, values));
            if desc && first.nullable {
                segments.push(Condition::all().add(first.col.is_null()));
            }
        }
        Some(segments)
    }

    /// `(a after) OR (a = and b after) OR …`, for any key.
    fn beyond_general(&self, values: &[Value], reverse: bool) -> Condition {
        let parts: Vec<(&KeyPart<E>, &Value, bool)> = self
            .parts
            .iter()
            .zip(values)
            .map(|(p, v)| (p, v, p.desc != reverse))
            .collect();
        let mut any = Condition::any();
        for i in 0..parts.len() {
            let mut all = Condition::all();
            for (p, v, _) in &parts[..i] {
                all = all.add(if v.is_null() {
                    p.col.is_null()
                } else {
                    p.col.eq(sql_value(v))
                });
            }
            let (p, v, desc) = parts[i];
            let after = match (desc, v.is_null()) {
                (false, false) => Condition::all().add(p.col.gt(sql_value(v))),
                (false, true) => Condition::all().add(p.col.is_not_null()),
                (true, false) if p.nullable => Condition::any()
                    .add(p.col.lt(sql_value(v)))
                    .add(p.col.is_null()),
                (true, false) => Condition::all().add(p.col.lt(sql_value(v))),
                (true, true) => continue,
            };
            any = any.add(all.add(after));
        }
        if any.is_empty() {
            nothing()
        } else {
            any
        }
    }

    /// Each part's direction, and where NULL goes when the database needs
    /// telling: NULL is the smallest value, SQLite's own order; PostgreSQL
    /// puts it last ascending unless told.
    fn directions(
        &self,
        reverse: bool,
        backend: DbBackend,
    ) -> impl Iterator<Item = (&KeyPart<E>, Order, Option<NullOrdering>)> {
        self.parts.iter().map(move |p| {
            let desc = p.desc != reverse;
            let order = if desc { Order::Desc } else { Order::Asc };
            let nulls = (p.nullable && backend == DbBackend::Postgres).then_some(if desc {
                NullOrdering::Last
            } else {
                NullOrdering::First
            });
            (p, order, nulls)
        })
    }

    fn order<Q: QueryOrder>(&self, mut query: Q, reverse: bool, backend: DbBackend) -> Q {
        for (p, order, nulls) in self.directions(reverse, backend) {
            query = match nulls {
                Some(nulls) => query.order_by_with_nulls(p.col, order, nulls),
                None => query.order_by(p.col, order),
            };
        }
        query
    }

    fn window_order(
        &self,
        mut window: WindowStatement,
        reverse: bool,
        backend: DbBackend,
    ) -> WindowStatement {
        for (p, order, nulls) in self.directions(reverse, backend) {
            match nulls {
                Some(nulls) => window.order_by_expr_with_nulls(p.col.into_expr(), order, nulls),
                None => window.order_by_expr(p.col.into_expr(), order),
            };
        }
        window
    }
}

/// A condition no row meets (nothing comes after the last NULL of a
/// descending order).
fn nothing() -> Condition {
    Condition::all().add(Expr::val(1).eq(0))
}

fn sql_value(v: &Value) -> sea_orm::Value {
    match v {
        Value::String(s) => s.clone().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => n.as_i64().unwrap_or_default().into(),
        _ => Option::<String>::None.into(),
    }
}

/// A client mistake, with `extensions.code = "BAD_USER_INPUT"`.
pub fn user_error(message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", "BAD_USER_INPUT"))
}

/// `first/after/last/before` as the caller gave them.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// Which rows a page holds: after/before bounds and a count from one end.
pub struct Window {
    after: Option<Vec<Value>>,
    before: Option<Vec<Value>>,
    limit: u64,
    /// Counting from the end (`last`): read in reverse, then flip.
    from_end: bool,
}

impl PageArgs {
    pub fn window<E: EntityTrait>(&self, key: &SortKey<E>) -> async_graphql::Result<Window> {
        let check = |n: i32, arg: &str| -> async_graphql::Result<u64> {
            if n < 0 {
                Err(user_error(format!(
                    "`{arg}` must not be negative (got {n})"
                )))
            } else if n as u64 > MAX_PAGE {
                Err(user_error(format!(
                    "`{arg}` may be at most {MAX_PAGE} (got {n}); fetch further pages with `after`/`before`"
                )))
            } else {
                Ok(n as u64)
            }
        };
        let (limit, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(user_error(
                    "give `first` or `last`, not both: `first` pages forward from `after`, `last` backward from `before`",
                ))
            }
            (Some(n), None) => (check(n, "first")?, false),
            (None, Some(n)) => (check(n, "last")?, true),
            (None, None) => (DEFAULT_PAGE, self.before.is_some() && self.after.is_none()),
        };
        Ok(Window {
            after: self
                .after
                .as_deref()
                .map(|c| key.decode(c, "after"))
                .transpose()?,
            before: self
                .before
                .as_deref()
                .map(|c| key.decode(c, "before"))
                .transpose()?,
            limit,
            from_end,
        })
    }
}

/// One page of rows, each with its cursor.
#[derive(Clone)]
pub struct Page<M> {
    pub rows: Vec<(String, M)>,
    pub info: PageInfo,
}

/// Where a page sits in its list.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    /// More rows follow the last edge of this page.
    pub has_next_page: bool,
    /// Rows precede the first edge of this page.
    pub has_previous_page: bool,
    /// The cursor of the first edge (null on an empty page).
    pub start_cursor: Option<String>,
    /// The cursor of the last edge; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

impl Window {
    fn bounds<E: EntityTrait>(&self, key: &SortKey<E>) -> Condition {
        let mut cond = Condition::all();
        if let Some(after) = &self.after {
            cond = cond.add(key.beyond(after, false));
        }
        if let Some(before) = &self.before {
            cond = cond.add(key.beyond(before, true));
        }
        cond
    }

    /// The rows of the page's side of its cursor as segments in reading
    /// order (see [`SortKey::segments`]); None when the page needs one
    /// condition (both cursors, a cursor on the side it is not read from,
    /// or a key without segments).
    fn segments<E: EntityTrait>(&self, key: &SortKey<E>) -> Option<Vec<Condition>> {
        match (&self.after, &self.before, self.from_end) {
            (None, None, _) => Some(vec![Condition::all()]),
            (Some(after), None, false) => key.segments(after, false),
            (None, Some(before), true) => key.segments(before, true),
            _ => None,
        }
    }

    fn finish<E: EntityTrait>(
        &self,
        key: &SortKey<E>,
        mut models: Vec<E::Model>,
    ) -> Page<E::Model> {
        let more = models.len() as u64 > self.limit;
        models.truncate(self.limit as usize);
        if self.from_end {
            models.reverse();
        }
        let signature = key.signature();
        let rows: Vec<(String, E::Model)> = models
            .into_iter()
            .map(|m| (key.cursor(&signature, &m), m))
            .collect();
        let (has_next_page, has_previous_page) = if self.from_end {
            (self.before.is_some(), more)
        } else {
            (more, self.after.is_some())
        };
        let info = PageInfo {
            has_next_page,
            has_previous_page,
            start_cursor: rows.first().map(|(c, _)| c.clone()),
            end_cursor: rows.last().map(|(c, _)| c.clone()),
        };
        Page { rows, info }
    }
}

/// One page of `select` (already filtered) in `key` order.
pub async fn page<E, C>(
    db: &C,
    select: Select<E>,
    key: &SortKey<E>,
    window: &Window,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    if window.limit == 0 {
        return Ok(window.finish(key, Vec::new()));
    }
    let backend = db.get_database_backend();
    let wanted = window.limit + 1;
    let Some(segments) = window.segments(key) else {
        let select = key.order(select.filter(window.bounds(key)), window.from_end, backend);
        let models = select.limit(wanted).all(db).await?;
        return Ok(window.finish(key, models));
    };
    // Segment by segment, in reading order, until the page is full.
    let mut models = Vec::new();
    for segment in segments {
        let missing = wanted - models.len() as u64;
        if missing == 0 {
            break;
        }
        let select = key.order(select.clone().filter(segment), window.from_end, backend);
        models.extend(select.limit(missing).all(db).await?);
    }
    Ok(window.finish(key, models))
}

/// The same page for each of many parents at once (one statement): rows of
/// `select` whose `parent` column is in `parents`, numbered per parent with
/// ROW_NUMBER() and cut at the page size.
pub async fn pages_by_parent<E, C>(
    db: &C,
    select: Select<E>,
    parent: E::Column,
    parent_of: fn(&E::Model) -> &str,
    parents: &[String],
    key: &SortKey<E>,
    window: &Window,
) -> Result<HashMap<String, Page<E::Model>>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let mut by_parent: HashMap<String, Vec<E::Model>> = HashMap::new();
    if window.limit > 0 && parents.len() == 1 {
        // One parent (a lead's history): a plain ordered, limited read.
        let select = select.filter(parent.eq(parents[0].clone()));
        let found = page(db, select, key, window).await?;
        return Ok(HashMap::from([(parents[0].clone(), found)]));
    }
    if window.limit > 0 && !parents.is_empty() {
        let mut inner: SelectStatement = select
            .filter(parent.is_in(parents.iter().cloned()))
            .filter(window.bounds(key))
            .into_query();
        let mut over = WindowStatement::partition_by(parent);
        over = key.window_order(over, window.from_end, backend);
        inner.expr_window_as(Func::cust("ROW_NUMBER"), over, "page_row");
        let mut outer = Query::select();
        outer
            .column(Asterisk)
            .from_subquery(inner, Alias::new("numbered"))
            .and_where(Expr::col("page_row").lte(window.limit as i64 + 1))
            .order_by("page_row", Order::Asc);
        let models = E::find()
            .from_raw_sql(backend.build(&outer))
            .all(db)
            .await?;
        for m in models {
            by_parent
                .entry(parent_of(&m).to_string())
                .or_default()
                .push(m);
        }
    }
    Ok(parents
        .iter()
        .map(|p| {
            let models = by_parent.remove(p).unwrap_or_default();
            (p.clone(), window.finish(key, models))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::order::{lead_key, LeadOrderBy, LeadOrderField, OrderDirection};
    use super::*;
    use entity::lead;
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Schema};

    /// Leads with NULLs in the nullable sort columns, and ties.
    async fn leads() -> (sea_orm::DatabaseConnection, Vec<lead::Model>) {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let backend = db.get_database_backend();
        let table = Schema::new(backend).create_table_from_entity(lead::Entity);
        db.execute_raw(backend.build(&table)).await.unwrap();
        let mut all = Vec::new();
        for i in 0..41 {
            let m = lead::Model {
                id: format!("L{i:02}"),
                reference_id: None,
                project_id: None,
                process_id: None,
                name: (i % 4 != 0).then(|| format!("n{}", i % 7)),
                state: None,
                disposition: None,
                disposition_type: None,
                summary: None,
                last_activity_id: None,
                last_activity_at: (i % 5 != 0).then_some((i % 9) as i64),
                first_activity_at: None,
                activity_count: i % 3,
            };
            m.clone().into_active_model().insert(&db).await.unwrap();
            all.push(m);
        }
        (db, all)
    }

    fn ids(page: &Page<lead::Model>) -> Vec<String> {
        page.rows.iter().map(|(_, m)| m.id.clone()).collect()
    }

    /// Paging forward and backward by every page size gives the order
    /// a sort in memory gives (NULL smallest, ties by id), whichever
    /// segments the cursors fall in.
    #[tokio::test]
    async fn segments_page_like_a_sort_in_memory() {
        let (db, all) = leads().await;
        let null_first = |v: &Option<i64>| v.map_or((0, 0), |v| (1, v));
        for (field, desc) in [
            (LeadOrderField::LastActivityAt, true),
            (LeadOrderField::LastActivityAt, false),
            (LeadOrderField::Name, true),
            (LeadOrderField::Name, false),
            (LeadOrderField::ActivityCount, true),
        ] {
            let direction = if desc {
                OrderDirection::Desc
            } else {
                OrderDirection::Asc
            };
            let key = lead_key(Some(&[LeadOrderBy { field, direction }]));
            let mut expected = all.clone();
            expected.sort_by(|a, b| {
                let by = match field {
                    LeadOrderField::LastActivityAt => {
                        null_first(&a.last_activity_at).cmp(&null_first(&b.last_activity_at))
                    }
                    LeadOrderField::Name => a.name.cmp(&b.name),
                    _ => a.activity_count.cmp(&b.activity_count),
                };
                let by = by.then_with(|| a.id.cmp(&b.id));
                if desc {
                    by.reverse()
                } else {
                    by
                }
            });
            let expected: Vec<String> = expected.into_iter().map(|m| m.id).collect();
            for size in 1..=7 {
                let mut forward = Vec::new();
                let mut after = None;
                loop {
                    let args = PageArgs {
                        first: Some(size),
                        after: after.clone(),
                        ..Default::default()
                    };
                    let window = args.window(&key).unwrap();
                    let p = page(&db, lead::Entity::find(), &key, &window)
                        .await
                        .unwrap();
                    forward.extend(ids(&p));
                    if !p.info.has_next_page {
                        break;
                    }
                    after = p.info.end_cursor.clone();
                }
                assert_eq!(forward, expected, "{field:?} desc={desc} first={size}");
                let mut backward = Vec::new();
                let mut before = None;
                loop {
                    let args = PageArgs {
                        last: Some(size),
                        before: before.clone(),
                        ..Default::default()
                    };
                    let window = args.window(&key).unwrap();
                    let p = page(&db, lead::Entity::find(), &key, &window)
                        .await
                        .unwrap();
                    let mut ids = ids(&p);
                    ids.extend(backward);
                    backward = ids;
                    if !p.info.has_previous_page {
                        break;
                    }
                    before = p.info.start_cursor.clone();
                }
                assert_eq!(backward, expected, "{field:?} desc={desc} last={size}");
            }
        }
    }
}
