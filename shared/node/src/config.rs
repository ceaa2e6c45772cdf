//! Layered configuration, the same for every binary: the config type's
//! `Default`, then a TOML file, then environment variables with the
//! binary's prefix (`LOKET_KIOSK_LISTEN`), then command-line flags. Each
//! layer overrides the keys it names and nothing else.
//!
//! Invariants (for the loader; the binary's own `check` judges values):
//! - An explicit file (`--config`) that does not exist is an error; the
//!   data directory's default file is read only if it exists.
//! - The config type must carry `#[serde(deny_unknown_fields, default)]`:
//!   a misspelt key, in the file or as a prefixed variable, is refused
//!   rather than silently ignored.
//! - Flags serialize only the values the user gave
//!   (`skip_serializing_if = "Option::is_none"`), so an absent flag does
//!   not reset a key to its default.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where one binary's configuration comes from.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// A file named on the command line (`--config`): must exist.
    pub file: Option<&'a Path>,
    /// The file used without `--config` (`DATA/kiosk.toml`), if it exists.
    pub default_file: Option<PathBuf>,
    /// Prefix of the environment variables (`LOKET_KIOSK_`).
    pub env_prefix: &'a str,
    /// What is read, for the error's context (`kiosk configuration`
    /// gives "reading kiosk configuration").
    pub what: &'a str,
}

/// Loads `C` from its default, the file, the environment and `flags`, in
/// that order (later layers win).
pub fn load<C>(sources: &Sources<'_>, flags: &impl Serialize) -> anyhow::Result<C>
where
    C: Default + Serialize + DeserializeOwned,
{
    let mut fig = Figment::from(Serialized::defaults(C::default()));
    let implicit = sources.default_file.clone().filter(|p| p.exists());
    if let Some(path) = sources.file.map(Path::to_path_buf).or(implicit) {
        anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
        fig = fig.merge(Toml::file(&path));
    }
    fig = fig.merge(Env::prefixed(sources.env_prefix)).merge(Serialized::defaults(flags));
    fig.extract().with_context(|| format!("reading {}", sources.what))
}

/// Durations in config files and variables are whole seconds
/// (`staff_session_ttl = 43200`): `#[serde(with = "loket_node::config::secs")]`.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
// `Jail::expect_with` takes figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use figment::Jail;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct TestConfig {
        data: PathBuf,
        listen: SocketAddr,
        #[serde(with = "secs")]
        ttl: Duration,
        name: String,
    }

    impl Default for TestConfig {
        fn default() -> Self {
            TestConfig {
                data: PathBuf::from("data"),
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                ttl: Duration::from_secs(60),
                name: "default".into(),
            }
        }
    }

    #[derive(Default, Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<PathBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        listen: Option<SocketAddr>,
    }

    fn sources<'a>(file: Option<&'a Path>, default_file: Option<PathBuf>) -> Sources<'a> {
        Sources { file, default_file, env_prefix: "LOKET_NODE_TEST_", what: "test configuration" }
    }

    /// Each layer overrides only what it names: flags over the
    /// environment over the file over the defaults.
    #[test]
    fn layers_override_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file("node.toml", "listen = \"127.0.0.1:1\"\nttl = 600\nname = \"file\"\n")?;
            jail.set_env("LOKET_NODE_TEST_NAME", "env");
            jail.set_env("LOKET_NODE_TEST_TTL", "700");
            let flags = Flags { listen: Some("127.0.0.1:2".parse().unwrap()), ..Flags::default() };
            let dir = jail.directory().to_path_buf();
            let c: TestConfig = load(&sources(None, Some(dir.join("node.toml"))), &flags).unwrap();
            assert_eq!(c.listen, "127.0.0.1:2".parse().unwrap(), "flag over file");
            assert_eq!(c.ttl, Duration::from_secs(700), "environment over file");
            assert_eq!(c.name, "env");
            assert_eq!(c.data, PathBuf::from("data"), "an absent flag keeps the default");
            Ok(())
        });
    }

    #[test]
    fn a_missing_default_file_is_skipped_a_missing_explicit_one_is_an_error() {
        Jail::expect_with(|jail| {
            let dir = jail.directory().to_path_buf();
            let c: TestConfig = load(&sources(None, Some(dir.join("absent.toml"))), &Flags::default()).unwrap();
            assert_eq!(c, TestConfig::default());
            let absent = dir.join("absent.toml");
            let err = load::<TestConfig>(&sources(Some(&absent), None), &Flags::default()).unwrap_err();
            assert!(err.to_string().contains("does not exist"), "{err}");
            Ok(())
        });
    }

    /// A misspelt key is refused wherever it comes from, with the context.
    #[test]
    fn unknown_keys_are_refused_in_the_file_and_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("node.toml", "lisen = \"127.0.0.1:1\"\n")?;
            let file = jail.directory().join("node.toml");
            let err = load::<TestConfig>(&sources(Some(&file), None), &Flags::default()).unwrap_err();
            assert_eq!(err.to_string(), "reading test configuration");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("LOKET_NODE_TEST_LISEN", "127.0.0.1:1");
            assert!(load::<TestConfig>(&sources(None, None), &Flags::default()).is_err());
            Ok(())
        });
    }
}
