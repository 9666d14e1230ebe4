//! `POST /webhooks/activity`: check, read, authenticate, parse, store,
//! and answer only after the commit.

use super::{accept, payload::Rejection, pipeline::IngestError, NotAccepted};
use crate::error::{ApiError, Result};
use crate::store::Status;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{json, Value};
use tracing::Instrument;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/activity", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>> {
    let started = std::time::Instant::now();
    let span = crate::otel::delivery();
    let answer = store_delivery(&state, &headers, body)
        .instrument(span.clone())
        .await;
    let outcome = match &answer {
        Ok(status) => status.as_str(),
        Err(err) => err.code,
    };
    span.record("leadql.delivery.outcome", outcome);
    state.metrics.delivery(outcome, started);
    answer.map(|status| Json(json!({ "status": status.as_str() })))
}

async fn store_delivery(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Status> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(ct) = &content_type {
        if !is_json(ct) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type must be application/json, got {ct:?}"),
            ));
        }
    }
    let body = read_body(body, state.config.body_limit).await?;
    if let Some(secret) = &state.config.webhook_secret {
        secret
            .verify(headers, &body, crate::store::now_ms() / 1000)
            .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why))?;
    }
    // Held until answered: deliveries past the queue's room are refused at
    // once rather than queued without limit.
    let _room = state.ingest_room.clone().try_acquire_owned().map_err(|_| {
        let mut refused = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "leadql is receiving more deliveries than it can store right now; nothing was stored, retry after the Retry-After seconds",
        );
        refused.retry_after = Some(1);
        refused
    })?;
    match accept(&state.db, &state.ingestor, &body, content_type.as_deref()).await {
        Ok(status) => Ok(status),
        Err(NotAccepted::Rejected {
            rejection,
            rejected_id,
        }) => Err(match rejection {
            Rejection::Malformed {
                message,
                line,
                column,
            } => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
                .with("line", line)
                .with("column", column)
                .with("rejectedId", rejected_id),
            Rejection::Invalid { message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", message)
                    .with("rejectedId", rejected_id)
            }
        }),
        Err(NotAccepted::NotStored(err)) => Err(match err {
            IngestError::Unavailable(_) => {
                ApiError::unavailable("the database is unreachable; retry later")
            }
            IngestError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "leadql is shutting down; retry later",
            ),
            IngestError::Failed(_) | IngestError::TooLarge(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_failed",
                "the delivery could not be stored; it was not acknowledged, retry later",
            ),
        }),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("could not read the body: {err}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.x+json",
        ] {
            assert!(super::is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "",
        ] {
            assert!(!super::is_json(bad), "{bad}");
        }
    }
}
