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

/// The configured webhook secrets: one, or several during a rotation
/// (any of them is accepted).
#[derive(Clone)]
pub struct WebhookSecret {
    secrets: Vec<Secret>,
}

#[derive(Clone)]
struct Secret {
    token: Vec<u8>,
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Secrets separated by commas (surrounding spaces ignored): a
    /// delivery passes when it matches any of them. A `whsec_`-prefixed
    /// secret is base64 and signs with the decoded bytes, as Standard
    /// Webhooks specifies; any other secret signs with its own bytes. The
    /// bearer token is the secret as written.
    pub fn new(secrets: &str) -> Self {
        let secrets = secrets
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|secret| Secret {
                token: secret.as_bytes().to_vec(),
                signing_key: secret
                    .strip_prefix("whsec_")
                    .and_then(|b64| BASE64.decode(b64).ok())
                    .unwrap_or_else(|| secret.as_bytes().to_vec()),
            })
            .collect();
        WebhookSecret { secrets }
    }

    /// How many secrets are accepted.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// No secret at all (an empty or all-commas setting).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
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
            let token = token.trim().as_bytes();
            // Every secret is compared, so the time taken does not say
            // which one nearly matched.
            let matches = self
                .secrets
                .iter()
                .fold(0u8, |any, s| any | token.ct_eq(&s.token).unwrap_u8());
            return if matches == 1 {
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
        let expected: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .map(|s| sign(&s.signing_key, id, ts, body))
            .collect();
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|candidate| BASE64.decode(candidate).ok())
            .any(|bytes| expected.iter().any(|e| bool::from(bytes.ct_eq(e))));
        if matches {
            Ok(())
        } else {
            Err("no valid v1 signature in webhook-signature".into())
        }
    }

    /// HMAC-SHA256 of `id.timestamp.body` with the first secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let key = self.secrets.first().map(|s| &s.signing_key[..]);
        sign(key.unwrap_or_default(), id, timestamp, body)
    }

    /// The `webhook-signature` header value for a body, signed with the
    /// first secret (used by tests and tools).
    pub fn signature_header(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.sign(id, timestamp, body)))
    }
}

/// HMAC-SHA256 of `id.timestamp.body` with `key`.
fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
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
    fn any_of_several_secrets_passes() {
        let old = WebhookSecret::new("old-secret");
        let new = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let both = WebhookSecret::new(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw , old-secret,");
        assert_eq!(both.len(), 2);
        let now = 1_700_000_000;
        for (token, ok) in [
            ("Bearer old-secret", true),
            ("Bearer whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true),
            (
                "Bearer whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw , old-secret",
                false,
            ),
            ("Bearer other", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static(token));
            assert_eq!(both.verify(&h, b"{}", now).is_ok(), ok, "{token}");
        }
        for signer in [&old, &new] {
            assert!(both
                .verify(&signed(signer, now, b"{}", ""), b"{}", now)
                .is_ok());
        }
        let other = WebhookSecret::new("other");
        assert!(both
            .verify(&signed(&other, now, b"{}", ""), b"{}", now)
            .is_err());
        assert!(WebhookSecret::new(" , ").is_empty());
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
