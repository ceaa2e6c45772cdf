//! In-process profile of the server merge path: builds N request documents
//! (4 events, the last completing it, and a rating each), times each Automerge step a push costs,
//! measures loading each form a request's bytes take and saving one, then
//! pushes them all through `sync::exchange` into a fresh store.
//!
//! `cargo run --release -p loket-sync-server --example merge_profile -- 2000`
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use automerge::{ActorId, AutoCommit};
use loket_shared::hlc::Hlc;
use loket_shared::request::{self, Applicant, NewRequest, Rating};
use loket_shared::skm::Scores;
use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
use loket_shared::workflow::{Event, EventKind};
use loket_shared::{DocId, Status};
use loket_sync_server::auth::KioskAuth;
use loket_sync_server::store::Db;

fn ev(i: u64, n: u32, from: Option<Status>, to: Status, parents: Vec<String>, node: &str) -> Event {
    let hlc = Hlc { wall_ms: 1_780_000_000_000 + i, counter: n };
    Event {
        id: format!("{i:08}-{n}"),
        hlc,
        node: node.into(),
        at_ms: hlc.wall_ms as i64,
        by: "198001012006041001".into(),
        kind: if from.is_none() { EventKind::Create } else { EventKind::Transition },
        from,
        to,
        note: (to == Status::WaitingCitizen).then(|| "fotokopi KK belum dibawa".into()),
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents,
        seal: None,
    }
}

/// Builds a request as a kiosk does, returning it and the bytes the kiosk
/// stores for it: the snapshot of the new request, then one chunk
/// (`save_after`) per write.
fn make_doc(i: u64, actor: &ActorId, node: &str) -> (DocId, AutoCommit, Vec<u8>) {
    let mut doc = AutoCommit::new().with_actor(actor.clone());
    let id = DocId::new_v7(1_780_000_000_000 + i, (i as u128).to_be_bytes()[6..].try_into().unwrap());
    let hlc = Hlc { wall_ms: 1_780_000_000_000 + i, counter: 0 };
    let new = NewRequest {
        id,
        ticket: "K07-1128-023".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        created_at_ms: hlc.wall_ms as i64,
        hlc,
        applicant: Applicant {
            name: "Siti Nurhaliza".parse().unwrap(),
            nik: "1271014101900003".parse().unwrap(),
            phone: Some("0812 3456 7890".parse().unwrap()),
        },
        rating_key: None,
        create_event: ev(i, 0, None, Status::Submitted, vec![], node),
    };
    request::create(&mut doc, &new).unwrap();
    let mut stored = doc.save_nocompress();
    let mut parent = format!("{i:08}-0");
    let mut from = Status::Submitted;
    for (n, to) in
        [Status::InProgress, Status::WaitingCitizen, Status::InProgress, Status::Completed].into_iter().enumerate()
    {
        let e = ev(i, n as u32 + 1, Some(from), to, vec![parent.clone()], node);
        parent = e.id.clone();
        from = to;
        let heads = doc.get_heads();
        request::append_event(&mut doc, &e).unwrap();
        doc.commit();
        stored.extend(doc.save_after(&heads));
    }
    let r = Rating {
        id: format!("r{i}"),
        hlc: Hlc { wall_ms: 1_780_000_000_000 + i, counter: 9 },
        node: node.into(),
        at_ms: 1_780_000_000_000 + i as i64,
        scores: Scores::new([4, 3, 4, 4, 3, 4, 4, 3, 4]).unwrap(),
        comment: None,
        profile: Default::default(),
    };
    let heads = doc.get_heads();
    request::append_rating(&mut doc, &r).unwrap();
    doc.commit();
    stored.extend(doc.save_after(&heads));
    (id, doc, stored)
}

fn main() {
    let n: u64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("server.db")).unwrap();
    let seal = db.write(|tx| loket_sync_server::seal::SealKey::load_or_create(tx)).unwrap();
    let actor = ActorId::random();
    let node = actor.to_hex_string();
    let t = Instant::now();
    let made: Vec<(DocId, AutoCommit, Vec<u8>)> = (0..n).map(|i| make_doc(i, &actor, &node)).collect();
    eprintln!("make {n} docs: {:?}", t.elapsed());
    // The load cost of each form a request's bytes take.
    let forms: [(&str, Vec<Vec<u8>>); 3] = [
        ("as the kiosk stores it (snapshot and a chunk per write)", made.iter().map(|(_, _, s)| s.clone()).collect()),
        ("saved whole (save)", made.iter().map(|(_, d, _)| d.clone().save()).collect()),
        ("saved whole (save_nocompress)", made.iter().map(|(_, d, _)| d.clone().save_nocompress()).collect()),
    ];
    for (name, bytes) in &forms {
        let t = Instant::now();
        for b in bytes {
            std::hint::black_box(AutoCommit::load(b).unwrap());
        }
        let size: usize = bytes.iter().map(Vec::len).sum();
        eprintln!("load {name}: {:?}/doc, {} B/doc", t.elapsed() / n as u32, size / n as usize);
    }
    // What a write costs to store: the last write's chunk, or the whole.
    let mut loaded: Vec<AutoCommit> = forms[1].1.iter().map(|b| AutoCommit::load(b).unwrap()).collect();
    let t = Instant::now();
    for d in &mut loaded {
        let heads = d.get_heads();
        std::hint::black_box(d.save_after(&heads));
    }
    eprintln!("save_after (nothing new): {:?}/doc", t.elapsed() / n as u32);
    let t = Instant::now();
    for d in &mut loaded {
        std::hint::black_box(d.save_nocompress());
    }
    eprintln!("save_nocompress: {:?}/doc", t.elapsed() / n as u32);
    let t = Instant::now();
    for d in &loaded {
        use automerge::ReadDoc;
        std::hint::black_box(d.hydrate(&automerge::ROOT, None).unwrap());
    }
    eprintln!("automerge's hydrate: {:?}/doc", t.elapsed() / n as u32);
    let t = Instant::now();
    for d in &loaded {
        std::hint::black_box(request::hydrate(d).unwrap());
    }
    eprintln!("request::hydrate (one pass): {:?}/doc", t.elapsed() / n as u32);
    changed_steps(&made);
    let docs: Vec<(DocId, AutoCommit)> = made.into_iter().map(|(id, d, _)| (id, d)).collect();
    // What a document held in memory costs (the server's hot-document
    // cache weighs entries by this), and what cloning one costs.
    let rss = || {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    let before = rss();
    let t = Instant::now();
    let copies: Vec<AutoCommit> = docs.iter().map(|(_, d)| d.clone()).collect();
    let cloned = t.elapsed();
    let saved: usize = docs.iter().map(|(_, d)| d.clone().save().len()).sum();
    eprintln!(
        "clone: {:?}/doc; in memory ~{} KiB/doc; saved {} B/doc",
        cloned / n as u32,
        (rss().saturating_sub(before)) / n.max(1),
        saved / n as usize
    );
    drop(copies);
    // What a document loaded from its stored (whole) form holds in
    // memory: the hot-document cache weighs entries by stored bytes.
    // Measured once, first: freed memory is reused by a second round.
    let (name, bytes) = &forms[1];
    let before = rss();
    let loaded: Vec<AutoCommit> = bytes.iter().map(|b| AutoCommit::load(b).unwrap()).collect();
    let size: usize = bytes.iter().map(Vec::len).sum();
    eprintln!(
        "loaded {name}: ~{} KiB/doc in memory for {} stored bytes/doc",
        (rss().saturating_sub(before)) / n.max(1),
        size / n as usize
    );
    drop(loaded);
    let kiosk = KioskAuth {
        id: "kiosk-1".into(),
        code: "K07".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        actor: node.clone(),
    };
    // Enrolled, so the sync policy knows its actor.
    let new = loket_sync_server::store::kiosks::NewKiosk {
        id: &kiosk.id,
        code: &kiosk.code,
        kelurahan: &kiosk.kelurahan,
        name: "Kiosk profil",
        token_hash: "profile",
        actor: &kiosk.actor,
        version: "profile",
    };
    db.write(|tx| loket_sync_server::store::kiosks::insert(tx, &new, 0)).unwrap();
    let t = Instant::now();
    let mut pushes: Vec<PushDoc> = docs
        .iter()
        .map(|(id, d)| {
            let mut d = d.clone();
            PushDoc {
                doc: id.to_bytes(),
                doc_type: DocType::Request,
                base: vec![],
                changes: d.save(),
                heads: d.get_heads().iter().map(|h| h.0).collect(),
                fallback: None,
            }
        })
        .collect();
    eprintln!("save all: {:?}", t.elapsed());
    steps(&pushes);
    let t = Instant::now();
    let mut cursor = 0;
    for chunk in pushes.chunks_mut(500) {
        let req = SyncRequest {
            version: PROTOCOL_VERSION,
            client: "x".into(),
            push: chunk.to_vec(),
            pull_after: cursor,
            acked: 0,
            through: 0,
            pending: 0,
        };
        let now = loket_sync_server::sync::now_ms();
        let (resp, _) = loket_sync_server::sync::exchange(&db, &seal, &kiosk, &req, now).unwrap();
        cursor = resp.pull_next;
    }
    eprintln!("initial sync via handle: {:?} ({:?}/doc)", t.elapsed(), t.elapsed() / n as u32);
}

#[allow(dead_code)]
pub fn steps(pushes: &[PushDoc]) {
    use std::time::Duration;
    let mut t = [Duration::ZERO; 6];
    for p in pushes {
        let s = Instant::now();
        let mut doc = AutoCommit::new();
        doc.load_incremental(&p.changes).unwrap();
        t[0] += s.elapsed();
        let s = Instant::now();
        let _ = doc.get_missing_deps(&[]);
        let _ = doc.get_heads();
        t[1] += s.elapsed();
        let s = Instant::now();
        let view = request::read(&doc).unwrap();
        t[2] += s.elapsed();
        let s = Instant::now();
        let _ = loket_shared::workflow::fold(&view.events).unwrap();
        t[3] += s.elapsed();
        let s = Instant::now();
        let n = doc.get_changes_meta(&[]).len();
        assert!(n > 0);
        t[4] += s.elapsed();
        let s = Instant::now();
        use automerge::ReadDoc;
        let h = doc.hydrate(&automerge::ROOT, None).unwrap();
        std::hint::black_box(h);
        t[1] += s.elapsed();
        let s = Instant::now();
        let d2 = AutoCommit::load_with_options(
            &p.changes,
            automerge::LoadOptions::new().verification_mode(automerge::VerificationMode::DontCheck),
        )
        .unwrap();
        drop(d2);
        t[5] += s.elapsed();
    }
    let n = pushes.len() as u32;
    for (name, d) in
        ["load_incremental", "hydrate", "request::read", "fold", "get_changes_meta", "load DontCheck"].iter().zip(t)
    {
        eprintln!("{name:>20}: {:?}/doc", d / n);
    }
}

/// What the server's check of a changed request costs per step: the
/// document as stored before its last change (the rating), and that
/// change pushed on its own.
pub fn changed_steps(made: &[(DocId, AutoCommit, Vec<u8>)]) {
    use std::time::Duration;
    let mut t = [Duration::ZERO; 9];
    let n = made.len() as u32;
    for (_, d, _) in made {
        let mut d = d.clone();
        let changes = d.get_changes(&[]);
        let (last, rest) = changes.split_last().unwrap();
        let mut before = AutoCommit::new();
        before.apply_changes(rest.iter().cloned()).unwrap();
        let mut before = AutoCommit::load(&before.save_nocompress()).unwrap();
        let heads_before = before.get_heads();
        let pushed = last.raw_bytes().to_vec();
        let s = Instant::now();
        std::hint::black_box(request::read(&before).unwrap());
        t[0] += s.elapsed();
        let mut after = before.clone();
        let s = Instant::now();
        after.load_incremental(&pushed).unwrap();
        t[1] += s.elapsed();
        let s = Instant::now();
        std::hint::black_box(request::read(&after).unwrap());
        t[2] += s.elapsed();
        let s = Instant::now();
        loket_shared::structure::check(&after, Some(&heads_before)).unwrap();
        t[3] += s.elapsed();
        let s = Instant::now();
        loket_shared::structure::check(&after, None).unwrap();
        t[4] += s.elapsed();
        let s = Instant::now();
        let c = automerge::Change::from_bytes(pushed.clone()).unwrap();
        let decoded = [c.decode()];
        t[5] += s.elapsed();
        let s = Instant::now();
        assert!(loket_shared::structure::appended(&after, &decoded).unwrap().is_some());
        t[6] += s.elapsed();
        // The stored bytes and the push loaded at once, against a load
        // and then the push applied.
        let stored = before.save_nocompress();
        let s = Instant::now();
        let mut two = AutoCommit::load(&stored).unwrap();
        two.load_incremental(&pushed).unwrap();
        t[7] += s.elapsed();
        let s = Instant::now();
        let mut joined = stored.clone();
        joined.extend_from_slice(&pushed);
        let mut one = AutoCommit::load(&joined).unwrap();
        t[8] += s.elapsed();
        assert_eq!(one.get_heads(), two.get_heads());
    }
    // The server's check of such a push: "read before" and "check with
    // before" when the push does more than append, else "decode pushed"
    // and "appended".
    for (name, d) in [
        "read before",
        "apply pushed",
        "read after",
        "check with before",
        "check without",
        "decode pushed",
        "appended",
        "load, then apply",
        "load both at once",
    ]
    .iter()
    .zip(t)
    {
        eprintln!("changed {name:>18}: {:?}/doc", d / n);
    }
}
