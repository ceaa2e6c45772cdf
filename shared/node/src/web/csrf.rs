//! CSRF protection for HTML forms, by a double-submit cookie bound to a
//! key: each browser gets a cookie holding 16 random bytes (32 hex
//! characters, its "browser id"); each form carries
//! `HMAC-SHA256(key, domain || browser id)` in hex.
//!
//! Invariants:
//! - A token is valid only for the browser whose cookie it was made for,
//!   and only under the node's key and domain (a kiosk's and the server's
//!   tokens never verify at the other, nor as any other MAC made with the
//!   same key).
//! - A cookie made on this very request cannot have a form behind it: a
//!   post that arrives without the cookie is refused, whatever it carries.
//! - Verification is constant time (`Mac::verify_slice`).
//! - The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/` (see
//!   [`super::cookie`]); the key lives in the node's database, so forms
//!   open across a restart still submit.

use axum_extra::extract::cookie::CookieJar;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Characters of a browser id (16 random bytes, hex).
pub const BROWSER_ID_HEX_CHARS: usize = 32;

/// How a node names its CSRF cookie and separates its MACs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrfSpec {
    /// The cookie's name (`loket_csrf`; on HTTPS `__Host-loket_csrf`).
    pub cookie: &'static str,
    /// Prefix of every MAC input, so a CSRF token is never another MAC
    /// made with the same key (`loket-kiosk-csrf:`).
    pub domain: &'static str,
}

/// One request's browser, as its CSRF cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browser {
    /// The browser id (32 hex characters).
    pub id: String,
    /// The cookie was made on this request: the browser had none (or an
    /// unusable one), so no form of ours can be behind this request.
    pub fresh: bool,
}

impl CsrfSpec {
    /// The browser of a request: its cookie if it has our shape, else a
    /// new id, whose cookie is added to `jar` (secure when `secure`).
    pub fn browser(&self, jar: CookieJar, secure: bool) -> (CookieJar, Browser) {
        let existing = jar
            .get(self.cookie)
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == BROWSER_ID_HEX_CHARS && v.bytes().all(|b| b.is_ascii_hexdigit()));
        match existing {
            Some(id) => (jar, Browser { id, fresh: false }),
            None => {
                let id = hex::encode(crate::random_bytes::<16>());
                let jar = jar.add(super::cookie(self.cookie, id.clone(), secure));
                (jar, Browser { id, fresh: true })
            }
        }
    }

    fn mac(&self, key: &[u8], browser: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(self.domain.as_bytes());
        mac.update(browser.as_bytes());
        mac
    }

    /// The token for `browser`'s forms under `key` (64 hex characters).
    pub fn token(&self, key: &[u8], browser: &Browser) -> String {
        hex::encode(self.mac(key, &browser.id).finalize().into_bytes())
    }

    /// Whether `sent` is `browser`'s token under `key`; never for a
    /// browser whose cookie was made on this request.
    pub fn verify(&self, key: &[u8], browser: &Browser, sent: Option<&str>) -> bool {
        if browser.fresh {
            return false;
        }
        let Some(sent) = sent.and_then(|t| hex::decode(t).ok()) else { return false };
        self.mac(key, &browser.id).verify_slice(&sent).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::*;

    const SPEC: CsrfSpec = CsrfSpec { cookie: "loket_csrf", domain: "loket-kiosk-csrf:" };
    const KEY: [u8; 32] = [7u8; 32];

    fn jar_with(cookie: &str) -> CookieJar {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        CookieJar::from_headers(&headers)
    }

    fn set_cookies(jar: CookieJar) -> Vec<String> {
        use axum::response::IntoResponse;
        let resp = (jar, ()).into_response();
        resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    fn known(id: &str) -> Browser {
        Browser { id: id.to_owned(), fresh: false }
    }

    #[test]
    fn tokens_are_bound_to_the_browser_the_key_and_the_domain() {
        let a = SPEC.token(&KEY, &known("aaaa"));
        assert_eq!(a, SPEC.token(&KEY, &known("aaaa")));
        assert_ne!(a, SPEC.token(&KEY, &known("aaab")));
        assert_ne!(a, SPEC.token(&[8u8; 32], &known("aaaa")));
        let server = CsrfSpec { cookie: "__Host-loket_csrf", domain: "loket-web-csrf:" };
        assert_ne!(a, server.token(&KEY, &known("aaaa")));
        assert!(SPEC.verify(&KEY, &known("aaaa"), Some(&a)));
        assert!(SPEC.verify(&KEY, &known("aaaa"), Some(&a.to_uppercase())), "hex is hex");
        assert!(!SPEC.verify(&KEY, &known("aaab"), Some(&a)));
        assert!(!server.verify(&KEY, &known("aaaa"), Some(&a)));
        assert!(!SPEC.verify(&KEY, &known("aaaa"), None));
        assert!(!SPEC.verify(&KEY, &known("aaaa"), Some("not hex")));
        assert!(!SPEC.verify(&KEY, &known("aaaa"), Some(&a[..62])));
    }

    /// The token is HMAC-SHA256(key, domain || browser id), as the kiosk
    /// and the server made it before this crate: forms open across an
    /// upgrade still submit.
    #[test]
    fn tokens_are_the_documented_hmac() {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&KEY).unwrap();
        mac.update(b"loket-kiosk-csrf:0123456789abcdef0123456789abcdef");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(SPEC.token(&KEY, &known("0123456789abcdef0123456789abcdef")), want);
    }

    #[test]
    fn a_browser_keeps_its_cookie_and_a_new_one_cannot_post() {
        let id = "0123456789abcdef0123456789abcdef";
        let (jar, b) = SPEC.browser(jar_with(&format!("loket_csrf={id}")), true);
        assert_eq!(b, known(id));
        assert!(set_cookies(jar).is_empty(), "nothing to set");

        for cookie in ["other=1", "loket_csrf=short", "loket_csrf=0123456789abcdef0123456789abcdeg"] {
            let (jar, b) = SPEC.browser(jar_with(cookie), false);
            assert!(b.fresh, "{cookie}");
            assert_eq!(b.id.len(), 32);
            assert_eq!(
                set_cookies(jar),
                [format!("loket_csrf={}; HttpOnly; SameSite=Strict; Path=/", b.id)],
                "{cookie}"
            );
            // Even the right token for the new id is refused.
            let token = SPEC.token(&KEY, &b);
            assert!(!SPEC.verify(&KEY, &b, Some(&token)), "{cookie}");
        }
        let (_, a) = SPEC.browser(CookieJar::new(), true);
        let (_, b) = SPEC.browser(CookieJar::new(), true);
        assert_ne!(a.id, b.id);
    }
}
