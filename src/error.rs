//! The one error type of every answer leadql gives: a status, a stable
//! code and a message that says what was wrong. Internal details are
//! logged, never sent.
//!
//! The webhook answers it as JSON (`{"error": code, "message": …}`);
//! GraphQL answers it as a GraphQL error whose `extensions.code` is the
//! same code in capitals (`database_unavailable` → `DATABASE_UNAVAILABLE`),
//! inside a response or, when the request is refused as a whole, as the
//! whole answer with the status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sea_orm::DbErr;
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Further fields of the webhook answer (e.g. `line`, `column`,
    /// `rejectedId`).
    pub details: Map<String, Value>,
    /// Seconds to wait before trying again (503, 429).
    pub retry_after: Option<u64>,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(5);
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            message,
        )
    }

    /// A client mistake in a GraphQL request (a bad cursor, argument or
    /// filter).
    pub fn bad_input(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_user_input", message)
    }

    /// A database failure: 503 when the database is unavailable (retry),
    /// else 500; logged in full, told without internals.
    pub fn database(err: &DbErr) -> Self {
        if crate::store::is_unavailable(err) {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::unavailable("the database is unavailable; try again shortly")
        } else {
            tracing::error!(error = %err, "database statement failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "internal error while reading the database",
            )
        }
    }

    /// The code as GraphQL clients see it: `extensions.code`.
    pub fn graphql_code(&self) -> String {
        self.code.to_ascii_uppercase()
    }

    /// As an error inside a GraphQL response.
    pub fn graphql(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions;
        let code = self.graphql_code();
        async_graphql::Error::new(self.message).extend_with(move |_, e| e.set("code", code.clone()))
    }

    /// A GraphQL-over-HTTP answer refusing the whole request.
    pub fn graphql_response(self) -> Response {
        let body = json!({
            "errors": [{ "message": self.message, "extensions": { "code": self.graphql_code() } }]
        });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        retry_after(&mut response, self.retry_after);
        response
    }
}

fn retry_after(response: &mut Response, seconds: Option<u64>) {
    if let Some(v) = seconds.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.graphql()
    }
}

/// The webhook's answer.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        body.extend(self.details);
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        retry_after(&mut response, self.retry_after);
        response
    }
}

/// [`ApiError::bad_input`] as a GraphQL error.
pub fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    ApiError::bad_input(message).graphql()
}
