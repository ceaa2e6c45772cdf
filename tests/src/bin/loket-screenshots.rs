//! Screenshots of the main screens for the README (`tests/screenshots`):
//! a sync server and two kiosks live through a realistic day
//! (`loket_tests::day`), then a real Chromium saves the central app's
//! main screens at an admin's 1440×900 screen and a staff PC's 1366×768
//! (the whole page, down to 2,400 px), the kiosk's citizen screens on its
//! 1080×1920 portrait screen and its staff console at 1366×768, into
//! `docs/screenshots/` (or `--out DIR`). It also prints, per screen,
//! axe-core's serious and critical findings and any table wider than the
//! screen, which the browser tests fail on.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use loket_tests::browser::Browser;
use loket_tests::day::{self, Day};
use loket_tests::server::{ADMIN_PASSWORD, ADMIN_USER};

#[derive(Parser)]
#[command(about = "Saves screenshots of Loket's main screens into docs/screenshots/")]
struct Args {
    /// Where the PNGs go.
    #[arg(long, default_value = "docs/screenshots")]
    out: PathBuf,
    /// Requests filed at each of the two offices during the day.
    #[arg(long, default_value_t = 36)]
    requests: usize,
}

/// Central screens: (file name, path). `{request}` is a request's id,
/// `{complaint}` the answered complaint's.
const CENTRAL: [(&str, &str); 12] = [
    ("central-overview", "/admin/ringkasan"),
    ("central-ikm", "/admin/ikm"),
    ("central-time", "/admin/waktu"),
    ("central-staff", "/admin/staf"),
    ("central-requests", "/admin/permohonan"),
    ("central-request", "/admin/permohonan/{request}"),
    ("central-kiosks", "/admin/kiosk"),
    ("central-holidays", "/admin/libur"),
    ("central-users", "/admin/pengguna"),
    ("central-complaints", "/admin/pengaduan"),
    ("central-complaint", "/admin/pengaduan/{complaint}"),
    ("central-privacy", "/privasi"),
];

const FULL_PAGE_MAX: u32 = 2400;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    eprintln!("living through a day of {} requests at each of two offices…", args.requests);
    let day = day::realistic_day("screenshots", args.requests).await?;
    let mut problems = Vec::new();
    central(&day, &args, &mut problems).await?;
    kiosk(&day, &args, &mut problems).await?;
    if problems.is_empty() {
        eprintln!("no serious or critical axe findings, every table fits");
    } else {
        eprintln!("to look at:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

async fn central(day: &Day, args: &Args, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let b = Browser::start_https("screenshots-central", &day.server.base).await?;
    // A hand-off Disdukcapil finished: the fullest request page.
    let request = day
        .requests
        .iter()
        .find(|r| r.3 == "completed" && day.handed.contains(&r.0))
        .or(day.requests.iter().find(|r| r.3 == "completed"))
        .context("no completed request")?;
    let complaint = &day.complaints.first().context("no complaint")?.0;
    for (w, h) in [(1440, 900), (1366, 768)] {
        b.set_viewport(w, h).await?;
        b.go("/masuk").await?;
        b.find("#login-form").await?;
        shot(&b, args, &format!("central-login-{w}x{h}"), Some(FULL_PAGE_MAX), problems).await?;
        b.type_into("#username", ADMIN_USER).await?;
        b.type_into("#password", ADMIN_PASSWORD).await?;
        b.click("#login").await?;
        b.wait_path("/admin/ringkasan").await?;
        if w == 1440 {
            day::record_training(&b).await?;
        }
        for (name, path) in CENTRAL {
            b.go(&path.replace("{request}", &request.0).replace("{complaint}", complaint)).await?;
            b.find("main h1").await?;
            shot(&b, args, &format!("{name}-{w}x{h}"), Some(FULL_PAGE_MAX), problems).await?;
        }
        // The same overview in English, one click away.
        b.go("/admin/ringkasan").await?;
        b.click("#lang-switch").await?;
        b.wait_until("the English page", || async { Ok(b.js("return document.documentElement.lang").await? == "en") })
            .await?;
        shot(&b, args, &format!("central-overview-en-{w}x{h}"), Some(FULL_PAGE_MAX), problems).await?;
        b.click("#lang-switch").await?;
        b.wait_until("the Indonesian page", || async {
            Ok(b.js("return document.documentElement.lang").await? == "id")
        })
        .await?;
        b.click("#logout").await?;
        b.wait_path("/masuk").await?;
    }
    b.close().await
}

async fn kiosk(day: &Day, args: &Args, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let kiosk = &day.kiosks[0];
    let b = Browser::start("screenshots-kiosk", &kiosk.base).await?;
    // The citizen's way on the portrait touch screen: choose, read, file,
    // check, receipt; then a finished request's status and the survey.
    b.set_viewport(1080, 1920).await?;
    let portrait = |name: &str| format!("kiosk-{name}-1080x1920");
    for (name, path, ready) in [
        ("home", "/", "#start-file"),
        ("services", "/layanan", "main h1"),
        ("service", "/layanan/SKD", "#apply"),
        ("form", "/layanan/SKD/ajukan", "#nik"),
    ] {
        b.go(path).await?;
        b.find(ready).await?;
        shot(&b, args, &portrait(name), None, problems).await?;
    }
    b.type_into("#name", "Siti Aminah Lubis").await?;
    b.type_into("#nik", &loket_tests::nik(4242)).await?;
    b.click("#next").await?;
    b.find("#confirm-nik").await?;
    shot(&b, args, &portrait("confirm"), None, problems).await?;
    b.click("#submit").await?;
    b.find("#rating-code").await?;
    shot(&b, args, &portrait("receipt"), None, problems).await?;
    b.go("/mulai-ulang").await?;
    // A request of this office the day completed: its status page.
    let mut status = false;
    for r in day.requests.iter().filter(|r| r.3 == "completed") {
        b.go(&format!("/tiket/{}", r.1)).await?;
        if b.exists("#ticket-number").await? {
            shot(&b, args, &portrait("status"), None, problems).await?;
            status = true;
            break;
        }
    }
    anyhow::ensure!(status, "no completed request of the first kiosk's office");
    b.go("/nilai").await?;
    b.find("#tiket").await?;
    shot(&b, args, &portrait("rating"), None, problems).await?;
    // Complaints: the form, and the answered complaint's status.
    b.go("/pengaduan").await?;
    b.find("#complaint-next").await?;
    shot(&b, args, &portrait("complaint"), None, problems).await?;
    let answered = &day.complaints.first().context("no complaint")?.1;
    b.go(&format!("/tiket/{answered}")).await?;
    b.find("#complaint-state").await?;
    shot(&b, args, &portrait("complaint-answered"), None, problems).await?;
    b.go("/bahasa/en?kembali=/layanan/SKD").await?;
    b.find("#apply").await?;
    shot(&b, args, &portrait("service-en"), None, problems).await?;
    b.go("/mulai-ulang").await?;

    // The clerk's console on a counter PC: the queue, the request just
    // filed with its action panel.
    b.set_viewport(1366, 768).await?;
    b.kiosk_staff_login(&kiosk.staff).await?;
    shot(&b, args, "kiosk-staff-queue-1366x768", None, problems).await?;
    b.click("td.ticket a").await?;
    b.find("#action-panel").await?;
    shot(&b, args, "kiosk-staff-request-1366x768", None, problems).await?;
    b.close().await
}

/// Saves one screen and notes what axe-core and the width check find.
async fn shot(
    b: &Browser,
    args: &Args,
    name: &str,
    full: Option<u32>,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let path = args.out.join(format!("{name}.png"));
    b.save_png(&path, full).await?;
    for v in b.axe_serious_violations().await? {
        problems.push(format!("{name}: {v}"));
    }
    for t in b.tables_too_wide().await? {
        problems.push(format!("{name}: too wide: {t}"));
    }
    eprintln!("saved {}", path.display());
    Ok(())
}
