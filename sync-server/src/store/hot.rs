//! Recently merged documents, kept open (issue 17).
//!
//! Opening a stored document (Automerge's load) was the largest single
//! cost of a sync: ~100-150 µs a document, on every push that changes it
//! and every pull that sends a kiosk part of it. A document one kiosk
//! changed is pulled by its partner kiosk next (a `save_after` the
//! partner's heads), often in the same second, and a request is worked on
//! again within days; so the server keeps the changed documents it
//! merged last, open, and clones one (~14 µs) instead of loading it.
//!
//! Invariants:
//! - an entry is used only when its heads equal the stored heads it is
//!   asked for: Automerge heads name the whole history, so equal heads
//!   mean the same document. A stale entry (another instance wrote the
//!   document, an admin's event, a restore) is a miss, never a wrong read;
//! - the cache holds at most [`HotDocs::budget`] bytes by its estimate of
//!   an open document's memory, evicting the least recently used (S3-FIFO);
//! - nothing else depends on it: an empty cache only costs time.
//!
//! Beside the open documents it keeps the summaries of the requests this
//! process merged last (`loket_shared::summary`), under the same rule of
//! equal heads: a kiosk that pulls such a request for the first time
//! gets the summary with the stored bytes and stores them unread.
//! [`SUMMARIES_MAX`] of them, about 300 bytes each.

use std::sync::Arc;

use automerge::AutoCommit;
use loket_shared::summary::Summary;

/// Summaries kept, at most: the requests of about a minute of the busiest
/// initial syncs (the 50-kiosk benchmark's reconnect merges 2,500 new
/// ones), in about 5 MiB.
pub const SUMMARIES_MAX: usize = 16_384;

/// An open document weighs about this many times its saved size in
/// memory (`examples/merge_profile` prints both: ~10 KiB open for a
/// ~0.9 KB request).
const MEMORY_PER_SAVED_BYTE: u64 = 11;

/// The least an entry weighs, whatever its saved size.
const MIN_WEIGHT: u64 = 4 * 1024;

/// The default budget: about 3,000 open requests.
pub const DEFAULT_BUDGET_BYTES: u64 = 32 * 1024 * 1024;

/// The summaries' cache: a summary is written once and read once (by the
/// partner kiosk's next pull), so nearly all of the cache is for entries
/// not read yet. quick_cache's default keeps 97 % for entries read
/// before, which left about 500 places for new ones: at 50 kiosks most
/// summaries were gone before they were pulled.
fn summaries_cache() -> quick_cache::sync::Cache<String, Arc<(Vec<u8>, Summary)>> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(SUMMARIES_MAX)
        .weight_capacity(SUMMARIES_MAX as u64)
        .hot_allocation(SUMMARIES_READ_SHARE)
        .build()
        .expect("the options are all set");
    quick_cache::sync::Cache::with_options(options, Default::default(), Default::default(), Default::default())
}

/// The share of [`SUMMARIES_MAX`] kept for summaries read already (a
/// kelurahan's third kiosk reads one again).
const SUMMARIES_READ_SHARE: f64 = 0.05;

/// One open document and the heads it was opened or merged at.
struct Hot {
    heads: Vec<u8>,
    doc: AutoCommit,
    weight: u64,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<Hot>> for Weight {
    fn weight(&self, _key: &String, val: &Arc<Hot>) -> u64 {
        val.weight
    }
}

/// The cache, shared by every exchange of the process.
pub struct HotDocs {
    cache: quick_cache::sync::Cache<String, Arc<Hot>, Weight>,
    budget: u64,
    /// `(heads, summary)` by document.
    summaries: quick_cache::sync::Cache<String, Arc<(Vec<u8>, Summary)>>,
}

impl std::fmt::Debug for HotDocs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotDocs").field("entries", &self.cache.len()).field("budget", &self.budget).finish()
    }
}

impl HotDocs {
    pub fn new(budget_bytes: u64) -> HotDocs {
        // quick_cache wants an item estimate; the weight bounds it.
        let items = usize::try_from(budget_bytes / MIN_WEIGHT).unwrap_or(usize::MAX).max(1);
        HotDocs {
            cache: quick_cache::sync::Cache::with_weighter(items, budget_bytes.max(1), Weight),
            budget: budget_bytes,
            summaries: summaries_cache(),
        }
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// A copy of the document `doc_id` at exactly `heads` (a blob, as
    /// `heads_blob` makes it), if the cache holds it.
    pub fn get(&self, doc_id: &str, heads: &[u8]) -> Option<AutoCommit> {
        let hot = self.cache.get(doc_id)?;
        (hot.heads == heads).then(|| hot.doc.clone())
    }

    /// Keeps `doc` as `doc_id` at `heads`; `saved_bytes` (its stored size)
    /// estimates its weight. Replaces an older entry of the document.
    pub fn put(&self, doc_id: &str, heads: Vec<u8>, doc: AutoCommit, saved_bytes: usize) {
        let weight =
            (u64::try_from(saved_bytes).unwrap_or(u64::MAX).saturating_mul(MEMORY_PER_SAVED_BYTE)).max(MIN_WEIGHT);
        if weight > self.budget / 8 {
            return; // one huge document must not empty the cache
        }
        self.cache.insert(doc_id.to_owned(), Arc::new(Hot { heads, doc, weight }));
    }

    /// Keeps what a kiosk's lists need of the request `doc_id` at `heads`.
    pub fn put_summary(&self, doc_id: &str, heads: Vec<u8>, summary: Summary) {
        self.summaries.insert(doc_id.to_owned(), Arc::new((heads, summary)));
    }

    /// The summary of `doc_id` at exactly `heads`, if kept.
    pub fn summary(&self, doc_id: &str, heads: &[u8]) -> Option<Summary> {
        let kept = self.summaries.get(doc_id)?;
        (kept.0 == heads).then(|| kept.1.clone())
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT, ReadDoc};

    use super::HotDocs;
    use crate::store::engine::heads_blob;

    fn blob(doc: &mut AutoCommit) -> Vec<u8> {
        heads_blob(&doc.get_heads().iter().map(|h| h.0).collect::<Vec<_>>())
    }

    #[test]
    fn a_document_is_served_only_at_the_heads_it_was_kept_at() {
        let hot = HotDocs::new(1024 * 1024);
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "status", "submitted").unwrap();
        let old = blob(&mut doc);
        hot.put("d1", old.clone(), doc.clone(), 100);
        let got = hot.get("d1", &old).expect("kept");
        assert_eq!(got.get(ROOT, "status").unwrap().unwrap().0.as_str(), Some("submitted"));
        // The stored document moved on (another instance, an admin): a miss.
        doc.put(ROOT, "status", "in_progress").unwrap();
        let new = blob(&mut doc);
        assert!(hot.get("d1", &new).is_none());
        assert!(hot.get("d2", &old).is_none());
        hot.put("d1", new.clone(), doc, 100);
        assert!(hot.get("d1", &old).is_none(), "replaced");
        assert!(hot.get("d1", &new).is_some());
    }

    #[test]
    fn a_summary_is_served_only_at_the_heads_it_was_kept_at() {
        let hot = HotDocs::new(1024 * 1024);
        let summary = loket_shared::summary::Summary {
            doc: [2; 16],
            ticket: "K01-0101-001".parse().unwrap(),
            kiosk: "K01".parse().unwrap(),
            service: "SKU".parse().unwrap(),
            status: loket_shared::Status::Completed,
            conflict: false,
            agency: None,
            applicant_name: "Budi".parse().unwrap(),
            nik: "1271010101900001".parse().unwrap(),
            rated: true,
            created_at_ms: 5,
            updated_at_ms: 9,
            create_node: Some("ab".into()),
            latest_hlc: Some((9, 0)),
        };
        hot.put_summary("d1", vec![1], summary.clone());
        assert_eq!(hot.summary("d1", &[1]), Some(summary.clone()));
        assert_eq!(hot.summary("d1", &[2]), None, "the request moved on since");
        assert_eq!(hot.summary("d2", &[1]), None);
        hot.put_summary("d1", vec![2], summary.clone());
        assert_eq!(hot.summary("d1", &[1]), None, "replaced");
        let n = 3 * super::SUMMARIES_MAX;
        for i in 0..n {
            hot.put_summary(&format!("e{i}"), vec![1], summary.clone());
        }
        assert!(hot.summaries.len() <= super::SUMMARIES_MAX + super::SUMMARIES_MAX / 8, "{}", hot.summaries.len());
        // Written once, not read yet: the last ones in are there to be
        // pulled (most of the cache is for them).
        let kept = (n - super::SUMMARIES_MAX / 2..n).filter(|i| hot.summary(&format!("e{i}"), &[1]).is_some()).count();
        assert_eq!(kept, super::SUMMARIES_MAX / 2, "the latest half of what fits");
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let hot = HotDocs::new(64 * 1024); // 16 entries of the least weight
        for i in 0..200 {
            hot.put(&format!("d{i}"), vec![i as u8], AutoCommit::new(), 10);
        }
        assert!(hot.len() <= 16, "{} entries", hot.len());
        assert!(!hot.is_empty());
        // Too large for a fair share of the budget: not kept at all.
        hot.put("big", vec![1], AutoCommit::new(), 64 * 1024);
        assert!(hot.get("big", &[1]).is_none());
    }
}
