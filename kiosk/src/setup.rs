//! Setting up a kiosk before it ever meets a server: its identity, the
//! default catalog and a staff roster from a file.

use std::path::Path;

use anyhow::{Context, bail};
use loket_node::password;
use loket_shared::reference::{self, Catalog, Roster, StaffMember, StaffRole};
use loket_shared::{KelurahanCode, KioskCode, StaffId, StaffKind, wilayah};
use serde::Deserialize;

use crate::store::{DocStore, InitParams};

/// A roster file (TOML):
///
/// ```toml
/// [[staff]]
/// id = "198503122010011002"      # NIP
/// name = "Rina Siregar"
/// role = "supervisor"            # or "staff"
/// password_hash = "$argon2id$v=19$..."   # from `kiosk hash-password`
/// ```
///
/// `password = "..."` is accepted instead of `password_hash` for demos; it
/// is hashed at once and a warning says to remove it from the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFile {
    pub staff: Vec<RosterEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
    pub role: StaffRole,
    /// `pns`, `pppk` or `non_asn`; by default what the id's shape says.
    #[serde(default)]
    pub kind: Option<StaffKind>,
    pub password_hash: Option<String>,
    pub password: Option<String>,
}

impl RosterFile {
    pub fn into_roster(self, kelurahan: &KelurahanCode) -> anyhow::Result<Roster> {
        let mut staff = Vec::new();
        for e in self.staff {
            let id: StaffId = e.id.parse().with_context(|| format!("staff id {:?}", e.id))?;
            if staff.iter().any(|s: &StaffMember| s.id == id) {
                bail!("staff id {id} appears twice in the roster");
            }
            let kind = e.kind.unwrap_or_else(|| id.default_kind());
            if !kind.accepts(&id) {
                bail!(
                    "staff {id}: not a {} id (PNS: NIP; PPPK: 18-digit NI PPPK; non-ASN: NA-<kelurahan digits>-NNN)",
                    kind.label()
                );
            }
            let password_hash = match (e.password_hash, e.password) {
                (Some(h), None) if password::is_argon2id_hash(&h) => h,
                (Some(_), None) => bail!("staff {id}: password_hash is not an argon2id PHC string"),
                (None, Some(p)) => {
                    tracing::warn!(staff = %id, "roster has a plain password: hashed now; remove it from the file");
                    password::hash_password(&p)?
                }
                _ => bail!("staff {id}: give exactly one of password_hash or password"),
            };
            let name = e.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 {
                bail!("staff {id}: name must be 1-100 characters");
            }
            staff.push(StaffMember { id, name, role: e.role, kind, password_hash, active: true });
        }
        if staff.is_empty() {
            bail!("the roster has no staff: nobody could log in to the staff console");
        }
        Ok(Roster { kelurahan: kelurahan.clone(), staff })
    }
}

pub fn parse_catalog(text: &str) -> anyhow::Result<Catalog> {
    let catalog: Catalog = toml::from_str(text).context("parsing the catalog")?;
    catalog.check().map_err(anyhow::Error::msg)?;
    if catalog.services.is_empty() {
        bail!("the catalog has no services");
    }
    Ok(catalog)
}

pub fn default_catalog() -> Catalog {
    parse_catalog(reference::DEFAULT_CATALOG_TOML).expect("the built-in catalog is valid")
}

pub struct InitArgs<'a> {
    pub db: &'a Path,
    pub kelurahan: KelurahanCode,
    pub kiosk: KioskCode,
    pub name: Option<String>,
    pub roster: Roster,
    pub catalog: Catalog,
}

pub fn init(args: InitArgs<'_>) -> anyhow::Result<()> {
    let region = wilayah::region(args.kelurahan.as_str());
    if region.is_none() {
        tracing::warn!(kelurahan = %args.kelurahan, "kelurahan code is not one of Kota Medan's; using it as given");
    }
    let name = args.name.unwrap_or_else(|| match region {
        Some(r) => format!("Kiosk Kelurahan {}", r.name),
        None => format!("Kiosk {}", args.kelurahan),
    });
    DocStore::init(
        args.db,
        InitParams { kiosk: args.kiosk, kelurahan: args.kelurahan, name, catalog: args.catalog, roster: args.roster },
    )
    .with_context(|| format!("initialising {}", args.db.display()))?;
    Ok(())
}

/// The files of a kiosk's data folder that are not copied as they are:
/// the live database (a snapshot goes in instead) and what a backup or
/// restore leaves while it works.
fn not_copied(rel: &str) -> bool {
    matches!(rel, "kiosk.db" | "kiosk.db-wal" | "kiosk.db-shm" | "kiosk.db-journal")
        || rel.starts_with('.')
        || rel.contains(".partial-")
}

/// `kiosk backup`: one archive of the kiosk's data folder, taken while it
/// serves: a consistent snapshot of `kiosk.db` (`VACUUM INTO`, in a read
/// transaction) and the folder's other files (its configuration).
/// `progress` gets the bytes archived so far.
pub fn backup(data: &Path, out: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<loket_node::backup::Manifest> {
    let db = data.join("kiosk.db");
    anyhow::ensure!(db.exists(), "{} holds no kiosk: kiosk.db is missing", data.display());
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    loket_node::sqlite::configure_reader(&conn)?;
    let mut about = std::collections::BTreeMap::new();
    for key in ["kiosk_code", "kelurahan", "actor"] {
        let value = loket_node::sqlite::meta_get(&conn, key)?
            .with_context(|| format!("{} is not an initialised kiosk (no {key})", db.display()))?;
        about.insert(key.to_owned(), value);
    }
    let mut files = loket_node::backup::folder_files(data, &not_copied)?;
    let parent = loket_node::backup::folder_of(out);
    // The snapshot waits beside the archive (same disk, a private folder).
    let scratch = tempfile::Builder::new()
        .prefix(".loket-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("making a scratch folder in {}", parent.display()))?;
    let snapshot = scratch.path().join("kiosk.db");
    loket_node::sqlite::snapshot_into(&conn, &snapshot)?;
    drop(conn);
    files.insert(0, loket_node::backup::Source { path: "kiosk.db".to_owned(), from: snapshot });
    loket_node::backup::write(out, "kiosk", crate::VERSION, about, &files, progress)
}

/// What `kiosk restore` put back.
#[derive(Debug)]
pub struct Restored {
    pub manifest: loket_node::backup::Manifest,
    /// The new Automerge actor the restored kiosk writes with.
    pub actor: String,
}

/// `kiosk restore`: unpacks a kiosk backup into `data`, which must not
/// exist or be empty. The store is checked (`quick_check`, initialised)
/// and takes a new Automerge actor ([`DocStore::take_new_actor`]) before
/// anything is put in place: the copy may be older than what the kiosk
/// wrote since. At its next sync the kiosk registers the actor and gets
/// back what the server holds.
pub fn restore(from: &Path, data: &Path, progress: &mut dyn FnMut(u64)) -> anyhow::Result<Restored> {
    let actor = std::sync::Mutex::new(None);
    let prepare = |staging: &Path| -> anyhow::Result<()> {
        let db = staging.join("kiosk.db");
        anyhow::ensure!(db.exists(), "the backup holds no kiosk.db");
        {
            let conn = rusqlite::Connection::open(&db).context("opening the restored kiosk.db")?;
            let problems = loket_node::sqlite::quick_check(&conn)?;
            anyhow::ensure!(problems.is_empty(), "the restored kiosk.db is damaged: {}", problems.join("; "));
        }
        let new = DocStore::take_new_actor(&db).context("giving the restored kiosk a new actor")?;
        *actor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(new.to_hex_string());
        Ok(())
    };
    let manifest = loket_node::backup::restore(from, data, "kiosk", &prepare, progress)?;
    let actor = actor.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).context("no actor taken")?;
    Ok(Restored { manifest, actor })
}

/// What [`enroll`] made.
#[derive(Debug)]
pub struct Enrolled {
    pub kiosk: KioskCode,
    pub kelurahan: KelurahanCode,
    /// The first sync, which fetches the catalog and the roster so the
    /// kiosk is ready offline: the documents pulled, or why it failed (it
    /// is retried when the kiosk serves).
    pub first_sync: Result<usize, String>,
}

/// Enrolls the kiosk whose store is `db` with the server at `server_url`
/// (an `https://` URL; `ca_pem` the CA it pins), with a one-time `code`:
/// the store is created on the first enrollment (a fresh Automerge actor)
/// or keeps its actor and data on a later one, the credential is recorded,
/// and a first sync runs. `kiosk enroll` and the load generator
/// (`loket_tests::load`) both come here.
pub async fn enroll(
    db: &Path,
    server_url: &str,
    ca_pem: &str,
    code: &str,
    name: Option<String>,
) -> anyhow::Result<Enrolled> {
    use crate::store::StoreOptions;
    anyhow::ensure!(server_url.starts_with("https://"), "the server URL must start with https://");
    let existing = DocStore::existing_actor(db)?;
    let actor = existing.clone().unwrap_or_else(|| automerge::ActorId::from(loket_node::random_bytes::<16>()));
    let (enrollment, kiosk, kelurahan) =
        crate::sync::enroll(server_url, ca_pem, code, &actor.to_hex_string(), name.as_deref()).await?;
    let kiosk: KioskCode = kiosk.parse().context("kiosk code from the server")?;
    let kelurahan: KelurahanCode = kelurahan.parse().context("kelurahan from the server")?;
    if existing.is_none() {
        let name = name.unwrap_or_else(|| match wilayah::region(kelurahan.as_str()) {
            Some(r) => format!("Kiosk Kelurahan {}", r.name),
            None => format!("Kiosk {kelurahan}"),
        });
        DocStore::init_bare(db, &kiosk, &kelurahan, &name, &actor)?;
    }
    DocStore::record_enrollment(db, &enrollment, &kiosk, &kelurahan)?;
    let store = std::sync::Arc::new(DocStore::open(db, StoreOptions::default())?);
    let client = crate::sync::SyncClient::new(store.clone())?;
    let first_sync = client.run_once().await.map(|s| s.pulled).map_err(|e| e.to_string());
    drop(client);
    if let Ok(store) = std::sync::Arc::try_unwrap(store) {
        store.shutdown();
    }
    Ok(Enrolled { kiosk, kelurahan, first_sync })
}
