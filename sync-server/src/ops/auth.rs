//! Who is asking: people (admins, agency staff, supervisors) with a
//! password and a session token, and kiosks with the secret they got at
//! enrollment.
//!
//! - Passwords are argon2id PHC strings with OWASP's baseline parameters
//!   (`loket_node::password`, as on the kiosk).
//! - Session tokens and kiosk secrets are 32 random bytes shown once (hex);
//!   the store keeps only their SHA-256, so a copied database logs no one in
//!   (`loket_node::token`).
//! - Every request re-reads the session or kiosk row: logging out and
//!   revoking a kiosk take effect on the very next request.
//! - Failed logins and wrong enrollment codes ([`LoginGuard`]) lock out
//!   one username at one client address, and slow a username (or an
//!   address) with many failures down for everyone except where the user
//!   logged in before; counted in the database, so every instance sees
//!   the same counts and a restart forgets none.

use std::net::IpAddr;
use std::time::Duration;

use loket_shared::KelurahanCode;
// Hashing, verification and tokens are loket-node's, shared with the
// kiosk; re-exported so callers keep saying `auth::token_hash`.
pub use loket_node::password::{hash_password, verify_password};
pub use loket_node::token::{new_token, token_hash};
use serde::Serialize;

use crate::args;
pub use crate::store::accounts::{Role, Username};
pub use crate::store::kiosks::KioskAuth;
use crate::store::{Sql, StoreError};

use super::OpError;

// ------------------------------------------------------------------ passwords

/// Shortest password accepted for a new account.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest password accepted anywhere (argon2 hashes all of it).
pub const PASSWORD_CHARS_MAX: usize = 1024;

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

// ------------------------------------------------------------------ people

/// A person proven by a session token (`Authorization: Bearer TOKEN`).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub username: Username,
    pub role: Role,
    pub agency: Option<String>,
    pub kelurahan: Option<KelurahanCode>,
    /// An agency unit's kecamatan; empty for the whole city.
    pub region: Vec<String>,
}

impl User {
    /// Whether a request or complaint of `kelurahan` lies in the user's
    /// region (always, for a user without one).
    pub fn covers(&self, kelurahan: &str) -> bool {
        self.region.is_empty()
            || loket_shared::wilayah::kecamatan_of(kelurahan).is_some_and(|k| self.region.iter().any(|r| r == k.code))
    }

    /// Refuses (403 `forbidden`) unless the user has `role`.
    pub fn require(&self, role: Role) -> Result<(), OpError> {
        if self.role == role { Ok(()) } else { Err(OpError::forbidden()) }
    }
}

/// A user with the `admin` role (403 `forbidden` for anyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub User);

// ------------------------------------------------------------------ kiosks

// ------------------------------------------------------------------ failed logins

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
    /// Wrong enrollment codes from one address before it is locked out
    /// for the rest of the window.
    pub enroll_failures_max: u32,
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
/// The counts live in the database (`login_failures`, `login_turns`,
/// `login_known`), so every instance sees the same ones: guessing on
/// several instances in turn buys nothing, and a restart forgets nothing.
/// Times are the servers' wall clocks in milliseconds (given, so tests
/// choose them). Addresses count as [`address_key`] (an IPv6 /64 is one).
/// Expired rows are purged by [`LoginGuard::purge`].
#[derive(Debug, Clone, Copy)]
pub struct LoginGuard {
    limits: LoginLimits,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl LoginGuard {
    /// How long an address a user logged in from stays exempt from the
    /// slow-downs for that user.
    pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

    pub fn new(limits: LoginLimits) -> LoginGuard {
        LoginGuard { limits }
    }

    fn keys(user: &str, addr: Option<IpAddr>) -> (String, String, String) {
        let addr = addr.map_or_else(|| "?".to_owned(), |a| address_key(a).to_string());
        (format!("{user}|{addr}"), format!("user:{user}"), format!("addr:{addr}"))
    }

    /// How long `key` is still blocked after `max` failures in the window.
    fn blocked(&self, db: &mut dyn Sql, key: &str, max: u32, now_ms: i64) -> Result<Option<Duration>, StoreError> {
        let Some(row) =
            db.query_opt("SELECT window_start_ms, failures FROM login_failures WHERE key = ?", args![key])?
        else {
            return Ok(None);
        };
        let (start, failures): (i64, i64) = (row.get(0)?, row.get(1)?);
        let end = start.saturating_add(ms(self.limits.window));
        Ok((failures >= i64::from(max) && now_ms < end)
            .then(|| Duration::from_millis(u64::try_from(end - now_ms).unwrap_or(0))))
    }

    /// Whether an attempt for `user` (a username, or `?` for a name that is
    /// none) from `addr` may be made now; `Err(wait)` if not. An attempt
    /// admitted while its user or address is slowed down takes the turn.
    /// Run it in a write transaction: taking a turn is a write.
    pub fn admit(
        &self,
        db: &mut dyn Sql,
        user: &str,
        addr: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<Result<(), Duration>, StoreError> {
        let (pair, user_key, addr_key) = LoginGuard::keys(user, addr);
        if let Some(wait) = self.blocked(db, &pair, self.limits.pair_failures_max, now_ms)? {
            return Ok(Err(wait));
        }
        let known: Option<i64> =
            crate::store::sql::scalar(db, "SELECT until_ms FROM login_known WHERE pair = ?", args![&pair])?;
        if known.is_some_and(|until| now_ms < until) {
            return Ok(Ok(()));
        }
        let mut slowed = Vec::new();
        for (key, max) in [(&user_key, self.limits.user_failures_max), (&addr_key, self.limits.address_failures_max)] {
            if self.blocked(db, key, max, now_ms)?.is_some() {
                slowed.push(key);
            }
        }
        let mut wait: Option<i64> = None;
        for key in &slowed {
            let next: Option<i64> =
                crate::store::sql::scalar(db, "SELECT next_ms FROM login_turns WHERE key = ?", args![key.as_str()])?;
            if let Some(next) = next.filter(|&n| n > now_ms) {
                wait = Some(wait.unwrap_or(0).max(next - now_ms));
            }
        }
        if let Some(wait) = wait {
            return Ok(Err(Duration::from_millis(u64::try_from(wait).unwrap_or(0))));
        }
        for key in slowed {
            db.execute(
                "INSERT INTO login_turns (key, next_ms) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET next_ms = excluded.next_ms",
                args![key.as_str(), now_ms.saturating_add(ms(self.limits.slowdown))],
            )?;
        }
        Ok(Ok(()))
    }

    /// Counts a failed attempt against the pair, the user and the address.
    pub fn failed(&self, db: &mut dyn Sql, user: &str, addr: Option<IpAddr>, now_ms: i64) -> Result<(), StoreError> {
        let (pair, user_key, addr_key) = LoginGuard::keys(user, addr);
        for key in [pair, user_key, addr_key] {
            self.count_failure(db, &key, now_ms)?;
        }
        Ok(())
    }

    fn count_failure(&self, db: &mut dyn Sql, key: &str, now_ms: i64) -> Result<(), StoreError> {
        let window = ms(self.limits.window);
        {
            // A window that has ended starts again with this failure.
            db.execute(
                "INSERT INTO login_failures (key, window_start_ms, failures) VALUES (?, ?, 1)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN login_failures.window_start_ms + ? <= ? THEN 1
                                     ELSE login_failures.failures + 1 END,
                     window_start_ms = CASE WHEN login_failures.window_start_ms + ? <= ? THEN ?
                                            ELSE login_failures.window_start_ms END",
                args![key, now_ms, window, now_ms, window, now_ms, now_ms],
            )?;
        }
        Ok(())
    }

    /// A login succeeded: the pair's failures are forgotten and the address
    /// is known for the user. The user's and the address's counts stay: a
    /// success does not give an attacker elsewhere a fresh allowance.
    pub fn succeeded(&self, db: &mut dyn Sql, user: &str, addr: Option<IpAddr>, now_ms: i64) -> Result<(), StoreError> {
        let (pair, _, _) = LoginGuard::keys(user, addr);
        db.execute("DELETE FROM login_failures WHERE key = ?", args![&pair])?;
        db.execute(
            "INSERT INTO login_known (pair, until_ms) VALUES (?, ?)
             ON CONFLICT (pair) DO UPDATE SET until_ms = excluded.until_ms",
            args![&pair, now_ms.saturating_add(ms(LoginGuard::KNOWN_FOR))],
        )?;
        Ok(())
    }

    /// How long enrollment from `addr` is still refused after too many
    /// wrong codes.
    pub fn enroll_blocked(
        &self,
        db: &mut dyn Sql,
        addr: Option<IpAddr>,
        now_ms: i64,
    ) -> Result<Option<Duration>, StoreError> {
        self.blocked(db, &LoginGuard::enroll_key(addr), self.limits.enroll_failures_max, now_ms)
    }

    /// Counts a wrong enrollment code from `addr`.
    pub fn enroll_failed(&self, db: &mut dyn Sql, addr: Option<IpAddr>, now_ms: i64) -> Result<(), StoreError> {
        self.count_failure(db, &LoginGuard::enroll_key(addr), now_ms)
    }

    fn enroll_key(addr: Option<IpAddr>) -> String {
        format!("enroll:{}", addr.map_or_else(|| "?".to_owned(), |a| address_key(a).to_string()))
    }

    /// Forgets what no longer counts (run now and then): windows ended,
    /// turns passed, addresses no longer known.
    pub fn purge(&self, db: &mut dyn Sql, now_ms: i64) -> Result<(), StoreError> {
        db.execute("DELETE FROM login_failures WHERE window_start_ms + ? <= ?", args![ms(self.limits.window), now_ms])?;
        db.execute("DELETE FROM login_turns WHERE next_ms <= ?", args![now_ms])?;
        db.execute("DELETE FROM login_known WHERE until_ms <= ?", args![now_ms])?;
        Ok(())
    }
}

/// The address limits count by: an IPv4 address, or the /64 block of an
/// IPv6 address (what one host or subscriber gets, so stepping through it
/// gains nothing). An IPv4-mapped IPv6 address is its IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

// ------------------------------------------------------------------ rate limits

// ------------------------------------------------------------------ logging in

/// A successful login: the session token (shown once) and who it is.
pub struct LoggedIn {
    pub token: String,
    pub record: crate::store::accounts::UserRecord,
    pub expires_at_ms: i64,
}

fn invalid_credentials() -> OpError {
    OpError::new(
        super::Refusal::Unauthorized,
        "invalid_credentials",
        "nama pengguna atau kata sandi salah / wrong username or password",
    )
}

/// Checks a username and password under the failure limits and opens a
/// session. `hashing` bounds the argon2 verifications running at once;
/// `result` is told each outcome (`ok`, `failed`, `limited`, `disabled`)
/// for the metrics.
#[allow(clippy::too_many_arguments)]
pub async fn authenticate(
    db: &crate::store::Db,
    guard: LoginGuard,
    hashing: &tokio::sync::Semaphore,
    session_ttl: Duration,
    raw_username: String,
    password: String,
    addr: Option<IpAddr>,
    result: impl Fn(&'static str),
) -> Result<LoggedIn, OpError> {
    use crate::store::{accounts, now_ms};
    if password.len() > 4 * PASSWORD_CHARS_MAX || raw_username.len() > 256 {
        return Err(invalid_credentials());
    }
    let username: Option<Username> = raw_username.parse().ok();
    let guard_name = username.as_ref().map_or("?", Username::as_str).to_owned();
    let name = guard_name.clone();
    let admitted = super::write(db, move |tx| Ok(guard.admit(tx, &name, addr, now_ms())?)).await?;
    if let Err(wait) = admitted {
        result("limited");
        // Not the name tried: it may be a password typed in the wrong field.
        tracing::warn!(addr = ?addr, "login refused: too many failures");
        return Err(OpError::new(
            super::Refusal::TooMany(wait),
            "too_many_attempts",
            "terlalu banyak percobaan gagal, coba lagi nanti / too many failed attempts, try again later",
        ));
    }

    let permit = hashing.acquire().await.map_err(OpError::internal)?;
    let db2 = db.clone();
    let (record, ok, disabled) = super::blocking(move || {
        let record = match &username {
            Some(u) => db2.read(|c| accounts::user(c, u))?,
            None => None,
        };
        let ok = verify_password(&password, record.as_ref().map(|r| r.password_hash.as_str()));
        let disabled = match (&record, ok) {
            (Some(r), true) => db2.read(|c| accounts::is_disabled(c, &r.username))?,
            _ => false,
        };
        Ok((record, ok, disabled))
    })
    .await?;
    drop(permit);
    // The log names an account only if it exists: a name no account has
    // may be a password typed into the wrong field.
    let known = record.as_ref().map(|r| r.username.clone());
    let record = record.filter(|_| ok);

    let Some(record) = record else {
        let name = guard_name.clone();
        super::write(db, move |tx| Ok(guard.failed(tx, &name, addr, now_ms())?)).await?;
        result("failed");
        match &known {
            Some(user) => tracing::info!(%user, addr = ?addr, "login failed"),
            None => tracing::info!(addr = ?addr, "login failed: no such user"),
        }
        return Err(invalid_credentials());
    };
    // Said only to whoever knows the password.
    if disabled {
        result("disabled");
        tracing::info!(user = %record.username, addr = ?addr, "login refused: the account is disabled");
        return Err(OpError::new(
            super::Refusal::Forbidden,
            "account_disabled",
            "akun ini dinonaktifkan; hubungi admin / this account is disabled; contact an admin",
        ));
    }
    let (token, hash) = new_token();
    let now = now_ms();
    let expires_at_ms = now.saturating_add(i64::try_from(session_ttl.as_millis()).unwrap_or(i64::MAX));
    let username = record.username.clone();
    super::write(db, move |tx| {
        guard.succeeded(tx, &guard_name, addr, now)?;
        Ok(accounts::create_session(tx, &hash, &username, expires_at_ms, now)?)
    })
    .await?;
    result("ok");
    tracing::info!(user = %record.username, role = %record.role, "logged in");
    Ok(LoggedIn { token, record, expires_at_ms })
}

/// Ends the session holding `token`.
pub async fn logout(db: &crate::store::Db, token: &str) -> Result<(), OpError> {
    let hash = token_hash(token);
    super::write(db, move |tx| Ok(crate::store::accounts::delete_session(tx, &hash).map(|_| ())?)).await
}

/// Starts a rotation of a kiosk's credential: returns the new secret.
pub async fn rotate_kiosk_credential(db: &crate::store::Db, kiosk_id: &str) -> Result<String, OpError> {
    let (token, hash) = new_token();
    let id = kiosk_id.to_owned();
    super::write(db, move |tx| Ok(crate::store::kiosks::begin_rotation(tx, &id, &hash)?)).await?;
    Ok(token)
}

// ------------------------------------------------------------------ who is asking

/// The user holding an unexpired session with this token, if any.
pub async fn session_user(db: &crate::store::Db, token: &str) -> Result<Option<User>, OpError> {
    let hash = token_hash(token);
    let record =
        super::read(db, move |c| Ok(crate::store::accounts::session_user(c, &hash, crate::store::now_ms())?)).await?;
    Ok(record.map(|r| User {
        username: r.username,
        role: r.role,
        agency: r.agency,
        kelurahan: r.kelurahan,
        region: r.region,
    }))
}

/// Why a kiosk credential was refused.
#[derive(Debug)]
pub enum KioskRefusal {
    /// No kiosk holds this secret.
    Unknown,
    /// The kiosk was revoked.
    Revoked,
    Failed(OpError),
}

impl From<OpError> for KioskRefusal {
    fn from(e: OpError) -> KioskRefusal {
        KioskRefusal::Failed(e)
    }
}

/// The kiosk holding `secret`, not revoked. The first use of a rotated
/// credential retires the old one.
pub async fn kiosk_by_secret(db: &crate::store::Db, secret: &str) -> Result<KioskAuth, KioskRefusal> {
    use crate::store::kiosks;
    let hash = token_hash(secret);
    let db = db.clone();
    let row = super::blocking(move || {
        if let Some(k) = db.read(|c| kiosks::by_token_hash(c, &hash))? {
            return Ok(Some(k));
        }
        let Some(k) = db.read(|c| kiosks::by_next_token_hash(c, &hash))? else { return Ok(None) };
        if !k.revoked && db.write(|tx| kiosks::complete_rotation(tx, &k.id, &hash))? {
            tracing::info!(kiosk = %k.code, "credential rotated: the old one no longer works");
        }
        Ok(Some(k))
    })
    .await?;
    match row {
        None => Err(KioskRefusal::Unknown),
        Some(k) if k.revoked => {
            tracing::warn!(kiosk = %k.code, "a revoked kiosk tried to connect");
            Err(KioskRefusal::Revoked)
        }
        Some(k) => Ok(k.auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            enroll_failures_max: 10,
        })
    }

    /// The lockout is per user and address; the slow-downs take turns, for
    /// everyone but known addresses, and end with the window. The clock is
    /// given; the counts live in a real store.
    #[test]
    fn logins_lock_out_pairs_and_slow_down_users_and_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Db::open(&dir.path().join("server.db")).unwrap();
        let t0 = 1_800_000_000_000_i64;
        let at = |s: i64| t0 + s * 1000;
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let g = guard();
        let admit = |user: &str, addr: Option<IpAddr>, now: i64| db.write(|tx| g.admit(tx, user, addr, now)).unwrap();
        let failed = |user: &str, addr: Option<IpAddr>, now: i64| db.write(|tx| g.failed(tx, user, addr, now)).unwrap();
        let succeeded =
            |user: &str, addr: Option<IpAddr>, now: i64| db.write(|tx| g.succeeded(tx, user, addr, now)).unwrap();
        let reset = || {
            db.write(|tx| tx.batch("DELETE FROM login_failures; DELETE FROM login_turns; DELETE FROM login_known;"))
                .unwrap()
        };
        for _ in 0..5 {
            assert_eq!(admit("rina", ip("10.0.0.1"), t0), Ok(()));
            failed("rina", ip("10.0.0.1"), t0);
        }
        assert!(admit("rina", ip("10.0.0.1"), at(1)).is_err(), "the pair is locked");
        assert_eq!(admit("rina", ip("10.0.0.2"), at(1)), Ok(()), "rina elsewhere");
        assert_eq!(admit("budi", ip("10.0.0.1"), at(1)), Ok(()), "budi at the same address");
        assert_eq!(admit("rina", ip("10.0.0.1"), at(900)), Ok(()), "the window ended");

        // An IPv6 /64 is one address.
        for i in 0..5 {
            failed("sari", ip(&format!("2001:db8::{i}")), t0);
        }
        assert!(admit("sari", ip("2001:db8::ff"), at(1)).is_err());

        // Twenty failures of one user from as many addresses.
        reset();
        succeeded("rina", ip("10.9.9.9"), t0);
        for i in 0..20 {
            failed("rina", ip(&format!("10.1.0.{i}")), t0);
        }
        assert_eq!(admit("rina", ip("10.2.0.1"), at(1)), Ok(()), "the turn");
        assert_eq!(admit("rina", ip("10.2.0.2"), at(2)), Err(Duration::from_secs(29)), "the next waits");
        assert_eq!(admit("rina", ip("10.9.9.9"), at(2)), Ok(()), "a known address does not");
        assert_eq!(admit("rina", ip("10.2.0.2"), at(31)), Ok(()), "the next turn");
        assert_eq!(admit("budi", ip("10.2.0.3"), at(31)), Ok(()), "other users are not slowed");
        assert_eq!(admit("rina", ip("10.2.0.4"), at(900)), Ok(()));
        assert_eq!(admit("rina", ip("10.2.0.5"), at(900)), Ok(()), "the window ended");

        // Fifty failures from one address, for as many names.
        reset();
        succeeded("rina", ip("10.5.5.5"), t0);
        for i in 0..50 {
            failed(&format!("user{i}"), ip("10.5.5.5"), t0);
        }
        assert_eq!(admit("budi", ip("10.5.5.5"), at(1)), Ok(()), "the turn");
        assert!(admit("sari", ip("10.5.5.5"), at(2)).is_err(), "the next waits");
        assert_eq!(admit("rina", ip("10.5.5.5"), at(2)), Ok(()), "rina logged in there before");

        // Purging forgets only what has ended.
        db.write(|tx| g.purge(tx, at(1))).unwrap();
        assert!(admit("sari", ip("10.5.5.5"), at(2)).is_err(), "still counted after a purge");
        db.write(|tx| g.purge(tx, at(901))).unwrap();
        assert_eq!(admit("sari", ip("10.5.5.5"), at(901)), Ok(()));
    }
}
