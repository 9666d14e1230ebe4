//! Pages of rows over keyset pagination (see [`super::keyset`]).
//!
//! A list is ordered by the fields the caller asks for, then by the table's
//! unique key, so the order is total and a cursor (the sort key of a row)
//! pins a position exactly: pages never skip or repeat, and page 1,000 costs
//! what page 1 costs (an index range, no OFFSET). NULL sorts as the smallest
//! value on both databases (first ascending, last descending).

use super::join::Reads;
pub use super::keyset::{KeyPart, SortKey};
use super::resource::{ColumnSet, Resource};
use crate::error::bad_input;
use async_graphql::SimpleObject;
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Func, Order, Query, SelectStatement, WindowStatement,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityName, EntityTrait, IdenStatic,
    QueryFilter, QueryResult, QuerySelect, QueryTrait, Select,
};
use serde_json::Value;
use std::collections::HashMap;

/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE: u64 = 50;
/// The most rows one page may hold.
pub const MAX_PAGE: u64 = 500;

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
                Err(bad_input(format!("`{arg}` must not be negative (got {n})")))
            } else if n as u64 > MAX_PAGE {
                Err(bad_input(format!(
                    "`{arg}` may be at most {MAX_PAGE} (got {n}); fetch further pages with `after`/`before`"
                )))
            } else {
                Ok(n as u64)
            }
        };
        let (limit, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(bad_input(
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

    /// The page of `rows` (read in this window's order, one more than
    /// the page holds when more follow): cursors from the key's columns,
    /// objects from what `reads` read.
    fn finish<R: Resource>(
        &self,
        key: &SortKey<R::Entity>,
        mut rows: Vec<QueryResult>,
        reads: &Reads,
    ) -> Result<Page<R>, DbErr> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.from_end {
            rows.reverse();
        }
        let signature = key.signature();
        let joins = if reads.joins.is_empty() {
            Vec::new()
        } else {
            R::joins()
        };
        let rows: Vec<(String, R)> = rows
            .iter()
            .map(|row| Ok((key.cursor(&signature, row)?, reads.decode(row, &joins)?)))
            .collect::<Result<_, DbErr>>()?;
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
        Ok(Page { rows, info })
    }
}

/// `select` reading only the columns `cols` of its table.
pub fn narrow<E: EntityTrait>(select: Select<E>, cols: ColumnSet) -> Select<E> {
    select.select_only().columns(cols.columns::<E>())
}

/// The rows of `select`, as the database sent them.
pub async fn rows<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    select: Select<E>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(select.build(db.get_database_backend()))
        .await
}

/// The statements a page reads, in order: one per segment of its side of
/// the cursor (see [`SortKey`]'s segments), each for the whole page; the
/// page reads the next only while it is not full, and asks it only for
/// the rows still missing. With the relations `reads` joins.
pub fn statements<R: Resource>(
    select: Select<R::Entity>,
    key: &SortKey<R::Entity>,
    window: &Window,
    reads: &Reads,
    backend: DbBackend,
) -> Vec<SelectStatement> {
    let select = narrow(select, reads.cols.union(key.columns()));
    let conditions = window
        .segments(key)
        .unwrap_or_else(|| vec![window.bounds(key)]);
    conditions
        .into_iter()
        .map(|condition| {
            let select = key.order(select.clone().filter(condition), window.from_end, backend);
            let mut stmt = select.limit(window.limit + 1).into_query();
            reads.join::<R>(&mut stmt);
            stmt
        })
        .collect()
}

/// One page of `select` (already filtered) in `key` order, reading what
/// `reads` says (and the key's columns).
pub async fn page<R, C>(
    db: &C,
    select: Select<R::Entity>,
    key: &SortKey<R::Entity>,
    window: &Window,
    reads: &Reads,
) -> Result<Page<R>, DbErr>
where
    R: Resource,
    C: ConnectionTrait,
{
    if window.limit == 0 {
        return window.finish(key, Vec::new(), reads);
    }
    let backend = db.get_database_backend();
    let wanted = window.limit + 1;
    let mut found = Vec::new();
    for mut stmt in statements::<R>(select, key, window, reads, backend) {
        let missing = wanted - found.len() as u64;
        if missing == 0 {
            break;
        }
        stmt.limit(missing);
        found.extend(db.query_all_raw(backend.build(&stmt)).await?);
    }
    window.finish(key, found, reads)
}

/// How a root list's page finds its rows when its filter's condition
/// alone (the list) is not the cheapest way.
pub enum Reading<E: EntityTrait> {
    /// By the list's condition.
    List,
    /// By this select instead: the same rows, found another way.
    Instead(Select<E>),
    /// By walking at most `rows` rows of `base` in the page's order from
    /// its cursor, asking `probe` of each (`base` and `probe` together
    /// are the list's rows); when those hold no more than a page, by the
    /// list. The rows that meet `probe` among the first `rows` in order
    /// are the list's first rows, so a walk that finds more than a page
    /// found the page.
    First {
        base: Select<E>,
        probe: Condition,
        rows: u64,
    },
}

/// One page of `list` read as `reading` says (see [`page`]).
pub async fn page_by<R, C>(
    db: &C,
    list: Select<R::Entity>,
    reading: Reading<R::Entity>,
    key: &SortKey<R::Entity>,
    window: &Window,
    reads: &Reads,
) -> Result<Page<R>, DbErr>
where
    R: Resource,
    C: ConnectionTrait,
{
    let (base, probe, rows) = match reading {
        Reading::List => return page(db, list, key, window, reads).await,
        Reading::Instead(select) => return page(db, select, key, window, reads).await,
        Reading::First { base, probe, rows } => (base, probe, rows),
    };
    if window.limit == 0 || rows <= window.limit {
        return page(db, list, key, window, reads).await;
    }
    // The first `rows` rows in the page's order, as a table of the same
    // name, so every column the page's statement names is theirs.
    let backend = db.get_database_backend();
    let first = key
        .order(
            base.clone().filter(window.bounds(key)),
            window.from_end,
            backend,
        )
        .limit(rows)
        .into_query();
    let mut walked = base.filter(probe);
    let table = Alias::new(R::Entity::default().table_name());
    QueryTrait::query(&mut walked)
        .from_clear()
        .from_subquery(first, table);
    let found = page(db, walked, key, window, reads).await?;
    let more = if window.from_end {
        found.info.has_previous_page
    } else {
        found.info.has_next_page
    };
    if more {
        return Ok(found);
    }
    page(db, list, key, window, reads).await
}

/// The same page for each of many parents at once (one statement): rows of
/// `select` whose `parent` column is in `parents`, numbered per parent with
/// ROW_NUMBER() and cut at the page size, reading what `reads` says.
pub async fn pages_by_parent<R, C>(
    db: &C,
    select: Select<R::Entity>,
    parent: <R::Entity as EntityTrait>::Column,
    parents: &[String],
    key: &SortKey<R::Entity>,
    window: &Window,
    reads: &Reads,
) -> Result<HashMap<String, Page<R>>, DbErr>
where
    R: Resource,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let mut by_parent: HashMap<String, Vec<QueryResult>> = HashMap::new();
    if window.limit > 0 && parents.len() == 1 {
        // One parent (a lead's history): a plain ordered, limited read.
        let select = select.filter(parent.eq(parents[0].clone()));
        let found = page(db, select, key, window, reads).await?;
        return Ok(HashMap::from([(parents[0].clone(), found)]));
    }
    if window.limit > 0 && !parents.is_empty() {
        let read = reads.cols.union(key.columns()).and::<R::Entity>(parent);
        let mut inner: SelectStatement = narrow(select, read)
            .filter(parent.is_in(parents.iter().cloned()))
            .filter(window.bounds(key))
            .into_query();
        reads.join::<R>(&mut inner);
        let mut over = WindowStatement::partition_by((R::Entity::default(), parent));
        over = key.window_order(over, window.from_end, backend);
        inner.expr_window_as(Func::cust("ROW_NUMBER"), over, "page_row");
        let mut outer = Query::select();
        outer
            .column(Asterisk)
            .from_subquery(inner, Alias::new("numbered"))
            .and_where(Expr::col("page_row").lte(window.limit as i64 + 1))
            .order_by("page_row", Order::Asc);
        for row in db.query_all_raw(backend.build(&outer)).await? {
            let owner: String = row.try_get("", parent.as_str())?;
            by_parent.entry(owner).or_default().push(row);
        }
    }
    parents
        .iter()
        .map(|p| {
            let rows = by_parent.remove(p).unwrap_or_default();
            Ok((p.clone(), window.finish(key, rows, reads)?))
        })
        .collect()
}

#[cfg(test)]
mod tests;
