//! The store's contract: transactions commit or roll back whole, the file
//! is private, migrations are repeatable, and a newer schema is refused.

use super::*;
use crate::store::accounts::UserRecord;

fn temp_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("server.db")).unwrap();
    (dir, db)
}

#[test]
fn write_commits_on_ok_and_rolls_back_on_err() {
    let (_dir, db) = temp_db();
    db.write(|tx| Ok::<_, StoreError>(meta_set(tx, "a", "1")?)).unwrap();
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

#[test]
fn a_caller_error_type_passes_through_write() {
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
    let (_dir, db) = temp_db();
    let r: Result<(), Mine> = db.write(|tx| {
        meta_set(tx, "x", "1").map_err(StoreError::from)?;
        Err(Mine::Refused)
    });
    assert!(matches!(r, Err(Mine::Refused)));
    assert_eq!(db.read(|c| Ok::<_, StoreError>(meta_get(c, "x")?)).unwrap(), None);
}

#[test]
fn a_panic_in_a_write_rolls_back_and_the_db_stays_usable() {
    let (_dir, db) = temp_db();
    let db2 = db.clone();
    let joined = std::thread::spawn(move || {
        let _ = db2.write(|tx| -> Result<(), StoreError> {
            meta_set(tx, "p", "1")?;
            panic!("bug in a writer");
        });
    })
    .join();
    assert!(joined.is_err());
    db.write(|tx| Ok::<_, StoreError>(meta_set(tx, "q", "1")?)).unwrap();
    assert_eq!(db.read(|c| Ok::<_, StoreError>(meta_get(c, "p")?)).unwrap(), None);
}

#[test]
fn reads_cannot_write() {
    let (_dir, db) = temp_db();
    let r = db.read(|c| Ok::<_, StoreError>(meta_set(c, "a", "1")?));
    assert!(r.is_err(), "a read connection wrote");
}

#[test]
fn reopening_migrates_again_harmlessly_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let db = Db::open(&path).unwrap();
    db.write(|tx| Ok::<_, StoreError>(meta_set(tx, "keep", "me")?)).unwrap();
    drop(db);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.read(|c| Ok::<_, StoreError>(meta_get(c, "keep")?)).unwrap().as_deref(), Some("me"));
    db.write(|tx| Ok::<_, StoreError>(meta_set(tx, "schema_version", "999")?)).unwrap();
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

#[test]
fn tables_are_strict_and_roles_checked() {
    let (_dir, db) = temp_db();
    let r = db.write(|tx| {
        Ok::<_, StoreError>(tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES ('x', 'h', 'root', 0)",
            [],
        )?)
    });
    assert!(r.is_err(), "an unknown role was stored");
    let r = db.write(|tx| {
        Ok::<_, StoreError>(tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES ('x', 'h', 'admin', 'soon')",
            [],
        )?)
    });
    assert!(r.is_err(), "STRICT let text into an INTEGER column");
}

#[test]
fn sessions_expire_and_are_bounded_per_user() {
    let (_dir, db) = temp_db();
    let user = UserRecord {
        username: "rina".parse().unwrap(),
        password_hash: "h".into(),
        role: crate::auth::Role::Admin,
        agency: None,
        kelurahan: None,
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
        let n: i64 = c.query_row("SELECT COUNT(*) FROM user_sessions", [], |r| r.get(0))?;
        assert_eq!(n, accounts::SESSIONS_PER_USER_MAX);
        assert!(accounts::session_user(c, "t0", 0)?.is_none(), "the oldest session was dropped");
        let last = format!("t{}", accounts::SESSIONS_PER_USER_MAX + 4);
        assert!(accounts::session_user(c, &last, 0)?.is_some());
        assert!(accounts::session_user(c, &last, 1_000_000)?.is_none(), "expired");
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

#[test]
fn kiosk_codes_count_up_and_are_never_reused() {
    let (_dir, db) = temp_db();
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
#[test]
fn a_commit_on_a_stale_base_writes_nothing() {
    use automerge::transaction::Transactable;
    use engine::{Commit, CommitOutcome, DocBytes, DocEngine, DocWrite, heads_blob};
    use loket_shared::sync::DocType;

    let (_dir, db) = temp_db();
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
        received_from: None,
        projection: None,
    };
    let create =
        Commit { now_ms: 1, kiosk: None, docs: vec![write(None, DocBytes::Snapshot(doc.save()), heads1.clone())] };
    assert_eq!(db.commit(&create).unwrap(), CommitOutcome::Committed);
    assert_eq!(db.commit(&create).unwrap(), CommitOutcome::Stale(vec!["d1".into()]), "it exists now");

    let before = doc.get_heads();
    doc.put(automerge::ROOT, "x", 2).unwrap();
    let heads2 = heads_blob(&docs::to_hashes(&doc.get_heads()));
    let chunk = DocBytes::Chunk(doc.save_after(&before));
    let stale = Commit { now_ms: 2, kiosk: None, docs: vec![write(Some(vec![7; 32]), chunk.clone(), heads2.clone())] };
    assert_eq!(db.commit(&stale).unwrap(), CommitOutcome::Stale(vec!["d1".into()]));
    let seqs = || db.read(|c| Ok::<i64, StoreError>(c.query_row("SELECT count(*) FROM change_log", [], |r| r.get(0))?));
    assert_eq!(seqs().unwrap(), 1, "the stale commit logged nothing");
    assert_eq!(db.load("d1").unwrap().unwrap().heads, heads1);

    let fresh = Commit { now_ms: 3, kiosk: None, docs: vec![write(Some(heads1), chunk, heads2.clone())] };
    assert_eq!(db.commit(&fresh).unwrap(), CommitOutcome::Committed);
    let stored = db.load("d1").unwrap().unwrap();
    assert_eq!(stored.heads, heads2);
    assert_eq!(heads_blob(&docs::to_hashes(&stored.open("d1").unwrap().get_heads())), heads2);
    assert_eq!(seqs().unwrap(), 2);
}

/// A working time read back from its histogram bucket is within 1 % of
/// itself (and exactly 0 below a minute), across a minute to a year.
#[test]
fn histogram_buckets_are_within_one_percent() {
    use super::docs::{bucket_ms, step_bucket};
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
