//! Who is asking: people (admins, agency staff, supervisors) with a
//! password and a session token, and kiosks with the secret they got at
//! enrollment.
//!
//! - Passwords are argon2id PHC strings with OWASP's baseline parameters.
//! - Session tokens and kiosk secrets are 32 random bytes shown once (hex);
//!   the store keeps only their SHA-256, so a copied database logs no one in.
//! - Every request re-reads the session or kiosk row: logging out and
//!   revoking a kiosk take effect on the very next request.
//! - Failed logins ([`LoginGuard`]) lock out one username at one client
//!   address, and slow a username (or an address) with many failures down
//!   for everyone except where the user logged in before; in memory: a
//!   restart forgets them, and several server instances would each count
//!   their own. Good enough for one server; a shared store is for when
//!   there are several.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use loket_shared::{KelurahanCode, KioskCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{self, accounts, kiosks, random_bytes};
use crate::web::{ApiError, AppState, blocking};

// ------------------------------------------------------------------ passwords

/// Shortest password accepted for a new account.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest password accepted anywhere (argon2 hashes all of it).
pub const PASSWORD_CHARS_MAX: usize = 1024;

/// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane), as on the kiosk.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    Ok(hash.to_string())
}

/// A hash of nothing anyone knows, checked when the username is unknown so
/// the answer takes as long as for a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("loket-dummy-password").expect("hashing a constant works"));

/// Checks a password against a PHC hash; `None` means "no such user" and
/// still costs one verification.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(hash) else {
        tracing::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    argon2().verify_password(password.as_bytes(), &parsed).is_ok() && known
}

/// Checks a new password: its length in characters.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < PASSWORD_CHARS_MIN {
        return Err(format!(
            "kata sandi minimal {PASSWORD_CHARS_MIN} karakter / use at least {PASSWORD_CHARS_MIN} characters"
        ));
    }
    if n > PASSWORD_CHARS_MAX {
        return Err(format!(
            "kata sandi maksimal {PASSWORD_CHARS_MAX} karakter / use at most {PASSWORD_CHARS_MAX} characters"
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------ tokens

/// A new secret (64 hex characters) and the hash to store.
pub fn new_token() -> (String, String) {
    let token = hex::encode(random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 (hex) of a token, a kiosk secret or an enrollment code.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The bearer token of a request: `None` without one, `Err` if it does
/// not have the shape of ours (64 hex characters), else lowercased.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<Result<String, ()>> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase);
    Some(token.ok_or(()))
}

// ------------------------------------------------------------------ people

/// What a person may do on the central app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pemko Medan's central admins: everything.
    Admin,
    /// Staff of a partner agency: the requests handed to their agency.
    Agency,
    /// Read-only oversight, possibly limited to one kelurahan.
    Supervisor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Agency, Role::Supervisor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agency => "agency",
            Role::Supervisor => "supervisor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "peran tidak dikenal / unknown role (admin, agency, supervisor)".to_owned())
    }
}

/// A login name: 3-64 characters of `a-z 0-9 . _ -`, starting with a
/// letter or digit. Parsing lowercases and trims, so `Admin ` logs in as
/// `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Username(String);

impl Username {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Username {
    type Err = String;
    fn from_str(s: &str) -> Result<Username, String> {
        let s = s.trim().to_ascii_lowercase();
        let ok = (3..=64).contains(&s.len())
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Username(s))
        } else {
            Err("nama pengguna: 3-64 huruf kecil, angka, titik, _ atau - / a username is 3-64 lowercase letters, \
                 digits, dots, _ or -"
                .to_owned())
        }
    }
}

/// A person proven by a session token (`Authorization: Bearer TOKEN`).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub username: Username,
    pub role: Role,
    pub agency: Option<String>,
    pub kelurahan: Option<KelurahanCode>,
}

impl User {
    /// Refuses (403 `forbidden`) unless the user has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role { Ok(()) } else { Err(ApiError::forbidden()) }
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<User, ApiError> {
        let token = match bearer(&parts.headers) {
            Some(Ok(token)) => token,
            _ => return Err(ApiError::unauthorized()),
        };
        let hash = token_hash(&token);
        let db = st.db.clone();
        let record = blocking(move || Ok(db.read(|c| accounts::session_user(c, &hash, store::now_ms()))?)).await?;
        let record = record.ok_or_else(ApiError::unauthorized)?;
        Ok(User { username: record.username, role: record.role, agency: record.agency, kelurahan: record.kelurahan })
    }
}

/// A user with the `admin` role (403 `forbidden` for anyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Admin, ApiError> {
        let user = User::from_request_parts(parts, st).await?;
        user.require(Role::Admin)?;
        Ok(Admin(user))
    }
}

// ------------------------------------------------------------------ kiosks

/// A kiosk proven by its secret (`Authorization: Bearer SECRET`), not
/// revoked. Extracting it reads the `kiosks` row and changes nothing:
/// recording that the kiosk was seen is the caller's business.
///
/// Refusals: no bearer → 401 `unauthorized`; a secret no kiosk holds → 401
/// `unknown_kiosk`; a revoked kiosk → 403 `kiosk_revoked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KioskAuth {
    /// The kiosk's id (a UUID, as text).
    pub id: String,
    /// Its short code, the prefix of its tickets (`K001`).
    pub code: KioskCode,
    pub kelurahan: KelurahanCode,
    /// The Automerge actor id (hex) registered at enrollment: every change
    /// this kiosk pushes must be by it.
    pub actor: String,
}

impl FromRequestParts<AppState> for KioskAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<KioskAuth, ApiError> {
        let token = match bearer(&parts.headers) {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "kredensial kiosk diperlukan / a kiosk credential is required",
                ));
            }
            Some(Err(())) => return Err(ApiError::unknown_kiosk()),
            Some(Ok(token)) => token,
        };
        let hash = token_hash(&token);
        let db = st.db.clone();
        let row = blocking(move || {
            if let Some(k) = db.read(|c| kiosks::by_token_hash(c, &hash))? {
                return Ok(Some(k));
            }
            // The first use of a rotated credential retires the old one.
            let Some(k) = db.read(|c| kiosks::by_next_token_hash(c, &hash))? else { return Ok(None) };
            if !k.revoked && db.write(|tx| kiosks::complete_rotation(tx, &k.id, &hash))? {
                tracing::info!(kiosk = %k.code, "credential rotated: the old one no longer works");
            }
            Ok(Some(k))
        })
        .await?;
        match row {
            None => Err(ApiError::unknown_kiosk()),
            Some(k) if k.revoked => {
                tracing::warn!(kiosk = %k.code, "a revoked kiosk tried to connect");
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "kiosk_revoked",
                    "kiosk ini sudah dicabut aksesnya; hubungi admin / this kiosk has been revoked; contact an admin",
                ))
            }
            Some(k) => Ok(k.auth()),
        }
    }
}

// ------------------------------------------------------------------ rate limits

pub use loket_shared::attempts::AttemptLimiter;

/// The limits of [`LoginGuard`] (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures of one user at one address before that pair is locked out.
    pub pair_failures_max: u32,
    /// Failures of one user, all addresses together, before it is slowed down.
    pub user_failures_max: u32,
    /// Failures at one address, all users together, before it is slowed down.
    pub address_failures_max: u32,
    /// The window all three are counted in, from its first failure.
    pub window: Duration,
    /// While slowed down, one attempt per this long.
    pub slowdown: Duration,
}

/// Failed logins, and what they cost the next attempt.
///
/// - One user at one address (`pair_failures_max` in the window): that
///   pair is refused until the window ends. Nobody else is: the real user
///   at their own address, and colleagues behind the same office NAT,
///   still log in.
/// - One user from many addresses (`user_failures_max`), or one address
///   trying many users (`address_failures_max`): attempts for that user,
///   or from that address, are slowed down to one per `slowdown` for
///   everyone together, so spreading guesses over addresses or names buys
///   little. Addresses where the user logged in within
///   [`LoginGuard::KNOWN_FOR`] are exempt: an attacker elsewhere cannot
///   shut the real user out of their office.
///
/// Addresses count as [`crate::ratelimit::address_key`] (an IPv6 /64 is
/// one). In memory and bounded, like [`AttemptLimiter`].
#[derive(Debug)]
pub struct LoginGuard {
    pairs: AttemptLimiter,
    users: AttemptLimiter,
    addresses: AttemptLimiter,
    slowdown: Duration,
    /// For a slowed-down user or address: the earliest next attempt.
    turns: Mutex<HashMap<String, Instant>>,
    /// `user|address` pairs that logged in, until when they count as known.
    known: Mutex<HashMap<String, Instant>>,
}

impl LoginGuard {
    /// How long an address a user logged in from stays exempt from the
    /// slow-downs for that user.
    pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Entries kept in each map at most (expired ones go first).
    pub const CAPACITY: usize = AttemptLimiter::CAPACITY_DEFAULT;

    pub fn new(limits: LoginLimits) -> LoginGuard {
        LoginGuard {
            pairs: AttemptLimiter::new(limits.pair_failures_max, limits.window),
            users: AttemptLimiter::new(limits.user_failures_max, limits.window),
            addresses: AttemptLimiter::new(limits.address_failures_max, limits.window),
            slowdown: limits.slowdown,
            turns: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    fn keys(user: &str, addr: Option<IpAddr>) -> (String, String, String) {
        let addr = addr.map_or_else(|| "?".to_owned(), |a| crate::ratelimit::address_key(a).to_string());
        (format!("{user}|{addr}"), format!("user:{user}"), format!("addr:{addr}"))
    }

    /// Whether an attempt for `user` (a username, or `?` for a name that is
    /// none) from `addr` may be made now; `Err(wait)` if not. An attempt
    /// admitted while its user or address is slowed down takes the turn.
    pub fn admit(&self, user: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let (pair, user_key, addr_key) = LoginGuard::keys(user, addr);
        if let Some(wait) = self.pairs.blocked(&pair, now) {
            return Err(wait);
        }
        let known =
            self.known.lock().unwrap_or_else(PoisonError::into_inner).get(&pair).is_some_and(|&until| now < until);
        if known {
            return Ok(());
        }
        let slowed: Vec<&String> = [(&self.users, &user_key), (&self.addresses, &addr_key)]
            .into_iter()
            .filter(|(limiter, key)| limiter.blocked(key, now).is_some())
            .map(|(_, key)| key)
            .collect();
        if slowed.is_empty() {
            return Ok(());
        }
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = slowed.iter().filter_map(|k| turns.get(*k)).filter(|&&t| t > now).map(|&t| t - now).max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if turns.len() >= LoginGuard::CAPACITY {
            turns.retain(|_, t| *t > now);
        }
        for key in slowed {
            turns.insert(key.clone(), now + self.slowdown);
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn failed(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let (pair, user_key, addr_key) = LoginGuard::keys(user, addr);
        self.pairs.failed(&pair, now);
        self.users.failed(&user_key, now);
        self.addresses.failed(&addr_key, now);
    }

    /// A login succeeded: the pair's failures are forgotten and the address
    /// is known for the user. The user's and the address's counts stay: a
    /// success does not give an attacker elsewhere a fresh allowance.
    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let (pair, _, _) = LoginGuard::keys(user, addr);
        self.pairs.clear(&pair);
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= LoginGuard::CAPACITY && !known.contains_key(&pair) {
            known.retain(|_, until| now < *until);
            if known.len() >= LoginGuard::CAPACITY
                && let Some(oldest) = known.iter().min_by_key(|(_, until)| **until).map(|(k, _)| k.clone())
            {
                known.remove(&oldest);
            }
        }
        known.insert(pair, now + LoginGuard::KNOWN_FOR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password("rahasia-1234").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("rahasia-1234", Some(&h)));
        assert!(!verify_password("rahasia-1235", Some(&h)));
        assert!(!verify_password("loket-dummy-password", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    #[test]
    fn usernames_parse_lowercased_and_refuse_odd_ones() {
        assert_eq!("  Admin.Medan ".parse::<Username>().unwrap().as_str(), "admin.medan");
        for bad in ["", "ab", "-admin", "a b c", "admin<script>", &"a".repeat(65), "rudi@medan"] {
            assert!(bad.parse::<Username>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }

    fn guard() -> LoginGuard {
        LoginGuard::new(LoginLimits {
            pair_failures_max: 5,
            user_failures_max: 20,
            address_failures_max: 50,
            window: Duration::from_secs(900),
            slowdown: Duration::from_secs(30),
        })
    }

    /// The lockout is per user and address; the slow-downs take turns, for
    /// everyone but known addresses, and end with the window.
    #[test]
    fn logins_lock_out_pairs_and_slow_down_users_and_addresses() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let g = guard();
        for _ in 0..5 {
            assert_eq!(g.admit("rina", ip("10.0.0.1"), t0), Ok(()));
            g.failed("rina", ip("10.0.0.1"), t0);
        }
        assert!(g.admit("rina", ip("10.0.0.1"), at(1)).is_err(), "the pair is locked");
        assert_eq!(g.admit("rina", ip("10.0.0.2"), at(1)), Ok(()), "rina elsewhere");
        assert_eq!(g.admit("budi", ip("10.0.0.1"), at(1)), Ok(()), "budi at the same address");
        assert_eq!(g.admit("rina", ip("10.0.0.1"), at(900)), Ok(()), "the window ended");

        // An IPv6 /64 is one address.
        for i in 0..5 {
            g.failed("sari", ip(&format!("2001:db8::{i}")), t0);
        }
        assert!(g.admit("sari", ip("2001:db8::ff"), at(1)).is_err());

        // Twenty failures of one user from as many addresses.
        let g = guard();
        g.succeeded("rina", ip("10.9.9.9"), t0);
        for i in 0..20 {
            g.failed("rina", ip(&format!("10.1.0.{i}")), t0);
        }
        assert_eq!(g.admit("rina", ip("10.2.0.1"), at(1)), Ok(()), "the turn");
        assert_eq!(g.admit("rina", ip("10.2.0.2"), at(2)), Err(Duration::from_secs(29)), "the next waits");
        assert_eq!(g.admit("rina", ip("10.9.9.9"), at(2)), Ok(()), "a known address does not");
        assert_eq!(g.admit("rina", ip("10.2.0.2"), at(31)), Ok(()), "the next turn");
        assert_eq!(g.admit("budi", ip("10.2.0.3"), at(31)), Ok(()), "other users are not slowed");
        assert_eq!(g.admit("rina", ip("10.2.0.4"), at(900)), Ok(()));
        assert_eq!(g.admit("rina", ip("10.2.0.5"), at(900)), Ok(()), "the window ended");

        // Fifty failures from one address, for as many names.
        let g = guard();
        g.succeeded("rina", ip("10.5.5.5"), t0);
        for i in 0..50 {
            g.failed(&format!("user{i}"), ip("10.5.5.5"), t0);
        }
        assert_eq!(g.admit("budi", ip("10.5.5.5"), at(1)), Ok(()), "the turn");
        assert!(g.admit("sari", ip("10.5.5.5"), at(2)).is_err(), "the next waits");
        assert_eq!(g.admit("rina", ip("10.5.5.5"), at(2)), Ok(()), "rina logged in there before");
    }

    #[test]
    fn tokens_are_64_hex_and_hash_to_sha256() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, token_hash(&token));
        assert_ne!(hash, token);
    }
}
