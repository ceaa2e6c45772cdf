//! A realistic day at two kelurahan offices, for the central app's
//! browser tests and its screenshots: a sync server with an agency user
//! and a kelurahan supervisor, rosters at Kelurahan Pasar Baru and
//! Kelurahan Lalang (with a clerk who moved from one to the other during
//! the day), an enrolled kiosk at each, and requests filed by citizens
//! across the catalog and worked through every way a day goes: completed,
//! rejected, waiting for the citizen, handed to Disdukcapil and finished
//! there, cancelled, still open; ratings with comments on most of the
//! finished ones. Outcomes are drawn from a seeded generator, so the same
//! size gives the same day.

use std::path::Path;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::server::{ServerProcess, enroll_kiosk, init_server, server_cli_ok};
use crate::{KioskProcess, TestDir, http_client, nik, wait_synced};

/// The agency user (Disdukcapil) and its password.
pub const AGENCY_USER: &str = "dukcapil";
pub const AGENCY_PASSWORD: &str = "dukcapil-rahasia-1";
/// Dinas Pendidikan's account (a city-wide agency).
pub const DISDIK_USER: &str = "disdik";
pub const DISDIK_PASSWORD: &str = "disdik-rahasia-1";
/// The Camat's units of the two offices' kecamatan (Medan Kota, Medan
/// Sunggal), and their shared password: each sees only its own.
pub const CAMAT_KOTA: &str = "camat-kota";
pub const CAMAT_SUNGGAL: &str = "camat-sunggal";
pub const CAMAT_PASSWORD: &str = "camat-rahasia-1";
/// A supervisor limited to Kelurahan Pasar Baru.
pub const SUPERVISOR_USER: &str = "lurah-pasarbaru";
pub const SUPERVISOR_PASSWORD: &str = "lurah-rahasia-1";
/// The offices: (kelurahan code, kiosk's clerk id, clerk's password).
pub const PASAR_BARU: &str = "12.71.01.1001";
pub const LALANG: &str = "12.71.02.1001";

/// Who works where: `(kelurahan, id, name, role, password)`.
const ROSTER: [(&str, &str, &str, &str, &str); 4] = [
    (PASAR_BARU, crate::STAFF_ID, "Rina Siregar", "supervisor", crate::STAFF_PASSWORD),
    (PASAR_BARU, MOVER, "Andi Nasution", "staff", "andi-rahasia-1"),
    (LALANG, "199203152019032007", "Dewi Lubis", "supervisor", "dewi-rahasia-1"),
    (LALANG, "199507222020121003", "Fajar Harahap", "staff", "fajar-rahasia-1"),
];
/// A new clerk at Lalang whose competence and conduct citizens rate low.
pub const WEAK_CLERK: &str = "199507222020121003";
/// The clerk who moves from Pasar Baru to Lalang at midday.
pub const MOVER: &str = "198811042014031002";
const MOVER_PASSWORD: &str = "andi-rahasia-1";

const NAMES: [&str; 16] = [
    "Siti Aminah",
    "Budi Santoso",
    "Maria Simanjuntak",
    "Ahmad Fauzi",
    "Rahmat Hidayat",
    "Nurhayati Daulay",
    "Jonathan Sitorus",
    "Dewi Sartika Nasution",
    "Putri Ayu Lestari",
    "Hendra Gunawan",
    "Yusuf Batubara",
    "Lestari Pane",
    "Robert Tambunan",
    "Fitri Handayani",
    "Irfan Syahputra",
    "Ani Rangkuti",
];

const COMMENTS: [&str; 6] = [
    "Pelayanan cepat dan ramah, terima kasih.",
    "Antrean agak lama tetapi petugas membantu.",
    "Persyaratan tolong ditempel lebih jelas di dinding.",
    "Petugas menjelaskan dengan sabar.",
    "Ruang tunggu panas, mohon tambah kipas.",
    "Sangat membantu, tidak perlu bolak-balik.",
];

/// Complaints as citizens file them at each office (`POST /api/complaints`
/// bodies); the second is given a name.
const COMPLAINTS: [&str; 3] = [
    r#"{"about":{"kind":"service","service":"SKD"},"text":"Antrean untuk surat domisili terlalu lama, saya menunggu dua jam."}"#,
    r#"{"about":{"kind":"office"},"text":"Ruang tunggu panas dan kursinya kurang."}"#,
    r#"{"about":{"kind":"general"},"text":"Mohon jam pelayanan diumumkan di depan kantor."}"#,
];

/// What a day holds.
pub struct Day {
    pub server: ServerProcess,
    pub kiosks: Vec<KioskProcess>,
    /// An admin's bearer token.
    pub admin: String,
    /// Every request filed: `(id, ticket, kelurahan, final status)`.
    pub requests: Vec<(String, String, String, String)>,
    /// The ids of those handed to Disdukcapil.
    pub handed: Vec<String>,
    /// Complaints filed at the kiosks: `(id, ticket, kelurahan)`; the
    /// first (Pasar Baru's) is registered and answered.
    pub complaints: Vec<(String, String, String)>,
    // Dropped last: the processes first, then their directory.
    _dir: TestDir,
}

impl Day {
    /// Stops the kiosks and the server as an operator would (SIGTERM, a
    /// clean exit) and keeps the day's folder: `server/` and a
    /// `kiosk-<kelurahan>/` per office.
    pub fn stop_and_keep(mut self) -> anyhow::Result<std::path::PathBuf> {
        for k in &mut self.kiosks {
            let status = k.terminate()?;
            anyhow::ensure!(status.success(), "kiosk exited with {status}");
        }
        self.server.terminate()?;
        let Day { _dir, .. } = self;
        Ok(_dir.keep())
    }

    /// A request of the day that ended as `status`.
    pub fn request_with(&self, status: &str) -> Option<&(String, String, String, String)> {
        self.requests.iter().find(|r| r.3 == status)
    }
}

fn add_user(data: &Path, dir: &Path, user: &str, password: &str, extra: &[&str]) -> anyhow::Result<()> {
    let pw = dir.join(format!("{user}.pw"));
    std::fs::write(&pw, format!("{password}\n"))?;
    let mut args: Vec<std::ffi::OsString> = vec!["add-user".into(), "--data".into(), data.into(), "--username".into()];
    args.push(user.into());
    for e in extra {
        args.push(e.into());
    }
    args.push("--password-file".into());
    args.push(pw.into());
    server_cli_ok(&args)?;
    Ok(())
}

async fn put_staff(
    https: &reqwest::Client,
    server: &ServerProcess,
    admin: &str,
    (kelurahan, id, name, role, password): (&str, &str, &str, &str, &str),
    active: bool,
) -> anyhow::Result<()> {
    let r = https
        .put(format!("{}/api/admin/rosters/{kelurahan}/staff/{id}", server.base))
        .bearer_auth(admin)
        .json(&json!({ "name": name, "role": role, "password": password, "active": active }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "roster {kelurahan} {id}: {}", r.text().await.unwrap_or_default());
    Ok(())
}

/// Logs a clerk in at the kiosk's staff API; the bearer token.
pub async fn login_staff(
    client: &reqwest::Client,
    k: &KioskProcess,
    id: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r =
        client.post(k.url("/api/staff/login")).json(&json!({ "staff_id": id, "password": password })).send().await?;
    anyhow::ensure!(r.status().is_success(), "staff login {id}: {}", r.status());
    Ok(r.json::<Value>().await?["token"].as_str().context("token")?.to_owned())
}

/// A clerk's step on a request at the kiosk's staff API (`201` expected).
pub async fn step(
    client: &reqwest::Client,
    k: &KioskProcess,
    token: &str,
    id: &str,
    body: Value,
) -> anyhow::Result<()> {
    let r =
        client.post(k.url(&format!("/api/staff/requests/{id}/events"))).bearer_auth(token).json(&body).send().await?;
    anyhow::ensure!(r.status() == 201, "{body}: {} {}", r.status(), r.text().await.unwrap_or_default());
    Ok(())
}

/// Starts the server and both kiosks and lives through a day of
/// `per_office` requests at each office (the browser test uses a few, the
/// screenshots a busy day's worth).
pub async fn realistic_day(prefix: &str, per_office: usize) -> anyhow::Result<Day> {
    realistic_day_with(prefix, per_office, DayOptions { regional_units: true, listen: None, database: None }).await
}

/// What a day may leave out, for binaries of an earlier release
/// (`loket-upgrade-fixture`).
#[derive(Debug, Clone)]
pub struct DayOptions {
    /// The Camat's units with a region (`add-user --region`, schema
    /// version 8).
    pub regional_units: bool,
    /// The server's address (the kiosks keep it from their enrollment),
    /// instead of a free port: the upgrade fixture serves its stores there
    /// again, on a port below the kernel's ephemeral range so that no
    /// test's outgoing connection can hold it.
    pub listen: Option<std::net::SocketAddr>,
    /// The server's store in this (empty) PostgreSQL database instead of
    /// SQLite.
    pub database: Option<String>,
}

/// [`realistic_day`] with what `options` leaves out.
pub async fn realistic_day_with(prefix: &str, per_office: usize, options: DayOptions) -> anyhow::Result<Day> {
    let dir = TestDir::new(prefix);
    let data = dir.path().join("server");
    match &options.database {
        Some(url) => crate::server::init_server_on(&data, url)?,
        None => init_server(&data)?,
    }
    add_user(&data, dir.path(), AGENCY_USER, AGENCY_PASSWORD, &["--role", "agency", "--agency", "DISDUKCAPIL"])?;
    add_user(&data, dir.path(), DISDIK_USER, DISDIK_PASSWORD, &["--role", "agency", "--agency", "DISDIK"])?;
    add_user(
        &data,
        dir.path(),
        SUPERVISOR_USER,
        SUPERVISOR_PASSWORD,
        &["--role", "supervisor", "--kelurahan", PASAR_BARU],
    )?;
    let units: &[(&str, &str)] =
        if options.regional_units { &[(CAMAT_KOTA, "12.71.01"), (CAMAT_SUNGGAL, "12.71.02")] } else { &[] };
    for &(user, kecamatan) in units {
        add_user(
            &data,
            dir.path(),
            user,
            CAMAT_PASSWORD,
            &["--role", "agency", "--agency", "CAMAT", "--region", kecamatan],
        )?;
    }
    let server = match options.listen {
        Some(addr) => ServerProcess::restart_on(&data, addr)?,
        None => ServerProcess::start(&data)?,
    };
    let https = server.client();
    let admin = server.admin_token(&https).await?;
    for member in ROSTER {
        put_staff(&https, &server, &admin, member, true).await?;
    }
    let mut kiosks = Vec::new();
    for kelurahan in [PASAR_BARU, LALANG] {
        let kdata = dir.path().join(format!("kiosk-{kelurahan}"));
        enroll_kiosk(&kdata, &server, &server.enroll_code(kelurahan)?)?;
        kiosks.push(KioskProcess::start(&kdata)?);
    }
    let client = http_client();
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    let mut rng = StdRng::seed_from_u64(15);
    let services = ["SKD", "SKD", "SKU", "SKTM", "PKK", "PKK", "PKTP", "SKCK", "LAHIR", "WARIS"];
    let mut requests = Vec::new();
    let mut handed = Vec::new();
    let mut n = 0u64;
    // Pasar Baru's morning with Andi, then Lalang's afternoon, where he
    // works after his move.
    for (office, kiosk) in kiosks.iter().enumerate() {
        let kelurahan = [PASAR_BARU, LALANG][office];
        // (token, whether the citizens rate their competence and conduct low)
        let clerks: Vec<(String, bool)> = if office == 0 {
            vec![
                (login_staff(&client, kiosk, crate::STAFF_ID, crate::STAFF_PASSWORD).await?, false),
                (login_staff(&client, kiosk, MOVER, MOVER_PASSWORD).await?, false),
            ]
        } else {
            // The move: off Pasar Baru's roster, onto Lalang's.
            put_staff(&https, &server, &admin, (PASAR_BARU, MOVER, "Andi Nasution", "staff", MOVER_PASSWORD), false)
                .await?;
            put_staff(&https, &server, &admin, (LALANG, MOVER, "Andi Nasution", "staff", MOVER_PASSWORD), true).await?;
            wait_synced(&client, kiosk).await;
            vec![
                (login_staff(&client, kiosk, "199203152019032007", "dewi-rahasia-1").await?, false),
                (login_staff(&client, kiosk, MOVER, MOVER_PASSWORD).await?, false),
                // A new clerk still learning: the one the training needs list finds.
                (login_staff(&client, kiosk, WEAK_CLERK, "fajar-rahasia-1").await?, true),
            ]
        };
        for i in 0..per_office {
            n += 1;
            let service = services[(i + office * 3) % services.len()];
            let name = NAMES[usize::try_from(n).unwrap_or(0) % NAMES.len()];
            let (id, ticket, code) = crate::file_request_with_code(&client, kiosk, service, name, &nik(n + 40)).await;
            // At Lalang the new clerk takes every other request.
            let pick = if office == 1 && i % 2 == 0 { clerks.len() - 1 } else { rng.random_range(0..clerks.len()) };
            let (clerk, weak) = &clerks[pick];
            let roll: f64 = rng.random();
            // The new clerk finishes what they take, if not well.
            let roll = if *weak { roll.max(0.61) } else { roll };
            let handoff_agency = match service {
                "PKK" | "PKTP" | "LAHIR" => Some("DISDUKCAPIL"),
                _ => None,
            };
            let status = if roll < 0.08 {
                "submitted"
            } else if roll < 0.13 {
                step(&client, kiosk, clerk, &id, json!({ "to": "cancelled", "note": "dibatalkan pemohon" })).await?;
                "cancelled"
            } else {
                step(&client, kiosk, clerk, &id, json!({ "to": "in_progress" })).await?;
                if roll < 0.2 {
                    "in_progress"
                } else if roll < 0.28 {
                    step(
                        &client,
                        kiosk,
                        clerk,
                        &id,
                        json!({ "to": "waiting_citizen", "note": "fotokopi KK belum dibawa" }),
                    )
                    .await?;
                    "waiting_citizen"
                } else if let (Some(agency), true) = (handoff_agency, roll < 0.6) {
                    step(&client, kiosk, clerk, &id, json!({ "to": "handed_off", "agency": agency })).await?;
                    handed.push((id.clone(), kiosk.base.clone(), code.clone(), *weak));
                    "handed_off"
                } else if roll < 0.36 {
                    step(
                        &client,
                        kiosk,
                        clerk,
                        &id,
                        json!({ "to": "rejected", "note": "surat pengantar RT/RW tidak ada" }),
                    )
                    .await?;
                    "rejected"
                } else {
                    if roll > 0.9 {
                        step(
                            &client,
                            kiosk,
                            clerk,
                            &id,
                            json!({ "to": "waiting_citizen", "note": "materai belum ada" }),
                        )
                        .await?;
                        step(&client, kiosk, clerk, &id, json!({ "to": "in_progress", "note": "berkas lengkap" }))
                            .await?;
                    }
                    step(&client, kiosk, clerk, &id, json!({ "to": "completed" })).await?;
                    "completed"
                }
            };
            // Most citizens rate; those a clerk served badly all do.
            if matches!(status, "completed" | "rejected") && (*weak || rng.random::<f64>() < 0.8) {
                rate(&client, kiosk, &id, &code, *weak, &mut rng).await?;
            }
            requests.push((id, ticket, kelurahan.to_owned(), status.to_owned()));
        }
        wait_synced(&client, kiosk).await;
    }
    // Disdukcapil takes most of what it was handed and finishes some.
    let agency = login_central(&https, &server, AGENCY_USER, AGENCY_PASSWORD).await?;
    for (i, (id, _, _, _)) in handed.iter().enumerate() {
        if i % 4 == 3 {
            continue; // still waiting to be taken
        }
        central_event(&https, &server, &agency, id, json!({ "to": "in_progress", "agency": "DISDUKCAPIL" })).await?;
        if i % 4 != 2 {
            central_event(&https, &server, &agency, id, json!({ "to": "completed", "note": "KK sudah dicetak" }))
                .await?;
            if let Some(r) = requests.iter_mut().find(|r| r.0 == *id) {
                r.3 = "completed".into();
            }
        } else if let Some(r) = requests.iter_mut().find(|r| r.0 == *id) {
            r.3 = "in_progress".into();
        }
    }
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    // The completed hand-offs are rated at the kiosk too.
    for (id, base, code, weak) in &handed {
        if requests.iter().any(|r| r.0 == *id && r.3 == "completed")
            && let Some(kiosk) = kiosks.iter().find(|k| k.base == *base)
        {
            rate(&client, kiosk, id, code, *weak, &mut rng).await?;
        }
    }
    for k in &kiosks {
        wait_synced(&client, k).await;
    }
    // Complaints at both offices (issue 16): filed at the kiosk, synced,
    // and at Pasar Baru one registered and answered by the admin.
    let mut complaints = Vec::new();
    for (office, kiosk) in kiosks.iter().enumerate() {
        for (i, body) in COMPLAINTS.iter().enumerate() {
            let mut body: Value = serde_json::from_str(body)?;
            if i == 1 {
                body["complainant"] =
                    json!({ "name": NAMES[office], "nik": nik(9_000 + office as u64), "phone": "081234567890" });
            }
            let r = client.post(format!("{}/api/complaints", kiosk.base)).json(&body).send().await?;
            anyhow::ensure!(r.status() == reqwest::StatusCode::CREATED, "complaint: {}", r.status());
            let v: Value = r.json().await?;
            let field = |k: &str| v[k].as_str().map(str::to_owned).context("complaint answer");
            complaints.push((field("id")?, field("ticket")?, [PASAR_BARU, LALANG][office].to_owned()));
        }
        wait_synced(&client, kiosk).await;
    }
    let answered = &complaints[0].0;
    for body in [
        json!({ "kind": "register", "class": "ringan", "unit": format!("kelurahan:{PASAR_BARU}") }),
        json!({ "kind": "answer", "text": "Loket kedua dibuka pukul 08.00 mulai pekan depan. Terima kasih atas masukan Anda." }),
    ] {
        let r = https
            .post(format!("{}/api/admin/complaints/{answered}/steps", server.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{body}: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    wait_synced(&client, &kiosks[0]).await;
    let handed = handed.into_iter().map(|h| h.0).collect();
    Ok(Day { server, kiosks, admin, requests, handed, complaints, _dir: dir })
}

async fn rate(
    client: &reqwest::Client,
    k: &KioskProcess,
    id: &str,
    code: &str,
    weak_clerk: bool,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    // Mostly 3s and 4s, with the odd 2 (U3 waiting time and U9 facilities
    // lowest, as SKM surveys tend to find); a weak clerk's U6 and U7 low.
    let mut scores = serde_json::Map::new();
    for e in 1..=9 {
        let low = match e {
            6 | 7 if weak_clerk => 1.5,
            3 | 9 => 0.3,
            _ => 0.1,
        };
        let r: f64 = rng.random();
        let score = if r < low / 3.0 {
            2
        } else if r < low + 0.35 {
            3
        } else {
            4
        };
        scores.insert(format!("U{e}"), json!(score));
    }
    let mut body = json!({ "scores": scores, "token": code });
    // Most answer the optional, anonymous profile questions, not all of them.
    if rng.random::<f64>() < 0.75 {
        let mut profile = serde_json::Map::new();
        for d in loket_shared::respondent::Dimension::ALL {
            let choices = d.choices();
            if rng.random::<f64>() < 0.9 && !choices.is_empty() {
                profile.insert(d.key().to_owned(), json!(choices[rng.random_range(0..choices.len())].code));
            }
        }
        body["profile"] = Value::Object(profile);
    }
    if rng.random::<f64>() < 0.4 {
        body["comment"] = json!(COMMENTS[rng.random_range(0..COMMENTS.len())]);
    }
    let r = client.post(k.url(&format!("/api/requests/{id}/rating"))).json(&body).send().await?;
    anyhow::ensure!(r.status() == 201, "rating {id}: {} {}", r.status(), r.text().await.unwrap_or_default());
    Ok(())
}

async fn login_central(
    https: &reqwest::Client,
    server: &ServerProcess,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r = https
        .post(format!("{}/api/login", server.base))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "login {user}: {}", r.status());
    Ok(r.json::<Value>().await?["token"].as_str().context("token")?.to_owned())
}

async fn central_event(
    https: &reqwest::Client,
    server: &ServerProcess,
    token: &str,
    id: &str,
    body: Value,
) -> anyhow::Result<()> {
    let r = https
        .post(format!("{}/api/admin/requests/{id}/events", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "{body}: {} {}", r.status(), r.text().await.unwrap_or_default());
    Ok(())
}

/// An admin signed in at `b` records a training for the day's weak clerk
/// through the staff page's form, dated today (as an admin would after
/// sending them on a course); waits for the page that lists it.
pub async fn record_training(b: &Browser) -> anyhow::Result<()> {
    b.go("/admin/staf").await?;
    b.js(&format!("document.querySelector('#t-nip').value = '{WEAK_CLERK}';")).await?;
    let today = b.js("const d = new Date(); return d.toISOString().slice(0, 10);").await?;
    b.type_into("#t-day", today.as_str().context("a date")?).await?;
    b.type_into("#t-topic", "Pelayanan prima dan komunikasi dengan warga").await?;
    b.type_into("#t-provider", "BKPSDM Kota Medan").await?;
    b.type_into("#t-hours", "16").await?;
    b.js("document.querySelector('#t-competency').value = 'komunikasi';").await?;
    b.click("#training-form button").await?;
    b.wait_until("the training listed", || b.exists("#trainings")).await
}
