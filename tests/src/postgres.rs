//! A fresh PostgreSQL database for one test: `TestDatabase::create("hint")`
//! creates `loket_<hint>_<16 random hex digits>` on the server that
//! `LOKET_TEST_DATABASE_URL` points at (`tests/run` sets it, by default to
//! `postgres://postgres@127.0.0.1:5432/test`), hands out its URL, and
//! drops it (`WITH (FORCE)`, so connections a killed process left open do
//! not keep it) when the `TestDatabase` is dropped. Tests in parallel never
//! share a database, and a run leaves none behind.
//!
//! There is no silent skip: without the variable, or without a server that
//! answers, `create` fails the test and says to run `tests/run`.
//!
//! The `postgres` client is synchronous and runs its own small tokio
//! runtime, which panics inside another runtime's thread. Every call here
//! therefore runs on a thread of its own, so `create` and the drop are
//! safe in `#[tokio::test]` functions too (they block the calling thread
//! for the few milliseconds a `CREATE DATABASE` takes).

use std::time::Duration;

use anyhow::{Context, bail};

/// The variable that names the server (and a database on it that the
/// role can connect to) where test databases are created.
pub const DATABASE_URL_VAR: &str = "LOKET_TEST_DATABASE_URL";

/// How long to wait for the server before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
const NAME_BYTES_MAX: usize = 63;

/// A database of one test's own, dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    /// Where it was created from, and is dropped from.
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server of `LOKET_TEST_DATABASE_URL`;
    /// `name_hint` (the test's name, say) goes into its name, reduced to
    /// lower-case letters, digits and `_`. Panics, and so fails the test,
    /// with what to do when the variable is unset or the server does not
    /// answer.
    pub fn create(name_hint: &str) -> TestDatabase {
        let base = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{DATABASE_URL_VAR} is not set: run the tests with `tests/run`, which installs and starts \
                 PostgreSQL and sets it (or set it yourself to a PostgreSQL URL whose role may create \
                 databases, e.g. postgres://postgres@127.0.0.1:5432/test)"
            )
        });
        match TestDatabase::try_create_in(&base, name_hint) {
            Ok(db) => db,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// [`TestDatabase::create`] on the server of `base_url`, with the
    /// failure as an error.
    pub fn try_create_in(base_url: &str, name_hint: &str) -> anyhow::Result<TestDatabase> {
        let name = database_name(name_hint, rand::random());
        let url = with_database(base_url, &name)?;
        let admin_url = base_url.to_owned();
        let sql = format!("CREATE DATABASE \"{name}\"");
        off_runtime(move || -> anyhow::Result<()> {
            let mut client = connect(&admin_url)?;
            client.batch_execute(&sql).with_context(|| format!("{sql} on {}", without_password(&admin_url)))?;
            Ok(())
        })?;
        Ok(TestDatabase { name, url, admin_url: base_url.to_owned() })
    }

    /// The database's name (`loket_<hint>_<hex>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the database: `LOKET_TEST_DATABASE_URL` with this
    /// database's name in place of its own.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl TestDatabase {
    /// The database's size on disk (`pg_database_size`), for benchmarks.
    pub fn size_bytes(&self) -> anyhow::Result<u64> {
        let (url, name) = (self.url.clone(), self.name.clone());
        off_runtime(move || -> anyhow::Result<u64> {
            let mut client = connect(&url)?;
            let n: i64 = client.query_one("SELECT pg_database_size($1)", &[&name])?.get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Whether the database accepts connections (`ALLOW_CONNECTIONS`);
    /// closing it also ends every connection it has: the database "goes
    /// away" for the servers using it, as when its host fails.
    pub fn set_accepting(&self, accepting: bool) -> anyhow::Result<()> {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        off_runtime(move || -> anyhow::Result<()> {
            let mut client = connect(&admin_url)?;
            client.batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {accepting}"))?;
            if !accepting {
                client
                    .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&name])?;
            }
            Ok(())
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let admin_url = self.admin_url.clone();
        let dropped = off_runtime(move || -> anyhow::Result<()> {
            let mut client = connect(&admin_url)?;
            client.batch_execute(&sql).with_context(|| sql.clone())?;
            Ok(())
        });
        if let Err(e) = dropped {
            // Failing the test is right (a run must leave nothing behind),
            // but a panic while already unwinding would abort the process
            // and hide the first failure.
            if std::thread::panicking() {
                eprintln!("could not drop test database {}: {e:#}", self.name);
            } else {
                panic!("could not drop test database {}: {e:#}", self.name);
            }
        }
    }
}

/// Runs `work` on a thread of its own and waits for it: the `postgres`
/// client's own runtime must not start on a tokio runtime's thread. A
/// panic in `work` carries on in the caller.
fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn connect(url: &str) -> anyhow::Result<postgres::Client> {
    let shown = without_password(url);
    let mut config: postgres::Config =
        url.parse().with_context(|| format!("{DATABASE_URL_VAR}={shown} is not a PostgreSQL URL"))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.connect(postgres::NoTls).with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {shown}: run the tests with `tests/run`, which installs and \
             starts PostgreSQL on 127.0.0.1:5432 and sets {DATABASE_URL_VAR}"
        )
    })
}

/// `loket_<hint>_<hex>`, within PostgreSQL's 63 bytes, of characters that
/// need no quoting care.
fn database_name(hint: &str, random: u64) -> String {
    let suffix = format!("_{random:016x}");
    let mut hint: String =
        hint.chars().map(|c| c.to_ascii_lowercase()).map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    hint.truncate(NAME_BYTES_MAX - "loket_".len() - suffix.len());
    format!("loket_{hint}{suffix}")
}

/// `base` (a `postgres://` or `postgresql://` URL) with `database` as its
/// path, the query (`?sslmode=…`) kept.
fn with_database(base: &str, database: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = base.split_once("://") else {
        bail!("{DATABASE_URL_VAR} must be a postgres:// URL, not {:?}", without_password(base));
    };
    if scheme != "postgres" && scheme != "postgresql" {
        bail!("{DATABASE_URL_VAR} must be a postgres:// URL, not {}", without_password(base));
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split_once('/').map_or(before_query, |(authority, _)| authority);
    let mut url = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// The URL as it may appear in a message.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_and_unique() {
        assert_eq!(database_name("sync e2e/Kiosk-1", 0xab), "loket_sync_e2e_kiosk_1_00000000000000ab");
        let long = database_name(&"x".repeat(200), u64::MAX);
        assert_eq!(long.len(), NAME_BYTES_MAX);
        assert!(long.ends_with("_ffffffffffffffff"), "{long}");
        assert_eq!(database_name("ñ", 1), "loket___0000000000000001");
    }

    #[test]
    fn the_url_names_the_new_database() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/d"),
            ("postgresql://u:p%2Fw@db:5433/test?sslmode=disable", "postgresql://u:p%2Fw@db:5433/d?sslmode=disable"),
            ("postgres://postgres@127.0.0.1", "postgres://postgres@127.0.0.1/d"),
            ("postgres://h?connect_timeout=3", "postgres://h/d?connect_timeout=3"),
        ];
        for (base, want) in cases {
            assert_eq!(with_database(base, "d").unwrap(), want, "{base}");
        }
        assert!(with_database("host=127.0.0.1 user=postgres", "d").is_err());
        assert!(with_database("mysql://root@127.0.0.1/test", "d").is_err());
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(without_password("postgres://u:secret@h:1/db?x=1"), "postgres://u:***@h:1/db?x=1");
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(without_password("host=h password=secret"), "(not a URL)");
    }
}
