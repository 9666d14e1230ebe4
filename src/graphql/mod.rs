//! The GraphQL API: schema, execution with per-request loaders and limits,
//! and the HTTP routes.

pub mod aggregate;
pub mod connection;
pub mod filter;
mod graphiql;
mod http;
pub mod loader;
pub mod order;
mod order_fields;
pub mod page;
pub mod query;
pub mod search;
pub mod types;

use crate::store::read::Reader;
use async_graphql::{EmptyMutation, EmptySubscription, Schema};
use std::sync::Arc;
use std::time::Duration;

pub use http::router;

pub type LeadqlSchema = Schema<query::Query, EmptyMutation, EmptySubscription>;

/// Limits on what one query may ask for.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_complexity: 250_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The schema, with its limits.
pub fn schema(limits: Limits) -> LeadqlSchema {
    Schema::build(query::Query, EmptyMutation, EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .extension(OperationNames)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema(Limits::default()).sdl()
}

/// Where the name of the operation a request ran is left (the named
/// operation of the document, also when the client sent no
/// `operationName`), for metrics and logs.
#[derive(Clone, Default)]
pub struct OperationName(Arc<std::sync::Mutex<Option<String>>>);

impl OperationName {
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|n| n.clone())
    }
}

struct OperationNames;

impl async_graphql::extensions::ExtensionFactory for OperationNames {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        Arc::new(OperationNames)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for OperationNames {
    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        if let (Some(slot), Some(name)) = (ctx.data_opt::<OperationName>(), operation_name) {
            if let Ok(mut slot) = slot.0.lock() {
                *slot = Some(name.to_string());
            }
        }
        next.run(ctx, operation_name).await
    }
}

/// Execute one request with a fresh loader, all of its loads batched per
/// level inside the request's task.
pub async fn execute(
    schema: &LeadqlSchema,
    reader: Reader,
    request: async_graphql::Request,
    name: OperationName,
) -> async_graphql::Response {
    let queue = loader::Queue::default();
    let loaders = Arc::new(loader::loaders(reader.clone(), &queue));
    let query = request.query.clone();
    let request = request.data(reader).data(loaders).data(name.clone());
    let mut response = loader::drive(queue, schema.execute(request)).await;
    order_fields::restore(&mut response.data, &query, name.get().as_deref());
    response
}
