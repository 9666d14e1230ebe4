//! Connection types and the resolvers that fill them, for root lists and
//! for nested lists (which go through the request's loader).

use super::loader::{ChildCount, ChildPage, Children, Loaders};
use super::page::{page, KeyPart, Page, PageArgs, PageInfo, SortKey};
use crate::store::read::{Reader, Scoped};
use async_graphql::{Context, ErrorExtensions};
use futures::future::BoxFuture;
use sea_orm::{
    Condition, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, Select,
};
use std::sync::Arc;

/// How `totalCount` is found, only when a client asks for it.
pub struct Total(Box<dyn Fn() -> BoxFuture<'static, async_graphql::Result<i64>> + Send + Sync>);

impl Total {
    pub async fn get(&self) -> async_graphql::Result<i64> {
        (self.0)().await
    }
}

/// A database failure as a GraphQL error: logged in full, shown to the
/// client without internals.
pub fn db_error(err: &DbErr) -> async_graphql::Error {
    if crate::store::is_unavailable(err) {
        tracing::warn!(error = %err, "database unavailable during a query");
        async_graphql::Error::new("the database is unavailable; try again shortly")
            .extend_with(|_, e| e.set("code", "DATABASE_UNAVAILABLE"))
    } else {
        tracing::error!(error = %err, "query failed");
        async_graphql::Error::new("internal error while reading the database")
            .extend_with(|_, e| e.set("code", "INTERNAL_SERVER_ERROR"))
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

/// A root list: one page of `select` (filtered) plus a lazy count.
pub async fn root<E>(
    reader: &Reader,
    select: Select<E>,
    key: SortKey<E>,
    args: PageArgs,
) -> async_graphql::Result<(Page<E::Model>, Total)>
where
    E: EntityTrait + Send + Sync,
    E::Model: FromQueryResult + Send + Sync,
{
    let window = args.window(&key)?;
    let page = page(reader.db(), select.clone(), &key, &window)
        .await
        .map_err(|e| db_error(&e))?;
    let db = reader.db().clone();
    let total = Total(Box::new(move || {
        let select = select.clone();
        let db = db.clone();
        Box::pin(async move {
            select
                .count(&db)
                .await
                .map(|n| n as i64)
                .map_err(|e| db_error(&e))
        })
    }));
    Ok((page, total))
}

/// What a nested list needs besides its arguments.
pub struct Nested<E: EntityTrait> {
    pub parent: E::Column,
    pub parent_of: fn(&E::Model) -> &str,
}

/// One parent's page of a nested list, loaded together with the same list
/// of every sibling parent.
#[allow(clippy::too_many_arguments)]
pub async fn nested<E>(
    ctx: &Context<'_>,
    reader: &Reader,
    parent_id: &str,
    how: Nested<E>,
    filter: Condition,
    shape: String,
    key: SortKey<E>,
    args: PageArgs,
) -> async_graphql::Result<(Arc<Page<E::Model>>, Total)>
where
    E: Scoped + Send + Sync,
    E::Model: FromQueryResult + Send + Sync,
    E::Column: Send + Sync,
{
    // Check the arguments here, so a bad cursor is this field's error.
    args.window(&key)?;
    let loaders = ctx.data_unchecked::<Arc<Loaders>>().clone();
    let key = ChildPage {
        parent: parent_id.to_string(),
        children: Arc::new(Children {
            shape,
            select: reader.find::<E>(),
            filter,
            parent: how.parent,
            parent_of: how.parent_of,
            key,
            args,
        }),
    };
    let page = loaders
        .load_one(key.clone())
        .await
        .map_err(|e| db_error(&e))?
        .unwrap_or_else(|| Arc::new(Page::empty()));
    let total = Total(Box::new(move || {
        let loaders = loaders.clone();
        let key = ChildCount(key.clone());
        Box::pin(async move {
            Ok(loaders
                .load_one(key)
                .await
                .map_err(|e| db_error(&e))?
                .unwrap_or(0))
        })
    }));
    Ok((page, total))
}

impl<M> Page<M> {
    pub fn empty() -> Self {
        Page {
            rows: Vec::new(),
            info: PageInfo::default(),
        }
    }
}

/// A filter applied to a select.
pub fn filtered<E: EntityTrait>(select: Select<E>, cond: Condition) -> Select<E> {
    select.filter(cond)
}

/// Key parts helper: a sort key from the requested parts and the unique key.
pub fn sort_key<E: EntityTrait>(requested: Vec<KeyPart<E>>, unique: Vec<KeyPart<E>>) -> SortKey<E> {
    SortKey::new(requested, unique)
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
            pub page_info: $crate::graphql::page::PageInfo,
            pub total: $crate::graphql::connection::Total,
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
            async fn page_info(&self) -> &$crate::graphql::page::PageInfo {
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
            pub fn from_page<M>(
                page: $crate::graphql::page::Page<M>,
                total: $crate::graphql::connection::Total,
            ) -> Self
            where
                $node: From<M>,
            {
                $conn {
                    edges: page
                        .rows
                        .into_iter()
                        .map(|(cursor, m)| $edge {
                            cursor,
                            node: <$node>::from(m),
                        })
                        .collect(),
                    page_info: page.info,
                    total,
                }
            }

            /// The connection for a page the loader handed out: moved if
            /// this field is its only user, copied otherwise.
            pub fn from_shared<M: Clone>(
                page: std::sync::Arc<$crate::graphql::page::Page<M>>,
                total: $crate::graphql::connection::Total,
            ) -> Self
            where
                $node: From<M>,
            {
                Self::from_page(std::sync::Arc::unwrap_or_clone(page), total)
            }
        }
    };
}
pub(crate) use connection;
