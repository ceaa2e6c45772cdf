//! `DocStore`: the kiosk's documents in one SQLite file.
//!
//! Writes go through one writer thread that owns the only write connection
//! and commits in groups: it takes every job waiting (up to
//! `write_batch_max`), applies each inside its own savepoint (a refused job
//! rolls back alone), commits once, and only then answers. One fsync covers
//! the whole group, so latency stays flat under load, and no caller is told
//! "done" before its write is durable (`synchronous=FULL`).
//!
//! Reads use a small pool of read-only connections (WAL lets them run
//! beside the writer). Documents are loaded on demand and dropped after
//! use; nothing holds the whole store in memory.
//!
//! Invariants:
//! - a document row, its chunks, its `change_log` entry and its projection
//!   row are written in one transaction;
//! - the HLC persisted in `meta` is the highest stamp ever committed, so a
//!   restart never issues a lower one;
//! - an idempotency key answers with the first result for a day
//!   (`IDEMPOTENCY_TTL`), and not after its request's personal data is
//!   evicted; its fingerprint is keyed (`DocStore::fingerprint`).

mod evict;
pub mod restore;
mod schema;
pub use schema::SCHEMA_VERSION;
pub mod sync;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use automerge::{ActorId, AutoCommit};
use loket_node::sqlite::{meta_get, meta_set};
use loket_node::{now_ms, random_bytes};
use loket_shared::complaint::{self, About, Complainant, ComplaintView};
use loket_shared::rating_token::RatingToken;
use loket_shared::reference::{self, Catalog, Roster, Service, StaffRole};
use loket_shared::request::{self, Applicant, RequestView};
use loket_shared::respondent::Profile;
use loket_shared::skm::Scores;
use loket_shared::summary::Summary;
use loket_shared::workflow::{self, Derived, TransitionError};
use loket_shared::{Code, ComplaintTicket, DocId, Hlc, KelurahanCode, KioskCode, Nik, StaffId, Status, Ticket};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use writer::{Job, rating_open};

/// Failures of the store itself (disk, database, corrupt data): never the
/// user's fault, answered with 500/503 and logged.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("document {doc}: {reason}")]
    Corrupt { doc: String, reason: String },
    #[error("the kiosk at {0} is not initialised: run `kiosk init` first")]
    NotInitialised(PathBuf),
    #[error("the kiosk at {0} is already initialised")]
    AlreadyInitialised(PathBuf),
    #[error("the writer has stopped")]
    WriterGone,
    #[error("too many writes waiting")]
    Busy,
    #[error("{0}")]
    Invalid(String),
    #[error(
        "data kiosk ditulis versi yang lebih baru (skema {found}, versi ini mengenal {known}): pasang versi terbaru / \
         the kiosk's data was written by a newer release (schema {found}, this one knows {known}): install the newer release"
    )]
    NewerSchema { found: i64, known: i64 },
}

/// Why an operation was refused, or failed.
#[derive(Debug, Error)]
pub enum OpError {
    #[error("layanan tidak dikenal / unknown service")]
    UnknownService,
    #[error("permohonan tidak ditemukan / request not found")]
    NotFound,
    #[error("permohonan ini sudah dinilai / this request has already been rated")]
    AlreadyRated,
    #[error(
        "kode penilaian salah, atau tiket ini tidak dapat dinilai di kiosk / wrong rating code, or this ticket cannot be rated at a kiosk"
    )]
    InvalidRatingToken,
    #[error(
        "penilaian dibuka setelah permohonan selesai atau ditolak / the rating opens once the request is completed or rejected"
    )]
    NotFinished,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(
        "instansi tidak dikenal atau tidak menerima layanan ini / unknown agency, or it does not take this service"
    )]
    UnknownAgency,
    #[error("kunci idempotensi dipakai untuk permintaan lain / idempotency key already used for a different request")]
    IdempotencyKeyReused,
    #[error("petugas tidak dikenal di kantor ini / no such staff member at this office")]
    UnknownStaff,
    /// The complaint's text: empty, too long, or with control characters.
    #[error(
        "isi pengaduan wajib diisi, paling banyak 2000 huruf, tanpa karakter kendali / the complaint is required, at most 2000 characters, without control characters"
    )]
    InvalidComplaintText,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> OpError {
        OpError::Store(e.into())
    }
}

/// Who this kiosk is. Fixed at init (enrollment will assign the kiosk code
/// from the server).
#[derive(Debug, Clone)]
pub struct Identity {
    pub kiosk: KioskCode,
    pub kelurahan: KelurahanCode,
    pub name: String,
    pub actor: ActorId,
}

impl Identity {
    /// The node id written into events and ratings: the actor in hex.
    pub fn node(&self) -> String {
        self.actor.to_hex_string()
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub utc_offset: time::UtcOffset,
    pub write_batch_max: usize,
    pub write_queue_max: usize,
    pub read_connections: u32,
    pub compact_chunks_min: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            utc_offset: time::UtcOffset::from_hms(7, 0, 0).expect("+7 is a valid offset"),
            write_batch_max: 64,
            write_queue_max: 1024,
            read_connections: 4,
            compact_chunks_min: 8,
        }
    }
}

/// What `kiosk init` writes.
pub struct InitParams {
    pub kiosk: KioskCode,
    pub kelurahan: KelurahanCode,
    pub name: String,
    pub catalog: Catalog,
    pub roster: Roster,
}

/// An idempotency key with the fingerprint of the request it came with
/// (`DocStore::fingerprint`).
#[derive(Debug, Clone)]
pub struct Idem {
    pub key: String,
    pub fingerprint: String,
}

/// How long the first answer to an idempotency key is kept: a retry comes
/// within seconds or minutes (a lost reply, a power cut); the fingerprints
/// derive from personal data, so they are not kept longer than that.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// An answer kept for retries names the request it is about, so it can
/// go when that request's personal data does.
pub(crate) trait Answer: Serialize + serde::de::DeserializeOwned {
    fn doc(&self) -> DocId;
}

impl Answer for Created {
    fn doc(&self) -> DocId {
        self.id
    }
}

impl Answer for EventAck {
    fn doc(&self) -> DocId {
        self.id
    }
}

impl Answer for ComplaintFiled {
    fn doc(&self) -> DocId {
        self.id
    }
}

impl Answer for Rated {
    fn doc(&self) -> DocId {
        self.id
    }
}

#[derive(Debug, Clone)]
pub struct CreateInput {
    pub service: Code,
    pub applicant: Applicant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub id: DocId,
    pub ticket: Ticket,
    pub status: Status,
    /// The receipt's rating code: shown to the citizen once; the document
    /// keeps only its digest. (Kept in the idempotency row too, so a retry
    /// gets the same answer, for as long as that row lives.)
    pub rating_token: RatingToken,
}

#[derive(Debug, Clone)]
pub struct EventInput {
    pub to: Status,
    pub note: Option<String>,
    pub agency: Option<Code>,
    pub by: StaffId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    pub id: DocId,
    pub event_id: String,
    pub status: Status,
    pub conflict: bool,
}

#[derive(Debug, Clone)]
pub struct RatingInput {
    pub scores: Scores,
    pub comment: Option<String>,
    /// The code on the receipt; checked against the document's `rating_key`.
    pub token: RatingToken,
    /// The respondent profile, each answer optional (issue 14, item 7).
    pub profile: Profile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rated {
    pub id: DocId,
    pub rating_id: String,
}

/// A complaint as a citizen files it (issue 16). The kiosk writes only
/// the `file` step; everything after that is central.
#[derive(Debug, Clone)]
pub struct ComplaintInput {
    pub about: About,
    /// `None`: anonymous.
    pub complainant: Option<Complainant>,
    /// Checked again by the writer (`complaint::check_text`).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintFiled {
    pub id: DocId,
    pub ticket: ComplaintTicket,
    pub state: complaint::State,
}

/// A ticket as anyone may see it: no personal data.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub id: String,
    pub ticket: String,
    pub service: String,
    pub status: Status,
    /// Two sides finished it differently; a central decision is awaited.
    pub conflict: bool,
    pub rated: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub id: String,
    pub ticket: String,
    pub service: String,
    pub status: Status,
    pub conflict: bool,
    pub agency: Option<String>,
    pub applicant_name: String,
    pub nik_masked: String,
    pub rated: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Which requests the queue lists.
#[derive(Debug, Clone, Copy)]
pub enum QueueFilter {
    /// Not finished, or in conflict (the default).
    Open,
    All,
    Status(Status),
}

#[derive(Debug, Clone)]
pub struct StaffRecord {
    pub id: StaffId,
    pub name: String,
    pub role: StaffRole,
    pub password_hash: String,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub pending_changes: u64,
    pub documents: u64,
    /// Documents the server refused, held in quarantine.
    pub quarantined: u64,
    /// Requests whose personal data was evicted.
    pub evicted: u64,
}

pub struct DocStore {
    path: PathBuf,
    identity: Identity,
    options: StoreOptions,
    readers: r2d2::Pool<SqliteConnectionManager>,
    jobs: mpsc::Sender<Job>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// This kiosk's key for the web UI's CSRF tokens; kept in `meta` so a
    /// form open across a restart still submits.
    web_key: [u8; 32],
    /// The key of idempotency fingerprints (`meta.fingerprint_key`).
    fingerprint_key: [u8; 32],
}

fn corrupt(doc: impl ToString, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { doc: doc.to_string(), reason: reason.to_string() }
}

/// Loads a document from its snapshot and chunks, checking that nothing it
/// depends on is missing.
pub(crate) fn load_doc(conn: &Connection, doc_id: &str) -> Result<Option<(String, AutoCommit)>, StoreError> {
    Ok(load_doc_raw(conn, doc_id)?.map(|(doc_type, doc, _)| (doc_type, doc)))
}

/// [`load_doc`], with the stored bytes as one buffer (the snapshot, then
/// every chunk): loadable as they are, so a peer that has nothing of the
/// document can be sent them without saving it again.
pub(crate) fn load_doc_raw(
    conn: &Connection,
    doc_id: &str,
) -> Result<Option<(String, AutoCommit, Vec<u8>)>, StoreError> {
    let Some((doc_type, bytes)) = raw_doc(conn, doc_id)? else { return Ok(None) };
    let mut doc = AutoCommit::load(&bytes).map_err(|e| corrupt(doc_id, e))?;
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(corrupt(doc_id, "changes with missing dependencies"));
    }
    Ok(Some((doc_type, doc, bytes)))
}

/// A document's type and its stored bytes (snapshot and chunks, in
/// order), not loaded.
fn raw_doc(conn: &Connection, doc_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let row: Option<(String, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT doc_type, snapshot FROM docs WHERE doc_id = ?1")?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((doc_type, snapshot)) = row else { return Ok(None) };
    let mut bytes = snapshot.unwrap_or_default();
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let mut rows = stmt.query([doc_id])?;
    while let Some(row) = rows.next()? {
        bytes.extend_from_slice(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
    }
    Ok(Some((doc_type, bytes)))
}

/// A document's stored bytes, not loaded (`None`: no such document, or
/// one evicted to nothing).
pub(crate) fn load_raw_bytes(conn: &Connection, doc_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(raw_doc(conn, doc_id)?.map(|(_, bytes)| bytes).filter(|b| !b.is_empty()))
}

/// The local calendar day of a unix-ms instant.
pub(crate) fn local_date(ms: i64, offset: time::UtcOffset) -> time::Date {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.to_offset(offset).date()
}

impl DocStore {
    /// Creates and initialises a new kiosk database at `path`, with its
    /// own catalog and roster (a kiosk that works before enrollment).
    pub fn init(path: &Path, params: InitParams) -> Result<(), StoreError> {
        params.catalog.check().map_err(StoreError::Invalid)?;
        let actor = ActorId::from(random_bytes::<16>());
        let mut conn = Self::create(path, &params.kiosk, &params.kelurahan, &params.name, &actor)?;
        let tx = conn.transaction()?;
        let now = now_ms();
        let catalog_id = DocId::new_v7(now as u64, random_bytes());
        let mut catalog_doc = AutoCommit::new().with_actor(actor.clone());
        reference::create_catalog(&mut catalog_doc, &params.catalog).map_err(|e| StoreError::Invalid(e.to_string()))?;
        insert_new_doc(
            &tx,
            &catalog_id.to_string(),
            "catalog",
            &catalog_doc.save(),
            &heads_column(&mut catalog_doc),
            now,
        )?;
        project_catalog(&tx, &params.catalog)?;

        let roster_id = DocId::new_v7(now as u64, random_bytes());
        let mut roster_doc = AutoCommit::new().with_actor(actor);
        reference::create_roster(&mut roster_doc, &params.roster).map_err(|e| StoreError::Invalid(e.to_string()))?;
        insert_new_doc(&tx, &roster_id.to_string(), "roster", &roster_doc.save(), &heads_column(&mut roster_doc), now)?;
        project_roster(&tx, &params.roster)?;
        tx.commit()?;
        Ok(())
    }

    /// Creates a kiosk database with only its identity: an enrolling kiosk
    /// gets its catalog and roster from the server at the first sync.
    pub fn init_bare(
        path: &Path,
        kiosk: &KioskCode,
        kelurahan: &KelurahanCode,
        name: &str,
        actor: &ActorId,
    ) -> Result<(), StoreError> {
        Self::create(path, kiosk, kelurahan, name, actor).map(drop)
    }

    fn create(
        path: &Path,
        kiosk: &KioskCode,
        kelurahan: &KelurahanCode,
        name: &str,
        actor: &ActorId,
    ) -> Result<Connection, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Invalid(format!("creating {}: {e}", dir.display())))?;
        }
        // Mode 0600 from the first byte: names, NIKs and credentials. A
        // file system without Unix permissions only gets a warning.
        if let Err(e) = loket_node::sqlite::create_private(path) {
            tracing::warn!(path = %path.display(), error = %e, "could not restrict database permissions");
        }
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&conn)?;
        if meta_get(&conn, "kiosk_code")?.is_some() {
            return Err(StoreError::AlreadyInitialised(path.to_path_buf()));
        }
        let tx = conn.transaction()?;
        meta_set(&tx, "kiosk_code", kiosk.as_str())?;
        meta_set(&tx, "kelurahan", kelurahan.as_str())?;
        meta_set(&tx, "name", name)?;
        meta_set(&tx, "actor", &actor.to_hex_string())?;
        meta_set(&tx, "hlc", &Hlc::ZERO.to_string())?;
        meta_set(&tx, "acked_seq", "0")?;
        tx.commit()?;
        Ok(conn)
    }

    /// The actor of an existing kiosk database, if it is initialised.
    pub fn existing_actor(path: &Path) -> Result<Option<ActorId>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&conn)?;
        meta_get(&conn, "actor")?
            .map(|hex| hex::decode(hex).map(ActorId::from).map_err(|e| corrupt("meta", e)))
            .transpose()
    }

    /// Opens an initialised kiosk database and starts its writer thread.
    pub fn open(path: &Path, options: StoreOptions) -> Result<DocStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotInitialised(path.to_path_buf()));
        }
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&conn)?;
        let need = |key: &str| -> Result<String, StoreError> {
            meta_get(&conn, key)?.ok_or_else(|| StoreError::NotInitialised(path.to_path_buf()))
        };
        let identity = Identity {
            kiosk: need("kiosk_code")?.parse().map_err(|e| corrupt("meta", e))?,
            kelurahan: need("kelurahan")?.parse().map_err(|e| corrupt("meta", e))?,
            name: need("name")?,
            actor: ActorId::from(hex::decode(need("actor")?).map_err(|e| corrupt("meta", e))?),
        };
        let hlc: Hlc = need("hlc")?.parse().map_err(|e| corrupt("meta", e))?;
        let catalog = current_catalog(&conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('web_key', ?1)",
            [hex::encode(random_bytes::<32>())],
        )?;
        let web_key: [u8; 32] = hex::decode(need("web_key")?)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| corrupt("meta", "web_key is not 32 hex bytes"))?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('fingerprint_key', ?1)",
            [hex::encode(random_bytes::<32>())],
        )?;
        let fingerprint_key: [u8; 32] = hex::decode(need("fingerprint_key")?)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| corrupt("meta", "fingerprint_key is not 32 hex bytes"))?;

        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| loket_node::sqlite::configure_reader(c));
        let readers = r2d2::Pool::builder().max_size(options.read_connections).min_idle(Some(1)).build(manager)?;

        let (jobs, rx) = mpsc::channel(options.write_queue_max);
        let state = writer::Writer::new(identity.clone(), options.clone(), hlc, catalog);
        let handle = std::thread::Builder::new()
            .name("kiosk-writer".into())
            .spawn(move || state.run(conn, rx))
            .map_err(|e| StoreError::Invalid(format!("starting the writer thread: {e}")))?;
        Ok(DocStore {
            path: path.to_path_buf(),
            identity,
            options,
            readers,
            jobs,
            writer: Mutex::new(Some(handle)),
            web_key,
            fingerprint_key,
        })
    }

    pub fn web_key(&self) -> &[u8; 32] {
        &self.web_key
    }

    /// The fingerprint an idempotency key guards: HMAC-SHA256 of the
    /// request's canonical bytes under this kiosk's key, so a stored one
    /// cannot be matched against guessed names and NIKs without the key.
    pub fn fingerprint(&self, canonical: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.fingerprint_key).expect("HMAC takes any key length");
        mac.update(b"loket-kiosk-idempotency:");
        mac.update(canonical);
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    async fn submit<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, OpError>>) -> Job) -> Result<T, OpError> {
        let (tx, rx) = oneshot::channel();
        match self.jobs.try_send(make(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(StoreError::Busy.into()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::WriterGone.into()),
        }
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Files a new request. Returns only after the write is durable.
    pub async fn create_request(&self, input: CreateInput, idem: Option<Idem>) -> Result<Created, OpError> {
        self.submit(|reply| Job::Create { input, idem, reply }).await
    }

    /// Appends a staff workflow event. Returns only after it is durable.
    pub async fn append_event(&self, doc: DocId, input: EventInput, idem: Option<Idem>) -> Result<EventAck, OpError> {
        self.submit(|reply| Job::Event { doc, input, idem, reply }).await
    }

    /// Files a complaint (issue 16). Returns only after the write is durable.
    pub async fn file_complaint(&self, input: ComplaintInput, idem: Option<Idem>) -> Result<ComplaintFiled, OpError> {
        self.submit(|reply| Job::Complaint { input, idem, reply }).await
    }

    /// Records the citizen's SKM rating (once per request).
    pub async fn rate(&self, doc: DocId, input: RatingInput, idem: Option<Idem>) -> Result<Rated, OpError> {
        self.submit(|reply| Job::Rate { doc, input, idem, reply }).await
    }

    /// Stores a staff session (the token's hash only).
    pub async fn create_session(&self, token_hash: String, staff: StaffId, expires_at_ms: i64) -> Result<(), OpError> {
        self.submit(|reply| Job::Session { token_hash, staff, expires_at_ms, reply }).await
    }

    /// Ends a staff session; its token stops working at once.
    pub async fn end_session(&self, token_hash: String) -> Result<(), OpError> {
        self.submit(|reply| Job::EndSession { token_hash, reply }).await
    }

    /// Compacts documents with many chunks; returns how many were compacted.
    pub async fn compact(&self) -> Result<usize, OpError> {
        self.submit(|reply| Job::Compact { reply }).await
    }

    /// Stops the writer once every job already queued is done, and waits
    /// for it. (Dropping the store stops it too, without waiting.)
    pub fn shutdown(self) {
        let DocStore { jobs, writer, .. } = self;
        drop(jobs);
        let handle = writer.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the writer thread panicked");
        }
    }

    fn reader(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        Ok(self.readers.get()?)
    }

    // ------------------------------------------------------------- reads
    // Blocking: call from `spawn_blocking` in async code.

    pub fn ticket(&self, ticket: &Ticket) -> Result<Option<TicketView>, StoreError> {
        let conn = self.reader()?;
        let row = conn
            .query_row(
                "SELECT doc_id, ticket, service, status, rated, created_at_ms, updated_at_ms, conflict FROM requests
                 WHERE ticket = ?1 ORDER BY created_at_ms DESC LIMIT 1",
                [ticket.as_str()],
                |r| {
                    Ok((
                        TicketView {
                            id: r.get(0)?,
                            ticket: r.get(1)?,
                            service: r.get(2)?,
                            status: Status::Submitted,
                            rated: r.get(4)?,
                            created_at_ms: r.get(5)?,
                            updated_at_ms: r.get(6)?,
                            conflict: r.get(7)?,
                        },
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(mut view, status)| {
            view.status = parse_status(&status)?;
            Ok(view)
        })
        .transpose()
    }

    /// The first of `tickets` this kiosk holds: `Ticket::candidates` of
    /// what a person typed, most likely first.
    pub fn find_ticket(&self, tickets: &[Ticket]) -> Result<Option<TicketView>, StoreError> {
        for ticket in tickets {
            if let Some(view) = self.ticket(ticket)? {
                return Ok(Some(view));
            }
        }
        Ok(None)
    }

    /// The complaint with this ticket (the newest, as tickets repeat
    /// yearly), read back from its document with its derived state.
    pub fn complaint(
        &self,
        ticket: &ComplaintTicket,
    ) -> Result<Option<(ComplaintView, complaint::Derived)>, StoreError> {
        let id: Option<String> = {
            let conn = self.reader()?;
            conn.prepare_cached("SELECT doc_id FROM complaints WHERE ticket = ?1 ORDER BY created_at_ms DESC LIMIT 1")?
                .query_row([ticket.as_str()], |r| r.get(0))
                .optional()?
        };
        let Some(id) = id else { return Ok(None) };
        let doc: DocId = id.parse().map_err(|e| corrupt(&id, e))?;
        self.complaint_by_id(&doc)
    }

    /// A complaint by document id, read back and folded.
    pub fn complaint_by_id(&self, doc: &DocId) -> Result<Option<(ComplaintView, complaint::Derived)>, StoreError> {
        let conn = self.reader()?;
        let id = doc.to_string();
        match load_doc(&conn, &id)? {
            Some((t, doc)) if t == "complaint" => {
                let view = complaint::read(&doc).map_err(|e| corrupt(&id, e))?;
                let derived = complaint::fold(&view.steps).map_err(|e| corrupt(&id, e))?;
                Ok(Some((view, derived)))
            }
            _ => Ok(None),
        }
    }

    /// The first of `tickets` this kiosk holds a complaint for:
    /// `ComplaintTicket::candidates` of what a person typed.
    pub fn find_complaint(
        &self,
        tickets: &[ComplaintTicket],
    ) -> Result<Option<(ComplaintView, complaint::Derived)>, StoreError> {
        for ticket in tickets {
            if let Some(found) = self.complaint(ticket)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The office's complaints, newest first, at most `limit`: for the
    /// console's list (no complainant in it).
    pub fn complaints(&self, limit: u32) -> Result<Vec<ComplaintRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, ticket, about, anonymous, state, class, flagged, created_at_ms, updated_at_ms
             FROM complaints ORDER BY created_at_ms DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(ComplaintRow {
                id: r.get(0)?,
                ticket: r.get(1)?,
                about: r.get(2)?,
                anonymous: r.get(3)?,
                state: r.get(4)?,
                class: r.get(5)?,
                flagged: r.get(6)?,
                created_at_ms: r.get(7)?,
                updated_at_ms: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The active roster, by name: what a citizen chooses from when a
    /// complaint is about a staff member.
    pub fn active_staff(&self) -> Result<Vec<(StaffId, String)>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT staff_id, name FROM staff WHERE active = 1 ORDER BY name, staff_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, name) = row?;
            Ok((id.parse().map_err(|e| corrupt("staff", e))?, name))
        })
        .collect()
    }

    /// Whether the active roster has this staff member.
    pub fn staff_on_roster(&self, id: &StaffId) -> Result<bool, StoreError> {
        Ok(self.staff(id)?.is_some_and(|s| s.active))
    }

    /// Requests whose applicant's name, or ticket, contains `text` (any
    /// case), newest first, at most `limit`.
    pub fn search_text(&self, text: &str, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
        let escaped: String =
            text.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
        let pattern = format!("%{escaped}%");
        let conn = self.reader()?;
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM requests
             WHERE applicant_name LIKE ?1 ESCAPE '\\' OR ticket LIKE ?2 ESCAPE '\\'
             ORDER BY created_at_ms DESC LIMIT ?3"
        );
        let rows: Vec<(QueueItem, String)> = conn
            .prepare_cached(&sql)?
            .query_map(params![pattern, pattern.to_ascii_uppercase(), limit], queue_row)?
            .collect::<Result<_, _>>()?;
        with_status(rows)
    }

    /// The requests of the applicant with this NIK: narrowed by the
    /// masked NIK the queue table keeps, then checked against each
    /// document (the table holds no full NIK). Newest first.
    pub fn search_nik(&self, nik: &Nik, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
        let rows: Vec<(QueueItem, String)> = {
            let conn = self.reader()?;
            let sql = format!(
                "SELECT {QUEUE_COLUMNS} FROM requests WHERE nik_masked = ?1 ORDER BY created_at_ms DESC LIMIT 500"
            );
            conn.prepare_cached(&sql)?.query_map(params![nik.masked()], queue_row)?.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for (item, status) in rows {
            let Ok(doc) = item.id.parse::<DocId>() else { continue };
            if self.request(&doc)?.is_some_and(|(view, _)| view.applicant.nik == *nik) {
                out.push((item, status));
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        with_status(out)
    }

    /// The office's staff by id, with their names (the roster synced here).
    pub fn staff_names(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT staff_id, name FROM staff")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The kiosks this one has seen write, by Automerge actor (an event's
    /// `node`) → kiosk code.
    pub fn kiosk_nodes(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT node, kiosk FROM kiosk_nodes")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The office queue: one status, or every open request, oldest first.
    pub fn queue(&self, status: Option<Status>, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
        self.queue_filtered(status.map_or(QueueFilter::Open, QueueFilter::Status), limit)
    }

    pub fn queue_filtered(&self, filter: QueueFilter, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
        let conn = self.reader()?;
        let (status, all) = match filter {
            QueueFilter::Open => (None, false),
            QueueFilter::All => (None, true),
            QueueFilter::Status(s) => (Some(s), false),
        };
        let sql_open = format!(
            "SELECT {QUEUE_COLUMNS} FROM requests
             WHERE status NOT IN ('completed', 'rejected', 'cancelled') OR conflict = 1
             ORDER BY created_at_ms LIMIT ?1"
        );
        let sql_status =
            format!("SELECT {QUEUE_COLUMNS} FROM requests WHERE status = ?2 ORDER BY created_at_ms LIMIT ?1");
        let sql_all = format!("SELECT {QUEUE_COLUMNS} FROM requests ORDER BY created_at_ms LIMIT ?1");
        let rows: Vec<(QueueItem, String)> = match status {
            None if all => {
                conn.prepare_cached(&sql_all)?.query_map(params![limit], queue_row)?.collect::<Result<_, _>>()?
            }
            None => conn.prepare_cached(&sql_open)?.query_map(params![limit], queue_row)?.collect::<Result<_, _>>()?,
            Some(s) => conn
                .prepare_cached(&sql_status)?
                .query_map(params![limit, s.as_str()], queue_row)?
                .collect::<Result<_, _>>()?,
        };
        with_status(rows)
    }

    /// Evicts the personal data of finished requests last changed before
    /// `cutoff_ms` (see `evict`); returns how many.
    pub async fn evict(&self, cutoff_ms: i64) -> Result<usize, OpError> {
        self.submit(|reply| Job::Evict { cutoff_ms, reply }).await
    }

    /// Whether `token` is the rating code of request `doc`: `None` if there
    /// is no such request here. No code (`None`), a request filed before
    /// rating codes, or one whose personal data was evicted, matches nothing.
    pub fn rating_token_matches(&self, doc: &DocId, token: Option<&RatingToken>) -> Result<Option<bool>, StoreError> {
        let conn = self.reader()?;
        let id = doc.to_string();
        let known: bool = conn
            .prepare_cached("SELECT 1 FROM requests WHERE doc_id = ?1")?
            .query_row([&id], |_| Ok(()))
            .optional()?
            .is_some();
        if !known {
            return Ok(None);
        }
        drop(conn);
        let Some(token) = token else { return Ok(Some(false)) };
        Ok(Some(match self.request(doc)? {
            Some((view, _)) => view.rating_key.as_deref().is_some_and(|key| token.matches(doc, key)),
            None => false,
        }))
    }

    /// A request read back from its document, with its derived workflow.
    pub fn request(&self, doc: &DocId) -> Result<Option<(RequestView, Derived)>, StoreError> {
        Ok(self.request_with_heads(doc)?.map(|(v, d, _)| (v, d)))
    }

    /// A request with its derived workflow and its document heads (sorted,
    /// hex): two replicas with equal heads hold exactly the same changes.
    pub fn request_with_heads(&self, doc: &DocId) -> Result<Option<(RequestView, Derived, Vec<String>)>, StoreError> {
        let conn = self.reader()?;
        let id = doc.to_string();
        if evict::is_evicted(&conn, &id)? {
            return Ok(None);
        }
        match load_doc(&conn, &id)? {
            Some((t, mut doc)) if t == "request" => {
                let view = request::read(&doc).map_err(|e| corrupt(&id, e))?;
                let derived = workflow::fold(&view.events).map_err(|e| corrupt(&id, e))?;
                let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
                heads.sort();
                Ok(Some((view, derived, heads)))
            }
            _ => Ok(None),
        }
    }

    /// The catalog as this kiosk holds it (services and agencies).
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        current_catalog(&*self.reader()?)
    }

    /// This office's latest published IKM, as the last synced catalog
    /// carries it (readable offline); `None` until the city publishes one.
    pub fn published_ikm(&self) -> Result<Option<reference::PublishedIkm>, StoreError> {
        let catalog = self.catalog()?;
        Ok(catalog.published_ikm_for(self.identity.kelurahan.as_str()).cloned())
    }

    pub fn services(&self) -> Result<Vec<Service>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT code, json FROM services WHERE active = 1 ORDER BY code")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (code, json) = row?;
            serde_json::from_str(&json).map_err(|e| corrupt(format!("service {code}"), e))
        })
        .collect()
    }

    pub fn staff(&self, id: &StaffId) -> Result<Option<StaffRecord>, StoreError> {
        let conn = self.reader()?;
        let row = conn
            .query_row("SELECT name, role, password_hash, active FROM staff WHERE staff_id = ?1", [id.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?))
            })
            .optional()?;
        row.map(|(name, role, password_hash, active)| {
            let role = match role.as_str() {
                "supervisor" => StaffRole::Supervisor,
                "staff" => StaffRole::Staff,
                other => return Err(corrupt("staff", format!("unknown role {other}"))),
            };
            Ok(StaffRecord { id: id.clone(), name, role, password_hash, active })
        })
        .transpose()
    }

    /// The staff member behind a live session token hash.
    pub fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<StaffRecord>, StoreError> {
        let staff_id: Option<String> = {
            let conn = self.reader()?;
            conn.query_row(
                "SELECT staff_id FROM staff_sessions WHERE token_hash = ?1 AND expires_at_ms > ?2",
                params![token_hash, now_ms],
                |r| r.get(0),
            )
            .optional()?
        };
        let Some(id) = staff_id else { return Ok(None) };
        let id: StaffId = id.parse().map_err(|e| corrupt("staff_sessions", e))?;
        Ok(self.staff(&id)?.filter(|s| s.active))
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.reader()?;
        let acked: i64 = meta_get(&conn, "acked_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let pending: i64 = conn.query_row("SELECT count(*) FROM change_log WHERE seq > ?1", [acked], |r| r.get(0))?;
        let documents: i64 = conn.query_row("SELECT count(*) FROM docs", [], |r| r.get(0))?;
        let quarantined: i64 = conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))?;
        let evicted: i64 = conn.query_row("SELECT count(*) FROM evicted", [], |r| r.get(0))?;
        Ok(Counts {
            pending_changes: pending as u64,
            documents: documents as u64,
            quarantined: quarantined as u64,
            evicted: evicted as u64,
        })
    }
}

/// The columns `queue_row` reads.
const QUEUE_COLUMNS: &str = "doc_id, ticket, service, status, conflict, agency, applicant_name, nik_masked, rated, \
                             created_at_ms, updated_at_ms";

/// A queue row and its status as stored (checked by `with_status`).
fn queue_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(QueueItem, String)> {
    Ok((
        QueueItem {
            id: r.get(0)?,
            ticket: r.get(1)?,
            service: r.get(2)?,
            status: Status::Submitted,
            conflict: r.get(4)?,
            agency: r.get(5)?,
            applicant_name: r.get(6)?,
            nik_masked: r.get(7)?,
            rated: r.get(8)?,
            created_at_ms: r.get(9)?,
            updated_at_ms: r.get(10)?,
        },
        r.get::<_, String>(3)?,
    ))
}

fn with_status(rows: Vec<(QueueItem, String)>) -> Result<Vec<QueueItem>, StoreError> {
    rows.into_iter()
        .map(|(mut item, status)| {
            item.status = parse_status(&status)?;
            Ok(item)
        })
        .collect()
}

/// The catalog in force: the newest catalog document (the kiosk's own
/// before enrollment, the server's after). Empty until an enrolled kiosk's
/// first sync brings one.
pub(crate) fn current_catalog(conn: &Connection) -> Result<Catalog, StoreError> {
    let id: Option<String> = conn
        .query_row("SELECT doc_id FROM docs WHERE doc_type = 'catalog' ORDER BY rowid DESC LIMIT 1", [], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(Catalog::default()) };
    match load_doc(conn, &id)? {
        Some((_, doc)) => reference::read_catalog(&doc).map_err(|e| corrupt(&id, e)),
        None => Ok(Catalog::default()),
    }
}

pub(crate) fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|e| corrupt("requests", e))
}

/// Inserts a brand-new document saved whole as its snapshot, with its
/// change-log entry. Returns the change sequence number.
pub(crate) fn insert_new_doc(
    conn: &Connection,
    doc_id: &str,
    doc_type: &str,
    snapshot: &[u8],
    heads: &[u8],
    now_ms: i64,
) -> Result<i64, StoreError> {
    let seq = log_change(conn, doc_id, now_ms)?;
    conn.prepare_cached(
        "INSERT INTO docs (doc_id, doc_type, snapshot, chunk_count, last_seq, heads) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
    )?
    .execute(params![doc_id, doc_type, snapshot, seq, heads])?;
    Ok(seq)
}

/// The heads of `doc` as `docs.heads` holds them: the hashes concatenated,
/// in Automerge's order.
pub(crate) fn heads_column(doc: &mut AutoCommit) -> Vec<u8> {
    doc.get_heads().iter().flat_map(|h| h.0).collect()
}

/// Stores an existing document whole after a local write, in place of
/// its snapshot and any chunks, and logs the write. Returns the change
/// sequence number.
///
/// Whole, not as a chunk appended per write: a request stored as its
/// first snapshot and a chunk per later write loads 2.7× slower than the
/// same request saved whole (171 against 65 µs, `examples/merge_profile`
/// of the server), and every later reader pays that (this kiosk, the
/// server that loads the first push, the partner kiosk that pulls it),
/// while saving whole costs 6 µs (issue 17).
pub(crate) fn store_whole(
    conn: &Connection,
    doc_id: &str,
    doc: &mut AutoCommit,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let seq = log_change(conn, doc_id, now_ms)?;
    replace_snapshot(conn, doc_id, doc, Some(seq))?;
    Ok(seq)
}

/// Replaces a document's stored bytes with `doc` saved whole (without
/// DEFLATE, as a new request's snapshot), moving `last_seq` to `seq` if
/// given (a local write; merged remote changes leave it).
pub(crate) fn replace_snapshot(
    conn: &Connection,
    doc_id: &str,
    doc: &mut AutoCommit,
    seq: Option<i64>,
) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE docs SET snapshot = ?2, chunk_count = 0, last_seq = coalesce(?3, last_seq), heads = ?4
             WHERE doc_id = ?1",
        )?
        .execute(params![doc_id, doc.save_nocompress(), seq, heads_column(doc)])?;
    if updated != 1 {
        return Err(corrupt(doc_id, "writing a document that does not exist"));
    }
    // Chunks of a store written before documents were stored whole.
    conn.prepare_cached("DELETE FROM chunks WHERE doc_id = ?1")?.execute([doc_id])?;
    Ok(())
}

fn log_change(conn: &Connection, doc_id: &str, now_ms: i64) -> Result<i64, StoreError> {
    conn.prepare_cached("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, ?2)")?.execute(params![doc_id, now_ms])?;
    Ok(conn.last_insert_rowid())
}

fn project_catalog(conn: &Connection, catalog: &Catalog) -> Result<(), StoreError> {
    conn.execute("DELETE FROM services", [])?;
    for s in &catalog.services {
        let json = serde_json::to_string(s).map_err(|e| StoreError::Invalid(e.to_string()))?;
        conn.execute(
            "INSERT INTO services (code, json, active) VALUES (?1, ?2, ?3)",
            params![s.code.as_str(), json, s.active],
        )?;
    }
    Ok(())
}

fn project_roster(conn: &Connection, roster: &Roster) -> Result<(), StoreError> {
    conn.execute("DELETE FROM staff", [])?;
    for s in &roster.staff {
        conn.execute(
            "INSERT INTO staff (staff_id, name, role, password_hash, active) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.id.as_str(), s.name, s.role.as_str(), s.password_hash, s.active],
        )?;
    }
    Ok(())
}

/// Rewrites the projection row of a request from its summary
/// (`Summary::of` its document, here or at the server).
pub(crate) fn project_request(conn: &Connection, s: &Summary, ticket_day: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO requests (doc_id, ticket, ticket_day, service, status, conflict, agency, applicant_name,
                               nik_masked, rated, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status, conflict = excluded.conflict,
             agency = excluded.agency, rated = excluded.rated, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        DocId::from_bytes(s.doc).to_string(),
        s.ticket.as_str(),
        ticket_day,
        s.service.as_str(),
        s.status.as_str(),
        s.conflict,
        s.agency,
        s.applicant_name.as_str(),
        s.nik.masked(),
        s.rated,
        s.created_at_ms,
        s.updated_at_ms,
    ])?;
    // The filing kiosk's actor is the `create` event's node.
    if let Some(node) = &s.create_node {
        conn.prepare_cached("INSERT OR IGNORE INTO kiosk_nodes (node, kiosk) VALUES (?1, ?2)")?
            .execute(params![node, s.kiosk.as_str()])?;
    }
    Ok(())
}

/// A row of the `complaints` projection: nothing personal.
#[derive(Debug, Clone, Serialize)]
pub struct ComplaintRow {
    pub id: String,
    pub ticket: String,
    /// The `about` kind (`request`, `office`, `service`, `staff`, `general`).
    pub about: String,
    pub anonymous: bool,
    pub state: String,
    pub class: Option<String>,
    /// Concurrent central steps someone should look at.
    pub flagged: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Rewrites the projection row of a complaint from its document.
pub(crate) fn project_complaint(
    conn: &Connection,
    view: &ComplaintView,
    derived: &complaint::Derived,
    ticket_day: &str,
) -> Result<(), StoreError> {
    let updated_at = derived.ordered.iter().map(|s| s.at_ms).max().unwrap_or(view.created_at_ms);
    conn.prepare_cached(
        "INSERT INTO complaints (doc_id, ticket, ticket_day, about, anonymous, state, class, flagged,
                                 created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (doc_id) DO UPDATE SET state = excluded.state, class = excluded.class,
             flagged = excluded.flagged, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        view.id.to_string(),
        view.ticket.as_str(),
        ticket_day,
        view.about.kind().as_str(),
        view.complainant.is_none(),
        derived.state.as_str(),
        derived.class.map(complaint::Class::as_str),
        derived.has_flags(),
        view.created_at_ms,
        updated_at,
    ])?;
    Ok(())
}

/// A handle shared by the web layer.
pub type SharedStore = Arc<DocStore>;

#[cfg(test)]
mod tests;
