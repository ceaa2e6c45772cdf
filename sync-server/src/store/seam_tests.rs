//! The seam ([`super::sql::Sql`]) behaves the same on both engines: each
//! test here runs once on SQLite and once on PostgreSQL, through [`Db`]
//! only. Then the PostgreSQL engine's own promises (types refused, a
//! connection never reused dirty, the URL's password never shown).
//!
//! PostgreSQL comes from `LOKET_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, which `tests/run` sets up);
//! each test creates a database of its own and drops it at the end. A
//! PostgreSQL that does not answer fails the test: the engine is never
//! silently left untested.
//!
//! Plain `#[test]`s: the synchronous client panics inside a tokio runtime.

use std::time::Duration;

use super::migrate::{self, LATEST};
use super::postgres::PgDb;
use super::sql::{Dialect, Row, Sql, Value, scalar};
use super::{Db, StoreError, meta_set, random_bytes};
use crate::args;

const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn test_url() -> String {
    std::env::var("LOKET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned())
}

/// `url` with its database name replaced (URL form only).
fn with_database(url: &str, name: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let query = url[authority_end..].find('?').map_or("", |i| &url[authority_end + i..]);
    format!("{}/{name}{query}", &url[..authority_end])
}

/// A database of its own for one test, dropped (connections and all) at
/// the end, pass or fail.
struct TempDatabase {
    name: String,
    url: String,
}

impl TempDatabase {
    fn create() -> TempDatabase {
        let base = test_url();
        let mut admin = admin_client(&base);
        let name = format!("loket_{}", hex::encode(random_bytes::<8>()));
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("creating {name}: {e}"));
        TempDatabase { url: with_database(&base, &name), name }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let mut admin = admin_client(&test_url());
        if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("dropping test database {}: {e}", self.name);
        }
    }
}

fn admin_client(url: &str) -> postgres::Client {
    let shown = PgDb::describe_url(url);
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| {
        let e = match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        panic!(
            "PostgreSQL at LOKET_TEST_DATABASE_URL ({shown}) does not answer: {e}. \
             Run the tests with tests/run, which sets up a local PostgreSQL, or point \
             LOKET_TEST_DATABASE_URL at one whose role may create databases"
        )
    })
}

/// A database of either engine and what keeps it alive. Fields drop in
/// order: the pool closes before its database goes.
pub(super) struct Fixture {
    pub(super) db: Db,
    _keep: Keep,
}

enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg(#[allow(dead_code)] TempDatabase),
}

pub(super) fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_unmigrated(&dir.path().join("server.db"), 2).unwrap();
    Fixture { db, _keep: Keep::Dir(dir) }
}

pub(super) fn postgres() -> Fixture {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 3).unwrap();
    Fixture { db, _keep: Keep::Pg(temp) }
}

/// Runs each named test body on both engines, as `sqlite::name` and
/// `postgres::name`.
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(&super::sqlite().db) })+
        }
        mod on_postgres {
            $(#[test] fn $name() { super::$name(&super::postgres().db) })+
        }
    };
}

on_both_engines!(
    every_value_kind_round_trips,
    nulls_round_trip_and_compare,
    returning_gives_the_new_rows,
    on_conflict_updates_with_excluded,
    an_err_from_a_write_rolls_it_back,
    a_read_sees_one_snapshot,
    a_read_cannot_write,
    sums_cast_to_bigint_are_integers,
    query_each_streams_and_may_stop_early,
    migrations_reach_latest_once,
    a_newer_schema_is_refused,
);

/// A table of every kind, in each engine's words for them.
fn kinds_table(db: &Db) {
    let ddl = match db.dialect() {
        Dialect::Sqlite => "CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB) STRICT",
        Dialect::Postgres => {
            "CREATE TABLE kinds (id BIGINT PRIMARY KEY, i BIGINT, r DOUBLE PRECISION, t TEXT, b BYTEA)"
        }
    };
    db.write(|c| c.batch(ddl)).unwrap();
}

fn count(c: &mut dyn Sql, table: &str) -> i64 {
    scalar(c, &format!("SELECT count(*) FROM {table}"), args![]).unwrap().unwrap()
}

fn every_value_kind_round_trips(db: &Db) {
    kinds_table(db);
    let rows = [
        vec![
            Value::Int(1),
            Value::Int(i64::MIN),
            Value::Real(-1.5),
            Value::Text("héllo ✓ '?'".into()),
            Value::Blob(vec![0, 255, 1]),
        ],
        vec![
            Value::Int(2),
            Value::Int(i64::MAX),
            Value::Real(f64::MAX),
            Value::Text(String::new()),
            Value::Blob(Vec::new()),
        ],
        vec![
            Value::Int(3),
            Value::Int(0),
            Value::Real(0.1),
            Value::Text("NIK 1271010101010003".into()),
            Value::Blob(vec![7; 1 << 16]),
        ],
    ];
    db.write(|c| {
        for row in &rows {
            assert_eq!(c.execute("INSERT INTO kinds (id, i, r, t, b) VALUES (?, ?, ?, ?, ?)", row)?, 1);
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db.read(|c| {
        for row in &rows {
            let got = c.query_opt("SELECT id, i, r, t, b FROM kinds WHERE id = ?", &row[..1])?;
            assert_eq!(got, Some(Row(row.clone())));
        }
        let all = c.query("SELECT id FROM kinds WHERE i >= ? AND t <> ? ORDER BY id", args![0, ""])?;
        assert_eq!(all, vec![Row(vec![Value::Int(3)])]);
        // A blob argument compares with a blob column.
        let by_blob: Option<i64> = scalar(c, "SELECT id FROM kinds WHERE b = ?", args![vec![0u8, 255, 1]])?;
        assert_eq!(by_blob, Some(1));
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn nulls_round_trip_and_compare(db: &Db) {
    kinds_table(db);
    db.write(|c| {
        c.execute(
            "INSERT INTO kinds (id, i, r, t, b) VALUES (?, ?, ?, ?, ?)",
            args![1, None::<i64>, None::<f64>, None::<String>, None::<Vec<u8>>],
        )?;
        c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![2, 5])
    })
    .unwrap();
    db.read(|c| {
        let row = c.query_opt("SELECT i, r, t, b FROM kinds WHERE id = ?", args![1])?.unwrap();
        assert_eq!(row, Row(vec![Value::Null; 4]));
        assert_eq!(row.get::<Option<i64>>(0)?, None);
        // A NULL argument: `=` matches nothing, IS NOT DISTINCT FROM matches NULLs.
        assert_eq!(scalar::<i64>(c, "SELECT count(*) FROM kinds WHERE i = ?", args![None::<i64>])?, Some(0));
        let same = "SELECT id FROM kinds WHERE i IS NOT DISTINCT FROM ? ORDER BY id";
        assert_eq!(c.query(same, args![None::<i64>])?, vec![Row(vec![Value::Int(1)])]);
        assert_eq!(c.query(same, args![5])?, vec![Row(vec![Value::Int(2)])]);
        // An aggregate over no rows.
        assert_eq!(scalar::<Option<i64>>(c, "SELECT max(i) FROM kinds WHERE id > ?", args![9])?, Some(None));
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn returning_gives_the_new_rows(db: &Db) {
    let ddl = match db.dialect() {
        Dialect::Sqlite => "CREATE TABLE log (id INTEGER PRIMARY KEY, msg TEXT NOT NULL) STRICT",
        Dialect::Postgres => {
            "CREATE TABLE log (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, msg TEXT NOT NULL)"
        }
    };
    db.write(|c| c.batch(ddl)).unwrap();
    let (first, second, updated) = db
        .write(|c| {
            let first: i64 =
                c.query_opt("INSERT INTO log (msg) VALUES (?) RETURNING id", args!["a"])?.unwrap().get(0)?;
            let second: i64 =
                c.query_opt("INSERT INTO log (msg) VALUES (?) RETURNING id", args!["b"])?.unwrap().get(0)?;
            let updated =
                c.query("UPDATE log SET msg = msg || ? WHERE id >= ? RETURNING id, msg", args!["!", first])?;
            Ok::<_, StoreError>((first, second, updated))
        })
        .unwrap();
    assert!(second > first, "{first} then {second}");
    let mut updated: Vec<(i64, String)> = updated.iter().map(|r| (r.get(0).unwrap(), r.get(1).unwrap())).collect();
    updated.sort();
    assert_eq!(updated, vec![(first, "a!".to_owned()), (second, "b!".to_owned())]);
    // Nothing returned when nothing matched.
    let none = db.write(|c| c.query("DELETE FROM log WHERE id = ? RETURNING id", args![-1])).unwrap();
    assert!(none.is_empty());
}

fn on_conflict_updates_with_excluded(db: &Db) {
    db.write(|c| c.batch("CREATE TABLE counters (k TEXT PRIMARY KEY, n BIGINT NOT NULL, last TEXT)")).unwrap();
    let upsert = "INSERT INTO counters (k, n, last) VALUES (?, ?, ?)
                  ON CONFLICT (k) DO UPDATE SET n = counters.n + excluded.n, last = excluded.last";
    db.write(|c| {
        assert_eq!(c.execute(upsert, args!["a", 2, "x"])?, 1);
        assert_eq!(c.execute(upsert, args!["a", 3, "y"])?, 1);
        c.execute(upsert, args!["b", 1, None::<String>])?;
        // DO NOTHING changes no row.
        assert_eq!(
            c.execute("INSERT INTO counters (k, n) VALUES (?, ?) ON CONFLICT (k) DO NOTHING", args!["a", 100])?,
            0
        );
        Ok::<_, StoreError>(())
    })
    .unwrap();
    let rows = db.read(|c| c.query("SELECT k, n, last FROM counters ORDER BY k", args![])).unwrap();
    assert_eq!(
        rows,
        vec![
            Row(vec![Value::Text("a".into()), Value::Int(5), Value::Text("y".into())]),
            Row(vec![Value::Text("b".into()), Value::Int(1), Value::Null]),
        ]
    );
}

fn an_err_from_a_write_rolls_it_back(db: &Db) {
    kinds_table(db);
    db.write(|c| c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![1, 1])).unwrap();
    let err = db
        .write(|c| {
            c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![2, 2])?;
            c.execute("UPDATE kinds SET i = ? WHERE id = ?", args![10, 1])?;
            Err::<(), _>(StoreError::Invalid("refused".into()))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(ref m) if m == "refused"), "{err:?}");
    // A failed statement is an Err too, and leaves nothing behind.
    let err = db
        .write(|c| {
            c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![3, 3])?;
            c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![1, 1])
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
    let rows = db.read(|c| c.query("SELECT id, i FROM kinds", args![])).unwrap();
    assert_eq!(rows, vec![Row(vec![Value::Int(1), Value::Int(1)])]);
    // The engine is fine afterwards.
    db.write(|c| c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![2, 2])).unwrap();
    assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 2);
}

fn a_read_sees_one_snapshot(db: &Db) {
    kinds_table(db);
    db.write(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args![1])).unwrap();
    let (before, after) = db
        .read(|c| {
            let before = count(c, "kinds");
            // Another connection commits in the middle of this read.
            db.write(|w| w.execute("INSERT INTO kinds (id) VALUES (?)", args![2]))?;
            let after = count(c, "kinds");
            Ok::<_, StoreError>((before, after))
        })
        .unwrap();
    assert_eq!((before, after), (1, 1));
    assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 2);
}

fn a_read_cannot_write(db: &Db) {
    kinds_table(db);
    let err = db.read(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args![1])).unwrap_err();
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
    assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 0);
}

fn sums_cast_to_bigint_are_integers(db: &Db) {
    kinds_table(db);
    db.write(|c| {
        for (id, i) in [(1, 3_000_000_000_000_i64), (2, 4), (3, -1)] {
            c.execute("INSERT INTO kinds (id, i, r) VALUES (?, ?, ?)", args![id, i, 0.5])?;
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db.read(|c| {
        let row =
            c.query_opt("SELECT CAST(sum(i) AS BIGINT), count(*), sum(r) FROM kinds WHERE id > ?", args![0])?.unwrap();
        assert_eq!(row, Row(vec![Value::Int(3_000_000_000_003), Value::Int(3), Value::Real(1.5)]));
        // Over no rows: NULL, not 0.
        let none = scalar::<Option<i64>>(c, "SELECT CAST(sum(i) AS BIGINT) FROM kinds WHERE id > ?", args![9])?;
        assert_eq!(none, Some(None));
        // Integer arithmetic stays integer: a flag's count.
        let flagged: Option<i64> =
            scalar(c, "SELECT CAST(sum(CASE WHEN i > ? THEN 1 ELSE 0 END) AS BIGINT) FROM kinds", args![0])?;
        assert_eq!(flagged, Some(2));
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn query_each_streams_and_may_stop_early(db: &Db) {
    kinds_table(db);
    db.write(|c| {
        for id in 0..5000_i64 {
            c.execute("INSERT INTO kinds (id, t) VALUES (?, ?)", args![id, format!("row {id}")])?;
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db.read(|c| {
        let (mut n, mut sum) = (0_i64, 0_i64);
        c.query_each("SELECT id, t FROM kinds WHERE id >= ? ORDER BY id", args![0], &mut |row| {
            assert_eq!(row.get::<String>(1)?, format!("row {}", row.get::<i64>(0)?));
            n += 1;
            sum += row.get::<i64>(0)?;
            Ok(())
        })?;
        assert_eq!((n, sum), (5000, 4999 * 5000 / 2));
        // The caller's error stops the rows; the transaction goes on.
        let mut seen = 0;
        let err = c
            .query_each("SELECT id FROM kinds ORDER BY id", args![], &mut |_| {
                seen += 1;
                if seen == 3 { Err(StoreError::Invalid("enough".into())) } else { Ok(()) }
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert_eq!(seen, 3);
        assert_eq!(count(c, "kinds"), 5000);
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

fn tables(db: &Db) -> Vec<String> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
        }
    };
    db.read(|c| c.query(sql, args![])).unwrap().iter().map(|r| r.get(0).unwrap()).collect()
}

fn migrations_reach_latest_once(db: &Db) {
    assert_eq!(db.read(migrate::current).unwrap(), 0);
    let applied = migrate::run(db).unwrap();
    assert_eq!((applied.from, applied.to), (0, LATEST));
    assert_eq!(applied.steps.iter().map(|s| s.0).collect::<Vec<_>>(), (1..=LATEST).collect::<Vec<_>>());
    assert_eq!(db.read(migrate::current).unwrap(), LATEST);
    let recorded = db.read(|c| c.query("SELECT version FROM schema_migrations ORDER BY version", args![])).unwrap();
    assert_eq!(recorded.iter().map(|r| r.get::<i64>(0).unwrap()).collect::<Vec<_>>(), (1..=LATEST).collect::<Vec<_>>());
    let tables_then = tables(db);
    for table in ["meta", "docs", "requests", "monthly", "seq_counters", "doc_seq", "login_failures", "login_known"] {
        assert!(tables_then.iter().any(|t| t == table), "{table} missing from {tables_then:?}");
    }
    assert!(!tables_then.iter().any(|t| t == "change_log"), "change_log is gone at version 2");
    // A fresh database gets a cursor partition per kelurahan, starting at 0.
    let (partitions, top) = db
        .read(|c| {
            let row = c
                .query_opt("SELECT count(*), CAST(coalesce(max(seq), 0) AS BIGINT) FROM seq_counters", args![])?
                .unwrap();
            Ok::<_, StoreError>((row.get::<i64>(0)?, row.get::<i64>(1)?))
        })
        .unwrap();
    assert!(partitions > 100, "{partitions} partitions");
    assert_eq!(top, 0);

    let again = migrate::run(db).unwrap();
    assert_eq!(again, migrate::Applied { from: LATEST, to: LATEST, steps: Vec::new() });
    assert_eq!(tables(db), tables_then);
}

fn a_newer_schema_is_refused(db: &Db) {
    migrate::run(db).unwrap();
    db.write(|c| meta_set(c, "schema_version", &(LATEST + 1).to_string())).unwrap();
    let err = migrate::run(db).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(ref m) if m.contains("newer")), "{err:?}");
    // And nothing was touched.
    assert_eq!(db.read(migrate::current).unwrap(), LATEST + 1);
}

// ---- The PostgreSQL engine's own promises ----

/// Opening a migrated PostgreSQL database with `Db::connect`, and refusing
/// one from a newer build there already.
#[test]
fn postgres_connect_migrates_and_refuses_a_newer_schema() {
    let temp = TempDatabase::create();
    let db = Db::connect(&temp.url, 2).unwrap();
    assert_eq!(db.dialect(), Dialect::Postgres);
    assert!(db.sqlite().is_none());
    assert_eq!(db.read(migrate::current).unwrap(), LATEST);
    // Text compares bytewise, as on SQLite, whatever the database's locale.
    let other_collations: i64 = db
        .read(|c| {
            scalar(
                c,
                "SELECT count(*) FROM information_schema.columns
                 WHERE table_schema = current_schema() AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'",
                args![],
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(other_collations, 0);
    db.write(|c| meta_set(c, "schema_version", &(LATEST + 1).to_string())).unwrap();
    drop(db);
    let err = Db::connect(&temp.url, 2).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(ref m) if m.contains("newer")), "{err:?}");
}

/// Two instances migrating one empty database at once: each step once.
#[test]
fn postgres_instances_starting_together_migrate_once() {
    let temp = TempDatabase::create();
    let applied: Vec<migrate::Applied> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let db = Db::connect_unmigrated(&temp.url, 1).unwrap();
                    migrate::run(&db).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut steps: Vec<i64> = applied.iter().flat_map(|a| a.steps.iter().map(|s| s.0)).collect();
    steps.sort_unstable();
    assert_eq!(steps, (1..=LATEST).collect::<Vec<_>>(), "{applied:?}");
    assert!(applied.iter().all(|a| a.to == LATEST), "{applied:?}");
}

#[test]
fn postgres_refuses_values_of_the_wrong_type_by_name() {
    let f = postgres();
    kinds_table(&f.db);
    let err =
        f.db.write(|c| c.execute("INSERT INTO kinds (id, t) VALUES (?, ?)", args![1, 5])).unwrap_err().to_string();
    assert!(err.contains("an integer cannot be sent where PostgreSQL expects text"), "{err}");
    let err =
        f.db.write(|c| c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![1, "5"])).unwrap_err().to_string();
    assert!(err.contains("text cannot be sent where PostgreSQL expects int8"), "{err}");
    let err =
        f.db.write(|c| c.execute("INSERT INTO kinds (id, i) VALUES (?, ?)", args![1, 0.5])).unwrap_err().to_string();
    assert!(err.contains("a real cannot be sent"), "{err}");
    // Narrower integer types get range checks; BOOL takes 0 and 1.
    f.db.read(|c| {
        assert_eq!(scalar::<i64>(c, "SELECT CAST(? AS INTEGER) + 1", args![41])?, Some(42));
        let err = scalar::<i64>(c, "SELECT CAST(? AS SMALLINT)", args![70_000]).unwrap_err().to_string();
        assert!(err.contains("out of range for PostgreSQL int2"), "{err}");
        assert_eq!(scalar::<i64>(c, "SELECT CAST(? AS BOOLEAN)", args![true])?, Some(1));
        assert_eq!(scalar::<i64>(c, "SELECT NOT CAST(? AS BOOLEAN)", args![1])?, Some(0));
        let err = scalar::<i64>(c, "SELECT CAST(? AS BOOLEAN)", args![2]).unwrap_err().to_string();
        assert!(err.contains("out of range for PostgreSQL bool"), "{err}");
        // An integer where a float is expected, when it is exact.
        assert_eq!(scalar::<f64>(c, "SELECT CAST(? AS DOUBLE PRECISION) / 2", args![3])?, Some(1.5));
        Ok::<_, StoreError>(())
    })
    .unwrap();
}

#[test]
fn postgres_says_to_cast_a_numeric_sum() {
    let f = postgres();
    kinds_table(&f.db);
    let err = f.db.read(|c| c.query("SELECT sum(i) FROM kinds", args![])).unwrap_err().to_string();
    assert!(err.contains("CAST(… AS BIGINT)"), "{err}");
}

#[test]
fn postgres_errors_carry_the_sqlstate_and_no_values() {
    let f = postgres();
    f.db.write(|c| c.batch("CREATE TABLE people (nik TEXT PRIMARY KEY)")).unwrap();
    f.db.write(|c| c.execute("INSERT INTO people (nik) VALUES (?)", args!["1271010101010003"])).unwrap();
    let err = f.db.write(|c| c.execute("INSERT INTO people (nik) VALUES (?)", args!["1271010101010003"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
    assert!(text.contains("SQLSTATE 23505") && text.contains("people_pkey"), "{text}");
    assert!(!text.contains("1271010101010003"), "the duplicate key is not quoted: {text}");
    let err = f.db.read(|c| c.query("SELECT nope FROM people", args![])).unwrap_err().to_string();
    assert!(err.contains("SQLSTATE 42703"), "{err}");
}

/// A closure that swallows a failed statement and returns `Ok` must not
/// commit what it did before (PostgreSQL has aborted the transaction).
#[test]
fn postgres_a_swallowed_failure_still_fails_the_write() {
    let f = postgres();
    kinds_table(&f.db);
    f.db.write(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args![1])).unwrap();
    let err =
        f.db.write(|c| {
            c.execute("INSERT INTO kinds (id) VALUES (?)", args![2])?;
            let _ignored = c.execute("INSERT INTO kinds (id) VALUES (?)", args![1]);
            Ok::<_, StoreError>(())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing was committed") && err.contains("23505"), "{err}");
    assert_eq!(f.db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 1);
}

/// With one connection, every use after a failure proves it came back
/// clean: a connection left inside an aborted (or open) transaction would
/// fail the next `BEGIN` or see stale data.
#[test]
fn postgres_a_failed_or_panicked_transaction_never_returns_a_dirty_connection() {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 1).unwrap();
    kinds_table(&db);
    // A failed statement, propagated.
    let _ = db.write(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args!["not a number"]));
    let _ = db.write(|c| c.execute("INSERT INTO nowhere (id) VALUES (?)", args![1]));
    db.write(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args![1])).unwrap();
    // A failed read.
    let _ = db.read(|c| c.query("SELECT nope FROM kinds", args![]));
    assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 1);
    // A panic in the middle of a write.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.write(|c| {
            c.execute("INSERT INTO kinds (id) VALUES (?)", args![2])?;
            panic!("in the middle of a write");
            #[allow(unreachable_code)]
            Ok::<_, StoreError>(())
        })
    }));
    assert!(panicked.is_err());
    db.write(|c| c.execute("INSERT INTO kinds (id) VALUES (?)", args![3])).unwrap();
    let ids = db.read(|c| c.query("SELECT id FROM kinds ORDER BY id", args![])).unwrap();
    assert_eq!(ids, vec![Row(vec![Value::Int(1)]), Row(vec![Value::Int(3)])]);
}

/// A connection the server closed (a restart) is replaced, not handed to
/// the caller as an error.
#[test]
fn postgres_a_connection_killed_while_idle_is_replaced() {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 2).unwrap();
    kinds_table(&db);
    let pid: i64 = db.read(|c| scalar(c, "SELECT pg_backend_pid()", args![])).unwrap().unwrap();
    let pid = i32::try_from(pid).unwrap();
    // Waits (up to 5 s) until the backend is gone.
    let gone: bool =
        admin_client(&test_url()).query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid]).unwrap().get(0);
    assert!(gone);
    for _ in 0..3 {
        assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 0);
    }
}

#[test]
fn postgres_hot_statements_are_prepared_once_per_connection() {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 1).unwrap();
    let prepared = |db: &Db| -> i64 {
        db.read(|c| {
            scalar(c, "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1 + 0%'", args![])
        })
        .unwrap()
        .unwrap()
    };
    for i in 0..20 {
        let v: Option<i64> = db.read(|c| scalar(c, "SELECT ? + 0 AS echo", args![i])).unwrap();
        assert_eq!(v, Some(i));
    }
    assert_eq!(prepared(&db), 1);
}

#[test]
fn postgres_pool_exhaustion_is_unavailable_after_the_timeout() {
    let temp = TempDatabase::create();
    let pg = PgDb::connect_with(&temp.url, 1, Duration::from_millis(200)).unwrap();
    let err = pg
        .read(|_| {
            // The only connection is held by this read.
            Ok::<_, StoreError>(pg.read(|_| Ok::<_, StoreError>(())).unwrap_err())
        })
        .unwrap();
    assert!(matches!(err, StoreError::Unavailable(ref m) if m.contains("no PostgreSQL connection")), "{err:?}");
}

#[test]
fn postgres_unreachable_is_unavailable_and_never_shows_the_password() {
    // Port 1 on localhost: refused at once.
    let err = Db::connect_unmigrated("postgres://loket:s3cret@127.0.0.1:1/loket?connect_timeout=2", 1).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(text.contains("postgres://loket@127.0.0.1:1/loket"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let err = Db::connect_unmigrated("postgres://loket:s3cret@127.0.0.1:1/loket", 0).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = Db::connect_unmigrated("postgres://loket:s3cret@127.0.0.1:notaport/loket", 1).unwrap_err().to_string();
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn postgres_describe_names_the_database_without_the_password() {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 1).unwrap();
    let shown = db.describe();
    assert!(shown.starts_with("postgres://") && shown.ends_with(&format!("/{}", temp.name)), "{shown}");
    assert_eq!(PgDb::describe_url("postgres://u:pw@db.example:6543/loket"), "postgres://u@db.example:6543/loket");
    assert_eq!(
        PgDb::describe_url("host=/run/postgresql user=u password=pw dbname=x"),
        "postgres://u@/run/postgresql:5432/x"
    );
    assert_eq!(PgDb::describe_url("not a url"), "postgres://(unparsable URL)");
}

#[test]
fn with_database_replaces_only_the_name() {
    assert_eq!(with_database("postgres://p@127.0.0.1:5432/test", "x"), "postgres://p@127.0.0.1:5432/x");
    assert_eq!(with_database("postgres://p@h/test?sslmode=disable", "x"), "postgres://p@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://p@h", "x"), "postgres://p@h/x");
}

/// The server's state (and so its `Db`) may be dropped last inside the
/// async runtime, where closing a client inline would panic (it blocks on
/// a runtime of its own).
#[test]
fn postgres_the_last_handle_may_be_dropped_inside_a_runtime() {
    let temp = TempDatabase::create();
    let db = Db::connect_unmigrated(&temp.url, 2).unwrap();
    kinds_table(&db);
    assert_eq!(db.read(|c| Ok::<_, StoreError>(count(c, "kinds"))).unwrap(), 0);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move { drop(db) });
}

/// A store made before 8 KiB pages keeps its 4 KiB ones while the server
/// has it open (the rewrite says so and loses nothing), and takes 8 KiB
/// ones from a vacuum with nothing else holding the file; a new store has
/// them from the start. Either way the file stays in WAL and whole.
#[test]
fn sqlite_vacuum_gives_an_old_store_larger_pages_only_when_alone() {
    use super::sqlite::{PAGE_SIZE, vacuum};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let pragma = |path: &std::path::Path, name: &str| -> String {
        let c = rusqlite::Connection::open(path).unwrap();
        c.pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    };
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE made_before (x)").unwrap();
    }
    let db = Db::open(&path).unwrap();
    db.write(|c| super::meta_set(c, "kept", "yes")).unwrap();
    assert_eq!(pragma(&path, "page_size"), "4096", "opening does not change an existing store's pages");

    // The server still has it open: rewritten at the size it has.
    assert_eq!(vacuum(&path).unwrap(), 4096);
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    assert_eq!(db.read(|c| super::meta_get(c, "kept")).unwrap().as_deref(), Some("yes"));
    drop(db);

    // Nothing else has it: 8 KiB pages, back in WAL, every row there.
    assert_eq!(vacuum(&path).unwrap(), PAGE_SIZE);
    assert_eq!(pragma(&path, "page_size"), PAGE_SIZE.to_string());
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    let db = Db::open(&path).unwrap();
    assert_eq!(db.read(|c| super::meta_get(c, "kept")).unwrap().as_deref(), Some("yes"));
    assert_eq!(db.sqlite().unwrap().quick_check().unwrap(), Vec::<String>::new());
    drop(db);

    let fresh = dir.path().join("fresh.db");
    drop(Db::open(&fresh).unwrap());
    assert_eq!(pragma(&fresh, "page_size"), PAGE_SIZE.to_string(), "a new store");
}

/// Version 24 rebuilds `docs` without a rowid: every document and every
/// chunk of a store from before comes through, byte for byte, and
/// `chunks` still refers to `docs` (a chunk of no document is refused).
#[test]
fn sqlite_v24_keeps_every_document_and_chunk() {
    let f = sqlite();
    let db = &f.db;
    for m in super::schema::SQLITE.iter().filter(|m| m.version < 24) {
        db.write(|tx| {
            (m.run)(tx)?;
            meta_set(tx, "schema_version", &m.version.to_string())
        })
        .unwrap();
    }
    let dump = |db: &Db| {
        db.read(|c| {
            let docs = c
                .query(
                    "SELECT doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads, first_received_ms,
                            last_received_ms FROM docs ORDER BY doc_id",
                    args![],
                )?
                .into_iter()
                .map(|r| {
                    Ok(format!(
                        "{:?}",
                        (
                            (r.get::<String>(0)?, r.get::<String>(1)?, r.get::<Option<String>>(2)?),
                            (r.get::<Option<Vec<u8>>>(3)?, r.get::<i64>(4)?, r.get::<i64>(5)?),
                            (r.get::<Option<Vec<u8>>>(6)?, r.get::<Option<i64>>(7)?, r.get::<Option<i64>>(8)?),
                        )
                    ))
                })
                .collect::<Result<Vec<String>, StoreError>>()?;
            let chunks = c
                .query("SELECT id, doc_id, data FROM chunks ORDER BY id", args![])?
                .into_iter()
                .map(|r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<Vec<u8>>(2)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok::<_, StoreError>((docs, chunks))
        })
        .unwrap()
    };
    db.write(|c| {
        c.batch(
            "INSERT INTO docs (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads,
                               first_received_ms, last_received_ms)
             VALUES ('b-request', 'request', '12.71.01.1001', x'28b52ffd01', 2, 7, x'0102', 10, 20),
                    ('a-catalog', 'catalog', NULL, NULL, 0, 3, NULL, NULL, NULL);
             INSERT INTO chunks (id, doc_id, data) VALUES (5, 'b-request', x'aa'), (9, 'b-request', x'bbcc');",
        )
    })
    .unwrap();
    let before = dump(db);
    assert_eq!((before.0.len(), before.1.len()), (2, 2));
    let applied = migrate::run(db).unwrap();
    assert_eq!(applied.steps.first().map(|s| s.0), Some(24), "{applied:?}");
    assert_eq!(dump(db), before);
    let sql: Option<String> = db
        .read(|c| scalar(c, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'", args![]))
        .unwrap();
    assert!(sql.unwrap_or_default().contains("WITHOUT ROWID"));
    let orphan = db.write(|c| c.execute("INSERT INTO chunks (doc_id, data) VALUES ('none', x'00')", args![]));
    assert!(orphan.is_err(), "chunks still refers to docs");
    assert_eq!(db.sqlite().unwrap().quick_check().unwrap(), Vec::<String>::new());
}
