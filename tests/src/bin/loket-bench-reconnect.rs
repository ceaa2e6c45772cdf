//! `loket-bench-reconnect`: the kiosk-reconnect benchmark (see
//! `loket_tests::reconnect`). Prints progress to stderr and the figures as
//! one JSON object on stdout.
//!
//! ```sh
//! cargo build --release --workspace
//! cargo run --release -p loket-tests --bin loket-bench-reconnect -- --kiosks 20 --docs 500
//! # on PostgreSQL, two instances:
//! cargo run --release -p loket-tests --bin loket-bench-reconnect -- \
//!     --database postgres://postgres@127.0.0.1:5432/test --instances 2
//! ```

use clap::Parser;

#[derive(Parser)]
#[command(about = "Kiosk reconnect benchmark: K kiosks with D documents go offline, work, and reconnect at once")]
struct Args {
    /// Kiosks (even: they come in pairs per kelurahan).
    #[arg(long, default_value_t = 20)]
    kiosks: usize,
    /// Request documents per kiosk, each with 3 events and a rating.
    #[arg(long, default_value_t = 500)]
    docs: usize,
    /// New requests each kiosk files while offline.
    #[arg(long, default_value_t = 50)]
    new_requests: usize,
    /// Existing requests each kiosk appends a status event to while offline.
    #[arg(long, default_value_t = 30)]
    events: usize,
    /// Also measure an idle reconnect of one kiosk holding this many documents.
    #[arg(long, value_delimiter = ',', default_value = "50000")]
    idle_docs: Vec<usize>,
    /// A PostgreSQL URL whose role may create databases (e.g.
    /// postgres://postgres@127.0.0.1:5432/test): the server's store is a
    /// fresh database there, dropped at the end, instead of SQLite.
    #[arg(long)]
    database: Option<String>,
    /// Server instances on that database; kiosk i talks to instance i mod n.
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let result = loket_tests::reconnect::run(loket_tests::reconnect::Params {
        kiosks: a.kiosks,
        docs: a.docs,
        new_requests: a.new_requests,
        events: a.events,
        idle_docs: a.idle_docs,
        database: a.database,
        instances: a.instances,
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
