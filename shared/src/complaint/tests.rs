//! The complaint document and its merge rules: round trips, refusals,
//! hand-made histories, and a property test of the fold against the
//! ground truth of who had seen what.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::sla::{Holidays, ServiceHours};

const NODE_KIOSK: &str = "0a0a";
const T0: i64 = 1_796_000_000_000;

fn hlc(ms: i64) -> Hlc {
    Hlc { wall_ms: ms as u64, counter: 0 }
}

fn file_step() -> Step {
    Step {
        id: "s-file".into(),
        hlc: hlc(T0),
        node: NODE_KIOSK.into(),
        at_ms: T0,
        by: "citizen".into(),
        kind: StepKind::File,
        class: None,
        unit: None,
        days: None,
        lapor: None,
        text: None,
        parents: vec![],
        seal: None,
    }
}

/// A central step of `kind` written at `T0 + minutes`, after `parents`.
fn step(id: &str, kind: StepKind, minutes: i64, parents: &[&str]) -> Step {
    Step {
        id: id.into(),
        hlc: hlc(T0 + minutes * 60_000),
        node: "c0c0".into(),
        at_ms: T0 + minutes * 60_000,
        by: "petugas_pengaduan".into(),
        kind,
        class: None,
        unit: None,
        days: None,
        lapor: None,
        text: None,
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        seal: Some("ab".into()),
    }
}

fn register(id: &str, minutes: i64, parents: &[&str], class: Class) -> Step {
    Step {
        class: Some(class),
        unit: Some(Unit::Kelurahan("12.71.01.1001".parse().unwrap())),
        ..step(id, StepKind::Register, minutes, parents)
    }
}

fn answer(id: &str, minutes: i64, parents: &[&str], text: &str) -> Step {
    Step { text: Some(text.into()), ..step(id, StepKind::Answer, minutes, parents) }
}

fn new_complaint(about: About, complainant: Option<Complainant>) -> NewComplaint {
    NewComplaint {
        id: DocId::new_v7(T0 as u64, [3; 10]),
        ticket: "ADU-K001-1203-031".parse().unwrap(),
        kelurahan: "12.71.01.1001".parse().unwrap(),
        kiosk: "K001".parse().unwrap(),
        created_at_ms: T0,
        hlc: hlc(T0),
        about,
        complainant,
        text: "Petugas meminta biaya untuk surat domisili.\nSaya tidak diberi kuitansi.".into(),
        file_step: file_step(),
    }
}

#[test]
fn a_complaint_round_trips_named_or_anonymous_about_anything() {
    let abouts = [
        About::Request("K001-1202-007".parse().unwrap()),
        About::Office,
        About::Service("SKD".parse().unwrap()),
        About::Staff("198503122010011002".parse().unwrap()),
        About::General,
    ];
    for (i, about) in abouts.into_iter().enumerate() {
        let complainant = (i % 2 == 0).then(|| Complainant {
            name: "Siti Aminah".parse().unwrap(),
            nik: Some("1271014107850003".parse().unwrap()),
            phone: None,
        });
        let new = new_complaint(about.clone(), complainant.clone());
        let mut doc = AutoCommit::new();
        create(&mut doc, &new).unwrap();
        let mut reg = register("s-reg", 10, &["s-file"], Class::Normatif);
        reg.text = Some("diteruskan ke Kasi Pelayanan".into());
        append_step(&mut doc, &reg).unwrap();
        let fwd = Step { lapor: Some("LAPOR-5512345".into()), ..step("s-fwd", StepKind::Forward, 20, &["s-reg"]) };
        append_step(&mut doc, &fwd).unwrap();
        doc.commit();
        let back = read(&doc).unwrap();
        assert_eq!(back.about, about);
        assert_eq!(back.complainant, complainant);
        assert_eq!(back.text, new.text);
        assert_eq!(back.steps, vec![file_step(), reg.clone(), fwd.clone()]);
        let d = fold(&back.steps).unwrap();
        assert_eq!(
            (d.state, d.class, d.lapor.clone()),
            (State::Registered, Some(Class::Normatif), vec!["LAPOR-5512345".into()])
        );
    }
}

#[test]
fn a_document_that_does_not_fit_is_refused_never_guessed() {
    let mut good = AutoCommit::new();
    create(&mut good, &new_complaint(About::General, None)).unwrap();
    let steps = match good.get(ROOT, "steps").unwrap() {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => unreachable!(),
    };
    let first = match good.get(&steps, 0).unwrap() {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => unreachable!(),
    };
    type Forge = fn(&mut AutoCommit, &ObjId);
    let forgeries: [(&str, Forge); 8] = [
        ("an unknown step kind", |d, m| d.put(m, "kind", "delete").unwrap()),
        ("an unknown class", |d, m| d.put(m, "class", "urgent").unwrap()),
        ("a LAPOR! number with markup", |d, m| d.put(m, "lapor", "<b>123</b>").unwrap()),
        ("an answer too long", |d, m| d.put(m, "text", "x".repeat(NOTE_MAX_CHARS + 1)).unwrap()),
        ("negative days", |d, m| d.put(m, "days", -3).unwrap()),
        ("a unit that is no unit", |d, m| d.put(m, "unit", "camat").unwrap()),
        ("parents that are no list", |d, m| d.put(m, "parents", "s-0").unwrap()),
        ("a control character", |d, m| d.put(m, "text", "a\u{7}b").unwrap()),
    ];
    for (what, forge) in forgeries {
        let mut doc = good.fork();
        forge(&mut doc, &first);
        doc.commit();
        assert!(read(&doc).is_err(), "{what}");
    }
    let mut doc = good.fork();
    doc.put(ROOT, "type", "request").unwrap();
    assert!(matches!(read(&doc), Err(SchemaError::WrongType(_))));
    let mut doc = good.fork();
    let about = map(&doc, &ROOT, "about").unwrap().unwrap();
    doc.put(&about, "kind", "request").unwrap();
    assert!(read(&doc).is_err(), "a complaint about a request names its ticket");
    let mut doc = good.fork();
    doc.put(ROOT, "text", "").unwrap();
    assert!(read(&doc).is_err(), "an empty complaint");
    assert!(
        create(&mut AutoCommit::new(), &NewComplaint { text: " ".into(), ..new_complaint(About::General, None) })
            .is_err()
    );
}

/// Received → registered → extended → answered → amended → closed, with
/// the deadline of a normatif complaint (5 working days) plus a 7-day
/// extension, counted in Medan's service hours over a weekend.
#[test]
fn a_complaint_is_handled_step_by_step_against_its_deadline() {
    let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let none = Holidays::none();
    let cal = Calendar { offset: wib, hours: &ServiceHours::CITY_DEFAULT, holidays: &none };
    // Filed Friday 2026-12-04 at 09:00 WIB.
    let filed = time::macros::datetime!(2026-12-04 09:00).assume_offset(wib).unix_timestamp() * 1000;
    let ms = |d: time::PrimitiveDateTime| d.assume_offset(wib).unix_timestamp() * 1000;
    let mut steps = vec![file_step()];
    let d = fold(&steps).unwrap();
    assert_eq!((d.state, d.allowed_days()), (State::Received, 2), "unclassified: judged as ringan");
    assert_eq!(d.due_at(&cal, filed), ms(time::macros::datetime!(2026-12-08 09:00)), "Fri 09:00 + 2 working days");
    for kind in [StepKind::Answer, StepKind::Extend, StepKind::Forward] {
        let mut s = step("x", kind, 1, &["s-file"]);
        s.text = Some("t".into());
        s.days = (kind == StepKind::Extend).then_some(3);
        s.lapor = (kind == StepKind::Forward).then(|| "123456".into());
        assert_eq!(check_step(&d, &s), Err(StepError::NotRegistered), "{kind:?} before registering");
    }
    assert_eq!(check_step(&d, &step("c", StepKind::Close, 1, &["s-file"])), Err(StepError::NotAnswered));
    assert_eq!(check_step(&d, &file_step()), Err(StepError::FileOnlyOnce));
    assert_eq!(check_step(&d, &step("r", StepKind::Register, 1, &["s-file"])), Err(StepError::Missing("class")));

    let reg = register("s-reg", 30, &["s-file"], Class::Normatif);
    check_step(&d, &reg).unwrap();
    steps.push(reg);
    let d = fold(&steps).unwrap();
    assert_eq!((d.state, d.allowed_days()), (State::Registered, 5));
    assert_eq!(d.due_at(&cal, filed), ms(time::macros::datetime!(2026-12-11 09:00)), "5 working days: next Friday");
    assert!(!d.overdue(&cal, filed, ms(time::macros::datetime!(2026-12-11 09:00))));
    assert!(d.overdue(&cal, filed, ms(time::macros::datetime!(2026-12-11 09:01))));

    let no_notice = Step { days: Some(7), ..step("s-ext", StepKind::Extend, 60, &["s-reg"]) };
    assert_eq!(check_step(&d, &no_notice), Err(StepError::Missing("text")), "the citizen is told why");
    let too_long = Step { days: Some(15), text: Some("perlu klarifikasi".into()), ..no_notice.clone() };
    assert_eq!(check_step(&d, &too_long), Err(StepError::Invalid("days")));
    let ext = Step { text: Some("perlu klarifikasi ke Kasi Pemerintahan".into()), ..no_notice };
    check_step(&d, &ext).unwrap();
    steps.push(ext);
    let d = fold(&steps).unwrap();
    assert_eq!(d.allowed_days(), 12);
    assert_eq!(d.due_at(&cal, filed), ms(time::macros::datetime!(2026-12-22 09:00)), "12 working days");
    let again = Step { days: Some(2), text: Some("lagi".into()), ..step("s-ext2", StepKind::Extend, 70, &["s-ext"]) };
    assert_eq!(check_step(&d, &again), Err(StepError::AlreadyExtended));

    let a1 = answer("s-a1", 90, &["s-ext"], "Biaya surat domisili Rp0; petugas telah ditegur.");
    check_step(&d, &a1).unwrap();
    steps.push(a1);
    let d = fold(&steps).unwrap();
    assert_eq!(d.state, State::Answered);
    assert!(!d.overdue(&cal, filed, i64::MAX / 2), "answered is never overdue");
    assert_eq!(check_step(&d, &register("r2", 95, &["s-a1"], Class::Ringan)), Err(StepError::Invalid("register")));
    let a2 = answer("s-a2", 100, &["s-a1"], "Ralat: uang Anda dikembalikan oleh Lurah.");
    check_step(&d, &a2).unwrap();
    steps.push(a2);
    let d = fold(&steps).unwrap();
    assert_eq!(d.answers.len(), 1, "an amended answer replaces the one it saw");
    assert_eq!(d.answers[0].step_id, "s-a2");
    assert_eq!(d.first_answer_at_ms, Some(T0 + 90 * 60_000), "the time to answer ends at the first answer");
    assert!(d.ordered.iter().any(|s| s.id == "s-a1"), "the first answer stays in the history");
    let close = step("s-close", StepKind::Close, 120, &["s-a2"]);
    check_step(&d, &close).unwrap();
    steps.push(close);
    let d = fold(&steps).unwrap();
    assert_eq!((d.state, d.flags.clone()), (State::Closed, vec![]));
    assert_eq!(check_step(&d, &answer("late", 130, &["s-close"], "x")), Err(StepError::Closed));
}

/// Two officers answer at once: both answers are shown and flagged; an
/// answer written after seeing both settles it. A close that races an
/// answer keeps the answer and says so. Real Automerge documents, merged.
#[test]
fn concurrent_answers_are_all_kept_and_flagged_until_one_answer_settles_them() {
    let mut a = AutoCommit::new();
    create(&mut a, &new_complaint(About::Office, None)).unwrap();
    append_step(&mut a, &register("s-reg", 10, &["s-file"], Class::Ringan)).unwrap();
    a.commit();
    let mut b = a.fork();
    append_step(&mut a, &answer("s-a", 20, &["s-reg"], "Jawaban petugas A")).unwrap();
    a.commit();
    append_step(&mut b, &answer("s-b", 21, &["s-reg"], "Jawaban petugas B")).unwrap();
    b.commit();
    a.merge(&mut b).unwrap();
    b.merge(&mut a.clone()).unwrap();
    let (da, db) = (fold(&read(&a).unwrap().steps).unwrap(), fold(&read(&b).unwrap().steps).unwrap());
    assert_eq!(da, db, "both replicas derive the same");
    let texts: Vec<&str> = da.answers.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts, ["Jawaban petugas A", "Jawaban petugas B"]);
    assert_eq!(da.flags, vec![Flag::ConcurrentAnswers(vec!["s-a".into(), "s-b".into()])]);
    assert_eq!(da.frontier, ["s-a", "s-b"]);

    // A close racing a third answer.
    let mut c = a.fork();
    append_step(&mut a, &answer("s-ab", 30, &["s-a", "s-b"], "Jawaban gabungan")).unwrap();
    a.commit();
    append_step(&mut c, &step("s-close", StepKind::Close, 31, &["s-a", "s-b"])).unwrap();
    c.commit();
    a.merge(&mut c).unwrap();
    let d = fold(&read(&a).unwrap().steps).unwrap();
    assert_eq!(d.state, State::Closed);
    assert_eq!(
        d.answers.iter().map(|x| x.step_id.as_str()).collect::<Vec<_>>(),
        ["s-ab"],
        "settled by the answer that saw both"
    );
    assert_eq!(
        d.flags,
        vec![Flag::AnswerUnseenAtClose(vec!["s-ab".into()])],
        "the closer never saw it: flagged, still shown"
    );
}

#[test]
fn registrations_extensions_and_forwards_that_race_are_flagged_and_one_counts() {
    let reg = register("s-r1", 10, &["s-file"], Class::Ringan);
    let other = Step {
        unit: Some(Unit::Agency("DISDUKCAPIL".parse().unwrap())),
        ..register("s-r2", 11, &["s-file"], Class::Normatif)
    };
    let same = register("s-r3", 12, &["s-file"], Class::Ringan);
    let d = fold(&[file_step(), reg.clone(), same.clone()]).unwrap();
    assert!(d.flags.is_empty(), "concurrent registrations that agree are no news");
    let d = fold(&[file_step(), reg.clone(), other.clone()]).unwrap();
    assert_eq!(d.flags, vec![Flag::ConcurrentRegistrations(vec!["s-r1".into(), "s-r2".into()])]);
    assert_eq!((d.class, d.unit.clone()), (Some(Class::Normatif), other.unit.clone()), "the latest counts");
    let x1 = Step { days: Some(3), text: Some("a".into()), ..step("s-x1", StepKind::Extend, 20, &["s-r1"]) };
    let x2 = Step { days: Some(9), text: Some("b".into()), ..step("s-x2", StepKind::Extend, 21, &["s-r1"]) };
    let d = fold(&[file_step(), reg.clone(), x2.clone(), x1.clone()]).unwrap();
    assert_eq!(d.extension_days, Some(3), "one extension: the earliest");
    assert_eq!(d.flags, vec![Flag::ExtraExtension(vec!["s-x1".into(), "s-x2".into()])]);
    let f1 = Step { lapor: Some("1111".into()), ..step("s-f1", StepKind::Forward, 20, &["s-r1"]) };
    let f2 = Step { lapor: Some("2222".into()), ..step("s-f2", StepKind::Forward, 21, &["s-r1"]) };
    let d = fold(&[file_step(), reg, f1, f2]).unwrap();
    assert_eq!(d.lapor, ["1111", "2222"], "both numbers kept");
    assert_eq!(d.flags, vec![Flag::ConcurrentForwards(vec!["s-f1".into(), "s-f2".into()])]);
    let closed = Step { ..step("s-c", StepKind::Close, 30, &["s-f1", "s-f2"]) };
    check_step(&d, &closed).unwrap();
}

#[test]
fn forged_cycles_and_unknown_parents_do_not_hang_or_panic() {
    let mut a = answer("s-a", 20, &["s-b", "nowhere"], "a");
    let b = answer("s-b", 21, &["s-a"], "b");
    a.parents.push("s-a".into());
    let d = fold(&[file_step(), register("s-r", 10, &["s-file"], Class::Ringan), a, b]).unwrap();
    assert_eq!(d.state, State::Answered);
    assert_eq!(d.answers.len(), 2, "a cycle supersedes nothing: both stay visible");
    assert_eq!(d.flags, vec![Flag::ConcurrentAnswers(vec!["s-a".into(), "s-b".into()])]);
    assert!(fold(&[register("s-r", 10, &[], Class::Ringan)]).is_err(), "no file step");
}

#[test]
fn labels_codes_and_lapor_numbers() {
    for c in Class::ALL {
        assert_eq!(c.as_str().parse::<Class>(), Ok(c));
    }
    assert_eq!(Class::ALL.map(Class::days), [2, 5, 14, 60], "COMPLAINTS.md");
    for k in StepKind::ALL {
        assert_eq!(k.as_str().parse::<StepKind>(), Ok(k));
    }
    let u: Unit = "agency:DISDUKCAPIL".parse().unwrap();
    assert_eq!(u.to_string(), "agency:DISDUKCAPIL");
    assert!("kelurahan:12.71".parse::<Unit>().is_err());
    for good in ["1234", "LAPOR-2026/001", "#5512345"] {
        assert!(is_lapor_number(good), "{good}");
    }
    for bad in ["123", "12 34", "<script>", &"9".repeat(33)] {
        assert!(!is_lapor_number(bad), "{bad}");
    }
}

// ------------------------------------------------------------------ property

/// One writer's action: answer, amend, or merge what another writer knows.
#[derive(Debug, Clone)]
enum Op {
    Answer(usize),
    Merge(usize, usize),
}

fn ops() -> impl Strategy<Value = (usize, Vec<Op>, u64)> {
    (2usize..=4).prop_flat_map(|writers| {
        let op = prop_oneof![
            (0..writers).prop_map(Op::Answer),
            (0..writers, 0..writers).prop_map(|(a, b)| Op::Merge(a, b)),
        ];
        (Just(writers), prop::collection::vec(op, 1..24), any::<u64>())
    })
}

proptest! {
    /// Writers answer with what they have seen and sometimes learn what
    /// others know. Whatever order and duplication the steps arrive in,
    /// the fold gives the same result; every answer is in the history; the
    /// current answers are exactly the ones no writer had seen before
    /// answering again (the ground truth), and more than one is flagged.
    #[test]
    fn the_fold_matches_who_saw_what(case in ops()) {
        let (writers, ops, seed) = case;
        let base = vec![file_step(), register("s-reg", 1, &["s-file"], Class::Ringan)];
        // Each writer's known steps (ids) and the steps themselves.
        let mut known: Vec<BTreeSet<String>> = vec![base.iter().map(|s| s.id.clone()).collect(); writers];
        let mut all: Vec<Step> = base.clone();
        let mut seen_by_answer: Vec<(String, BTreeSet<String>)> = Vec::new();
        for (t, op) in ops.iter().enumerate() {
            match *op {
                Op::Answer(w) => {
                    let view: Vec<Step> = all.iter().filter(|s| known[w].contains(&s.id)).cloned().collect();
                    let d = fold(&view).unwrap();
                    let id = format!("s-{t:02}");
                    let parents: Vec<&str> = d.frontier.iter().map(String::as_str).collect();
                    let mut s = answer(&id, 10 + t as i64, &parents, &format!("jawaban {t}"));
                    s.node = format!("c{w}");
                    prop_assert!(check_step(&d, &s).is_ok());
                    seen_by_answer.push((id.clone(), known[w].clone()));
                    known[w].insert(id);
                    all.push(s);
                }
                Op::Merge(a, b) => {
                    let theirs = known[b].clone();
                    known[a].extend(theirs);
                }
            }
        }
        let truth = fold(&all).unwrap();
        // Order and duplicates do not matter.
        let mut shuffled = all.clone();
        shuffled.extend(all.iter().take(3).cloned());
        let mut r = seed;
        for i in (1..shuffled.len()).rev() {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (r >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(&fold(&shuffled).unwrap(), &truth);
        // Nothing lost.
        for s in &all {
            prop_assert!(truth.ordered.iter().any(|o| o.id == s.id));
        }
        // Ground truth: an answer is current unless a later answer was
        // written by someone who had seen it.
        let expected: BTreeSet<String> = seen_by_answer
            .iter()
            .filter(|(id, _)| !seen_by_answer.iter().any(|(_, seen)| seen.contains(id)))
            .map(|(id, _)| id.clone())
            .collect();
        let current: BTreeSet<String> = truth.answers.iter().map(|a| a.step_id.clone()).collect();
        prop_assert_eq!(&current, &expected);
        let flagged = truth.flags.iter().any(|f| matches!(f, Flag::ConcurrentAnswers(_)));
        prop_assert_eq!(flagged, expected.len() > 1);
        prop_assert_eq!(truth.state, if expected.is_empty() { State::Registered } else { State::Answered });
    }
}
