//! Kiosk enrollment (DESIGN.md §5): an admin issues a one-time, expiring
//! code bound to one kelurahan; a kiosk trades it, once, for its own
//! credential.
//!
//! - A code is 16 characters of Crockford's base32, shown as
//!   `XXXX-XXXX-XXXX-XXXX`: 80 random bits, so guessing is hopeless even
//!   before the per-address rate limit. Typing is forgiving: case, spaces
//!   and dashes do not matter, and look-alikes (O/0, I/L/1) read the same.
//! - Only the SHA-256 of a code (of its 16 characters) and of a kiosk's
//!   secret are stored.
//! - Enrolling is one transaction: check the code, mark it used, allocate
//!   the kiosk code, register the kiosk and its actor. A refusal writes
//!   nothing, and two kiosks racing for one code cannot both win (the
//!   write lock serialises them; the second finds it used).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use loket_shared::{KelurahanCode, KioskCode};
use serde::Serialize;
use thiserror::Error;

use super::auth;
use crate::store::kiosks::NewActor;
use crate::store::{Sql, StoreError, kiosks, random_bytes};

/// Crockford's base32: digits and capitals without I, L, O and U. Typing
/// is forgiving: `O` reads as `0`, `I` and `L` as `1`.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters of a code, without its dashes.
pub const CODE_CHARS: usize = 16;

/// The longest kiosk name accepted, in characters.
pub const NAME_CHARS_MAX: usize = 100;
/// The longest kiosk software version string accepted.
pub const VERSION_CHARS_MAX: usize = 64;

/// A one-time enrollment code, canonical (16 characters, no dashes).
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollCode(String);

/// Debug does not show the code: it is a secret until used.
impl fmt::Debug for EnrollCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrollCode(****)")
    }
}

/// Shown in groups of four: `ABCD-EFGH-JKMN-PQRS`.
impl fmt::Display for EnrollCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, chunk) in self.0.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl EnrollCode {
    /// A new random code: 80 bits.
    pub fn generate() -> EnrollCode {
        let bytes = random_bytes::<10>();
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let code = (0..CODE_CHARS).rev().map(|i| char::from(ALPHABET[((bits >> (5 * i)) & 31) as usize])).collect();
        EnrollCode(code)
    }

    /// The SHA-256 (hex) that is stored.
    pub fn hash(&self) -> String {
        auth::token_hash(&self.0)
    }
}

impl FromStr for EnrollCode {
    type Err = ();

    /// Accepts any case, spaces and dashes, and reads look-alikes as the
    /// symbol they resemble.
    fn from_str(s: &str) -> Result<EnrollCode, ()> {
        if s.len() > 64 {
            return Err(());
        }
        let canonical: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            })
            .collect();
        let ok = canonical.len() == CODE_CHARS && canonical.bytes().all(|b| ALPHABET.contains(&b));
        if ok { Ok(EnrollCode(canonical)) } else { Err(()) }
    }
}

/// A code as handed to the admin.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: EnrollCode,
    pub kelurahan: KelurahanCode,
    pub expires_at_ms: i64,
}

/// Refuses (422 `unknown_kelurahan`) a kelurahan that is not in the
/// region list (`loket_shared::wilayah`): a well-formed code with a typo
/// would otherwise enroll a kiosk into a kelurahan nobody serves.
pub fn check_known_kelurahan(kelurahan: &KelurahanCode) -> Result<(), super::OpError> {
    if loket_shared::wilayah::is_known_kelurahan(kelurahan.as_str()) {
        Ok(())
    } else {
        Err(super::OpError::unprocessable(
            "unknown_kelurahan",
            "kode kelurahan tidak ada dalam daftar wilayah (Kepmendagri) / the kelurahan code is not in the region list",
        ))
    }
}

/// Stores a new code for `kelurahan`, valid for `ttl` from `now_ms`.
pub fn issue(db: &mut dyn Sql, kelurahan: &KelurahanCode, ttl: Duration, now_ms: i64) -> Result<Issued, StoreError> {
    let code = EnrollCode::generate();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at_ms = now_ms.saturating_add(ttl_ms);
    kiosks::insert_enroll_code(db, &code.hash(), kelurahan, now_ms, expires_at_ms)?;
    Ok(Issued { code, kelurahan: kelurahan.clone(), expires_at_ms })
}

/// What a kiosk sends to enroll, parsed.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    pub code: EnrollCode,
    /// The kiosk's Automerge actor id, 32 lowercase hex characters.
    pub actor: String,
    pub name: Option<String>,
    pub version: String,
}

/// What the kiosk gets back: its identity and its secret (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    pub kiosk_id: String,
    pub kiosk_code: KioskCode,
    pub kelurahan: KelurahanCode,
    pub name: String,
    pub token: String,
}

#[derive(Debug, Error)]
pub enum EnrollError {
    #[error("kode pendaftaran tidak dikenal / unknown enrollment code")]
    CodeInvalid,
    #[error("kode pendaftaran sudah kedaluwarsa; minta kode baru / the enrollment code has expired; ask for a new one")]
    CodeExpired,
    #[error("kode pendaftaran sudah dipakai / the enrollment code has already been used")]
    CodeUsed,
    #[error("actor id ini sudah terdaftar untuk kiosk lain / this actor id is already registered to another kiosk")]
    ActorTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EnrollError {
    /// The stable error code for the API and the metrics.
    pub fn code(&self) -> &'static str {
        match self {
            EnrollError::CodeInvalid => "enrollment_code_invalid",
            EnrollError::CodeExpired => "enrollment_code_expired",
            EnrollError::CodeUsed => "enrollment_code_used",
            EnrollError::ActorTaken => "actor_taken",
            EnrollError::Store(_) => "internal",
        }
    }
}

/// An Automerge actor id as a kiosk registers it: 32 hex characters (16
/// random bytes), lowercased.
pub fn parse_actor(raw: &str) -> Result<String, String> {
    let actor = raw.trim().to_ascii_lowercase();
    if actor.len() == 32 && actor.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(actor)
    } else {
        Err("actor harus 32 karakter heksadesimal / actor must be 32 hex characters".to_owned())
    }
}

/// A display name: trimmed, 1..=100 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(format!(
            "nama kiosk: 1-{NAME_CHARS_MAX} karakter tanpa karakter kendali / a kiosk name is 1-{NAME_CHARS_MAX} \
             characters without control characters"
        ));
    }
    Ok(name.to_owned())
}

/// A software version: 1..=64 printable ASCII characters without spaces.
pub fn parse_version(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() || v.len() > VERSION_CHARS_MAX || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "versi: 1-{VERSION_CHARS_MAX} karakter ASCII tanpa spasi / version: 1-{VERSION_CHARS_MAX} ASCII \
             characters without spaces"
        ));
    }
    Ok(v.to_owned())
}

fn default_name(kelurahan: &KelurahanCode, code: &KioskCode) -> String {
    match loket_shared::wilayah::region(kelurahan.as_str()) {
        Some(region) => format!("Kiosk Kelurahan {} ({code})", region.name),
        None => format!("Kiosk {kelurahan} ({code})"),
    }
}

/// Trades a code for a kiosk credential, inside the caller's write
/// transaction (which must roll back on `Err`).
pub fn enroll(tx: &mut dyn Sql, req: &EnrollRequest, now_ms: i64) -> Result<Enrolled, EnrollError> {
    let code_hash = req.code.hash();
    let row = kiosks::enroll_code(tx, &code_hash)?.ok_or(EnrollError::CodeInvalid)?;
    if row.used_at_ms.is_some() {
        return Err(EnrollError::CodeUsed);
    }
    if now_ms >= row.expires_at_ms {
        return Err(EnrollError::CodeExpired);
    }
    let id = uuid::Builder::from_random_bytes(random_bytes()).into_uuid().to_string();
    let code = kiosks::next_code(tx)?;
    let name = req.name.clone().unwrap_or_else(|| default_name(&row.kelurahan, &code));
    let (token, token_hash) = auth::new_token();
    let inserted = kiosks::insert(
        tx,
        &kiosks::NewKiosk {
            id: &id,
            code: &code,
            kelurahan: &row.kelurahan,
            name: &name,
            token_hash: &token_hash,
            actor: &req.actor,
            version: &req.version,
        },
        now_ms,
    )?;
    if !inserted {
        return Err(EnrollError::ActorTaken);
    }
    if !kiosks::use_enroll_code(tx, &code_hash, &id, now_ms)? {
        return Err(EnrollError::CodeUsed);
    }
    Ok(Enrolled { kiosk_id: id, kiosk_code: code, kelurahan: row.kelurahan, name, token })
}

/// Trades a code for a kiosk credential in one transaction.
pub async fn enroll_kiosk(db: &crate::store::Db, req: EnrollRequest) -> Result<Enrolled, EnrollError> {
    let db = db.clone();
    match tokio::task::spawn_blocking(move || db.write(|tx| enroll(tx, &req, crate::store::now_ms()))).await {
        Ok(result) => result,
        Err(join) => Err(EnrollError::Store(StoreError::Invalid(format!("enrollment task: {join}")))),
    }
}

/// Registers one more Automerge actor for an enrolled kiosk: `kiosk
/// restore` gives a kiosk restored from an older copy of its disk a new
/// actor, which must be the kiosk's before it pushes anything written by
/// it. Also makes the server send the kiosk everything changed since its
/// cursor in full (`kiosks::add_actor`), and writes the audit log. A retry
/// of the same actor succeeds again.
pub async fn add_kiosk_actor(
    db: &crate::store::Db,
    kiosk: &crate::store::kiosks::KioskAuth,
    actor: String,
) -> Result<NewActor, StoreError> {
    let db = db.clone();
    let (id, code) = (kiosk.id.clone(), kiosk.code.to_string());
    let task = tokio::task::spawn_blocking(move || {
        db.write(|tx| {
            let now = crate::store::now_ms();
            let outcome = kiosks::add_actor(tx, &id, &actor, now)?;
            if outcome == NewActor::Registered {
                let reason = format!("kiosk restored from a backup took actor {actor}");
                crate::store::accounts::audit(
                    tx,
                    &crate::store::accounts::AuditEntry {
                        at_ms: now,
                        username: &format!("kiosk:{code}"),
                        role: "kiosk",
                        action: "kiosk_new_actor",
                        doc_id: None,
                        reason: &reason,
                        subject: None,
                    },
                )?;
            }
            Ok(outcome)
        })
    });
    task.await.map_err(|join| StoreError::Invalid(format!("actor task: {join}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_16_unambiguous_characters_in_groups_of_four() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let code = EnrollCode::generate();
            let shown = code.to_string();
            assert_eq!(shown.len(), 19, "{shown}");
            assert_eq!(shown.matches('-').count(), 3);
            assert!(!shown.contains(['I', 'L', 'O', 'U']), "{shown}");
            assert_eq!(shown.parse::<EnrollCode>().unwrap(), code);
            assert!(seen.insert(shown));
        }
    }

    #[test]
    fn codes_parse_forgivingly_and_refuse_junk() {
        let code = EnrollCode::generate();
        let sloppy = format!(" {} ", code.to_string().to_lowercase().replace('-', " "));
        assert_eq!(sloppy.parse::<EnrollCode>().unwrap(), code);
        let lookalikes = code.to_string().replace('0', "o").replace('1', "l");
        assert_eq!(lookalikes.parse::<EnrollCode>().unwrap(), code);
        for bad in ["", "ABCD-EFGH", "ABCD-EFGH-JKMN-PQRU", "ABCD-EFGH-JKMN-PQRS-T", "ABCD-EFGH-JKMN-PQR#"] {
            assert!(bad.parse::<EnrollCode>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(format!("{code:?}"), "EnrollCode(****)");
    }

    #[test]
    fn actor_name_and_version_are_checked() {
        assert_eq!(parse_actor("0123456789ABCDEF0123456789abcdef").unwrap(), "0123456789abcdef0123456789abcdef");
        assert!(parse_actor("0123").is_err());
        assert!(parse_actor("0123456789abcdef0123456789abcdeg").is_err());
        assert!(parse_name("  Kiosk Pasar Baru ").is_ok());
        assert!(parse_name("a\u{7}b").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert!(parse_version("0.1.0").is_ok());
        assert!(parse_version("0.1 0").is_err());
    }
}
