//! The per-test PostgreSQL database (`loket_tests::postgres`): each is
//! its own, it is gone after its drop even with a connection still open,
//! and both ends work from inside a tokio runtime. Needs the server that
//! `tests/run` sets up (`LOKET_TEST_DATABASE_URL`).

use std::sync::mpsc;

use loket_tests::postgres::{DATABASE_URL_VAR, TestDatabase};

/// Runs `work` with a client of its own on a plain thread (the sync
/// client must not run on a tokio runtime's thread).
fn with_client<T: Send + 'static>(url: &str, work: impl FnOnce(&mut postgres::Client) -> T + Send + 'static) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        work(&mut client)
    })
    .join()
    .unwrap()
}

fn databases_named(names: &[String]) -> Vec<String> {
    let admin = std::env::var(DATABASE_URL_VAR).expect("set by tests/run");
    let names = names.to_vec();
    with_client(&admin, move |c| {
        c.query("SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname", &[&names])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_test_gets_its_own_database_and_it_is_gone_after_the_drop() {
    let a = TestDatabase::create("proof");
    let b = TestDatabase::create("proof");
    assert_ne!(a.name(), b.name());
    assert_ne!(a.url(), b.url());
    assert!(a.name().starts_with("loket_proof_"), "{}", a.name());
    let names = vec![a.name().to_owned(), b.name().to_owned()];
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(databases_named(&names), sorted);

    // Each URL leads to its own database: a table made in one is not in the other.
    let a_name = a.name().to_owned();
    let seen = with_client(a.url(), move |c| {
        c.batch_execute("CREATE TABLE marker (n int); INSERT INTO marker VALUES (1)").unwrap();
        let db: String = c.query_one("SELECT current_database()", &[]).unwrap().get(0);
        assert_eq!(db, a_name);
        c.query_one("SELECT count(*) FROM marker", &[]).unwrap().get::<_, i64>(0)
    });
    assert_eq!(seen, 1);
    let b_name = b.name().to_owned();
    let in_b = with_client(b.url(), move |c| {
        let db: String = c.query_one("SELECT current_database()", &[]).unwrap().get(0);
        assert_eq!(db, b_name);
        c.query_one("SELECT to_regclass('marker') IS NOT NULL", &[]).unwrap().get::<_, bool>(0)
    });
    assert!(!in_b, "the table made in one test database shows in another");

    // A connection left open (a killed server's, say) does not keep the
    // database: the drop, here on a runtime thread, ends it.
    let (connected_tx, connected) = mpsc::channel();
    let (dropped, dropped_rx) = mpsc::channel::<()>();
    let url = a.url().to_owned();
    let holder = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        connected_tx.send(()).unwrap();
        dropped_rx.recv().unwrap();
        client.simple_query("SELECT 1").is_err()
    });
    connected.recv().unwrap();
    drop(a);
    dropped.send(()).unwrap();
    assert!(holder.join().unwrap(), "the open connection outlived its database");
    assert_eq!(databases_named(&names), vec![names[1].clone()]);

    drop(b);
    assert_eq!(databases_named(&names), Vec::<String>::new());
}

#[test]
fn a_server_that_does_not_answer_fails_and_says_what_to_run() {
    let err = TestDatabase::try_create_in("postgres://postgres@127.0.0.1:1/test", "unreachable").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("tests/run"), "{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
}
