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

    /// Rows strictly after `values` in this order (`reverse`: strictly before).
    fn beyond(&self, values: &[Value], reverse: bool) -> Condition {
        let parts: Vec<(&KeyPart<E>, &Value, bool)> = self
            .parts
            .iter()
            .zip(values)
            .map(|(p, v)| (p, v, p.desc != reverse))
            .collect();
        let same_direction = parts.iter().all(|(_, _, d)| *d == parts[0].2);
        let simple = same_direction
            && parts
                .iter()
                .enumerate()
                .all(|(i, (p, v, _))| !v.is_null() && (i == 0 || !p.nullable));
        if simple {
            // Row-value comparison: one index range on both databases.
            let desc = parts[0].2;
            let cols = Expr::tuple(parts.iter().map(|(p, _, _)| p.col.into_expr()));
            let vals = Expr::tuple(parts.iter().map(|(_, v, _)| Expr::val(sql_value(v))));
            let mut cond = Condition::any().add(if desc { cols.lt(vals) } else { cols.gt(vals) });
            if desc && parts[0].0.nullable {
                cond = cond.add(parts[0].0.col.is_null());
            }
            return cond;
        }
        // General case: (a after) OR (a = and b after) OR …
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
            // Nothing comes after the last NULL of a descending order.
            Condition::all().add(Expr::val(1).eq(0))
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
    let select = select.filter(window.bounds(key));
    let select = key.order(select, window.from_end, db.get_database_backend());
    let models = select.limit(window.limit + 1).all(db).await?;
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
