//! Writes the seed inputs of the fuzz targets into `sync-server/fuzz/corpus/`:
//! a real request document (create, 3 events, a rating) and a sync message
//! pushing it; for `chunks`, the same and the compression bombs of issue 12.
//! `cargo run -p loket-sync-server --example fuzz_seeds`

use std::path::Path;

use automerge::{ActorId, AutoCommit};
use loket_shared::request::{self, Applicant, NewRequest, Rating};
use loket_shared::skm::Scores;
use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest};
use loket_shared::workflow::{Event, EventKind};
use loket_shared::{DocId, Hlc, Status};

fn event(n: u32, from: Option<Status>, to: Status, parent: Option<String>, node: &str) -> Event {
    let hlc = Hlc { wall_ms: 1_780_000_000_000 + u64::from(n), counter: 0 };
    Event {
        id: format!("e{n}"),
        hlc,
        node: node.into(),
        at_ms: hlc.wall_ms as i64,
        by: if from.is_none() { "citizen".into() } else { "198001012006041001".into() },
        kind: if from.is_none() { EventKind::Create } else { EventKind::Transition },
        from,
        to,
        note: (n == 2).then(|| "berkas kurang / <b>missing</b>".into()),
        agency: None,
        waiting: Vec::new(),
        result_ref: None,
        parents: parent.into_iter().collect(),
        seal: None,
    }
}

fn main() {
    let actor = ActorId::from([7u8; 16]);
    let node = actor.to_hex_string();
    let mut doc = AutoCommit::new().with_actor(actor);
    let id = DocId::from_bytes([1; 16]);
    let new = NewRequest {
        id,
        ticket: "K001-1128-001".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K001".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        created_at_ms: 1_780_000_000_000,
        hlc: Hlc { wall_ms: 1_780_000_000_000, counter: 0 },
        applicant: Applicant {
            name: "Siti Aminah".parse().unwrap(),
            nik: "1271014101900003".parse().unwrap(),
            phone: Some("081234567890".parse().unwrap()),
        },
        rating_key: None,
        create_event: event(0, None, Status::Submitted, None, &node),
    };
    request::create(&mut doc, &new).unwrap();
    let steps = [(Status::Submitted, Status::InProgress), (Status::InProgress, Status::WaitingCitizen)];
    for (n, (from, to)) in steps.into_iter().enumerate() {
        let n = n as u32 + 1;
        request::append_event(&mut doc, &event(n, Some(from), to, Some(format!("e{}", n - 1)), &node)).unwrap();
        doc.commit();
    }
    let rating = Rating {
        id: "r1".into(),
        hlc: Hlc { wall_ms: 1_780_000_000_100, counter: 0 },
        node: node.clone(),
        at_ms: 1_780_000_000_100,
        scores: Scores::new([4, 3, 4, 4, 3, 4, 4, 3, 4]).unwrap(),
        comment: Some("cepat".into()),
        profile: loket_shared::respondent::Profile::from_pairs([("age", "41-50"), ("education", "sma")]).unwrap(),
    };
    request::append_rating(&mut doc, &rating).unwrap();
    doc.commit();
    let saved = doc.save();
    let incremental = doc.save_after(&[]);
    let heads = doc.get_heads().iter().map(|h| h.0).collect();
    let push = PushDoc {
        doc: id.to_bytes(),
        doc_type: DocType::Request,
        base: vec![],
        changes: saved.clone(),
        heads,
        fallback: None,
    };
    let req = SyncRequest {
        version: PROTOCOL_VERSION,
        client: "seed".into(),
        push: vec![push],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir.join(target)).unwrap();
        std::fs::write(dir.join(target).join(name), bytes).unwrap();
    };
    write("ingest", "seed-document", &saved);
    write("ingest", "seed-changes", &incremental);
    write("sync_decode", "seed-push", &req.encode());
    write("sync_decode", "seed-empty", &SyncRequest { push: vec![], ..req }.encode());
    write("chunks", "seed-document", &saved);
    write("chunks", "seed-changes", &incremental);
    {
        use automerge::sync::SyncDoc;
        let mut state = automerge::sync::State::new();
        let mut peer = AutoCommit::new();
        let ask = peer.sync().generate_sync_message(&mut automerge::sync::State::new()).unwrap();
        doc.sync().receive_sync_message(&mut state, ask).unwrap();
        let msg = doc.sync().generate_sync_message(&mut state).unwrap().encode();
        write("chunks", "seed-sync-message", &msg);
    }
    for bomb in loket_shared::chunks::bombs::all(64) {
        let name = format!("bomb-{}", bomb.name);
        write("chunks", &name, &bomb.bytes);
        write("ingest", &name, &bomb.bytes);
    }
    eprintln!("seeds written to {}", dir.display());
}
