//! GraphQL over HTTP: `POST /graphql`, `GET /graphql` (queries in the URL,
//! cacheable), and GraphiQL for browsers.
//!
//! Answers follow the GraphQL-over-HTTP spec: a client that accepts
//! `application/graphql-response+json` gets that type, and 400 when the
//! request could not be executed at all (syntax, validation, limits);
//! everyone else gets `application/json` and 200 for any executed request.

use crate::error::ApiError;
use crate::store::read::Reader;
use crate::AppState;
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
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_request",
                "the request body is too large",
            )
        };
        let err = match &self.0 {
            E::PayloadTooLarge => too_large(),
            E::Io(err) if is_length_limit(err) => too_large(),
            E::UnsupportedBatch => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "batched requests are not supported; send one operation per request",
            ),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the request is not a GraphQL request: {other}"),
            ),
        };
        err.graphql_response()
    }
}

/// The body was cut at the size limit (somewhere in the error's sources).
fn is_length_limit(err: &std::io::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.get_ref().map(|e| e as _);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest<Rejection>, Rejection>,
) -> Response {
    if !headers.contains_key(header::CONTENT_TYPE) {
        // GraphQL over HTTP: a POST without a media type SHOULD be refused.
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "POST /graphql needs a Content-Type: send `Content-Type: application/json` with a JSON body {\"query\": …}",
        )
        .graphql_response();
    }
    match request {
        Ok(request) => execute(&state, &headers, request.into_inner(), false).await,
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
        Ok(request)
            if !request.query.trim().is_empty()
                || request.extensions.contains_key("persistedQuery") =>
        {
            execute(&state, &headers, request, true).await
        }
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

/// Who is asking (by API key), or the error that refuses them (401,
/// 429).
pub(super) async fn authorize(
    state: &AppState,
    authorization: Option<&str>,
) -> Result<crate::access::Access, ApiError> {
    let access = state
        .keys
        .authorize(authorization)
        .await
        .map_err(|refusal| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                refusal.message(),
            )
        })?;
    if let (Some(limiter), Some(key)) = (&state.limiter, &access.key) {
        if let Err(not_until) = limiter.check_key(key) {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests for API key {key:?}: at most {} per second; retry in {seconds} s",
                    state.config.rate_limit
                ),
            );
            err.retry_after = Some(seconds);
            return Err(err);
        }
    }
    Ok(access)
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    mut request: async_graphql::Request,
    get: bool,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let access = match authorize(state, authorization).await {
        Ok(access) => access,
        Err(refused) => return refused.graphql_response(),
    };
    let persisted = match state.persisted.resolve(&mut request) {
        Ok(persisted) => persisted,
        Err(refused) => return refused.graphql_response(),
    };
    let reader = Reader::for_request(
        state.reads.clone(),
        state.spares.clone(),
        access.projects.clone(),
    )
    .with_rollups(state.rollups.clone())
    .with_role(access.role)
    .with_clock(&state.config.clock, true);
    let prepared = super::prepare(&request);
    let limit = state.limits.timeout;
    let run = async {
        let deadline = std::time::Instant::now() + limit;
        let execution = super::execute(
            &state.schema,
            &state.known_schema,
            deadline,
            reader,
            request,
            &prepared,
        );
        tokio::time::timeout(limit, execution).await.ok()
    };
    let outcome = state
        .metrics
        .graphql_operation(prepared.name.as_deref(), run, |r| match r {
            None => "timeout",
            Some(r) if r.is_ok() => "ok",
            Some(_) => "error",
        })
        .await;
    let response = outcome.unwrap_or_else(|| {
        let err = ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "the query ran longer than {:.1} s and was stopped; ask for fewer or smaller pages",
                limit.as_secs_f64()
            ),
        );
        async_graphql::Response::from_errors(vec![err
            .graphql()
            .into_server_error(async_graphql::Pos::default())])
    });
    let cacheable = get && persisted && response.errors.is_empty();
    let mut out = answer(response, wants_graphql_response(headers), &state.limits);
    if cacheable {
        cache_headers(&mut out, &state.config, authorization.is_some());
    }
    out
}

/// A persisted query's answer over GET may be kept by shared caches (a
/// CDN) for `persisted_max_age` seconds, under its URL; one asked with an
/// `Authorization` header only when the operator allows it (then varying
/// by that header), else it is private.
fn cache_headers(out: &mut Response, config: &crate::config::Config, authorized: bool) {
    let headers = out.headers_mut();
    if config.persisted_max_age == 0 {
        return;
    }
    if authorized && !config.persisted_cache_authorized {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return;
    }
    if let Ok(value) =
        HeaderValue::from_str(&format!("public, max-age={}", config.persisted_max_age))
    {
        headers.insert(header::CACHE_CONTROL, value);
    }
    let vary = if authorized {
        "Accept, Accept-Encoding, Authorization"
    } else {
        "Accept, Accept-Encoding"
    };
    headers.insert(header::VARY, HeaderValue::from_static(vary));
}

/// The HTTP answer of an executed (or stopped) request, per GraphQL over
/// HTTP: with `application/graphql-response+json`, 400 for a request
/// refused before execution (syntax, validation, limits: errors without
/// a path and no data) and 504 for one stopped at the time limit; else
/// 200 and `application/json`.
fn answer(
    mut response: async_graphql::Response,
    graphql_response: bool,
    limits: &super::Limits,
) -> Response {
    explain_limits(&mut response, limits);
    let timed_out = response.errors.iter().any(|e| {
        e.extensions.as_ref().and_then(|x| x.get("code"))
            == Some(&async_graphql::Value::from("TIMEOUT"))
    });
    let refused = response.data == async_graphql::Value::Null
        && response.is_err()
        && response.errors.iter().all(|e| e.path.is_empty());
    let status = match (graphql_response, timed_out, refused) {
        (true, true, _) => StatusCode::GATEWAY_TIMEOUT,
        (true, false, true) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
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
