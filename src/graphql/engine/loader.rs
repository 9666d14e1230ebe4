//! Batched loading of nested fields (async-graphql DataLoader).
//!
//! A request gets its own [`DataLoader`]; its loads do not run on other
//! tasks after a timer, as DataLoader does by default, but inside the
//! request's own task once every sibling field has asked
//! ([`super::drive::drive`]). So a
//! page of 50 activities asks for their 50 conversations in one statement,
//! deterministically, and without the default 1 ms wait per nesting level.

use super::join::Reads;
use super::page::{narrow, pages_by_parent, rows, Page, PageArgs, SortKey};
use super::resource::{ColumnSet, Resource};
use crate::store::read::{Reader, Scoped};
use async_graphql::dataloader::{DataLoader, Loader};
use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, IdenStatic, QueryFilter, QuerySelect, Select,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Loads waiting to run in the request's task.
#[derive(Clone, Default)]
pub struct Queue(pub(super) Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

/// The per-request loader.
pub type Loaders = DataLoader<Batch>;

/// A request's loader; its loads run inside [`super::drive::drive`] with
/// the same queue.
pub fn loaders(reader: Reader, queue: &Queue) -> Loaders {
    let queue = queue.clone();
    DataLoader::new(Batch { reader }, move |fut: BoxFuture<'static, ()>| {
        queue.0.lock().unwrap_or_else(|e| e.into_inner()).push(fut);
    })
    .delay(std::time::Duration::ZERO)
}

/// A loader for subscriptions, whose fields resolve outside
/// [`super::drive::drive`]:
/// loads run on their own tasks after DataLoader's short wait (counted as
/// the subscriptions' statements, like the connection's own).
pub fn spawning_loaders(reader: Reader) -> Loaders {
    DataLoader::new(Batch { reader }, |fut: BoxFuture<'static, ()>| {
        if crate::telemetry::in_subscriptions() {
            tokio::spawn(crate::telemetry::serving_subscriptions(fut));
        } else {
            tokio::spawn(fut);
        }
    })
}

/// What the loader reads with.
pub struct Batch {
    pub(crate) reader: Reader,
}

/// Loader errors are shared between the fields that waited on one batch.
pub type LoadError = Arc<DbErr>;

/// The row of `R` whose `column` holds `value` (a lead by id, the
/// conversation of an activity, …), reading at least the columns `cols`.
pub struct Lookup<R: Resource> {
    pub column: <R::Entity as EntityTrait>::Column,
    pub value: String,
    pub cols: ColumnSet,
}

impl<R: Resource> Lookup<R> {
    pub fn new(column: <R::Entity as EntityTrait>::Column, value: &str, cols: ColumnSet) -> Self {
        Lookup {
            column,
            value: value.to_string(),
            cols,
        }
    }
}

impl<R: Resource> Clone for Lookup<R> {
    fn clone(&self) -> Self {
        Lookup {
            column: self.column,
            value: self.value.clone(),
            cols: self.cols,
        }
    }
}
impl<R: Resource> PartialEq for Lookup<R> {
    fn eq(&self, other: &Self) -> bool {
        self.column.as_str() == other.column.as_str()
            && self.value == other.value
            && self.cols == other.cols
    }
}
impl<R: Resource> Eq for Lookup<R> {}
impl<R: Resource> Hash for Lookup<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.column.as_str().hash(state);
        self.value.hash(state);
        self.cols.hash(state);
    }
}

impl<R> Loader<Lookup<R>> for Batch
where
    R: Resource,
    R::Entity: Scoped,
    <R::Entity as EntityTrait>::Column: Send + Sync,
{
    type Value = Arc<R>;
    type Error = LoadError;
    /// One statement per looked-up column, reading every column any of
    /// the fields asked for.
    async fn load(&self, keys: &[Lookup<R>]) -> Result<HashMap<Lookup<R>, Arc<R>>, LoadError> {
        let mut out = HashMap::new();
        let mut columns: Vec<<R::Entity as EntityTrait>::Column> = Vec::new();
        for k in keys {
            if !columns.iter().any(|c| c.as_str() == k.column.as_str()) {
                columns.push(k.column);
            }
        }
        for column in columns {
            let wanted: Vec<&Lookup<R>> = keys
                .iter()
                .filter(|k| k.column.as_str() == column.as_str())
                .collect();
            let cols = wanted
                .iter()
                .fold(ColumnSet::EMPTY, |set, k| set.union(k.cols))
                .and::<R::Entity>(column);
            let values: Vec<String> = wanted.iter().map(|k| k.value.clone()).collect();
            let select = narrow(self.reader.find::<R::Entity>(), cols).filter(column.is_in(values));
            let mut found: HashMap<String, Arc<R>> = HashMap::new();
            for row in rows(self.reader.db(), select).await.map_err(Arc::new)? {
                let value: String = row.try_get("", column.as_str()).map_err(Arc::new)?;
                found.insert(value, Arc::new(R::from_row(&row, cols).map_err(Arc::new)?));
            }
            for k in wanted {
                if let Some(object) = found.get(&k.value) {
                    out.insert(k.clone(), object.clone());
                }
            }
        }
        Ok(out)
    }
}

/// The rows of one nested connection shape (`lead.activities(filter: …,
/// first: 10)`), for many parents; parents asking with the same arguments
/// share one statement.
pub struct Children<R: Resource> {
    /// Identifies the arguments (filter, order, page, columns), for
    /// grouping.
    pub shape: String,
    pub select: Select<R::Entity>,
    pub filter: Condition,
    pub parent: <R::Entity as EntityTrait>::Column,
    pub key: SortKey<R::Entity>,
    pub args: PageArgs,
    pub reads: Reads,
}

/// One parent's page of a nested connection.
pub struct ChildPage<R: Resource> {
    pub parent: String,
    pub children: Arc<Children<R>>,
}

impl<R: Resource> Clone for ChildPage<R> {
    fn clone(&self) -> Self {
        ChildPage {
            parent: self.parent.clone(),
            children: self.children.clone(),
        }
    }
}
impl<R: Resource> PartialEq for ChildPage<R> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.children.shape == other.children.shape
    }
}
impl<R: Resource> Eq for ChildPage<R> {}
impl<R: Resource> Hash for ChildPage<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.children.shape.hash(state);
    }
}

/// The number of one parent's rows matching a nested connection's filter.
pub struct ChildCount<R: Resource>(pub ChildPage<R>);

impl<R: Resource> Clone for ChildCount<R> {
    fn clone(&self) -> Self {
        ChildCount(self.0.clone())
    }
}
impl<R: Resource> PartialEq for ChildCount<R> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<R: Resource> Eq for ChildCount<R> {}
impl<R: Resource> Hash for ChildCount<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

/// Keys grouped by connection shape.
fn by_shape<R: Resource>(keys: &[ChildPage<R>]) -> Vec<(Arc<Children<R>>, Vec<String>)> {
    let mut groups: Vec<(Arc<Children<R>>, Vec<String>)> = Vec::new();
    for k in keys {
        match groups.iter_mut().find(|(c, _)| c.shape == k.children.shape) {
            Some((_, parents)) => parents.push(k.parent.clone()),
            None => groups.push((k.children.clone(), vec![k.parent.clone()])),
        }
    }
    groups
}

impl<R> Loader<ChildPage<R>> for Batch
where
    R: Resource,
    <R::Entity as EntityTrait>::Column: Send + Sync,
{
    type Value = Arc<Page<R>>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ChildPage<R>],
    ) -> Result<HashMap<ChildPage<R>, Arc<Page<R>>>, LoadError> {
        let mut out = HashMap::new();
        for (children, parents) in by_shape(keys) {
            // Arguments were checked when the connection was resolved.
            let window = children
                .args
                .window(&children.key)
                .map_err(|e| Arc::new(DbErr::Custom(e.message)))?;
            let pages = pages_by_parent::<R, _>(
                self.reader.db(),
                children.select.clone().filter(children.filter.clone()),
                children.parent,
                &parents,
                &children.key,
                &window,
                &children.reads,
            )
            .await
            .map_err(Arc::new)?;
            for (parent, page) in pages {
                out.insert(
                    ChildPage {
                        parent,
                        children: children.clone(),
                    },
                    Arc::new(page),
                );
            }
        }
        Ok(out)
    }
}

impl<R> Loader<ChildCount<R>> for Batch
where
    R: Resource,
    <R::Entity as EntityTrait>::Column: Send + Sync,
{
    type Value = i64;
    type Error = LoadError;
    async fn load(&self, keys: &[ChildCount<R>]) -> Result<HashMap<ChildCount<R>, i64>, LoadError> {
        let pages: Vec<ChildPage<R>> = keys.iter().map(|k| k.0.clone()).collect();
        let mut out = HashMap::new();
        for (children, parents) in by_shape(&pages) {
            let counts: Vec<(String, i64)> = children
                .select
                .clone()
                .filter(children.filter.clone())
                .filter(children.parent.is_in(parents.iter().cloned()))
                .select_only()
                .column(children.parent)
                .column_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), "count")
                .group_by(children.parent)
                .into_tuple()
                .all(self.reader.db())
                .await
                .map_err(Arc::new)?;
            let counts: HashMap<String, i64> = counts.into_iter().collect();
            for parent in parents {
                let n = counts.get(&parent).copied().unwrap_or(0);
                out.insert(
                    ChildCount(ChildPage {
                        parent,
                        children: children.clone(),
                    }),
                    n,
                );
            }
        }
        Ok(out)
    }
}
