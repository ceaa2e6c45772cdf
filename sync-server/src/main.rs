//! `sync-server`: the command line over the `loket_sync_server` library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loket_node::telemetry::{init_tracing, shutdown_signal};
use loket_shared::KelurahanCode;
use loket_sync_server::auth::{Role, Username};
use loket_sync_server::config::{CliOverrides, Config};
use loket_sync_server::setup::{self, InitArgs, NewUser, Place};
use loket_sync_server::{Server, web};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sync-server", version = loket_sync_server::VERSION, about = "Loket central sync server: enrolls kiosks and merges their data")]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "LOKET_LOG_JSON")]
    log_json: bool,
    /// A PostgreSQL URL (`postgres://user@host:5432/db`) for the store.
    /// For `init`: keep the store there (written to DATA/database.url).
    /// For the other commands: use it instead of DATA/database.url.
    #[arg(long, global = true, env = "LOKET_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the store, a private CA and server certificate under DATA/tls/
    /// (kiosks pin DATA/tls/ca.pem), and the first admin.
    Init {
        /// Directory for the server's data (created, mode 0700).
        #[arg(long)]
        data: PathBuf,
        /// Username of the first admin.
        #[arg(long)]
        admin_user: Username,
        /// File whose first line is the admin's password (at least 10 characters).
        #[arg(long)]
        admin_password_file: PathBuf,
        /// A name or IP address kiosks reach the server by (repeatable);
        /// localhost and 127.0.0.1 are always included.
        #[arg(long)]
        hostname: Vec<String>,
    },
    /// Bring the store to this build's schema (also done at every start);
    /// a store written by a newer build is refused.
    Migrate {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
    },
    /// Make another instance's directory for the same PostgreSQL database:
    /// its database URL and a server certificate signed by this server's CA
    /// (the CA's key stays in DATA). Kiosks pinning ca.pem trust it too.
    AddInstance {
        /// Directory of an initialised server (with tls/ca-key.pem).
        #[arg(long)]
        data: PathBuf,
        /// Directory to create for the new instance.
        #[arg(long)]
        out: PathBuf,
        /// A name or IP address kiosks reach the new instance by (repeatable).
        #[arg(long)]
        hostname: Vec<String>,
    },
    /// Copy an SQLite server's store into an empty PostgreSQL database,
    /// check every table and document, and point DATA at it (stop the
    /// server first; server.db stays, unused, as a backup).
    MigrateStore {
        /// Directory of the SQLite server.
        #[arg(long)]
        data: PathBuf,
        /// The PostgreSQL URL to move to (an empty database).
        #[arg(long)]
        to: String,
    },
    /// Write a backup of DATA to a new file while the server serves: a
    /// consistent snapshot of the SQLite store and the TLS keys,
    /// certificates and configuration. On PostgreSQL the database is backed
    /// up with pg_dump; this saves DATA's files.
    Backup {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        /// The backup file to create (refused if it exists), e.g.
        /// /var/backups/loket/server-2026-12-04.tar.zst.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new (or empty) data directory, checked
    /// before anything is put in place. Kiosks that synced after the backup
    /// push again what it lacks.
    Restore {
        /// The backup file (from `sync-server backup`).
        #[arg(long)]
        from: PathBuf,
        /// The directory to restore into: must not exist or be empty.
        #[arg(long)]
        data: PathBuf,
    },
    /// Serve HTTPS (sync, web app, API) until SIGTERM or Ctrl-C.
    Serve {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on, e.g. 0.0.0.0:8443 (127.0.0.1:0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Configuration file; DATA/server.toml if present.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a one-time enrollment code for a kiosk of a kelurahan.
    EnrollCode {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        /// Kemendagri code of the kelurahan, e.g. 12.71.01.1001.
        #[arg(long)]
        kelurahan: KelurahanCode,
        /// How long the code stays valid, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
    /// Revoke a kiosk's credential; it is refused from its next request on.
    Revoke {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        /// The kiosk's code (K001) or id.
        #[arg(long)]
        kiosk: String,
    },
    /// Rewrite every request's projection (finish time, working time,
    /// masked name and NIK, rollups) and every complaint's from its
    /// document, after an upgrade.
    Reproject {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
    },
    /// Fold every stored document's chunks into one snapshot now (the
    /// server also does it in the background, a little at a time). Safe
    /// while the server runs.
    Compact {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        /// SQLite: rewrite the file afterwards to give the freed space back
        /// to the file system (needs as much free space again as the file).
        #[arg(long)]
        vacuum: bool,
    },
    /// Disable a user of the central app: their sessions end at once and
    /// they cannot log in (audited; works while the server runs).
    DisableUser {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        username: Username,
        /// Why, for the audit log.
        #[arg(long, default_value = "disabled from the command line")]
        reason: String,
    },
    /// Enable a disabled user again (audited).
    EnableUser {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        username: Username,
        /// Why, for the audit log.
        #[arg(long, default_value = "enabled from the command line")]
        reason: String,
    },
    /// Record the staff id (NIP) of a central user who is also on a
    /// kelurahan's staff: a complaint about that person never shows them
    /// who complained, and they cannot act on it.
    SetStaffId {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        username: Username,
        /// The NIP (or PPPK or NA- id); leave out to clear it.
        #[arg(long)]
        staff_id: Option<loket_shared::StaffId>,
    },
    /// Add a user of the central app (admin, agency or supervisor).
    AddUser {
        /// Directory holding the server's data.
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        username: Username,
        /// admin, agency or supervisor.
        #[arg(long)]
        role: Role,
        /// File whose first line is the password (at least 10 characters).
        #[arg(long)]
        password_file: PathBuf,
        /// For agency users: the agency's catalog code.
        #[arg(long)]
        agency: Option<String>,
        /// For an agency that works per kecamatan (Kantor Camat, KUA,
        /// Polsek): the kecamatan its unit covers (`12.71.01`); repeat it
        /// for a unit covering several.
        #[arg(long)]
        region: Vec<String>,
        /// For supervisors limited to one kelurahan.
        #[arg(long)]
        kelurahan: Option<KelurahanCode>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    let database = cli.database;
    let place = |data: &std::path::Path| Place { data: data.to_path_buf(), database: database.clone() };
    match cli.command {
        Command::Init { data, admin_user, admin_password_file, hostname } => {
            let admin_password = setup::read_password_file(&admin_password_file)?;
            let done = setup::init(InitArgs {
                data: data.clone(),
                database: database.clone(),
                admin_user,
                admin_password,
                hostnames: hostname,
            })?;
            println!("sync-server initialised in {}", data.display());
            println!("  CA certificate for kiosks: {}", done.ca_file.display());
            println!("  CA fingerprint (SHA-256): {}", done.ca_fingerprint);
            Ok(())
        }
        Command::Migrate { data } => {
            let applied = setup::migrate(&place(&data))?;
            if applied.steps.is_empty() {
                println!("the store is at schema version {}; nothing to do", applied.to);
            }
            for (version, name) in &applied.steps {
                println!("applied migration {version}: {name}");
            }
            println!("schema version {} (was {})", applied.to, applied.from);
            Ok(())
        }
        Command::MigrateStore { data, to } => {
            let bar = loket_node::progress::count("rows copied");
            let copied = setup::migrate_store(&data, &to, |table, rows| {
                bar.suspend(|| println!("  {table}: {rows} rows"));
                bar.inc(rows);
            })?;
            bar.finish_and_clear();
            println!(
                "moved: {} tables, {} documents checked; {} now uses PostgreSQL",
                copied.tables.len(),
                copied.documents,
                data.display()
            );
            Ok(())
        }
        Command::Backup { data, out } => {
            let bar = loket_node::progress::bytes("backup");
            let made = setup::backup(&place(&data), &out, &mut |n| bar.set_position(n))?;
            bar.finish_and_clear();
            let bytes: u64 = made.files.iter().map(|f| f.bytes).sum();
            println!(
                "backup written: {} ({} files, {bytes} bytes before compression)",
                out.display(),
                made.files.len()
            );
            if made.about.get("engine").map(String::as_str) == Some("postgresql") {
                println!(
                    "  the store is in PostgreSQL: back the database up with pg_dump as well (README, \"Backup and restore\")"
                );
            }
            Ok(())
        }
        Command::Restore { from, data } => {
            let bar = loket_node::progress::bytes("restore");
            let restored = setup::restore(&from, &data, &mut |n| bar.set_position(n))?;
            bar.finish_and_clear();
            let m = &restored.manifest;
            println!(
                "restored into {}: a backup written by sync-server {} at {} ms since the epoch, {} files",
                data.display(),
                m.version,
                m.created_at_ms,
                m.files.len()
            );
            if restored.with_store {
                println!("  serve it with: sync-server serve --data {}", data.display());
            } else {
                println!(
                    "  the store is in PostgreSQL: restore the database with pg_restore first (README, \"Backup and restore\")"
                );
            }
            Ok(())
        }
        Command::AddInstance { data, out, hostname } => {
            let added = setup::add_instance(&place(&data), &out, &hostname)?;
            println!("another instance's data is in {}", added.data.display());
            println!("  serve it with: sync-server serve --data {}", added.data.display());
            println!("  CA fingerprint (SHA-256), the same as the first instance's: {}", added.ca_fingerprint);
            Ok(())
        }
        Command::Serve { data, listen, config } => {
            let mut config = Config::load(config.as_deref(), &CliOverrides { data: Some(data), listen })?;
            config.database = database;
            serve(config)
        }
        Command::EnrollCode { data, kelurahan, ttl } => {
            let config = Config::load(None, &CliOverrides { data: Some(data.clone()), listen: None })?;
            let ttl = setup::parse_ttl(&ttl, config.enroll_code_ttl_max)?;
            let issued = setup::issue_enroll_code(&place(&data), &kelurahan, ttl)?;
            // The code alone on the first line, for scripts; details after.
            // A script that reads only the first line (`| head -1`) closes
            // the pipe: the code is issued, so that is not an error.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = writeln!(out, "{}", issued.code).and_then(|()| {
                writeln!(
                    out,
                    "  kelurahan {}, valid until {}, usable once",
                    issued.kelurahan,
                    web::format_time(issued.expires_at_ms, config.utc_offset())
                )
            });
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Reproject { data } => {
            let config = Config::load(None, &CliOverrides { data: Some(data.clone()), ..Default::default() })?;
            let bar = loket_node::progress::count("requests projected");
            let (done, skipped) =
                setup::reproject(&place(&data), config.utc_offset_hours, &mut |n| bar.set_position(n as u64))?;
            bar.finish_and_clear();
            println!("{done} requests projected again; {skipped} unreadable skipped");
            Ok(())
        }
        Command::Compact { data, vacuum } => {
            let bar = loket_node::progress::count("documents compacted");
            let report = setup::compact(&place(&data), vacuum, &mut |n| bar.set_position(n))?;
            bar.finish_and_clear();
            let c = report.compacted;
            println!(
                "{} documents compacted: {} bytes of documents became {} ({} left for later: changed meanwhile)",
                c.documents, c.bytes_before, c.bytes_after, c.raced
            );
            if let Some((before, after)) = report.file_bytes {
                println!("  server.db: {before} bytes before, {after} bytes after");
            }
            if let Some(page) = report.page_size {
                let note = if page == loket_sync_server::store::sqlite::PAGE_SIZE {
                    ""
                } else {
                    " (the server had the file open: stop it and run this again to rewrite it with larger pages)"
                };
                println!("  page size {page} bytes{note}");
            }
            Ok(())
        }
        Command::Revoke { data, kiosk } => {
            let row = setup::revoke_kiosk(&place(&data), &kiosk)?;
            println!("kiosk {} ({}, {}) revoked", row.code, row.id, row.kelurahan);
            Ok(())
        }
        Command::DisableUser { data, username, reason } => {
            let ended = setup::set_user_disabled(&place(&data), &username, true, &reason)?;
            println!("user {username} disabled; {ended} sessions ended");
            Ok(())
        }
        Command::EnableUser { data, username, reason } => {
            setup::set_user_disabled(&place(&data), &username, false, &reason)?;
            println!("user {username} enabled");
            Ok(())
        }
        Command::SetStaffId { data, username, staff_id } => {
            setup::set_staff_id(&place(&data), &username, staff_id.as_ref())?;
            match staff_id {
                Some(s) => println!("user {username} is staff member {}", s.as_str()),
                None => println!("user {username} has no staff id"),
            }
            Ok(())
        }
        Command::AddUser { data, username, role, password_file, agency, region, kelurahan } => {
            let password = setup::read_password_file(&password_file)?;
            let name = username.clone();
            setup::add_user(&place(&data), NewUser { username, password, role, agency, region, kelurahan })?;
            println!("user {name} ({role}) added");
            Ok(())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let server = Server::prepare(config).await?;
        let shutdown = shutdown_signal()?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to learn the port (with --listen 127.0.0.1:0).
        println!("listening on https://{addr}");
        std::io::stdout().flush().ok();
        server.serve(listener, shutdown).await
    })
}
