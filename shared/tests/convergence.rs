//! Convergence and conflict detection of request documents on real
//! Automerge documents (DESIGN.md §3).
//!
//! A request is created on one replica and forked to 2-5 replicas, each with
//! its own actor and its own (possibly wrong) clock. A random sequence of
//! workflow steps, resolutions, ratings and merges runs on them. A step is
//! whatever the holder may do from the replica's view: the kelurahan's
//! steps and hand-offs to one of four agencies, an agency's take, forward
//! (with the chain of agencies waiting below it), return down the chain
//! (with a reason or a result reference) and finish. Replicas with stale
//! views race each other, at the kelurahan and at the agencies. Then:
//!
//! - convergence: every change of every replica, applied to fresh documents
//!   in random order, with duplicates and in random chunks, gives the same
//!   heads, the same document and the same derived status as a full merge;
//! - conflict oracle: while generating, the test records which events each
//!   writer had seen; from that ground truth alone it computes the maximal
//!   events and checks the fold's frontier, status, conflict (terminal, or
//!   routing: different holder chains among the maximal events where one
//!   writer had seen an agency holding the request), holder, waiting chain
//!   and results against it, in every replica's view and in the merged one;
//! - nothing is dropped: every event and every rating written is read back.

use std::collections::{BTreeSet, HashMap};

use automerge::{ActorId, AutoCommit, Change};
use loket_shared::request::{self, Applicant, NewRequest, Rating, RequestView};
use loket_shared::skm::Scores;
use loket_shared::workflow::{self, Actor, Derived, Proposal, TransitionError};
use loket_shared::{DocId, Event, EventKind, Hlc, Status};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// 2025-11-28, in unix ms: the fake wall clocks start here.
const BASE_MS: u64 = 1_764_300_000_000;
/// One step of the sequence is one second of wall time.
const STEP_MS: i64 = 1_000;
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
const AGENCY: &str = "DISDUKCAPIL";
/// The agencies a request may travel between.
const AGENCIES: [&str; 4] = ["DISDUKCAPIL", "DISDIK", "DINSOS", "DPMPTSP"];
const STAFF: &str = "198503122010011002";

// ------------------------------------------------------------------ helpers

/// splitmix64: a small seeded PRNG for shuffles and ids.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        out
    }
}

/// A replica's wall clock: right give or take a skew, or standing still.
#[derive(Debug, Clone, Copy)]
enum Clock {
    Skewed(i64),
    Stuck(u64),
}

impl Clock {
    fn wall(self, step: usize) -> u64 {
        match self {
            Clock::Skewed(skew) => (BASE_MS as i64 + step as i64 * STEP_MS + skew) as u64,
            Clock::Stuck(at) => BASE_MS + at,
        }
    }
}

struct Replica {
    doc: AutoCommit,
    node: String,
    hlc: Hlc,
    clock: Clock,
}

/// Ground truth about one written event: the event itself and the ids of
/// the events that were in its writer's document when it was written.
struct Written {
    event: Event,
    seen: BTreeSet<String>,
    /// For a step with a result reference: the agency that wrote it.
    credit: Option<String>,
}

fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&mut lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&mut hi[0], &mut lo[b])
    }
}

fn new_id(rng: &mut Rng, wall: u64) -> String {
    DocId::new_v7(wall, rng.bytes()).to_string()
}

fn new_request(rng: &mut Rng, node: &str, hlc: Hlc, wall: u64) -> NewRequest {
    NewRequest {
        id: DocId::new_v7(wall, rng.bytes()),
        ticket: "K07-1128-023".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K07".parse().unwrap(),
        service: "SKD".parse().unwrap(),
        created_at_ms: wall as i64,
        hlc,
        applicant: Applicant {
            name: "Siti Nurhaliza".parse().unwrap(),
            nik: "1271014101900003".parse().unwrap(),
            phone: Some("0812 3456 7890".parse().unwrap()),
        },
        rating_key: None,
        create_event: Event {
            id: new_id(rng, wall),
            hlc,
            node: node.to_owned(),
            at_ms: wall as i64,
            by: STAFF.into(),
            kind: EventKind::Create,
            from: None,
            to: Status::Submitted,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: Vec::new(),
            seal: None,
        },
    }
}

fn view_of(doc: &AutoCommit) -> Result<(RequestView, Derived), TestCaseError> {
    let view = request::read(doc).map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
    let derived = workflow::fold(&view.events).map_err(|e| TestCaseError::fail(format!("fold: {e}")))?;
    Ok((view, derived))
}

fn needs_reason(to: Status) -> bool {
    matches!(to, Status::Rejected | Status::WaitingCitizen)
}

/// Who writes a step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Kelurahan,
    Admin,
    Agency(String),
}

impl Who {
    fn actor(&self) -> Actor<'_> {
        match self {
            Who::Kelurahan => Actor::Kelurahan,
            Who::Admin => Actor::Admin,
            Who::Agency(a) => Actor::Agency(a),
        }
    }

    fn by(&self) -> String {
        match self {
            Who::Kelurahan => STAFF.into(),
            Who::Admin => "admin:ani".into(),
            Who::Agency(a) => format!("agency:{a}:petugas"),
        }
    }
}

/// A step a replica plans from its view, before it becomes an event.
#[derive(Debug, Clone)]
struct Plan {
    who: Who,
    kind: EventKind,
    to: Status,
    agency: Option<String>,
    waiting: Vec<String>,
    note: Option<String>,
    result_ref: Option<String>,
}

impl Plan {
    /// A step, with the chain the workflow gives it and the reason it needs.
    fn step(derived: &Derived, who: Who, to: Status, agency: Option<&str>) -> Plan {
        let waiting = workflow::waiting_after(derived, who.actor(), to, agency);
        Plan {
            who,
            kind: EventKind::Transition,
            to,
            agency: agency.map(str::to_owned),
            waiting,
            note: needs_reason(to).then(|| "berkas kurang".into()),
            result_ref: None,
        }
    }

    fn noted(mut self, note: &str) -> Plan {
        self.note = Some(note.into());
        self
    }

    fn proposal(&self) -> Proposal<'_> {
        Proposal { kind: self.kind, ..Proposal::transition(self.to) }
            .agency(self.agency.as_deref())
            .waiting(&self.waiting)
            .note(self.note.as_deref())
            .result_ref(self.result_ref.as_deref())
    }
}

/// Everything the holder of the request may do from `derived`, built
/// from the rules (DESIGN.md §3, issue 16) rather than asked of
/// `check_transition`, which must then accept each.
fn candidates(derived: &Derived, pick: u8) -> Vec<Plan> {
    let mut out = Vec::new();
    let holder = derived.agency.clone();
    let rotate = usize::from(pick >> 2);
    match &holder {
        None => {
            for &to in derived.status.allowed_next() {
                let agency = (to == Status::HandedOff).then(|| AGENCIES[rotate % AGENCIES.len()]);
                out.push(Plan::step(derived, Who::Kelurahan, to, agency));
            }
        }
        Some(h) => {
            let me = Who::Agency(h.clone());
            let on_top = derived.waiting.last().cloned();
            // Takes and forwards are listed more than once, so that chains
            // grow deep enough to matter.
            if derived.status == Status::HandedOff {
                for _ in 0..3 {
                    out.push(Plan::step(derived, me.clone(), Status::InProgress, Some(h)));
                }
                if on_top.is_none() {
                    // Not taken yet: the kelurahan may still take it back or finish it.
                    for to in [Status::InProgress, Status::Completed, Status::Rejected] {
                        out.push(Plan::step(derived, Who::Kelurahan, to, None));
                    }
                }
            } else {
                let free: Vec<&str> =
                    AGENCIES.iter().copied().filter(|a| *a != h && !derived.waiting.iter().any(|w| w == a)).collect();
                if let Some(next) = free.get(rotate % free.len().max(1)) {
                    let forward = Plan::step(derived, me.clone(), Status::HandedOff, Some(next));
                    let forward = forward.noted("koreksi data dahulu");
                    out.extend([forward.clone(), forward]);
                }
            }
            // Return down the chain, or to the kelurahan when none waits,
            // with a reason or with only a result reference.
            let mut back = Plan::step(derived, me.clone(), Status::InProgress, on_top.as_deref());
            if pick & 1 == 0 {
                back.result_ref = Some(format!("470/{}/2026", derived.ordered.len()));
            } else {
                back.note = Some("dikembalikan".into());
            }
            out.push(back);
            if on_top.is_none() {
                let mut done = Plan::step(derived, me.clone(), Status::Completed, None);
                done.result_ref = (pick & 2 == 0).then(|| "KK 1271010101260001".into());
                out.push(done);
                out.push(Plan::step(derived, me, Status::Rejected, None));
            }
        }
    }
    out
}

/// Builds the event a replica writes from its current view.
fn next_event(replica: &mut Replica, rng: &mut Rng, derived: &Derived, plan: &Plan, wall: u64) -> Event {
    replica.hlc = replica.hlc.tick(wall);
    Event {
        id: new_id(rng, wall),
        hlc: replica.hlc,
        node: replica.node.clone(),
        at_ms: wall as i64,
        by: plan.who.by(),
        kind: plan.kind,
        from: Some(derived.status),
        to: plan.to,
        note: plan.note.clone(),
        agency: plan.agency.clone(),
        waiting: plan.waiting.clone(),
        result_ref: plan.result_ref.clone(),
        parents: derived.frontier.clone(),
        seal: None,
    }
}

/// Checks a fold against the ground truth recorded at write time, without
/// using the fold's own notion of a frontier: an event is maximal when no
/// other event's writer had seen it.
fn check_oracle(
    written: &HashMap<String, Written>,
    view: &RequestView,
    derived: &Derived,
) -> Result<(), TestCaseError> {
    let ids: BTreeSet<&str> = view.events.iter().map(|e| e.id.as_str()).collect();
    prop_assert_eq!(ids.len(), view.events.len(), "an event is in the list twice");
    for e in &view.events {
        let w = written.get(&e.id).ok_or_else(|| TestCaseError::fail(format!("unknown event {}", e.id)))?;
        prop_assert_eq!(e, &w.event, "the event does not read back as written");
        // Causal closure: whoever holds an event holds all its writer had seen.
        for s in &w.seen {
            prop_assert!(ids.contains(s.as_str()), "{} is there but {} that its writer had seen is not", e.id, s);
        }
    }

    let maximal: BTreeSet<&str> = ids
        .iter()
        .copied()
        .filter(|id| !ids.iter().any(|other| other != id && written[*other].seen.contains(*id)))
        .collect();
    let frontier: BTreeSet<&str> = derived.frontier.iter().map(String::as_str).collect();
    prop_assert_eq!(frontier.len(), derived.frontier.len(), "frontier has duplicates");
    prop_assert_eq!(&frontier, &maximal, "frontier differs from the maximal events");

    let ordered: BTreeSet<&str> = derived.ordered.iter().map(|e| e.id.as_str()).collect();
    prop_assert_eq!(derived.ordered.len(), ids.len(), "events were dropped or duplicated");
    prop_assert_eq!(&ordered, &ids);

    let order = |e: &&Event| (e.hlc, e.node.clone(), e.id.clone());
    let holder = |e: &Event| match e.to {
        Status::HandedOff | Status::InProgress => e.agency.clone(),
        _ => None,
    };
    let chain = |e: &Event| -> Vec<String> {
        holder(e).map(|h| e.waiting.iter().cloned().chain([h]).collect()).unwrap_or_default()
    };
    let last_max = maximal.iter().map(|id| &written[*id].event).max_by_key(order).expect("at least the create event");

    let terminal_max: BTreeSet<(&str, Status)> =
        maximal.iter().map(|id| (*id, written[*id].event.to)).filter(|(_, to)| to.is_terminal()).collect();
    let distinct: BTreeSet<Status> = terminal_max.iter().map(|(_, to)| *to).collect();
    // A routing race: the maximal events route the request differently,
    // and one of their writers saw an agency holding it (the last events
    // of what it had seen, from the ground truth, not from `parents`).
    let saw_an_agency = |id: &str| {
        let seen = &written[id].seen;
        seen.iter()
            .filter(|s| !seen.iter().any(|o| o != *s && written[o.as_str()].seen.contains(*s)))
            .any(|s| holder(&written[s.as_str()].event).is_some())
    };
    let chains: BTreeSet<Vec<String>> = maximal.iter().map(|id| chain(&written[*id].event)).collect();
    let routing = distinct.is_empty() && chains.len() > 1 && maximal.iter().any(|id| saw_an_agency(id));
    let sides: BTreeSet<(&str, Status)> = derived.conflict.iter().map(|s| (s.event_id.as_str(), s.to)).collect();
    prop_assert_eq!(sides.len(), derived.conflict.len(), "a conflict side twice");
    for side in &derived.conflict {
        let e = &written[&side.event_id].event;
        prop_assert_eq!(
            (&side.agency, &side.waiting, &side.note),
            (&e.agency, &e.waiting, &e.note),
            "a side misreported"
        );
    }
    if distinct.len() >= 2 {
        prop_assert!(derived.has_conflict(), "concurrent terminals {:?} but no conflict", distinct);
        prop_assert!(!derived.has_routing_conflict());
        prop_assert_eq!(&sides, &terminal_max, "conflict sides differ from the terminal maximal events");
        let side_statuses: BTreeSet<Status> = derived.conflict.iter().map(|s| s.to).collect();
        prop_assert_eq!(&side_statuses, &distinct);
        prop_assert!(distinct.contains(&derived.status), "status {} is none of the sides", derived.status);
    } else if routing {
        prop_assert!(derived.has_routing_conflict(), "routes {:?} raced at an agency but no conflict", chains);
        let every: BTreeSet<(&str, Status)> = maximal.iter().map(|id| (*id, written[*id].event.to)).collect();
        prop_assert_eq!(&sides, &every, "a routing conflict keeps every side");
        prop_assert_eq!(derived.status, last_max.to);
    } else {
        prop_assert!(!derived.has_conflict(), "conflict reported without a race: {:?}", derived.conflict);
        let expected = distinct.iter().next().copied().unwrap_or(last_max.to);
        prop_assert_eq!(derived.status, expected);
    }
    // Who holds it and who waits: the last maximal event's, unless it ended.
    let (agency, waiting) = if distinct.is_empty() && holder(last_max).is_some() {
        (holder(last_max), last_max.waiting.clone())
    } else {
        (None, Vec::new())
    };
    prop_assert_eq!(&derived.agency, &agency, "holder");
    prop_assert_eq!(&derived.waiting, &waiting, "waiting chain");
    prop_assert!(derived.waiting.len() <= workflow::WAITING_MAX);
    // Every result reference, credited to the agency that wrote it.
    let mut with_result: Vec<&Event> = view.events.iter().filter(|e| e.result_ref.is_some()).collect();
    with_result.sort_by_key(order);
    let results: Vec<(String, String)> = with_result
        .iter()
        .map(|e| (written[&e.id].credit.clone().unwrap_or_else(|| e.by.clone()), e.result_ref.clone().unwrap()))
        .collect();
    prop_assert_eq!(&derived.results, &results, "results");
    Ok(())
}

// ------------------------------------------------------------------ scenario

#[derive(Debug, Clone)]
enum Op {
    /// Replica `who` takes a workflow step (or resolves a conflict); `pick`
    /// chooses among the possible targets (its high bit: any target, or a
    /// non-terminal one if there is one).
    Act { who: u8, pick: u8 },
    /// Replica `into` merges replica `from`.
    Merge { from: u8, into: u8 },
    /// Replica `who` rates the service, if it has no rating in its view.
    Rate { who: u8, score: u8 },
}

#[derive(Debug, Clone)]
struct Scenario {
    replicas: usize,
    clocks: Vec<Clock>,
    /// Whether a replica's HLC observes the events it merges (as the real
    /// sync does) or only ticks from its own wall clock.
    observe_on_merge: bool,
    ops: Vec<Op>,
    seed: u64,
}

fn clock() -> impl Strategy<Value = Clock> {
    prop_oneof![
        5 => (-5_000i64..5_000).prop_map(Clock::Skewed),
        1 => Just(Clock::Skewed(YEAR_MS)),
        1 => Just(Clock::Skewed(-YEAR_MS)),
        1 => (0u64..60_000).prop_map(Clock::Stuck),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>()).prop_map(|(who, pick)| Op::Act { who, pick }),
        4 => (any::<u8>(), any::<u8>()).prop_map(|(from, into)| Op::Merge { from, into }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(who, score)| Op::Rate { who, score }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        2usize..=5,
        proptest::collection::vec(clock(), 5),
        any::<bool>(),
        proptest::collection::vec(op(), 0..48),
        any::<u64>(),
    )
        .prop_map(|(replicas, clocks, observe_on_merge, ops, seed)| Scenario {
            replicas,
            clocks,
            observe_on_merge,
            ops,
            seed,
        })
}

/// The outcome of running a scenario: the replicas and the ground truth.
struct Run {
    replicas: Vec<Replica>,
    written: HashMap<String, Written>,
    ratings: BTreeSet<String>,
    rng: Rng,
    /// What the scenario reached, so a test can check the generator still
    /// makes the cases the oracle is about.
    reached: Reached,
}

#[derive(Debug, Default, Clone, Copy)]
struct Reached {
    /// Steps that found a routing conflict in their replica's view.
    routing_conflicts: usize,
    /// Steps that found a terminal conflict.
    terminal_conflicts: usize,
    /// The longest chain of waiting agencies a replica saw.
    longest_chain: usize,
    /// Steps written with a result reference.
    results: usize,
}

fn run(s: &Scenario) -> Result<Run, TestCaseError> {
    let mut rng = Rng(s.seed);
    let n = s.replicas;
    let mut written: HashMap<String, Written> = HashMap::new();
    let mut ratings = BTreeSet::new();
    let mut reached = Reached::default();

    // Distinct actors, in a random order relative to each other.
    let actors: Vec<ActorId> = (0..n)
        .map(|i| {
            let mut bytes: [u8; 16] = rng.bytes();
            bytes[15] = i as u8;
            ActorId::from(&bytes[..])
        })
        .collect();

    let wall0 = s.clocks[0].wall(0);
    let mut origin = AutoCommit::new().with_actor(actors[0].clone());
    let node0 = actors[0].to_hex_string();
    let hlc0 = Hlc::ZERO.tick(wall0);
    let new = new_request(&mut rng, &node0, hlc0, wall0);
    request::create(&mut origin, &new).map_err(|e| TestCaseError::fail(format!("create: {e}")))?;
    written.insert(
        new.create_event.id.clone(),
        Written { event: new.create_event.clone(), seen: BTreeSet::new(), credit: None },
    );

    let saved = origin.save();
    let mut replicas = vec![Replica { doc: origin, node: node0, hlc: hlc0, clock: s.clocks[0] }];
    for (i, actor) in actors.iter().enumerate().skip(1) {
        let doc = if i % 2 == 1 {
            AutoCommit::load(&saved).unwrap().with_actor(actor.clone())
        } else {
            let mut d = replicas[0].doc.fork();
            d.set_actor(actor.clone());
            d
        };
        replicas.push(Replica { doc, node: actor.to_hex_string(), hlc: Hlc::ZERO, clock: s.clocks[i] });
    }

    for (step, op) in s.ops.iter().enumerate() {
        let step = step + 1;
        match *op {
            Op::Act { who, pick } => {
                let r = &mut replicas[who as usize % n];
                let wall = r.clock.wall(step);
                let (view, derived) = view_of(&r.doc)?;
                check_oracle(&written, &view, &derived)?;
                reached.routing_conflicts += usize::from(derived.has_routing_conflict());
                reached.terminal_conflicts += usize::from(derived.has_conflict() && !derived.has_routing_conflict());
                reached.longest_chain = reached.longest_chain.max(derived.waiting.len());
                let seen: BTreeSet<String> = view.events.iter().map(|e| e.id.clone()).collect();
                let plan = if derived.has_conflict() {
                    prop_assert_eq!(
                        workflow::check_transition(
                            &derived,
                            Actor::Kelurahan,
                            &Proposal::transition(Status::InProgress)
                        ),
                        Err(TransitionError::InConflict)
                    );
                    for side in &derived.conflict {
                        if let Some(a) = side.agency.as_deref() {
                            let p = Proposal::transition(Status::Completed);
                            prop_assert_eq!(
                                workflow::check_transition(&derived, Actor::Agency(a), &p),
                                Err(TransitionError::InConflict)
                            );
                        }
                    }
                    // The admin settles on one side: its status, holder and chain.
                    let side = &derived.conflict[pick as usize % derived.conflict.len()];
                    let agency =
                        side.agency.clone().filter(|_| matches!(side.to, Status::HandedOff | Status::InProgress));
                    let waiting = if agency.is_some() { side.waiting.clone() } else { Vec::new() };
                    Plan {
                        who: Who::Admin,
                        kind: EventKind::Resolve,
                        to: side.to,
                        agency,
                        waiting,
                        note: Some("diputuskan admin".into()),
                        result_ref: None,
                    }
                } else {
                    let all = candidates(&derived, pick);
                    if all.is_empty() {
                        prop_assert!(derived.status.is_terminal());
                        continue;
                    }
                    // Mostly keep the request open, so histories get long
                    // and replicas have time to diverge.
                    let open: Vec<&Plan> = all.iter().filter(|p| !p.to.is_terminal()).collect();
                    let pool: Vec<&Plan> =
                        if pick & 0x80 == 0 && !open.is_empty() { open } else { all.iter().collect() };
                    pool[(pick & 0x7f) as usize % pool.len()].clone()
                };
                prop_assert_eq!(
                    workflow::check_transition(&derived, plan.who.actor(), &plan.proposal()),
                    Ok(()),
                    "{:?} refused from {:?}",
                    plan,
                    (derived.status, &derived.agency, &derived.waiting)
                );
                let event = next_event(r, &mut rng, &derived, &plan, wall);
                reached.results += usize::from(plan.result_ref.is_some());
                let credit = match &plan.who {
                    Who::Agency(a) if plan.result_ref.is_some() => Some(a.clone()),
                    _ => None,
                };
                request::append_event(&mut r.doc, &event).map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
                r.doc.commit();
                prop_assert!(written.insert(event.id.clone(), Written { event, seen, credit }).is_none(), "id reused");
            }
            Op::Merge { from, into } => {
                let from = from as usize % n;
                let mut into = into as usize % n;
                if into == from {
                    into = (into + 1) % n;
                }
                let (src, dst) = two_mut(&mut replicas, from, into);
                dst.doc.merge(&mut src.doc).map_err(|e| TestCaseError::fail(format!("merge: {e}")))?;
                if s.observe_on_merge {
                    let (view, _) = view_of(&dst.doc)?;
                    let wall = dst.clock.wall(step);
                    let remote = view.events.iter().map(|e| e.hlc).chain(view.ratings.iter().map(|r| r.hlc)).max();
                    if let Some(remote) = remote {
                        dst.hlc = dst.hlc.observe(remote, wall);
                    }
                }
            }
            Op::Rate { who, score } => {
                let r = &mut replicas[who as usize % n];
                let (view, _) = view_of(&r.doc)?;
                if !view.ratings.is_empty() {
                    continue;
                }
                let wall = r.clock.wall(step);
                r.hlc = r.hlc.tick(wall);
                let mut values = [0u8; 9];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = 1 + (score as usize + i * 7) as u8 % 4;
                }
                let rating = Rating {
                    id: new_id(&mut rng, wall),
                    hlc: r.hlc,
                    node: r.node.clone(),
                    at_ms: wall as i64,
                    scores: Scores::new(values).unwrap(),
                    comment: (score % 2 == 0).then(|| "pelayanan cepat".into()),
                    profile: if score % 3 == 0 {
                        loket_shared::respondent::Profile::from_pairs([("sex", "p"), ("age", "31-40")]).unwrap()
                    } else {
                        loket_shared::respondent::Profile::default()
                    },
                };
                request::append_rating(&mut r.doc, &rating).map_err(|e| TestCaseError::fail(format!("rate: {e}")))?;
                r.doc.commit();
                ratings.insert(rating.id);
            }
        }
    }
    Ok(Run { replicas, written, ratings, rng, reached })
}

/// Applies `changes` (raw bytes) to an empty document in the given order,
/// in random chunks, each chunk either as `Change`s or as one
/// `load_incremental` of the concatenated bytes.
fn apply_shuffled(changes: &[Vec<u8>], rng: &mut Rng) -> Result<AutoCommit, TestCaseError> {
    let mut doc = AutoCommit::new();
    let mut rest = changes;
    while !rest.is_empty() {
        let size = 1 + rng.below(rest.len().min(8));
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        if rng.below(2) == 0 {
            let parsed: Vec<Change> = chunk.iter().map(|b| Change::from_bytes(b.clone()).unwrap()).collect();
            doc.apply_changes(parsed).map_err(|e| TestCaseError::fail(format!("apply_changes: {e}")))?;
        } else {
            let bytes: Vec<u8> = chunk.concat();
            doc.load_incremental(&bytes).map_err(|e| TestCaseError::fail(format!("load_incremental: {e}")))?;
        }
    }
    Ok(doc)
}

fn sorted_heads(doc: &mut AutoCommit) -> Vec<automerge::ChangeHash> {
    let mut h = doc.get_heads();
    h.sort();
    h
}

fn check_scenario(s: &Scenario) -> Result<(), TestCaseError> {
    let Run { mut replicas, written, ratings, mut rng, .. } = run(s)?;

    // Every replica's own view agrees with the ground truth.
    for r in &replicas {
        let (view, derived) = view_of(&r.doc)?;
        check_oracle(&written, &view, &derived)?;
    }

    // Every change of every replica, with duplicates.
    let mut changes: Vec<Vec<u8>> = Vec::new();
    for r in &mut replicas {
        for c in r.doc.get_changes(&[]) {
            changes.push(c.raw_bytes().to_vec());
        }
    }
    let extra: Vec<Vec<u8>> = changes.iter().filter(|_| rng.below(3) == 0).cloned().collect();
    changes.extend(extra);

    let mut full = replicas[0].doc.fork();
    for r in replicas.iter_mut().skip(1) {
        full.merge(&mut r.doc).map_err(|e| TestCaseError::fail(format!("merge: {e}")))?;
    }
    prop_assert!(full.get_missing_deps(&[]).is_empty());
    let heads = sorted_heads(&mut full);
    let (full_view, full_derived) = view_of(&full)?;
    check_oracle(&written, &full_view, &full_derived)?;
    prop_assert_eq!(full_view.events.len(), written.len(), "an event was lost");

    // What honest writers make passes the server's checks: the bounded
    // walk over every form the bytes travel in, and the structure check
    // of the merge against what each replica held before it (issue 12).
    use loket_shared::chunks::{Budget, DOC_LIMITS, inspect};
    for bytes in [full.save(), full.save_nocompress()].into_iter().chain(changes.iter().cloned()) {
        prop_assert!(inspect(&bytes, &mut Budget::new(DOC_LIMITS)).is_ok(), "an honest save refused");
    }
    prop_assert!(loket_shared::structure::check(&full, None).is_ok());
    for r in &mut replicas {
        let before = r.doc.get_heads();
        let after_merge = loket_shared::structure::check(&full, Some(&before));
        prop_assert!(after_merge.is_ok(), "an honest merge fails the structure check: {:?}", after_merge);
        prop_assert!(inspect(&full.save_after(&before), &mut Budget::new(DOC_LIMITS)).is_ok());
    }
    let rating_ids: BTreeSet<String> = full_view.ratings.iter().map(|r| r.id.clone()).collect();
    prop_assert_eq!(full_view.ratings.len(), rating_ids.len());
    prop_assert_eq!(&rating_ids, &ratings, "a rating was lost");

    for k in 0..3 {
        let mut order = changes.clone();
        rng.shuffle(&mut order);
        let mut fresh = apply_shuffled(&order, &mut rng)?;
        prop_assert!(fresh.get_missing_deps(&[]).is_empty(), "fresh document {} misses dependencies", k);
        prop_assert_eq!(&sorted_heads(&mut fresh), &heads, "fresh document {} has other heads", k);
        let (view, derived) = view_of(&fresh)?;
        prop_assert_eq!(&view, &full_view, "fresh document {} reads differently", k);
        prop_assert_eq!(&derived, &full_derived, "fresh document {} folds differently", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replicas_converge_and_conflicts_match_the_ground_truth(s in scenario()) {
        check_scenario(&s)?;
    }
}

/// The generator still makes what the oracle is about: forwards that
/// build chains, routing races, terminal conflicts and results. Without
/// this, a change that made them unreachable would leave the property
/// test passing on nothing.
#[test]
fn the_generator_reaches_chains_routing_races_and_results() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut total = Reached::default();
    for _ in 0..200 {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let r = run(&s).unwrap().reached;
        total.routing_conflicts += r.routing_conflicts;
        total.terminal_conflicts += r.terminal_conflicts;
        total.longest_chain = total.longest_chain.max(r.longest_chain);
        total.results += r.results;
    }
    assert!(total.routing_conflicts >= 5, "{total:?}");
    assert!(total.terminal_conflicts >= 5, "{total:?}");
    assert!(total.longest_chain >= 2, "{total:?}");
    assert!(total.results >= 10, "{total:?}");
}

// ------------------------------------------------------------------ a known scenario

fn write(replica: &mut Replica, rng: &mut Rng, kind: EventKind, to: Status, wall: u64) -> Event {
    let (_, derived) = view_of(&replica.doc).unwrap();
    let agency = (to == Status::HandedOff).then_some(AGENCY);
    let actor = if kind == EventKind::Resolve { Actor::Admin } else { Actor::Kelurahan };
    let who = if kind == EventKind::Resolve { Who::Admin } else { Who::Kelurahan };
    let mut plan = Plan::step(&derived, who, to, agency);
    plan.kind = kind;
    workflow::check_transition(&derived, actor, &plan.proposal()).unwrap();
    let event = next_event(replica, rng, &derived, &plan, wall);
    request::append_event(&mut replica.doc, &event).unwrap();
    replica.doc.commit();
    event
}

#[test]
fn kiosk_completes_while_agency_rejects_then_admin_resolves() {
    let mut rng = Rng(7);
    let kiosk_actor = ActorId::from(&[1u8; 16][..]);
    let agency_actor = ActorId::from(&[2u8; 16][..]);
    let wall = |s: u64| BASE_MS + s * 1000;

    let mut kiosk = Replica {
        doc: AutoCommit::new().with_actor(kiosk_actor.clone()),
        node: kiosk_actor.to_hex_string(),
        hlc: Hlc::ZERO.tick(wall(0)),
        clock: Clock::Skewed(0),
    };
    let new = new_request(&mut rng, &kiosk.node, kiosk.hlc, wall(0));
    request::create(&mut kiosk.doc, &new).unwrap();
    write(&mut kiosk, &mut rng, EventKind::Transition, Status::InProgress, wall(1));
    write(&mut kiosk, &mut rng, EventKind::Transition, Status::HandedOff, wall(2));

    let mut agency = Replica {
        doc: AutoCommit::load(&kiosk.doc.save()).unwrap().with_actor(agency_actor.clone()),
        node: agency_actor.to_hex_string(),
        hlc: Hlc::ZERO,
        clock: Clock::Skewed(0),
    };
    let (_, d) = view_of(&agency.doc).unwrap();
    assert_eq!(d.status, Status::HandedOff);
    assert_eq!(d.agency.as_deref(), Some(AGENCY));

    // Offline, concurrently: the kiosk completes, the agency rejects.
    let done = write(&mut kiosk, &mut rng, EventKind::Transition, Status::Completed, wall(3));
    let no = write(&mut agency, &mut rng, EventKind::Transition, Status::Rejected, wall(4));
    assert_eq!(view_of(&kiosk.doc).unwrap().1.status, Status::Completed);
    assert_eq!(view_of(&agency.doc).unwrap().1.status, Status::Rejected);

    kiosk.doc.merge(&mut agency.doc).unwrap();
    agency.doc.merge(&mut kiosk.doc).unwrap();
    let mut expected_sides = vec![(done.id.clone(), Status::Completed), (no.id.clone(), Status::Rejected)];
    expected_sides.sort();
    for doc in [&kiosk.doc, &agency.doc] {
        let (_, d) = view_of(doc).unwrap();
        assert!(d.has_conflict());
        let mut sides: Vec<(String, Status)> = d.conflict.iter().map(|s| (s.event_id.clone(), s.to)).collect();
        sides.sort();
        assert_eq!(sides, expected_sides);
        let mut frontier = d.frontier.clone();
        frontier.sort();
        let mut both = vec![done.id.clone(), no.id.clone()];
        both.sort();
        assert_eq!(frontier, both);
        assert_eq!(
            workflow::check_transition(&d, Actor::Kelurahan, &Proposal::transition(Status::InProgress)),
            Err(TransitionError::InConflict)
        );
        assert_eq!(d.ordered.len(), 5);
    }
    assert_eq!(view_of(&kiosk.doc).unwrap().1, view_of(&agency.doc).unwrap().1);

    // An admin on the agency side decides: rejected.
    let fix = write(&mut agency, &mut rng, EventKind::Resolve, Status::Rejected, wall(5));
    let mut parents = fix.parents.clone();
    parents.sort();
    let mut both = vec![done.id.clone(), no.id.clone()];
    both.sort();
    assert_eq!(parents, both, "the resolution descends from both sides");
    kiosk.doc.merge(&mut agency.doc).unwrap();
    agency.doc.merge(&mut kiosk.doc).unwrap();
    assert_eq!(sorted_heads(&mut kiosk.doc), sorted_heads(&mut agency.doc));
    for doc in [&kiosk.doc, &agency.doc] {
        let (_, d) = view_of(doc).unwrap();
        assert!(!d.has_conflict(), "still in conflict: {:?}", d.conflict);
        assert_eq!(d.status, Status::Rejected);
        assert_eq!(d.frontier, vec![fix.id.clone()]);
        // Nothing is dropped: both sides are still in the history.
        assert_eq!(d.ordered.len(), 6);
        assert!(d.ordered.iter().any(|e| e.id == done.id) && d.ordered.iter().any(|e| e.id == no.id));
    }
}
