//! What every resource uses: the declaration's run-time half
//! ([`resource`]), filter operators and their fold into SQL and into the
//! live-event matcher ([`filter`]), text search ([`search`]), sort keys
//! and cursors ([`keyset`]), pages ([`page`]) and Relay connections
//! ([`connection`]), `orderBy` ([`order`]), to-one relations read by join
//! ([`join`]), batched loading ([`loader`], run in the request's task by
//! [`drive`]), and the parsed-query cache that keeps response fields in
//! query order ([`documents`]).

pub mod connection;
pub mod documents;
pub mod drive;
pub mod filter;
pub mod join;
pub mod keyset;
pub mod loader;
pub mod order;
pub mod page;
pub mod resource;
pub mod search;
