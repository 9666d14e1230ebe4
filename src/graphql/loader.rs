//! Batched loading of nested fields (async-graphql DataLoader).
//!
//! A request gets its own [`DataLoader`]; its loads do not run on other
//! tasks after a timer, as DataLoader does by default, but inside the
//! request's own task once every sibling field has asked ([`drive`]). So a
//! page of 50 activities asks for their 50 conversations in one statement,
//! deterministically, and without the default 1 ms wait per nesting level.

use super::page::{pages_by_parent, Page, PageArgs, SortKey};
use crate::store::read::{Reader, Scoped};
use async_graphql::dataloader::{DataLoader, Loader};
use entity::{activity, analysis, conversation, lead, lead_update};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// Loads waiting to run in the request's task.
#[derive(Clone, Default)]
pub struct Queue(Arc<Mutex<Vec<BoxFuture<'static, ()>>>>);

/// The per-request loader.
pub type Loaders = DataLoader<Batch>;

/// A request's loader; its loads run inside [`drive`] with the same queue.
pub fn loaders(reader: Reader, queue: &Queue) -> Loaders {
    let queue = queue.clone();
    DataLoader::new(Batch { reader }, move |fut: BoxFuture<'static, ()>| {
        queue.0.lock().unwrap_or_else(|e| e.into_inner()).push(fut);
    })
    .delay(std::time::Duration::ZERO)
}

/// A loader for subscriptions, whose fields resolve outside [`drive`]:
/// loads run on their own tasks after DataLoader's short wait.
pub fn spawning_loaders(reader: Reader) -> Loaders {
    DataLoader::new(Batch { reader }, |fut: BoxFuture<'static, ()>| {
        tokio::spawn(fut);
    })
}

/// Run `fut` (a GraphQL execution) and, whenever it is waiting, the loads
/// it queued: every field of one level has registered its key by then, so
/// each level costs one statement per kind of data.
///
/// "Waiting" means waiting on something else: a list of more than 30
/// fields is resolved through `FuturesUnordered`, which returns early and
/// wakes itself to be fair to other tasks; such a poll is repeated before
/// the queued loads start, so siblings past the 30th join the batch.
///
/// Past `deadline` it stops making progress and yields, so the caller's
/// time limit (checked only when this is pending) takes effect even when
/// the database answers so fast that the work never waits.
pub async fn drive<T>(
    queue: Queue,
    deadline: std::time::Instant,
    fut: impl Future<Output = T>,
) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
    let wake = Arc::new(SelfWake::default());
    std::future::poll_fn(move |cx| {
        wake.set_outer(cx.waker());
        let waker = futures::task::waker_ref(&wake);
        let mut inner = std::task::Context::from_waker(&waker);
        let mut repolls = 0;
        loop {
            if std::time::Instant::now() >= deadline {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            wake.woken.store(false, Ordering::SeqCst);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut inner) {
                return Poll::Ready(out);
            }
            if wake.woken.load(Ordering::SeqCst) && repolls < 1024 {
                repolls += 1;
                continue;
            }
            let queued: Vec<_> =
                std::mem::take(&mut *queue.0.lock().unwrap_or_else(|e| e.into_inner()));
            let added = !queued.is_empty();
            running.extend(queued);
            let mut finished = false;
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                finished = true;
            }
            if !added && !finished {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// A waker that remembers being woken and passes the wake on.
#[derive(Default)]
struct SelfWake {
    woken: AtomicBool,
    outer: Mutex<Option<std::task::Waker>>,
}

impl SelfWake {
    fn set_outer(&self, waker: &std::task::Waker) {
        let mut outer = self.outer.lock().unwrap_or_else(|e| e.into_inner());
        if !outer.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *outer = Some(waker.clone());
        }
    }
}

impl futures::task::ArcWake for SelfWake {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::SeqCst);
        if let Some(w) = this
            .outer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

/// What the loader reads with.
pub struct Batch {
    reader: Reader,
}

/// Loader errors are shared between the fields that waited on one batch.
pub type LoadError = Arc<DbErr>;

/// A lead by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeadById(pub String);
/// An activity by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ActivityById(pub String);
/// The conversation of an activity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationOf(pub String);
/// The analysis of an activity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AnalysisOf(pub String);
/// Every update result of a lead, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdatesOf(pub String);

async fn by_column<E, K>(
    reader: &Reader,
    col: E::Column,
    keys: &[K],
    key_of: impl Fn(&K) -> &str,
    model_key: impl Fn(&E::Model) -> &str,
) -> Result<HashMap<K, E::Model>, LoadError>
where
    E: Scoped,
    E::Model: FromQueryResult + Send + Sync,
    K: Clone + Eq + Hash,
{
    let ids: Vec<String> = keys.iter().map(|k| key_of(k).to_string()).collect();
    let rows = reader
        .find::<E>()
        .filter(col.is_in(ids))
        .all(reader.db())
        .await
        .map_err(Arc::new)?;
    let mut by_id: HashMap<String, E::Model> = rows
        .into_iter()
        .map(|m| (model_key(&m).to_string(), m))
        .collect();
    Ok(keys
        .iter()
        .filter_map(|k| by_id.remove(key_of(k)).map(|m| (k.clone(), m)))
        .collect())
}

impl Loader<LeadById> for Batch {
    type Value = lead::Model;
    type Error = LoadError;
    async fn load(&self, keys: &[LeadById]) -> Result<HashMap<LeadById, lead::Model>, LoadError> {
        by_column::<lead::Entity, _>(&self.reader, lead::Column::Id, keys, |k| &k.0, |m| &m.id)
            .await
    }
}

impl Loader<ActivityById> for Batch {
    type Value = activity::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ActivityById],
    ) -> Result<HashMap<ActivityById, activity::Model>, LoadError> {
        by_column::<activity::Entity, _>(
            &self.reader,
            activity::Column::Id,
            keys,
            |k| &k.0,
            |m| &m.id,
        )
        .await
    }
}

impl Loader<ConversationOf> for Batch {
    type Value = conversation::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ConversationOf],
    ) -> Result<HashMap<ConversationOf, conversation::Model>, LoadError> {
        by_column::<conversation::Entity, _>(
            &self.reader,
            conversation::Column::ActivityId,
            keys,
            |k| &k.0,
            |m| &m.activity_id,
        )
        .await
    }
}

impl Loader<AnalysisOf> for Batch {
    type Value = analysis::Model;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[AnalysisOf],
    ) -> Result<HashMap<AnalysisOf, analysis::Model>, LoadError> {
        by_column::<analysis::Entity, _>(
            &self.reader,
            analysis::Column::ActivityId,
            keys,
            |k| &k.0,
            |m| &m.activity_id,
        )
        .await
    }
}

impl Loader<UpdatesOf> for Batch {
    type Value = Arc<Vec<lead_update::Model>>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[UpdatesOf],
    ) -> Result<HashMap<UpdatesOf, Arc<Vec<lead_update::Model>>>, LoadError> {
        let rows = self
            .reader
            .find::<lead_update::Entity>()
            .filter(lead_update::Column::LeadId.is_in(keys.iter().map(|k| k.0.clone())))
            .order_by_asc(lead_update::Column::Timestamp)
            .order_by_asc(lead_update::Column::Id)
            .all(self.reader.db())
            .await
            .map_err(Arc::new)?;
        let mut by_lead: HashMap<String, Vec<lead_update::Model>> = HashMap::new();
        for row in rows {
            by_lead.entry(row.lead_id.clone()).or_default().push(row);
        }
        Ok(keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    Arc::new(by_lead.remove(&k.0).unwrap_or_default()),
                )
            })
            .collect())
    }
}

/// The rows of one nested connection shape (`lead.activities(filter: …,
/// first: 10)`), for many parents; parents asking with the same arguments
/// share one statement.
pub struct Children<E: EntityTrait> {
    /// Identifies the arguments (filter, order, page), for grouping.
    pub shape: String,
    pub select: Select<E>,
    pub filter: Condition,
    pub parent: E::Column,
    pub parent_of: fn(&E::Model) -> &str,
    pub key: SortKey<E>,
    pub args: PageArgs,
}

/// One parent's page of a nested connection.
pub struct ChildPage<E: EntityTrait> {
    pub parent: String,
    pub children: Arc<Children<E>>,
}

impl<E: EntityTrait> Clone for ChildPage<E> {
    fn clone(&self) -> Self {
        ChildPage {
            parent: self.parent.clone(),
            children: self.children.clone(),
        }
    }
}
impl<E: EntityTrait> PartialEq for ChildPage<E> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.children.shape == other.children.shape
    }
}
impl<E: EntityTrait> Eq for ChildPage<E> {}
impl<E: EntityTrait> Hash for ChildPage<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.children.shape.hash(state);
    }
}

/// The number of one parent's rows matching a nested connection's filter.
pub struct ChildCount<E: EntityTrait>(pub ChildPage<E>);

impl<E: EntityTrait> Clone for ChildCount<E> {
    fn clone(&self) -> Self {
        ChildCount(self.0.clone())
    }
}
impl<E: EntityTrait> PartialEq for ChildCount<E> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<E: EntityTrait> Eq for ChildCount<E> {}
impl<E: EntityTrait> Hash for ChildCount<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

/// Keys grouped by connection shape.
fn by_shape<E: EntityTrait>(keys: &[ChildPage<E>]) -> Vec<(Arc<Children<E>>, Vec<String>)> {
    let mut groups: Vec<(Arc<Children<E>>, Vec<String>)> = Vec::new();
    for k in keys {
        match groups.iter_mut().find(|(c, _)| c.shape == k.children.shape) {
            Some((_, parents)) => parents.push(k.parent.clone()),
            None => groups.push((k.children.clone(), vec![k.parent.clone()])),
        }
    }
    groups
}

impl<E> Loader<ChildPage<E>> for Batch
where
    E: EntityTrait + Send + Sync,
    E::Model: FromQueryResult + Send + Sync,
    E::Column: Send + Sync,
{
    type Value = Arc<Page<E::Model>>;
    type Error = LoadError;
    async fn load(
        &self,
        keys: &[ChildPage<E>],
    ) -> Result<HashMap<ChildPage<E>, Arc<Page<E::Model>>>, LoadError> {
        let mut out = HashMap::new();
        for (children, parents) in by_shape(keys) {
            // Arguments were checked when the connection was resolved.
            let window = children
                .args
                .window(&children.key)
                .map_err(|e| Arc::new(DbErr::Custom(e.message)))?;
            let pages = pages_by_parent(
                self.reader.db(),
                children.select.clone().filter(children.filter.clone()),
                children.parent,
                children.parent_of,
                &parents,
                &children.key,
                &window,
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

impl<E> Loader<ChildCount<E>> for Batch
where
    E: EntityTrait + Send + Sync,
    E::Model: FromQueryResult + Send + Sync,
    E::Column: Send + Sync,
{
    type Value = i64;
    type Error = LoadError;
    async fn load(&self, keys: &[ChildCount<E>]) -> Result<HashMap<ChildCount<E>, i64>, LoadError> {
        let pages: Vec<ChildPage<E>> = keys.iter().map(|k| k.0.clone()).collect();
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
