//! DocStore against real SQLite files in temporary directories.

use std::collections::BTreeSet;
use std::path::Path;

use loket_shared::reference::{Roster, StaffMember, StaffRole};
use loket_shared::request::Applicant;
use loket_shared::{DocId, Hlc, Status};
use rusqlite::Connection;

use super::*;
use crate::setup::default_catalog;

const STAFF: &str = "198503122010011002";

fn init(dir: &Path) -> PathBuf {
    let db = dir.join("kiosk.db");
    let kelurahan: KelurahanCode = "12.71.01.1001".parse().unwrap();
    let roster = Roster {
        kelurahan: kelurahan.clone(),
        staff: vec![StaffMember {
            id: STAFF.parse().unwrap(),
            name: "Rina".into(),
            role: StaffRole::Supervisor,
            kind: loket_shared::StaffKind::Pns,
            password_hash: loket_node::password::hash_password("rahasia-123").unwrap(),
            active: true,
        }],
    };
    DocStore::init(
        &db,
        InitParams {
            kiosk: "K07".parse().unwrap(),
            kelurahan,
            name: "Kiosk Uji".into(),
            catalog: default_catalog(),
            roster,
        },
    )
    .unwrap();
    db
}

fn applicant(i: u32) -> Applicant {
    Applicant {
        name: "Warga Uji".parse().unwrap(),
        nik: format!("127101010190{:04}", i + 1).parse().unwrap(),
        phone: None,
    }
}

fn create_input(i: u32) -> CreateInput {
    CreateInput { service: "SKD".parse().unwrap(), applicant: applicant(i) }
}

fn event(to: Status) -> EventInput {
    // A rejection and a request for documents need a reason.
    let note = matches!(to, Status::Rejected | Status::WaitingCitizen).then(|| "berkas kurang".to_owned());
    EventInput { to, note, agency: None, by: STAFF.parse().unwrap() }
}

fn raw(db: &Path) -> Connection {
    Connection::open(db).unwrap()
}

#[tokio::test]
async fn tickets_count_up_per_day_and_concurrent_writes_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = Arc::new(DocStore::open(&db, StoreOptions::default()).unwrap());
    let mut handles = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        handles.push(tokio::spawn(async move { store.create_request(create_input(i), None).await }));
    }
    let mut tickets = BTreeSet::new();
    for h in handles {
        let created = h.await.unwrap().unwrap();
        assert_eq!(created.status, Status::Submitted);
        assert!(tickets.insert(created.ticket.to_string()), "duplicate ticket");
    }
    let day = local_date(now_ms(), StoreOptions::default().utc_offset);
    let prefix = format!("K07-{:02}{:02}-", u8::from(day.month()), day.day());
    let mut seqs: Vec<u32> =
        tickets.iter().map(|t| t.strip_prefix(&prefix).expect("today's prefix").parse().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "sequence without gaps");
    let counts = store.counts().unwrap();
    assert_eq!(counts.documents, 202);
    assert_eq!(counts.pending_changes, 202);
}

#[tokio::test]
async fn a_refused_job_does_not_disturb_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = Arc::new(DocStore::open(&db, StoreOptions::default()).unwrap());
    let created = store.create_request(create_input(0), None).await.unwrap();
    let (a, b, c) = tokio::join!(
        store.append_event(created.id, event(Status::Completed), None), // forbidden from submitted
        store.create_request(create_input(1), None),
        store.append_event(created.id, event(Status::InProgress), None),
    );
    assert!(matches!(a, Err(OpError::Transition(_))));
    b.unwrap();
    assert_eq!(c.unwrap().status, Status::InProgress);
    let (_, derived) = store.request(&created.id).unwrap().unwrap();
    assert_eq!(derived.ordered.len(), 2, "the refused event left no trace");
}

#[tokio::test]
async fn each_write_stores_the_document_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let created = store.create_request(create_input(0), None).await.unwrap();
    store.append_event(created.id, event(Status::InProgress), None).await.unwrap();
    store.append_event(created.id, event(Status::WaitingCitizen), None).await.unwrap();
    let id = created.id.to_string();
    let conn = raw(&db);
    let (chunks, chunk_count, snapshot, heads): (i64, i64, Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM chunks WHERE doc_id = ?1), chunk_count, snapshot, heads FROM docs
             WHERE doc_id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((chunks, chunk_count), (0, 0), "no chunk appended");
    // The snapshot alone is the whole document: its heads are the row's.
    let mut whole = AutoCommit::load(&snapshot).unwrap();
    assert_eq!(heads_column(&mut whole), heads);
    let (view, derived) = store.request(&created.id).unwrap().unwrap();
    assert_eq!(view.events.len(), 3);
    assert_eq!(derived.status, Status::WaitingCitizen);
    // Every write is still a change to push.
    assert_eq!(store.counts().unwrap().pending_changes, 2 + 1 + 2);
}

/// A store written before documents were stored whole holds a snapshot
/// and a chunk per write: compaction folds them, and a write to such a
/// document drops its chunks.
#[tokio::test]
async fn compaction_folds_the_chunks_of_an_older_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let options = StoreOptions { compact_chunks_min: 4, ..StoreOptions::default() };
    let store = DocStore::open(&db, options).unwrap();
    let created = store.create_request(create_input(0), None).await.unwrap();
    for i in 0..9 {
        let to = if i % 2 == 0 { Status::InProgress } else { Status::WaitingCitizen };
        store.append_event(created.id, event(to), None).await.unwrap();
    }
    let id = created.id.to_string();
    as_older_store(&db, &id);
    let chunks = |db: &Path| -> i64 {
        raw(db).query_row("SELECT count(*) FROM chunks WHERE doc_id = ?1", [&id], |r| r.get(0)).unwrap()
    };
    assert_eq!(chunks(&db), 9);
    let (before_view, before) = store.request(&created.id).unwrap().unwrap();
    let heads_before = {
        let conn = raw(&db);
        load_doc(&conn, &id).unwrap().unwrap().1.get_heads()
    };
    assert_eq!(store.compact().await.unwrap(), 1);
    assert_eq!(chunks(&db), 0);
    let (after_view, after) = store.request(&created.id).unwrap().unwrap();
    assert_eq!(before_view, after_view);
    assert_eq!(before, after);
    assert_eq!(after.status, Status::InProgress);
    let heads_after = load_doc(&raw(&db), &id).unwrap().unwrap().1.get_heads();
    assert_eq!(heads_before, heads_after);
    // Compaction is not a write: the change sequence did not move.
    assert_eq!(store.counts().unwrap().pending_changes, 2 + 1 + 9);
    assert_eq!(store.compact().await.unwrap(), 0, "nothing left to fold");
    // Looking for what to fold reads an index, not every document.
    let plan: String = raw(&db)
        .query_row(&format!("EXPLAIN QUERY PLAN {}", super::writer::COMPACT_CANDIDATES), [4, 64], |r| r.get(3))
        .unwrap();
    assert!(plan.contains("docs_with_chunks"), "{plan}");

    // A write to a document that still has chunks stores it whole.
    as_older_store(&db, &id);
    assert_eq!(chunks(&db), 9);
    store.append_event(created.id, event(Status::WaitingCitizen), None).await.unwrap();
    assert_eq!(chunks(&db), 0);
    let (view, derived) = store.request(&created.id).unwrap().unwrap();
    assert_eq!((view.events.len(), derived.status), (11, Status::WaitingCitizen));
}

/// Rewrites a document as the writer before whole documents stored it:
/// the first change as the snapshot, each later change as a chunk.
fn as_older_store(db: &Path, id: &str) {
    let conn = raw(db);
    let (_, mut doc) = load_doc(&conn, id).unwrap().unwrap();
    let changes: Vec<Vec<u8>> = doc.get_changes(&[]).iter().map(|c| c.raw_bytes().to_vec()).collect();
    conn.execute(
        "UPDATE docs SET snapshot = ?2, chunk_count = ?3 WHERE doc_id = ?1",
        rusqlite::params![id, changes[0], changes.len() as i64 - 1],
    )
    .unwrap();
    conn.execute("DELETE FROM chunks WHERE doc_id = ?1", [id]).unwrap();
    for c in &changes[1..] {
        conn.execute("INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)", rusqlite::params![id, c]).unwrap();
    }
}

#[tokio::test]
async fn the_clock_never_goes_back_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let created = store.create_request(create_input(0), None).await.unwrap();
    store.shutdown();
    // Pretend the last run stamped far in the future (a clock that was a
    // day ahead, then corrected): the next stamp must still be above it.
    let future = Hlc { wall_ms: (now_ms() + 86_400_000) as u64, counter: 7 };
    raw(&db).execute("UPDATE meta SET value = ?1 WHERE key = 'hlc'", [future.to_string()]).unwrap();
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    store.append_event(created.id, event(Status::InProgress), None).await.unwrap();
    let (_, derived) = store.request(&created.id).unwrap().unwrap();
    let newest = derived.ordered.last().unwrap();
    assert_eq!(newest.to, Status::InProgress);
    assert!(newest.hlc > future, "{} <= {}", newest.hlc, future);
    assert_eq!(derived.frontier, vec![newest.id.clone()]);
}

#[tokio::test]
async fn ratings_are_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let created = store.create_request(create_input(0), None).await.unwrap();
    let scores = loket_shared::skm::Scores::new([4, 3, 4, 4, 3, 4, 4, 3, 4]).unwrap();
    let token = created.rating_token;
    let other = loket_shared::rating_token::RatingToken::from_random([0; 5]);
    let wrong = store
        .rate(created.id, RatingInput { scores, comment: None, token: other, profile: Profile::default() }, None)
        .await;
    assert!(matches!(wrong, Err(OpError::InvalidRatingToken)), "{wrong:?}");
    // Issue 14: the survey opens once the request is completed or
    // rejected, with the right code; before that it is refused.
    for status in [Status::InProgress, Status::WaitingCitizen, Status::InProgress] {
        let early = store
            .rate(created.id, RatingInput { scores, comment: None, token, profile: Profile::default() }, None)
            .await;
        assert!(matches!(early, Err(OpError::NotFinished)), "{early:?}");
        store.append_event(created.id, event(status), None).await.unwrap();
    }
    store.append_event(created.id, event(Status::Completed), None).await.unwrap();
    // Part of the profile answered (issue 14, item 7): stored as given.
    let profile = Profile::from_pairs([("age", "31-40"), ("education", "d4-s1")]).unwrap();
    store.rate(created.id, RatingInput { scores, comment: Some("cepat".into()), token, profile }, None).await.unwrap();
    let (rated, _) = store.request(&created.id).unwrap().unwrap();
    assert_eq!(rated.ratings[0].profile, profile);
    let again =
        store.rate(created.id, RatingInput { scores, comment: None, token, profile: Profile::default() }, None).await;
    assert!(matches!(again, Err(OpError::AlreadyRated)));
    let again = store
        .rate(created.id, RatingInput { scores, comment: None, token: other, profile: Profile::default() }, None)
        .await;
    assert!(matches!(again, Err(OpError::InvalidRatingToken)), "the code first: {again:?}");
    let missing = store
        .rate(
            DocId::new_v7(1, [1; 10]),
            RatingInput { scores, comment: None, token, profile: Profile::default() },
            None,
        )
        .await;
    assert!(matches!(missing, Err(OpError::NotFound)));
    // A rejected request is rated too; a cancelled one received nothing.
    let rejected = store.create_request(create_input(1), None).await.unwrap();
    store.append_event(rejected.id, event(Status::InProgress), None).await.unwrap();
    store.append_event(rejected.id, event(Status::Rejected), None).await.unwrap();
    let input = RatingInput { scores, comment: None, token: rejected.rating_token, profile: Profile::default() };
    store.rate(rejected.id, input, None).await.unwrap();
    let cancelled = store.create_request(create_input(2), None).await.unwrap();
    store.append_event(cancelled.id, event(Status::Cancelled), None).await.unwrap();
    let input = RatingInput { scores, comment: None, token: cancelled.rating_token, profile: Profile::default() };
    let refused = store.rate(cancelled.id, input, None).await;
    assert!(matches!(refused, Err(OpError::NotFinished)), "{refused:?}");
    // The document keeps the code's digest, not the code.
    let (view, _) = store.request(&created.id).unwrap().unwrap();
    let key = view.rating_key.clone().expect("a rating key");
    assert!(token.matches(&created.id, &key) && !key.contains(&token.to_string().replace('-', "")));
    assert_eq!(store.rating_token_matches(&created.id, Some(&token)).unwrap(), Some(true));
    assert_eq!(store.rating_token_matches(&created.id, Some(&other)).unwrap(), Some(false));
    assert_eq!(store.rating_token_matches(&created.id, None).unwrap(), Some(false));
    assert_eq!(store.rating_token_matches(&DocId::new_v7(1, [1; 10]), Some(&token)).unwrap(), None);
    let (view, _) = store.request(&created.id).unwrap().unwrap();
    assert_eq!(view.ratings.len(), 1);
    assert_eq!(view.ratings[0].comment.as_deref(), Some("cepat"));
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// Marks a request as held by the server exactly as here, so eviction may
/// take it (what a sync would record).
fn pretend_synced(db: &Path, store: &DocStore, doc: &DocId) {
    let (_, _, heads) = store.request_with_heads(doc).unwrap().unwrap();
    let bytes: Vec<u8> = heads.iter().flat_map(|h| hex::decode(h).unwrap()).collect();
    let conn = raw(db);
    conn.execute("INSERT INTO doc_sync (doc_id, server_heads) VALUES (?1, ?2)", params![doc.to_string(), bytes])
        .unwrap();
    conn.execute("UPDATE meta SET value = '1000000' WHERE key = 'acked_seq'", []).unwrap();
}

/// Issue 12, item 8: idempotency rows hold fingerprints of what a citizen
/// typed (name, NIK, phone) and the first answer. They go with the
/// request's personal data when it is evicted, and after a day anyway.
#[tokio::test]
async fn form_fingerprints_go_with_eviction_and_after_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let idem = |key: &str| Some(Idem { key: key.into(), fingerprint: "f".repeat(64) });
    let done = store.create_request(create_input(0), idem("create-done-0001")).await.unwrap();
    store.append_event(done.id, event(Status::InProgress), idem("event-done-0001")).await.unwrap();
    store.append_event(done.id, event(Status::Completed), idem("event-done-0002")).await.unwrap();
    let open = store.create_request(create_input(1), idem("create-open-0001")).await.unwrap();
    let rows = |db: &Path, doc: &DocId| -> i64 {
        let id = doc.to_string();
        raw(db)
            .query_row(
                "SELECT count(*) FROM idempotency WHERE instr(key, ?1) > 0 OR instr(response, ?1) > 0",
                [&id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!((rows(&db, &done.id), rows(&db, &open.id)), (3, 1));

    pretend_synced(&db, &store, &done.id);
    assert_eq!(store.evict(now_ms() + 1).await.unwrap(), 1);
    assert_eq!(rows(&db, &done.id), 0, "an evicted request's fingerprints are gone");
    assert_eq!(rows(&db, &open.id), 1, "an open request's stay (a retry still answers)");

    // A day later the rest go too.
    let day_ago = now_ms() - 24 * 3600 * 1000 - 1;
    raw(&db).execute("UPDATE idempotency SET at_ms = ?1", [day_ago]).unwrap();
    store.evict(0).await.unwrap();
    assert_eq!(rows(&db, &open.id), 0, "fingerprints older than a day are pruned");
}

#[test]
fn fingerprints_are_keyed_per_kiosk_and_survive_a_restart() {
    use sha2::Digest;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (db_a, db_b) = (init(a.path()), init(b.path()));
    let body = br#"{"service":"SKD","name":"Siti Aminah","nik":"1271014808910137","phone":null}"#;
    let store = DocStore::open(&db_a, StoreOptions::default()).unwrap();
    let first = store.fingerprint(body);
    assert_ne!(first, hex::encode(sha2::Sha256::digest(body)), "not a bare hash");
    assert_eq!(first.len(), 64);
    store.shutdown();
    assert_eq!(
        DocStore::open(&db_a, StoreOptions::default()).unwrap().fingerprint(body),
        first,
        "kept across a restart"
    );
    assert_ne!(
        DocStore::open(&db_b, StoreOptions::default()).unwrap().fingerprint(body),
        first,
        "each kiosk has its own key"
    );
}

#[test]
fn unkeyed_fingerprints_from_before_are_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    // The table as it was: no doc_id, bare SHA-256 fingerprints.
    raw(&db)
        .execute_batch(
            "DROP TABLE idempotency;
             CREATE TABLE idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
                                       response TEXT NOT NULL, at_ms INTEGER NOT NULL) STRICT;
             INSERT INTO idempotency VALUES ('create:old-key-0001', 'abc', 200, '{}', 1);
             UPDATE meta SET value = '1' WHERE key = 'schema_version';",
        )
        .unwrap();
    DocStore::open(&db, StoreOptions::default()).unwrap().shutdown();
    let left: i64 = raw(&db).query_row("SELECT count(*) FROM idempotency", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0);
}

// ------------------------------------------------------------------ complaints (issue 16)

fn complaint_input(about: complaint::About, text: &str) -> ComplaintInput {
    ComplaintInput { about, complainant: None, text: text.into() }
}

fn idem_for(store: &DocStore, key: &str, body: &str) -> Idem {
    Idem { key: key.into(), fingerprint: store.fingerprint(body.as_bytes()) }
}

/// Filed durably (read back after the store is reopened, as after a power
/// cut), under a ticket no request can have (numbers shared with
/// requests), answered once per idempotency key.
#[tokio::test]
async fn a_complaint_is_filed_durably_once_per_key_under_its_own_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let request = store.create_request(create_input(0), None).await.unwrap();
    let about = complaint::About::Service("SKD".parse().unwrap());
    let idem = idem_for(&store, "kunci-pengaduan-1", "body-1");
    let filed = store.file_complaint(complaint_input(about.clone(), "Antre lama"), Some(idem.clone())).await.unwrap();
    assert_eq!(filed.state, complaint::State::Received);
    let day = local_date(now_ms(), StoreOptions::default().utc_offset);
    let number = format!("K07-{:02}{:02}-002", u8::from(day.month()), day.day());
    assert_eq!(filed.ticket.as_str(), format!("ADU-{number}"), "the day's next number, after the request's 001");
    assert_eq!(filed.ticket.number(), number);
    assert!(request.ticket.as_str().ends_with("-001"));
    // A retry with the key and the same body: the first answer, nothing new.
    let again = store.file_complaint(complaint_input(about.clone(), "Antre lama"), Some(idem)).await.unwrap();
    assert_eq!(again, filed);
    let reused = store
        .file_complaint(complaint_input(about, "Lain"), Some(idem_for(&store, "kunci-pengaduan-1", "body-2")))
        .await;
    assert!(matches!(reused, Err(OpError::IdempotencyKeyReused)), "{reused:?}");
    let next = store.create_request(create_input(1), None).await.unwrap();
    assert!(next.ticket.as_str().ends_with("-003"), "requests go on after the complaint's number");
    assert_eq!(store.counts().unwrap().documents, 2 + 3, "catalog, roster, two requests, one complaint");
    store.shutdown();

    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let (view, derived) = store.complaint(&filed.ticket).unwrap().expect("durable");
    assert_eq!((view.id, view.text.as_str(), view.complainant.is_none()), (filed.id, "Antre lama", true));
    assert_eq!(derived.state, complaint::State::Received);
    assert_eq!(derived.ordered.len(), 1, "the kiosk writes the file step only");
    assert_eq!(derived.ordered[0].kind, complaint::StepKind::File);
    // Queued for sync like a request: pushed as a complaint document.
    let plan = store.plan_push(100).unwrap();
    let pushed: Vec<_> = plan.request.push.iter().map(|p| (DocId::from_bytes(p.doc), p.doc_type)).collect();
    assert!(pushed.contains(&(filed.id, loket_shared::sync::DocType::Complaint)), "{pushed:?}");
    let rows = store.complaints(10).unwrap();
    assert_eq!((rows.len(), rows[0].about.as_str(), rows[0].anonymous), (1, "service", true));
}

/// What the writer refuses, with the code the APIs answer, storing nothing.
#[tokio::test]
async fn a_complaint_about_what_this_office_does_not_have_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let before = store.counts().unwrap();
    let cases: Vec<(complaint::About, String, &str)> = vec![
        (complaint::About::Service("XYZ".parse().unwrap()), "teks".into(), "unknown_service"),
        (complaint::About::Staff("199005232022212019".parse().unwrap()), "teks".into(), "unknown_staff"),
        (complaint::About::General, String::new(), "invalid_text"),
        (complaint::About::General, "x".repeat(complaint::TEXT_MAX_CHARS + 1), "invalid_text"),
        (complaint::About::General, "bel\u{7}".into(), "invalid_text"),
    ];
    for (about, text, code) in cases {
        let err = store.file_complaint(complaint_input(about.clone(), &text), None).await.unwrap_err();
        let api = crate::web::ApiError::from(err);
        assert_eq!(api.code, code, "{about:?}");
    }
    let on_roster = complaint::About::Staff(STAFF.parse().unwrap());
    store
        .file_complaint(complaint_input(on_roster, "x".repeat(complaint::TEXT_MAX_CHARS).as_str()), None)
        .await
        .unwrap();
    assert_eq!(store.counts().unwrap().documents, before.documents + 1, "only the good one");
}

/// A complaint document with `steps` the server wrote (sealed), as a
/// pull brings them: `register` with a class, then `answer`.
fn central_steps(doc: &mut automerge::AutoCommit, derived: &complaint::Derived, at_ms: i64) -> (String, String) {
    use complaint::{Class, Step, StepKind, Unit};
    let central = |id: &str, kind, minutes: i64, parents: Vec<String>| Step {
        id: id.into(),
        hlc: Hlc { wall_ms: (at_ms + minutes * 60_000) as u64, counter: 0 },
        node: "c0c0c0c0".into(),
        at_ms: at_ms + minutes * 60_000,
        by: "petugas_pengaduan".into(),
        kind,
        class: None,
        unit: None,
        days: None,
        lapor: None,
        text: None,
        parents,
        seal: Some("ab".repeat(32)),
    };
    let register = Step {
        class: Some(Class::Normatif),
        unit: Some(Unit::Kelurahan("12.71.01.1001".parse().unwrap())),
        ..central("s-register", StepKind::Register, 10, derived.frontier.clone())
    };
    let answer = Step {
        text: Some("Maaf atas antrean. <b>Loket 2</b> kini buka pukul 08.00.".into()),
        ..central("s-answer", StepKind::Answer, 20, vec!["s-register".into()])
    };
    doc.set_actor(automerge::ActorId::from([0xc0; 16]));
    complaint::append_step(doc, &register).unwrap();
    complaint::append_step(doc, &answer).unwrap();
    doc.commit();
    (register.id, answer.id)
}

fn pull_response(pull: Vec<loket_shared::sync::PullDoc>) -> loket_shared::sync::SyncResponse {
    loket_shared::sync::SyncResponse {
        version: loket_shared::sync::PROTOCOL_VERSION,
        acks: Vec::new(),
        pull,
        pull_next: 1,
        more: false,
        rewind_acked: None,
        summaries: Vec::new(),
    }
}

/// Central steps come back in a pull and are projected: the state,
/// class and answer a citizen reads; a complaint filed at the office's
/// other kiosk arrives whole; one of another kelurahan is refused.
#[tokio::test]
async fn pulled_central_steps_are_applied_and_projected() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let filed =
        store.file_complaint(complaint_input(complaint::About::Office, "Toilet kantor terkunci"), None).await.unwrap();
    // The server's copy: ours plus its steps.
    let (mut server_doc, heads_before) = {
        let conn = raw(&db);
        let mut doc = load_doc(&conn, &filed.id.to_string()).unwrap().unwrap().1;
        let heads = doc.get_heads();
        (doc, heads)
    };
    let (_, derived) = store.complaint(&filed.ticket).unwrap().unwrap();
    let (_, answer_id) = central_steps(&mut server_doc, &derived, now_ms());
    let pulled = loket_shared::sync::PullDoc {
        doc: filed.id.to_bytes(),
        doc_type: loket_shared::sync::DocType::Complaint,
        changes: server_doc.save_after(&heads_before),
        heads: server_doc.get_heads().iter().map(|h| h.0).collect(),
    };

    // Another kiosk of the office filed one too; and one of another kelurahan.
    let other_kiosk = |kelurahan: &str, seq: u32| {
        let id = DocId::new_v7(now_ms() as u64, [seq as u8; 10]);
        let file = complaint::Step {
            id: format!("s-file-{seq}"),
            hlc: Hlc { wall_ms: now_ms() as u64, counter: 0 },
            node: "0b0b".into(),
            at_ms: now_ms(),
            by: "citizen".into(),
            kind: complaint::StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: vec![],
            seal: None,
        };
        let new = complaint::NewComplaint {
            id,
            ticket: ComplaintTicket::new(&"K08".parse().unwrap(), 12, 3, seq),
            kelurahan: kelurahan.parse().unwrap(),
            kiosk: "K08".parse().unwrap(),
            created_at_ms: now_ms(),
            hlc: file.hlc,
            about: complaint::About::General,
            complainant: Some(complaint::Complainant {
                name: "Siti Aminah".parse().unwrap(),
                nik: Some("1271014107850003".parse().unwrap()),
                phone: None,
            }),
            text: "Lampu jalan mati".into(),
            file_step: file,
        };
        let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from([seq as u8; 16]));
        complaint::create(&mut doc, &new).unwrap();
        let pulled = loket_shared::sync::PullDoc {
            doc: id.to_bytes(),
            doc_type: loket_shared::sync::DocType::Complaint,
            changes: doc.save(),
            heads: doc.get_heads().iter().map(|h| h.0).collect(),
        };
        (new.ticket, pulled)
    };
    let (ours_elsewhere, from_k08) = other_kiosk("12.71.01.1001", 5);
    let (foreign, from_elsewhere) = other_kiosk("12.71.02.1002", 6);

    let pending = store.counts().unwrap().pending_changes;
    let plan = store.plan_push(0).unwrap();
    let summary = store.apply_sync(plan, pull_response(vec![pulled, from_k08, from_elsewhere])).await.unwrap();
    assert_eq!(store.counts().unwrap().pending_changes, pending, "pulled changes are not local writes");
    assert_eq!((summary.pulled, summary.refused), (2, 1), "{summary:?}");

    let (view, derived) = store.complaint(&filed.ticket).unwrap().unwrap();
    assert_eq!(derived.state, complaint::State::Answered);
    assert_eq!(derived.class, Some(complaint::Class::Normatif));
    assert_eq!(derived.answers.iter().map(|a| a.step_id.as_str()).collect::<Vec<_>>(), [answer_id.as_str()]);
    assert_eq!(view.steps.len(), 3);
    let row = store.complaints(10).unwrap().into_iter().find(|r| r.ticket == filed.ticket.as_str()).unwrap();
    assert_eq!((row.state.as_str(), row.class.as_deref(), row.flagged), ("answered", Some("normatif"), false));

    let (_, other) = store.complaint(&ours_elsewhere).unwrap().expect("the office's other kiosk's complaint");
    assert_eq!(other.state, complaint::State::Received);
    assert!(store.complaint(&foreign).unwrap().is_none(), "another kelurahan's complaint is refused");
}

/// The partner kiosk of a pull test: a store of its own whose requests
/// are pulled by another.
fn partner_store() -> (tempfile::TempDir, std::path::PathBuf, DocStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    (dir, db, store)
}

/// A document's stored snapshot, as the store keeps it.
fn snapshot_of(db: &std::path::Path, id: &DocId) -> Vec<u8> {
    raw(db).query_row("SELECT snapshot FROM docs WHERE doc_id = ?1", [id.to_string()], |r| r.get(0)).unwrap()
}

/// A partner kiosk's request pulled for the first time: sent as one
/// whole document, it is stored byte for byte as it came (no second
/// save); sent as a snapshot and a change, it is stored whole. Either way
/// it is projected and reads back with the server's heads.
#[tokio::test]
async fn a_pulled_new_request_is_stored_whole_and_as_sent_when_it_came_whole() {
    let (_partner_dir, partner_db, partner) = partner_store();
    let stored_bytes = |id: &DocId| snapshot_of(&partner_db, id);
    let whole = partner.create_request(create_input(0), None).await.unwrap();
    let split = partner.create_request(create_input(1), None).await.unwrap();
    let first = stored_bytes(&split.id);
    let first_heads = AutoCommit::load(&first).unwrap().get_heads();
    partner.append_event(split.id, event(Status::InProgress), None).await.unwrap();
    let mut later = AutoCommit::load(&stored_bytes(&split.id)).unwrap();
    // What an older server store holds: the first snapshot, then a chunk.
    let mut chunked = first.clone();
    chunked.extend(later.save_after(&first_heads));
    let pull = |id: &DocId, changes: Vec<u8>, doc: &mut AutoCommit| loket_shared::sync::PullDoc {
        doc: id.to_bytes(),
        doc_type: loket_shared::sync::DocType::Request,
        changes,
        heads: doc.get_heads().iter().map(|h| h.0).collect(),
    };
    // Sent with DEFLATEd columns, so that keeping and saving again differ.
    let mut whole_doc = AutoCommit::load(&stored_bytes(&whole.id)).unwrap();
    let whole_bytes = whole_doc.save();
    assert_ne!(whole_bytes, whole_doc.save_nocompress());

    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let plan = store.plan_push(0).unwrap();
    let response = pull_response(vec![
        pull(&whole.id, whole_bytes.clone(), &mut whole_doc),
        pull(&split.id, chunked.clone(), &mut later),
    ]);
    let summary = store.apply_sync(plan, response).await.unwrap();
    assert_eq!((summary.pulled, summary.refused), (2, 0), "{summary:?}");

    let conn = raw(&db);
    let row = |id: &DocId| -> (Vec<u8>, i64) {
        conn.query_row("SELECT snapshot, chunk_count FROM docs WHERE doc_id = ?1", [id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(row(&whole.id), (whole_bytes, 0), "a whole document is kept as it came");
    let (kept, chunks) = row(&split.id);
    assert_eq!(chunks, 0);
    assert_ne!(kept, chunked, "a snapshot and a chunk are saved whole");
    let summary =
        loket_shared::chunks::inspect(&kept, &mut loket_shared::chunks::Budget::new(loket_shared::chunks::DOC_LIMITS))
            .unwrap();
    assert_eq!((summary.chunks, summary.document_chunks), (1, 1), "one document chunk");
    assert_eq!(AutoCommit::load(&kept).unwrap().get_heads(), later.get_heads());
    let (_, derived) = store.request(&split.id).unwrap().expect("projected and readable");
    assert_eq!(derived.status, Status::InProgress);
    assert!(store.request(&whole.id).unwrap().is_some());
}

/// Schema 1's `docs` took no complaint: opening such a database widens
/// it in place, keeping every row (and the rowids the newest catalog is
/// found by), and complaints can be filed after.
#[tokio::test]
async fn a_schema_1_database_is_widened_for_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let created = store.create_request(create_input(0), None).await.unwrap();
    store.shutdown();
    let rows = |db: &Path| -> Vec<(i64, String, String)> {
        let conn = raw(db);
        let mut stmt = conn.prepare("SELECT rowid, doc_id, doc_type FROM docs ORDER BY rowid").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
    };
    {
        // Back to schema 1's table, as a kiosk of the last release has it.
        let conn = raw(&db);
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             BEGIN;
             CREATE TABLE docs_old (
                 doc_id TEXT PRIMARY KEY,
                 doc_type TEXT NOT NULL CHECK (doc_type IN ('request', 'catalog', 'roster')),
                 snapshot BLOB, chunk_count INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL) STRICT;
             INSERT INTO docs_old (rowid, doc_id, doc_type, snapshot, chunk_count, last_seq)
                 SELECT rowid + 10, doc_id, doc_type, snapshot, chunk_count, last_seq FROM docs;
             DROP TABLE docs;
             ALTER TABLE docs_old RENAME TO docs;
             DROP TABLE complaints;
             UPDATE meta SET value = '1' WHERE key = 'schema_version';
             COMMIT;",
        )
        .unwrap();
    }
    let before = rows(&db);
    assert_eq!(before.len(), 3);
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    assert_eq!(rows(&db), before, "every row, with its rowid");
    let version: String =
        raw(&db).query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(version, super::schema::SCHEMA_VERSION.to_string(), "every later step ran too");
    assert!(store.request(&created.id).unwrap().is_some());
    assert!(store.catalog().unwrap().service("SKD").is_some(), "the catalog is still found");
    let filed = store.file_complaint(complaint_input(complaint::About::General, "Ada"), None).await.unwrap();
    assert!(store.complaint(&filed.ticket).unwrap().is_some());
    let fk: i64 = raw(&db).query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 0);
}

/// A kiosk's data written by a newer release is refused, not opened by an
/// older binary that would not know what its tables mean (a technician
/// who put an older image back on a kiosk); nothing in it changes.
#[test]
fn a_database_from_a_newer_release_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let newer = super::schema::SCHEMA_VERSION + 1;
    raw(&db).execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [newer.to_string()]).unwrap();
    let before = std::fs::read(&db).unwrap();
    let err = DocStore::open(&db, StoreOptions::default()).err().expect("refused");
    assert!(matches!(err, StoreError::NewerSchema { found, .. } if found == newer), "{err}");
    assert!(err.to_string().contains("versi terbaru") && err.to_string().contains("newer release"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Issue 17: the first push of a document sends its stored bytes with the
/// heads kept in `docs.heads`, without loading it; the heads are the
/// document's own after every write, and a row from before the column
/// (heads NULL) is pushed as before, from the loaded document.
#[tokio::test]
async fn a_first_push_sends_the_stored_bytes_with_the_heads_kept_at_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let a = store.create_request(create_input(1), None).await.unwrap();
    let b = store.create_request(create_input(2), None).await.unwrap();
    store.append_event(a.id, event(Status::InProgress), None).await.unwrap();
    let conn = raw(&db);
    let doc_heads = |id: &DocId| -> (Vec<u8>, Vec<u8>) {
        let (_, mut doc, bytes) = super::load_doc_raw(&conn, &id.to_string()).unwrap().unwrap();
        let kept: Vec<u8> =
            conn.query_row("SELECT heads FROM docs WHERE doc_id = ?1", [id.to_string()], |r| r.get(0)).unwrap();
        assert_eq!(kept, super::heads_column(&mut doc), "docs.heads is the document's heads after its last write");
        (kept, bytes)
    };
    let (a_heads, a_bytes) = doc_heads(&a.id);
    let (b_heads, b_bytes) = doc_heads(&b.id);
    // A row from before the column: heads unknown.
    conn.execute("UPDATE docs SET heads = NULL WHERE doc_id = ?1", [b.id.to_string()]).unwrap();
    let plan = store.plan_push(100).unwrap();
    for (id, heads, bytes) in [(a.id, a_heads, a_bytes), (b.id, b_heads, b_bytes)] {
        let p = plan.request.push.iter().find(|p| DocId::from_bytes(p.doc) == id).expect("pushed");
        assert_eq!(p.heads.concat(), heads, "{id}");
        assert_eq!(p.changes, bytes, "{id}: the stored bytes as they are");
        assert!(p.base.is_empty() && p.fallback.is_none());
        automerge::AutoCommit::load(&p.changes).expect("they load");
    }
}

/// Issue 17: a push plans what was written since the acknowledgement, in
/// write order and up to the limit, plus every document in fallback
/// however long ago it was written; never a quarantined one. (Two
/// queries on indexes now, instead of one walking every document.)
#[tokio::test]
async fn a_push_plans_what_is_new_and_what_is_in_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let store = DocStore::open(&db, StoreOptions::default()).unwrap();
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(store.create_request(create_input(i), None).await.unwrap().id.to_string());
    }
    let conn = raw(&db);
    let seq = |id: &str| -> i64 {
        conn.query_row("SELECT last_seq FROM docs WHERE doc_id = ?1", [id], |r| r.get(0)).unwrap()
    };
    // The server acknowledged the first three; the first is in fallback,
    // the second quarantined.
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('acked_seq', ?1)", [seq(&ids[2]).to_string()])
        .unwrap();
    conn.execute("INSERT INTO doc_sync (doc_id, server_heads, fallback) VALUES (?1, x'', 1)", [ids[0].as_str()])
        .unwrap();
    conn.execute("INSERT INTO doc_sync (doc_id, server_heads, fallback) VALUES (?1, x'', 1)", [ids[1].as_str()])
        .unwrap();
    conn.execute("INSERT INTO quarantine (doc_id, code, message, at_ms) VALUES (?1, 'x', 'x', 0)", [ids[1].as_str()])
        .unwrap();
    let planned =
        |limit| -> Vec<String> { store.plan_push(limit).unwrap().sent.into_iter().map(|s| s.doc_id).collect() };
    assert_eq!(planned(10), [ids[0].as_str(), ids[3].as_str(), ids[4].as_str()]);
    assert_eq!(planned(2), [ids[0].as_str(), ids[3].as_str()], "in write order, up to the limit");
    conn.execute("UPDATE doc_sync SET fallback = 0 WHERE doc_id = ?1", [ids[0].as_str()]).unwrap();
    assert_eq!(planned(10), [ids[3].as_str(), ids[4].as_str()]);
    assert_eq!(planned(1), [ids[3].as_str()]);
}

/// Issue 17: a partner's request pulled whole with the summary the
/// server read of it is stored as it came, unread, and its row in the
/// lists is the row reading it gives. A summary is passed over, and the
/// request read as before, when it does not check or the bytes are not
/// one document chunk at the pulled heads.
#[tokio::test]
async fn a_pulled_request_with_the_servers_summary_is_stored_unread_as_the_row_reading_gives() {
    use loket_shared::summary::Summary;
    let (_partner_dir, partner_db, partner) = partner_store();
    let stored_bytes = |id: &DocId| snapshot_of(&partner_db, id);
    let taken = partner.create_request(create_input(0), None).await.unwrap();
    partner.append_event(taken.id, event(Status::InProgress), None).await.unwrap();
    let odd_node = partner.create_request(create_input(1), None).await.unwrap();
    let chunked = partner.create_request(create_input(2), None).await.unwrap();
    let summary_of = |id: &DocId| {
        let (view, derived) = partner.request(id).unwrap().unwrap();
        Summary::of(&view, &derived)
    };
    let pull = |id: &DocId, changes: Vec<u8>| {
        let mut doc = AutoCommit::load(&changes).unwrap();
        loket_shared::sync::PullDoc {
            doc: id.to_bytes(),
            doc_type: loket_shared::sync::DocType::Request,
            changes,
            heads: doc.get_heads().iter().map(|h| h.0).collect(),
        }
    };
    // The third as an older server store sends it: a document, then a change.
    let mut split_bytes = stored_bytes(&chunked.id);
    let first_heads = AutoCommit::load(&split_bytes).unwrap().get_heads();
    partner.append_event(chunked.id, event(Status::InProgress), None).await.unwrap();
    let mut later = AutoCommit::load(&stored_bytes(&chunked.id)).unwrap();
    split_bytes.extend(later.save_after(&first_heads));
    let pulls = vec![
        pull(&taken.id, stored_bytes(&taken.id)),
        pull(&odd_node.id, stored_bytes(&odd_node.id)),
        loket_shared::sync::PullDoc {
            heads: later.get_heads().iter().map(|h| h.0).collect(),
            ..pull(&chunked.id, split_bytes)
        },
    ];
    let mut odd = summary_of(&odd_node.id);
    odd.create_node = Some("bukan heksadesimal".into());
    let honest = vec![summary_of(&taken.id), odd.clone(), summary_of(&chunked.id)];
    // A marked name shows which rows came from a summary.
    let marked: Vec<Summary> = honest
        .iter()
        .cloned()
        .map(|mut s| {
            s.applicant_name = "Dari Server".parse().unwrap();
            s
        })
        .collect();

    let apply = |summaries: Vec<Summary>| {
        let pulls = pulls.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let db = init(dir.path());
            let store = DocStore::open(&db, StoreOptions::default()).unwrap();
            let plan = store.plan_push(0).unwrap();
            let response = loket_shared::sync::SyncResponse { summaries, ..pull_response(pulls) };
            let done = store.apply_sync(plan, response).await.unwrap();
            assert_eq!((done.pulled, done.refused), (3, 0), "{done:?}");
            (dir, db, store)
        }
    };
    let rows = |db: &std::path::Path| -> Vec<Vec<rusqlite::types::Value>> {
        let conn = raw(db);
        let mut out = Vec::new();
        for sql in [
            "SELECT doc_id, ticket, ticket_day, service, status, conflict, agency, applicant_name, nik_masked, rated,
                    created_at_ms, updated_at_ms FROM requests ORDER BY doc_id",
            "SELECT node, kiosk, '', '', '', '', '', '', '', '', '', '' FROM kiosk_nodes ORDER BY node",
            "SELECT doc_id, doc_type, snapshot, chunk_count, heads, '', '', '', '', '', '', '' FROM docs
                WHERE doc_type = 'request' ORDER BY doc_id",
            "SELECT doc_id, server_heads, fallback, '', '', '', '', '', '', '', '', '' FROM doc_sync ORDER BY doc_id",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let found = stmt.query_map([], |r| (0..12).map(|i| r.get(i)).collect::<Result<Vec<_>, _>>()).unwrap();
            out.extend(found.map(Result::unwrap));
        }
        out
    };
    let (_read_dir, read_db, _read) = apply(Vec::new()).await;
    let (_unread_dir, unread_db, unread) = apply(honest).await;
    assert_eq!(rows(&unread_db), rows(&read_db), "the same rows, documents and sync marks, read or not");
    let (view, derived) = unread.request(&taken.id).unwrap().expect("stored unread, it reads later");
    assert_eq!(
        (view.applicant.name.as_str(), derived.status),
        (create_input(0).applicant.name.as_str(), Status::InProgress)
    );

    let (_marked_dir, marked_db, _marked) = apply(marked).await;
    let name = |id: &DocId| -> String {
        raw(&marked_db)
            .query_row("SELECT applicant_name FROM requests WHERE doc_id = ?1", [id.to_string()], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(name(&taken.id), "Dari Server", "whole, at the pulled heads: projected from the summary");
    assert_eq!(
        name(&odd_node.id),
        create_input(1).applicant.name.as_str(),
        "a summary that does not check is passed over"
    );
    assert_eq!(name(&chunked.id), create_input(2).applicant.name.as_str(), "not one document chunk: read");
}
