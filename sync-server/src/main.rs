//! `sync-server`: the central server's command line (skeleton, see lib.rs).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sync-server", version, about = "Loket central sync server (not built yet: see issue #3)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the store, a private CA, the server certificate and the first admin.
    Init {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        admin_user: String,
        #[arg(long)]
        admin_password_file: PathBuf,
        #[arg(long)]
        hostname: Vec<String>,
    },
    /// Serve HTTPS (sync, web app, API) until SIGTERM/SIGINT.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Print a one-time enrollment code for a kiosk of a kelurahan.
    EnrollCode {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        kelurahan: String,
        #[arg(long)]
        ttl: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let name = match cli.command {
        Command::Init { .. } => "init",
        Command::Serve { .. } => "serve",
        Command::EnrollCode { .. } => "enroll-code",
    };
    eprintln!("sync-server {name}: not built yet; the sync server arrives with issue #3");
    std::process::ExitCode::from(2)
}
