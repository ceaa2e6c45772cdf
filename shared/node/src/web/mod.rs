//! What every node's web layer shares: security headers, cookies, CSRF
//! tokens ([`csrf`]), the client's address, and the JSON and query
//! extractors whose rejections are [`ApiError`]s.
//!
//! Invariants:
//! - Every response the headers layer sees carries the node's CSP,
//!   `X-Frame-Options: DENY`, `nosniff`, `no-referrer`, and
//!   `Cache-Control: no-store` unless the handler chose a cache policy
//!   (static assets), so no browser keeps a page with someone's NIK.
//! - Cookies are `Path=/`, `HttpOnly` and `SameSite=Strict`; `Secure`
//!   wherever the browser can send it back (HTTPS, or loopback).
//! - `X-Forwarded-For` is never trusted: kiosks, staff and admins connect
//!   directly, not through a proxy.

pub mod csrf;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Serialize;

use crate::error::ApiError;

/// The security headers of one node. Use with
/// `axum::middleware::from_fn_with_state(HEADERS, loket_node::web::security_headers)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// The `Content-Security-Policy` of every response.
    pub csp: &'static str,
    /// `Strict-Transport-Security: max-age=31536000` (a year): only for a
    /// node served over HTTPS (the server; a kiosk's LAN UI is plain HTTP).
    pub hsts: bool,
}

impl SecurityHeaders {
    /// Sets the headers on `h` (see the module's invariants).
    pub fn apply(&self, h: &mut HeaderMap) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(self.csp));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if self.hsts {
            h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
        }
        h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
}

/// Middleware: [`SecurityHeaders::apply`] on every response.
pub async fn security_headers(State(headers): State<SecurityHeaders>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    headers.apply(resp.headers_mut());
    resp
}

/// A cookie as this project sets them: `Path=/`, `HttpOnly`,
/// `SameSite=Strict`, and `Secure` when `secure` (always on HTTPS; on a
/// kiosk, when served on loopback, which browsers treat as secure).
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value)).path("/").http_only(true).secure(secure).same_site(SameSite::Strict).build()
}

/// A local path to send a browser back to (a `Location` on this node),
/// else `/`.
///
/// A browser resolves a `Location` by the WHATWG URL rules: it removes
/// every tab and line break anywhere, reads `\\` as `/`, and takes a
/// leading `//` for another host, so `/<TAB>/evil.example` and
/// `/\\evil.example` lead away. Only printable ASCII without `\\` is
/// kept, starting with exactly one `/`: nothing a browser could drop or
/// rewrite, and `%`-escapes stay escapes (`/%09/x` is a path). (The
/// kiosk's language switch has the same rule in its own copy.)
pub fn local_path(raw: Option<&str>) -> &str {
    let is_local = |p: &str| {
        let b = p.as_bytes();
        b.len() <= 512
            && b.first() == Some(&b'/')
            && !matches!(b.get(1), Some(b'/' | b'\\'))
            && b.iter().all(|&c| c.is_ascii_graphic() && c != b'\\')
    };
    match raw {
        Some(p) if is_local(p) => p,
        _ => "/",
    }
}

/// The client's address, when the node knows it (it does over a real
/// connection served with connect info; a test driving the router
/// directly has none). An IPv4-mapped IPv6 address is its IPv4 address,
/// so a limit counts one client once.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical())))
    }
}

/// JSON body extractor whose rejections are `ApiError`s with stable codes;
/// as a response, the value as JSON.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string extractor whose rejections are `ApiError`s.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Each case: what a query sent, and whether it is returned to as is.
    #[test]
    fn only_local_paths_are_returned_to() {
        let long = format!("/{}", "a".repeat(511));
        let too_long = format!("/{}", "a".repeat(512));
        let cases: &[(&str, bool)] = &[
            ("/", true),
            ("/admin/ikm?periode=2026&per=kelurahan", true),
            ("/%09/evil.example", true), // a path: browsers do not decode %09
            ("/%2F%2Fevil.example", true),
            ("/%5Cevil.example", true),
            ("/.//evil.example", true), // path-absolute: the host stays
            ("/@evil.example", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            ("admin", false),
            ("evil.example", false),
            ("//evil.example/", false),
            ("///evil.example", false),
            ("https://evil.example/", false),
            ("javascript:alert(1)", false),
            ("/\\evil.example", false),
            ("\\/evil.example", false),
            ("/\t/evil.example", false),
            ("/\n/evil.example", false),
            ("/\r/evil.example", false),
            ("/\u{0}/evil.example", false),
            ("/\u{7f}", false),
            ("/ /evil.example", false),
            ("/\u{3000}/evil.example", false),
            ("/\u{ff0f}evil.example", false),
        ];
        for (raw, kept) in cases {
            let want = if *kept { *raw } else { "/" };
            assert_eq!(local_path(Some(raw)), want, "{raw:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    const CSP: &str = "default-src 'none'";

    async fn headers_of(policy: SecurityHeaders, path: &str) -> HeaderMap {
        let app = Router::new()
            .route("/page", get(|| async { "page" }))
            .route("/asset", get(|| async { ([(header::CACHE_CONTROL, "public, max-age=300")], "css") }))
            .layer(axum::middleware::from_fn_with_state(policy, security_headers));
        app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap().headers().clone()
    }

    #[tokio::test]
    async fn every_response_gets_the_headers_and_pages_are_not_cached() {
        let kiosk = SecurityHeaders { csp: CSP, hsts: false };
        let h = headers_of(kiosk, "/page").await;
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none(), "no HSTS on plain HTTP");
        assert_eq!(headers_of(kiosk, "/asset").await[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(headers_of(kiosk, "/nowhere").await[header::X_FRAME_OPTIONS], "DENY", "404s too");

        let server = SecurityHeaders { csp: CSP, hsts: true };
        assert_eq!(headers_of(server, "/page").await[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_when_asked() {
        let c = cookie("loket_staff", "abc".into(), true).to_string();
        assert_eq!(c, "loket_staff=abc; HttpOnly; SameSite=Strict; Secure; Path=/");
        let c = cookie("loket_staff", "abc".into(), false).to_string();
        assert_eq!(c, "loket_staff=abc; HttpOnly; SameSite=Strict; Path=/");
    }

    #[tokio::test]
    async fn client_addresses_are_canonical() {
        let app = Router::new().route(
            "/",
            get(|ClientAddr(a): ClientAddr| async move { a.map_or_else(|| "none".to_owned(), |a| a.to_string()) }),
        );
        let mut req = Request::get("/").body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001], 1))));
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"10.0.0.1");
        let resp = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(&axum::body::to_bytes(resp.into_body(), 1024).await.unwrap()[..], b"none");
    }
}
