//! The store's contract, one suite run against both engines (each test
//! body once on SQLite and once on a PostgreSQL database of its own):
//! transactions commit or roll back whole, constraints hold, sessions and
//! kiosk codes behave, a commit on a stale base writes nothing, the pull
//! cursor never skips a write that commits late, and the rollups kept by
//! difference equal the rollups computed from scratch. Then what only
//! SQLite has: the private file, reopening.

use super::*;
use crate::store::accounts::UserRecord;

fn migrated(f: super::seam_tests::Fixture) -> super::seam_tests::Fixture {
    migrate::run(&f.db).unwrap();
    f
}

/// Runs each named test body on both engines, migrated.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(&super::migrated(super::super::seam_tests::sqlite()).db) })+
        }
        mod on_postgres {
            $(#[test] fn $name() { super::$name(&super::migrated(super::super::seam_tests::postgres()).db) })+
        }
    };
}

conformance!(
    write_commits_on_ok_and_rolls_back_on_err,
    a_caller_error_type_passes_through_write,
    a_panic_in_a_write_rolls_back_and_the_db_stays_usable,
    reads_cannot_write,
    tables_are_strict_and_roles_checked,
    sessions_expire_and_are_bounded_per_user,
    kiosk_codes_count_up_and_are_never_reused,
    a_commit_on_a_stale_base_writes_nothing,
    the_cursor_never_passes_a_write_that_commits_later,
    rollups_kept_by_difference_equal_a_rebuild,
    complaints_are_projected_bounded_by_receipt_and_refreshed,
    complaint_figure_rows_take_the_period_the_open_and_a_request_s_service,
    compaction_folds_chunks_into_the_same_document_and_yields_to_a_commit,
    a_document_keeps_its_first_and_last_receipt,
    documents_are_stored_packed_and_compaction_packs_those_from_before,
    events_are_numbered_in_causal_order_when_one_arrives_between,
    a_pull_merges_the_kelurahan_s_documents_and_the_catalog_in_number_order,
);

fn temp_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("server.db")).unwrap();
    (dir, db)
}

fn write_commits_on_ok_and_rolls_back_on_err(db: &Db) {
    db.write(|tx| meta_set(tx, "a", "1")).unwrap();
    let err = db.write(|tx| {
        meta_set(tx, "b", "2")?;
        Err::<(), _>(StoreError::Invalid("refused".into()))
    });
    assert!(matches!(err, Err(StoreError::Invalid(_))));
    db.read(|c| {
        assert_eq!(meta_get(c, "a")?.as_deref(), Some("1"));
        assert_eq!(meta_get(c, "b")?, None, "the refused write left nothing");
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn a_caller_error_type_passes_through_write(db: &Db) {
    #[derive(Debug)]
    enum Mine {
        Refused,
        Store(#[allow(dead_code)] StoreError),
    }
    impl From<StoreError> for Mine {
        fn from(e: StoreError) -> Mine {
            Mine::Store(e)
        }
    }
    let r: Result<(), Mine> = db.write(|tx| {
        meta_set(tx, "x", "1")?;
        Err(Mine::Refused)
    });
    assert!(matches!(r, Err(Mine::Refused)));
    assert_eq!(db.read(|c| meta_get(c, "x")).unwrap(), None);
}

fn a_panic_in_a_write_rolls_back_and_the_db_stays_usable(db: &Db) {
    let db2 = db.clone();
    let joined = std::thread::spawn(move || {
        let _ = db2.write(|tx| -> Result<(), StoreError> {
            meta_set(tx, "p", "1")?;
            panic!("bug in a writer");
        });
    })
    .join();
    assert!(joined.is_err());
    db.write(|tx| meta_set(tx, "q", "1")).unwrap();
    assert_eq!(db.read(|c| meta_get(c, "p")).unwrap(), None);
}

fn reads_cannot_write(db: &Db) {
    let r = db.read(|c| meta_set(c, "a", "1"));
    assert!(r.is_err(), "a read connection wrote");
}

#[test]
fn reopening_migrates_again_harmlessly_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let db = Db::open(&path).unwrap();
    db.write(|tx| meta_set(tx, "keep", "me")).unwrap();
    drop(db);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.read(|c| meta_get(c, "keep")).unwrap().as_deref(), Some("me"));
    db.write(|tx| meta_set(tx, "schema_version", "999")).unwrap();
    drop(db);
    let err = Db::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _db) = temp_db();
    let mode = std::fs::metadata(dir.path().join("server.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

fn tables_are_strict_and_roles_checked(db: &Db) {
    let r = db.write(|tx| {
        tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES ('x', 'h', 'root', 0)",
            crate::args![],
        )
    });
    assert!(r.is_err(), "an unknown role was stored");
    let r = db.write(|tx| {
        tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES ('x', 'h', 'admin', 'soon')",
            crate::args![],
        )
    });
    assert!(r.is_err(), "STRICT let text into an INTEGER column");
}

fn sessions_expire_and_are_bounded_per_user(db: &Db) {
    let user = UserRecord {
        username: "rina".parse().unwrap(),
        password_hash: "h".into(),
        role: crate::auth::Role::Admin,
        agency: None,
        kelurahan: None,
        region: Vec::new(),
    };
    db.write(|tx| {
        assert!(accounts::insert_user(tx, &user, 0)?);
        assert!(!accounts::insert_user(tx, &user, 0)?, "a second insert changes nothing");
        for i in 0..(accounts::SESSIONS_PER_USER_MAX + 5) {
            accounts::create_session(tx, &format!("t{i}"), &user.username, 1_000 + i, 0)?;
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db.read(|c| {
        let n: i64 = sql::scalar(c, "SELECT count(*) FROM user_sessions", crate::args![])?.unwrap_or(0);
        assert_eq!(n, accounts::SESSIONS_PER_USER_MAX);
        assert!(accounts::session_user(c, "t0", 0)?.is_none(), "the oldest session was dropped");
        let last = format!("t{}", accounts::SESSIONS_PER_USER_MAX + 4);
        assert!(accounts::session_user(c, &last, 0)?.is_some());
        assert!(accounts::session_user(c, &last, 1_000_000)?.is_none(), "expired");
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn kiosk_codes_count_up_and_are_never_reused(db: &Db) {
    let codes: Vec<String> = db
        .write(|tx| {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(kiosks::next_code(tx)?.to_string());
            }
            Ok::<_, StoreError>(v)
        })
        .unwrap();
    assert_eq!(codes, ["K001", "K002", "K003"]);
    // A rolled-back allocation is not lost to anyone: the next is K004.
    let _ = db.write(|tx| {
        kiosks::next_code(tx)?;
        Err::<(), _>(StoreError::Invalid("no".into()))
    });
    assert_eq!(db.write(|tx| kiosks::next_code(tx)).unwrap().as_str(), "K004");
}

/// A commit whose base no longer holds writes nothing and names the stale
/// documents; with the right base it goes through.
fn a_commit_on_a_stale_base_writes_nothing(db: &Db) {
    use automerge::transaction::Transactable;
    use engine::{Commit, CommitOutcome, DocBytes, DocEngine, DocWrite, Packed, heads_blob};
    use loket_shared::sync::DocType;

    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "x", 1).unwrap();
    let heads1 = heads_blob(&docs::to_hashes(&doc.get_heads()));
    let write = |base: Option<Vec<u8>>, bytes: DocBytes, heads: Vec<u8>| DocWrite {
        doc_id: "d1".into(),
        doc_type: DocType::Catalog,
        kelurahan: None,
        base,
        bytes,
        heads,
        receipts: vec![],
        projection: None,
    };
    let create = Commit {
        now_ms: 1,
        kiosk: None,
        docs: vec![write(None, DocBytes::Snapshot(Packed::new(&doc.save())), heads1.clone())],
    };
    assert_eq!(db.commit(&create).unwrap(), CommitOutcome::Committed);
    assert_eq!(db.commit(&create).unwrap(), CommitOutcome::Stale(vec!["d1".into()]), "it exists now");

    doc.put(automerge::ROOT, "x", 2).unwrap();
    let heads2 = heads_blob(&docs::to_hashes(&doc.get_heads()));
    let chunk = DocBytes::Whole(Packed::new(&doc.save()));
    let stale = Commit { now_ms: 2, kiosk: None, docs: vec![write(Some(vec![7; 32]), chunk.clone(), heads2.clone())] };
    assert_eq!(db.commit(&stale).unwrap(), CommitOutcome::Stale(vec!["d1".into()]));
    // The numbers the catalog's partitions have taken, in all.
    let seqs = || {
        db.read(|c| {
            sql::scalar::<i64>(c, "SELECT CAST(sum(seq) AS BIGINT) FROM doc_seq WHERE doc_id = 'd1'", crate::args![])
        })
    };
    let after_create = seqs().unwrap();
    let _ = db.commit(&stale).unwrap();
    assert_eq!(seqs().unwrap(), after_create, "the stale commit logged nothing");
    assert_eq!(db.load("d1").unwrap().unwrap().heads, heads1);

    let fresh = Commit { now_ms: 3, kiosk: None, docs: vec![write(Some(heads1), chunk, heads2.clone())] };
    assert_eq!(db.commit(&fresh).unwrap(), CommitOutcome::Committed);
    let stored = db.load("d1").unwrap().unwrap();
    assert_eq!(stored.heads, heads2);
    assert_eq!(heads_blob(&docs::to_hashes(&stored.open("d1").unwrap().get_heads())), heads2);
    assert!(seqs().unwrap() > after_create, "the commit took new numbers");
}

/// Compaction (issue 18, item 2) folds a document's chunks into one
/// snapshot with the same heads, smaller, without touching its place in
/// the pull cursor; a commit that lands between its read and its write
/// wins (the document is left for the next pass), and nothing is lost.
/// Chunks are what a release before whole documents (`DocBytes::Whole`)
/// wrote: a commit now stores the document whole and drops them.
fn compaction_folds_chunks_into_the_same_document_and_yields_to_a_commit(db: &Db) {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    use engine::{Commit, CommitOutcome, DocBytes, DocEngine, Packed, heads_blob};
    let kel = "12.71.01.1001";
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "id", "c1").unwrap();
    let mut write = request_write("c1", kel);
    write.bytes = DocBytes::Snapshot(Packed::new(&doc.save()));
    write.heads = heads_blob(&docs::to_hashes(&doc.get_heads()));
    assert_eq!(
        db.commit(&Commit { now_ms: 1, kiosk: None, docs: vec![write.clone()] }).unwrap(),
        CommitOutcome::Committed
    );
    // Five more writes, a chunk each, as the release before stored them.
    let append_chunk = |doc: &mut automerge::AutoCommit, i: i64| {
        let before = doc.get_heads();
        doc.put(automerge::ROOT, format!("event{i}"), i).unwrap();
        let chunk = loket_node::at_rest::pack(&doc.save_after(&before));
        let heads = heads_blob(&docs::to_hashes(&doc.get_heads()));
        db.write(|tx| {
            tx.execute("INSERT INTO chunks (doc_id, data) VALUES ('c1', ?)", crate::args![chunk.as_slice()])?;
            tx.execute(
                "UPDATE docs SET chunk_count = chunk_count + 1, heads = ? WHERE doc_id = 'c1'",
                crate::args![heads.as_slice()],
            )
        })
        .unwrap();
    };
    for i in 0..5 {
        append_chunk(&mut doc, i);
    }
    let seq = || db.read(|c| sql::scalar::<i64>(c, "SELECT last_seq FROM docs WHERE doc_id = 'c1'", crate::args![]));
    let (seq_before, stored) = (seq().unwrap(), db.load("c1").unwrap().unwrap());
    assert_eq!(stored.chunks.len(), 5);

    let done = super::compact::all(db, &mut |_| {}).unwrap();
    assert_eq!((done.documents, done.raced), (1, 0));
    assert!(done.bytes_after < done.bytes_before, "{done:?}");
    let compacted = db.load("c1").unwrap().unwrap();
    assert!(compacted.chunks.is_empty());
    assert_eq!(compacted.heads, stored.heads);
    let mut reopened = compacted.open("c1").unwrap();
    assert_eq!(heads_blob(&docs::to_hashes(&reopened.get_heads())), stored.heads);
    assert_eq!(reopened.get(automerge::ROOT, "event4").unwrap().map(|(v, _)| v.as_i64()), Some(Some(4)));
    assert_eq!(seq().unwrap(), seq_before, "the pull cursor does not move");
    assert_eq!(super::compact::all(db, &mut |_| {}).unwrap().documents, 0, "nothing left to do");

    // A commit between compaction's read and its write wins; it stores
    // the document whole, chunks and all, so nothing is left to fold.
    append_chunk(&mut doc, 10);
    let folded = super::compact::fold(db, "c1").unwrap().expect("a chunk to fold");
    let before = doc.get_heads();
    doc.put(automerge::ROOT, "event11", 11).unwrap();
    let mut w = write.clone();
    w.base = Some(heads_blob(&docs::to_hashes(&before)));
    w.bytes = DocBytes::Whole(Packed::new(&doc.save()));
    w.heads = heads_blob(&docs::to_hashes(&doc.get_heads()));
    assert_eq!(db.commit(&Commit { now_ms: 20, kiosk: None, docs: vec![w] }).unwrap(), CommitOutcome::Committed);
    let raced = super::compact::write(db, &[folded]).unwrap();
    assert_eq!((raced.documents, raced.raced), (0, 1));
    let whole = db.load("c1").unwrap().unwrap();
    assert!(whole.chunks.is_empty(), "the commit dropped the older chunks");
    assert_eq!(super::compact::all(db, &mut |_| {}).unwrap().documents, 0);
    let last = whole.open("c1").unwrap();
    assert_eq!(last.get(automerge::ROOT, "event10").unwrap().map(|(v, _)| v.as_i64()), Some(Some(10)));
    assert_eq!(last.get(automerge::ROOT, "event11").unwrap().map(|(v, _)| v.as_i64()), Some(Some(11)));
}

/// Documents are stored packed (`loket_node::at_rest`): a real request,
/// with its events and a rating, in under 40 % of its bytes (a name, ids
/// and a note the dictionary has never seen). A
/// snapshot stored as Automerge bytes, as before packing, reads the same,
/// and compaction packs it without changing the document; then there is
/// nothing left to do.
fn documents_are_stored_packed_and_compaction_packs_those_from_before(db: &Db) {
    use engine::{Commit, CommitOutcome, DocBytes, DocEngine, Packed, heads_blob};
    use loket_shared::request::{self, Rating};
    use loket_shared::{Hlc, Status};
    let created = 1_793_466_000_000i64;
    let mut doc = automerge::AutoCommit::new();
    request::create(&mut doc, &new_request(3, "SKD", created)).unwrap();
    for (i, to) in
        [Status::InProgress, Status::WaitingCitizen, Status::InProgress, Status::Completed].into_iter().enumerate()
    {
        let (_, derived) = docs::read_request(&doc).unwrap();
        let at = created + 600_000 * (i as i64 + 1);
        let mut e = transition(&format!("e-{i}"), at, "aa", derived.status, to, derived.frontier.clone());
        e.note = (to == Status::WaitingCitizen).then(|| "fotokopi KK belum dibawa".into());
        request::append_event(&mut doc, &e).unwrap();
        doc.commit();
    }
    let rating = Rating {
        id: "r1".into(),
        hlc: Hlc { wall_ms: u64::try_from(created + 3_600_000).unwrap(), counter: 0 },
        node: "aa".into(),
        at_ms: created + 3_600_000,
        scores: loket_shared::skm::Scores::new([4, 4, 3, 4, 4, 3, 4, 4, 4]).unwrap(),
        comment: None,
        profile: Default::default(),
    };
    request::append_rating(&mut doc, &rating).unwrap();
    doc.commit();
    let raw = doc.save_nocompress();
    let mut write = request_write("p1", "12.71.01.1001");
    write.bytes = DocBytes::Snapshot(Packed::new(&raw));
    write.heads = heads_blob(&docs::to_hashes(&doc.get_heads()));
    assert_eq!(db.commit(&Commit { now_ms: 1, kiosk: None, docs: vec![write] }).unwrap(), CommitOutcome::Committed);
    let stored = |id: &str| {
        db.read(|c| sql::scalar::<Vec<u8>>(c, "SELECT snapshot FROM docs WHERE doc_id = ?", crate::args![id]))
            .unwrap()
            .unwrap()
    };
    let packed = stored("p1");
    assert!(loket_node::at_rest::is_packed(&packed));
    assert!(packed.len() * 5 < raw.len() * 2, "{} of {} bytes", packed.len(), raw.len());
    assert_eq!(db.load("p1").unwrap().unwrap().automerge_bytes("p1").unwrap(), raw, "unpacked exactly");

    // As a store from before packing holds it.
    db.write(|tx| tx.execute("UPDATE docs SET snapshot = ? WHERE doc_id = 'p1'", crate::args![raw.as_slice()]))
        .unwrap();
    let old = db.load("p1").unwrap().unwrap();
    assert!(!old.snapshot_packed());
    assert_eq!(old.automerge_bytes("p1").unwrap(), raw);
    let done = super::compact::all(db, &mut |_| {}).unwrap();
    assert_eq!((done.documents, done.bytes_before), (1, raw.len() as u64), "{done:?}");
    assert!(done.bytes_after * 5 < done.bytes_before * 2, "{done:?}");
    assert!(loket_node::at_rest::is_packed(&stored("p1")));
    let mut reopened = db.load("p1").unwrap().unwrap().open("p1").unwrap();
    assert_eq!(reopened.get_heads(), doc.get_heads());
    let (view, _) = docs::read_request(&reopened).unwrap();
    assert_eq!((view.events.len(), view.ratings.len()), (5, 1));
    assert_eq!(super::compact::all(db, &mut |_| {}).unwrap().documents, 0, "nothing left to do");
}

/// A clerk's step from `from` to `to`, stamped at `at` by `node`.
pub(crate) fn transition(
    id: &str,
    at: i64,
    node: &str,
    from: loket_shared::Status,
    to: loket_shared::Status,
    parents: Vec<String>,
) -> loket_shared::workflow::Event {
    loket_shared::workflow::Event {
        id: id.into(),
        hlc: loket_shared::Hlc { wall_ms: u64::try_from(at).unwrap(), counter: 0 },
        node: node.into(),
        at_ms: at,
        by: "198503122010011002".into(),
        kind: loket_shared::workflow::EventKind::Transition,
        from: Some(from),
        to,
        note: None,
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents,
        seal: None,
    }
}

/// A request's journey keeps its events in causal order (schema versions
/// 14 and 18): a step appended later comes last; a partner kiosk's step
/// made offline, whose stamp sorts between two already projected, takes
/// its place and the steps after it move up, and the journey export reads
/// them in that order.
fn events_are_numbered_in_causal_order_when_one_arrives_between(db: &Db) {
    use loket_shared::Status;
    use loket_shared::request;
    let created = 1_793_466_000_000i64;
    let event = |id: &str, at: i64, node: &str, from: Status, to: Status, parents: Vec<String>| {
        transition(id, at, node, from, to, parents)
    };
    let project = |doc: &automerge::AutoCommit| {
        let (view, derived) = docs::read_request(doc).unwrap();
        db.write(|tx| projection::project_request(tx, &view, &derived)).unwrap();
    };
    let rows = || {
        let id = loket_shared::DocId::new_v7(u64::try_from(created).unwrap(), [9; 10]).to_string();
        let blob = db
            .read(|c| {
                sql::scalar::<Option<Vec<u8>>>(c, "SELECT journey FROM requests WHERE doc_id = ?", crate::args![&id])
            })
            .unwrap()
            .flatten();
        projection::unpack_journey(&id, blob.as_deref())
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(ord, (at, _, _, to, _))| (i64::try_from(ord).unwrap(), at, to))
            .collect::<Vec<_>>()
    };
    let mut doc = automerge::AutoCommit::new();
    request::create(&mut doc, &new_request(9, "SKD", created)).unwrap();
    doc.commit();
    let mut partner = doc.fork();
    let root = vec!["create-9".to_owned()];
    let late = event("b", created + 3_000, "bb", Status::Submitted, Status::InProgress, root.clone());
    request::append_event(&mut doc, &late).unwrap();
    doc.commit();
    project(&doc);
    let at = |ms: i64| created + ms;
    assert_eq!(rows(), [(0, created, "submitted".into()), (1, at(3_000), "in_progress".into())]);
    // Appended after the rest: one step more, the others as they were.
    let next = event("c", created + 5_000, "bb", Status::InProgress, Status::WaitingCitizen, vec!["b".into()]);
    request::append_event(&mut doc, &next).unwrap();
    doc.commit();
    project(&doc);
    assert_eq!(rows().len(), 3);
    // The partner's step, stamped between the two, arrives.
    let between = event("a", created + 1_000, "aa", Status::Submitted, Status::InProgress, root);
    request::append_event(&mut partner, &between).unwrap();
    partner.commit();
    doc.merge(&mut partner).unwrap();
    project(&doc);
    assert_eq!(
        rows(),
        [
            (0, created, "submitted".into()),
            (1, at(1_000), "in_progress".into()),
            (2, at(3_000), "in_progress".into()),
            (3, at(5_000), "waiting_citizen".into()),
        ]
    );
}

/// A working time read back from its histogram bucket is within 1 % of
/// itself (and exactly 0 below a minute), across a minute to a year.
#[test]
fn histogram_buckets_are_within_one_percent() {
    use super::projection::{bucket_ms, step_bucket};
    assert_eq!((step_bucket(0), bucket_ms(step_bucket(59_999))), (0, 0));
    let mut ms = 60_000i64;
    let mut last = 0;
    while ms < 365 * 86_400_000 {
        let b = step_bucket(ms);
        assert!(b >= last, "buckets grow with the time");
        last = b;
        let back = bucket_ms(b) as f64;
        assert!((back - ms as f64).abs() <= ms as f64 * 0.0100_1, "{ms} ms read back as {back}");
        ms = ms * 101 / 100 + 7;
    }
}

/// A request document of `kelurahan` as a commit would carry it.
/// Schema version 12: a document's first and last receipt of changes new
/// to the server, one row whatever the number of changes; a write with no
/// new change leaves both. Central edits (`record_receipts`) count too.
fn a_document_keeps_its_first_and_last_receipt(db: &Db) {
    use automerge::transaction::Transactable;
    use engine::{Commit, DocBytes, DocEngine, Packed, heads_blob};
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "id", "r1").unwrap();
    let mut write = request_write("r1", "12.71.01.1001");
    write.bytes = DocBytes::Snapshot(Packed::new(&doc.save()));
    write.heads = heads_blob(&docs::to_hashes(&doc.get_heads()));
    write.receipts = docs::to_hashes(&doc.get_heads());
    db.commit(&Commit { now_ms: 2_000, kiosk: None, docs: vec![write.clone()] }).unwrap();
    let span = || db.read(|c| docs::received_span(c, "r1")).unwrap();
    assert_eq!(span(), (Some(2_000), Some(2_000)));
    assert_eq!(db.read(|c| docs::received_span(c, "none")).unwrap(), (None, None));
    // More changes later; an earlier clock (another instance's) cannot
    // move the first receipt back past what was recorded, only earlier.
    let heads_before = doc.get_heads();
    doc.put(automerge::ROOT, "note", "a").unwrap();
    doc.commit();
    doc.put(automerge::ROOT, "note", "b").unwrap();
    db.write(|tx| docs::record_receipts(tx, "r1", &mut doc, &heads_before, 5_000)).unwrap();
    assert_eq!(span(), (Some(2_000), Some(5_000)));
    db.write(|tx| docs::record_receipts(tx, "r1", &mut doc.clone(), &doc.get_heads(), 9_000)).unwrap();
    assert_eq!(span(), (Some(2_000), Some(5_000)), "nothing new: nothing moves");
    db.write(|tx| docs::record_receipts(tx, "r1", &mut doc, &heads_before, 1_000)).unwrap();
    assert_eq!(span(), (Some(1_000), Some(5_000)));
    let rows: i64 = db
        .read(|c| {
            crate::store::sql::scalar(
                c,
                "SELECT count(*) FROM docs WHERE first_received_ms IS NOT NULL",
                crate::args![],
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(rows, 1);
}

fn request_write(doc_id: &str, kelurahan: &str) -> engine::DocWrite {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new();
    doc.put(automerge::ROOT, "id", doc_id).unwrap();
    engine::DocWrite {
        doc_id: doc_id.into(),
        doc_type: loket_shared::sync::DocType::Request,
        kelurahan: Some(kelurahan.into()),
        base: None,
        heads: engine::heads_blob(&docs::to_hashes(&doc.get_heads())),
        bytes: engine::DocBytes::Snapshot(engine::Packed::new(&doc.save())),
        receipts: vec![],
        projection: None,
    }
}

/// The visibility pitfall of serial ids as cursors: writer A takes a
/// number, writer B a higher one and commits first; a kiosk pulling then
/// moves its cursor past A's number, and A, committing afterwards, is
/// never pulled. Here A holds its kelurahan's partition from its first
/// statement to its commit, so B cannot take a number (nor commit) until
/// A has: every number a kiosk can see is below every number still to
/// commit. (On SQLite the single writer makes B wait the same way.)
fn the_cursor_never_passes_a_write_that_commits_later(db: &Db) {
    use engine::{Commit, CommitOutcome, DocEngine};
    let kel = "12.71.01.1001";
    let kelurahan: loket_shared::KelurahanCode = kel.parse().unwrap();
    let (a_took, a_took_rx) = std::sync::mpsc::channel::<()>();
    let (release_a, release_a_rx) = std::sync::mpsc::channel::<()>();
    let db_a = db.clone();
    let a = std::thread::spawn(move || {
        db_a.write(|tx| {
            let out = docs::commit_tx(tx, &Commit { now_ms: 1, kiosk: None, docs: vec![request_write("doc-a", kel)] })?;
            a_took.send(()).unwrap();
            release_a_rx.recv().unwrap();
            Ok::<_, StoreError>(out)
        })
    });
    a_took_rx.recv().unwrap();
    let db_b = db.clone();
    let b = std::thread::spawn(move || {
        db_b.commit(&Commit { now_ms: 2, kiosk: None, docs: vec![request_write("doc-b", kel)] })
    });
    // B is waiting for A's partition (PostgreSQL shows the lock wait).
    if db.dialect() == Dialect::Postgres {
        let waiting = || {
            db.read(|c| {
                sql::scalar::<i64>(
                    c,
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    crate::args![],
                )
            })
            .unwrap()
            .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waiting() == 0 {
            assert!(std::time::Instant::now() < deadline, "B never waited for A's partition");
            std::thread::yield_now();
        }
    }
    // A kiosk pulling now sees neither: A has not committed, B cannot.
    let seen = db.pull_candidates("k1", &kelurahan, 0, 100).unwrap();
    assert!(seen.iter().all(|c| c.doc_id != "doc-a" && c.doc_id != "doc-b"), "{seen:?}");
    release_a.send(()).unwrap();
    assert_eq!(a.join().unwrap().unwrap(), CommitOutcome::Committed);
    assert_eq!(b.join().unwrap().unwrap(), CommitOutcome::Committed);
    let all = db.pull_candidates("k1", &kelurahan, 0, 100).unwrap();
    let seq = |id: &str| all.iter().find(|c| c.doc_id == id).map(|c| c.seq).unwrap();
    assert!(seq("doc-a") < seq("doc-b"), "the later commit has the higher number");
    // A kiosk whose cursor is A's number still gets B, and not A again.
    let after_a = db.pull_candidates("k1", &kelurahan, u64::try_from(seq("doc-a")).unwrap(), 100).unwrap();
    assert!(after_a.iter().any(|c| c.doc_id == "doc-b"));
    assert!(after_a.iter().all(|c| c.doc_id != "doc-a"));
}

/// Schema version 16: a kelurahan's documents are pulled by their own
/// row's number, the catalog by its number in each partition; a pull reads
/// both in one order, never another kelurahan's, and stops at the limit
/// (one over it, to tell there is more) wherever the two interleave.
fn a_pull_merges_the_kelurahan_s_documents_and_the_catalog_in_number_order(db: &Db) {
    use automerge::transaction::Transactable;
    use engine::{Commit, CommitOutcome, DocBytes, DocEngine, DocWrite, Packed, heads_blob};
    let kel = "12.71.01.1001";
    let kelurahan: loket_shared::KelurahanCode = kel.parse().unwrap();
    let catalog = |version: i64, base: Option<Vec<u8>>| {
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "version", version).unwrap();
        DocWrite {
            doc_id: "catalog".into(),
            doc_type: loket_shared::sync::DocType::Catalog,
            kelurahan: None,
            base,
            heads: heads_blob(&docs::to_hashes(&doc.get_heads())),
            bytes: DocBytes::Whole(Packed::new(&doc.save())),
            receipts: vec![],
            projection: None,
        }
    };
    let commit = |w: DocWrite| {
        assert_eq!(db.commit(&Commit { now_ms: 1, kiosk: None, docs: vec![w] }).unwrap(), CommitOutcome::Committed)
    };
    commit(request_write("r1", kel));
    let mut first = catalog(1, None);
    first.bytes = match first.bytes {
        DocBytes::Whole(p) => DocBytes::Snapshot(p),
        other => other,
    };
    let first_heads = first.heads.clone();
    commit(first);
    commit(request_write("r2", kel));
    commit(request_write("elsewhere", "12.71.01.1002"));
    commit(request_write("r3", kel));
    // The catalog again: its number moves past r3 in every partition.
    commit(catalog(2, Some(first_heads)));
    commit(request_write("r4", kel));
    let ids = |after: u64, limit: usize| {
        let got = db.pull_candidates("k1", &kelurahan, after, limit).unwrap();
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "in number order: {got:?}");
        got.into_iter().map(|c| (c.doc_id, c.seq)).collect::<Vec<_>>()
    };
    let all = ids(0, 100);
    let names: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(names, ["r1", "r2", "r3", "catalog", "r4"]);
    // At most the limit and one more, from wherever the cursor stands.
    let first_two: Vec<String> = ids(0, 1).into_iter().map(|(id, _)| id).collect();
    assert_eq!(first_two, ["r1", "r2"]);
    let after_r2 = u64::try_from(all[1].1).unwrap();
    let rest: Vec<String> = ids(after_r2, 1).into_iter().map(|(id, _)| id).collect();
    assert_eq!(rest, ["r3", "catalog"]);
    let after_catalog = u64::try_from(all[3].1).unwrap();
    let last: Vec<String> = ids(after_catalog, 100).into_iter().map(|(id, _)| id).collect();
    assert_eq!(last, ["r4"]);
    // A request's number is its row's: nothing of it in `doc_seq`.
    let in_doc_seq: i64 = db
        .read(|c| sql::scalar(c, "SELECT count(*) FROM doc_seq WHERE doc_id LIKE 'r%'", crate::args![]))
        .unwrap()
        .unwrap();
    assert_eq!(in_doc_seq, 0);
}

/// Every rollup table, in key order, as values.
fn rollup_rows(db: &Db) -> Vec<(String, Vec<Row>)> {
    [
        (
            "monthly",
            "SELECT * FROM monthly WHERE filed != 0 OR finished != 0 OR within_sla != 0 OR respondents != 0
             ORDER BY month, kelurahan, service",
        ),
        ("daily_filed", "SELECT * FROM daily_filed WHERE filed != 0 ORDER BY day, kelurahan"),
        ("request_staff", "SELECT * FROM request_staff ORDER BY doc_id, nip"),
        ("request_steps", "SELECT doc_id, steps FROM requests WHERE steps IS NOT NULL ORDER BY doc_id"),
        ("step_hist", "SELECT * FROM step_hist WHERE n != 0 ORDER BY month, service, status, agency, bucket"),
        ("journey_hist", "SELECT * FROM journey_hist WHERE n != 0 ORDER BY month, kelurahan, bucket"),
        (
            "agency_monthly",
            "SELECT * FROM agency_monthly WHERE finished != 0 ORDER BY month, agency, kelurahan, service",
        ),
        (
            "staff_monthly",
            "SELECT * FROM staff_monthly WHERE handled != 0 OR within_sla != 0 OR rated != 0
             ORDER BY month, kelurahan, nip, bucket",
        ),
        ("skm_profile", "SELECT * FROM skm_profile WHERE n != 0 ORDER BY month, kelurahan, dimension, code"),
    ]
    .into_iter()
    .map(|(t, q)| (t.to_owned(), db.read(|c| c.query(q, crate::args![])).unwrap()))
    .collect()
}

/// A request of kiosk K07 filed at `created`.
fn new_request(n: u8, service: &str, created: i64) -> loket_shared::request::NewRequest {
    use loket_shared::request::{Applicant, NewRequest};
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{DocId, Hlc, Status, Ticket};
    let hlc = Hlc { wall_ms: u64::try_from(created).unwrap(), counter: 0 };
    NewRequest {
        id: DocId::new_v7(u64::try_from(created).unwrap(), [n; 10]),
        ticket: Ticket::new(&"K07".parse().unwrap(), 11, 28, u32::from(n)),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: service.parse().unwrap(),
        created_at_ms: created,
        hlc,
        applicant: Applicant {
            name: "Siti Aminah".parse().unwrap(),
            nik: "1271010101900003".parse().unwrap(),
            phone: None,
        },
        rating_key: None,
        create_event: Event {
            id: format!("create-{n}"),
            hlc,
            node: "aa".into(),
            at_ms: created,
            by: "citizen".into(),
            kind: EventKind::Create,
            from: None,
            to: Status::Submitted,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: vec![],
            seal: None,
        },
    }
}

/// What `project_request` keeps up by difference, write after write
/// (filing, steps by two clerks, a finish that a later step moves to
/// another month and past the SLA, concurrent ratings arriving highest id
/// first), equals what `rebuild_rollups` computes from the projections.
fn rollups_kept_by_difference_equal_a_rebuild(db: &Db) {
    use loket_shared::request::{self, Rating};
    use loket_shared::skm::Scores;
    use loket_shared::workflow::{Event, EventKind};
    use loket_shared::{Hlc, Status};
    let writer = crate::ops::central::Writer::new(&crate::ops::seal::SealKey::from_bytes([7; 32]));
    db.write(|tx| crate::ops::central::ensure_catalog(tx, &writer)).unwrap();
    let nov = 1_793_466_000_000i64; // 2026-11-01 00:00 WIB
    let day = 86_400_000i64;
    let project = |doc: &automerge::AutoCommit| {
        let (view, derived) = docs::read_request(doc).unwrap();
        db.write(|tx| projection::project_request(tx, &view, &derived)).unwrap();
    };
    let step_at = |doc: &mut automerge::AutoCommit, to: Status, by: &str, at: i64, agency: Option<&str>| {
        let (_, derived) = docs::read_request(doc).unwrap();
        let e = Event {
            id: format!("e-{at}"),
            hlc: Hlc { wall_ms: u64::try_from(at).unwrap(), counter: 0 },
            node: "aa".into(),
            at_ms: at,
            by: by.into(),
            kind: EventKind::Transition,
            from: Some(derived.status),
            to,
            note: None,
            agency: agency.map(Into::into),
            waiting: Vec::new(),
            result_ref: None,
            parents: derived.frontier.clone(),
            seal: None,
        };
        request::append_event(doc, &e).unwrap();
        doc.commit();
    };
    let step = |doc: &mut automerge::AutoCommit, to: Status, by: &str, at: i64| step_at(doc, to, by, at, None);
    let (clerk, other) = ("198503122010011002", "199001012015011001");
    // A KK handed to Disdukcapil, taken and returned there, completed; a
    // rejection; a cancellation.
    for (n, end) in [(4u8, Status::Completed), (5, Status::Rejected), (6, Status::Cancelled)] {
        let created = nov + i64::from(n) * day + 3_600_000;
        let mut doc = automerge::AutoCommit::new();
        request::create(&mut doc, &new_request(n, "PKK", created)).unwrap();
        step(&mut doc, Status::InProgress, clerk, created + 600_000);
        if end == Status::Completed {
            let dk = Some("DISDUKCAPIL");
            step_at(&mut doc, Status::HandedOff, clerk, created + 1_200_000, dk);
            project(&doc);
            step_at(&mut doc, Status::InProgress, "agency:DISDUKCAPIL:rina", created + day, dk);
            step(&mut doc, Status::InProgress, "agency:DISDUKCAPIL:rina", created + 5 * day);
        }
        step(&mut doc, end, clerk, created + 6 * day);
        project(&doc);
    }
    for (n, service) in [(1u8, "SKD"), (2, "SKU"), (3, "SKD")] {
        let created = nov + i64::from(n) * day + 3_600_000;
        let mut doc = automerge::AutoCommit::new();
        request::create(&mut doc, &new_request(n, service, created)).unwrap();
        project(&doc);
        step(&mut doc, Status::InProgress, clerk, created + 600_000);
        project(&doc);
        step(&mut doc, Status::WaitingCitizen, other, created + 1_200_000);
        project(&doc);
        step(&mut doc, Status::InProgress, clerk, created + 1_800_000);
        step(&mut doc, Status::Completed, clerk, created + 3_600_000);
        project(&doc);
        if n == 1 {
            // Ratings, the higher id first; each with its own profile, so
            // the lower id's replaces the other's in `skm_profile` too.
            for (id, u, profile) in [("r-b", 4u8, [("sex", "l")]), ("r-a", 1, [("age", "31-40")])] {
                let rating = Rating {
                    id: id.into(),
                    hlc: Hlc { wall_ms: u64::try_from(created + 2 * day).unwrap(), counter: u32::from(u) },
                    node: "aa".into(),
                    at_ms: created + 2 * day,
                    scores: Scores::new([u; 9]).unwrap(),
                    comment: None,
                    profile: loket_shared::respondent::Profile::from_pairs(profile).unwrap(),
                };
                request::append_rating(&mut doc, &rating).unwrap();
                doc.commit();
                project(&doc);
            }
        }
    }
    let kept = rollup_rows(db);
    let profile = &kept.iter().find(|(t, _)| t == "skm_profile").unwrap().1;
    let answers: Vec<(String, String, i64)> =
        profile.iter().map(|r| (r.get(2).unwrap(), r.get(3).unwrap(), r.get(4).unwrap())).collect();
    assert_eq!(answers, [("age".into(), "31-40".into(), 1)], "only the first rating's profile, once");
    for table in [
        "monthly",
        "daily_filed",
        "request_staff",
        "request_steps",
        "step_hist",
        "journey_hist",
        "staff_monthly",
        "skm_profile",
    ] {
        assert!(kept.iter().any(|(t, rows)| t == table && !rows.is_empty()), "{table} was kept: {kept:?}");
    }
    db.write(projection::rebuild_rollups).unwrap();
    assert_eq!(rollup_rows(db), kept, "kept by difference == rebuilt from scratch");

    // A store of schema version 2 (before the journey histogram) gains it
    // from its requests when it is migrated.
    db.write(|tx| -> Result<(), StoreError> {
        tx.batch("DROP TABLE journey_hist; DROP TABLE staff_monthly;")?;
        tx.execute("DELETE FROM schema_migrations WHERE version = 3", crate::args![])?;
        super::meta_set(tx, "schema_version", "2")
    })
    .unwrap();
    let applied = super::migrate::run(db).unwrap();
    // Step 3 and every later one (each harmless to run again).
    assert_eq!(applied.steps.iter().map(|s| s.0).collect::<Vec<_>>(), (3..=super::migrate::LATEST).collect::<Vec<_>>());
    assert_eq!(rollup_rows(db), kept, "the histogram filled by the migration");
}

/// Issue 16: a complaint written through a commit is projected in its
/// transaction (received time bounded by the server's receipt, due time
/// by the calendar, no personal data); the list filters and pages; the
/// due time follows a holiday added later; running version 7 again
/// changes nothing (idempotent) and projects what is stored.
fn complaints_are_projected_bounded_by_receipt_and_refreshed(db: &Db) {
    use engine::{Commit, DocBytes, DocEngine, DocWrite, Packed, Projection};
    use loket_shared::complaint::{self, About, Complainant, NewComplaint, Step, StepKind};
    use loket_shared::{ComplaintTicket, DocId, Hlc};
    // Monday 1 December 2025, 09:00 in Medan (UTC+7); the kiosk's clock
    // runs a day ahead of when the server receives the complaint.
    let received = 1_764_554_400_000;
    let kiosk_clock = received + 86_400_000;
    let id = DocId::new_v7(1, [3; 10]);
    let hlc = Hlc { wall_ms: 1, counter: 0 };
    let new = NewComplaint {
        id,
        ticket: ComplaintTicket::new(&"K01".parse().unwrap(), 12, 1, 1),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K01".parse().unwrap(),
        created_at_ms: kiosk_clock,
        hlc,
        about: About::Office,
        complainant: Some(Complainant { name: "Siti Aminah".parse().unwrap(), nik: None, phone: None }),
        text: "Antrean terlalu lama.".into(),
        file_step: Step {
            id: "f1".into(),
            hlc,
            node: "0505".into(),
            at_ms: kiosk_clock,
            by: "citizen".into(),
            kind: StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: vec![],
            seal: None,
        },
    };
    let mut doc = automerge::AutoCommit::new();
    complaint::create(&mut doc, &new).unwrap();
    let (view, derived) = complaints::read_complaint(&doc).unwrap();
    let hashes = docs::to_hashes(&doc.get_heads());
    let write = DocWrite {
        doc_id: id.to_string(),
        doc_type: loket_shared::sync::DocType::Complaint,
        kelurahan: Some("12.71.01.1001".into()),
        base: None,
        heads: engine::heads_blob(&hashes),
        bytes: DocBytes::Snapshot(Packed::new(&doc.save())),
        receipts: hashes.clone(),
        projection: Some(Projection::Complaint(Box::new((view, derived)))),
    };
    db.write(|tx| meta_set(tx, "utc_offset_hours", "7")).unwrap();
    db.commit(&Commit { now_ms: received, kiosk: None, docs: vec![write] }).unwrap();
    let row = db.read(|c| complaints::row(c, &id.to_string())).unwrap().expect("projected");
    assert_eq!(row.received_at_ms, received, "a kiosk clock ahead cannot push the deadline later");
    assert_eq!((row.state.as_str(), row.anonymous, row.class.as_deref()), ("received", false, None));
    let due = row.due_at_ms;
    // Unclassified: the strictest class, 2 working days.
    assert!(due > received + 86_400_000 && due <= received + 3 * 86_400_000, "{due}");

    let list = |overdue: Option<bool>, now_ms: i64| {
        let f = complaints::Filter { overdue, now_ms, limit: 10, ..Default::default() };
        db.read(|c| complaints::list(c, &f)).unwrap().len()
    };
    assert_eq!((list(None, received), list(Some(true), received), list(Some(false), received)), (1, 0, 1));
    assert_eq!((list(Some(true), due + 1), list(Some(false), due + 1)), (1, 0));
    let counts_in = |scope: complaints::Scope| db.read(|c| complaints::counts(c, &scope, due + 1)).unwrap();
    let counts = counts_in(complaints::Scope::default());
    assert_eq!((counts[0].received, counts[0].open, counts[0].overdue), (1, 1, 1));
    let other = counts_in(complaints::Scope { kelurahan: Some("12.71.01.1002".into()), ..Default::default() });
    assert!(other.is_empty());
    // A unit's region: its kecamatan's complaints, none of another's.
    let region =
        |r: &[&str]| complaints::Scope { region: r.iter().map(|k| (*k).to_owned()).collect(), ..Default::default() };
    assert_eq!(counts_in(region(&["12.71.02", "12.71.01"])).len(), 1);
    assert!(counts_in(region(&["12.71.02"])).is_empty(), "another kecamatan's unit sees nothing");

    // A holiday on the Tuesday moves the deadline a working day later.
    db.write(|tx| {
        tx.execute("INSERT INTO holidays (day, name) VALUES ('2025-12-02', 'Libur')", crate::args![])?;
        complaints::refresh_due(tx)
    })
    .unwrap();
    let moved = db.read(|c| complaints::row(c, &id.to_string())).unwrap().unwrap();
    assert!(moved.due_at_ms > due, "{} <= {due}", moved.due_at_ms);

    // Version 7 again: nothing breaks, the row is still the document's.
    db.write(|tx| {
        tx.execute("DELETE FROM complaints", crate::args![])?;
        meta_set(tx, "schema_version", "6")
    })
    .unwrap();
    let applied = migrate::run(db).unwrap();
    assert_eq!(applied.to, migrate::LATEST);
    let again = db.read(|c| complaints::row(c, &id.to_string())).unwrap().expect("projected by the migration");
    assert_eq!(again.received_at_ms, received);
    assert_eq!(again.due_at_ms, moved.due_at_ms);
    let no_personal: i64 = db
        .read(|c| sql::scalar(c, "SELECT count(*) FROM complaints WHERE ticket LIKE '%Siti%'", crate::args![]))
        .unwrap()
        .unwrap();
    assert_eq!(no_personal, 0);
}

/// Issue 16, item 4: the figures read the complaints received in the
/// period and those open now (whenever received), within the scope; a
/// complaint about a request carries that request's service (by ticket,
/// `requests_by_ticket`); nothing else.
fn complaint_figure_rows_take_the_period_the_open_and_a_request_s_service(db: &Db) {
    let (from, to) = (1_000_000, 2_000_000);
    let add = |id: &str, k: &str, about: (&str, Option<&str>), unit: Option<&str>, state: &str, at: i64| {
        let ticket = format!("T-{id}");
        db.write(|tx| {
            tx.execute(
                "INSERT INTO complaints (doc_id, ticket, kelurahan, kiosk, about_kind, about_target, anonymous, class,
                     unit, state, received_at_ms, allowed_days, due_at_ms, answered_at_ms, updated_at_ms)
                 VALUES (?, ?, ?, 'K01', ?, ?, 1, NULL, ?, ?, ?, 2, ?, ?, ?)",
                crate::args![
                    id,
                    ticket.as_str(),
                    k,
                    about.0,
                    about.1,
                    unit,
                    state,
                    at,
                    at + 100,
                    (state == "answered").then_some(at + 50),
                    at
                ],
            )
        })
        .unwrap();
    };
    db.write(|tx| {
        tx.execute(
            "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency,
                                   rated, created_at_ms, updated_at_ms)
             VALUES ('r1', 'K01-1101-001', '12.71.01.1001', 'K01', 'SKD', 'submitted', 0, NULL, 0, 1, 1)",
            crate::args![],
        )
    })
    .unwrap();
    add("c1", "12.71.01.1001", ("request", Some("K01-1101-001")), None, "answered", from);
    add("c2", "12.71.01.1001", ("request", Some("K99-0000-000")), None, "answered", from + 1);
    add("c3", "12.71.01.1001", ("service", Some("KTP")), Some("agency:DUKCAPIL"), "registered", 10);
    add("c4", "12.71.01.1001", ("office", None), None, "closed", 10);
    add("c5", "12.71.01.1001", ("office", None), None, "answered", to);
    add("c6", "12.71.02.1001", ("general", None), None, "received", from + 2);
    let rows = |scope: complaints::Scope| db.read(|c| complaints::figure_rows(c, &scope, from, to)).unwrap();
    let all = rows(complaints::Scope::default());
    // c4 (closed, before) and c5 (at `to`, after) are neither.
    let ids: Vec<(i64, Option<&str>)> = all.iter().map(|r| (r.received_at_ms, r.request_service.as_deref())).collect();
    assert_eq!(ids, [(10, None), (from, Some("SKD")), (from + 1, None), (from + 2, None)]);
    assert_eq!(all[1].answered_at_ms, Some(from + 50));
    assert_eq!((all[0].about_kind.as_str(), all[0].about_target.as_deref()), ("service", Some("KTP")));
    let one = rows(complaints::Scope { kelurahan: Some("12.71.02.1001".into()), ..Default::default() });
    assert_eq!(one.len(), 1);
    let unit = rows(complaints::Scope { unit: Some("agency:DUKCAPIL".into()), ..Default::default() });
    assert_eq!(unit.iter().map(|r| r.received_at_ms).collect::<Vec<_>>(), [10]);
    let region = rows(complaints::Scope { region: vec!["12.71.02".into()], ..Default::default() });
    assert_eq!(region.len(), 1, "a region's unit sees only its kecamatan");
}
