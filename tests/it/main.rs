//! Black-box tests: each starts the real server on a random port with a
//! fresh database (SQLite by default; PostgreSQL when
//! LEADQL_TEST_DATABASE_URL is set) and talks HTTP to it.

mod access;
mod callbacks;
mod common;
mod connections;
mod convergence;
mod counts;
mod crash;
mod fanout;
mod filters;
mod fuzz;
mod graphiql_browser;
mod graphql;
mod import;
mod keys;
mod metrics;
mod outage;
mod overload;
mod persisted;
mod reproject;
mod retention;
mod roles;
mod rollup;
mod scoped_feeds;
mod subscriptions;
mod traces;
mod webhook;
