//! Complaints (issue 16) through the API: the central steps and their
//! rules, overdue by the office calendar, who may see and act, and the
//! complainant's identity masked, audited, and never shown to the staff
//! member complained about.

use loket_shared::complaint::{About, Complainant, NewComplaint, Step, StepKind};
use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
use loket_shared::{ComplaintTicket, DocId, Hlc};

use super::*;

const KEL: &str = "12.71.01.1001";
const NIK: &str = "1271014101900003";
const STAFF: &str = "198001012006041001";

fn kiosk() -> crate::auth::KioskAuth {
    crate::auth::KioskAuth {
        id: "k07".into(),
        code: "K07".parse().unwrap(),
        kelurahan: KEL.parse().unwrap(),
        actor: hex::encode([5u8; 16]),
    }
}

/// The `n`th complaint of kiosk K07, filed at `at_ms` about `about` by a
/// named complainant, as the kiosk writes it.
fn complaint_doc(n: u8, at_ms: i64, about: About) -> (DocId, automerge::AutoCommit) {
    let actor = [5u8; 16];
    let id = DocId::new_v7(u64::try_from(at_ms).unwrap(), [n; 10]);
    let hlc = Hlc { wall_ms: u64::try_from(at_ms).unwrap(), counter: 0 };
    let new = NewComplaint {
        id,
        ticket: ComplaintTicket::new(&"K07".parse().unwrap(), 11, 28, u32::from(n)),
        kelurahan: KEL.parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        created_at_ms: at_ms,
        hlc,
        about,
        complainant: Some(Complainant {
            name: "Siti Aminah".parse().unwrap(),
            nik: Some(NIK.parse().unwrap()),
            phone: Some("081234567890".parse().unwrap()),
        }),
        text: "Petugas meminta biaya tambahan.".into(),
        file_step: Step {
            id: format!("f{n}"),
            hlc,
            node: hex::encode(actor),
            at_ms,
            by: "citizen".into(),
            kind: StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: vec![],
            seal: None,
        },
    };
    let mut doc = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    loket_shared::complaint::create(&mut doc, &new).unwrap();
    (id, doc)
}

/// Pushes what `doc` has after `base` as kiosk K07 would.
fn push_to(
    db: &crate::store::Db,
    seal: &crate::seal::SealKey,
    id: DocId,
    doc: &mut automerge::AutoCommit,
    base: &[automerge::ChangeHash],
) -> Result<(), crate::sync::Refusal> {
    let push = PushDoc {
        doc: id.to_bytes(),
        doc_type: DocType::Complaint,
        base: base.iter().map(|h| h.0).collect(),
        changes: if base.is_empty() { doc.save() } else { doc.save_after(base) },
        heads: doc.get_heads().iter().map(|h| h.0).collect(),
        fallback: None,
    };
    let req = SyncRequest {
        version: PROTOCOL_VERSION,
        client: "test".into(),
        push: vec![push],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    };
    super::enrolled(db, &kiosk());
    crate::sync::exchange(db, seal, &kiosk(), &req, crate::store::now_ms()).map(|_| ())
}

/// The `n`th complaint of kiosk K07, pushed.
pub(super) fn push_complaint(state: &AppState, n: u8, at_ms: i64, about: About) -> String {
    let (id, mut doc) = complaint_doc(n, at_ms, about);
    push_to(&state.db, &state.seal, id, &mut doc, &[]).unwrap();
    id.to_string()
}

/// The built-in catalog, as a server's first start writes it.
pub(super) fn with_catalog(f: &Fixture) {
    f.state.db.write(|tx| crate::central::ensure_catalog(tx, &f.state.writer)).unwrap();
}

/// The catalog and the users the scope tests need: the office's
/// supervisor (`lurah`), another office's (`lurah-lain`), Disdukcapil
/// (`dukcapil`) and a supervisor who is also the staff member `STAFF`
/// (`petugas`), whom complaints may be about.
fn office_users(f: &Fixture) {
    with_catalog(f);
    add(f, "lurah", Role::Supervisor, None, Some(KEL));
    add(f, "lurah-lain", Role::Supervisor, None, Some("12.71.01.1002"));
    add(f, "dukcapil", Role::Agency, Some("DISDUKCAPIL"), None);
    add(f, "petugas", Role::Supervisor, None, Some(KEL));
    let staff_user: crate::auth::Username = "petugas".parse().unwrap();
    assert!(f.state.db.write(|tx| crate::store::accounts::set_staff_id(tx, &staff_user, Some(STAFF))).unwrap());
}

fn add(f: &Fixture, name: &str, role: Role, agency: Option<&str>, kelurahan: Option<&str>) {
    setup::add_user(
        &setup::Place::local(&f.state.config.data),
        NewUser {
            username: name.parse().unwrap(),
            password: format!("rahasia-{name}-1"),
            role,
            agency: agency.map(str::to_owned),
            region: Vec::new(),
            kelurahan: kelurahan.map(|k| k.parse().unwrap()),
        },
    )
    .unwrap();
}

pub(super) async fn token(f: &Fixture, name: &str) -> String {
    let (status, v) = login(&f.app, name, &format!("rahasia-{name}-1")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// Every step through the API, each refused where the rules say so, with
/// the list's state and overdue following.
#[tokio::test]
async fn central_steps_follow_the_complaint_rules_and_overdue_follows_the_calendar() {
    let f = fixture();
    with_catalog(&f);
    let old = 1_764_300_000_000; // 28 November 2025: long past any deadline
    let id = push_complaint(&f.state, 3, old, About::Office);
    let fresh = push_complaint(&f.state, 2, crate::store::now_ms(), About::General);
    let admin = admin_token(&f.app).await;

    let (status, list) = call(&f.app, "GET", "/api/admin/complaints", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["id"], fresh.as_str(), "newest first");
    assert_eq!(items[0]["overdue"], false, "filed now: due in two working days");
    assert_eq!(items[1]["overdue"], true, "unregistered for a year: overdue by the strictest class");
    assert_eq!(items[1]["state"], "received");
    assert_eq!(items[1]["about"]["kind"], "office");
    assert!(!list.to_string().contains(NIK) && !list.to_string().contains("Siti"), "{list}");
    let (_, overdue) = call(&f.app, "GET", "/api/admin/complaints?overdue=true", Some(&admin), None).await;
    assert_eq!(overdue["items"].as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue["items"][0]["id"], id.as_str());
    let (_, page) = call(&f.app, "GET", "/api/admin/complaints?limit=1", Some(&admin), None).await;
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, page2) =
        call(&f.app, "GET", &format!("/api/admin/complaints?limit=1&cursor={next}"), Some(&admin), None).await;
    assert_eq!(page2["items"][0]["id"], id.as_str(), "{page2}");
    assert!(page2["next"].is_null());

    let steps = format!("/api/admin/complaints/{id}/steps");
    let post = |body: Value| {
        let (app, steps, admin) = (f.app.clone(), steps.clone(), admin.clone());
        async move { call(&app, "POST", &steps, Some(&admin), Some(body)).await }
    };
    let refused: Vec<(Value, StatusCode, &str)> = vec![
        (json!({ "kind": "answer", "text": "Sudah ditindak." }), StatusCode::CONFLICT, "not_registered"),
        (json!({ "kind": "extend", "days": 7, "text": "Perlu waktu." }), StatusCode::CONFLICT, "not_registered"),
        (json!({ "kind": "close" }), StatusCode::CONFLICT, "not_answered"),
        (json!({ "kind": "file" }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_step"),
        (json!({ "kind": "register", "class": "normatif" }), StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        (
            json!({ "kind": "register", "class": "berat", "unit": "kelurahan:12.71.01.1001" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_class",
        ),
        (
            json!({ "kind": "register", "class": "normatif", "unit": "kelurahan:12.71.01.1002" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_unit",
        ),
        (
            json!({ "kind": "register", "class": "normatif", "unit": "agency:NOPE" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_agency",
        ),
    ];
    for (body, status, want) in refused {
        let (got, v) = post(body.clone()).await;
        assert_eq!((got, code(&v)), (status, want), "{body}: {v}");
    }
    let (status, v) = post(json!({ "kind": "register", "class": "normatif", "unit": "kelurahan:12.71.01.1001" })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "registered");
    let (status, v) = post(json!({ "kind": "extend", "days": 7 })).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        "an extension needs its notice"
    );
    let (status, v) = post(json!({ "kind": "extend", "days": 7, "text": "Perlu pemeriksaan lapangan." })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = post(json!({ "kind": "extend", "days": 3, "text": "Lagi." })).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "already_extended"));
    let (status, v) = post(json!({ "kind": "lapor", "lapor": "LPR-2025-0042" })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = post(json!({ "kind": "lapor", "lapor": "LPR-2025-0043" })).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "already_forwarded"));

    let (_, detail) = call(&f.app, "GET", &format!("/api/admin/complaints/{id}"), Some(&admin), None).await;
    assert_eq!(detail["state"], "registered", "{detail}");
    assert_eq!(detail["class"], "normatif");
    assert_eq!(detail["extended_days"], 7);
    assert_eq!(detail["overdue"], true, "5 + 7 working days from November 2025 are long past");
    assert_eq!(detail["lapor"], json!(["LPR-2025-0042"]));

    let (status, v) = post(json!({ "kind": "answer", "text": "Biaya dikembalikan; petugas ditegur." })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "answered");
    let (_, list) = call(&f.app, "GET", "/api/admin/complaints?state=answered", Some(&admin), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["overdue"], false, "an answered complaint is not overdue");
    assert_eq!(list["items"][0]["lapor"], "LPR-2025-0042");
    let (status, v) = post(json!({ "kind": "close", "text": "Selesai." })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = post(json!({ "kind": "answer", "text": "Tambahan." })).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, "complaint_closed"));

    let (_, detail) = call(&f.app, "GET", &format!("/api/admin/complaints/{id}"), Some(&admin), None).await;
    assert_eq!(detail["state"], "closed");
    let kinds: Vec<&str> = detail["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["file", "register", "extend", "lapor", "answer", "close"]);
    assert_eq!(detail["answers"][0]["text"], "Biaya dikembalikan; petugas ditegur.");
    assert_eq!(detail["flags"], json!([]));
    // Each step names the one before it: written on the derived frontier.
    let steps = detail["steps"].as_array().unwrap();
    for pair in steps.windows(2) {
        assert_eq!(pair[1]["parents"], json!([pair[0]["id"]]), "{detail}");
    }

    let (status, v) = call(&f.app, "GET", "/api/admin/complaints?state=nope", Some(&admin), None).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "invalid_state"));
    let (status, _) = call(&f.app, "GET", "/api/admin/complaints/not-an-id", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A request's id is no complaint.
    let request = push_request(&f.state, NIK);
    let (status, _) = call(&f.app, "GET", &format!("/api/admin/complaints/{request}"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Who may see and act: the office's own supervisor acts, another
/// office's sees nothing, a city-wide supervisor reads only, an agency
/// sees a complaint once it is routed to it. The complainant is masked
/// for everyone, shown in full only with a reason and an audit row, and
/// never to the staff member the complaint is about.
#[tokio::test]
async fn only_the_right_users_act_and_the_staff_complained_about_never_sees_the_complainant() {
    let f = fixture();
    office_users(&f);
    let id = push_complaint(&f.state, 1, crate::store::now_ms(), About::Staff(STAFF.parse().unwrap()));
    let admin = admin_token(&f.app).await;
    let (lurah, other, agency, petugas) = (
        token(&f, "lurah").await,
        token(&f, "lurah-lain").await,
        token(&f, "dukcapil").await,
        token(&f, "petugas").await,
    );
    let city = token_of_pengawas(&f).await;
    let detail = format!("/api/admin/complaints/{id}");
    let steps = format!("{detail}/steps");

    assert_eq!(call(&f.app, "GET", &detail, Some(&other), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&f.app, "GET", &detail, Some(&agency), None).await.0, StatusCode::NOT_FOUND, "not routed yet");
    let (_, list) = call(&f.app, "GET", "/api/admin/complaints", Some(&other), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    let (status, v) = call(&f.app, "GET", &detail, Some(&city), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["may_act"], false);
    let register = json!({ "kind": "register", "class": "ringan", "unit": "agency:DISDUKCAPIL" });
    let (status, v) = call(&f.app, "POST", &steps, Some(&city), Some(register.clone())).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "a city-wide supervisor reads only");
    let (status, v) = call(&f.app, "POST", &steps, Some(&other), Some(register.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = call(&f.app, "POST", &steps, Some(&lurah), Some(register)).await;
    assert_eq!(status, StatusCode::CREATED, "the office's own supervisor registers it: {v}");

    // Routed to Disdukcapil: now its users see it and act on it.
    let (status, v) = call(&f.app, "GET", &detail, Some(&agency), None).await;
    assert_eq!((status, &v["may_act"]), (StatusCode::OK, &json!(true)), "{v}");
    let (_, list) = call(&f.app, "GET", "/api/admin/complaints", Some(&agency), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let answer = json!({ "kind": "answer", "text": "Sudah kami tindak lanjuti." });
    let (status, v) = call(&f.app, "POST", &steps, Some(&agency), Some(answer)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, v) = call(&f.app, "GET", &detail, Some(&admin), None).await;
    assert!(v["answers"][0]["by"].as_str().unwrap().starts_with("agency:DISDUKCAPIL:"), "{v}");

    // Masked for the admin and the office; the name's initials only.
    for who in [&admin, &lurah, &agency] {
        let (_, v) = call(&f.app, "GET", &detail, Some(who), None).await;
        let text = v.to_string();
        assert!(!text.contains(NIK) && !text.contains("Siti Aminah") && !text.contains("81234567890"), "{v}");
        assert_eq!(v["complainant"]["name"], "S*** A***", "{v}");
        assert_eq!(v["complainant_hidden"], false);
    }
    // The staff member complained about: nothing at all, even masked.
    let (status, v) = call(&f.app, "GET", &detail, Some(&petugas), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["complainant"].is_null(), "{v}");
    assert_eq!(v["complainant_hidden"], true);
    assert!(!v.to_string().contains("S***") && !v.to_string().contains("127101"), "{v}");
    assert_eq!(v["may_act"], false, "nobody handles a complaint about themselves");
    let close = json!({ "kind": "close" });
    let (status, v) = call(&f.app, "POST", &steps, Some(&petugas), Some(close)).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "complaint_about_you"), "{v}");

    let full = format!("{detail}/complainant?reason=tindak%20lanjut%20pengaduan");
    let (status, v) = call(&f.app, "GET", &full, Some(&petugas), None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "forbidden_personal_data"), "supervisors see masked data");
    // Even an admin account that is the staff member complained about.
    let admin_user: crate::auth::Username = "admin".parse().unwrap();
    f.state.db.write(|tx| crate::store::accounts::set_staff_id(tx, &admin_user, Some(STAFF))).unwrap();
    let (status, v) = call(&f.app, "GET", &full, Some(&admin), None).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, "complaint_about_you"), "{v}");
    let (_, v) = call(&f.app, "GET", &detail, Some(&admin), None).await;
    assert!(v["complainant"].is_null(), "{v}");
    f.state.db.write(|tx| crate::store::accounts::set_staff_id(tx, &admin_user, None)).unwrap();
    let (_, audit) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(0), "refused views are not views: {audit}");

    let (status, v) = call(&f.app, "GET", &format!("{detail}/complainant"), Some(&admin), None).await;
    assert_eq!((status, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"));
    let (status, v) = call(&f.app, "GET", &full, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["name"].as_str(), v["nik"].as_str()), (Some("Siti Aminah"), Some(NIK)));
    let (_, audit) = call(&f.app, "GET", "/api/admin/audit", Some(&admin), None).await;
    assert_eq!(audit["items"][0]["action"], "view_complainant", "{audit}");
    assert_eq!(audit["items"][0]["request"], id.as_str());
    assert_eq!(audit["items"][0]["reason"], "tindak lanjut pengaduan");
    // The agency it is routed to may see it too, audited.
    let (status, v) = call(&f.app, "GET", &full, Some(&agency), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

async fn token_of_pengawas(f: &Fixture) -> String {
    let (status, v) = login(&f.app, "pengawas", "rahasia-pengawas").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// After a restore, kiosks bring the centre's steps back: sealed steps
/// by a server actor are taken, in a complaint the server lost whole and
/// in one it holds only as filed; the same step with its text changed
/// (the seal no longer fits) is refused and nothing is stored.
#[tokio::test]
async fn sealed_central_steps_travel_back_and_tampered_ones_do_not() {
    let f = fixture();
    let admin = admin_token(&f.app).await;
    let (id, mut filed) = complaint_doc(1, crate::store::now_ms(), About::Office);
    push_to(&f.state.db, &f.state.seal, id, &mut filed, &[]).unwrap();
    let steps = format!("/api/admin/complaints/{id}/steps");
    for body in [
        json!({ "kind": "register", "class": "ringan", "unit": format!("kelurahan:{KEL}") }),
        json!({ "kind": "answer", "text": "Sudah ditangani." }),
    ] {
        let (status, v) = call(&f.app, "POST", &steps, Some(&admin), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    // What the kiosk holds after pulling.
    let mut held = f.state.db.read(|c| crate::store::docs::load(c, &id.to_string())).unwrap().unwrap().doc;
    let empty = || {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Db::open(&dir.path().join("restored.db")).unwrap();
        crate::store::migrate::run(&db).unwrap();
        (dir, db)
    };
    let answered = |db: &crate::store::Db| {
        db.read(|c| crate::store::complaints::row(c, &id.to_string())).unwrap().map(|r| r.state)
    };

    // Lost whole: the kiosk's copy comes back as a new document.
    let (_d1, lost) = empty();
    push_to(&lost, &f.state.seal, id, &mut held, &[]).unwrap();
    assert_eq!(answered(&lost).as_deref(), Some("answered"));

    // Held only as filed: the sealed steps come back as a later push.
    let (_d2, old) = empty();
    push_to(&old, &f.state.seal, id, &mut filed, &[]).unwrap();
    let base = filed.get_heads();
    push_to(&old, &f.state.seal, id, &mut held.clone(), &base).unwrap();
    assert_eq!(answered(&old).as_deref(), Some("answered"));

    // The same answer with other words, written as the server's actor:
    // its seal does not fit, so it is refused, and another key's seal too.
    let (_d3, fresh) = empty();
    push_to(&fresh, &f.state.seal, id, &mut filed, &[]).unwrap();
    let server_actor = held
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().clone())
        .find(|a| f.state.seal.is_server_actor(a.to_bytes()))
        .unwrap();
    let mut forged = filed.fork().with_actor(server_actor);
    let (view, _) = crate::store::complaints::read_complaint(&held).unwrap();
    let mut answer = view.steps.iter().find(|s| s.kind == StepKind::Answer).unwrap().clone();
    answer.parents = vec!["f1".into()];
    answer.text = Some("Pengaduan ditolak.".into());
    loket_shared::complaint::append_step(&mut forged, &answer).unwrap();
    forged.commit();
    let refused = push_to(&fresh, &f.state.seal, id, &mut forged, &base).unwrap_err();
    assert_eq!(refused.code(), "forbidden_change", "{}", refused.message());
    let mut resealed = answer.clone();
    resealed.seal = Some(crate::seal::SealKey::from_bytes([1; 32]).seal_step(&id.to_string(), &answer));
    let mut forged = filed.fork().with_actor(automerge::ActorId::from([5u8; 16]));
    loket_shared::complaint::append_step(&mut forged, &resealed).unwrap();
    forged.commit();
    let refused = push_to(&fresh, &f.state.seal, id, &mut forged, &base).unwrap_err();
    assert_eq!(refused.code(), "forbidden_change", "{}", refused.message());
    assert_eq!(answered(&fresh).as_deref(), Some("received"), "nothing of the forged pushes was stored");
}

/// The central pages: each office's received, open and overdue counts
/// with the list, and a complaint's page whose forms write steps (CSRF
/// checked); the complainant masked there too.
#[tokio::test]
async fn the_complaint_pages_count_list_and_write_steps() {
    let f = fixture();
    with_catalog(&f);
    let id = push_complaint(&f.state, 4, 1_764_300_000_000, About::Office);
    let session = format!("__Host-loket_session={}", web_session(&f));
    let get = |uri: String| {
        let (app, session) = (f.app.clone(), session.clone());
        async move {
            let req = Request::builder().uri(uri).header(header::COOKIE, &session).body(Body::empty()).unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let set: Vec<String> =
                resp.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            let html =
                String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
            (status, set, html)
        }
    };
    let (status, _, html) = get("/admin/pengaduan".into()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"complaint-offices\"") && html.contains(&format!("data-complaint=\"{id}\"")), "{html}");
    assert!(html.contains(">1</td>"), "received, open and overdue count it: {html}");
    let (status, set, html) = get(format!("/admin/pengaduan/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("S*** A***") && !html.contains("Siti Aminah") && !html.contains(NIK), "{html}");
    assert!(html.contains("value=\"register\""), "a register form is offered: {html}");
    let (cookies, csrf) = super::csrf_of(&session, &set, &html);
    let uri = format!("/admin/pengaduan/{id}");
    let body = "langkah=register&klasifikasi=normatif&unit=agency%3ADISDUKCAPIL".to_owned();
    let resp = super::post_form(&f, &cookies, &uri, format!("csrf=wrong&{body}")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "a form without this browser's token");
    let resp = super::post_form(&f, &cookies, &uri, format!("csrf={csrf}&{body}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("data-state=\"registered\""), "{html}");
    let resp = super::post_form(&f, &cookies, &uri, format!("csrf={csrf}&langkah=extend&hari=7&teks=")).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "the notice is required");
}

/// Issue 16, item 4: the complaint figures of a period through the API,
/// the page, the CSV and XLSX, within each user's scope (another
/// kelurahan's supervisor sees none; an agency only what is routed to
/// it); a staff id only for those who may see it and never for the staff
/// member concerned; and the office's training need in complaint
/// handling on the staff page, with its numbers.
#[tokio::test]
async fn complaint_figures_count_per_office_and_service_within_scope_and_name_the_training_need() {
    let f = fixture();
    office_users(&f);
    // Friday 28 November 2025: every deadline of these is long past.
    let old = 1_764_300_000_000;
    super::push_request_n(&f.state, NIK, 9);
    let ticket = loket_shared::Ticket::new(&"K07".parse().unwrap(), 11, 28, 9);
    push_complaint(&f.state, 1, old, About::Staff(STAFF.parse().unwrap()));
    push_complaint(&f.state, 2, old + 3_600_000, About::Staff(STAFF.parse().unwrap()));
    let service = push_complaint(&f.state, 3, old, About::Service("SKD".parse().unwrap()));
    let request = push_complaint(&f.state, 4, old, About::Request(ticket));
    let admin = admin_token(&f.app).await;
    let step = |id: &str, body: Value| {
        let (app, admin, uri) = (f.app.clone(), admin.clone(), format!("/api/admin/complaints/{id}/steps"));
        async move {
            let (status, v) = call(&app, "POST", &uri, Some(&admin), Some(body)).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
        }
    };
    step(&service, json!({ "kind": "register", "class": "ringan", "unit": "agency:DISDUKCAPIL" })).await;
    step(&request, json!({ "kind": "register", "class": "ringan", "unit": format!("kelurahan:{KEL}") })).await;
    step(&request, json!({ "kind": "answer", "text": "Berkas Anda sudah kami selesaikan." })).await;
    // Five SKM respondents in November 2025 who gave U8 a 2: NRR 2.0000.
    for n in 0..5 {
        super::skm::store_rated(
            &f,
            &super::skm::Rated {
                n: 100 + n,
                kelurahan: KEL,
                rated_at: time::macros::datetime!(2025-11-20 10:00 +7),
                ratings: vec![([4, 4, 4, 4, 4, 4, 4, 2, 4], Default::default())],
                via_agency: false,
            },
        );
    }

    let figures = |who: String| {
        let app = f.app.clone();
        async move {
            let (status, v) =
                call(&app, "GET", "/api/admin/complaints/figures?periode=2025-11", Some(&who), None).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v
        }
    };
    let v = figures(admin.clone()).await;
    assert_eq!((v["period"].as_str(), v["answer_time_unit"].as_str()), (Some("2025-11"), Some("working_days")));
    let offices = v["offices"].as_array().unwrap();
    assert_eq!(offices.len(), 1, "{v}");
    let o = &offices[0];
    assert_eq!(o["kelurahan"], KEL);
    let counts = ["received", "open", "overdue", "answered_in_time", "answered_late"].map(|k| o[k].as_u64().unwrap());
    assert_eq!(counts, [4, 3, 3, 0, 1], "{o}");
    assert!(o["median_answer_working_days"].as_f64().unwrap() > 2.0, "answered long after the two days: {o}");
    assert_eq!((o["u8"]["nrr"].as_f64(), o["u8"]["ratings"].as_u64()), (Some(2.0), Some(5)));
    // SKD: one complaint about the service, one about an SKD request.
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "{v}");
    let s = &services[0];
    assert_eq!((s["service"].as_str(), s["received"].as_u64(), s["open"].as_u64()), (Some("SKD"), Some(2), Some(1)));
    assert_eq!(s["overdue"], 1);
    assert!(s["median_answer_working_days"].is_number(), "{s}");
    let themes = v["themes"].as_array().unwrap();
    assert_eq!(themes.len(), 1, "only the staff member recurs: {v}");
    assert_eq!((themes[0]["about"].as_str(), themes[0]["target"].as_str()), (Some("staff"), Some(STAFF)));
    assert_eq!((themes[0]["count"].as_u64(), themes[0]["target_hidden"].as_bool()), (Some(2), Some(false)));
    assert!(!v.to_string().contains("Siti") && !v.to_string().contains(NIK), "no complainant: {v}");

    // Scopes: the office's supervisor sees the id; the staff member
    // concerned does not; another kelurahan sees nothing; the agency only
    // the complaint routed to it, and no staff theme.
    let v = figures(token(&f, "lurah").await).await;
    assert_eq!(v["themes"][0]["target"], STAFF);
    let v = figures(token(&f, "petugas").await).await;
    assert_eq!((v["themes"][0]["target"].is_null(), v["themes"][0]["target_hidden"].as_bool()), (true, Some(true)));
    let v = figures(token(&f, "lurah-lain").await).await;
    assert!(v["offices"].as_array().unwrap().is_empty() && v["themes"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["services"].as_array().unwrap().is_empty(), "{v}");
    let v = figures(token(&f, "dukcapil").await).await;
    let (offices, services) = (v["offices"].as_array().unwrap(), v["services"].as_array().unwrap());
    assert_eq!((offices.len(), offices[0]["received"].as_u64(), offices[0]["open"].as_u64()), (1, Some(1), Some(1)));
    assert_eq!((services.len(), services[0]["received"].as_u64()), (1, Some(1)), "{v}");
    assert!(v["themes"].as_array().unwrap().is_empty(), "{v}");

    // Stable errors.
    let (status, v) = call(&f.app, "GET", "/api/admin/complaints/figures?periode=2025-13", Some(&admin), None).await;
    assert_eq!((status, super::code(&v)), (StatusCode::BAD_REQUEST, "invalid_period"));
    let (status, _) = call(&f.app, "GET", "/api/admin/complaints/figures?kelurahan=x", Some(&admin), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
    let (status, _) = call(&f.app, "GET", "/api/admin/complaints/figures", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The page, in each scope.
    let page = |user: &'static str, uri: &'static str| {
        let (app, session) = (f.app.clone(), format!("__Host-loket_session={}", super::web_session_for(&f, user)));
        async move {
            let req = Request::builder().uri(uri).header(header::COOKIE, &session).body(Body::empty()).unwrap();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            String::from_utf8(axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
        }
    };
    let html = page("admin", "/admin/pengaduan/angka?periode=2025-11").await;
    let row = html.split(&format!("<tr data-kelurahan=\"{KEL}\">")).nth(1).unwrap().split("</tr>").next().unwrap();
    for (class, value) in [("received", "4"), ("open", "3"), ("in-time", "0")] {
        assert!(row.contains(&format!("class=\"num {class}\">{value}</td>")), "{class}: {row}");
    }
    assert!(row.contains("class=\"num overdue\"><strong class=\"bad\">3</strong>"), "{row}");
    assert!(row.contains("<strong class=\"bad\">2.0000</strong>"), "U8 below B, beside the counts: {row}");
    assert!(row.contains("hari kerja"), "the median says its unit: {row}");
    assert!(html.contains("id=\"figures-services\"") && html.contains("data-service=\"SKD\""), "{html}");
    assert!(html.contains("id=\"figures-themes\"") && html.contains(STAFF), "{html}");
    assert!(!html.contains("Siti") && !html.contains("S*** A***"), "no complainant on the figures: {html}");
    let html = page("petugas", "/admin/pengaduan/angka?periode=2025-11").await;
    assert!(html.contains("id=\"figures-themes\"") && !html.contains(STAFF), "{html}");
    let html = page("lurah-lain", "/admin/pengaduan/angka?periode=2025-11").await;
    assert!(html.contains("id=\"figures-offices-empty\"") && html.contains("id=\"figures-themes-empty\""), "{html}");
    assert!(!html.contains(KEL), "{html}");
    let html = page("admin", "/admin/pengaduan").await;
    assert!(html.contains("href=\"/admin/pengaduan/angka\""), "linked from the complaints page");

    // The downloads.
    let (status, ct, csv) = super::download(&f, "/admin/pengaduan/angka.csv?periode=2025-11&bagian=kantor").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "kelurahan,nama_kelurahan,diterima,terbuka,lewat_tenggat,dijawab_tepat_waktu,dijawab_terlambat,\
         median_hari_kerja_jawaban,u8_nrr,u8_penilaian"
    );
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((cells[0], &cells[2..7], &cells[8..]), (KEL, &["4", "3", "3", "0", "1"][..], &["2.0000", "5"][..]));
    assert!(cells[7].parse::<f64>().unwrap() > 2.0, "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    let (_, _, csv) = super::download(&f, "/admin/pengaduan/angka.csv?periode=2025-11&bagian=layanan").await;
    let csv = String::from_utf8(csv).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((row[0], &row[2..5]), ("SKD", &["2", "1", "1"][..]), "{csv}");
    let (status, _, _) = super::download(&f, "/admin/pengaduan/angka.csv?periode=2025-11&bagian=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, ct, xlsx) = super::download(&f, "/admin/pengaduan/angka.xlsx?periode=2025-11").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    let rows = super::xlsx_rows(xlsx);
    assert_eq!((rows[1][0].as_str(), rows[1][2].as_str()), (KEL, "4"), "{rows:?}");

    // The training need, with its numbers; none for another kelurahan.
    let html = page("admin", "/admin/staf?periode=2025-11").await;
    let needs =
        html.split("id=\"needs-complaints\"").nth(1).expect("the need is listed").split("</table>").next().unwrap();
    assert!(needs.contains(&format!("data-key=\"{KEL}\"")) && needs.contains("Penanganan pengaduan"), "{needs}");
    assert!(needs.contains("3 pengaduan lewat tenggat"), "{needs}");
    assert!(needs.contains("1 dari 1 jawaban terlambat"), "{needs}");
    assert!(needs.contains("2.0000 di bawah B, dari 5 penilaian"), "{needs}");
    let html = page("lurah-lain", "/admin/staf?periode=2025-11").await;
    assert!(!html.contains("needs-complaints"), "{html}");
}
