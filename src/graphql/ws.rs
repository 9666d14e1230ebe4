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
        // Messages are small; a thousand idle feeds should not hold 256 KiB
        // of buffers each.
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| serve(socket, state, protocol))
}

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
    // The API key comes in the connection_init payload; the connection's
    // reader is scoped to what it may see.
    let granted: Arc<std::sync::Mutex<Option<crate::access::Access>>> = Default::default();
    let on_init = {
        let (state, granted) = (state.clone(), granted.clone());
        move |payload: serde_json::Value| async move {
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
            let reader = Reader::scoped(state.db.clone(), access.projects.clone());
            if let Ok(mut slot) = granted.lock() {
                *slot = Some(access);
            }
            let mut data = async_graphql::Data::default();
            data.insert(Arc::new(super::engine::loader::spawning_loaders(
                reader.clone(),
            )));
            data.insert(reader);
            Ok(data)
        }
    };
    let ws = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(on_init);
    let mut revocation = tokio::time::interval(Duration::from_secs(1));
    futures::pin_mut!(ws);
    let mut shutdown = state.shutdown.clone();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let keepalive_message = match protocol {
        WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
        WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
    };
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(WsMessage::Text(text)) => {
                    // Events come in bursts (one commit, many changes): queue
                    // what is ready and write it with one flush.
                    if sink.feed(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                    let mut closing = None;
                    for _ in 0..256 {
                        match futures::FutureExt::now_or_never(ws.next()) {
                            Some(Some(WsMessage::Text(text))) => {
                                if sink.feed(Message::Text(text.into())).await.is_err() {
                                    return;
                                }
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
                    if sink.flush().await.is_err() {
                        return;
                    }
                    if let Some((code, reason)) = closing {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return;
                }
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
                // Access is decided per connection: re-decide it as keys
                // change (a revoked key; the first key closing the API).
                let refused = granted
                    .lock()
                    .ok()
                    .and_then(|g| g.clone())
                    .and_then(|access| state.keys.recheck(&access).err());
                if let Some(refusal) = refused {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: 4403,
                            reason: refusal.message().into(),
                        })))
                        .await;
                    return;
                }
            }
            _ = stopping(&mut shutdown) => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "the server is shutting down; reconnect and resume with your last cursor".into(),
                    })))
                    .await;
                return;
            }
        }
    }
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
