//! What a resource declaration (`#[resource]`, see the `leadql-macros`
//! crate) is made of at run time: how each field type is stored, filtered
//! and read, the set of columns a query reads, and the value of a field
//! that may not have been read.
//!
//! A field's declared type is its GraphQL type; [`Kind`] says which
//! column type stores it and how a stored value becomes the GraphQL one,
//! [`Filterable`] which operator input filters it and what the operators
//! mean in SQL and in memory.

use super::filter::{self, BooleanFilter, DateTimeFilter, IntFilter, StringFilter, Truth};
use async_graphql::context::SelectionField;
use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, Json, OutputType, Positioned, ServerResult, Value, ID};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    Condition, DbBackend, DbErr, EntityTrait, IdenStatic, Iterable, QueryResult, TryGetable,
};
use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

pub use leadql_macros::resource;

/// A resource: a GraphQL object read from one table.
pub trait Resource: Sized + Send + Sync + 'static {
    type Entity: EntityTrait;

    /// Columns read whatever the selection (ids other fields and
    /// relations need).
    fn key_columns() -> ColumnSet;

    /// The columns the field of this GraphQL name reads (none for fields
    /// computed by resolvers, which read key columns).
    fn columns_of(field: &str) -> ColumnSet;

    /// The object from a row that holds (at least) the columns `cols`;
    /// fields of other columns are left unread.
    fn from_row(row: &QueryResult, cols: ColumnSet) -> Result<Self, DbErr> {
        Self::from_row_as(row, cols, "")
    }

    /// [`Resource::from_row`] from columns named `prefix` + column (a
    /// joined table's, see [`super::join`]).
    fn from_row_as(row: &QueryResult, cols: ColumnSet, prefix: &str) -> Result<Self, DbErr>;

    /// The relations read with this row.
    fn joined_mut(&mut self) -> &mut Joined;

    /// The relations that can be read with this table's rows by a join
    /// (a lead of an activity, its analysis, …), when a query asks for
    /// them.
    fn joins() -> Vec<super::join::Join<Self::Entity>> {
        Vec::new()
    }

    /// Every declared field: its GraphQL name and column.
    fn declared() -> Vec<(&'static str, <Self::Entity as EntityTrait>::Column)>;

    /// The columns a selection of this type's fields reads, keys
    /// included.
    fn selected<'a>(fields: impl Iterator<Item = SelectionField<'a>>) -> ColumnSet {
        fields.fold(Self::key_columns(), |set, f| {
            set.union(Self::columns_of(f.name()))
        })
    }
}

/// A set of a table's columns, by their place in its `Column` enum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ColumnSet(u64);

impl ColumnSet {
    pub const EMPTY: ColumnSet = ColumnSet(0);

    /// Every column of `E`.
    pub fn all<E: EntityTrait>() -> ColumnSet {
        E::Column::iter()
            .enumerate()
            .fold(ColumnSet::EMPTY, |set, (i, _)| set.with(i as u32))
    }

    /// This set and the column at `index`.
    pub const fn with(self, index: u32) -> ColumnSet {
        assert!(index < 64, "a table of more than 64 columns");
        ColumnSet(self.0 | 1 << index)
    }

    pub const fn has(self, index: u32) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    pub const fn union(self, other: ColumnSet) -> ColumnSet {
        ColumnSet(self.0 | other.0)
    }

    /// This set and `column` of `E`.
    pub fn and<E: EntityTrait>(self, column: E::Column) -> ColumnSet {
        match E::Column::iter().position(|c| c.as_str() == column.as_str()) {
            Some(i) => self.with(i as u32),
            None => self,
        }
    }

    /// The columns of `E` in this set, in table order.
    pub fn columns<E: EntityTrait>(self) -> impl Iterator<Item = E::Column> {
        E::Column::iter()
            .enumerate()
            .filter(move |(i, _)| self.has(*i as u32))
            .map(|(_, c)| c)
    }
}

/// The value of a field, or nothing when the query did not read its
/// column. Resolving an unread field is a bug (the selection decides the
/// columns), answered as an internal error, never as a wrong value.
///
/// `PERSONAL` marks personal data (`#[field(personal)]`): for a reader
/// whose role may not read it, the field answers null and a `FORBIDDEN`
/// error at its path (see [`crate::access::Role`]).
#[derive(Clone, Debug)]
pub struct Col<T, const PERSONAL: bool = false>(Option<T>);

impl<T, const PERSONAL: bool> Col<T, PERSONAL> {
    pub fn new(value: T) -> Self {
        Col(Some(value))
    }

    /// Read the column `name` (at `index`) of `row` as kind `K`, if
    /// `cols` holds it; `prefix` is prepended to the name in the row.
    pub fn read<K: Kind<Gql = T>>(
        row: &QueryResult,
        cols: ColumnSet,
        index: u32,
        name: &str,
        prefix: &str,
    ) -> Result<Self, DbErr> {
        if !cols.has(index) {
            return Ok(Col(None));
        }
        let value = if prefix.is_empty() {
            row.try_get::<K::Db>("", name)?
        } else {
            row.try_get::<K::Db>("", &format!("{prefix}{name}"))?
        };
        Ok(Col::new(K::gql(value)))
    }

    /// The value, when it was read.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// The value of a key column (always read), for resolvers.
    pub fn key(&self) -> async_graphql::Result<&T> {
        self.0
            .as_ref()
            .ok_or_else(|| async_graphql::Error::new("internal error: a key column was not read"))
    }
}

impl<T: OutputType, const PERSONAL: bool> OutputType for Col<T, PERSONAL> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if PERSONAL && !crate::access::reads_personal_data(ctx) {
            // Null, and an error at the field's path: a field error would
            // leave the field out of the answer altogether.
            let what = format!("`{}`", field.node.name.node);
            let error = crate::access::forbidden(&what).into_server_error(field.pos);
            ctx.add_error(ctx.set_error_path(error));
            return Ok(Value::Null);
        }
        match &self.0 {
            Some(value) => value.resolve(ctx, field).await,
            None => {
                tracing::error!(field = %field.node.name.node, "a field was resolved without reading its column");
                Err(async_graphql::ServerError::new(
                    "internal error: this field was not read",
                    Some(field.pos),
                ))
            }
        }
    }
}

/// Related objects read together with a row, by the GraphQL field that
/// returns them (`None` inside: read, and there is none).
#[derive(Clone, Default)]
pub struct Joined(Vec<(&'static str, Arc<dyn Any + Send + Sync>)>);

impl Joined {
    pub fn insert<J: Resource>(&mut self, field: &'static str, value: Option<Arc<J>>) {
        self.0.push((field, Arc::new(value)));
    }

    /// The `field` relation when it was read with the row.
    pub fn get<J: Resource>(&self, field: &str) -> Option<Option<Arc<J>>> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, v)| v.downcast_ref::<Option<Arc<J>>>())
            .cloned()
    }

    /// Keep `value` with the row, for its fields to read (a live event's
    /// [`crate::feed::Shared`] rows).
    pub fn attach<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.0.push(("", value));
    }

    /// What was attached of type `T`, if anything.
    pub fn attached<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0
            .iter()
            .find_map(|(f, v)| f.is_empty().then(|| v.clone().downcast::<T>().ok())?)
    }
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// How a field of a declared GraphQL type is stored.
pub trait Kind {
    /// The column's type (the model field's).
    type Db: TryGetable + serde::Serialize + Send + Sync + 'static;
    /// The GraphQL value.
    type Gql: OutputType + Clone + std::fmt::Debug;
    /// Whether the column may be NULL.
    const NULLABLE: bool;
    fn gql(value: Self::Db) -> Self::Gql;
}

/// A NOT NULL column shown as a nullable field: a personal field answers
/// null to keys that may not read it.
pub struct Nullable<T>(std::marker::PhantomData<T>);

impl Kind for Nullable<String> {
    type Db = String;
    type Gql = Option<String>;
    const NULLABLE: bool = false;
    fn gql(value: String) -> Option<String> {
        Some(value)
    }
}

/// Epoch milliseconds as a UTC time.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

macro_rules! kind {
    ($gql:ty, $db:ty, $nullable:expr, |$v:ident| $to:expr) => {
        impl Kind for $gql {
            type Db = $db;
            type Gql = $gql;
            const NULLABLE: bool = $nullable;
            fn gql($v: $db) -> $gql {
                $to
            }
        }
    };
}

kind!(ID, String, false, |v| ID(v));
kind!(String, String, false, |v| v);
kind!(Option<String>, Option<String>, true, |v| v);
kind!(DateTime<Utc>, i64, false, |v| time(v));
kind!(Option<DateTime<Utc>>, Option<i64>, true, |v| v.map(time));
kind!(i32, i32, false, |v| v);
kind!(Option<i32>, Option<i32>, true, |v| v);
kind!(i64, i64, false, |v| v);
kind!(Option<i64>, Option<i64>, true, |v| v);
kind!(bool, bool, false, |v| v);
kind!(Option<bool>, Option<bool>, true, |v| v);
kind!(
    Option<Json<serde_json::Value>>,
    Option<serde_json::Value>,
    true,
    |v| v.map(Json)
);

/// A field type that filters: its operator input, what that means in SQL
/// ([`Filterable::condition`]) and on a value in memory
/// ([`Filterable::test`]), with SQL's three-valued answer.
pub trait Filterable: Kind {
    type Filter: async_graphql::InputType + Clone + std::fmt::Debug + Default + std::hash::Hash + Eq;
    fn condition(col: Expr, f: &Self::Filter, fold_case: bool, backend: DbBackend) -> Condition;
    fn test(f: &Self::Filter, value: &Self::Db, fold_case: bool) -> Truth;
}

macro_rules! filterable {
    ($gql:ty, $filter:ty, |$col:ident, $f:ident, $ci:ident, $b:ident| $sql:expr, |$v:ident| $test:expr) => {
        impl Filterable for $gql {
            type Filter = $filter;
            fn condition($col: Expr, $f: &$filter, $ci: bool, $b: DbBackend) -> Condition {
                $sql
            }
            fn test($f: &$filter, $v: &<$gql as Kind>::Db, $ci: bool) -> Truth {
                $test
            }
        }
    };
}

filterable!(
    ID,
    StringFilter,
    |c, f, ci, b| filter::string(c, f, ci, b),
    |v| f.test(Some(v), ci)
);
filterable!(
    String,
    StringFilter,
    |c, f, ci, b| filter::string(c, f, ci, b),
    |v| f.test(Some(v), ci)
);
filterable!(
    Option<String>,
    StringFilter,
    |c, f, ci, b| filter::string(c, f, ci, b),
    |v| f.test(v.as_deref(), ci)
);
filterable!(
    DateTime<Utc>,
    DateTimeFilter,
    |c, f, _ci, _b| filter::datetime(c, f),
    |v| f.test(Some(*v))
);
filterable!(
    Option<DateTime<Utc>>,
    DateTimeFilter,
    |c, f, _ci, _b| filter::datetime(c, f),
    |v| f.test(*v)
);
filterable!(i32, IntFilter, |c, f, _ci, _b| filter::int(c, f), |v| f
    .test(Some(i64::from(*v))));
filterable!(
    Option<i32>,
    IntFilter,
    |c, f, _ci, _b| filter::int(c, f),
    |v| f.test(v.map(i64::from))
);
filterable!(i64, IntFilter, |c, f, _ci, _b| filter::int(c, f), |v| f
    .test(Some(*v)));
filterable!(
    Option<i64>,
    IntFilter,
    |c, f, _ci, _b| filter::int(c, f),
    |v| f.test(*v)
);
filterable!(
    bool,
    BooleanFilter,
    |c, f, _ci, _b| filter::boolean(c, f),
    |v| f.test(Some(*v))
);
filterable!(
    Option<bool>,
    BooleanFilter,
    |c, f, _ci, _b| filter::boolean(c, f),
    |v| f.test(*v)
);
