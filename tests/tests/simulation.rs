//! A deterministic, seeded simulation of the sync protocol (DESIGN.md §4),
//! in-process: several real kiosk `DocStore`s and one real server `Db`,
//! talking through the real wire encoding and the real server handler
//! (`loket_sync_server::sync::exchange`), with no sockets in between.
//!
//! Each schedule (one seed) has 3-6 kiosks over 2-3 kelurahan (some share
//! one), enrolled the real way (a code issued and traded for a credential,
//! `init_bare`, `record_enrollment`) and synced once so they hold the
//! catalog. Creating and migrating the SQLite files costs as much as a
//! small schedule's steps, so that setup is built once per run for each
//! kelurahan assignment (a `Template`) and its closed files are copied into
//! each schedule's own directory. Then a random list of steps:
//!
//! - kiosks file requests (SKTM or PKK), staff move them through the
//!   workflow with a transition allowed from the *local* status (handing
//!   SKTM off to DINSOS, PKK to DISDUKCAPIL), and citizens rate completed
//!   ones (concurrent ratings at two kiosks are kept, not lost);
//! - the server writes central events the way the `central_event` handler
//!   does: an admin transition, or a resolve when the request is in
//!   conflict;
//! - sync exchanges, each with a fault drawn at random: the request lost
//!   (the server never sees it), the response lost (the server applied the
//!   push, the kiosk never applies the answer), the request handled twice,
//!   the response applied twice, or the exchange held back in flight and
//!   delivered later (an old request handled after newer ones; a stale
//!   response applied after newer ones); plus clean full client loops
//!   (plan, exchange, apply, again while `more`, fallbacks or a full batch);
//! - network partitions (a partitioned kiosk's exchanges fail), kiosk
//!   crashes (`shutdown()`, or a plain drop: a crash after the last
//!   committed transaction) and reopen, server crashes (the `Db` dropped
//!   and reopened), and compaction of kiosk documents.
//!
//! Then everything heals: messages still in flight are delivered or lost,
//! partitions end, and every kiosk syncs, round after round, until a whole
//! round moves nothing (bounded; not reaching quiescence fails). Checked:
//!
//! - every request a kiosk acknowledged (create returned `Ok`) is on the
//!   server and on every kiosk of its kelurahan, and on no other kiosk; the
//!   document counts match (nothing lost, nothing duplicated);
//! - the server and every kiosk holding a document have identical sorted
//!   heads, derived status and conflict flag (the kiosk's status read
//!   through `DocStore::request`, its heads by loading the snapshot and
//!   chunks from its SQLite file read-only);
//! - every event and rating acknowledged (kiosk or central) is in the
//!   merged document exactly once, and there are no others;
//! - the server's and the kiosks' projection rows (`requests`) equal the
//!   folded documents; no kiosk has pending changes or a document left in
//!   fallback; the catalog document has the same heads everywhere.
//!
//! Running: `cargo test -p loket-tests --test simulation -- --nocapture`.
//! `LOKET_SIM_SCHEDULES=n` sets how many schedules (seeds
//! `LOKET_SIM_BASE..+n`, base 0 by default; every 50th seed is a larger
//! one: 4-6 kiosks, 120-200 steps; the others have 3 kiosks, 20-40 steps).
//! `LOKET_SIM_SEED=s` replays the one schedule `s` and prints its steps. A
//! failing schedule prints its seed, its steps and the kept directory of
//! its SQLite files. Schedules run on `LOKET_SIM_THREADS` threads (default:
//! the cores, at most 4). `LOKET_SIM_DIR` sets where the files go (default:
//! `/dev/shm` when it exists, else the system temp dir: `synchronous=FULL`
//! makes every commit an fsync, which would dominate on a real disk).
//!
//! The server is also restored from an older backup now and then (in
//! place of some crashes; `LOKET_SIM_RESTORE=0` turns it off): everything
//! kiosks acknowledged must come back (kiosks are rewound and push again),
//! and only central events no kiosk had pulled before the restore may be
//! lost, which the final check allows for and counts.
//!
//! Determinism caveat: every *decision* (which kiosk, which step, which
//! fault, which document by creation order, which transition) comes from
//! one `StdRng` seeded with the schedule's seed, and the kiosk and server
//! actors from one seeded by the kelurahan assignment. But the stores stamp
//! documents, events and HLCs with the real wall clock and make document
//! and event ids from the OS random source. So a replay makes the same
//! decisions on the same logical documents, but two concurrent events may
//! order differently (HLC ties broken by real milliseconds), which can
//! change a derived non-terminal status and so the transitions on offer: a
//! replay is exact in its faults and its shape, and almost always in its
//! outcome.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::{ActorId, AutoCommit};
use loket_kiosk::store::sync::{Enrollment, PushPlan, Sent, SyncSummary};
use loket_kiosk::store::{CreateInput, DocStore, EventInput, RatingInput, StoreOptions};
use loket_shared::reference::{self, Catalog};
use loket_shared::request::{self, Applicant};
use loket_shared::skm::Scores;
use loket_shared::sync::{DocType, PushOutcome, SyncRequest, SyncResponse};
use loket_shared::workflow::{self, Event, EventKind};
use loket_shared::{DocId, Hlc, KelurahanCode, Status};
use loket_sync_server::auth::KioskAuth;
use loket_sync_server::seal::SealKey;
use loket_sync_server::store::{Db, Sql, StoreError, docs, kiosks, meta_get, meta_set, projection, sql::scalar};
use loket_sync_server::{enroll, sync};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

const STAFF: &str = "198503122010011002";
const KELURAHAN: [&str; 3] = ["12.71.01.1001", "12.71.01.1002", "12.71.02.1001"];
/// Schedules run when `LOKET_SIM_SCHEDULES` is not set.
const SCHEDULES_DEFAULT: u64 = 600;
/// Every this many seeds, a larger schedule.
const LARGE_EVERY: u64 = 50;
/// Heal rounds (every kiosk runs a full client sync) before giving up.
const HEAL_ROUNDS_MAX: usize = 12;
/// Documents per push in the heal, as the real client (`PUSH_DOCS`); the
/// steps push 1-4 so that batches end mid-way.
const CLIENT_PUSH_DOCS: usize = 200;
/// Exchanges in one full client sync before giving up (the client's
/// `ROUNDS_MAX` is 1000; here batches are tiny but documents are few).
const CLIENT_ROUNDS_MAX: usize = 200;

thread_local! {
    /// The steps of the running schedule, printed if it fails.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static VERBOSE: RefCell<bool> = const { RefCell::new(false) };
}

macro_rules! trace {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        if VERBOSE.with(|v| *v.borrow()) {
            println!("  {line}");
        }
        TRACE.with(|t| t.borrow_mut().push(line));
    }};
}

fn now_ms() -> i64 {
    sync::now_ms()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Sktm,
    Pkk,
}

impl Service {
    fn code(self) -> &'static str {
        match self {
            Service::Sktm => "SKTM",
            Service::Pkk => "PKK",
        }
    }

    /// The agency a handoff goes to (one of the service's handoff list).
    fn agency(self) -> &'static str {
        match self {
            Service::Sktm => "DINSOS",
            Service::Pkk => "DISDUKCAPIL",
        }
    }
}

/// A request as the simulation knows it; its index is its logical id
/// (creation order), which is what decisions refer to.
#[derive(Debug)]
struct SimDoc {
    id: DocId,
    kel: usize,
    service: Service,
    kiosk: usize,
    /// The receipt's rating code (it works at any kiosk holding the request).
    rating_token: loket_shared::rating_token::RatingToken,
}

/// An exchange held in flight, delivered later (or lost at the heal).
struct Held {
    bytes: Vec<u8>,
    request: SyncRequest,
    sent: Vec<Sent>,
    max_seq: i64,
    /// `None`: the request itself is delayed (the server has not seen it).
    response: Option<SyncResponse>,
}

impl Held {
    fn plan(&self) -> PushPlan {
        PushPlan { request: self.request.clone(), sent: self.sent.clone(), max_seq: self.max_seq }
    }
}

struct Kiosk {
    label: String,
    path: PathBuf,
    auth: KioskAuth,
    kel: usize,
    store: Option<DocStore>,
    options: StoreOptions,
    partitioned: bool,
    held: Vec<Held>,
}

impl Kiosk {
    fn store(&self) -> &DocStore {
        self.store.as_ref().expect("the kiosk store is open")
    }
}

/// What a network exchange suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    Clean,
    LoseRequest,
    LoseResponse,
    DuplicateRequest,
    DuplicateResponse,
    HoldRequest,
    HoldResponse,
}

#[derive(Debug, Default, Clone)]
struct Counters {
    schedules: u64,
    steps: u64,
    creates: u64,
    events: u64,
    ratings: u64,
    central_transitions: u64,
    resolves: u64,
    exchanges: u64,
    failed_partitioned: u64,
    lost_requests: u64,
    lost_responses: u64,
    duplicate_requests: u64,
    duplicate_responses: u64,
    held: u64,
    late_requests: u64,
    stale_responses: u64,
    partitions: u64,
    kiosk_crashes: u64,
    kiosk_shutdowns: u64,
    server_crashes: u64,
    compactions: u64,
    fallbacks: u64,
    heal_rounds: u64,
    docs: u64,
    final_conflicts: u64,
    final_handed_off: u64,
    final_terminal: u64,
    final_two_ratings: u64,
    server_restores: u64,
    central_events_lost_to_restore: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        let Counters {
            schedules,
            steps,
            creates,
            events,
            ratings,
            central_transitions,
            resolves,
            exchanges,
            failed_partitioned,
            lost_requests,
            lost_responses,
            duplicate_requests,
            duplicate_responses,
            held,
            late_requests,
            stale_responses,
            partitions,
            kiosk_crashes,
            kiosk_shutdowns,
            server_crashes,
            compactions,
            fallbacks,
            heal_rounds,
            docs,
            final_conflicts,
            final_handed_off,
            final_terminal,
            final_two_ratings,
            server_restores,
            central_events_lost_to_restore,
        } = self;
        *schedules += o.schedules;
        *steps += o.steps;
        *creates += o.creates;
        *events += o.events;
        *ratings += o.ratings;
        *central_transitions += o.central_transitions;
        *resolves += o.resolves;
        *exchanges += o.exchanges;
        *failed_partitioned += o.failed_partitioned;
        *lost_requests += o.lost_requests;
        *lost_responses += o.lost_responses;
        *duplicate_requests += o.duplicate_requests;
        *duplicate_responses += o.duplicate_responses;
        *held += o.held;
        *late_requests += o.late_requests;
        *stale_responses += o.stale_responses;
        *partitions += o.partitions;
        *kiosk_crashes += o.kiosk_crashes;
        *kiosk_shutdowns += o.kiosk_shutdowns;
        *server_crashes += o.server_crashes;
        *compactions += o.compactions;
        *fallbacks += o.fallbacks;
        *heal_rounds += o.heal_rounds;
        *docs += o.docs;
        *final_conflicts += o.final_conflicts;
        *final_handed_off += o.final_handed_off;
        *final_terminal += o.final_terminal;
        *final_two_ratings += o.final_two_ratings;
        *server_restores += o.server_restores;
        *central_events_lost_to_restore += o.central_events_lost_to_restore;
    }
}

/// The size of a schedule, from its seed alone (so a replay has it too).
struct Shape {
    kiosks: usize,
    kelurahan: usize,
    steps: usize,
}

fn shape(seed: u64, rng: &mut StdRng) -> Shape {
    if seed % LARGE_EVERY == LARGE_EVERY - 1 {
        Shape {
            kiosks: rng.random_range(4..=6),
            kelurahan: rng.random_range(2..=3),
            steps: rng.random_range(120..=200),
        }
    } else {
        Shape { kiosks: 3, kelurahan: 2, steps: rng.random_range(20..=40) }
    }
}

struct Sim<'a> {
    rng: StdRng,
    rt: &'a tokio::runtime::Runtime,
    dir: PathBuf,
    db: Option<Db>,
    server_actor: ActorId,
    kiosks: Vec<Kiosk>,
    docs: Vec<SimDoc>,
    by_id: HashMap<String, usize>,
    /// Acknowledged events and ratings: logical doc -> ids.
    events: BTreeMap<usize, BTreeSet<String>>,
    ratings: BTreeMap<usize, BTreeSet<String>>,
    c: Counters,
    applicants: u32,
    /// Whether the server is also restored from backups (`LOKET_SIM_RESTORE=0`: not).
    restore: bool,
    /// Restores so far, and for each central event how many had happened
    /// when the server acknowledged it: a restore after that may lose it
    /// (the server alone held it until some kiosk pulled it).
    restores: u64,
    central_events: HashMap<String, u64>,
}

// ------------------------------------------------------------------ server side

fn server_next_hlc(conn: &mut dyn Sql, seen: Option<Hlc>) -> Result<Hlc, StoreError> {
    // Monotonic across the simulated server's restarts (stricter than the
    // real server needs: its actor is new at every start).
    let last: Hlc = meta_get(conn, "server_hlc")?.and_then(|s| s.parse().ok()).unwrap_or(Hlc::ZERO);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let next = match seen {
        Some(remote) => last.observe(remote, now),
        None => last.tick(now),
    };
    meta_set(conn, "server_hlc", &next.to_string())?;
    Ok(next)
}

fn corrupt(what: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.to_owned(), reason: reason.to_string() }
}

/// A central event written: what it did, and the status after it.
struct CentralDone {
    kind: EventKind,
    from: Status,
    to: Status,
    event_id: String,
    conflict: bool,
}

/// A kiosk's document loaded from its SQLite file, read-only, the way the
/// store loads it (snapshot, then chunks in order).
fn load_kiosk_doc(conn: &Connection, doc_id: &str) -> Option<(String, AutoCommit)> {
    let (doc_type, snapshot): (String, Option<Vec<u8>>) = conn
        .query_row("SELECT doc_type, snapshot FROM docs WHERE doc_id = ?1", [doc_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .expect("reading a kiosk document")?;
    let mut doc = match snapshot {
        Some(bytes) => AutoCommit::load(&bytes).expect("kiosk snapshot loads"),
        None => AutoCommit::new(),
    };
    let mut stmt = conn.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id").expect("prepare");
    let chunks: Vec<Vec<u8>> =
        stmt.query_map([doc_id], |r| r.get(0)).expect("chunks").collect::<Result<_, _>>().expect("chunks");
    for chunk in chunks {
        doc.load_incremental(&chunk).expect("kiosk chunk loads");
    }
    assert!(doc.get_missing_deps(&[]).is_empty(), "kiosk document {doc_id} has changes with missing dependencies");
    Some((doc_type, doc))
}

/// The built-in catalog with only the services the simulation files.
fn sim_catalog() -> Catalog {
    let mut catalog = loket_kiosk::setup::default_catalog();
    catalog.services.retain(|s| [Service::Sktm, Service::Pkk].iter().any(|ours| ours.code() == s.code.as_str()));
    assert_eq!(catalog.services.len(), 2, "the built-in catalog has SKTM and PKK");
    catalog.check().expect("the trimmed catalog is consistent");
    catalog
}

fn sorted_heads(doc: &mut AutoCommit) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

/// "n applied" or "n applied, m fallback": what the server said per document.
fn acks(resp: &SyncResponse) -> String {
    let fallback = resp.acks.iter().filter(|a| matches!(a.outcome, PushOutcome::Fallback { .. })).count();
    let applied = resp.acks.len() - fallback;
    if fallback == 0 { format!("{applied} applied") } else { format!("{applied} applied, {fallback} FALLBACK") }
}

fn short(heads: &[String]) -> String {
    heads.iter().map(|h| &h[..8]).collect::<Vec<_>>().join(",")
}

impl<'a> Sim<'a> {
    fn empty(rng: StdRng, rt: &'a tokio::runtime::Runtime, dir: &Path, db: Db, server_actor: ActorId) -> Sim<'a> {
        Sim {
            rng,
            rt,
            dir: dir.to_path_buf(),
            db: Some(db),
            server_actor,
            kiosks: Vec::new(),
            docs: Vec::new(),
            by_id: HashMap::new(),
            events: BTreeMap::new(),
            ratings: BTreeMap::new(),
            c: Counters { schedules: 1, ..Counters::default() },
            applicants: 0,
            restore: std::env::var_os("LOKET_SIM_RESTORE").is_none_or(|v| v != "0"),
            restores: 0,
            central_events: HashMap::new(),
        }
    }

    /// A new server with its catalog, and no kiosks yet.
    fn with_new_server(mut rng: StdRng, rt: &'a tokio::runtime::Runtime, dir: &Path) -> Sim<'a> {
        let db = Db::open(&dir.join("server.db")).expect("open the server db");
        let seal = db.write(|tx| SealKey::load_or_create(tx)).expect("seal key");
        let server_actor = seal.actor_with_nonce(rng.random());
        let random: [u8; 10] = rng.random();
        db.write(|tx| {
            // The server's actor, where `central` keeps it.
            meta_set(tx, "server_actor", &server_actor.to_hex_string())?;
            // The catalog as `central::ensure_catalog` makes it, but with
            // only the two services the simulation files: the built-in one
            // costs more to create and pull than a small schedule's steps.
            let mut doc = AutoCommit::new().with_actor(server_actor.clone());
            reference::create_catalog(&mut doc, &sim_catalog()).map_err(|e| corrupt("catalog", e))?;
            docs::create_reference(tx, DocType::Catalog, None, doc, now_ms(), random)?;
            Ok::<_, StoreError>(())
        })
        .expect("server catalog");
        Sim::empty(rng, rt, dir, db, server_actor)
    }

    /// A copy of `template`'s server and kiosks in `dir`.
    fn from_template(rng: StdRng, rt: &'a tokio::runtime::Runtime, dir: &Path, template: &Template) -> Sim<'a> {
        for entry in std::fs::read_dir(&template.dir).expect("template dir") {
            let entry = entry.expect("template file");
            std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy a template file");
        }
        let db = Db::open(&dir.join("server.db")).expect("open the server db");
        let mut sim = Sim::empty(rng, rt, dir, db, template.server_actor.clone());
        for (label, auth, kel) in &template.kiosks {
            let path = dir.join(kiosk_file(label));
            // Small compaction threshold: snapshots plus chunks get exercised.
            let options = StoreOptions {
                compact_chunks_min: sim.rng.random_range(2..=4),
                read_connections: 2,
                ..StoreOptions::default()
            };
            let store = DocStore::open(&path, options.clone()).expect("open kiosk store");
            trace!("{label} in {} (actor {}..)", KELURAHAN[*kel], &auth.actor[..8]);
            sim.kiosks.push(Kiosk {
                label: label.clone(),
                path,
                auth: auth.clone(),
                kel: *kel,
                store: Some(store),
                options,
                partitioned: false,
                held: Vec::new(),
            });
        }
        sim
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("the server db is open")
    }

    fn enroll_kiosk(&mut self, kel: usize) {
        let kelurahan: KelurahanCode = KELURAHAN[kel].parse().expect("kelurahan code");
        let actor = ActorId::from(self.rng.random::<[u8; 16]>());
        let now = now_ms();
        let enrolled = self
            .db()
            .write(|tx| {
                let issued = enroll::issue(tx, &kelurahan, Duration::from_secs(3600), now)?;
                enroll::enroll(
                    tx,
                    &enroll::EnrollRequest {
                        code: issued.code,
                        actor: actor.to_hex_string(),
                        name: None,
                        version: "sim".into(),
                    },
                    now,
                )
            })
            .expect("enrollment");
        let auth = self
            .db()
            .read(|c| kiosks::by_id_or_code(c, &enrolled.kiosk_id))
            .expect("kiosk row")
            .expect("the enrolled kiosk has a row")
            .auth();
        let label = enrolled.kiosk_code.to_string();
        let path = self.dir.join(kiosk_file(&label));
        DocStore::init_bare(&path, &enrolled.kiosk_code, &enrolled.kelurahan, &enrolled.name, &actor)
            .expect("kiosk init");
        let enrollment = Enrollment {
            server_url: "sim://server".into(),
            token: enrolled.token.clone(),
            kiosk_id: enrolled.kiosk_id.clone(),
            ca_pem: String::new(),
        };
        DocStore::record_enrollment(&path, &enrollment, &enrolled.kiosk_code, &enrolled.kelurahan)
            .expect("record enrollment");
        let options = StoreOptions { read_connections: 2, ..StoreOptions::default() };
        let store = DocStore::open(&path, options.clone()).expect("open kiosk store");
        trace!("enroll {label} in {}", KELURAHAN[kel]);
        self.kiosks.push(Kiosk {
            label,
            path,
            auth,
            kel,
            store: Some(store),
            options,
            partitioned: false,
            held: Vec::new(),
        });
    }

    /// The server handles one encoded request, as the HTTP handler does.
    fn server_handle(&self, k: usize, bytes: &[u8]) -> SyncResponse {
        let kiosk = &self.kiosks[k];
        let req = SyncRequest::decode(bytes).expect("the server decodes a kiosk's request");
        let seal = self.db().write(|tx| SealKey::load_or_create(tx)).expect("seal key");
        let (resp, _) = sync::exchange(self.db(), &seal, &kiosk.auth, &req, now_ms())
            .unwrap_or_else(|refusal| panic!("server refused {}'s sync: {refusal:?}", kiosk.label));
        let encoded = resp.encode();
        SyncResponse::decode(&encoded).expect("the kiosk decodes the server's response")
    }

    fn apply(&mut self, k: usize, plan: PushPlan, resp: SyncResponse) -> SyncSummary {
        let kiosk = &self.kiosks[k];
        let summary = self
            .rt
            .block_on(kiosk.store().apply_sync(plan, resp))
            .unwrap_or_else(|e| panic!("{} could not apply a sync response: {e}", kiosk.label));
        self.c.fallbacks += summary.fallbacks as u64;
        summary
    }

    /// One exchange (plan, send, handle, answer, apply) suffering `net`.
    fn exchange(&mut self, k: usize, net: Net, limit: usize) -> Option<SyncSummary> {
        let plan = self.kiosks[k].store().plan_push(limit).expect("plan_push");
        let bytes = plan.request.encode();
        let label = self.kiosks[k].label.clone();
        let what = format!(
            "{label} exchange {net:?}: push {} docs (limit {limit}), pull_after {}",
            plan.sent.len(),
            plan.request.pull_after
        );
        self.c.exchanges += 1;
        if self.kiosks[k].partitioned {
            self.c.failed_partitioned += 1;
            trace!("{what}: partitioned, fails");
            return None;
        }
        match net {
            Net::LoseRequest => {
                self.c.lost_requests += 1;
                trace!("{what}: request lost");
                return None;
            }
            Net::HoldRequest => {
                self.c.held += 1;
                trace!("{what}: request held in flight");
                let PushPlan { request, sent, max_seq } = plan;
                self.kiosks[k].held.push(Held { bytes, request, sent, max_seq, response: None });
                return None;
            }
            _ => {}
        }
        let mut resp = self.server_handle(k, &bytes);
        if net == Net::DuplicateRequest {
            self.c.duplicate_requests += 1;
            let second = self.server_handle(k, &bytes);
            if self.rng.random_bool(0.5) {
                resp = second;
            }
        }
        let answered = format!("{what}: {}, {} pulled, next {}", acks(&resp), resp.pull.len(), resp.pull_next);
        match net {
            Net::LoseResponse => {
                self.c.lost_responses += 1;
                trace!("{answered}: response lost");
                None
            }
            Net::HoldResponse => {
                self.c.held += 1;
                trace!("{answered}: response held in flight");
                let PushPlan { request, sent, max_seq } = plan;
                self.kiosks[k].held.push(Held { bytes, request, sent, max_seq, response: Some(resp) });
                None
            }
            Net::DuplicateResponse => {
                self.c.duplicate_responses += 1;
                trace!("{answered}: response applied twice");
                let again = PushPlan { request: plan.request.clone(), sent: plan.sent.clone(), max_seq: plan.max_seq };
                let first = self.apply(k, plan, resp.clone());
                self.apply(k, again, resp);
                Some(first)
            }
            _ => {
                trace!("{answered}");
                Some(self.apply(k, plan, resp))
            }
        }
    }

    /// The client's loop (kiosk/src/sync.rs): exchange again while the
    /// server has more, a document is in fallback, or the batch was full.
    fn client_sync(&mut self, k: usize, limit: usize) -> Option<SyncSummary> {
        let mut total = SyncSummary::default();
        for _ in 0..CLIENT_ROUNDS_MAX {
            let s = self.exchange(k, Net::Clean, limit)?;
            total.pushed += s.pushed;
            total.pulled += s.pulled;
            total.fallbacks += s.fallbacks;
            if s.deferred > 0 || !(s.more || s.pushed >= limit || s.fallbacks > 0) {
                return Some(total);
            }
        }
        panic!("{}: the client sync did not finish in {CLIENT_ROUNDS_MAX} exchanges", self.kiosks[k].label);
    }

    /// Delivers one held exchange of kiosk `k`: a held request reaches the
    /// server now (its answer applied or lost), a held response is applied
    /// now, after newer ones.
    fn deliver_held(&mut self, k: usize, i: usize) {
        let held = self.kiosks[k].held.remove(i);
        let label = self.kiosks[k].label.clone();
        let resp = match held.response.clone() {
            Some(resp) => resp,
            None => {
                self.c.late_requests += 1;
                let resp = self.server_handle(k, &held.bytes);
                if self.rng.random_bool(0.3) {
                    trace!(
                        "{label} late request (pull_after {}) handled now; its response lost",
                        held.request.pull_after
                    );
                    return;
                }
                trace!("{label} late request (pull_after {}) handled now", held.request.pull_after);
                resp
            }
        };
        self.c.stale_responses += 1;
        trace!(
            "{label} applies a stale response: {}, {} pulled, next {}",
            acks(&resp),
            resp.pull.len(),
            resp.pull_next
        );
        self.apply(k, held.plan(), resp);
    }

    // -------------------------------------------------------------- kiosk operations

    fn create(&mut self, k: usize) {
        let service = if self.rng.random_bool(0.5) { Service::Sktm } else { Service::Pkk };
        self.applicants += 1;
        let applicant = Applicant {
            name: "Warga Simulasi".parse().expect("name"),
            nik: format!("127101010190{:04}", self.applicants % 9999 + 1).parse().expect("nik"),
            phone: None,
        };
        let input = CreateInput { service: service.code().parse().expect("code"), applicant };
        let kiosk = &self.kiosks[k];
        let created = self
            .rt
            .block_on(kiosk.store().create_request(input, None))
            .unwrap_or_else(|e| panic!("{} could not file a request: {e}", kiosk.label));
        let n = self.docs.len();
        trace!("{} files #{n} ({}, {})", kiosk.label, service.code(), created.ticket);
        self.by_id.insert(created.id.to_string(), n);
        self.docs.push(SimDoc {
            id: created.id,
            kel: kiosk.kel,
            service,
            kiosk: k,
            rating_token: created.rating_token,
        });
        self.events.insert(n, BTreeSet::new());
        self.ratings.insert(n, BTreeSet::new());
        self.c.creates += 1;
    }

    /// The requests a kiosk's staff could move on: open and not in conflict,
    /// by logical id.
    fn local_open(&self, k: usize) -> Vec<(usize, Status)> {
        let items = self.kiosks[k].store().queue(None, 100_000).expect("queue");
        let mut open: Vec<(usize, Status)> = items
            .into_iter()
            .filter(|i| !i.conflict && !i.status.allowed_next().is_empty())
            .map(|i| (self.by_id[&i.id], i.status))
            .collect();
        open.sort();
        open
    }

    fn staff_event(&mut self, k: usize) {
        let open = self.local_open(k);
        if open.is_empty() {
            trace!("{} staff: nothing to do", self.kiosks[k].label);
            return;
        }
        let (d, status) = open[self.rng.random_range(0..open.len())];
        let options = status.allowed_next();
        let to = options[self.rng.random_range(0..options.len())];
        let agency = (to == Status::HandedOff).then(|| self.docs[d].service.agency().parse().expect("agency code"));
        // A rejection and a request for documents need a reason.
        let note = matches!(to, Status::Rejected | Status::WaitingCitizen).then(|| "alasan simulasi".to_owned());
        let input = EventInput { to, note, agency, by: STAFF.parse().expect("staff id") };
        let kiosk = &self.kiosks[k];
        let ack = self
            .rt
            .block_on(kiosk.store().append_event(self.docs[d].id, input, None))
            .unwrap_or_else(|e| panic!("{} could not move #{d} {status} -> {to}: {e}", kiosk.label));
        trace!("{} staff: #{d} {status} -> {to} (now {}, conflict {})", kiosk.label, ack.status, ack.conflict);
        self.events.get_mut(&d).expect("known doc").insert(ack.event_id);
        self.c.events += 1;
    }

    fn rate(&mut self, k: usize) {
        let items = self.kiosks[k].store().queue(Some(Status::Completed), 100_000).expect("queue");
        let mut candidates: Vec<usize> = items.iter().filter(|i| !i.rated).map(|i| self.by_id[&i.id]).collect();
        candidates.sort();
        if candidates.is_empty() {
            trace!("{} rating: nothing completed and unrated", self.kiosks[k].label);
            return;
        }
        let d = candidates[self.rng.random_range(0..candidates.len())];
        let mut values = [0u8; 9];
        for v in &mut values {
            *v = self.rng.random_range(1..=4);
        }
        let input = RatingInput {
            scores: Scores::new(values).expect("scores"),
            comment: None,
            token: self.docs[d].rating_token,
            // Half the respondents answer part of the profile (issue 14).
            profile: if self.rng.random_range(0..2) == 0 {
                loket_shared::respondent::Profile::from_pairs([("sex", "p"), ("education", "sma")]).expect("profile")
            } else {
                loket_shared::respondent::Profile::default()
            },
        };
        let kiosk = &self.kiosks[k];
        let rated = self
            .rt
            .block_on(kiosk.store().rate(self.docs[d].id, input, None))
            .unwrap_or_else(|e| panic!("{} could not rate #{d}: {e}", kiosk.label));
        trace!("{} rating of #{d}", kiosk.label);
        self.ratings.get_mut(&d).expect("known doc").insert(rated.rating_id);
        self.c.ratings += 1;
    }

    fn compact(&mut self, k: usize) {
        let kiosk = &self.kiosks[k];
        let n = self.rt.block_on(kiosk.store().compact()).expect("compact");
        trace!("{} compacts {n} documents", kiosk.label);
        self.c.compactions += n as u64;
    }

    fn crash_kiosk(&mut self, k: usize) {
        let clean = self.rng.random_bool(0.5);
        let kiosk = &mut self.kiosks[k];
        let store = kiosk.store.take().expect("open");
        if clean {
            store.shutdown();
            self.c.kiosk_shutdowns += 1;
        } else {
            drop(store);
            self.c.kiosk_crashes += 1;
        }
        kiosk.store = Some(DocStore::open(&kiosk.path, kiosk.options.clone()).expect("reopen kiosk store"));
        trace!("{} {} and reopens", kiosk.label, if clean { "shuts down" } else { "crashes" });
        // Everything it acknowledged is still there.
        for (d, doc) in self.docs.iter().enumerate().filter(|(_, doc)| doc.kiosk == k) {
            assert!(
                kiosk.store().request(&doc.id).expect("read").is_some(),
                "{}: request #{d} it acknowledged is gone after a restart",
                kiosk.label
            );
        }
    }

    /// The server's database is copied
    /// (a backup) and later put back (a restore), losing what came after.
    fn backup_or_restore_server(&mut self) {
        let path = self.db().sqlite().expect("SQLite").path().to_path_buf();
        let backup = self.dir.join("backup");
        self.db = None;
        let files = ["server.db", "server.db-wal", "server.db-shm"];
        if !backup.exists() || self.rng.random_bool(0.3) {
            let _ = std::fs::remove_dir_all(&backup);
            std::fs::create_dir(&backup).expect("backup dir");
            for f in files {
                if self.dir.join(f).exists() {
                    std::fs::copy(self.dir.join(f), backup.join(f)).expect("backup");
                }
            }
            trace!("server backed up");
        } else {
            for f in files {
                let _ = std::fs::remove_file(self.dir.join(f));
                if backup.join(f).exists() {
                    std::fs::copy(backup.join(f), self.dir.join(f)).expect("restore");
                }
            }
            self.restores += 1;
            self.c.server_restores += 1;
            // A restore takes the server down: every connection in flight
            // dies with it, so nothing held can still be delivered. (Across
            // plain crashes the simulation keeps them, as a harsher model
            // than TCP allows; an answer from before a restore, applied
            // after the kiosk already spoke with the restored server, is
            // not something HTTP can deliver.)
            let dropped: usize = self.kiosks.iter_mut().map(|k| std::mem::take(&mut k.held).len()).sum();
            trace!("{dropped} exchanges in flight die with the server");
            trace!("server RESTORED from its backup");
        }
        self.db = Some(Db::open(&path).expect("reopen the server db"));
        // As the real server does at every start (a restored database must
        // not reuse its actor's sequence numbers).
        let seal = self.db().write(|tx| SealKey::load_or_create(tx)).expect("seal key");
        self.server_actor = seal.actor_with_nonce(self.rng.random());
    }

    fn crash_server(&mut self) {
        let path = self.db().sqlite().expect("SQLite").path().to_path_buf();
        self.db = None;
        self.db = Some(Db::open(&path).expect("reopen the server db"));
        self.c.server_crashes += 1;
        trace!("server restarts");
    }

    // -------------------------------------------------------------- central events

    /// The requests an admin could act on: not finished, or in conflict.
    fn server_requests(&self) -> Vec<usize> {
        let ids: Vec<String> = self
            .db()
            .read(|c| {
                c.query(
                    "SELECT doc_id FROM requests
                     WHERE status NOT IN ('completed', 'rejected', 'cancelled') OR conflict = 1",
                    &[],
                )?
                .into_iter()
                .map(|r| r.get(0))
                .collect::<Result<_, StoreError>>()
            })
            .expect("server requests");
        let mut known: Vec<usize> = ids.iter().map(|id| self.by_id[id]).collect();
        known.sort();
        known
    }

    /// An admin's event, written as `central_event` writes it: a resolve
    /// when the request is in conflict, else a transition.
    fn central_event(&mut self) {
        let candidates = self.server_requests();
        if candidates.is_empty() {
            trace!("central: nothing open on the server");
            return;
        }
        let d = candidates[self.rng.random_range(0..candidates.len())];
        let doc_id = self.docs[d].id.to_string();
        let agency = self.docs[d].service.agency();
        let pick: u64 = self.rng.random();
        let random: [u8; 10] = self.rng.random();
        let actor = self.server_actor.clone();
        let done = self
            .db()
            .write(|tx| -> Result<Option<CentralDone>, StoreError> {
                let mut stored = docs::load(tx, &doc_id)?.ok_or_else(|| corrupt(&doc_id, "listed but missing"))?;
                let (_, derived) = docs::read_request(&stored.doc).map_err(|e| corrupt(&doc_id, e))?;
                let (kind, options) = if derived.has_conflict() {
                    let mut options: Vec<Status> = derived.conflict.iter().map(|s| s.to).collect();
                    options.push(Status::InProgress);
                    options.sort();
                    options.dedup();
                    (EventKind::Resolve, options)
                } else {
                    (EventKind::Transition, derived.status.allowed_next().to_vec())
                };
                if options.is_empty() {
                    return Ok(None);
                }
                let to = options[usize::try_from(pick % options.len() as u64).expect("small")];
                let agency = (to == Status::HandedOff).then(|| agency.to_owned());
                // A rejection and a request for documents need a reason.
                let note =
                    matches!(to, Status::Rejected | Status::WaitingCitizen).then(|| "alasan simulasi".to_owned());
                let waiting = match kind {
                    EventKind::Resolve => Vec::new(),
                    _ => workflow::waiting_after(&derived, workflow::Actor::Admin, to, agency.as_deref()),
                };
                let proposal = workflow::Proposal { kind, ..workflow::Proposal::transition(to) }
                    .agency(agency.as_deref())
                    .waiting(&waiting)
                    .note(note.as_deref());
                workflow::check_transition(&derived, workflow::Actor::Admin, &proposal)
                    .map_err(|e| corrupt(&doc_id, format!("the simulation chose a forbidden transition: {e}")))?;
                let heads_before = stored.doc.get_heads();
                stored.doc.set_actor(actor.clone());
                let latest = derived.ordered.iter().map(|e| e.hlc).max();
                let now = now_ms();
                let mut event = Event {
                    id: DocId::new_v7(u64::try_from(now).unwrap_or(0), random).to_string(),
                    hlc: server_next_hlc(tx, latest)?,
                    node: actor.to_hex_string(),
                    at_ms: now,
                    by: "admin:sim".into(),
                    kind,
                    from: Some(derived.status),
                    to,
                    note,
                    agency,
                    waiting,
                    result_ref: None,
                    parents: derived.frontier.clone(),
                    seal: None,
                };
                event.seal = Some(SealKey::load_or_create(tx)?.seal(&doc_id, &event));
                request::append_event(&mut stored.doc, &event).map_err(|e| corrupt(&doc_id, e))?;
                stored.doc.commit();
                let (view, after) = docs::read_request(&stored.doc).map_err(|e| corrupt(&doc_id, e))?;
                docs::save(tx, &doc_id, &mut stored, false, now)?;
                docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, now)?;
                projection::project_request(tx, &view, &after)?;
                Ok(Some(CentralDone {
                    kind,
                    from: derived.status,
                    to: after.status,
                    event_id: event.id,
                    conflict: after.has_conflict(),
                }))
            })
            .expect("central event");
        match done {
            None => trace!("central: #{d} is finished, nothing to do"),
            Some(CentralDone { kind, from, to, event_id, conflict }) => {
                trace!("central {}: #{d} {from} -> {to} (conflict {conflict})", kind.as_str());
                self.central_events.insert(event_id.clone(), self.restores);
                self.events.get_mut(&d).expect("known doc").insert(event_id);
                if kind == EventKind::Resolve {
                    self.c.resolves += 1;
                } else {
                    self.c.central_transitions += 1;
                }
            }
        }
    }

    // -------------------------------------------------------------- the schedule

    fn net(&mut self) -> Net {
        match self.rng.random_range(0..100) {
            0..40 => Net::Clean,
            40..50 => Net::LoseRequest,
            50..60 => Net::LoseResponse,
            60..70 => Net::DuplicateRequest,
            70..80 => Net::DuplicateResponse,
            80..90 => Net::HoldRequest,
            _ => Net::HoldResponse,
        }
    }

    fn step(&mut self) {
        self.c.steps += 1;
        let k = self.rng.random_range(0..self.kiosks.len());
        match self.rng.random_range(0..100) {
            // Few requests, many steps on each: concurrent steps on one
            // request (conflicts) are what the merge rules are about.
            0..12 => self.create(k),
            12..42 => self.staff_event(k),
            42..45 => self.rate(k),
            45..68 => {
                let net = self.net();
                let limit = self.rng.random_range(1..=4);
                self.exchange(k, net, limit);
            }
            68..76 => {
                let label = self.kiosks[k].label.clone();
                let limit = self.rng.random_range(1..=4);
                match self.client_sync(k, limit) {
                    Some(s) => trace!("{label} full sync: pushed {}, pulled {}", s.pushed, s.pulled),
                    None => trace!("{label} full sync failed"),
                }
            }
            76..80 => {
                if self.kiosks[k].held.is_empty() || self.kiosks[k].partitioned {
                    trace!("{} nothing in flight it could receive", self.kiosks[k].label);
                } else {
                    let i = self.rng.random_range(0..self.kiosks[k].held.len());
                    self.deliver_held(k, i);
                }
            }
            80..89 => self.central_event(),
            89..94 => {
                let kiosk = &mut self.kiosks[k];
                kiosk.partitioned = !kiosk.partitioned;
                if kiosk.partitioned {
                    self.c.partitions += 1;
                }
                trace!("{} {}", kiosk.label, if kiosk.partitioned { "is cut off" } else { "is reachable again" });
            }
            94..97 => self.crash_kiosk(k),
            97..98 if self.restore && self.rng.random_bool(0.7) => self.backup_or_restore_server(),
            97..98 => self.crash_server(),
            _ => self.compact(k),
        }
    }

    /// Ends every fault, then syncs every kiosk until a whole round moves
    /// nothing.
    fn heal(&mut self) {
        trace!("heal");
        for k in 0..self.kiosks.len() {
            self.kiosks[k].partitioned = false;
            while !self.kiosks[k].held.is_empty() {
                if self.rng.random_bool(0.5) {
                    self.deliver_held(k, 0);
                } else {
                    self.kiosks[k].held.remove(0);
                    trace!("{} an exchange in flight is lost", self.kiosks[k].label);
                }
            }
        }
        for round in 0..HEAL_ROUNDS_MAX {
            self.c.heal_rounds += 1;
            let mut moved = false;
            for k in 0..self.kiosks.len() {
                let s = self.client_sync(k, CLIENT_PUSH_DOCS).expect("not partitioned");
                trace!("heal round {round}: {} pushed {}, pulled {}", self.kiosks[k].label, s.pushed, s.pulled);
                moved |= s.pushed + s.pulled + s.fallbacks > 0;
            }
            if !moved {
                return;
            }
        }
        panic!("not quiescent after {HEAL_ROUNDS_MAX} rounds of syncing every kiosk");
    }

    // -------------------------------------------------------------- the invariants

    fn check(&mut self) {
        // The server: every acknowledged request, once; projections agree.
        struct ServerDoc {
            heads: Vec<String>,
            status: Status,
            conflict: bool,
        }
        let db = self.db().clone();
        let server_ids: BTreeSet<String> = db
            .read(|c| {
                c.query("SELECT doc_id FROM docs WHERE doc_type = 'request'", &[])?
                    .into_iter()
                    .map(|r| r.get(0))
                    .collect::<Result<_, StoreError>>()
            })
            .expect("server docs");
        let expected: BTreeSet<String> = self.docs.iter().map(|d| d.id.to_string()).collect();
        assert_eq!(expected.len(), self.docs.len(), "two requests got the same id");
        let missing: Vec<usize> = self
            .docs
            .iter()
            .enumerate()
            .filter(|(_, d)| !server_ids.contains(&d.id.to_string()))
            .map(|(i, _)| i)
            .collect();
        assert!(missing.is_empty(), "acknowledged requests missing on the server: {missing:?}");
        assert_eq!(server_ids, expected, "the server holds requests nobody filed");
        let rows: i64 = db
            .read(|c| Ok::<_, StoreError>(scalar(c, "SELECT count(*) FROM requests", &[])?.unwrap_or(0)))
            .expect("count");
        assert_eq!(rows, self.docs.len() as i64, "server projection rows");

        let mut server = Vec::with_capacity(self.docs.len());
        for (d, doc) in self.docs.iter().enumerate() {
            let id = doc.id.to_string();
            let (heads, view, derived, row) = db
                .read(|c| {
                    let mut stored = docs::load(c, &id)?.ok_or_else(|| corrupt(&id, "missing"))?;
                    let (view, derived) = docs::read_request(&stored.doc).map_err(|e| corrupt(&id, e))?;
                    let r = c
                        .query_opt(
                            "SELECT status, conflict, agency FROM requests WHERE doc_id = ?",
                            &[id.as_str().into()],
                        )?
                        .ok_or_else(|| corrupt(&id, "no projection row"))?;
                    let row: (String, bool, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?);
                    Ok::<_, StoreError>((sorted_heads(&mut stored.doc), view, derived, row))
                })
                .expect("server doc");
            assert_eq!(view.id, doc.id);
            assert_eq!(view.kelurahan.as_str(), KELURAHAN[doc.kel]);
            assert_eq!(
                row,
                (derived.status.as_str().to_owned(), derived.has_conflict(), derived.agency.clone()),
                "server projection of #{d} differs from its document"
            );
            let events: BTreeSet<String> =
                derived.ordered.iter().filter(|e| e.kind != EventKind::Create).map(|e| e.id.clone()).collect();
            assert_eq!(derived.ordered.len(), events.len() + 1, "#{d}: not exactly one create event");
            let acknowledged = &self.events[&d];
            assert!(events.is_subset(acknowledged), "#{d}: the server holds events nobody acknowledged");
            for lost in acknowledged.difference(&events) {
                // Only a central event that a later restore took away
                // before any kiosk pulled it may be missing.
                let restored_away = self.central_events.get(lost).is_some_and(|&at| at < self.restores);
                assert!(restored_away, "#{d}: acknowledged event {lost} is missing on the server");
                self.c.central_events_lost_to_restore += 1;
            }
            let ratings: BTreeSet<String> = view.ratings.iter().map(|r| r.id.clone()).collect();
            assert_eq!(ratings.len(), view.ratings.len(), "#{d}: a rating twice");
            assert_eq!(&ratings, &self.ratings[&d], "#{d}: ratings on the server differ from those acknowledged");
            self.c.final_conflicts += u64::from(derived.has_conflict());
            self.c.final_handed_off += u64::from(derived.status == Status::HandedOff);
            self.c.final_terminal += u64::from(derived.status.is_terminal());
            self.c.final_two_ratings += u64::from(view.ratings.len() > 1);
            server.push(ServerDoc { heads, status: derived.status, conflict: derived.has_conflict() });
        }
        self.c.docs += self.docs.len() as u64;

        let (catalog_id, catalog_heads) = db
            .read(|c| {
                let id: String = scalar(c, "SELECT doc_id FROM docs WHERE doc_type = 'catalog'", &[])?
                    .ok_or_else(|| corrupt("catalog", "missing"))?;
                let mut stored = docs::load(c, &id)?.ok_or_else(|| corrupt(&id, "missing"))?;
                Ok::<_, StoreError>((id.clone(), sorted_heads(&mut stored.doc)))
            })
            .expect("server catalog");

        // Every kiosk: the requests of its kelurahan, as the server has them.
        for kiosk in &self.kiosks {
            let store = kiosk.store();
            let conn = Connection::open_with_flags(&kiosk.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the kiosk db read-only");
            let held: BTreeSet<String> = {
                let mut stmt = conn.prepare("SELECT doc_id FROM docs WHERE doc_type = 'request'").expect("prepare");
                stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows")
            };
            let mine: BTreeSet<String> =
                self.docs.iter().filter(|d| d.kel == kiosk.kel).map(|d| d.id.to_string()).collect();
            let missing: Vec<usize> =
                mine.difference(&held).map(|id| self.by_id.get(id).copied().unwrap_or(usize::MAX)).collect();
            assert!(missing.is_empty(), "{} lacks requests of its kelurahan: {missing:?}", kiosk.label);
            assert_eq!(held, mine, "{} holds requests of another kelurahan", kiosk.label);
            for id in &mine {
                let d = self.by_id[id];
                let (doc_type, mut doc) = load_kiosk_doc(&conn, id).expect("held");
                assert_eq!(doc_type, "request");
                let heads = sorted_heads(&mut doc);
                assert_eq!(
                    heads,
                    server[d].heads,
                    "#{d}: heads differ between {} [{}] and the server [{}]",
                    kiosk.label,
                    short(&heads),
                    short(&server[d].heads)
                );
                let (_, derived) = store.request(&self.docs[d].id).expect("read").expect("held");
                assert_eq!(
                    (derived.status, derived.has_conflict()),
                    (server[d].status, server[d].conflict),
                    "#{d}: status differs between {} and the server",
                    kiosk.label
                );
                let row: (String, bool, Option<String>) = conn
                    .query_row("SELECT status, conflict, agency FROM requests WHERE doc_id = ?1", [id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .expect("kiosk projection row");
                assert_eq!(
                    row,
                    (derived.status.as_str().to_owned(), derived.has_conflict(), derived.agency.clone()),
                    "{}: projection of #{d} differs from its document",
                    kiosk.label
                );
            }
            let rows: i64 = conn.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)).expect("count");
            assert_eq!(rows, mine.len() as i64, "{}: projection rows", kiosk.label);
            let counts = store.counts().expect("counts");
            assert_eq!(counts.pending_changes, 0, "{}: changes still pending after the heal", kiosk.label);
            let in_fallback: i64 =
                conn.query_row("SELECT count(*) FROM doc_sync WHERE fallback = 1", [], |r| r.get(0)).expect("count");
            assert_eq!(in_fallback, 0, "{}: documents left in fallback", kiosk.label);
            let (doc_type, mut catalog) = load_kiosk_doc(&conn, &catalog_id)
                .unwrap_or_else(|| panic!("{} lacks the server's catalog", kiosk.label));
            assert_eq!(doc_type, "catalog");
            assert_eq!(sorted_heads(&mut catalog), catalog_heads, "{}: catalog heads", kiosk.label);
        }
    }

    fn shutdown(&mut self) {
        for kiosk in &mut self.kiosks {
            if let Some(store) = kiosk.store.take() {
                store.shutdown();
            }
        }
        self.db = None;
    }
}

fn kiosk_file(label: &str) -> String {
    format!("kiosk-{label}.db")
}

/// A server with kiosks enrolled (the real enrollment: code issued, traded
/// for a credential, `init_bare`, `record_enrollment`) and synced once (so
/// they hold the catalog), all closed. Creating and migrating SQLite files
/// costs as much as a small schedule's steps, so each kelurahan assignment
/// is built once per run and its files copied for every schedule.
struct Template {
    dir: PathBuf,
    server_actor: ActorId,
    /// Per kiosk: its code, its server identity, its kelurahan.
    kiosks: Vec<(String, KioskAuth, usize)>,
}

struct Templates {
    root: tempfile::TempDir,
    built: Mutex<HashMap<Vec<usize>, Arc<Template>>>,
}

impl Templates {
    fn new(root: &Path) -> Templates {
        let root = tempfile::Builder::new().prefix("loket-sim-templates-").tempdir_in(root).expect("templates dir");
        Templates { root, built: Mutex::new(HashMap::new()) }
    }

    /// The template for kiosks in these kelurahan (by index), built on
    /// first use from a seed that depends on the assignment only.
    fn get(&self, kels: &[usize]) -> Arc<Template> {
        let mut built = self.built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = built.get(kels) {
            return t.clone();
        }
        let name: String = kels.iter().map(|k| k.to_string()).collect();
        let dir = self.root.path().join(format!("k{name}"));
        std::fs::create_dir(&dir).expect("template dir");
        let seed = kels.iter().fold(0x10CE7_u64, |acc, &k| acc.wrapping_mul(31).wrapping_add(k as u64 + 1));
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut sim = Sim::with_new_server(StdRng::seed_from_u64(seed), &rt, &dir);
        for &kel in kels {
            sim.enroll_kiosk(kel);
        }
        for k in 0..sim.kiosks.len() {
            // The first sync brings the catalog: before it, nothing can be filed.
            sim.client_sync(k, CLIENT_PUSH_DOCS).expect("not partitioned");
        }
        let template = Arc::new(Template {
            dir: dir.clone(),
            server_actor: sim.server_actor.clone(),
            kiosks: sim.kiosks.iter().map(|k| (k.label.clone(), k.auth.clone(), k.kel)).collect(),
        });
        sim.shutdown();
        built.insert(kels.to_vec(), template.clone());
        template
    }
}

fn run_schedule(seed: u64, dir: &Path, templates: &Templates) -> Counters {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = shape(seed, &mut rng);
    // Every kelurahan gets one kiosk, the rest share at random.
    let kels: Vec<usize> =
        (0..shape.kiosks).map(|i| if i < shape.kelurahan { i } else { rng.random_range(0..shape.kelurahan) }).collect();
    trace!("seed {seed}: {} kiosks in kelurahan {kels:?}, {} steps", shape.kiosks, shape.steps);
    let template = templates.get(&kels);
    let mut sim = Sim::from_template(rng, &rt, dir, &template);
    for _ in 0..shape.steps {
        sim.step();
    }
    sim.heal();
    sim.check();
    sim.shutdown();
    sim.c.clone()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")))
}

fn sim_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOKET_SIM_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// A failed schedule: its seed, what failed, its steps, its files.
struct Failure {
    seed: u64,
    message: String,
    steps: Vec<String>,
    kept: PathBuf,
}

/// Runs one schedule in its own directory; on failure keeps the directory.
fn run_one(seed: u64, root: &Path, templates: &Templates) -> Result<Counters, Failure> {
    let dir =
        tempfile::Builder::new().prefix(&format!("loket-sim-{seed}-")).tempdir_in(root).expect("a temporary directory");
    TRACE.with(|t| t.borrow_mut().clear());
    match catch_unwind(AssertUnwindSafe(|| run_schedule(seed, dir.path(), templates))) {
        Ok(c) => Ok(c),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let steps = TRACE.with(|t| t.borrow().clone());
            Err(Failure { seed, message, steps, kept: dir.keep() })
        }
    }
}

#[test]
fn sync_protocol_simulation() {
    let root = sim_root();
    let templates = Templates::new(&root);
    let started = Instant::now();
    if let Some(seed) = env_u64("LOKET_SIM_SEED") {
        VERBOSE.with(|v| *v.borrow_mut() = true);
        match run_one(seed, &root, &templates) {
            Ok(c) => println!("schedule {seed} passed in {:.2} s\n  {c:?}", started.elapsed().as_secs_f64()),
            Err(f) => panic!("schedule {seed} failed: {}\n  its files: {}", f.message, f.kept.display()),
        }
        return;
    }
    let base = env_u64("LOKET_SIM_BASE").unwrap_or(0);
    let n = env_u64("LOKET_SIM_SCHEDULES").unwrap_or(SCHEDULES_DEFAULT);
    // Schedules are independent: run them on every core (each has its own
    // files, runtime and trace).
    let threads = env_u64("LOKET_SIM_THREADS")
        .map(|t| t.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |p| p.get()).min(4));
    let next = AtomicU64::new(base);
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let total = Mutex::new(Counters::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = Counters::default();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= base + n || !failures.lock().expect("lock").is_empty() {
                        break;
                    }
                    match run_one(seed, &root, &templates) {
                        Ok(c) => mine.add(&c),
                        Err(f) => failures.lock().expect("lock").push(f),
                    }
                }
                total.lock().expect("lock").add(&mine);
            });
        }
    });
    let total = total.into_inner().expect("lock");
    let elapsed = started.elapsed();
    println!(
        "simulation: {} schedules (seeds from {base}) on {threads} threads in {:.1} s, {} steps, {} requests",
        total.schedules,
        elapsed.as_secs_f64(),
        total.steps,
        total.docs,
    );
    println!("  {total:?}");
    let mut failures = failures.into_inner().expect("lock");
    failures.sort_by_key(|f| f.seed);
    if let Some(f) = failures.first() {
        println!("steps of schedule {}:", f.seed);
        f.steps.iter().for_each(|line| println!("  {line}"));
        let seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
        panic!(
            "schedule {} failed: {}\n  replay: LOKET_SIM_SEED={} cargo test -p loket-tests --test simulation -- \
             --nocapture\n  its files: {}\n  failed seeds: {seeds:?}",
            f.seed,
            f.message,
            f.seed,
            f.kept.display()
        );
    }
}
