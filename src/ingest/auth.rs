//! Webhook authentication: a bearer token (what the platform sends) or a
//! Standard Webhooks signature (for senders behind a signing relay).

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signature's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The configured webhook secret.
#[derive(Clone)]
pub struct WebhookSecret {
    token: Vec<u8>,
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// A `whsec_`-prefixed secret is base64 and signs with the decoded
    /// bytes, as Standard Webhooks specifies; any other secret signs with
    /// its own bytes. The bearer token is the secret as written.
    pub fn new(secret: &str) -> Self {
        let signing_key = secret
            .strip_prefix("whsec_")
            .and_then(|b64| BASE64.decode(b64).ok())
            .unwrap_or_else(|| secret.as_bytes().to_vec());
        WebhookSecret {
            token: secret.as_bytes().to_vec(),
            signing_key,
        }
    }

    /// Check a delivery's credentials; the error says what was wrong.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_secs: i64) -> Result<(), String> {
        if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .ok_or("Authorization must be \"Bearer <secret>\"")?;
            return if bool::from(token.trim().as_bytes().ct_eq(&self.token)) {
                Ok(())
            } else {
                Err("wrong bearer token".into())
            };
        }
        let signatures = header(headers, "webhook-signature")?;
        let Some(signatures) = signatures else {
            return Err(
                "missing credentials: send Authorization: Bearer <secret> or webhook-id, webhook-timestamp and webhook-signature headers"
                    .into(),
            );
        };
        let id = header(headers, "webhook-id")?.ok_or("missing webhook-id header")?;
        let timestamp =
            header(headers, "webhook-timestamp")?.ok_or("missing webhook-timestamp header")?;
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| "webhook-timestamp must be epoch seconds")?;
        if (now_secs - ts).abs() > TOLERANCE_SECS {
            return Err("webhook-timestamp is more than 5 minutes from now".into());
        }
        let expected = self.sign(id, ts, body);
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|candidate| {
                BASE64
                    .decode(candidate)
                    .is_ok_and(|bytes| bool::from(bytes.ct_eq(&expected)))
            });
        if matches {
            Ok(())
        } else {
            Err("no valid v1 signature in webhook-signature".into())
        }
    }

    /// HMAC-SHA256 of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.signing_key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// The `webhook-signature` header value for a body (used by tests and tools).
    pub fn signature_header(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.sign(id, timestamp, body)))
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| format!("{name} header is not text")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(secret: &WebhookSecret, ts: i64, body: &[u8], extra: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_static("msg_1"));
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        let sig = format!("{extra}{}", secret.signature_header("msg_1", ts, body));
        h.insert("webhook-signature", HeaderValue::from_str(&sig).unwrap());
        h
    }

    #[test]
    fn bearer_and_signatures() {
        let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Bearer whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        );
        assert!(secret.verify(&h, b"{}", 0).is_ok());
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        assert_eq!(
            secret.verify(&h, b"{}", 0).unwrap_err(),
            "wrong bearer token"
        );

        let now = 1_700_000_000;
        assert!(secret
            .verify(&signed(&secret, now, b"{}", ""), b"{}", now)
            .is_ok());
        // Several signatures (key rotation): one valid is enough.
        assert!(secret
            .verify(&signed(&secret, now, b"{}", "v1,AAAA "), b"{}", now)
            .is_ok());
        // Tampered body, old timestamp, no credentials.
        assert!(secret
            .verify(&signed(&secret, now, b"{}", ""), b"{ }", now)
            .is_err());
        assert!(secret
            .verify(&signed(&secret, now - 301, b"{}", ""), b"{}", now)
            .unwrap_err()
            .contains("5 minutes"));
        assert!(secret
            .verify(&HeaderMap::new(), b"{}", now)
            .unwrap_err()
            .contains("missing credentials"));
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.signature_header("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
