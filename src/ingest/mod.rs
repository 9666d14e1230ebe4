//! Ingest: wire payloads, their conversion to rows, the group-commit
//! pipeline, and the webhook route. One function, [`accept`], is the path
//! of every delivery, whether it came over HTTP or from `leadql import`.

pub mod auth;
pub mod payload;
pub mod pipeline;
pub mod webhook;

use crate::store::{self, Status};
use payload::Rejection;
use pipeline::{IngestError, Ingestor};
use sea_orm::DatabaseConnection;

/// Why a delivery was not accepted.
#[derive(Debug)]
pub enum NotAccepted {
    /// The body was kept in `rejected_deliveries` under this id.
    Rejected {
        rejection: Rejection,
        rejected_id: i64,
    },
    /// Nothing was stored; the sender should retry.
    NotStored(IngestError),
}

/// Parse a body and store it; a body that cannot be accepted is kept in
/// the rejected-deliveries table. `Ok` means committed.
#[tracing::instrument(skip_all, fields(lead_id, source_id))]
pub async fn accept(
    db: &DatabaseConnection,
    ingestor: &Ingestor,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Status, NotAccepted> {
    match payload::parse(body) {
        Ok(delivery) => {
            tracing::Span::current()
                .record("lead_id", delivery.lead_id.as_str())
                .record("source_id", delivery.source_id.as_str());
            match ingestor.submit(delivery).await {
                // Sending it again cannot help: keep it, and say why.
                Err(IngestError::TooLarge(why)) => {
                    let message = format!(
                        "a value in this delivery is too long for PostgreSQL to index (most \
                         often kilobytes of text in a name, disposition, summary or \
                         variable); nothing of it was stored: {why}"
                    );
                    Err(keep_rejected(db, Rejection::Invalid { message }, content_type, body).await)
                }
                other => other.map_err(NotAccepted::NotStored),
            }
        }
        Err(rejection) => Err(keep_rejected(db, rejection, content_type, body).await),
    }
}

/// Keep a body that cannot be accepted in the rejected-deliveries table.
async fn keep_rejected(
    db: &DatabaseConnection,
    rejection: Rejection,
    content_type: Option<&str>,
    body: &[u8],
) -> NotAccepted {
    let status = match rejection {
        Rejection::Malformed { .. } => 400,
        Rejection::Invalid { .. } => 422,
    };
    match store::record_rejection(
        db,
        status,
        rejection.code(),
        rejection.message(),
        content_type,
        body,
    )
    .await
    {
        Ok(rejected_id) => NotAccepted::Rejected {
            rejection,
            rejected_id,
        },
        Err(err) => NotAccepted::NotStored(err.into()),
    }
}
