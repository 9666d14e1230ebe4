//! Automatic persisted queries, Apollo's protocol: a client sends
//! `extensions.persistedQuery {version: 1, sha256Hash}` without the query
//! text; an unknown hash answers `PersistedQueryNotFound`, and the client
//! sends hash and text once, which stores the text here. Over GET, the
//! answer can then be cached by a CDN under its URL.
//!
//! The texts are kept in a bounded cache per instance (moka); the request
//! goes on with its text restored, so it is parsed, validated and executed
//! like any other (and shares the parsed-document cache).

use crate::error::ApiError;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The persisted query texts of an instance, by SHA-256 (hex).
#[derive(Clone)]
pub struct Persisted(moka::sync::Cache<String, Arc<str>>);

impl Persisted {
    /// Keep at most `capacity` texts.
    pub fn new(capacity: u64) -> Self {
        Persisted(moka::sync::Cache::new(capacity.max(1)))
    }

    /// Resolve `request`'s persisted query, if it names one: restore its
    /// text from the hash, or store the text it sends. Ok(true) when the
    /// request used a persisted query.
    pub fn resolve(&self, request: &mut async_graphql::Request) -> Result<bool, ApiError> {
        let Some(value) = request.extensions.remove("persistedQuery") else {
            return Ok(false);
        };
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
        let json = value
            .into_json()
            .map_err(|e| bad(format!("extensions.persistedQuery: {e}")))?;
        let version = json.get("version").and_then(|v| v.as_i64());
        if version != Some(1) {
            return Err(bad(
                "extensions.persistedQuery.version must be 1 (Apollo's automatic persisted queries)"
                    .into(),
            ));
        }
        let Some(hash) = json.get("sha256Hash").and_then(|h| h.as_str()) else {
            return Err(bad(
                "extensions.persistedQuery.sha256Hash must be the query's SHA-256 in hex".into(),
            ));
        };
        let hash = hash.to_ascii_lowercase();
        if request.query.trim().is_empty() {
            match self.0.get(&hash) {
                Some(text) => request.query = text.to_string(),
                None => {
                    // The code and message Apollo's clients look for, to
                    // send the text with the hash.
                    return Err(ApiError::new(
                        StatusCode::OK,
                        "persisted_query_not_found",
                        "PersistedQueryNotFound",
                    ));
                }
            }
        } else {
            let actual = hex::encode(Sha256::digest(request.query.as_bytes()));
            if actual != hash {
                return Err(bad(format!(
                    "provided sha does not match query: the query's SHA-256 is {actual}"
                )));
            }
            self.0.insert(hash, Arc::from(request.query.as_str()));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, hash: &str) -> async_graphql::Request {
        let mut r = async_graphql::Request::new(query);
        r.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(serde_json::json!({"version": 1, "sha256Hash": hash}))
                .unwrap(),
        );
        r
    }

    #[test]
    fn unknown_then_stored_then_answered_by_hash() {
        let p = Persisted::new(10);
        let query = "{ leadFunnel { count } }";
        let hash = hex::encode(Sha256::digest(query.as_bytes()));
        let err = p.resolve(&mut request("", &hash)).unwrap_err();
        assert_eq!(err.graphql_code(), "PERSISTED_QUERY_NOT_FOUND");
        assert!(p.resolve(&mut request(query, &hash)).unwrap());
        let mut by_hash = request("", &hash.to_ascii_uppercase());
        assert!(p.resolve(&mut by_hash).unwrap());
        assert_eq!(by_hash.query, query);
        assert!(by_hash.extensions.get("persistedQuery").is_none());
        // A hash that is not the text's is refused, and stores nothing.
        let other = hex::encode(Sha256::digest(b"{ x }"));
        let err = p.resolve(&mut request(query, &other)).unwrap_err();
        assert_eq!(err.graphql_code(), "BAD_REQUEST");
        assert!(p.resolve(&mut request("", &other)).is_err());
        // Not a persisted query: untouched.
        let mut plain = async_graphql::Request::new(query);
        assert!(!p.resolve(&mut plain).unwrap());
    }
}
