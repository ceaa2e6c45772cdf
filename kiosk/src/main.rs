//! `kiosk`: the command line over the `loket_kiosk` library.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loket_kiosk::config::{CliOverrides, Config};
use loket_kiosk::setup::{self, InitArgs, RosterFile};
use loket_shared::{KelurahanCode, KioskCode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kiosk", version = loket_kiosk::VERSION, about = "Loket kiosk: citizen and staff service desk that works offline")]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "LOKET_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a kiosk's store before it is enrolled: its kelurahan, its
    /// ticket code, the service catalog and a staff roster.
    Init {
        /// Directory for the kiosk's data (created if missing).
        #[arg(long)]
        data: PathBuf,
        /// Kemendagri code of the kelurahan, e.g. 12.71.01.1001.
        #[arg(long)]
        kelurahan: KelurahanCode,
        /// Short code that starts every ticket, unique in the city, e.g. K07.
        #[arg(long)]
        kiosk_code: KioskCode,
        /// Roster file (TOML) with the office's staff; see README.
        #[arg(long)]
        roster: PathBuf,
        /// Service catalog (TOML); the built-in Kota Medan catalog if absent.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Display name; "Kiosk Kelurahan <name>" if absent.
        #[arg(long)]
        name: Option<String>,
    },
    /// Enroll this kiosk with the sync server (the only step that needs
    /// the network). Works on a new data directory or one already in use.
    Enroll {
        /// Directory for the kiosk's data.
        #[arg(long)]
        data: PathBuf,
        /// The sync server, e.g. https://loket.medan.go.id:8443
        #[arg(long)]
        server: String,
        /// The server's CA certificate (ca.pem from `sync-server init`); pinned.
        #[arg(long)]
        ca: PathBuf,
        /// The one-time enrollment code from the server's admin.
        #[arg(long)]
        code: String,
        /// Display name; "Kiosk Kelurahan <name>" if absent.
        #[arg(long)]
        name: Option<String>,
    },
    /// Serve the citizen screens and API, and the staff console on its own
    /// address, until SIGTERM or Ctrl-C.
    Serve {
        /// Directory holding the kiosk's data.
        #[arg(long)]
        data: PathBuf,
        /// Address of the citizen screens and the API (loopback or office
        /// LAN), e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Address of the staff console (loopback or office LAN), e.g.
        /// 127.0.0.1:8081; never the citizen screen's.
        #[arg(long)]
        staff_listen: Option<SocketAddr>,
        /// Configuration file; DATA/kiosk.toml if present.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Get a new credential from the sync server; the old one stops working
    /// at the kiosk's next sync (safe to run while the kiosk serves).
    RotateCredential {
        /// Directory holding the kiosk's data.
        #[arg(long)]
        data: PathBuf,
    },
    /// Write a backup of the kiosk's data folder (its store and
    /// configuration) to a new file, while the kiosk serves.
    Backup {
        /// Directory holding the kiosk's data.
        #[arg(long)]
        data: PathBuf,
        /// The backup file to write (a .tar.zst); must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a kiosk backup into a new or empty data folder. The
    /// restored kiosk writes under a new identity (Automerge actor) and, at
    /// its next sync, gets back from the server what it wrote since the
    /// backup.
    Restore {
        /// The backup file (from `kiosk backup`).
        #[arg(long)]
        from: PathBuf,
        /// The data folder to restore into; must not exist or be empty.
        #[arg(long)]
        data: PathBuf,
    },
    /// A demonstration kiosk: initialises DATA with the built-in catalog and
    /// a demo staff member (first run only), then serves it.
    Demo {
        #[arg(long, default_value = "demo-data/kiosk")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8081")]
        staff_listen: SocketAddr,
    },
    /// Read a password from standard input and print its argon2id hash for
    /// a roster file.
    HashPassword,
}

const DEMO_STAFF_ID: &str = "198503122010011002";
const DEMO_STAFF_PASSWORD: &str = "petugas-demo";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    loket_node::telemetry::init_tracing(cli.log_json);
    match cli.command {
        Command::Init { data, kelurahan, kiosk_code, roster, catalog, name } => {
            let roster_text =
                std::fs::read_to_string(&roster).with_context(|| format!("reading {}", roster.display()))?;
            let roster_file: RosterFile =
                toml::from_str(&roster_text).with_context(|| format!("parsing {}", roster.display()))?;
            let roster = roster_file.into_roster(&kelurahan)?;
            let catalog = match catalog {
                Some(path) => setup::parse_catalog(
                    &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
                )?,
                None => setup::default_catalog(),
            };
            let db = data.join("kiosk.db");
            setup::init(InitArgs { db: &db, kelurahan, kiosk: kiosk_code, name, roster, catalog })?;
            println!("kiosk initialised in {}", data.display());
            Ok(())
        }
        Command::Enroll { data, server, ca, code, name } => enroll(data, server, ca, code, name),
        Command::Serve { data, listen, staff_listen, config } => {
            let config = Config::load(config.as_deref(), &CliOverrides { data: Some(data), listen, staff_listen })?;
            serve(config, None)
        }
        Command::RotateCredential { data } => rotate_credential(data),
        Command::Backup { data, out } => {
            let bar = loket_node::progress::bytes("backup");
            let made = setup::backup(&data, &out, &mut |n| bar.set_position(n))?;
            bar.finish_and_clear();
            let bytes: u64 = made.files.iter().map(|f| f.bytes).sum();
            println!(
                "backup written: {} ({} files, {bytes} bytes before compression)",
                out.display(),
                made.files.len()
            );
            Ok(())
        }
        Command::Restore { from, data } => {
            let bar = loket_node::progress::bytes("restore");
            let restored = setup::restore(&from, &data, &mut |n| bar.set_position(n))?;
            bar.finish_and_clear();
            let m = &restored.manifest;
            println!(
                "restored into {}: kiosk {} backed up at {} ms since the epoch by kiosk {}",
                data.display(),
                m.about.get("kiosk_code").map_or("?", String::as_str),
                m.created_at_ms,
                m.version
            );
            println!(
                "  it writes as actor {} from now on; its next sync registers it and brings back what the server holds",
                restored.actor
            );
            println!("  serve it with: kiosk serve --data {}", data.display());
            Ok(())
        }
        Command::Demo { data, listen, staff_listen } => {
            let db = data.join("kiosk.db");
            if !db.exists() {
                let kelurahan: KelurahanCode = "12.71.01.1001".parse().expect("valid code");
                let roster = RosterFile {
                    staff: vec![setup::RosterEntry {
                        id: DEMO_STAFF_ID.into(),
                        name: "Rina Siregar".into(),
                        role: loket_shared::reference::StaffRole::Supervisor,
                        kind: Some(loket_shared::StaffKind::Pns),
                        password_hash: Some(loket_node::password::hash_password(DEMO_STAFF_PASSWORD)?),
                        password: None,
                    }],
                }
                .into_roster(&kelurahan)?;
                setup::init(InitArgs {
                    db: &db,
                    kelurahan,
                    kiosk: "K01".parse().expect("valid code"),
                    name: None,
                    roster,
                    catalog: setup::default_catalog(),
                })?;
            }
            let config = Config::load(
                None,
                &CliOverrides { data: Some(data), listen: Some(listen), staff_listen: Some(staff_listen) },
            )?;
            let banner = format!(
                "\nLoket demo kiosk (Kelurahan Pasar Baru, 12.71.01.1001)\n  \
                 citizen UI:   http://{listen}/\n  \
                 staff UI:     http://{staff_listen}/staf   (its own address: never open it on the citizen screen)\n  \
                 API:          http://{listen}/api/services\n  \
                 health:       http://{listen}/healthz\n  \
                 staff login:  NIP {DEMO_STAFF_ID}, password {DEMO_STAFF_PASSWORD}\n  \
                 data:         {}\n  stop with Ctrl-C\n",
                config.data.display()
            );
            serve(config, Some(banner))
        }
        Command::HashPassword => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("reading the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(password.chars().count() >= 8, "use a password of at least 8 characters");
            println!("{}", loket_node::password::hash_password(password)?);
            Ok(())
        }
    }
}

fn enroll(data: PathBuf, server: String, ca: PathBuf, code: String, name: Option<String>) -> anyhow::Result<()> {
    let ca_pem = std::fs::read_to_string(&ca).with_context(|| format!("reading {}", ca.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let enrolled = runtime.block_on(setup::enroll(&data.join("kiosk.db"), &server, &ca_pem, &code, name))?;
    let (kiosk, kelurahan) = (&enrolled.kiosk, &enrolled.kelurahan);
    match &enrolled.first_sync {
        Ok(pulled) => println!("enrolled as {kiosk} for kelurahan {kelurahan}; first sync pulled {pulled} documents"),
        Err(e) => println!(
            "enrolled as {kiosk} for kelurahan {kelurahan}; first sync failed ({e}), it will retry when serving"
        ),
    }
    Ok(())
}

fn rotate_credential(data: PathBuf) -> anyhow::Result<()> {
    use loket_kiosk::store::DocStore;
    let db = data.join("kiosk.db");
    let enrollment = DocStore::read_enrollment(&db)?.context("this kiosk is not enrolled")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    let token = runtime.block_on(loket_kiosk::sync::rotate_credential(&enrollment))?;
    DocStore::store_credential(&db, &token)?;
    println!("new credential stored; the old one stops working at this kiosk's next sync");
    Ok(())
}

fn serve(config: Config, banner: Option<String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async move {
        let citizen =
            tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let staff = tokio::net::TcpListener::bind(config.staff_listen)
            .await
            .with_context(|| format!("binding {} (staff_listen)", config.staff_listen))?;
        // Before the `listening` line: a SIGTERM right after it is not missed.
        let shutdown = loket_node::telemetry::shutdown_signal()?;
        let addr = citizen.local_addr()?;
        let staff_addr = staff.local_addr()?;
        // Tests and scripts read these lines to learn the ports (with
        // --listen 127.0.0.1:0 --staff-listen 127.0.0.1:0), in this order.
        println!("listening on http://{addr}");
        println!("staff console on http://{staff_addr}");
        if let Some(b) = banner {
            println!("{b}");
        }
        std::io::stdout().flush().ok();
        loket_kiosk::run(config, loket_kiosk::Listeners { citizen, staff }, shutdown).await
    })
}
