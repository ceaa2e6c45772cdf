//! Agency units with a region (issue 16, item 6): Kantor Camat, KUA and
//! Polsek work per kecamatan. An account of one unit sees what was handed
//! to its agency from its own kecamatan and nothing of another's, in the
//! request list and detail, the agency figures and complaints; a hand-off
//! reads as the unit that serves the request's kelurahan.

use loket_shared::complaint::About;
use loket_shared::workflow::Status;
use time::macros::datetime;

use super::complaints::{push_complaint, token, with_catalog};
use super::sla::{journey, page};
use super::*;

/// Medan Kota (12.71.01) and Medan Sunggal (12.71.02).
const KOTA: &str = "12.71.01.1001";
const SUNGGAL: &str = "12.71.02.1001";
const CLERK: &str = "198503122010011002";

fn new_user(name: &str, agency: &str, region: &[&str]) -> NewUser {
    NewUser {
        username: name.parse().unwrap(),
        password: format!("rahasia-{name}-1"),
        role: Role::Agency,
        agency: Some(agency.into()),
        region: region.iter().map(|r| (*r).to_owned()).collect(),
        kelurahan: None,
    }
}

#[test]
fn a_units_account_names_a_real_region_and_only_when_its_agency_has_units() {
    let f = fixture();
    let at = setup::Place::local(&f.state.config.data);
    let refused = |u: NewUser| setup::add_user(&at, u).unwrap_err().to_string();
    assert!(refused(new_user("camat-x", "CAMAT", &[])).contains("--region"), "a Camat needs its kecamatan");
    assert!(refused(new_user("camat-y", "CAMAT", &["12.71.99"])).contains("12.71.99"), "not a kecamatan of Medan");
    assert!(refused(new_user("camat-z", "CAMAT", &[KOTA])).contains(KOTA), "a kelurahan is not a kecamatan");
    assert!(refused(new_user("dukcapil", "DISDUKCAPIL", &["12.71.01"])).contains("whole city"));
    assert!(refused(new_user("nope", "NOPE", &[])).contains("no agency"));
    // Before the first start the built-in catalog decides; a Polsek whose
    // area spans two kecamatan names both.
    setup::add_user(&at, new_user("polsek-baru", "POLSEK", &["12.71.02", "12.71.01"])).unwrap();
    let users = f.state.db.read(crate::store::accounts::list_users).unwrap();
    let polsek = users.iter().find(|u| u.username == "polsek-baru").unwrap();
    assert_eq!(polsek.region, ["12.71.01", "12.71.02"]);
}

#[tokio::test]
async fn a_camat_of_one_kecamatan_sees_nothing_of_another() {
    let f = fixture();
    with_catalog(&f);
    let at = setup::Place::local(&f.state.config.data);
    setup::add_user(&at, new_user("camat-kota", "CAMAT", &["12.71.01"])).unwrap();
    setup::add_user(&at, new_user("camat-sunggal", "CAMAT", &["12.71.02"])).unwrap();
    // An heirs' letter (WARIS) from each kecamatan, handed to its Camat,
    // who returned it; the office finished it within the month.
    let handed = |kelurahan: &'static str, n: u8| {
        let steps = [
            (datetime!(2026-11-02 09:00 +7), Status::InProgress, CLERK, None),
            (datetime!(2026-11-02 10:00 +7), Status::HandedOff, CLERK, Some("CAMAT")),
            (datetime!(2026-11-03 09:00 +7), Status::InProgress, "agency:CAMAT:camat", Some("CAMAT")),
            (datetime!(2026-11-04 09:00 +7), Status::InProgress, "agency:CAMAT:camat", None),
            (datetime!(2026-11-04 10:00 +7), Status::Completed, CLERK, None),
        ];
        journey(&f, n, kelurahan, "WARIS", datetime!(2026-11-02 08:30 +7), &steps)
    };
    let (in_kota, in_sunggal) = (handed(KOTA, 1), handed(SUNGGAL, 2));
    let (kota, sunggal) = (token(&f, "camat-kota").await, token(&f, "camat-sunggal").await);

    for (me, mine, theirs) in [(&kota, &in_kota, &in_sunggal), (&sunggal, &in_sunggal, &in_kota)] {
        let (_, list) = call(&f.app, "GET", "/api/admin/requests", Some(me), None).await;
        let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|i| i["id"].as_str()).collect();
        assert_eq!(ids, [mine.as_str()], "{list}");
        let detail = |id: &str| format!("/api/admin/requests/{id}");
        assert_eq!(call(&f.app, "GET", &detail(mine), Some(me), None).await.0, StatusCode::OK);
        assert_eq!(call(&f.app, "GET", &detail(theirs), Some(me), None).await.0, StatusCode::NOT_FOUND);
        let personal = format!("{}/personal?reason=periksa%20ahli%20waris", detail(theirs));
        assert_eq!(call(&f.app, "GET", &personal, Some(me), None).await.0, StatusCode::NOT_FOUND);
        let events = format!("{}/events", detail(theirs));
        let note = json!({ "to": "completed", "note": "selesai" });
        assert_eq!(call(&f.app, "POST", &events, Some(me), Some(note)).await.0, StatusCode::NOT_FOUND);
    }

    // The request page names the unit that serves the kelurahan.
    let session = web_session_for(&f, "camat-kota");
    let html = page(&f, &session, &format!("/admin/permohonan/{in_kota}")).await;
    assert!(html.contains("Kantor Camat Medan Kota"), "the unit by its kecamatan");
    assert!(!html.contains("Medan Sunggal"));
    // Where time is lost: the unit's figures count its own region's part.
    let waited = |html: &str| {
        let at = html.find("data-agency=\"CAMAT\" data-status=\"handed_off\"").expect("the Camat's row");
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        row.split("<td class=\"num\">").nth(1).unwrap().split("</td>").next().unwrap().to_owned()
    };
    let unit = page(&f, &session, "/admin/waktu?periode=2026-11").await;
    let admin_session = web_session_for(&f, "admin");
    let city = page(&f, &admin_session, "/admin/waktu?periode=2026-11").await;
    assert_eq!((waited(&unit), waited(&city)), ("1".to_owned(), "2".to_owned()));

    // A complaint routed to the Camat: only its own kecamatan's unit.
    let id = push_complaint(&f.state, 1, crate::store::now_ms(), About::Office);
    let admin = admin_token(&f.app).await;
    let register = json!({ "kind": "register", "class": "ringan", "unit": "agency:CAMAT" });
    let steps = format!("/api/admin/complaints/{id}/steps");
    let (status, v) = call(&f.app, "POST", &steps, Some(&admin), Some(register)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let detail = format!("/api/admin/complaints/{id}");
    assert_eq!(call(&f.app, "GET", &detail, Some(&kota), None).await.0, StatusCode::OK);
    assert_eq!(call(&f.app, "GET", &detail, Some(&sunggal), None).await.0, StatusCode::NOT_FOUND);
    let (_, list) = call(&f.app, "GET", "/api/admin/complaints", Some(&sunggal), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let (_, list) = call(&f.app, "GET", "/api/admin/complaints", Some(&kota), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let answer = json!({ "kind": "answer", "text": "Sudah kami tindak lanjuti." });
    assert_eq!(call(&f.app, "POST", &steps, Some(&sunggal), Some(answer)).await.0, StatusCode::NOT_FOUND);
}
