//! The GraphQL API: schema, execution with per-request loaders and limits,
//! and the transports (HTTP, WebSocket, GraphiQL). The schema is in two
//! halves: [`resources`] (one file per type: its declaration, relations
//! and root fields) and [`engine`] (what they all use).

pub mod aggregate;
pub mod engine;
pub mod graphiql;
mod http;
pub mod persisted;
pub mod query;
pub mod resources;
pub mod subscription;
mod ws;

use crate::store::read::Reader;
use async_graphql::{EmptyMutation, Schema};
use std::sync::Arc;
use std::time::Duration;

pub use http::{router, ws_router};

pub type LeadqlSchema = Schema<query::Query, EmptyMutation, subscription::Subscription>;

/// Limits on what one query may ask for, and how its reads are planned.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub timeout: Duration,
    /// From how many rows meeting a condition a list in time order is
    /// read by walking its time index and asking each row, rather than by
    /// reading every row that meets it and sorting them (see
    /// `resources::activity`'s `reading`).
    pub walk_from: u64,
    /// How many rows a page in order walks, asking each, before it reads
    /// every row that meets its condition instead, where no bounded count
    /// can tell which is cheaper (PostgreSQL's text search; see
    /// `engine::page::Reading::First`). 0: never walk.
    pub walk_first: u64,
}

/// The default of [`Limits::walk_from`].
pub const WALK_FROM: u64 = 1_000;

/// The default of [`Limits::walk_first`].
pub const WALK_FIRST: u64 = 1_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_complexity: 250_000,
            timeout: Duration::from_secs(10),
            walk_from: WALK_FROM,
            walk_first: WALK_FIRST,
        }
    }
}

/// The schema, with its limits; subscriptions need the instance's feed.
pub fn schema(limits: Limits, feed: Option<crate::feed::Feed>) -> LeadqlSchema {
    build(limits, feed, async_graphql::ValidationMode::Strict)
}

/// The schema for query texts that passed its full validation before:
/// only the depth and complexity limits are checked again (they depend on
/// variables); the rest depends on the text alone.
pub fn known_schema(limits: Limits, feed: Option<crate::feed::Feed>) -> LeadqlSchema {
    build(limits, feed, async_graphql::ValidationMode::Fast)
}

fn build(
    limits: Limits,
    feed: Option<crate::feed::Feed>,
    mode: async_graphql::ValidationMode,
) -> LeadqlSchema {
    let mut builder = Schema::build(
        query::Query::default(),
        EmptyMutation,
        subscription::Subscription,
    )
    .validation_mode(mode)
    .data(limits);
    if let Some(feed) = feed {
        builder = builder.data(feed);
    }
    builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema(Limits::default(), None).sdl()
}

static DOCUMENTS: std::sync::LazyLock<engine::documents::Documents> =
    std::sync::LazyLock::new(Default::default);

/// A request's parsed query (cached by text) and operation name, looked up
/// once and used both for metrics and for the response's field order.
pub struct Prepared {
    doc: Option<engine::documents::Cached>,
    /// The operation's name, if it has one.
    pub name: Option<String>,
}

pub fn prepare(request: &async_graphql::Request) -> Prepared {
    let doc = DOCUMENTS.get(&request.query);
    let name = doc
        .as_ref()
        .and_then(|d| engine::documents::operation_name(&d.doc, request.operation_name.as_deref()));
    Prepared { doc, name }
}

/// Execute one request with a fresh loader, all of its loads batched per
/// level inside the request's task; the response's fields come in the
/// query's order.
pub async fn execute(
    schema: &LeadqlSchema,
    known: &LeadqlSchema,
    deadline: std::time::Instant,
    reader: Reader,
    request: async_graphql::Request,
    prepared: &Prepared,
) -> async_graphql::Response {
    let queue = engine::loader::Queue::default();
    let loaders = Arc::new(engine::loader::loaders(reader.clone(), &queue));
    let mut request = request.data(reader).data(loaders);
    let mut schema = schema;
    if let Some(cached) = &prepared.doc {
        // Copying the cached parse costs a fraction of parsing the text
        // again (async-graphql's parser is a PEG interpreter).
        request.set_parsed_query((*cached.doc).clone());
        if cached.validated() {
            schema = known;
        }
    }
    let mut response = engine::drive::drive(queue, deadline, schema.execute(request)).await;
    if let Some(cached) = &prepared.doc {
        // Data means the text passed validation (a refused request has none).
        if response.data != async_graphql::Value::Null {
            cached.set_validated();
        }
        engine::documents::restore(&mut response.data, &cached.doc, prepared.name.as_deref());
    }
    response
}
