//! Loket's shared domain model: the documents, their merge rules and
//! validation, and the SKM/IKM arithmetic. Pure: no IO, no clock, no
//! randomness of its own — time and random bytes are passed in, so every
//! rule here is deterministic and testable in isolation.

pub mod attempts;
pub mod chunks;
pub mod complaint;
pub mod hlc;
pub mod ids;
pub mod rating_token;
pub mod reference;
pub mod request;
pub mod respondent;
pub mod skm;
pub mod sla;
pub mod structure;
pub mod summary;
pub mod sync;
pub mod tree;
pub mod wilayah;
pub mod workflow;

pub use hlc::Hlc;
pub use ids::{
    Code, ComplaintTicket, DocId, KelurahanCode, KioskCode, Nik, PersonName, Phone, StaffId, StaffKind, Ticket,
};
pub use workflow::{Event, EventKind, Status};
