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
    for (name, bytes) in bombs() {
        write("chunks", name, &bytes);
        write("ingest", name, &bytes);
    }
    eprintln!("seeds written to {}", dir.display());
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, kind];
    leb(&mut out, data.len() as u64);
    out.extend(data);
    out
}

/// Inputs that decode to far more than they weigh (issue 12): a
/// compressed change of 64 MiB of zeros, the same as a document's DEFLATE
/// column, a run-length column of 2^40 rows, a sync message carrying the
/// first, and a bloom filter asking for four billion probes.
fn bombs() -> Vec<(&'static str, Vec<u8>)> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        e.write_all(&[0u8; 1024 * 1024]).unwrap();
    }
    let zeros = e.finish().unwrap();
    let compressed = chunk(2, &zeros);
    let mut body = Vec::new();
    for v in [0, 0, 1, (1 << 4) | 0b1000 | 2, zeros.len() as u64, 0] {
        leb(&mut body, v);
    }
    body.extend(&zeros);
    let column = chunk(0, &body);
    let mut rle = Vec::new();
    leb(&mut rle, 1 << 40);
    leb(&mut rle, 1);
    let mut body = Vec::new();
    for v in [0, 0, 0, 1, (2 << 4) | 2, rle.len() as u64] {
        leb(&mut body, v);
    }
    body.extend(&rle);
    let run_length = chunk(0, &body);
    let mut message = vec![0x42, 0, 0, 0, 1];
    leb(&mut message, compressed.len() as u64);
    message.extend(&compressed);
    let mut bloom = Vec::new();
    for v in [1, 10, u64::from(u32::MAX)] {
        leb(&mut bloom, v);
    }
    bloom.extend([0u8; 2]);
    let mut probes = vec![0x42, 0, 0, 1, 0];
    leb(&mut probes, bloom.len() as u64);
    probes.extend(&bloom);
    probes.push(0);
    vec![
        ("bomb-compressed-change", compressed),
        ("bomb-deflate-column", column),
        ("bomb-run-length", run_length),
        ("bomb-sync-message", message),
        ("bomb-bloom-probes", probes),
    ]
}
