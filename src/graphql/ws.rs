//! `GET /graphql/ws`: subscriptions over WebSocket, in both the current
//! `graphql-transport-ws` protocol and the legacy `graphql-ws` one, with
//! keep-alive messages, and a proper close frame when the server stops.

use crate::store::read::Reader;
use crate::AppState;
use async_graphql::http::{WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle connection gets a keep-alive message (and a
/// WebSocket ping), so proxies do not close it.
const KEEPALIVE: Duration = Duration::from_secs(15);

pub async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            serde_json::json!({
                "error": "unsupported_protocol",
                "message": "request the WebSocket subprotocol graphql-transport-ws (or the legacy graphql-ws) in Sec-WebSocket-Protocol"
            })
            .to_string(),
        )
            .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Messages are small, and a sales floor holds thousands of mostly
        // idle feeds: the read buffer is allocated whole for each (4 KiB
        // is what tungstenite suggests for many connections; a larger
        // message still arrives, in more reads), and writes are flushed
        // per burst anyway.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| {
            crate::telemetry::serving_subscriptions(serve(socket, state, protocol))
        })
}

/// The access a connection was granted at `connection_init`.
type Granted = Arc<std::sync::Mutex<Option<crate::access::Access>>>;

async fn serve(socket: WebSocket, state: AppState, protocol: WebSocketProtocols) {
    let _connection = state.connections.open();
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|m| futures::future::ready(m.is_ok()))
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let granted: Granted = Default::default();
    let ws = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(connection_init(state.clone(), granted.clone()));
    futures::pin_mut!(ws);
    let mut revocation = tokio::time::interval(Duration::from_secs(1));
    let mut shutdown = state.shutdown.clone();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let keepalive_message = match protocol {
        WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
        WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
    };
    let close = loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(WsMessage::Text(text)) => match forward(&mut sink, &mut ws, text).await {
                    Ok(None) => {}
                    Ok(Some(close)) => break Some(close),
                    Err(()) => return,
                },
                Some(WsMessage::Close(code, reason)) => break Some((code, reason)),
                None => {
                    let _ = sink.close().await;
                    return;
                }
            },
            _ = keepalive.tick() => {
                let sent = sink.send(Message::Ping(Default::default())).await.is_ok()
                    && sink.send(Message::Text(keepalive_message.into())).await.is_ok();
                if !sent {
                    return;
                }
            }
            _ = revocation.tick() => {
                if let Some(refusal) = refused(&state, &granted) {
                    break Some((4403, refusal.message().to_string()));
                }
            }
            _ = stopping(&mut shutdown) => {
                let reason = "the server is shutting down; reconnect and resume with your last cursor";
                break Some((1001, reason.to_string()));
            }
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// The `connection_init` handler: the API key comes in its payload
/// (`Authorization`, or `headers.Authorization`); the connection's reader
/// is scoped to what the key may see, and the access is kept in `granted`
/// to be re-decided as keys change.
fn connection_init(
    state: AppState,
    granted: Granted,
) -> impl FnOnce(
    serde_json::Value,
) -> futures::future::BoxFuture<'static, async_graphql::Result<async_graphql::Data>> {
    move |payload: serde_json::Value| {
        Box::pin(async move {
            let authorization = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| {
                    payload
                        .get(*k)
                        .or_else(|| payload.get("headers").and_then(|h| h.get(*k)))
                })
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let access = state
                .keys
                .authorize(authorization.as_deref())
                .await
                .map_err(|refusal| async_graphql::Error::new(refusal.message()))?;
            let reader = Reader::scoped(state.reads.clone(), access.projects.clone())
                .with_rollups(state.rollups.clone())
                .with_role(access.role)
                .with_clock(&state.config.clock, false);
            if let Ok(mut slot) = granted.lock() {
                *slot = Some(access);
            }
            let mut data = async_graphql::Data::default();
            data.insert(Arc::new(super::engine::loader::spawning_loaders(
                reader.clone(),
            )));
            data.insert(reader);
            Ok(data)
        })
    }
}

/// Why a connection's access no longer holds (a revoked key; keys made
/// since it was opened without one), if it does not.
fn refused(state: &AppState, granted: &Granted) -> Option<crate::access::Refusal> {
    granted
        .lock()
        .ok()
        .and_then(|g| g.clone())
        .and_then(|access| state.keys.recheck(&access).err())
}

/// Send `first` and whatever else is ready (events come in bursts: one
/// commit, many changes) with one flush. `Ok(Some(close))` when the
/// protocol closed the connection meanwhile; `Err` when the client is
/// gone.
async fn forward<S, W>(sink: &mut S, ws: &mut W, first: String) -> Result<Option<(u16, String)>, ()>
where
    S: futures::Sink<Message> + Unpin,
    W: futures::Stream<Item = WsMessage> + Unpin,
{
    sink.feed(Message::Text(first.into()))
        .await
        .map_err(|_| ())?;
    let mut closing = None;
    for _ in 0..256 {
        match futures::FutureExt::now_or_never(ws.next()) {
            Some(Some(WsMessage::Text(text))) => {
                sink.feed(Message::Text(text.into()))
                    .await
                    .map_err(|_| ())?;
            }
            Some(Some(WsMessage::Close(code, reason))) => {
                closing = Some((code, reason));
                break;
            }
            Some(None) => {
                closing = Some((1000, String::new()));
                break;
            }
            None => break,
        }
    }
    sink.flush().await.map_err(|_| ())?;
    Ok(closing)
}

/// Resolves once the server starts shutting down.
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            // The server is gone without a signal: nothing to wait for.
            std::future::pending::<()>().await;
        }
    }
}
