//! Relations read in the same statement as their parent rows, when a query
//! asks for them: a LEFT JOIN instead of one more statement per nesting
//! level. A page of activities with each one's lead and analysis is one
//! statement, not three.
//!
//! Only to-one relations whose rows are visible whenever their parent is
//! (rows of the same lead, or the lead itself) are declared as joins, so a
//! join needs no access condition of its own (see `store::read`).

use super::resource::{ColumnSet, Joined, Resource};
use async_graphql::context::SelectionField;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, SelectStatement};
use sea_orm::{DbErr, EntityName, EntityTrait, IdenStatic, QueryResult};

/// Decode a joined row into the parent's [`Joined`]: the field, the row,
/// the joined columns, the join's alias and key column.
type Attach =
    fn(&mut Joined, &'static str, &QueryResult, ColumnSet, &str, &str) -> Result<(), DbErr>;

/// A to-one relation of `E`'s rows that can be read by a join.
pub struct Join<E: EntityTrait> {
    /// The GraphQL field that returns it (e.g. `analysis`).
    pub field: &'static str,
    /// The parent's column the related row's `key` equals.
    parent: E::Column,
    /// The related table and its column matched to `parent`.
    table: &'static str,
    key: &'static str,
    columns: for<'a> fn(&[SelectionField<'a>]) -> ColumnSet,
    add: fn(&mut SelectStatement, &str, ColumnSet),
    attach: Attach,
}

impl<E: EntityTrait> Join<E> {
    /// `field`: the row of `J` whose `key` equals this row's `parent`.
    pub fn to<J: Resource>(
        field: &'static str,
        parent: E::Column,
        key: <J::Entity as EntityTrait>::Column,
    ) -> Self {
        Join {
            field,
            parent,
            table: J::Entity::default().table_name(),
            key: key.as_str(),
            columns: |fields| J::selected(fields.iter().cloned()),
            add: add_columns::<J>,
            attach: attach::<J>,
        }
    }

    fn alias(&self) -> String {
        format!("j_{}", self.field)
    }
}

/// Select the columns `cols` of the table joined as `alias`, named
/// `<alias>__<column>`.
fn add_columns<J: Resource>(stmt: &mut SelectStatement, alias: &str, cols: ColumnSet) {
    for c in cols.columns::<J::Entity>() {
        stmt.expr_as(
            Expr::col((Alias::new(alias), Alias::new(c.as_str()))),
            Alias::new(format!("{alias}__{}", c.as_str())),
        );
    }
}

/// Decode the joined row (absent when its key column is NULL).
fn attach<J: Resource>(
    joined: &mut Joined,
    field: &'static str,
    row: &QueryResult,
    cols: ColumnSet,
    alias: &str,
    key: &str,
) -> Result<(), DbErr> {
    let prefix = format!("{alias}__");
    let present: Option<String> = row.try_get("", &format!("{prefix}{key}"))?;
    let value = match present {
        Some(_) => Some(std::sync::Arc::new(J::from_row_as(row, cols, &prefix)?)),
        None => None,
    };
    joined.insert::<J>(field, value);
    Ok(())
}

/// What a query reads of a table's rows: the columns, and the relations
/// joined (by their place in [`Resource::joins`]) with theirs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reads {
    pub cols: ColumnSet,
    pub joins: Vec<(usize, ColumnSet)>,
}

impl Reads {
    /// Columns only, no joins.
    pub fn columns(cols: ColumnSet) -> Reads {
        Reads {
            cols,
            joins: Vec::new(),
        }
    }

    /// What a selection of `R`'s fields reads: the columns of its
    /// fields and keys, and its joinable relations with their own.
    pub fn of<R: Resource>(fields: &[SelectionField<'_>]) -> Reads {
        let cols = R::selected(fields.iter().cloned());
        let mut joins = Vec::new();
        for (i, join) in R::joins().iter().enumerate() {
            let asked: Vec<SelectionField<'_>> = fields
                .iter()
                .filter(|f| f.name() == join.field)
                .flat_map(|f| f.selection_set())
                .collect();
            if fields.iter().any(|f| f.name() == join.field) {
                joins.push((i, (join.columns)(&asked)));
            }
        }
        Reads { cols, joins }
    }

    /// Add the joins to `stmt`, a select of `R`'s table.
    pub fn join<R: Resource>(&self, stmt: &mut SelectStatement) {
        if self.joins.is_empty() {
            return;
        }
        let all = R::joins();
        for (i, cols) in &self.joins {
            let join = &all[*i];
            let alias = join.alias();
            stmt.join_as(
                JoinType::LeftJoin,
                Alias::new(join.table),
                Alias::new(alias.as_str()),
                Expr::col((Alias::new(alias.as_str()), Alias::new(join.key)))
                    .equals((R::Entity::default(), join.parent)),
            );
            (join.add)(stmt, &alias, *cols);
        }
    }

    /// The object of `row`, with its joined relations.
    pub fn decode<R: Resource>(
        &self,
        row: &QueryResult,
        joins: &[Join<R::Entity>],
    ) -> Result<R, DbErr> {
        let mut object = R::from_row(row, self.cols)?;
        for (i, cols) in &self.joins {
            let join = &joins[*i];
            (join.attach)(
                object.joined_mut(),
                join.field,
                row,
                *cols,
                &join.alias(),
                join.key,
            )?;
        }
        Ok(object)
    }
}
