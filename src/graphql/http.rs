//! GraphQL over HTTP: `POST /graphql`, `GET /graphql` (queries in the URL,
//! cacheable), and GraphiQL for browsers.
//!
//! Answers follow the GraphQL-over-HTTP spec: a client that accepts
//! `application/graphql-response+json` gets that type, and 400 when the
//! request could not be executed at all (syntax, validation, limits);
//! everyone else gets `application/json` and 200 for any executed request.

use crate::store::read::Reader;
use crate::AppState;
use async_graphql::ErrorExtensions;
use async_graphql_axum::GraphQLRequest;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The `/graphql` routes.
pub fn router(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/graphql",
            get(get_graphql)
                .post(post_graphql)
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit)),
        )
        .route("/graphql/assets/{name}", get(super::graphiql::asset))
}

/// `GET /graphql/ws` (not compressed: it upgrades to a WebSocket).
pub fn ws_router() -> Router<AppState> {
    Router::new().route("/graphql/ws", get(super::ws::handler))
}

/// The client prefers the GraphQL-over-HTTP media type.
fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// A request that could not be read as GraphQL.
pub struct Rejection(async_graphql::ParseRequestError);

impl From<async_graphql::ParseRequestError> for Rejection {
    fn from(err: async_graphql::ParseRequestError) -> Self {
        Rejection(err)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        use async_graphql::ParseRequestError as E;
        let (status, message) = match &self.0 {
            E::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".to_string(),
            ),
            E::UnsupportedBatch => (
                StatusCode::BAD_REQUEST,
                "batched requests are not supported; send one operation per request".to_string(),
            ),
            E::Io(err) if err.to_string().contains("length limit") => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".to_string(),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("the request is not a GraphQL request: {other}"),
            ),
        };
        let body = serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }]
        });
        (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response()
    }
}

async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest<Rejection>, Rejection>,
) -> Response {
    match request {
        Ok(request) => execute(&state, &headers, request.into_inner()).await,
        Err(rejection) => rejection.into_response(),
    }
}

async fn get_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let query = uri.query().unwrap_or_default();
    if wants_html(&headers) && !query.contains("query=") {
        return super::graphiql::page();
    }
    let usage = "GET /graphql needs `query` (and optionally `variables` as JSON and `operationName`) in the URL";
    match async_graphql::http::parse_query_string(query) {
        Ok(request) if !request.query.trim().is_empty() => execute(&state, &headers, request).await,
        Ok(_) => Rejection(async_graphql::ParseRequestError::Io(std::io::Error::other(
            usage,
        )))
        .into_response(),
        Err(err) => Rejection(async_graphql::ParseRequestError::Io(std::io::Error::other(
            format!("{usage}: {err}"),
        )))
        .into_response(),
    }
}

/// A GraphQL error answer with an HTTP status (401, 429).
fn refuse(status: StatusCode, code: &str, message: String, retry_after: Option<u64>) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

/// Who is asking (by API key), or the answer that refuses them.
pub(super) async fn authorize(
    state: &AppState,
    authorization: Option<&str>,
) -> Result<crate::access::Access, Box<Response>> {
    let access = state
        .keys
        .authorize(authorization)
        .await
        .map_err(|refusal| {
            Box::new(refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                refusal.message().to_string(),
                None,
            ))
        })?;
    if let (Some(limiter), Some(key)) = (&state.limiter, &access.key) {
        if let Err(not_until) = limiter.check_key(key) {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Box::new(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!(
                    "too many requests for API key {key:?}: at most {} per second; retry in {seconds} s",
                    state.config.rate_limit
                ),
                Some(seconds),
            )));
        }
    }
    Ok(access)
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let access = match authorize(state, authorization).await {
        Ok(access) => access,
        Err(refused) => return *refused,
    };
    let graphql_response = wants_graphql_response(headers);
    let limit = state.limits.timeout;
    let reader = Reader::for_request(
        state.db.clone(),
        state.spares.clone(),
        access.projects.clone(),
    );
    let prepared = super::prepare(&request);
    let run = async {
        tokio::time::timeout(
            limit,
            super::execute(
                &state.schema,
                &state.known_schema,
                std::time::Instant::now() + limit,
                reader,
                request,
                &prepared,
            ),
        )
        .await
        .ok()
    };
    let outcome = state
        .metrics
        .graphql_operation(prepared.name.as_deref(), run, |r| match r {
            None => "timeout",
            Some(r) if r.is_ok() => "ok",
            Some(_) => "error",
        })
        .await;
    let (status, response) = match outcome {
        Some(mut response) => {
            explain_limits(&mut response, &state.limits);
            // The request itself was refused (parse, validation, limits):
            // errors without a path, no data.
            let refused = response.data == async_graphql::Value::Null
                && response.is_err()
                && response.errors.iter().all(|e| e.path.is_empty());
            let status = if refused && graphql_response {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, response)
        }
        None => {
            let err = async_graphql::Error::new(format!(
                "the query ran longer than {:.1} s and was stopped; ask for fewer or smaller pages",
                limit.as_secs_f64()
            ))
            .extend_with(|_, e| e.set("code", "TIMEOUT"));
            let response = async_graphql::Response::from_errors(vec![
                err.into_server_error(async_graphql::Pos::default())
            ]);
            let status = if graphql_response {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::OK
            };
            (status, response)
        }
    };
    let content_type = if graphql_response {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    // Serialised as it is (fields in the order the query asked for them);
    // a refused request has no `data` entry (GraphQL over HTTP).
    let body = if status == StatusCode::OK {
        serde_json::to_vec(&response)
    } else {
        serde_json::to_vec(&serde_json::json!({ "errors": response.errors }))
    }
    .unwrap_or_else(|_| {
        br#"{"errors":[{"message":"the response could not be serialized"}]}"#.to_vec()
    });
    let mut out = (status, body).into_response();
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out
}

/// async-graphql's own limit messages, with the limit and what to do.
fn explain_limits(response: &mut async_graphql::Response, limits: &super::Limits) {
    for err in &mut response.errors {
        let (message, code) = match err.message.as_str() {
            "Query is too complex." => (
                format!(
                    "the query costs more than the limit of {}: each field costs 1 and a list costs its page size (first/last, default 50) times its selection; ask for smaller pages or fewer nested lists",
                    limits.max_complexity
                ),
                "QUERY_TOO_COMPLEX",
            ),
            "Query is nested too deep." => (
                format!(
                    "the query nests deeper than the limit of {} levels",
                    limits.max_depth
                ),
                "QUERY_TOO_DEEP",
            ),
            _ => continue,
        };
        err.message = message;
        let mut ext = err.extensions.take().unwrap_or_default();
        ext.set("code", code);
        err.extensions = Some(ext);
    }
}
