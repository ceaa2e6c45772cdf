//! The writer thread: the only code that writes the kiosk database.
//! See the module docs of `store` for the group-commit protocol.

use automerge::AutoCommit;
use loket_node::sqlite::meta_set;
use loket_node::{now_ms, random_bytes};
use loket_shared::complaint::{self, NewComplaint, Step, StepKind};
use loket_shared::rating_token::RatingToken;
use loket_shared::reference::Catalog;
use loket_shared::request::{self, NewRequest, Rating};
use loket_shared::summary::Summary;
use loket_shared::workflow::{self, Event, EventKind};
use loket_shared::{ComplaintTicket, DocId, Hlc, StaffId, Status, Ticket};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    Answer, ComplaintFiled, ComplaintInput, CreateInput, Created, EventAck, EventInput, Idem, Identity, OpError, Rated,
    RatingInput, StoreError, StoreOptions, corrupt, heads_column, insert_new_doc, load_doc, local_date,
    project_complaint, project_request, store_whole,
};

type Reply<T> = oneshot::Sender<Result<T, OpError>>;

pub enum Job {
    Create {
        input: CreateInput,
        idem: Option<Idem>,
        reply: Reply<Created>,
    },
    Event {
        doc: DocId,
        input: EventInput,
        idem: Option<Idem>,
        reply: Reply<EventAck>,
    },
    Rate {
        doc: DocId,
        input: RatingInput,
        idem: Option<Idem>,
        reply: Reply<Rated>,
    },
    /// A citizen's complaint: a new document with its `file` step.
    Complaint {
        input: ComplaintInput,
        idem: Option<Idem>,
        reply: Reply<ComplaintFiled>,
    },
    Session {
        token_hash: String,
        staff: StaffId,
        expires_at_ms: i64,
        reply: Reply<()>,
    },
    /// Ends a staff session (logout).
    EndSession {
        token_hash: String,
        reply: Reply<()>,
    },
    Compact {
        reply: Reply<usize>,
    },
    Sync {
        plan: super::sync::PushPlan,
        response: loket_shared::sync::SyncResponse,
        reply: Reply<super::sync::SyncSummary>,
    },
    /// Evicts the personal data of finished requests last changed before
    /// `cutoff_ms` that the server holds exactly as we do.
    Evict {
        cutoff_ms: i64,
        reply: Reply<usize>,
    },
    /// Puts a document the server refused into quarantine (`Some`), or
    /// releases it for another push (`None`).
    Quarantine {
        doc_id: String,
        reason: Option<(String, String)>,
        reply: Reply<()>,
    },
}

fn commit_failed<T>(err: &StoreError) -> Result<T, OpError> {
    Err(OpError::Store(StoreError::Invalid(format!("commit failed: {err}"))))
}

/// A job's result, held until the group commits.
enum Outcome {
    Created(Reply<Created>, Result<Created, OpError>),
    Event(Reply<EventAck>, Result<EventAck, OpError>),
    Rated(Reply<Rated>, Result<Rated, OpError>),
    Complaint(Reply<ComplaintFiled>, Result<ComplaintFiled, OpError>),
    Session(Reply<()>, Result<(), OpError>),
    Synced(Reply<super::sync::SyncSummary>, Result<super::sync::SyncSummary, OpError>),
}

/// The documents with at least `?1` chunks, at most `?2`: `chunk_count > 0`
/// names the partial index `docs_with_chunks`, so the lookup every 30 s
/// reads no document row when none has chunks (stores written since
/// documents are stored whole never do).
pub(super) const COMPACT_CANDIDATES: &str =
    "SELECT doc_id FROM docs WHERE chunk_count > 0 AND chunk_count >= ?1 LIMIT ?2";

impl Outcome {
    fn is_ok(&self) -> bool {
        match self {
            Outcome::Created(_, r) => r.is_ok(),
            Outcome::Event(_, r) => r.is_ok(),
            Outcome::Rated(_, r) => r.is_ok(),
            Outcome::Complaint(_, r) => r.is_ok(),
            Outcome::Session(_, r) => r.is_ok(),
            Outcome::Synced(_, r) => r.is_ok(),
        }
    }

    /// Replaces a success with `err` (the commit failed).
    fn fail(self, err: &StoreError) -> Outcome {
        match self {
            Outcome::Created(tx, _) => Outcome::Created(tx, commit_failed(err)),
            Outcome::Event(tx, _) => Outcome::Event(tx, commit_failed(err)),
            Outcome::Rated(tx, _) => Outcome::Rated(tx, commit_failed(err)),
            Outcome::Complaint(tx, _) => Outcome::Complaint(tx, commit_failed(err)),
            Outcome::Session(tx, _) => Outcome::Session(tx, commit_failed(err)),
            Outcome::Synced(tx, _) => Outcome::Synced(tx, commit_failed(err)),
        }
    }

    /// The outcome for a job that never ran because its group failed.
    fn refused(job: Job, err: &StoreError) -> Option<Outcome> {
        Some(match job {
            Job::Create { reply, .. } => Outcome::Created(reply, commit_failed(err)),
            Job::Event { reply, .. } => Outcome::Event(reply, commit_failed(err)),
            Job::Rate { reply, .. } => Outcome::Rated(reply, commit_failed(err)),
            Job::Complaint { reply, .. } => Outcome::Complaint(reply, commit_failed(err)),
            Job::Session { reply, .. } | Job::EndSession { reply, .. } => Outcome::Session(reply, commit_failed(err)),
            Job::Sync { reply, .. } => Outcome::Synced(reply, commit_failed(err)),
            Job::Quarantine { reply, .. } => Outcome::Session(reply, commit_failed(err)),
            Job::Compact { reply } | Job::Evict { reply, .. } => {
                let _ = reply.send(Ok(0));
                return None;
            }
        })
    }

    fn send(self) {
        // A caller that went away (client disconnected) no longer needs the
        // answer; the write stands either way.
        let _ = match self {
            Outcome::Created(tx, r) => tx.send(r).map_err(drop),
            Outcome::Event(tx, r) => tx.send(r).map_err(drop),
            Outcome::Rated(tx, r) => tx.send(r).map_err(drop),
            Outcome::Complaint(tx, r) => tx.send(r).map_err(drop),
            Outcome::Session(tx, r) => tx.send(r).map_err(drop),
            Outcome::Synced(tx, r) => tx.send(r).map_err(drop),
        };
    }
}

pub(super) struct Writer {
    identity: Identity,
    node: String,
    options: StoreOptions,
    hlc: Hlc,
    catalog: Catalog,
}

impl Writer {
    pub(super) fn new(identity: Identity, options: StoreOptions, hlc: Hlc, catalog: Catalog) -> Writer {
        let node = identity.node();
        Writer { identity, node, options, hlc, catalog }
    }

    pub(super) fn run(mut self, mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            if let Job::Compact { reply } = first {
                let _ = reply.send(self.compact(&mut conn));
                continue;
            }
            if let Job::Evict { cutoff_ms, reply } = first {
                let _ = reply.send(super::evict::evict(&mut conn, cutoff_ms).map_err(OpError::from));
                continue;
            }
            let mut batch = vec![first];
            while batch.len() < self.options.write_batch_max {
                match rx.try_recv() {
                    // Compaction is not latency-critical: run it on its own.
                    Ok(Job::Compact { reply } | Job::Evict { reply, .. }) => {
                        let _ = reply.send(Ok(0));
                    }
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_group(&mut conn, batch);
        }
        tracing::debug!("writer stopped");
    }

    fn commit_group(&mut self, conn: &mut Connection, batch: Vec<Job>) {
        let size = batch.len();
        let started = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(size);
        let mut jobs = batch.into_iter();
        match self.try_group(conn, &mut jobs, &mut outcomes) {
            Ok(()) => {
                tracing::trace!(size, elapsed_us = started.elapsed().as_micros() as u64, "group committed");
                outcomes.into_iter().for_each(Outcome::send);
            }
            Err(e) => {
                // Nothing of the group is stored, and every caller hears so.
                // (The in-memory HLC may have moved on: harmless, it only grows.)
                tracing::error!(error = %e, size, "group commit failed");
                for outcome in outcomes {
                    outcome.fail(&e).send();
                }
                for job in jobs {
                    if let Some(outcome) = Outcome::refused(job, &e) {
                        outcome.send();
                    }
                }
            }
        }
    }

    fn try_group(
        &mut self,
        conn: &mut Connection,
        jobs: &mut std::vec::IntoIter<Job>,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), StoreError> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in jobs.by_ref() {
            let mut sp = tx.savepoint()?;
            let Some(outcome) = self.apply(&sp, job) else { continue };
            let ok = outcome.is_ok();
            outcomes.push(outcome);
            if !ok {
                // ROLLBACK TO, then RELEASE: a refused job leaves no trace.
                sp.rollback()?;
            }
            sp.commit()?;
        }
        meta_set(&tx, "hlc", &self.hlc.to_string())?;
        tx.commit()?;
        Ok(())
    }

    fn apply(&mut self, conn: &Connection, job: Job) -> Option<Outcome> {
        Some(match job {
            Job::Create { input, idem, reply } => {
                let r = self.idempotent(conn, "create", idem.as_ref(), |w| w.create(conn, input));
                Outcome::Created(reply, r)
            }
            Job::Event { doc, input, idem, reply } => {
                let scope = format!("event:{doc}");
                let r = self.idempotent(conn, &scope, idem.as_ref(), |w| w.event(conn, doc, input));
                Outcome::Event(reply, r)
            }
            Job::Rate { doc, input, idem, reply } => {
                let scope = format!("rate:{doc}");
                let r = self.idempotent(conn, &scope, idem.as_ref(), |w| w.rate(conn, doc, input));
                Outcome::Rated(reply, r)
            }
            Job::Complaint { input, idem, reply } => {
                let r = self.idempotent(conn, "complaint", idem.as_ref(), |w| w.file_complaint(conn, input));
                Outcome::Complaint(reply, r)
            }
            Job::Session { token_hash, staff, expires_at_ms, reply } => {
                let r = (|| -> Result<(), StoreError> {
                    conn.execute("DELETE FROM staff_sessions WHERE expires_at_ms <= ?1", [now_ms()])?;
                    conn.execute(
                        "INSERT INTO staff_sessions (token_hash, staff_id, expires_at_ms) VALUES (?1, ?2, ?3)",
                        params![token_hash, staff.as_str(), expires_at_ms],
                    )?;
                    Ok(())
                })()
                .map_err(OpError::from);
                Outcome::Session(reply, r)
            }
            Job::EndSession { token_hash, reply } => {
                let r = conn
                    .execute("DELETE FROM staff_sessions WHERE token_hash = ?1", [token_hash])
                    .map(drop)
                    .map_err(|e| OpError::from(StoreError::from(e)));
                Outcome::Session(reply, r)
            }
            Job::Sync { plan, response, reply } => {
                let r = self.apply_sync(conn, plan, response);
                Outcome::Synced(reply, r)
            }
            Job::Quarantine { doc_id, reason, reply } => {
                let r = super::sync::set_quarantine(conn, &doc_id, reason).map_err(OpError::from);
                Outcome::Session(reply, r)
            }
            Job::Compact { reply } | Job::Evict { reply, .. } => {
                let _ = reply.send(Ok(0));
                return None;
            }
        })
    }

    pub(super) fn observe_hlc(&mut self, remote: Hlc) {
        self.hlc = self.hlc.observe(remote, u64::try_from(now_ms()).unwrap_or(0));
    }

    pub(super) fn kiosk(&self) -> &loket_shared::KioskCode {
        &self.identity.kiosk
    }

    pub(super) fn kelurahan(&self) -> &loket_shared::KelurahanCode {
        &self.identity.kelurahan
    }

    pub(super) fn utc_offset(&self) -> time::UtcOffset {
        self.options.utc_offset
    }

    pub(super) fn set_catalog(&mut self, catalog: Catalog) {
        self.catalog = catalog;
    }

    /// Runs `op` unless `idem` was seen before: then answers with the first
    /// result (same request) or refuses (different request, same key).
    fn idempotent<T: Answer>(
        &mut self,
        conn: &Connection,
        scope: &str,
        idem: Option<&Idem>,
        op: impl FnOnce(&mut Self) -> Result<T, OpError>,
    ) -> Result<T, OpError> {
        let Some(idem) = idem else { return op(self) };
        let key = format!("{scope}:{}", idem.key);
        let seen: Option<(String, String)> = conn
            .prepare_cached("SELECT fingerprint, response FROM idempotency WHERE key = ?1")
            .and_then(|mut s| s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(StoreError::from)?;
        if let Some((fingerprint, response)) = seen {
            if fingerprint != idem.fingerprint {
                return Err(OpError::IdempotencyKeyReused);
            }
            return serde_json::from_str(&response).map_err(|e| corrupt("idempotency", e).into());
        }
        let result = op(self)?;
        let response = serde_json::to_string(&result).map_err(|e| StoreError::Invalid(e.to_string()))?;
        conn.prepare_cached(
            "INSERT INTO idempotency (key, fingerprint, status, response, at_ms, doc_id)
             VALUES (?1, ?2, 200, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![key, idem.fingerprint, response, now_ms(), result.doc().to_string()]))
        .map_err(StoreError::from)?;
        Ok(result)
    }

    fn next_hlc(&mut self, now: i64, seen: Option<Hlc>) -> Hlc {
        let now = u64::try_from(now).unwrap_or(0);
        self.hlc = match seen {
            Some(remote) => self.hlc.observe(remote, now),
            None => self.hlc.tick(now),
        };
        self.hlc
    }

    fn event_id(now: i64) -> String {
        DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes()).to_string()
    }

    fn create(&mut self, conn: &Connection, input: CreateInput) -> Result<Created, OpError> {
        match self.catalog.service(input.service.as_str()) {
            Some(s) if s.active => {}
            _ => return Err(OpError::UnknownService),
        }
        let now = now_ms();
        let (day, day_key, seq) = Self::next_number(conn, now, self.options.utc_offset)?;
        let ticket = Ticket::new(&self.identity.kiosk, u8::from(day.month()), day.day(), seq);
        let hlc = self.next_hlc(now, None);
        let id = DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes());
        let rating_token = RatingToken::from_random(random_bytes());
        let create_event = Event {
            id: Self::event_id(now),
            hlc,
            node: self.node.clone(),
            at_ms: now,
            by: "citizen".into(),
            kind: EventKind::Create,
            from: None,
            to: Status::Submitted,
            note: None,
            agency: None,
            waiting: Vec::new(),
            result_ref: None,
            parents: Vec::new(),
            seal: None,
        };
        let new = NewRequest {
            id,
            ticket: ticket.clone(),
            kelurahan: self.identity.kelurahan.clone(),
            kiosk: self.identity.kiosk.clone(),
            service: input.service,
            created_at_ms: now,
            hlc,
            applicant: input.applicant,
            rating_key: Some(rating_token.digest(&id)),
            create_event,
        };
        let mut doc = AutoCommit::new().with_actor(self.identity.actor.clone());
        request::create(&mut doc, &new).map_err(|e| corrupt(id, e))?;
        let doc_id = id.to_string();
        // Not DEFLATE-compressed: these bytes travel as they are in the
        // first push, where the sync frame's zstd compresses them across
        // the batch far better than per-column DEFLATE does (a request's
        // string column, with the 64-character rating key, crosses
        // Automerge's 256-byte threshold and would otherwise go out
        // deflated: 0.31 of the raw change bytes on the wire became 0.48).
        insert_new_doc(conn, &doc_id, "request", &doc.save_nocompress(), &heads_column(&mut doc), now)?;
        self.project(conn, &doc, &day_key)?;
        Ok(Created { id, ticket, status: Status::Submitted, rating_token })
    }

    /// The next number of the local day of `now`, shared by request and
    /// complaint tickets (so `K07-1128-024` and `ADU-K07-1128-024` are never
    /// both issued): the day, its key, the number.
    fn next_number(
        conn: &Connection,
        now: i64,
        offset: time::UtcOffset,
    ) -> Result<(time::Date, String, u32), StoreError> {
        let day = local_date(now, offset);
        let day_key = day.to_string();
        let seq: i64 = conn
            .prepare_cached(
                "INSERT INTO ticket_counters (day, last) VALUES (?1, 1)
                 ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
            )?
            .query_row([&day_key], |r| r.get(0))?;
        let seq = u32::try_from(seq).map_err(|_| StoreError::Invalid("ticket sequence overflow".into()))?;
        Ok((day, day_key, seq))
    }

    /// Files a complaint: checks what it is about against this office
    /// (an active service of the catalog, a staff member on the roster),
    /// then writes the document with its `file` step, and its projection.
    fn file_complaint(&mut self, conn: &Connection, input: ComplaintInput) -> Result<ComplaintFiled, OpError> {
        complaint::check_text(&input.text).map_err(|_| OpError::InvalidComplaintText)?;
        match &input.about {
            complaint::About::Service(code) => match self.catalog.service(code.as_str()) {
                Some(s) if s.active => {}
                _ => return Err(OpError::UnknownService),
            },
            complaint::About::Staff(id) => {
                let active: Option<bool> = conn
                    .query_row("SELECT active FROM staff WHERE staff_id = ?1", [id.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(StoreError::from)?;
                if active != Some(true) {
                    return Err(OpError::UnknownStaff);
                }
            }
            complaint::About::Request(_) | complaint::About::Office | complaint::About::General => {}
        }
        let now = now_ms();
        let (day, day_key, seq) = Self::next_number(conn, now, self.options.utc_offset)?;
        let ticket = ComplaintTicket::new(&self.identity.kiosk, u8::from(day.month()), day.day(), seq);
        let hlc = self.next_hlc(now, None);
        let id = DocId::new_v7(u64::try_from(now).unwrap_or(0), random_bytes());
        let file_step = Step {
            id: Self::event_id(now),
            hlc,
            node: self.node.clone(),
            at_ms: now,
            by: "citizen".into(),
            kind: StepKind::File,
            class: None,
            unit: None,
            days: None,
            lapor: None,
            text: None,
            parents: Vec::new(),
            seal: None,
        };
        let new = NewComplaint {
            id,
            ticket: ticket.clone(),
            kelurahan: self.identity.kelurahan.clone(),
            kiosk: self.identity.kiosk.clone(),
            created_at_ms: now,
            hlc,
            about: input.about,
            complainant: input.complainant,
            text: input.text,
            file_step,
        };
        let mut doc = AutoCommit::new().with_actor(self.identity.actor.clone());
        complaint::create(&mut doc, &new).map_err(|e| corrupt(id, e))?;
        insert_new_doc(conn, &id.to_string(), "complaint", &doc.save_nocompress(), &heads_column(&mut doc), now)?;
        // Read back and checked before it is projected (and answered).
        let view = complaint::read(&doc).map_err(|e| corrupt(id, e))?;
        let derived = complaint::fold(&view.steps).map_err(|e| corrupt(id, e))?;
        project_complaint(conn, &view, &derived, &day_key)?;
        Ok(ComplaintFiled { id, ticket, state: derived.state })
    }

    /// Loads a request document for an edit, with its heads before the edit.
    fn load_request(conn: &Connection, doc: &DocId) -> Result<(AutoCommit, request::RequestView), OpError> {
        let id = doc.to_string();
        if super::evict::is_evicted(conn, &id)? {
            return Err(OpError::NotFound); // its document is gone from this kiosk
        }
        match load_doc(conn, &id)? {
            Some((t, d)) if t == "request" => {
                let view = request::read(&d).map_err(|e| corrupt(&id, e))?;
                Ok((d, view))
            }
            _ => Err(OpError::NotFound),
        }
    }

    fn ticket_day(conn: &Connection, doc: &DocId) -> Result<String, StoreError> {
        Ok(conn
            .prepare_cached("SELECT ticket_day FROM requests WHERE doc_id = ?1")?
            .query_row([doc.to_string()], |r| r.get(0))?)
    }

    fn event(&mut self, conn: &Connection, doc_id: DocId, input: EventInput) -> Result<EventAck, OpError> {
        let (mut doc, view) = Self::load_request(conn, &doc_id)?;
        let derived = workflow::fold(&view.events).map_err(|e| corrupt(doc_id, e))?;
        let agency = input.agency.as_ref().map(|a| a.as_str());
        let actor = workflow::Actor::Kelurahan;
        let waiting = workflow::waiting_after(&derived, actor, input.to, agency);
        let proposal =
            workflow::Proposal::transition(input.to).agency(agency).waiting(&waiting).note(input.note.as_deref());
        workflow::check_transition(&derived, actor, &proposal)?;
        if let Some(agency) = agency {
            let service_takes_it = self
                .catalog
                .service(view.service.as_str())
                .is_some_and(|s| s.handoff.iter().any(|a| a.as_str() == agency));
            if !service_takes_it || self.catalog.agency(agency).is_none() {
                return Err(OpError::UnknownAgency);
            }
        }
        doc.set_actor(self.identity.actor.clone());
        let now = now_ms();
        let latest = derived.ordered.iter().map(|e| e.hlc).max();
        let event = Event {
            id: Self::event_id(now),
            hlc: self.next_hlc(now, latest),
            node: self.node.clone(),
            at_ms: now,
            by: input.by.to_string(),
            kind: EventKind::Transition,
            from: Some(derived.status),
            to: input.to,
            note: input.note,
            agency: input.agency.map(|a| a.to_string()),
            waiting,
            result_ref: None,
            parents: derived.frontier.clone(),
            seal: None,
        };
        request::append_event(&mut doc, &event).map_err(|e| corrupt(doc_id, e))?;
        doc.commit();
        store_whole(conn, &doc_id.to_string(), &mut doc, now)?;
        let after = self.project(conn, &doc, &Self::ticket_day(conn, &doc_id)?)?;
        Ok(EventAck { id: doc_id, event_id: event.id, status: after.status, conflict: after.has_conflict() })
    }

    fn rate(&mut self, conn: &Connection, doc_id: DocId, input: RatingInput) -> Result<Rated, OpError> {
        let (mut doc, view) = Self::load_request(conn, &doc_id)?;
        // The code first: without it, nothing about the request is told.
        if !view.rating_key.as_deref().is_some_and(|key| input.token.matches(&doc_id, key)) {
            return Err(OpError::InvalidRatingToken);
        }
        if !view.ratings.is_empty() {
            return Err(OpError::AlreadyRated);
        }
        // The survey asks about a service received: it opens once the
        // request is completed or rejected (issue 14), never before.
        let derived = workflow::fold(&view.events).map_err(|e| corrupt(doc_id, e))?;
        if !rating_open(derived.status) {
            return Err(OpError::NotFinished);
        }
        doc.set_actor(self.identity.actor.clone());
        let now = now_ms();
        let latest = view.events.iter().map(|e| e.hlc).max();
        let rating = Rating {
            id: Self::event_id(now),
            hlc: self.next_hlc(now, latest),
            node: self.node.clone(),
            at_ms: now,
            scores: input.scores,
            comment: input.comment,
            profile: input.profile,
        };
        request::append_rating(&mut doc, &rating).map_err(|e| corrupt(doc_id, e))?;
        doc.commit();
        store_whole(conn, &doc_id.to_string(), &mut doc, now)?;
        self.project(conn, &doc, &Self::ticket_day(conn, &doc_id)?)?;
        Ok(Rated { id: doc_id, rating_id: rating.id })
    }

    /// Re-reads the document just written (checking it) and rewrites its
    /// projection row.
    fn project(&self, conn: &Connection, doc: &AutoCommit, ticket_day: &str) -> Result<workflow::Derived, StoreError> {
        let view = request::read(doc).map_err(|e| corrupt("new request", e))?;
        let derived = workflow::fold(&view.events).map_err(|e| corrupt(view.id, e))?;
        project_request(conn, &Summary::of(&view, &derived), ticket_day)?;
        Ok(derived)
    }

    /// Folds the chunks of documents that have many into a new snapshot.
    /// Bounded per round so that user writes never wait long behind it;
    /// found through [`COMPACT_CANDIDATES`].
    fn compact(&mut self, conn: &mut Connection) -> Result<usize, OpError> {
        const DOCS_PER_ROUND: u32 = 64;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        let ids: Vec<String> = {
            let mut stmt = tx.prepare(COMPACT_CANDIDATES).map_err(StoreError::from)?;
            stmt.query_map(params![self.options.compact_chunks_min, DOCS_PER_ROUND], |r| r.get(0))
                .map_err(StoreError::from)?
                .collect::<Result<_, _>>()
                .map_err(StoreError::from)?
        };
        for id in &ids {
            let Some((_, mut doc)) = load_doc(&tx, id)? else { continue };
            let heads_before = doc.get_heads();
            // Uncompressed for the same reason as a new request's snapshot.
            let snapshot = doc.save_nocompress();
            // Check the snapshot before the chunks it replaces are deleted.
            let mut check = AutoCommit::load(&snapshot).map_err(|e| corrupt(id, e))?;
            if check.get_heads() != heads_before {
                return Err(corrupt(id, "compacted snapshot has different heads").into());
            }
            tx.execute("UPDATE docs SET snapshot = ?2, chunk_count = 0 WHERE doc_id = ?1", params![id, snapshot])
                .map_err(StoreError::from)?;
            tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [id]).map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)?;
        if !ids.is_empty() {
            tracing::debug!(documents = ids.len(), "compacted");
        }
        Ok(ids.len())
    }
}

/// Whether a request in this status may be rated: the service was given
/// (completed) or refused (rejected). A cancelled request received none.
pub fn rating_open(status: Status) -> bool {
    matches!(status, Status::Completed | Status::Rejected)
}
