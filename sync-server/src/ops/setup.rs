//! The operator commands that work on a data directory directly (they
//! also work while the server runs: SQLite WAL and the busy timeout, or
//! PostgreSQL, let them share the database).
//!
//! A data directory (`DATA/`, 0700) holds the TLS files and either the
//! SQLite store (`server.db`, 0600) or, for PostgreSQL, the database's URL
//! (`database.url`, 0600). `--database` / `LOKET_DATABASE_URL` override
//! the URL for one command ([`Place`]).
//!
//! `init` makes `DATA/` with the TLS files, the store and the first admin,
//! and refuses a directory that already has them or a database already
//! initialised. `meta.initialised_at_ms` is written last: the server
//! refuses to start on a store whose init did not finish. `add-instance`
//! makes another instance's directory for the same PostgreSQL database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use loket_shared::KelurahanCode;
use sha2::{Digest, Sha256};

use super::auth::{self, Role, Username};
use super::enroll::{self, Issued};
use crate::store::accounts::{self, UserRecord};
use crate::store::kiosks::{self, KioskRow};
use crate::store::{Db, StoreError, meta_set, now_ms};
use crate::tls;

/// The file in a data directory that names its PostgreSQL database.
pub const DATABASE_URL_FILE: &str = "database.url";

/// Where a server's data is: its directory and, when given on the command
/// line or in the environment, a database URL that overrides the one kept
/// in the directory.
#[derive(Debug, Clone)]
pub struct Place {
    pub data: PathBuf,
    pub database: Option<String>,
}

impl Place {
    /// A directory with whatever database it names (SQLite if none).
    pub fn local(data: &Path) -> Place {
        Place { data: data.to_path_buf(), database: None }
    }

    /// The PostgreSQL URL in effect, if any: the override, else
    /// `DATA/database.url`.
    pub fn database_url(&self) -> anyhow::Result<Option<String>> {
        if let Some(url) = self.database.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            return Ok(Some(url.to_owned()));
        }
        let file = self.data.join(DATABASE_URL_FILE);
        if !file.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let url = text.lines().next().unwrap_or("").trim().to_owned();
        anyhow::ensure!(!url.is_empty(), "{} is empty", file.display());
        Ok(Some(url))
    }

    /// Opens and migrates the store of an initialised directory; never
    /// creates one. Blocks (call it off the async threads).
    pub fn open(&self, read_connections: u32) -> anyhow::Result<Db> {
        let db = self.open_unmigrated(read_connections)?;
        crate::store::migrate::run(&db).with_context(|| format!("migrating {}", db.describe()))?;
        anyhow::ensure!(db.is_initialised()?, "{} was not initialised completely", db.describe());
        Ok(db)
    }

    /// [`Place::open`] without migrating (`sync-server migrate`).
    pub fn open_unmigrated(&self, read_connections: u32) -> anyhow::Result<Db> {
        match self.database_url()? {
            Some(url) => {
                let pool = read_connections.saturating_add(4);
                Db::connect_unmigrated(&url, pool).map_err(anyhow::Error::msg).context("connecting to PostgreSQL")
            }
            None => {
                let path = self.data.join("server.db");
                anyhow::ensure!(
                    path.exists(),
                    "{} has no server.db and no {DATABASE_URL_FILE}: run `sync-server init --data {}` first",
                    self.data.display(),
                    self.data.display()
                );
                Db::open_unmigrated(&path, read_connections).with_context(|| format!("opening {}", path.display()))
            }
        }
    }
}

pub struct InitArgs {
    pub data: PathBuf,
    /// A PostgreSQL URL (`postgres://…`): the store lives there, and the
    /// URL is kept in `DATA/database.url`. `None`: SQLite in `DATA`.
    pub database: Option<String>,
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
    let url_file = args.data.join(DATABASE_URL_FILE);
    anyhow::ensure!(
        !db_path.exists() && !tls_dir.exists() && !url_file.exists(),
        "{} is already initialised (it has server.db, {DATABASE_URL_FILE} or tls/); refusing to overwrite it",
        args.data.display()
    );
    // A database another server already uses is never initialised again.
    let pg = match &args.database {
        Some(url) => {
            let db = Db::connect(url, 2).map_err(anyhow::Error::msg).context("connecting to PostgreSQL")?;
            anyhow::ensure!(
                !db.is_initialised()?,
                "{} is already initialised; use `sync-server add-instance` for another instance",
                db.describe()
            );
            Some(db)
        }
        None => None,
    };
    auth::check_new_password(&args.admin_password).map_err(anyhow::Error::msg)?;
    let password_hash = auth::hash_password(&args.admin_password)?;
    let generated = tls::generate(&args.hostnames, time::OffsetDateTime::now_utc())?;
    let ca_fingerprint = fingerprint(&generated.ca_pem)?;

    tls::create_private_dir(&args.data)?;
    tls::write(&tls_dir, &generated)?;
    let db = match (pg, &args.database) {
        (Some(db), Some(url)) => {
            tls::write_new(&url_file, &format!("{url}\n"), 0o600)?;
            db
        }
        _ => Db::open(&db_path).with_context(|| format!("creating {}", db_path.display()))?,
    };
    let now = now_ms();
    let admin = UserRecord {
        username: args.admin_user,
        password_hash,
        role: Role::Admin,
        agency: None,
        kelurahan: None,
        region: Vec::new(),
    };
    db.write(|tx| {
        accounts::insert_user(tx, &admin, now)?;
        meta_set(tx, "ca_fingerprint", &ca_fingerprint)?;
        meta_set(tx, "initialised_at_ms", &now.to_string())?;
        Ok::<_, StoreError>(())
    })?;
    Ok(Initialised { ca_file: tls_dir.join(tls::CA_FILE), ca_fingerprint })
}

/// Opens the store of an initialised data directory (never creates one).
pub fn open_existing(at: &Place) -> anyhow::Result<Db> {
    at.open(1)
}

/// `sync-server migrate`: brings the store to this build's schema (also
/// done at every start); refuses a store written by a newer build.
pub fn migrate(at: &Place) -> anyhow::Result<crate::store::migrate::Applied> {
    let db = at.open_unmigrated(1)?;
    crate::store::migrate::run(&db).with_context(|| format!("migrating {}", db.describe()))
}

/// `sync-server migrate-store`: copies the SQLite store of `from` into the
/// empty PostgreSQL database at `to` (stop the server first), checks the
/// copy, and points `from`'s directory at it (`database.url`); the SQLite
/// file stays as it was, unused, as a backup.
pub fn migrate_store(
    from: &Path,
    to: &str,
    progress: impl FnMut(&str, u64),
) -> anyhow::Result<crate::store::copy::Copied> {
    let local = Place::local(from);
    anyhow::ensure!(
        local.database_url()?.is_none(),
        "{} already uses PostgreSQL ({DATABASE_URL_FILE}); nothing to move",
        from.display()
    );
    let source = local.open(1)?;
    let target = Db::connect(to, 4).context("connecting to PostgreSQL")?;
    let copied = crate::store::copy::copy_store(&source, &target, progress)
        .with_context(|| format!("copying {} into {}", source.describe(), target.describe()))?;
    tls::write_new(&from.join(DATABASE_URL_FILE), &format!("{to}\n"), 0o600)?;
    Ok(copied)
}

/// What `add-instance` made.
#[derive(Debug)]
pub struct AddedInstance {
    pub data: PathBuf,
    pub ca_fingerprint: String,
}

/// `sync-server add-instance`: a directory for another instance on the
/// same PostgreSQL database: the database URL, the CA certificate kiosks
/// pin, and a server certificate for `hostnames` signed by that CA. The
/// CA's private key stays in `from`. Everything else instances agree on
/// lives in the database.
pub fn add_instance(from: &Place, out: &Path, hostnames: &[String]) -> anyhow::Result<AddedInstance> {
    let Some(url) = from.database_url()? else {
        anyhow::bail!(
            "{} keeps its store in SQLite, which one instance owns; several instances need PostgreSQL \
             (`sync-server init --database postgres://…`, or `sync-server migrate-store` to move this one)",
            from.data.display()
        );
    };
    anyhow::ensure!(
        !out.join("tls").exists() && !out.join(DATABASE_URL_FILE).exists() && !out.join("server.db").exists(),
        "{} already holds a server's data; refusing to overwrite it",
        out.display()
    );
    let db = from.open(1)?;
    drop(db);
    let ca_dir = from.data.join("tls");
    let ca_pem = std::fs::read_to_string(ca_dir.join(tls::CA_FILE))
        .with_context(|| format!("reading {}", ca_dir.join(tls::CA_FILE).display()))?;
    let ca_key = std::fs::read_to_string(ca_dir.join(tls::CA_KEY_FILE)).with_context(|| {
        format!(
            "reading {} (the CA's key signs the new instance's certificate)",
            ca_dir.join(tls::CA_KEY_FILE).display()
        )
    })?;
    let (server_pem, server_key_pem) =
        tls::issue_for_instance(&ca_pem, &ca_key, hostnames, time::OffsetDateTime::now_utc())?;
    tls::create_private_dir(out)?;
    let tls_dir = out.join("tls");
    tls::create_private_dir(&tls_dir)?;
    tls::write_new(&tls_dir.join(tls::CA_FILE), &ca_pem, 0o644)?;
    tls::write_new(&tls_dir.join(tls::CERT_FILE), &server_pem, 0o644)?;
    tls::write_new(&tls_dir.join(tls::KEY_FILE), &server_key_pem, 0o600)?;
    tls::write_new(&out.join(DATABASE_URL_FILE), &format!("{url}\n"), 0o600)?;
    Ok(AddedInstance { data: out.to_path_buf(), ca_fingerprint: fingerprint(&ca_pem)? })
}

/// Parses `--ttl` (`30m`, `24h`, `7d`) and checks it against `max`. `0s`
/// makes a code that has already expired (useful only for tests).
pub fn parse_ttl(raw: &str, max: Duration) -> anyhow::Result<Duration> {
    let ttl = humantime::parse_duration(raw.trim()).with_context(|| format!("--ttl {raw:?}: use e.g. 30m, 24h, 7d"))?;
    anyhow::ensure!(ttl <= max, "--ttl may be at most {}", humantime::format_duration(max));
    Ok(ttl)
}

/// `sync-server enroll-code`: a new one-time code for `kelurahan`.
pub fn issue_enroll_code(at: &Place, kelurahan: &KelurahanCode, ttl: Duration) -> anyhow::Result<Issued> {
    enroll::check_known_kelurahan(kelurahan).map_err(|e| anyhow::anyhow!("{e} (--kelurahan {kelurahan})"))?;
    let db = open_existing(at)?;
    Ok(db.write(|tx| enroll::issue(tx, kelurahan, ttl, now_ms()))?)
}

/// What `sync-server compact` did.
#[derive(Debug)]
pub struct CompactReport {
    pub compacted: crate::store::compact::Compacted,
    /// The SQLite file's size before and after (`None` on PostgreSQL).
    pub file_bytes: Option<(u64, u64)>,
    /// The SQLite file's page size after `--vacuum`.
    pub page_size: Option<u32>,
}

/// `sync-server compact`: folds every document's chunks into one snapshot
/// now (the server does the same in the background, a little at a time;
/// it may keep running). With `vacuum` (SQLite, server stopped or not:
/// it waits for a moment without writers) the file is rewritten to give
/// the space back to the file system; it needs as much free space again.
/// `progress` gets the documents compacted so far.
pub fn compact(at: &Place, vacuum: bool, progress: &mut dyn FnMut(u64)) -> anyhow::Result<CompactReport> {
    let db = open_existing(at)?;
    let file = at.data.join("server.db");
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let compacted = crate::store::compact::all(&db, progress)?;
    let (file_bytes, page_size) = match db.sqlite() {
        Some(_) => {
            // This process's own connections closed first: the rewrite
            // changes the page size only when nothing else has the file.
            drop(db);
            let page_size = if vacuum { Some(crate::store::sqlite::vacuum(&file)?) } else { None };
            (Some((before, size())), page_size)
        }
        None => (None, None),
    };
    Ok(CompactReport { compacted, file_bytes, page_size })
}

/// Rewrites every request's and complaint's projection from its document
/// (after an upgrade; the server may keep running, each batch is one
/// transaction).
/// `progress` gets the number of requests projected so far.
pub fn reproject(at: &Place, utc_offset_hours: i8, progress: &mut dyn FnMut(usize)) -> anyhow::Result<(usize, usize)> {
    let db = open_existing(at)?;
    db.write(|tx| crate::store::meta_set(tx, "utc_offset_hours", &utc_offset_hours.to_string()))?;
    let done = crate::store::projection::reproject_requests(&db, 1000, progress)?;
    // Complaints are few (thousands a year): one transaction.
    let complaints = db.write(crate::store::complaints::reproject_all)?;
    eprintln!("  {complaints} complaints projected");
    Ok(done)
}

/// `sync-server revoke`: revokes a kiosk by code or id.
pub fn revoke_kiosk(at: &Place, key: &str) -> anyhow::Result<KioskRow> {
    let db = open_existing(at)?;
    db.write(|tx| kiosks::revoke(tx, key, now_ms()))?.with_context(|| format!("no kiosk {key:?}"))
}

/// `sync-server disable-user` / `enable-user`: disables (ending every
/// session at once) or enables a central user, audited as done by `cli`
/// (role `operator`) with `reason`. Returns the sessions ended.
pub fn set_user_disabled(at: &Place, username: &Username, disable: bool, reason: &str) -> anyhow::Result<usize> {
    let reason = reason.trim();
    anyhow::ensure!(
        (1..=200).contains(&reason.chars().count()) && !reason.chars().any(char::is_control),
        "--reason must be 1-200 characters on one line"
    );
    let db = open_existing(at)?;
    let by = accounts::Actor { username: "cli", role: "operator" };
    db.write(|tx| accounts::set_disabled(tx, username, disable, by, reason, now_ms()))?
        .with_context(|| format!("no user {username}"))
}

/// `sync-server set-staff-id`: records (or clears) a central user's
/// staff id.
pub fn set_staff_id(at: &Place, username: &Username, staff_id: Option<&loket_shared::StaffId>) -> anyhow::Result<()> {
    let db = open_existing(at)?;
    let found = db.write(|tx| accounts::set_staff_id(tx, username, staff_id.map(loket_shared::StaffId::as_str)))?;
    anyhow::ensure!(found, "no user {username}");
    Ok(())
}

pub struct NewUser {
    pub username: Username,
    pub password: String,
    pub role: Role,
    pub agency: Option<String>,
    /// The kecamatan an agency unit covers (codes, `12.71.01`).
    pub region: Vec<String>,
    pub kelurahan: Option<KelurahanCode>,
}

/// `sync-server add-user`: another admin, agency or supervisor account.
/// An agency user names a catalog agency; one of an agency that works
/// per kecamatan (Kantor Camat, KUA, Polsek) also names the kecamatan its
/// unit covers, and sees nothing outside them.
pub fn add_user(at: &Place, user: NewUser) -> anyhow::Result<()> {
    auth::check_new_password(&user.password).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        user.role != Role::Agency || user.agency.is_some(),
        "an agency user needs --agency (the agency's catalog code)"
    );
    anyhow::ensure!(user.role == Role::Agency || user.region.is_empty(), "--region is for agency users only");
    let db = open_existing(at)?;
    let mut region: Vec<String> = user.region.iter().map(|r| r.trim().to_owned()).collect();
    region.sort();
    region.dedup();
    if let Some(code) = &user.agency {
        let catalog = db.read(super::central::catalog_or_built_in)?;
        let agency = catalog.agency(code).with_context(|| {
            let known: Vec<&str> = catalog.agencies.iter().map(|a| a.code.as_str()).collect();
            format!("no agency {code:?} in the catalog (known: {})", known.join(", "))
        })?;
        for r in &region {
            anyhow::ensure!(
                loket_shared::wilayah::kecamatan(r).is_some(),
                "--region {r:?} is not one of Medan's kecamatan (12.71.01 … 12.71.21)"
            );
        }
        match agency.region {
            loket_shared::reference::AgencyRegion::Kecamatan => anyhow::ensure!(
                !region.is_empty(),
                "{} works per kecamatan: give --region with the kecamatan its unit covers (e.g. 12.71.01)",
                agency.name
            ),
            loket_shared::reference::AgencyRegion::City => {
                anyhow::ensure!(region.is_empty(), "{} works for the whole city: leave out --region", agency.name)
            }
        }
    }
    let record = UserRecord {
        username: user.username,
        password_hash: auth::hash_password(&user.password)?,
        role: user.role,
        agency: user.agency,
        kelurahan: user.kelurahan,
        region,
    };
    let inserted = db.write(|tx| accounts::insert_user(tx, &record, now_ms()))?;
    anyhow::ensure!(inserted, "user {} already exists", record.username);
    Ok(())
}

/// The files of a data directory that are not copied as they are: the
/// live SQLite database (a snapshot goes in instead) and what a backup or
/// restore leaves while it works.
fn not_copied(rel: &str) -> bool {
    matches!(rel, "server.db" | "server.db-wal" | "server.db-shm" | "server.db-journal")
        || rel.starts_with('.')
        || rel.contains(".partial-")
}

/// `sync-server backup`: one archive of the data directory, taken while
/// the server serves. SQLite: a consistent snapshot of the store
/// (`VACUUM INTO`) and the directory's other files (TLS keys and
/// certificates, configuration). PostgreSQL: the directory's files only;
/// the database is backed up with `pg_dump` (README, "Backup and
/// restore"). `progress` gets the bytes archived so far.
pub fn backup(at: &Place, out: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<loket_node::backup::Manifest> {
    let db = at.open_unmigrated(1)?;
    anyhow::ensure!(db.is_initialised()?, "{} was not initialised completely", db.describe());
    let schema = db.read(|c| crate::store::migrate::current(c))?;
    let mut about = std::collections::BTreeMap::new();
    about.insert("schema_version".to_owned(), schema.to_string());
    let mut files = loket_node::backup::folder_files(&at.data, &not_copied)?;
    let parent = loket_node::backup::folder_of(out);
    // The snapshot waits beside the archive (same disk, a private folder).
    let scratch = tempfile::Builder::new()
        .prefix(".loket-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("making a scratch folder in {}", parent.display()))?;
    match db.sqlite() {
        Some(sqlite) => {
            about.insert("engine".to_owned(), "sqlite".to_owned());
            let snapshot = scratch.path().join("server.db");
            sqlite.snapshot_into(&snapshot).context("taking a snapshot of server.db")?;
            files.insert(0, loket_node::backup::Source { path: "server.db".to_owned(), from: snapshot });
        }
        None => {
            about.insert("engine".to_owned(), "postgresql".to_owned());
        }
    }
    drop(db);
    loket_node::backup::write(out, "sync-server", crate::VERSION, about, &files, progress)
}

/// What `sync-server restore` put back.
#[derive(Debug)]
pub struct Restored {
    pub manifest: loket_node::backup::Manifest,
    /// Whether the store came with it (SQLite); `false`: the database is
    /// in PostgreSQL and is restored with `pg_restore`.
    pub with_store: bool,
}

/// `sync-server restore`: unpacks a backup into `data`, which must not
/// exist or be empty. The SQLite store is checked (`quick_check`, and that
/// it was initialised) before anything is put in place; `serve` then
/// brings it to this build's schema. Kiosks that synced after the backup
/// was taken push again what the restored server lacks.
pub fn restore(from: &Path, data: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<Restored> {
    let manifest = loket_node::backup::restore(from, data, "sync-server", &check_restored, progress)?;
    let with_store = manifest.files.iter().any(|f| f.path == "server.db");
    Ok(Restored { manifest, with_store })
}

/// The check a restored directory passes before it is put in place.
fn check_restored(staging: &Path) -> anyhow::Result<()> {
    let path = staging.join("server.db");
    if !path.exists() {
        anyhow::ensure!(
            staging.join(DATABASE_URL_FILE).exists(),
            "the backup holds neither server.db nor {DATABASE_URL_FILE}"
        );
        return Ok(());
    }
    let db = Db::open_unmigrated(&path, 1).with_context(|| format!("opening the restored {}", path.display()))?;
    let problems = db.sqlite().expect("opened as SQLite").quick_check()?;
    anyhow::ensure!(problems.is_empty(), "the restored server.db is damaged: {}", problems.join("; "));
    anyhow::ensure!(db.is_initialised()?, "the restored server.db was not initialised completely");
    Ok(())
}
