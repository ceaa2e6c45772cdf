//! The operator commands that work on a data directory directly (they
//! also work while the server runs: SQLite WAL and the busy timeout let
//! them share the database).
//!
//! `init` makes `DATA/` (0700) with `server.db` (0600), the TLS files and
//! the first admin, and refuses a directory that already has either.
//! `server.db` is written last, and `meta.initialised_at_ms` last in it:
//! the server refuses to start on a directory whose init did not finish.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use loket_shared::KelurahanCode;
use sha2::{Digest, Sha256};

use crate::auth::{self, Role, Username};
use crate::enroll::{self, Issued};
use crate::store::accounts::{self, UserRecord};
use crate::store::kiosks::{self, KioskRow};
use crate::store::{Db, StoreError, meta_set, now_ms};
use crate::tls;

pub struct InitArgs {
    pub data: PathBuf,
    pub admin_user: Username,
    pub admin_password: String,
    pub hostnames: Vec<String>,
}

/// What `init` made, for the operator.
#[derive(Debug)]
pub struct Initialised {
    pub ca_file: PathBuf,
    /// SHA-256 of the CA certificate (DER), `AB:CD:...`: what an operator
    /// compares when installing `ca.pem` on a kiosk.
    pub ca_fingerprint: String,
}

/// Reads a password file: its first line, trimmed.
pub fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(meta.len() <= 64 * 1024, "{} is too large for a password file", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let password = text.lines().next().unwrap_or("").trim().to_owned();
    auth::check_new_password(&password).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(password)
}

fn fingerprint(pem: &str) -> anyhow::Result<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).context("parsing the CA certificate")?;
    let digest = Sha256::digest(der.as_ref());
    Ok(digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

pub fn init(args: InitArgs) -> anyhow::Result<Initialised> {
    let db_path = args.data.join("server.db");
    let tls_dir = args.data.join("tls");
    anyhow::ensure!(
        !db_path.exists() && !tls_dir.exists(),
        "{} is already initialised (it has server.db or tls/); refusing to overwrite it",
        args.data.display()
    );
    auth::check_new_password(&args.admin_password).map_err(anyhow::Error::msg)?;
    let password_hash = auth::hash_password(&args.admin_password)?;
    let generated = tls::generate(&args.hostnames, time::OffsetDateTime::now_utc())?;
    let ca_fingerprint = fingerprint(&generated.ca_pem)?;

    tls::create_private_dir(&args.data)?;
    tls::write(&tls_dir, &generated)?;
    let db = Db::open(&db_path).with_context(|| format!("creating {}", db_path.display()))?;
    let now = now_ms();
    let admin =
        UserRecord { username: args.admin_user, password_hash, role: Role::Admin, agency: None, kelurahan: None };
    db.write(|tx| {
        accounts::insert_user(tx, &admin, now)?;
        meta_set(tx, "ca_fingerprint", &ca_fingerprint)?;
        meta_set(tx, "initialised_at_ms", &now.to_string())?;
        Ok::<_, StoreError>(())
    })?;
    Ok(Initialised { ca_file: tls_dir.join(tls::CA_FILE), ca_fingerprint })
}

/// Opens the store of an initialised data directory (never creates one).
pub fn open_existing(data: &Path) -> anyhow::Result<Db> {
    let path = data.join("server.db");
    anyhow::ensure!(path.exists(), "{} has no server.db: run `sync-server init` first", data.display());
    let db = Db::open_with(&path, 1).with_context(|| format!("opening {}", path.display()))?;
    anyhow::ensure!(db.is_initialised()?, "{} was not initialised completely", data.display());
    Ok(db)
}

/// Parses `--ttl` (`30m`, `24h`, `7d`) and checks it against `max`. `0s`
/// makes a code that has already expired (useful only for tests).
pub fn parse_ttl(raw: &str, max: Duration) -> anyhow::Result<Duration> {
    let ttl = humantime::parse_duration(raw.trim()).with_context(|| format!("--ttl {raw:?}: use e.g. 30m, 24h, 7d"))?;
    anyhow::ensure!(ttl <= max, "--ttl may be at most {}", humantime::format_duration(max));
    Ok(ttl)
}

/// `sync-server enroll-code`: a new one-time code for `kelurahan`.
pub fn issue_enroll_code(data: &Path, kelurahan: &KelurahanCode, ttl: Duration) -> anyhow::Result<Issued> {
    let db = open_existing(data)?;
    Ok(db.write(|tx| enroll::issue(tx, kelurahan, ttl, now_ms()))?)
}

/// `sync-server revoke`: revokes a kiosk by code or id.
/// Rewrites every request's projection from its document (after an
/// upgrade; the server may keep running, each batch is one transaction).
pub fn reproject(data: &Path, utc_offset_hours: i8) -> anyhow::Result<(usize, usize)> {
    let db = open_existing(data)?;
    db.write(|tx| -> Result<(), crate::store::StoreError> {
        Ok(crate::store::meta_set(tx, "utc_offset_hours", &utc_offset_hours.to_string())?)
    })?;
    Ok(crate::store::docs::reproject_requests(&db, 1000, |n| {
        if n % 10_000 == 0 {
            eprintln!("  {n} requests projected");
        }
    })?)
}

pub fn revoke_kiosk(data: &Path, key: &str) -> anyhow::Result<KioskRow> {
    let db = open_existing(data)?;
    db.write(|tx| kiosks::revoke(tx, key, now_ms()))?.with_context(|| format!("no kiosk {key:?}"))
}

/// `sync-server disable-user` / `enable-user`: disables (ending every
/// session at once) or enables a central user, audited as done by `cli`
/// (role `operator`) with `reason`. Returns the sessions ended.
pub fn set_user_disabled(data: &Path, username: &Username, disable: bool, reason: &str) -> anyhow::Result<usize> {
    let reason = reason.trim();
    anyhow::ensure!(
        (1..=200).contains(&reason.chars().count()) && !reason.chars().any(char::is_control),
        "--reason must be 1-200 characters on one line"
    );
    let db = open_existing(data)?;
    let by = accounts::Actor { username: "cli", role: "operator" };
    db.write(|tx| accounts::set_disabled(tx, username, disable, by, reason, now_ms()))?
        .with_context(|| format!("no user {username}"))
}

pub struct NewUser {
    pub username: Username,
    pub password: String,
    pub role: Role,
    pub agency: Option<String>,
    pub kelurahan: Option<KelurahanCode>,
}

/// `sync-server add-user`: another admin, agency or supervisor account.
pub fn add_user(data: &Path, user: NewUser) -> anyhow::Result<()> {
    auth::check_new_password(&user.password).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        user.role != Role::Agency || user.agency.is_some(),
        "an agency user needs --agency (the agency's catalog code)"
    );
    let db = open_existing(data)?;
    let record = UserRecord {
        username: user.username,
        password_hash: auth::hash_password(&user.password)?,
        role: user.role,
        agency: user.agency,
        kelurahan: user.kelurahan,
    };
    let inserted = db.write(|tx| accounts::insert_user(tx, &record, now_ms()))?;
    anyhow::ensure!(inserted, "user {} already exists", record.username);
    Ok(())
}
