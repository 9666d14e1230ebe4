//! Connection types and the resolvers that fill them, for root lists and
//! for nested lists (which go through the request's loader).

use super::join::Reads;
use super::loader::{ChildCount, ChildPage, Children, Loaders};
use super::page::{narrow, page_by, rows, Page, PageArgs, PageInfo, Reading, SortKey};
use super::resource::Resource;
use crate::error::ApiError;
use crate::store::read::{ReadDb, Reader, Scoped};
use async_graphql::context::SelectionField;
use async_graphql::Context;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement};
use sea_orm::{Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QuerySelect, Select};
use std::sync::Arc;

/// How `totalCount` is found, only when a client asks for it.
pub struct Total(Box<dyn Fn() -> BoxFuture<'static, async_graphql::Result<i64>> + Send + Sync>);

impl Total {
    /// A count known already (a list paged in memory).
    pub fn known(count: i64) -> Total {
        Total(Box::new(move || Box::pin(async move { Ok(count) })))
    }

    /// The number of rows `select` finds, counted when a client asks.
    pub fn rows<E>(db: &ReadDb, select: Select<E>) -> Total
    where
        E: EntityTrait + Send + Sync,
        E::Model: Send + Sync,
    {
        let db = db.clone();
        Total(Box::new(move || {
            let select = select.clone();
            let db = db.clone();
            Box::pin(async move {
                select
                    .count(&db)
                    .await
                    .map(|n| n as i64)
                    .map_err(|e| ApiError::database(&e).into())
            })
        }))
    }

    /// The one number `statement` selects (a rollup's sum), read when a
    /// client asks: a count the rollups answer.
    pub fn number(db: &ReadDb, statement: SelectStatement) -> Total {
        let db = db.clone();
        let statement = Arc::new(statement);
        Total(Box::new(move || {
            let (db, statement) = (db.clone(), statement.clone());
            Box::pin(async move {
                let row = db
                    .query_one(&*statement)
                    .await
                    .map_err(|e| ApiError::database(&e))?;
                let n: Option<i64> = match row {
                    Some(row) => row
                        .try_get_by_index(0)
                        .map_err(|e| ApiError::database(&e))?,
                    None => None,
                };
                Ok(n.unwrap_or(0))
            })
        }))
    }

    pub async fn get(&self) -> async_graphql::Result<i64> {
        (self.0)().await
    }
}

/// Cost of a connection field for the complexity limit: its page size
/// times the cost of one node.
pub fn cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first
        .or(last)
        .map(|n| n.clamp(0, super::page::MAX_PAGE as i32) as usize)
        .unwrap_or(super::page::DEFAULT_PAGE as usize);
    n.max(1).saturating_mul(child).saturating_add(1)
}

/// The fields a connection's nodes are asked for, under `nodes` and
/// `edges { node }`.
pub fn node_fields<'a>(ctx: &'a Context<'a>) -> Vec<SelectionField<'a>> {
    let mut nodes = Vec::new();
    for f in ctx.field().selection_set() {
        match f.name() {
            "nodes" => nodes.extend(f.selection_set()),
            "edges" => {
                for e in f.selection_set().filter(|e| e.name() == "node") {
                    nodes.extend(e.selection_set());
                }
            }
            _ => {}
        }
    }
    nodes
}

/// Whether `rows` gives at least `n` rows, reading at most `n` of them: a
/// count whose cost is bounded, to choose how a page is read (see
/// `resources::activity`'s `reading`).
pub async fn at_least(
    db: &ReadDb,
    mut rows: SelectStatement,
    n: u64,
) -> async_graphql::Result<bool> {
    rows.limit(n);
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(rows, Alias::new("found"))
        .to_owned();
    Ok(Total::number(db, count).get().await? as u64 >= n)
}

/// Whether the list field of `ctx` is asked for rows (`edges`, `nodes`
/// or `pageInfo`), not only its `totalCount`.
pub fn paged(ctx: &Context<'_>) -> bool {
    ctx.field()
        .selection_set()
        .any(|f| matches!(f.name(), "edges" | "nodes" | "pageInfo"))
}

/// A sort by personal data is refused to a reader that may not read it:
/// the order (and the cursors, which hold the values) would tell it.
fn sorts_allowed<E: EntityTrait>(reader: &Reader, key: &SortKey<E>) -> async_graphql::Result<()> {
    if reader.role().reads_personal_data() {
        return Ok(());
    }
    match key.parts.iter().find(|p| p.personal) {
        Some(part) => Err(crate::access::forbidden(&format!(
            "sorting by `{}`",
            part.name
        ))),
        None => Ok(()),
    }
}

/// A root list: one page of `select` (filtered), reading the columns the
/// nodes are asked for, plus a lazy count.
pub async fn root<R: Resource>(
    ctx: &Context<'_>,
    reader: &Reader,
    select: Select<R::Entity>,
    key: SortKey<R::Entity>,
    args: PageArgs,
) -> async_graphql::Result<(Page<R>, Total)>
where
    R::Entity: Send + Sync,
    <R::Entity as EntityTrait>::Model: Send + Sync,
{
    root_by(ctx, reader, select, Reading::List, key, args).await
}

/// [`root`], with the page's rows found as `reading` says (the count is
/// `select`'s).
pub async fn root_by<R: Resource>(
    ctx: &Context<'_>,
    reader: &Reader,
    select: Select<R::Entity>,
    reading: Reading<R::Entity>,
    key: SortKey<R::Entity>,
    args: PageArgs,
) -> async_graphql::Result<(Page<R>, Total)>
where
    R::Entity: Send + Sync,
    <R::Entity as EntityTrait>::Model: Send + Sync,
{
    sorts_allowed(reader, &key)?;
    let window = args.window(&key)?;
    // A list asked only for its `totalCount` (a badge) reads no page.
    let page = if paged(ctx) {
        let reads = Reads::of::<R>(&node_fields(ctx));
        page_by(reader.db(), select.clone(), reading, &key, &window, &reads)
            .await
            .map_err(|e| ApiError::database(&e))?
    } else {
        Page::empty()
    };
    Ok((page, Total::rows(reader.db(), select)))
}

/// One parent's page of a nested list (the rows of `R` whose `parent`
/// column is `parent_id`), loaded together with the same list of every
/// sibling parent.
pub async fn nested<R: Resource>(
    ctx: &Context<'_>,
    parent: <R::Entity as EntityTrait>::Column,
    parent_id: &str,
    filter: Condition,
    shape: String,
    key: SortKey<R::Entity>,
    args: PageArgs,
) -> async_graphql::Result<(Arc<Page<R>>, Total)>
where
    R::Entity: Scoped + Send + Sync,
    <R::Entity as EntityTrait>::Column: Send + Sync,
{
    // Check the arguments here, so a bad cursor is this field's error.
    args.window(&key)?;
    let reader = ctx.data_unchecked::<Reader>();
    sorts_allowed(reader, &key)?;
    let reads = Reads::of::<R>(&node_fields(ctx));
    let loaders = ctx.data_unchecked::<Arc<Loaders>>().clone();
    let key = ChildPage {
        parent: parent_id.to_string(),
        children: Arc::new(Children {
            shape: format!("{shape}|{reads:?}"),
            select: reader.find::<R::Entity>(),
            filter,
            parent,
            key,
            args,
            reads,
        }),
    };
    let page = loaders
        .load_one(key.clone())
        .await
        .map_err(|e| ApiError::database(&e))?
        .unwrap_or_else(|| Arc::new(Page::empty()));
    let total = Total(Box::new(move || {
        let loaders = loaders.clone();
        let key = ChildCount(key.clone());
        Box::pin(async move {
            Ok(loaders
                .load_one(key)
                .await
                .map_err(|e| ApiError::database(&e))?
                .unwrap_or(0))
        })
    }));
    Ok((page, total))
}

/// The one row of `select` (a lookup by key at the root), reading the
/// columns this field's selection needs.
pub async fn one<R: Resource>(
    ctx: &Context<'_>,
    reader: &Reader,
    select: Select<R::Entity>,
) -> async_graphql::Result<Option<R>> {
    let cols = R::selected(ctx.field().selection_set());
    let found = rows(reader.db(), narrow(select, cols).limit(1))
        .await
        .map_err(|e| ApiError::database(&e))?;
    found
        .first()
        .map(|row| R::from_row(row, cols).map_err(|e| ApiError::database(&e).into()))
        .transpose()
}

impl<M> Page<M> {
    pub fn empty() -> Self {
        Page {
            rows: Vec::new(),
            info: PageInfo::default(),
        }
    }
}

/// Declare `$conn` / `$edge` for node type `$node`.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $conn_doc:literal, $edge_doc:literal) => {
        #[doc = $edge_doc]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Pass as `after` (or `before`) to continue from this node.
            pub cursor: String,
            /// The item at this place in the list.
            pub node: $node,
        }

        #[doc = $conn_doc]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::engine::page::PageInfo,
            pub total: $crate::graphql::engine::connection::Total,
        }

        #[async_graphql::Object(rename_fields = "camelCase")]
        #[doc = $conn_doc]
        impl $conn {
            /// The nodes of this page, each with its cursor.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            /// The nodes of this page, without cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            /// Where this page sits in the whole list.
            async fn page_info(&self) -> &$crate::graphql::engine::page::PageInfo {
                &self.page_info
            }
            /// How many nodes the whole list holds (all pages), counted only
            /// when asked for.
            async fn total_count(&self) -> async_graphql::Result<i64> {
                self.total.get().await
            }
        }

        impl $conn {
            /// The connection for `page`, its rows moved into the edges.
            pub fn from_page(
                page: $crate::graphql::engine::page::Page<$node>,
                total: $crate::graphql::engine::connection::Total,
            ) -> Self {
                $conn {
                    edges: page
                        .rows
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info: page.info,
                    total,
                }
            }

            /// The connection for a page the loader handed out: moved if
            /// this field is its only user, copied otherwise.
            pub fn from_shared(
                page: std::sync::Arc<$crate::graphql::engine::page::Page<$node>>,
                total: $crate::graphql::engine::connection::Total,
            ) -> Self {
                Self::from_page(std::sync::Arc::unwrap_or_clone(page), total)
            }
        }
    };
}
pub(crate) use connection;
