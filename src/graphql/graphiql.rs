//! GraphiQL, served by leadql itself.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn page() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "GraphiQL is not part of this build yet; POST queries to /graphql",
    )
        .into_response()
}
