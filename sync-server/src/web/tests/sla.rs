//! Service time as the regulations define it, on hand-made journeys whose
//! every figure is worked out by hand in the comments (WIB; offices open
//! 08:00-16:00 Monday to Friday unless a kelurahan has hours of its own;
//! one working day = one day of service hours).
//!
//! The documents are built with their real events and stored and
//! projected as a sync would; the figures are read back through the
//! request page, the overview and the API.

use loket_shared::workflow::{Event, EventKind, Status};
use loket_shared::{DocId, Hlc, Ticket};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const KEL_A: &str = "12.71.01.1001";
const KEL_B: &str = "12.71.01.1002";

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// One step of a hand-made journey: when, to which status, by whom, and
/// the agency it names.
pub(super) type Step = (OffsetDateTime, Status, &'static str, Option<&'static str>);

/// Stores and projects request `n` of `kelurahan`, filed at `filed`, with
/// `steps` in order; returns its id.
pub(super) fn journey(
    f: &Fixture,
    n: u8,
    kelurahan: &str,
    service: &str,
    filed: OffsetDateTime,
    steps: &[Step],
) -> String {
    use loket_shared::request::{self, Applicant, NewRequest};
    let created = ms(filed);
    let hlc = |at: i64, c: u32| Hlc { wall_ms: u64::try_from(at).unwrap(), counter: c };
    let id = DocId::new_v7(u64::try_from(created).unwrap(), [n; 10]);
    let mut doc = automerge::AutoCommit::new();
    let new = NewRequest {
        id,
        ticket: Ticket::new(&"K07".parse().unwrap(), 11, 2, u32::from(n)),
        kelurahan: kelurahan.parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: service.parse().unwrap(),
        created_at_ms: created,
        hlc: hlc(created, 0),
        applicant: Applicant {
            name: "Siti Aminah".parse().unwrap(),
            nik: "1271010101900003".parse().unwrap(),
            phone: None,
        },
        rating_key: None,
        create_event: Event {
            id: format!("create-{n}"),
            hlc: hlc(created, 0),
            node: "aa".into(),
            at_ms: created,
            by: "citizen".into(),
            kind: EventKind::Create,
            from: None,
            to: Status::Submitted,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: vec![],
            seal: None,
        },
    };
    request::create(&mut doc, &new).unwrap();
    for (i, (at, to, by, agency)) in steps.iter().enumerate() {
        let (_, derived) = crate::store::docs::read_request(&doc).unwrap();
        let at = ms(*at);
        let e = Event {
            id: format!("e{n}-{i}"),
            hlc: hlc(at, 1),
            node: "aa".into(),
            at_ms: at,
            by: (*by).into(),
            kind: EventKind::Transition,
            from: Some(derived.status),
            to: *to,
            note: None,
            agency: agency.map(Into::into),
            waiting: Vec::new(),
            result_ref: None,
            parents: derived.frontier.clone(),
            seal: None,
        };
        request::append_event(&mut doc, &e).unwrap();
        doc.commit();
    }
    let (view, derived) = crate::store::docs::read_request(&doc).unwrap();
    let doc_id = id.to_string();
    f.state
        .db
        .write(|tx| -> Result<(), crate::store::StoreError> {
            crate::store::docs::lock_partitions(tx, Some(&[kelurahan]))?;
            let mut stored = crate::store::docs::Stored {
                doc_type: loket_shared::sync::DocType::Request,
                kelurahan: Some(kelurahan.to_owned()),
                doc,
            };
            crate::store::docs::save(tx, &doc_id, &mut stored, true, created)?;
            crate::store::projection::project_request(tx, &view, &derived)
        })
        .unwrap();
    doc_id
}

pub(super) async fn page(f: &Fixture, session: &str, uri: &str) -> String {
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, format!("__Host-loket_session={session}"))
        .body(Body::empty())
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
}

/// The text of the element that starts at `marker` up to its closing tag.
fn element(html: &str, marker: &str, close: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("{marker} in the page"));
    html[at..at + html[at..].find(close).unwrap()].to_owned()
}

/// The numeric cells of a table row.
fn cells(row: &str) -> Vec<String> {
    row.split("<td class=\"num\">").skip(1).map(|c| c.split("</td>").next().unwrap().to_owned()).collect()
}

const CLERK: &str = "198503122010011002";
const AGENT: &str = "agency:DISDUKCAPIL:rina";

#[tokio::test]
async fn each_party_is_measured_in_service_hours_against_its_own_sla() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let admin = admin_token(&f.app).await;
    let session = web_session_for(&f, "admin");

    // J1, SKD (1 day) at A: filed Tue 22 Dec 14:00, taken 15:00, sent to
    // fetch a document Wed 23 Dec 08:00; back Wed 30 Dec 08:00 across Thu 24
    // (cuti bersama Natal), Fri 25 (Natal), the weekend; done 11:30.
    // Kelurahan: 1 h + 1 h + 3.5 h = 5.5 h = 0.6875 day, within 1 day.
    // Waiting for the citizen: Wed 23, Mon 28, Tue 29 = 3.00 days.
    // (Counted from filing without the pause it would be 3.69 days.)
    let j1 = journey(
        &f,
        1,
        KEL_A,
        "SKD",
        datetime!(2026-12-22 14:00 +7),
        &[
            (datetime!(2026-12-22 15:00 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-12-23 08:00 +7), Status::WaitingCitizen, CLERK, None),
            (datetime!(2026-12-30 08:00 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-12-30 11:30 +7), Status::Completed, CLERK, None),
        ],
    );
    // J2, PKK at A (kelurahan 1 day, Disdukcapil 3 days): filed Mon 2 Nov
    // 09:00, taken 10:00, handed to Disdukcapil 11:00, taken there Tue 3 Nov
    // 09:00, returned Mon 9 Nov 12:30, completed 14:00.
    // Kelurahan: 2 h + 1.5 h = 3.5 h = 0.4375 day: within.
    // Disdukcapil: Mon 11-16 (5 h) + Tue 8-9 (1 h) waiting to be taken, then
    // Tue 9-16 (7 h), Wed-Fri (24 h), Mon 8-12:30 (4.5 h): 41.5 h = 5.1875
    // days, over its 3.
    let j2 = journey(
        &f,
        2,
        KEL_A,
        "PKK",
        datetime!(2026-11-02 09:00 +7),
        &[
            (datetime!(2026-11-02 10:00 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-11-02 11:00 +7), Status::HandedOff, CLERK, Some("DISDUKCAPIL")),
            (datetime!(2026-11-03 09:00 +7), Status::InProgress, AGENT, Some("DISDUKCAPIL")),
            (datetime!(2026-11-09 12:30 +7), Status::InProgress, AGENT, None),
            (datetime!(2026-11-09 14:00 +7), Status::Completed, CLERK, None),
        ],
    );
    // J3, SKD at B: filed Thu 5 Nov 15:55, taken 15:58, done Fri 08:10:
    // 5 + 10 minutes of an 8-hour day = 0.03125 day.
    let j3 = journey(
        &f,
        3,
        KEL_B,
        "SKD",
        datetime!(2026-11-05 15:55 +7),
        &[
            (datetime!(2026-11-05 15:58 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-11-06 08:10 +7), Status::Completed, CLERK, None),
        ],
    );
    // J4 cancelled an hour after filing; J5 taken 09:30 and rejected two
    // weeks later, Mon 16 Nov 09:00: 0.5 h + 6.5 h + 9 days + 1 h = 10
    // days, over its 1.
    journey(
        &f,
        4,
        KEL_A,
        "SKD",
        datetime!(2026-11-02 09:00 +7),
        &[(datetime!(2026-11-02 10:00 +7), Status::Cancelled, CLERK, None)],
    );
    let j5 = journey(
        &f,
        5,
        KEL_A,
        "SKD",
        datetime!(2026-11-02 09:00 +7),
        &[
            (datetime!(2026-11-02 09:30 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-11-16 09:00 +7), Status::Rejected, CLERK, None),
        ],
    );

    let html = page(&f, &session, &format!("/admin/permohonan/{j1}")).await;
    assert!(
        element(&html, "id=\"time-kelurahan\"", "</dd>")
            .contains("0.69 hari kerja <span class=\"tag tag-ok\">dalam SLA 1 hari</span>"),
        "{html}"
    );
    assert!(element(&html, "id=\"time-citizen\"", "</dd>").contains("3.00 hari kerja"));
    assert!(element(&html, "id=\"complete-at\"", "</dd>").contains("30-12-2026 08:00"));
    let html = page(&f, &session, &format!("/admin/permohonan/{j2}")).await;
    assert!(
        element(&html, "id=\"time-kelurahan\"", "</dd>")
            .contains("0.44 hari kerja <span class=\"tag tag-ok\">dalam SLA 1 hari</span>")
    );
    assert!(
        element(&html, "data-agency=\"DISDUKCAPIL\"", "</dd>")
            .contains("5.19 hari kerja <span class=\"tag tag-bad\">melewati SLA 3 hari</span>"),
        "{html}"
    );
    assert!(!html.contains("id=\"time-citizen\""), "never waited for the citizen");
    let html = page(&f, &session, &format!("/admin/permohonan/{j3}")).await;
    assert!(
        element(&html, "id=\"time-kelurahan\"", "</dd>")
            .contains("0.03 hari kerja <span class=\"tag tag-ok\">dalam SLA 1 hari</span>")
    );
    let html = page(&f, &session, &format!("/admin/permohonan/{j5}")).await;
    assert!(
        element(&html, "id=\"time-kelurahan\"", "</dd>")
            .contains("10.00 hari kerja <span class=\"tag tag-bad\">melewati SLA 1 hari</span>")
    );

    // November per kelurahan: A filed J2, J4, J5; finished J2 and J5
    // (rejected); J4 cancelled; within the SLA only J2: 50.0 %. B: J3.
    // Disdukcapil's part of J2, judged against its own 3 days: late.
    let overview = |html: &str| {
        let a = cells(&element(html, &format!("tr data-key=\"{KEL_A}\""), "</tr>"));
        let b = cells(&element(html, &format!("tr data-key=\"{KEL_B}\""), "</tr>"));
        (a, b)
    };
    let expect_a = ["3", "2", "1", "1", "1", "50.0%"];
    let expect_b = ["1", "1", "0", "0", "1", "100.0%"];
    let html = page(&f, &session, "/admin/ringkasan?periode=2026-11&per=kelurahan").await;
    let (a, b) = overview(&html);
    assert_eq!(a[..6], expect_a, "admin, from the rollups");
    assert_eq!(b[..6], expect_b);
    let dk = cells(&element(&html, "tr data-agency=\"DISDUKCAPIL\"", "</tr>"));
    assert_eq!(dk, ["1", "1", "0", "0.0%", "5.19 hari kerja"]);

    // A supervisor of A reads the projections themselves: the same row.
    setup::add_user(
        &setup::Place::local(&f.state.config.data),
        NewUser {
            username: "lurah-a".parse().unwrap(),
            password: "rahasia-lurah-1".into(),
            role: Role::Supervisor,
            agency: None,
            region: Vec::new(),
            kelurahan: Some(KEL_A.parse().unwrap()),
        },
    )
    .unwrap();
    let lurah = web_session_for(&f, "lurah-a");
    let html = page(&f, &lurah, "/admin/ringkasan?periode=2026-11&per=kelurahan").await;
    assert_eq!(cells(&element(&html, &format!("tr data-key=\"{KEL_A}\""), "</tr>"))[..6], expect_a);
    assert!(!html.contains(&format!("tr data-key=\"{KEL_B}\"")), "another office is out of scope");

    // B keeps shorter hours, 07:30-15:00: J3 was filed after closing and
    // took 40 minutes of Friday's 7.5 hours: 0.0889 day. Only B's requests
    // are projected again.
    let hours = json!({ "hours": { "mon": "07:30-15:00", "tue": "07:30-15:00", "wed": "07:30-15:00",
                                   "thu": "07:30-15:00", "fri": "07:30-15:00" } });
    let (status, v) =
        call(&f.app, "PUT", &format!("/api/admin/catalog/hours/{KEL_B}"), Some(&admin), Some(hours)).await;
    assert_eq!((status, v["reprojected"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let html = page(&f, &session, &format!("/admin/permohonan/{j3}")).await;
    assert!(element(&html, "id=\"time-kelurahan\"", "</dd>").contains("0.09 hari kerja"));
    let html = page(&f, &session, &format!("/admin/permohonan/{j1}")).await;
    assert!(element(&html, "id=\"time-kelurahan\"", "</dd>").contains("0.69 hari kerja"), "A keeps the city's hours");

    // Offices open on cuti bersama: Thu 24 Dec becomes a working day, so
    // J1 waited 4 days; the kelurahan's own time does not move.
    let (status, v) =
        call(&f.app, "PUT", "/api/admin/catalog/settings", Some(&admin), Some(json!({ "cuti_bersama_open": true })))
            .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let html = page(&f, &session, &format!("/admin/permohonan/{j1}")).await;
    assert!(element(&html, "id=\"time-citizen\"", "</dd>").contains("4.00 hari kerja"));
    assert!(element(&html, "id=\"time-kelurahan\"", "</dd>").contains("0.69 hari kerja"));

    // Bad calendar input is refused by code and changes nothing.
    for (uri, body, expect) in [
        (
            format!("/api/admin/catalog/hours/{KEL_B}"),
            json!({ "hours": { "mon": "16:00-08:00" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (format!("/api/admin/catalog/hours/{KEL_B}"), json!({ "hours": {} }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/api/admin/catalog/hours/12.71.01.1999".to_owned(),
            json!({ "hours": { "mon": "08:00-16:00" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/admin/catalog/hours/nope".to_owned(),
            json!({ "hours": { "mon": "08:00-16:00" } }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, v) = call(&f.app, "PUT", &uri, Some(&admin), Some(body)).await;
        assert_eq!(status, expect, "{uri}: {v}");
        assert!(!code(&v).is_empty(), "{v}");
    }
    let html = page(&f, &session, &format!("/admin/permohonan/{j3}")).await;
    assert!(element(&html, "id=\"time-kelurahan\"", "</dd>").contains("0.09 hari kerja"), "refusals changed nothing");
}

/// A year's decree imported as CSV replaces that year's list (cuti bersama
/// marked as such); a bad line is refused by its number and nothing moves.
#[tokio::test]
async fn a_years_holidays_are_imported_from_csv() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    let admin = admin_token(&f.app).await;
    let year_of = |catalog: &Value, y: &str| -> Vec<(String, String)> {
        catalog["holidays"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["date"].as_str().unwrap().starts_with(y))
            .map(|h| (h["date"].as_str().unwrap().to_owned(), h["kind"].as_str().unwrap().to_owned()))
            .collect()
    };
    let (_, before) = call(&f.app, "GET", "/api/admin/catalog", Some(&admin), None).await;
    assert_eq!(year_of(&before, "2026").len(), 25, "17 holidays and 8 cuti bersama built in");
    let csv = "tanggal,nama,jenis\n2027-01-01,Tahun Baru Masehi,libur\n2027-02-08,Cuti bersama Imlek,cuti_bersama\n";
    let (status, v) = call(
        &f.app,
        "POST",
        "/api/admin/catalog/holidays/import",
        Some(&admin),
        Some(json!({ "year": 2027, "csv": csv })),
    )
    .await;
    assert_eq!((status, v["days"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
    let (_, after) = call(&f.app, "GET", "/api/admin/catalog", Some(&admin), None).await;
    assert_eq!(
        year_of(&after, "2027"),
        [("2027-01-01".into(), "libur".into()), ("2027-02-08".into(), "cuti_bersama".into())]
    );
    assert_eq!(year_of(&after, "2026"), year_of(&before, "2026"), "other years untouched");
    for (body, line) in [
        ("2027-01-01,Tahun Baru\n2027-13-01,Salah\n", "baris 2"),
        ("2027-01-01,Tahun Baru,libur\n2026-12-25,Natal\n", "baris 2"),
        ("2027-01-01,Tahun Baru,hari_besar\n", "baris 1"),
        ("2027-01-01\n", "baris 1"),
        ("2027-01-01,A\n2027-01-01,B\n", "baris 2"),
        ("=HYPERLINK(\"x\"),A\n", "baris 1"),
    ] {
        let (status, v) = call(
            &f.app,
            "POST",
            "/api/admin/catalog/holidays/import",
            Some(&admin),
            Some(json!({ "year": 2027, "csv": body })),
        )
        .await;
        assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_holiday_csv"), "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(line), "{body}: {message}");
        assert!(!message.contains("Salah") && !message.contains("HYPERLINK"), "no value echoed: {message}");
    }
    let (_, unchanged) = call(&f.app, "GET", "/api/admin/catalog", Some(&admin), None).await;
    assert_eq!(year_of(&unchanged, "2027"), year_of(&after, "2027"));
}
