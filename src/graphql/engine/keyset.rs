//! Keyset order: a sort key (the requested fields, then the table's
//! unique key), its cursors, and the conditions for "rows after this
//! cursor" that an index can bound.
//!
//! NULL sorts as the smallest value on both databases (first ascending,
//! last descending).

use super::resource::{ColumnSet, Kind};
use crate::error::bad_input;
use base64::Engine;
use sea_orm::sea_query::{Expr, ExprTrait, NullOrdering, Order, WindowStatement};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, DbErr, EntityTrait, IdenStatic, QueryOrder, QueryResult,
};
use serde_json::Value;

/// One column of a sort key.
pub struct KeyPart<E: EntityTrait> {
    /// The GraphQL name of the field, for cursors and error messages.
    pub name: &'static str,
    pub col: E::Column,
    pub desc: bool,
    pub nullable: bool,
    /// The part's value in a row, as it goes into a cursor.
    pub get: fn(&QueryResult, &str) -> Result<Value, DbErr>,
    /// Sorting by personal data (refused to keys that may not read it:
    /// the order, and the cursors, would tell it).
    pub personal: bool,
}

impl<E: EntityTrait> KeyPart<E> {
    /// The column `col`, holding values of the field type `K`, named
    /// `name` in cursors and messages.
    pub fn of<K: Kind>(name: &'static str, col: E::Column, desc: bool) -> Self {
        KeyPart {
            name,
            col,
            desc,
            nullable: K::NULLABLE,
            get: cursor_value::<K>,
            personal: false,
        }
    }

    /// This part sorts by personal data.
    pub fn personal(mut self) -> Self {
        self.personal = true;
        self
    }
}

/// A column of a row as cursor JSON.
fn cursor_value<K: Kind>(row: &QueryResult, col: &str) -> Result<Value, DbErr> {
    let value: K::Db = row.try_get("", col)?;
    serde_json::to_value(value).map_err(|e| DbErr::Type(e.to_string()))
}

impl<E: EntityTrait> Clone for KeyPart<E> {
    fn clone(&self) -> Self {
        KeyPart {
            name: self.name,
            col: self.col,
            desc: self.desc,
            nullable: self.nullable,
            get: self.get,
            personal: self.personal,
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

    /// The columns of the key (read with every page, for the cursors).
    pub fn columns(&self) -> ColumnSet {
        self.parts
            .iter()
            .fold(ColumnSet::EMPTY, |set, p| set.and::<E>(p.col))
    }

    /// Identifies the order a cursor was made for.
    pub(super) fn signature(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("{}{}", if p.desc { "-" } else { "+" }, p.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The cursor of `row`: its sort key and the order's `signature`
    /// (worked out once per page), as base64 JSON.
    pub(super) fn cursor(&self, signature: &str, row: &QueryResult) -> Result<String, DbErr> {
        #[derive(serde::Serialize)]
        struct Cursor<'a> {
            k: Vec<Value>,
            o: &'a str,
        }
        let k = self
            .parts
            .iter()
            .map(|p| (p.get)(row, p.col.as_str()))
            .collect::<Result<Vec<Value>, DbErr>>()?;
        let json = serde_json::to_vec(&Cursor { k, o: signature }).unwrap_or_default();
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    pub(super) fn decode(&self, cursor: &str, arg: &str) -> async_graphql::Result<Vec<Value>> {
        let invalid = |why: &str| {
            bad_input(format!(
                "`{arg}` is not a cursor this list gave out ({why}); use an edge's `cursor` or `pageInfo.endCursor`"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor.trim_end_matches('='))
            .map_err(|_| invalid("not base64"))?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))?;
        if json.get("o").and_then(Value::as_str) != Some(self.signature().as_str()) {
            return Err(bad_input(format!(
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
    pub(super) fn beyond(&self, values: &[Value], reverse: bool) -> Condition {
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
    pub(super) fn segments(&self, values: &[Value], reverse: bool) -> Option<Vec<Condition>> {
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
    pub(super) fn directions(
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

    pub(super) fn order<Q: QueryOrder>(
        &self,
        mut query: Q,
        reverse: bool,
        backend: DbBackend,
    ) -> Q {
        for (p, order, nulls) in self.directions(reverse, backend) {
            query = match nulls {
                Some(nulls) => query.order_by_with_nulls(p.col, order, nulls),
                None => query.order_by(p.col, order),
            };
        }
        query
    }

    pub(super) fn window_order(
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
