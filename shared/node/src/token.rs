//! Session tokens and secrets (staff and user sessions, kiosk credentials,
//! the metrics token): 32 random bytes shown to their holder once, as 64
//! hex characters.
//!
//! Invariants:
//! - The store keeps only [`token_hash`] (SHA-256, hex) of a token, so a
//!   copied database holds nothing that logs anyone in.
//! - A token as sent is accepted only in our shape (64 hex characters) and
//!   lowercased before it is hashed, so `AB…` and `ab…` are one token;
//!   anything else is refused before any lookup.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// Characters of a token as shown: 32 bytes in hex.
pub const TOKEN_HEX_CHARS: usize = 64;

/// A new token (64 hex characters) and the hash to store.
pub fn new_token() -> (String, String) {
    let token = hex::encode(crate::random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 (hex) of a token, a secret or a one-time code.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as a client sent it (a cookie value, a bearer): `Some` only if
/// it has our shape (64 hex characters after trimming), lowercased.
pub fn parse_token(raw: &str) -> Option<String> {
    let t = raw.trim();
    (t.len() == TOKEN_HEX_CHARS && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| t.to_ascii_lowercase())
}

/// The bearer token of a request: `None` without an `Authorization`
/// header, `Some(Err(()))` if it is not `Bearer <token>` in our shape
/// (the scheme is case-insensitive, as HTTP says), else the token,
/// lowercased. Callers that need no difference treat both refusals alike.
#[allow(clippy::result_unit_err)]
pub fn bearer(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| parse_token(token));
    Some(token.ok_or(()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_are_64_hex_and_hash_to_sha256() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, token_hash(&token));
        assert_ne!(hash, token);
        assert_ne!(new_token().0, token);
        // SHA-256 of "abc", the FIPS 180-2 example.
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_tokens_in_our_shape_only() {
        let t = "a".repeat(64);
        let upper = "A".repeat(64);
        type Case<'a> = (Option<&'a str>, Option<Result<String, ()>>);
        let cases: &[Case<'_>] = &[
            (None, None),
            (Some(&format!("Bearer {t}")), Some(Ok(t.clone()))),
            (Some(&format!("bearer {t}")), Some(Ok(t.clone()))),
            (Some(&format!("BEARER {t} ")), Some(Ok(t.clone()))),
            (Some(&format!("Bearer {upper}")), Some(Ok(t.clone()))),
            (Some(&format!("Basic {t}")), Some(Err(()))),
            (Some(&format!("Bearer {}", "a".repeat(63))), Some(Err(()))),
            (Some(&format!("Bearer {}", "g".repeat(64))), Some(Err(()))),
            (Some(&format!("Bearer{t}")), Some(Err(()))),
            (Some(""), Some(Err(()))),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(&bearer(&headers), want, "{value:?}");
        }
    }

    #[test]
    fn cookie_values_parse_like_bearers() {
        assert_eq!(parse_token(&"F".repeat(64)), Some("f".repeat(64)));
        assert_eq!(parse_token("1234"), None);
        assert_eq!(parse_token(&"é".repeat(32)), None);
    }
}
