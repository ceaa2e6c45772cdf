//! The SKM report as PermenPANRB 14/2017 lays it out (issue 14, items 7
//! and 8, must show): hand-made ratings with respondent profiles, stored
//! and projected as a sync would, read back through the IKM page, its CSV
//! parts and its XLSX, and checked against figures worked out by hand in
//! the comments: each element's NRR and weighted NRR to four decimals,
//! the converted IKM on both sides of every band edge (64.99 / 65.00,
//! 76.60 / 76.61, 88.30 / 88.31), and the profile's counts and shares.
//! Then the follow-up plans: who may write them, the audit, and hostile
//! text shown as text.

use loket_shared::respondent::Profile;
use loket_shared::skm::Scores;
use loket_shared::workflow::{Event, EventKind, Status};
use loket_shared::{DocId, Hlc, Ticket};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const KEL_A: &str = "12.71.01.1001";
const CLERK: &str = "198503122010011002";
const AGENT: &str = "agency:DISDUKCAPIL:rina";

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// One hand-made rated request: where, the ratings (scores, profile; the
/// first is the one counted, a second is a concurrent duplicate), and
/// whether it went through Disdukcapil.
pub(super) struct Rated {
    pub(super) n: u32,
    pub(super) kelurahan: &'static str,
    pub(super) rated_at: OffsetDateTime,
    pub(super) ratings: Vec<([u8; 9], Profile)>,
    pub(super) via_agency: bool,
}

/// Stores and projects a rated request as a sync would: filed two days
/// before its rating, taken, (handed to Disdukcapil and back,) completed,
/// then rated.
pub(super) fn store_rated(f: &Fixture, r: &Rated) {
    use loket_shared::request::{self, Applicant, NewRequest, Rating};
    let rated = ms(r.rated_at);
    let filed = rated - 2 * 86_400_000;
    let hlc = |at: i64, c: u32| Hlc { wall_ms: u64::try_from(at).unwrap(), counter: c };
    let mut random = [0u8; 10];
    random[..4].copy_from_slice(&r.n.to_be_bytes());
    let id = DocId::new_v7(u64::try_from(filed).unwrap(), random);
    let mut doc = automerge::AutoCommit::new();
    let new = NewRequest {
        id,
        ticket: Ticket::new(&"K07".parse().unwrap(), 8, 1, r.n),
        kelurahan: r.kelurahan.parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        created_at_ms: filed,
        hlc: hlc(filed, 0),
        applicant: Applicant {
            name: "Siti Aminah".parse().unwrap(),
            nik: "1271010101900003".parse().unwrap(),
            phone: None,
        },
        rating_key: None,
        create_event: Event {
            id: format!("create-{}", r.n),
            hlc: hlc(filed, 0),
            node: "aa".into(),
            at_ms: filed,
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
    let mut steps: Vec<(Status, &str, Option<&str>)> = vec![(Status::InProgress, CLERK, None)];
    if r.via_agency {
        steps.push((Status::HandedOff, CLERK, Some("DISDUKCAPIL")));
        steps.push((Status::InProgress, AGENT, Some("DISDUKCAPIL")));
        steps.push((Status::InProgress, AGENT, None));
    }
    steps.push((Status::Completed, CLERK, None));
    for (i, (to, by, agency)) in steps.into_iter().enumerate() {
        let (_, derived) = crate::store::docs::read_request(&doc).unwrap();
        let at = filed + 3_600_000 * (i as i64 + 1);
        let e = Event {
            id: format!("e{}-{i}", r.n),
            hlc: hlc(at, 1),
            node: "aa".into(),
            at_ms: at,
            by: by.into(),
            kind: EventKind::Transition,
            from: Some(derived.status),
            to,
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
    for (k, (scores, profile)) in r.ratings.iter().enumerate() {
        let at = rated + k as i64 * 60_000;
        let rating = Rating {
            id: format!("r{:04}-{k}", r.n),
            hlc: hlc(at, 2),
            node: "aa".into(),
            at_ms: at,
            scores: Scores::new(*scores).unwrap(),
            comment: None,
            profile: *profile,
        };
        request::append_rating(&mut doc, &rating).unwrap();
        doc.commit();
    }
    let (view, derived) = crate::store::docs::read_request(&doc).unwrap();
    let doc_id = id.to_string();
    let kelurahan = r.kelurahan;
    f.state
        .db
        .write(|tx| -> Result<(), crate::store::StoreError> {
            crate::store::docs::lock_partitions(tx, Some(&[kelurahan]))?;
            let mut stored = crate::store::docs::Stored {
                doc_type: loket_shared::sync::DocType::Request,
                kelurahan: Some(kelurahan.to_owned()),
                doc,
            };
            crate::store::docs::save(tx, &doc_id, &mut stored, true, filed)?;
            crate::store::projection::project_request(tx, &view, &derived)
        })
        .unwrap();
}

/// Scores for `n` respondents whose element sums are `sums`: respondent
/// `i` gets `sum / n`, plus one while `i < sum % n`.
fn spread(sums: [u64; 9], n: u64) -> Vec<[u8; 9]> {
    (0..n)
        .map(|i| {
            let mut s = [0u8; 9];
            for (e, sum) in sums.iter().enumerate() {
                s[e] = u8::try_from(sum / n + u64::from(i < sum % n)).unwrap();
            }
            s
        })
        .collect()
}

/// Element sums for a total spread evenly over the nine elements.
fn even(total: u64) -> [u64; 9] {
    std::array::from_fn(|e| total / 9 + u64::from((e as u64) < total % 9))
}

/// A profile from `(question, code)` pairs.
fn profile(pairs: &[(&str, &str)]) -> Profile {
    Profile::from_pairs(pairs.iter().copied()).unwrap()
}

/// The code respondent `i` answered, from runs `(code, how many)` in
/// order; past the runs, no answer.
fn run<'a>(runs: &[(&'a str, usize)], i: usize) -> Option<&'a str> {
    let mut end = 0;
    runs.iter()
        .find(|(_, n)| {
            end += n;
            i < end
        })
        .map(|(code, _)| *code)
}

/// Group A's profiles (24 respondents), by hand:
/// sex p 10, l 7, none 7; age le20 3, 21-30 6, 31-40 5, 41-50 2, gt50 1,
/// none 7; education sd 1, smp 2, sma 8, d1-d3 2, d4-s1 5, s2 1, none 5;
/// occupation pns-tni-polri 4, swasta 5, wiraswasta 6, pelajar 3,
/// lainnya 2, none 4.
fn profile_a(i: usize) -> Profile {
    let mut p = Profile::default();
    let runs: [(&str, &[(&str, usize)]); 4] = [
        ("sex", &[("p", 10), ("l", 7)]),
        ("age", &[("le20", 3), ("21-30", 6), ("31-40", 5), ("41-50", 2), ("gt50", 1)]),
        ("education", &[("sd", 1), ("smp", 2), ("sma", 8), ("d1-d3", 2), ("d4-s1", 5), ("s2", 1)]),
        ("occupation", &[("pns-tni-polri", 4), ("swasta", 5), ("wiraswasta", 6), ("pelajar", 3), ("lainnya", 2)]),
    ];
    for (key, runs) in runs {
        if let Some(code) = run(runs, i) {
            p.set(key.parse().unwrap(), code).unwrap();
        }
    }
    p
}

/// The groups: `(kelurahan, respondents, element sums, profile of
/// respondent i, through Disdukcapil)`. Converted IKM = 25 × total / (9 × n):
/// - A 1001: 24, total 763 (sums by hand, below): 19075/216 = 88.3101.. → 88.31 A
/// - B 1002: 19, total 604: 15100/171 = 88.3040.. → 88.30 B
/// - C 1003: 19, total 524: 13100/171 = 76.6081.. → 76.61 B
/// - D 1004: 26, total 717: 17925/234 = 76.6025.. → 76.60 C
/// - E 1005: 5, total 117: 2925/45 = 65.0000 → 65.00 C (through Disdukcapil)
/// - F 1006: 38, total 889: 22225/342 = 64.9853.. → 64.99 D
type Group = (&'static str, u64, [u64; 9], fn(usize) -> Profile, bool);

fn groups() -> Vec<Group> {
    vec![
        // A: U1 86, U2 85, U3 84, U4 85, U5 85, U6 85, U7 84, U8 86, U9 83 = 763.
        (KEL_A, 24, [86, 85, 84, 85, 85, 85, 84, 86, 83], profile_a, false),
        // B: every respondent answered sex l, nothing else.
        ("12.71.01.1002", 19, even(604), |_| profile(&[("sex", "l")]), false),
        // C: nobody answered.
        ("12.71.01.1003", 19, even(524), |_| Profile::default(), false),
        // D: even respondents p, odd l (13 each).
        ("12.71.01.1004", 26, even(717), |i| profile(&[("sex", if i % 2 == 0 { "p" } else { "l" })]), false),
        // E: p, p, l, none, none.
        (
            "12.71.01.1005",
            5,
            even(117),
            |i| match i {
                0 | 1 => profile(&[("sex", "p")]),
                2 => profile(&[("sex", "l")]),
                _ => Profile::default(),
            },
            true,
        ),
        // F: every respondent over 50, sex not answered.
        ("12.71.01.1006", 38, even(889), |_| profile(&[("age", "gt50")]), false),
    ]
}

/// Stores every group's ratings (all rated in August 2026, so in
/// 2026-Q3), plus: a concurrent second rating on A's sixth request
/// (scores 1, another profile: never counted), and a rating of A's at
/// 2026-10-01 00:00 WIB exactly (the next quarter's).
fn seed(f: &Fixture) {
    let mut n = 0u32;
    for (kelurahan, respondents, sums, profile_of, via_agency) in groups() {
        for (i, scores) in spread(sums, respondents).into_iter().enumerate() {
            n += 1;
            let mut ratings = vec![(scores, profile_of(i))];
            if kelurahan == KEL_A && i == 5 {
                ratings.push(([1; 9], profile(&[("sex", "l"), ("age", "gt50"), ("occupation", "lainnya")])));
            }
            let rated_at = datetime!(2026-08-03 10:00 +7) + time::Duration::hours(i as i64);
            store_rated(f, &Rated { n, kelurahan, rated_at, ratings, via_agency });
        }
    }
    let late = Rated {
        n: n + 1,
        kelurahan: KEL_A,
        rated_at: datetime!(2026-10-01 00:00 +7),
        ratings: vec![([1; 9], profile(&[("sex", "p"), ("education", "s2")]))],
        via_agency: false,
    };
    store_rated(f, &late);
}

/// A page through a session: `(status, Set-Cookie headers, body)`.
async fn get(f: &Fixture, session: &str, uri: &str) -> (StatusCode, Vec<String>, String) {
    let req = Request::get(uri).header(header::COOKIE, session).body(Body::empty()).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let set = resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, set, String::from_utf8_lossy(&body).into_owned())
}

async fn page_ok(f: &Fixture, session: &str, uri: &str) -> String {
    let (status, _, html) = get(f, session, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {html}");
    html
}

fn session_of(f: &Fixture, user: &str) -> String {
    format!("__Host-loket_session={}", web_session_for(f, user))
}

/// The text of the element that starts at `marker` up to `close`.
fn element<'a>(html: &'a str, marker: &str, close: &str) -> &'a str {
    let at = html.find(marker).unwrap_or_else(|| panic!("{marker} in the page"));
    &html[at..at + html[at..].find(close).unwrap()]
}

/// The text of the first `<td class="{class}">` in `html`.
fn cell<'a>(html: &'a str, class: &str) -> &'a str {
    let marker = format!("<td class=\"{class}\">");
    let at = html.find(&marker).unwrap_or_else(|| panic!("{marker} in {html}")) + marker.len();
    &html[at..at + html[at..].find("</td>").unwrap()]
}

/// CSV rows as maps from the header.
fn csv_maps(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| headers.iter().map(String::from).zip(r.unwrap().iter().map(String::from)).collect())
        .collect()
}

/// One sheet of an XLSX as maps from its first row.
fn xlsx_maps(bytes: &[u8], sheet: &str) -> Vec<BTreeMap<String, String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid XLSX");
    let range = book.worksheet_range(sheet).unwrap_or_else(|e| panic!("sheet {sheet}: {e}"));
    let mut rows = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<String>>());
    let header = rows.next().expect("a header");
    rows.map(|r| header.iter().cloned().zip(r).collect()).collect()
}

/// Two printed figures are the same number (an XLSX cell reads back as
/// a float: 3.5000 is 3.5).
fn same(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() < 1e-9)
}

/// The must-show test of issue 14, items 7 and 8.
#[tokio::test]
async fn the_skm_report_equals_figures_worked_out_by_hand() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    seed(&f);
    let admin = session_of(&f, "admin");

    // ---- Band edges, per kelurahan: page, CSV, XLSX (city-wide, Q3).
    let edges: [(&str, u64, &str, &str); 6] = [
        (KEL_A, 24, "88.31", "A"),
        ("12.71.01.1002", 19, "88.30", "B"),
        ("12.71.01.1003", 19, "76.61", "B"),
        ("12.71.01.1004", 26, "76.60", "C"),
        ("12.71.01.1005", 5, "65.00", "C"),
        ("12.71.01.1006", 38, "64.99", "D"),
    ];
    let html = page_ok(&f, &admin, "/admin/ikm?periode=2026-Q3&per=kelurahan").await;
    for (kel, n, ikm, grade) in edges {
        let row = element(&html, &format!("data-key=\"{kel}\""), "</tr>");
        // The IKM, and under it its grade as a tag (issue 15: one column).
        let ikm_cell = cell(row, "num ikm");
        assert_eq!(ikm_cell.split("<br>").next(), Some(ikm), "{kel}: {row}");
        assert!(ikm_cell.contains(&format!("data-grade=\"{grade}\">{grade} ")), "{kel}: {row}");
        assert!(row.contains(&format!("<td class=\"num\">{n}</td>")), "{kel} respondents: {row}");
    }
    let (_, _, csv) = download(&f, "/admin/ikm.csv?periode=2026-Q3&per=kelurahan").await;
    let (_, ct, xlsx) = download(&f, "/admin/ikm.xlsx?periode=2026-Q3&per=kelurahan").await;
    assert!(ct.contains("spreadsheetml"), "{ct}");
    let csv_rows = csv_maps(&csv);
    let xlsx_rows = xlsx_maps(&xlsx, "ikm-2026-Q3");
    for (kel, n, ikm, grade) in edges {
        for (what, rows) in [("csv", &csv_rows), ("xlsx", &xlsx_rows)] {
            let row = rows.iter().find(|r| r["kode"] == kel).unwrap_or_else(|| panic!("{what} {kel}"));
            assert!(same(&row["ikm"], ikm) && row["mutu"] == grade, "{what} {kel}: {row:?}");
            assert!(same(&row["responden"], &n.to_string()), "{what} {kel}: {row:?}");
        }
    }
    // The city: 131 respondents, total 763 + 604 + 524 + 717 + 117 + 889 =
    // 3614; unit IKM 3614/1179 = 3.06531.. → 3.0653; converted 90350/1179
    // = 76.6327.. → 76.63, B.
    let total = csv_rows.iter().find(|r| r["kode"] == "Total").unwrap();
    assert_eq!((total["responden"].as_str(), total["nrr_tertimbang"].as_str()), ("131", "3.0653"));
    assert_eq!((total["ikm"].as_str(), total["mutu"].as_str()), ("76.63", "B"));

    // ---- The city's profile: sex p = 10 (A) + 13 (D) + 2 (E) = 25,
    // 25/131 = 19.0839.. → 19.08; l = 7 + 19 + 13 + 1 = 40, 30.5343.. →
    // 30.53; no answer 131 - 65 = 66, 50.3816.. → 50.38; over 50 = 1 (A)
    // + 38 (F) = 39, 29.7709.. → 29.77. The duplicate and the October
    // rating are not counted.
    let city: [(&str, &str, u64, &str); 4] =
        [("sex", "p", 25, "19.08"), ("sex", "l", 40, "30.53"), ("sex", "", 66, "50.38"), ("age", "gt50", 39, "29.77")];
    assert_eq!(element(&html, "id=\"profile-respondents\"", "</strong>"), "id=\"profile-respondents\">131");
    for (d, code, n, pct) in city {
        let row = element(&html, &format!("data-dimension=\"{d}\" data-code=\"{code}\""), "</tr>");
        assert_eq!((cell(row, "num count"), cell(row, "num percent")), (n.to_string().as_str(), pct), "{d} {code}");
    }

    // ---- Kelurahan A alone: the regulation's breakdown, by hand.
    // NRR = sum / 24, weighted = sum / 216, four decimals, half up:
    // 86: 3.58333 → 3.5833, 0.398148 → 0.3981
    // 85: 3.54166 → 3.5417, 0.393518 → 0.3935
    // 84: 3.5 → 3.5000, 0.388888 → 0.3889
    // 83: 3.45833 → 3.4583, 0.384259 → 0.3843
    // Unit IKM 763/216 = 3.532407 → 3.5324, from the exact total: the
    // printed weighted NRRs add up to 3.5323.
    let by_hand: [(&str, &str, &str, &str); 9] = [
        ("U1", "86", "3.5833", "0.3981"),
        ("U2", "85", "3.5417", "0.3935"),
        ("U3", "84", "3.5000", "0.3889"),
        ("U4", "85", "3.5417", "0.3935"),
        ("U5", "85", "3.5417", "0.3935"),
        ("U6", "85", "3.5417", "0.3935"),
        ("U7", "84", "3.5000", "0.3889"),
        ("U8", "86", "3.5833", "0.3981"),
        ("U9", "83", "3.4583", "0.3843"),
    ];
    let query = format!("periode=2026-Q3&per=kelurahan&kelurahan={KEL_A}");
    let html = page_ok(&f, &admin, &format!("/admin/ikm?{query}")).await;
    let table = element(&html, "id=\"ikm-elements\"", "</table>");
    for (code, sum, nrr, weighted) in by_hand {
        let info = code.parse::<loket_shared::skm::Element>().unwrap().info();
        let row = element(table, &format!("data-element=\"{code}\""), "</tr>");
        assert!(row.contains(info.name_id), "{code}: the element's name in the table: {row}");
        assert_eq!((cell(row, "num"), cell(row, "num nrr"), cell(row, "num weighted")), (sum, nrr, weighted), "{code}");
    }
    assert!(html.contains("id=\"ikm-unit\">3.5324<"), "unit IKM");
    assert!(html.contains("id=\"ikm-converted\">88.31<") && html.contains("id=\"ikm-grade\">A<"), "converted, mutu");
    assert!(html.contains("id=\"ikm-performance\">Sangat baik<"), "kinerja (in Bahasa Indonesia, the page's default)");
    // Lowest: U9 (83), then U3 and U7 (84, in element order).
    let lowest = element(&html, "<ol id=\"lowest-elements\"", "</ol>");
    let order: Vec<&str> = lowest.split("<li data-element=\"").skip(1).map(|s| &s[..2]).collect();
    assert_eq!(order, ["U9", "U3", "U7"]);

    // A's profile, by hand (of 24): 10 → 41.67, 7 → 29.17, 3 → 12.50,
    // 6 → 25.00, 5 → 20.83, 2 → 8.33, 1 → 4.17, 8 → 33.33, 4 → 16.67.
    let profile_a: &[(&str, &str, &str, &str)] = &[
        ("sex", "l", "7", "29.17"),
        ("sex", "p", "10", "41.67"),
        ("sex", "", "7", "29.17"),
        ("age", "le20", "3", "12.50"),
        ("age", "21-30", "6", "25.00"),
        ("age", "31-40", "5", "20.83"),
        ("age", "41-50", "2", "8.33"),
        ("age", "gt50", "1", "4.17"),
        ("age", "", "7", "29.17"),
        ("education", "sd", "1", "4.17"),
        ("education", "smp", "2", "8.33"),
        ("education", "sma", "8", "33.33"),
        ("education", "d1-d3", "2", "8.33"),
        ("education", "d4-s1", "5", "20.83"),
        ("education", "s2", "1", "4.17"),
        ("education", "", "5", "20.83"),
        ("occupation", "pns-tni-polri", "4", "16.67"),
        ("occupation", "swasta", "5", "20.83"),
        ("occupation", "wiraswasta", "6", "25.00"),
        ("occupation", "pelajar", "3", "12.50"),
        ("occupation", "lainnya", "2", "8.33"),
        ("occupation", "", "4", "16.67"),
    ];
    assert!(html.contains("id=\"profile-respondents\">24<"));
    for &(d, code, n, pct) in profile_a {
        let row = element(&html, &format!("data-dimension=\"{d}\" data-code=\"{code}\""), "</tr>");
        assert_eq!((cell(row, "num count"), cell(row, "num percent")), (n, pct), "page {d} {code}");
    }
    // The same in the CSV parts and the XLSX sheets.
    let (status, _, profile_csv) = download(&f, &format!("/admin/ikm.csv?{query}&bagian=profil")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, elements_csv) = download(&f, &format!("/admin/ikm.csv?{query}&bagian=unsur")).await;
    let (_, _, xlsx) = download(&f, &format!("/admin/ikm.xlsx?{query}")).await;
    for (what, rows) in [("csv", csv_maps(&profile_csv)), ("xlsx", xlsx_maps(&xlsx, "profil"))] {
        for &(d, code, n, pct) in profile_a {
            let code = if code.is_empty() { "tidak_menjawab" } else { code };
            let row = rows.iter().find(|r| r["dimensi"] == d && r["kode"] == code).unwrap();
            assert!(same(&row["jumlah"], n) && same(&row["persen"], pct), "{what} {d} {code}: {row:?}");
            assert!(same(&row["responden"], "24"), "{what}");
        }
        assert_eq!(rows.len(), 5 + 2 + 6 + 5 + 4, "{what}: every answer and a no-answer row per question");
    }
    for (what, rows) in [("csv", csv_maps(&elements_csv)), ("xlsx", xlsx_maps(&xlsx, "unsur"))] {
        for (code, sum, nrr, weighted) in by_hand {
            let row = rows.iter().find(|r| r["kode"] == code).unwrap();
            let name = code.parse::<loket_shared::skm::Element>().unwrap().info().name_id;
            assert_eq!(row["unsur"], name, "{what} {code}");
            assert!(same(&row["jumlah_nilai"], sum), "{what} {code}: {row:?}");
            assert!(same(&row["nrr"], nrr) && same(&row["nrr_tertimbang"], weighted), "{what} {code}: {row:?}");
        }
        let ranks: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| !r["terendah"].is_empty())
            .map(|r| (r["kode"].as_str(), r["terendah"].as_str()))
            .collect();
        assert_eq!(ranks.len(), 3, "{what}");
        for (code, rank) in [("U9", "1"), ("U3", "2"), ("U7", "3")] {
            assert!(ranks.iter().any(|(c, r)| *c == code && same(r, rank)), "{what}: {ranks:?}");
        }
    }
    // The CSV in the elements part prints the digits themselves.
    let u3 = csv_maps(&elements_csv).into_iter().find(|r| r["kode"] == "U3").unwrap();
    assert_eq!((u3["nrr"].as_str(), u3["nrr_tertimbang"].as_str()), ("3.5000", "0.3889"));
    let (status, _, _) = download(&f, &format!("/admin/ikm.csv?{query}&bagian=semua")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown part");

    // ---- The next quarter holds only the rating at 2026-10-01 00:00 WIB.
    let html = page_ok(&f, &admin, &format!("/admin/ikm?periode=2026-Q4&kelurahan={KEL_A}")).await;
    assert!(html.contains("id=\"profile-respondents\">1<"));
    let row = element(&html, "data-dimension=\"education\" data-code=\"s2\"", "</tr>");
    assert_eq!((cell(row, "num count"), cell(row, "num percent")), ("1", "100.00"));

    // ---- Scopes. A kelurahan's supervisor reads their own office from
    // the rollups, and no other; an agency's report is computed from the
    // requests it held (E: p 2 → 40.00, l 1 → 20.00, none 2 → 40.00).
    add_user(&f, "pengawas-a", Role::Supervisor, None, Some(KEL_A));
    add_user(&f, "dukcapil", Role::Agency, Some("DISDUKCAPIL"), None);
    let sup = session_of(&f, "pengawas-a");
    let html = page_ok(&f, &sup, "/admin/ikm?periode=2026-Q3").await;
    assert!(html.contains("id=\"profile-respondents\">24<") && html.contains("id=\"ikm-unit\">3.5324<"));
    let (status, _, _) = get(&f, &sup, "/admin/ikm?periode=2026-Q3&kelurahan=12.71.01.1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = get(&f, &admin, "/admin/ikm?periode=2026-Q3&kelurahan=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let agency = session_of(&f, "dukcapil");
    let html = page_ok(&f, &agency, "/admin/ikm?periode=2026-Q3").await;
    assert!(html.contains("id=\"profile-respondents\">5<"), "the agency's requests");
    for (code, n, pct) in [("p", "2", "40.00"), ("l", "1", "20.00"), ("", "2", "40.00")] {
        let row = element(&html, &format!("data-dimension=\"sex\" data-code=\"{code}\""), "</tr>");
        assert_eq!((cell(row, "num count"), cell(row, "num percent")), (n, pct), "agency sex {code}");
    }
    assert!(html.contains("id=\"ikm-converted\">65.00<"), "E's IKM from rows");

    // ---- The profile is never shown beside a request.
    let token = admin_token(&f.app).await;
    let (_, list) = call(&f.app, "GET", "/api/admin/requests?limit=1", Some(&token), None).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, one) = call(&f.app, "GET", &format!("/api/admin/requests/{id}"), Some(&token), None).await;
    assert!(one["rating"]["scores"].is_object() && one["rating"].get("profile").is_none(), "{one}");
    let html = page_ok(&f, &admin, &format!("/admin/permohonan/{id}")).await;
    for d in loket_shared::respondent::Dimension::ALL {
        assert!(!html.contains(d.label_id()), "{} on a request's page", d.label_id());
    }
}

/// The rollup kept by difference equals the one computed from scratch.
#[tokio::test]
async fn the_profile_rollup_kept_by_difference_equals_a_rebuild() {
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    seed(&f);
    let rows = |f: &Fixture| {
        f.state
            .db
            .read(|c| {
                c.query(
                    "SELECT month, kelurahan, dimension, code, n FROM skm_profile WHERE n != 0 ORDER BY 1, 2, 3, 4",
                    &[],
                )
            })
            .unwrap()
    };
    let kept = rows(&f);
    // 2026-08, A, sex p: 10 (the duplicate's l is not counted).
    assert!(kept.iter().any(|r| r.0
        == vec![
            crate::store::Value::from(202608i64),
            KEL_A.into(),
            "sex".into(),
            "p".into(),
            crate::store::Value::from(10i64)
        ]));
    f.state.db.write(crate::store::projection::rebuild_rollups).unwrap();
    assert_eq!(rows(&f), kept);
}

fn add_user(f: &Fixture, name: &str, role: Role, agency: Option<&str>, kelurahan: Option<&str>) {
    setup::add_user(
        &setup::Place::local(&f.state.config.data),
        NewUser {
            username: name.parse().unwrap(),
            password: format!("rahasia-{name}-1"),
            role,
            agency: agency.map(Into::into),
            region: Vec::new(),
            kelurahan: kelurahan.map(|k| k.parse().unwrap()),
        },
    )
    .unwrap();
}

fn audit_rows(f: &Fixture) -> Vec<(String, String, String, Option<String>)> {
    f.state
        .db
        .read(|c| crate::store::accounts::audit_log(c, 100))
        .unwrap()
        .into_iter()
        .filter(|r| r.3.starts_with("followup_"))
        .map(|(_, user, _, action, _, reason, subject)| (user, action, reason, subject))
        .collect()
}

/// Follow-up plans: admins write them (CSRF, audited, checked), the IKM
/// page shows them under the lowest elements of its scope, a kelurahan's
/// supervisor reads their office's and the city's, agencies none; hostile
/// text is shown as text, in the page and the downloads.
#[tokio::test]
async fn follow_up_plans_are_written_by_admins_audited_and_shown_as_text() {
    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let f = fixture();
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
    seed(&f);
    add_user(&f, "pengawas-a", Role::Supervisor, None, Some(KEL_A));
    add_user(&f, "pengawas-b", Role::Supervisor, None, Some("12.71.01.1002"));
    add_user(&f, "dukcapil", Role::Agency, Some("DISDUKCAPIL"), None);
    let admin = session_of(&f, "admin");

    // The IKM page of A calls for a plan under each lowest element.
    let html = page_ok(&f, &admin, &format!("/admin/ikm?periode=2026-Q3&kelurahan={KEL_A}")).await;
    let u9 = element(&html, "<li data-element=\"U9\"", "</li>");
    assert!(u9.contains("Belum ada rencana") && u9.contains("unsur=U9"), "{u9}");

    let (status, set, html) =
        get(&f, &admin, &format!("/admin/ikm/tindak-lanjut?periode=2026-Q3&unsur=U9&kelurahan={KEL_A}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<option value=\"U9\" selected>"), "the element prefilled");
    let (cookies, csrf) = csrf_of(&admin, &set, &html);
    // A form field as a browser sends it: every byte but letters and
    // digits percent-encoded.
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    };
    let create = |kel: &str, element: &str, action: &str, target: &str| {
        format!(
            "csrf={csrf}&kelurahan={kel}&periode=2026-Q3&unsur={element}&rencana={}&penanggung_jawab={}&target={target}&status=&catatan=",
            enc(action),
            enc("Sekretaris Lurah")
        )
    };
    // Refused: a bad date, no action, an unknown element; without the
    // token; by a supervisor. Nothing stored, nothing audited.
    for (body, want) in [
        (create(KEL_A, "U9", "Papan alur", "31-12-2026"), StatusCode::UNPROCESSABLE_ENTITY),
        (create(KEL_A, "U9", "  ", "2026-12-31"), StatusCode::UNPROCESSABLE_ENTITY),
        (create(KEL_A, "U10", "Papan alur", "2026-12-31"), StatusCode::UNPROCESSABLE_ENTITY),
        (create("12.71.99.9999", "U9", "Papan alur", "2026-12-31"), StatusCode::UNPROCESSABLE_ENTITY),
        (create(KEL_A, "U9", "Papan alur", "2026-12-31").replace(&csrf, "x"), StatusCode::FORBIDDEN),
    ] {
        let resp = post_form(&f, &cookies, "/admin/ikm/tindak-lanjut", body.clone()).await;
        assert_eq!(resp.status(), want, "{body}");
    }
    let sup = session_of(&f, "pengawas-a");
    let (_, sup_set, sup_html) = get(&f, &sup, "/admin/ikm/tindak-lanjut").await;
    let (sup_cookies, sup_csrf) = csrf_of(&sup, &sup_set, &sup_html);
    let body = create(KEL_A, "U9", "Papan alur", "2026-12-31").replace(&csrf, &sup_csrf);
    assert_eq!(post_form(&f, &sup_cookies, "/admin/ikm/tindak-lanjut", body).await.status(), StatusCode::FORBIDDEN);
    assert!(!sup_html.contains("id=\"plan-form\""), "no form for a supervisor");
    assert!(audit_rows(&f).is_empty(), "nothing refused is audited");

    // Recorded: A's U9 (hostile text), the city's U3, B's U9.
    for (kel, element, action) in
        [(KEL_A, "U9", HOSTILE), ("", "U3", "Pelatihan SOP"), ("12.71.01.1002", "U9", "Kursi")]
    {
        let resp =
            post_form(&f, &cookies, "/admin/ikm/tindak-lanjut", create(kel, element, action, "2026-12-31")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let audit = audit_rows(&f);
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit.iter().all(|(user, action, _, _)| user == "admin" && action == "followup_create"));
    assert!(
        audit.iter().any(|(_, _, reason, _)| reason == "U9 2026-Q3 12.71.01.1001: direncanakan, target 2026-12-31")
    );
    assert!(audit.iter().any(|(_, _, reason, _)| reason.starts_with("U3 2026-Q3 kota:")));
    let plans =
        f.state.db.read(|c| crate::store::followups::list(c, &crate::store::reports::Scope::All, None)).unwrap();
    let a_u9 = plans.iter().find(|p| p.kelurahan.as_deref() == Some(KEL_A)).unwrap();
    assert_eq!(a_u9.action, HOSTILE, "stored as typed");
    assert!(audit.iter().any(|(_, _, _, subject)| subject.as_deref() == Some(&format!("rtl:{}", a_u9.id))));

    // Shown under A's lowest elements, as text: A's own and the city's.
    let html = page_ok(&f, &admin, &format!("/admin/ikm?periode=2026-Q3&kelurahan={KEL_A}")).await;
    let u9 = element(&html, "<li data-element=\"U9\"", "</li>");
    assert!(u9.contains(&format!("data-plan=\"{}\"", a_u9.id)) && u9.contains("&lt;script&gt;alert(1)"), "{u9}");
    assert!(!html.contains("<script>") && !html.contains("<img src=x"), "hostile HTML ran");
    assert!(!u9.contains("Kursi"), "B's plan is not A's");
    let u3 = element(&html, "<li data-element=\"U3\"", "</li>");
    assert!(u3.contains("Pelatihan SOP") && u3.contains("Kota Medan"), "{u3}");

    // Changed: progress and a note, audited with what changed.
    let form = format!(
        "csrf={csrf}&rencana={}&penanggung_jawab={}&target=2027-01-15&status=berjalan&catatan={}",
        enc(HOSTILE),
        enc("Sekretaris Lurah"),
        enc("Dipesan 2 Des")
    );
    let resp = post_form(&f, &cookies, &format!("/admin/ikm/tindak-lanjut/{}", a_u9.id), form.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let audit = audit_rows(&f);
    let update = audit.iter().find(|(_, action, _, _)| action == "followup_update").expect("audited");
    assert_eq!(update.2, "U9 2026-Q3 12.71.01.1001: berjalan, target 2027-01-15; diubah: target, status, catatan");
    let resp = post_form(&f, &cookies, "/admin/ikm/tindak-lanjut/999999", form.clone()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body = form.replace("status=berjalan", "status=done");
    let resp = post_form(&f, &cookies, &format!("/admin/ikm/tindak-lanjut/{}", a_u9.id), body).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(audit_rows(&f).len(), 4, "a refused change is not audited");

    // The supervisors: A's sees A's and the city's plans, not B's; the
    // agency has none.
    let html = page_ok(&f, &sup, "/admin/ikm/tindak-lanjut").await;
    assert!(html.contains("Pelatihan SOP") && html.contains("&lt;script&gt;") && !html.contains("Kursi"));
    assert!(html.contains("data-status=\"berjalan\"") && html.contains("Dipesan 2 Des"));
    let html = page_ok(&f, &session_of(&f, "pengawas-b"), "/admin/ikm/tindak-lanjut").await;
    assert!(html.contains("Kursi") && !html.contains("&lt;script&gt;"));
    let (status, _, _) = get(&f, &session_of(&f, "dukcapil"), "/admin/ikm/tindak-lanjut").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // In the downloads: the CSV part (a formula-safe text cell) and the
    // XLSX sheet.
    let query = format!("periode=2026-Q3&kelurahan={KEL_A}");
    let (_, _, csv) = download(&f, &format!("/admin/ikm.csv?{query}&bagian=tindak-lanjut")).await;
    let (_, _, xlsx) = download(&f, &format!("/admin/ikm.xlsx?{query}")).await;
    for (what, rows) in [("csv", csv_maps(&csv)), ("xlsx", xlsx_maps(&xlsx, "tindak-lanjut"))] {
        assert_eq!(rows.len(), 2, "{what}: A's and the city's: {rows:?}");
        let a = rows.iter().find(|r| r["kantor"] == KEL_A).unwrap();
        assert_eq!(
            (a["unsur"].as_str(), a["terendah"].as_str(), a["status"].as_str(), a["catatan_progres"].as_str()),
            ("U9", "ya", "berjalan", "Dipesan 2 Des"),
            "{what}"
        );
        assert_eq!(a["rencana_tindak_lanjut"], HOSTILE, "{what}: the text as typed");
        assert!(rows.iter().any(|r| r["kantor"] == "kota" && r["unsur"] == "U3"), "{what}");
    }
}
