//! Makes the upgrade fixture (issue 18, item 3; `loket_tests::upgrade`):
//! a release's binaries live through a realistic day at two offices
//! (`loket_tests::day`), their figures are read through the API, the
//! processes stop cleanly, and the folder with `figures.json` is packed.
//!
//! ```sh
//! git worktree add /tmp/release <commit>
//! (cd /tmp/release && cargo build -p loket-sync-server -p loket-kiosk --bins)
//! LOKET_TEST_SERVER_BIN=/tmp/release/target/debug/sync-server \
//! LOKET_TEST_KIOSK_BIN=/tmp/release/target/debug/kiosk \
//!   cargo run -p loket-tests --bin loket-upgrade-fixture -- \
//!   --release <commit> --out tests/fixtures/upgrade/release-<commit>.tar.zst
//! # the server's store in PostgreSQL, on another port (the two fixture
//! # tests run side by side):
//! ... --database postgres://postgres@127.0.0.1:5432/test --listen 127.0.0.1:29418 \
//!   --out tests/fixtures/upgrade/release-<commit>-postgres.tar.zst
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use loket_tests::day::{self, DayOptions, LALANG, PASAR_BARU};
use loket_tests::server::server_bin;
use loket_tests::upgrade;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Packs the stores a release's binaries write during a day, with the figures they showed")]
struct Args {
    /// The commit the binaries were built from (recorded in the fixture).
    #[arg(long)]
    release: String,
    /// The .tar.zst to write.
    #[arg(long)]
    out: PathBuf,
    /// Requests filed at each of the two offices.
    #[arg(long, default_value_t = 12)]
    requests: usize,
    /// The release's binaries know agency units with a region
    /// (`add-user --region`, from schema version 8 on).
    #[arg(long)]
    regional_units: bool,
    /// Where the server listens during the day, and again in the test: a
    /// port below the ephemeral range (32768 and up), which no outgoing
    /// connection of another test can be holding then.
    #[arg(long, default_value = "127.0.0.1:29417")]
    listen: std::net::SocketAddr,
    /// The server's store on PostgreSQL: a fresh database made on the
    /// server of this URL (a role that may create databases), dumped into
    /// the fixture as `server.sql` (`pg_dump`) and dropped.
    #[arg(long)]
    database: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let version = std::process::Command::new(server_bin()).arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    eprintln!("{version}: a day of {} requests at each of two offices…", args.requests);
    let database = args
        .database
        .as_deref()
        .map(|base| loket_tests::postgres::TestDatabase::try_create_in(base, "upgrade_fixture"))
        .transpose()?;
    let options = DayOptions {
        regional_units: args.regional_units,
        listen: Some(args.listen),
        database: database.as_ref().map(|d| d.url().to_owned()),
    };
    let d = day::realistic_day_with("upgrade-fixture", args.requests, options).await?;
    let server = upgrade::server_figures(&d.server, &d.admin).await?;
    let mut kiosks = serde_json::Map::new();
    for (k, kelurahan) in d.kiosks.iter().zip([PASAR_BARU, LALANG]) {
        let tickets = upgrade::complaint_tickets(&server, kelurahan);
        kiosks.insert(kelurahan.to_owned(), upgrade::kiosk_figures(k, kelurahan, &tickets).await?);
    }
    let addr = d.server.addr().to_string();
    let dir = d.stop_and_keep()?;
    let figures = json!({
        "release": args.release,
        "version": version,
        // Kiosks keep the server's URL from their enrollment: the test
        // serves the stores on this address again.
        "server_addr": addr,
        "server": server,
        "kiosks": kiosks,
    });
    std::fs::write(dir.join("figures.json"), serde_json::to_vec_pretty(&figures)?)?;
    if let Some(db) = &database {
        // The database as the release left it; the test loads it into one
        // of its own and names that in `server/database.url`.
        let dump = std::process::Command::new("pg_dump")
            .args(["--no-owner", "--no-privileges", "--dbname", db.url()])
            .output()
            .context("running pg_dump")?;
        anyhow::ensure!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
        std::fs::write(dir.join("server.sql"), dump.stdout)?;
        std::fs::remove_file(dir.join("server").join("database.url"))?;
    }
    // Logs and password files are the day's, not the release's stores.
    for entry in upgrade::files(&dir)? {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".log") || name.ends_with(".pw") || name.ends_with(".adminpw") {
            std::fs::remove_file(&entry)?;
        }
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    upgrade::pack(&dir, &args.out)?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), std::fs::metadata(&args.out)?.len());
    Ok(())
}
