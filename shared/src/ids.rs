//! Identifiers and personal data as newtypes that parse rather than
//! validate: a `Nik` that exists is a valid NIK. Every constructor from
//! outside input is `FromStr`; the inner string is private, so no code path
//! can build an invalid value.
//!
//! The formats follow ../shared/data/SERVICES.md: Kemendagri region codes,
//! NIK (PPRRSS DDMMYY XXXX), NIP (18 digits).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Implements `Display`, `AsRef<str>`, `Serialize` and `Deserialize` (through
/// `FromStr`) for a string newtype.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn two_digits(s: &str, at: usize) -> u32 {
    let b = s.as_bytes();
    u32::from(b[at] - b'0') * 10 + u32::from(b[at + 1] - b'0')
}

/// Days in a month when the year is unknown (February may have 29).
fn max_day(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// ---------------------------------------------------------------- NIK

/// Nomor Induk Kependudukan: 16 digits, `PPRRSS DDMMYY XXXX`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nik(String);
string_newtype!(Nik);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NikError {
    #[error("NIK harus 16 angka / NIK must be exactly 16 digits")]
    Length,
    #[error("NIK hanya boleh berisi angka / NIK may contain digits only")]
    NotDigits,
    #[error("kode wilayah pada NIK tidak valid / the region part of the NIK is not valid")]
    Region,
    #[error("tanggal lahir pada NIK tidak valid / the date of birth in the NIK is not valid")]
    Date,
    #[error("nomor urut NIK tidak boleh 0000 / the NIK serial may not be 0000")]
    Serial,
}

impl FromStr for Nik {
    type Err = NikError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NikError::NotDigits);
        }
        if s.len() != 16 {
            return Err(NikError::Length);
        }
        // Province 11..99; kabupaten/kota and kecamatan are never 00.
        if two_digits(s, 0) < 11 || two_digits(s, 2) == 0 || two_digits(s, 4) == 0 {
            return Err(NikError::Region);
        }
        let day_raw = two_digits(s, 6);
        // Women have 40 added to the day of birth.
        let day = if day_raw > 40 { day_raw - 40 } else { day_raw };
        let month = two_digits(s, 8);
        if !(1..=12).contains(&month) || day == 0 || day > max_day(month) || (32..=40).contains(&day_raw) {
            return Err(NikError::Date);
        }
        // YY leaves the century open, but 29 February needs a leap year in
        // either: 19YY and 20YY are leap exactly when YY is a multiple of
        // 4 (00 stands for 2000, a leap year; 1900 was not, but one of the
        // two is enough).
        if month == 2 && day == 29 && !two_digits(s, 10).is_multiple_of(4) {
            return Err(NikError::Date);
        }
        if &s[12..] == "0000" {
            return Err(NikError::Serial);
        }
        Ok(Nik(s.to_owned()))
    }
}

impl Nik {
    /// The NIK as shown by default (PDP): region and serial kept, date of
    /// birth hidden, e.g. `127101••••••0003`.
    pub fn masked(&self) -> String {
        format!("{}••••••{}", &self.0[..6], &self.0[12..])
    }
}

impl fmt::Debug for Nik {
    // Personal data stays out of logs even through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nik({})", self.masked())
    }
}

// ---------------------------------------------------------------- region codes

/// Kemendagri code of a kelurahan or desa, e.g. `12.71.01.1001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KelurahanCode(String);
string_newtype!(KelurahanCode);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("kode kelurahan harus berbentuk 12.71.01.1001 / a kelurahan code looks like 12.71.01.1001")]
pub struct KelurahanCodeError;

impl FromStr for KelurahanCode {
    type Err = KelurahanCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('.').collect();
        let shape_ok = parts.len() == 4
            && parts.iter().zip([2, 2, 2, 4]).all(|(p, n)| p.len() == n && all_digits(p))
            && parts[..3].iter().all(|p| *p != "00")
            && matches!(parts[3].as_bytes()[0], b'1' | b'2')
            && parts[3] != "1000"
            && parts[3] != "2000";
        if shape_ok { Ok(KelurahanCode(s.to_owned())) } else { Err(KelurahanCodeError) }
    }
}

impl KelurahanCode {
    /// The kecamatan this kelurahan belongs to, e.g. `12.71.01`.
    pub fn kecamatan(&self) -> &str {
        &self.0[..8]
    }
}

// ---------------------------------------------------------------- kiosk code

/// A kiosk's short code, unique in the deployment, e.g. `K07`. It starts
/// every ticket the kiosk issues.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KioskCode(String);
string_newtype!(KioskCode);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "kode kiosk: huruf kapital lalu 1-7 huruf/angka, mis. K07 / a kiosk code is a capital letter and 1-7 capitals or digits, e.g. K07"
)]
pub struct KioskCodeError;

impl FromStr for KioskCode {
    type Err = KioskCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = (2..=8).contains(&b.len())
            && b[0].is_ascii_uppercase()
            && b[1..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if ok { Ok(KioskCode(s.to_owned())) } else { Err(KioskCodeError) }
    }
}

// ---------------------------------------------------------------- ticket

/// A citizen's ticket: kiosk code, day (MMDD) and the day's sequence, e.g.
/// `K07-1128-023`. Unique without coordination because kiosk codes are
/// unique and each kiosk persists its per-day sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(String);
string_newtype!(Ticket);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("nomor tiket tidak dikenali, contoh: K07-1128-023 / not a ticket number, e.g. K07-1128-023")]
pub struct TicketError;

impl Ticket {
    pub fn new(kiosk: &KioskCode, month: u8, day: u8, sequence: u32) -> Ticket {
        debug_assert!((1..=12).contains(&month) && (1..=31).contains(&day) && sequence > 0);
        Ticket(format!("{kiosk}-{month:02}{day:02}-{sequence:03}"))
    }

    /// The tickets a person may mean by `typed`, most likely first: a
    /// ticket as people type or read it aloud. `FromStr` takes only the
    /// printed form; this takes any case, spaces, dots or slashes for the
    /// dashes or none at all (`k001 1203 027`, `K0011203027`), a missing
    /// or extra leading zero in the sequence, the day or the kiosk's
    /// number (`K001-1203-0027`, `K01-1203-27`, `K0001-1203-027`), and O,
    /// I or L for 0, 1, 1 in the day and sequence. Every candidate is a
    /// ticket in the printed form; the caller looks them up in order and
    /// takes the first that exists. Bounded: at most
    /// [`Ticket::CANDIDATES_MAX`], none for input longer than 64 bytes.
    pub fn candidates(typed: &str) -> Vec<Ticket> {
        // (how far from the printed form, ticket): sorted, the closest first.
        let mut out: Vec<(usize, Ticket)> = Vec::new();
        if typed.len() > 64 {
            return Vec::new();
        }
        let upper = typed.trim().to_ascii_uppercase();
        let groups: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).filter(|g| !g.is_empty()).collect();
        if groups.is_empty() || groups.len() > 3 {
            return Vec::new();
        }
        let compact: String = groups.concat();
        // Where the person put separators: every one must fall between
        // two parts of the ticket.
        let mut bounds = Vec::with_capacity(2);
        let mut at = 0;
        for g in &groups[..groups.len() - 1] {
            at += g.len();
            bounds.push(at);
        }
        let separated = !bounds.is_empty();
        let n = compact.len();
        for kiosk_end in 2..=8.min(n) {
            for day_end in kiosk_end + 3..=(kiosk_end + 5).min(n) {
                if !bounds.iter().all(|b| *b == kiosk_end || *b == day_end) {
                    continue;
                }
                let (kiosk, day, seq) = (&compact[..kiosk_end], &compact[kiosk_end..day_end], &compact[day_end..]);
                // Without separators only the printed widths: a day of
                // four digits and a sequence of three to six.
                if !separated && (day.len() != 4 || !(3..=6).contains(&seq.len())) {
                    continue;
                }
                let widths_off = usize::from(day.len() != 4) + usize::from(seq.len() != 3);
                let (Some(day), Some(seq)) = (loose_day(day), loose_sequence(seq)) else { continue };
                for (padded, kiosk) in loose_kiosk(kiosk).into_iter().enumerate() {
                    let ticket = Ticket::new(&kiosk, day.0, day.1, seq);
                    if !out.iter().any(|(_, t)| *t == ticket) {
                        out.push((widths_off + padded, ticket));
                    }
                }
            }
        }
        out.sort_by_key(|(off, _)| *off);
        out.into_iter().map(|(_, t)| t).take(Ticket::CANDIDATES_MAX).collect()
    }

    /// The most [`Ticket::candidates`] gives for one input.
    pub const CANDIDATES_MAX: usize = 24;
}

/// Digits as people misread them: O for 0, I and L for 1.
fn loose_digits(s: &str) -> Option<String> {
    s.chars()
        .map(|c| match c {
            '0'..='9' => Some(c),
            'O' => Some('0'),
            'I' | 'L' => Some('1'),
            _ => None,
        })
        .collect()
}

/// MMDD with a missing (`203`) or an extra (`01203`) leading zero.
fn loose_day(s: &str) -> Option<(u8, u8)> {
    let digits = loose_digits(s)?;
    let digits = match digits.len() {
        3 => format!("0{digits}"),
        4 => digits,
        5 if digits.starts_with('0') => digits[1..].to_owned(),
        _ => return None,
    };
    let (month, day) = (two_digits(&digits, 0), two_digits(&digits, 2));
    let valid = (1..=12).contains(&month) && day >= 1 && day <= max_day(month);
    // Both are two digits, so they fit.
    valid.then_some((u8::try_from(month).ok()?, u8::try_from(day).ok()?))
}

/// The day's sequence number, leading zeros or not (1 to 999999).
fn loose_sequence(s: &str) -> Option<u32> {
    let digits = loose_digits(s)?;
    let significant = digits.trim_start_matches('0');
    if digits.len() > 7 || significant.is_empty() || significant.len() > 6 {
        return None;
    }
    significant.parse().ok()
}

/// A kiosk code as typed, then with its number padded to two and three
/// digits (`K1`, `K01`, `K001` and `K0001` may all mean one kiosk).
fn loose_kiosk(s: &str) -> Vec<KioskCode> {
    let mut out: Vec<KioskCode> = s.parse().into_iter().collect();
    let letters = s.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = s[letters.len()..].trim_start_matches('0');
    if letters.len() < s.len() && number.len() <= 3 {
        let number: u32 = number.parse().unwrap_or(0);
        for width in [2, 3] {
            if let Ok(code) = format!("{letters}{number:0width$}").parse::<KioskCode>()
                && !out.contains(&code)
            {
                out.push(code);
            }
        }
    }
    out
}

impl FromStr for Ticket {
    type Err = TicketError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_uppercase();
        let mut parts = s.split('-');
        let (Some(kiosk), Some(day), Some(seq), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TicketError);
        };
        kiosk.parse::<KioskCode>().map_err(|_| TicketError)?;
        if day.len() != 4 || !all_digits(day) {
            return Err(TicketError);
        }
        let (month, dd) = (two_digits(day, 0), two_digits(day, 2));
        if !(1..=12).contains(&month) || dd == 0 || dd > max_day(month) {
            return Err(TicketError);
        }
        if !(3..=6).contains(&seq.len()) || !all_digits(seq) || seq.bytes().all(|b| b == b'0') {
            return Err(TicketError);
        }
        Ok(Ticket(s))
    }
}

// ---------------------------------------------------------------- complaint ticket

/// A complaint's ticket (issue 16): `ADU-` ("aduan") and then a request
/// ticket's parts, e.g. `ADU-K07-1128-024`. Never a request ticket: the
/// printed form has four groups where a request's has three, and a kiosk
/// numbers complaints and requests from the same per-day sequence, so
/// `K07-1128-024` and `ADU-K07-1128-024` are never both issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComplaintTicket(String);
string_newtype!(ComplaintTicket);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "nomor tiket pengaduan tidak dikenali, contoh: ADU-K07-1128-024 / not a complaint ticket number, e.g. ADU-K07-1128-024"
)]
pub struct ComplaintTicketError;

impl ComplaintTicket {
    /// What every complaint ticket starts with.
    pub const PREFIX: &'static str = "ADU";

    pub fn new(kiosk: &KioskCode, month: u8, day: u8, sequence: u32) -> ComplaintTicket {
        ComplaintTicket(format!("{}-{}", Self::PREFIX, Ticket::new(kiosk, month, day, sequence)))
    }

    /// The request-ticket parts after the prefix (`K07-1128-024`).
    pub fn number(&self) -> &str {
        &self.0[Self::PREFIX.len() + 1..]
    }

    /// The complaint tickets a person may mean by `typed`, most likely
    /// first, as tolerant as [`Ticket::candidates`] (any case, spaces or
    /// no dashes, zeros missing or extra), but only for input that starts
    /// with `ADU`: without it, it is a request ticket or nothing. At most
    /// [`Ticket::CANDIDATES_MAX`].
    pub fn candidates(typed: &str) -> Vec<ComplaintTicket> {
        if typed.len() > 64 {
            return Vec::new();
        }
        let upper = typed.trim().to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix(Self::PREFIX) else { return Vec::new() };
        let rest = rest.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        Ticket::candidates(rest).into_iter().map(|t| ComplaintTicket(format!("{}-{t}", Self::PREFIX))).collect()
    }

    /// The complaint ticket with this number (what a person means who
    /// left the prefix out: the number alone is unique at its kiosk).
    pub fn from_number(ticket: &Ticket) -> ComplaintTicket {
        ComplaintTicket(format!("{}-{ticket}", Self::PREFIX))
    }
}

impl FromStr for ComplaintTicket {
    type Err = ComplaintTicketError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_uppercase();
        let rest = s.strip_prefix(Self::PREFIX).and_then(|r| r.strip_prefix('-')).ok_or(ComplaintTicketError)?;
        let ticket: Ticket = rest.parse().map_err(|_| ComplaintTicketError)?;
        Ok(ComplaintTicket::from_number(&ticket))
    }
}

// ---------------------------------------------------------------- doc id

/// A document's id: a UUIDv7 made where the document was created (time
/// ordered, so recent requests sort and index well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(uuid::Uuid);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("id dokumen tidak valid / not a document id")]
pub struct DocIdError;

impl DocId {
    /// A UUIDv7 from a wall clock reading and 10 random bytes (passed in:
    /// this crate owns no clock and no randomness).
    pub fn new_v7(unix_ms: u64, random: [u8; 10]) -> DocId {
        DocId(uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid())
    }
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
    /// The 16 bytes the sync protocol carries.
    pub fn to_bytes(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }
    /// From the sync protocol's 16 bytes; any UUID is a well-formed id
    /// (whether it names a document the sender may touch is checked later).
    pub fn from_bytes(bytes: [u8; 16]) -> DocId {
        DocId(uuid::Uuid::from_bytes(bytes))
    }
}

impl FromStr for DocId {
    type Err = DocIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical hyphenated form, so one document has one spelling.
        if s.len() != 36 {
            return Err(DocIdError);
        }
        let u = uuid::Uuid::try_parse(s).map_err(|_| DocIdError)?;
        if u.hyphenated().to_string() != s.to_ascii_lowercase() {
            return Err(DocIdError);
        }
        Ok(DocId(u))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl Serialize for DocId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------- staff id

/// A staff member's id, one of three shapes:
///
/// - a PNS's NIP: 18 digits `YYYYMMDD YYYYMM G NNN` (birth date,
///   appointment month, sex 1 or 2, serial);
/// - a PPPK's number (NI PPPK): 18 digits too. The numbers BKN issues
///   carry `21` where a NIP has the appointment month (`YYYYMMDD YYYY 21 G
///   NNN`); no regulation with that rule was at hand, so both that form and
///   the NIP form are accepted for PPPK (see [`StaffKind::accepts`]);
/// - contract (non-ASN) staff, who have no national number: an id the city
///   assigns, `NA-` + the kelurahan code's 10 digits + `-` + a 3-digit
///   serial, e.g. `NA-1271011001-001` (unique city-wide without a
///   registry; letters may be typed in lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaffId(String);
string_newtype!(StaffId);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "ID petugas: NIP/NI PPPK 18 angka yang valid, atau NA-1271011001-001 untuk non-ASN / a staff id is a valid 18-digit NIP or PPPK number, or NA-1271011001-001 for non-ASN staff"
)]
pub struct StaffIdError;

/// The shape of an 18-digit number's appointment field.
const PPPK_MARK: u32 = 21;

impl FromStr for StaffId {
    type Err = StaffIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("NA-").or_else(|| s.strip_prefix("na-")) {
            let ok = rest.len() == 14
                && rest.as_bytes()[10] == b'-'
                && all_digits(&rest[..10])
                && all_digits(&rest[11..])
                && &rest[11..] != "000"
                && format!("{}.{}.{}.{}", &rest[..2], &rest[2..4], &rest[4..6], &rest[6..10])
                    .parse::<KelurahanCode>()
                    .is_ok();
            return if ok { Ok(StaffId(format!("NA-{rest}"))) } else { Err(StaffIdError) };
        }
        if s.len() != 18 || !all_digits(s) {
            return Err(StaffIdError);
        }
        let birth_month = two_digits(s, 4);
        let birth_day = two_digits(s, 6);
        let appointed = two_digits(s, 12);
        let sex = s.as_bytes()[14];
        let ok = (1..=12).contains(&birth_month)
            && (1..=max_day(birth_month)).contains(&birth_day)
            && ((1..=12).contains(&appointed) || appointed == PPPK_MARK)
            && matches!(sex, b'1' | b'2')
            && &s[15..] != "000";
        if ok { Ok(StaffId(s.to_owned())) } else { Err(StaffIdError) }
    }
}

impl StaffId {
    /// The kind an id's shape says, when the roster does not: `NA-…` is
    /// non-ASN, `…21…` PPPK, a NIP a PNS.
    pub fn default_kind(&self) -> StaffKind {
        if self.0.starts_with("NA-") {
            StaffKind::NonAsn
        } else if two_digits(&self.0, 12) == PPPK_MARK {
            StaffKind::Pppk
        } else {
            StaffKind::Pns
        }
    }
}

/// What employs a staff member: the id rule depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffKind {
    /// Pegawai Negeri Sipil: a NIP.
    Pns,
    /// Pegawai Pemerintah dengan Perjanjian Kerja: an NI PPPK (either form).
    Pppk,
    /// Contract staff (tenaga non-ASN): a city-assigned `NA-` id.
    NonAsn,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("jenis pegawai: pns, pppk atau non_asn / staff kind: pns, pppk or non_asn")]
pub struct StaffKindError;

impl FromStr for StaffKind {
    type Err = StaffKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pns" => Ok(StaffKind::Pns),
            "pppk" => Ok(StaffKind::Pppk),
            "non_asn" => Ok(StaffKind::NonAsn),
            _ => Err(StaffKindError),
        }
    }
}

impl StaffKind {
    pub const ALL: [StaffKind; 3] = [StaffKind::Pns, StaffKind::Pppk, StaffKind::NonAsn];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffKind::Pns => "pns",
            StaffKind::Pppk => "pppk",
            StaffKind::NonAsn => "non_asn",
        }
    }

    /// How pages and exports name it (Bahasa Indonesia; the terms are the
    /// same in English).
    pub fn label(self) -> &'static str {
        match self {
            StaffKind::Pns => "PNS",
            StaffKind::Pppk => "PPPK",
            StaffKind::NonAsn => "Non-ASN",
        }
    }

    /// The id rule of this kind: a PNS has a NIP; a PPPK an 18-digit
    /// number in either form; non-ASN staff an `NA-` id.
    pub fn accepts(self, id: &StaffId) -> bool {
        match (self, id.default_kind()) {
            (StaffKind::Pns, k) => k == StaffKind::Pns,
            (StaffKind::Pppk, k) => k != StaffKind::NonAsn,
            (StaffKind::NonAsn, k) => k == StaffKind::NonAsn,
        }
    }
}

// ---------------------------------------------------------------- codes

/// A catalog service code (`SKD`) or an agency code (`DISDUKCAPIL`):
/// 2-24 capitals, digits or underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(String);
string_newtype!(Code);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("kode tidak valid / not a valid code (2-24 capitals, digits or _)")]
pub struct CodeError;

impl FromStr for Code {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (2..=24).contains(&s.len())
            && s.as_bytes()[0].is_ascii_uppercase()
            && s.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if ok { Ok(Code(s.to_owned())) } else { Err(CodeError) }
    }
}

pub type ServiceCode = Code;
pub type AgencyCode = Code;

// ---------------------------------------------------------------- person name

/// A citizen's name as written on the KTP: letters (any script), spaces and
/// `. , ' -`, 1-100 characters once surrounding and repeated spaces are
/// removed. Markup and control characters cannot get in, so a name is safe
/// to show anywhere (it is still escaped when rendered).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);
string_newtype!(PersonName);

pub const PERSON_NAME_MAX_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersonNameError {
    #[error("nama wajib diisi / the name is required")]
    Empty,
    #[error("nama paling panjang 100 huruf / the name may have at most 100 characters")]
    TooLong,
    #[error(
        "nama hanya boleh berisi huruf, spasi dan tanda . , ' - / a name may contain only letters, spaces and . , ' -"
    )]
    ForbiddenCharacter,
}

impl FromStr for PersonName {
    type Err = PersonNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalised = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if normalised.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if normalised.chars().count() > PERSON_NAME_MAX_CHARS {
            return Err(PersonNameError::TooLong);
        }
        let allowed = |c: char| c.is_alphabetic() || matches!(c, ' ' | '.' | ',' | '\'' | '-');
        if !normalised.chars().all(allowed) || !normalised.chars().any(char::is_alphabetic) {
            return Err(PersonNameError::ForbiddenCharacter);
        }
        Ok(PersonName(normalised))
    }
}

impl PersonName {
    /// The name as exports show it by default (PDP): each word's first
    /// letter, e.g. `S*** N***` for Siti Nurhaliza.
    pub fn masked(&self) -> String {
        self.0.split(' ').filter_map(|w| w.chars().next()).map(|c| format!("{c}***")).collect::<Vec<_>>().join(" ")
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(…)")
    }
}

// ---------------------------------------------------------------- phone

/// An Indonesian mobile number, stored in E.164 (`+628…`). Accepts the
/// spellings people type: `0812…`, `62812…`, `+62 812-…`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);
string_newtype!(Phone);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("nomor HP tidak valid, contoh: 0812 3456 7890 / not a valid mobile number, e.g. 0812 3456 7890")]
pub struct PhoneError;

impl FromStr for Phone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect();
        let national = if let Some(rest) = compact.strip_prefix("+62") {
            rest
        } else if let Some(rest) = compact.strip_prefix("62") {
            rest
        } else if let Some(rest) = compact.strip_prefix('0') {
            rest
        } else {
            return Err(PhoneError);
        };
        // Mobile numbers: 8xx, 9 to 12 digits after the country code.
        if !national.starts_with('8') || !(9..=12).contains(&national.len()) || !all_digits(national) {
            return Err(PhoneError);
        }
        Ok(Phone(format!("+62{national}")))
    }
}

impl Phone {
    /// Shown by default: `+62812••••7890`.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("{}••••{}", &self.0[..6], &self.0[n - 4..])
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_cases() {
        let cases: &[(&str, Result<(), NikError>)] = &[
            ("1271010101900003", Ok(())),
            ("1271014101900003", Ok(())),              // a woman: day + 40
            ("3174012902000001", Ok(())),              // outside Medan, 29 Feb 2000
            ("1271012902960003", Ok(())),              // 29 Feb 1996
            ("1271016902840003", Ok(())),              // a woman born 29 Feb 1984 (69 = 29 + 40)
            ("1271012902900003", Err(NikError::Date)), // 1990 and 2090 are not leap years
            ("1271016902910003", Err(NikError::Date)), // a woman, 29 Feb 1991
            ("1271012802910003", Ok(())),              // 28 Feb is always there
            ("1271016802910003", Ok(())),
            ("127101010190000", Err(NikError::Length)),
            ("12710101019000031", Err(NikError::Length)),
            ("12710101019000a3", Err(NikError::NotDigits)),
            ("", Err(NikError::Length)),
            ("0971010101900003", Err(NikError::Region)),
            ("1200010101900003", Err(NikError::Region)),
            ("1271013201900003", Err(NikError::Date)),
            ("1271017201900003", Err(NikError::Date)),
            ("1271010013900003", Err(NikError::Date)),
            ("1271013102900003", Err(NikError::Date)), // 31 Feb
            ("1271010001900003", Err(NikError::Date)),
            ("1271013601900003", Err(NikError::Date)), // 36 is neither
            ("1271010101900000", Err(NikError::Serial)),
        ];
        for (input, want) in cases {
            let got = input.parse::<Nik>().map(|_| ());
            assert_eq!(&got, want, "{input}");
        }
    }

    #[test]
    fn nik_masks_birth_date() {
        let nik: Nik = "1271010101900003".parse().unwrap();
        assert_eq!(nik.masked(), "127101••••••0003");
        assert_eq!(format!("{nik:?}"), "Nik(127101••••••0003)");
    }

    #[test]
    fn kelurahan_codes() {
        let k: KelurahanCode = "12.71.01.1001".parse().unwrap();
        assert_eq!(k.kecamatan(), "12.71.01");
        for bad in ["12.71.01", "12.71.01.3001", "12.71.1.1001", "12-71-01-1001", "12.71.01.1000", ""] {
            assert!(bad.parse::<KelurahanCode>().is_err(), "{bad}");
        }
    }

    /// Issue 15, item 5: tickets as people type them.
    #[test]
    fn tickets_as_people_type_them() {
        let want = |t: &str| t.parse::<Ticket>().unwrap();
        let cases: &[(&str, &str)] = &[
            ("K001-1203-027", "K001-1203-027"),
            ("k001 1203 027", "K001-1203-027"),
            ("  K001  1203  027 ", "K001-1203-027"),
            ("K0011203027", "K001-1203-027"),
            ("k001-1203027", "K001-1203-027"),
            ("K0011203-027", "K001-1203-027"),
            ("K001-1203-0027", "K001-1203-027"),
            ("K001-1203-27", "K001-1203-027"),
            ("K001.1203.027", "K001-1203-027"),
            ("K001/1203/027", "K001-1203-027"),
            ("K001–1203–027", "K001-1203-027"),
            ("K001-01203-027", "K001-1203-027"),
            ("K001-203-027", "K001-0203-027"),
            ("K0001-1203-027", "K001-1203-027"),
            ("K1-1203-027", "K001-1203-027"),
            ("K001-12O3-O27", "K001-1203-027"),
            ("K07-1128-023", "K07-1128-023"),
            ("k07 1128 23", "K07-1128-023"),
            ("K07-0102-1234", "K07-0102-1234"),
            ("K0701021234", "K07-0102-1234"),
        ];
        for (typed, expected) in cases {
            let found = Ticket::candidates(typed);
            assert!(found.contains(&want(expected)), "{typed:?} -> {found:?}");
            assert!(found.len() <= Ticket::CANDIDATES_MAX, "{typed:?}");
        }
        // As typed comes first: a kiosk K07 is not taken for K007.
        assert_eq!(Ticket::candidates("K07-1128-023")[0], want("K07-1128-023"));
        assert_eq!(Ticket::candidates("k001 1203 027")[0], want("K001-1203-027"));
        for nothing in [
            "",
            "   ",
            "1271010101900003",
            "' OR 1=1--",
            "<script>",
            "K001-1303-027",
            "K001-1203-000",
            "K001-1203-0000000",
            "K001-1203-027-9",
            "../etc/passwd",
            "Budi Santoso",
            &"K001-1203-027".repeat(6),
        ] {
            assert_eq!(Ticket::candidates(nothing), Vec::<Ticket>::new(), "{nothing:?}");
        }
    }

    proptest::proptest! {
        /// Every ticket a kiosk prints is found however it is mangled, and
        /// every candidate is a ticket in the printed form.
        #[test]
        fn a_printed_ticket_is_found_however_it_is_typed(
            letters in "[A-Z]{1,2}",
            number in 1u32..=999,
            month in 1u8..=12,
            day in 1u8..=28,
            sequence in 1u32..=99_999,
            separator in proptest::sample::select(vec!["-", " ", "", ".", " - ", "/"]),
            lower in proptest::bool::ANY,
            extra_zero in proptest::bool::ANY,
        ) {
            let kiosk: KioskCode = format!("{letters}{number:03}").parse().unwrap();
            let printed = Ticket::new(&kiosk, month, day, sequence);
            let seq = if extra_zero { format!("0{sequence:03}") } else { format!("{sequence:03}") };
            let mut typed = format!("{kiosk}{separator}{month:02}{day:02}{separator}{seq}");
            if lower {
                typed = typed.to_lowercase();
            }
            let found = Ticket::candidates(&typed);
            proptest::prop_assert!(found.contains(&printed), "{} -> {:?}", typed, found);
            proptest::prop_assert!(found.len() <= Ticket::CANDIDATES_MAX);
            for t in &found {
                proptest::prop_assert_eq!(t.as_str().parse::<Ticket>(), Ok(t.clone()));
            }
        }

        /// Anything at all gives a bounded list of valid tickets.
        #[test]
        fn candidates_of_anything_are_valid_and_bounded(typed in "\\PC{0,80}") {
            let found = Ticket::candidates(&typed);
            proptest::prop_assert!(found.len() <= Ticket::CANDIDATES_MAX);
            for t in &found {
                proptest::prop_assert_eq!(t.as_str().parse::<Ticket>(), Ok(t.clone()));
            }
        }
    }

    /// Issue 16: a complaint ticket reads however it is typed, and never
    /// as a request ticket (nor a request ticket as a complaint's).
    #[test]
    fn complaint_tickets_as_people_type_them_and_never_as_requests() {
        let k: KioskCode = "K07".parse().unwrap();
        let printed = ComplaintTicket::new(&k, 11, 28, 24);
        assert_eq!(printed.as_str(), "ADU-K07-1128-024");
        assert_eq!(printed.number(), "K07-1128-024");
        assert_eq!("adu-k07-1128-024".parse::<ComplaintTicket>(), Ok(printed.clone()));
        for typed in [
            "ADU-K07-1128-024",
            "adu k07 1128 024",
            "ADUK071128024",
            "adu-k07-1128-24",
            " Adu - K07 1128 0024 ",
            "ADU K07.1128.024",
        ] {
            let found = ComplaintTicket::candidates(typed);
            assert!(found.contains(&printed), "{typed:?} -> {found:?}");
            assert!(found.len() <= Ticket::CANDIDATES_MAX);
            for t in &found {
                assert_eq!(t.as_str().parse::<ComplaintTicket>().as_ref(), Ok(t), "printed form");
            }
        }
        for request in ["K07-1128-024", "k07 1128 024", "K071128024"] {
            assert!(ComplaintTicket::candidates(request).is_empty(), "{request}");
            assert!(request.parse::<ComplaintTicket>().is_err(), "{request}");
        }
        for bad in ["ADU", "ADU-", "ADU-K07-1328-001", "ADU-K07-1128-000", "ADUK07", "ADU 1128", "<script>", ""] {
            assert!(bad.parse::<ComplaintTicket>().is_err(), "{bad}");
            assert!(ComplaintTicket::candidates(bad).is_empty(), "{bad}");
        }
        // The printed form has four groups: no request ticket reads it.
        assert!(printed.as_str().parse::<Ticket>().is_err());
        assert!(Ticket::candidates(printed.as_str()).is_empty());
    }

    #[test]
    fn tickets() {
        let k: KioskCode = "K07".parse().unwrap();
        let t = Ticket::new(&k, 11, 28, 23);
        assert_eq!(t.as_str(), "K07-1128-023");
        assert_eq!("k07-1128-023".parse::<Ticket>().unwrap(), t);
        assert_eq!(Ticket::new(&k, 1, 2, 1234).as_str(), "K07-0102-1234");
        for bad in ["K07-1328-001", "K07-1128-000", "K07-1128", "K-1128-001", "K07-1128-01", "../etc"] {
            assert!(bad.parse::<Ticket>().is_err(), "{bad}");
        }
    }

    #[test]
    fn staff_ids() {
        assert!("198503122010011002".parse::<StaffId>().is_ok());
        for bad in ["19850312201001100", "198513122010011002", "198503122010013002", "198503122010011000"] {
            assert!(bad.parse::<StaffId>().is_err(), "{bad}");
        }
    }

    /// Issue 14, item 11: PPPK and contract staff can be on the roster.
    #[test]
    fn staff_ids_of_every_kind() {
        let cases: &[(&str, Option<StaffKind>)] = &[
            ("198503122010011002", Some(StaffKind::Pns)),
            ("199005232022212019", Some(StaffKind::Pppk)), // NI PPPK: 21 where a NIP has the month
            ("NA-1271011001-001", Some(StaffKind::NonAsn)),
            ("na-1271011001-001", Some(StaffKind::NonAsn)), // typed in lower case
            ("199005232022222019", None),                   // 22 is neither a month nor the PPPK mark
            ("199005232022132019", None),
            ("NA-1271011001-000", None),
            ("NA-1271011000-001", None), // 1000 is no kelurahan
            ("NA-127101100-0001", None),
            ("NA-1271011001001", None),
            ("XA-1271011001-001", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<StaffId>().ok().map(|id| id.default_kind());
            assert_eq!(&got, want, "{input}");
        }
        assert_eq!("na-1271011001-001".parse::<StaffId>().unwrap().as_str(), "NA-1271011001-001");
        let nip: StaffId = "198503122010011002".parse().unwrap();
        let pppk: StaffId = "199005232022212019".parse().unwrap();
        let contract: StaffId = "NA-1271011001-001".parse().unwrap();
        // PNS: a NIP only. PPPK: either 18-digit form. Non-ASN: NA- only.
        assert!(StaffKind::Pns.accepts(&nip) && !StaffKind::Pns.accepts(&pppk) && !StaffKind::Pns.accepts(&contract));
        assert!(StaffKind::Pppk.accepts(&nip) && StaffKind::Pppk.accepts(&pppk) && !StaffKind::Pppk.accepts(&contract));
        assert!(!StaffKind::NonAsn.accepts(&nip) && !StaffKind::NonAsn.accepts(&pppk));
        assert!(StaffKind::NonAsn.accepts(&contract));
        for k in StaffKind::ALL {
            assert_eq!(k.as_str().parse::<StaffKind>(), Ok(k));
        }
        assert!("honorer".parse::<StaffKind>().is_err());
    }

    #[test]
    fn names() {
        let n: PersonName = "  Siti   Nurhaliza, S.Pd. ".parse().unwrap();
        assert_eq!(n.as_str(), "Siti Nurhaliza, S.Pd.");
        assert_eq!(n.masked(), "S*** N*** S***");
        assert_eq!("Ngô Bảo Châu".parse::<PersonName>().unwrap().masked(), "N*** B*** C***");
        assert!("Ngô Bảo Châu".parse::<PersonName>().is_ok());
        assert!("O'Neil-Tambunan".parse::<PersonName>().is_ok());
        assert_eq!("   ".parse::<PersonName>(), Err(PersonNameError::Empty));
        assert_eq!("<script>alert(1)</script>".parse::<PersonName>(), Err(PersonNameError::ForbiddenCharacter));
        assert_eq!("Budi\u{0}".parse::<PersonName>(), Err(PersonNameError::ForbiddenCharacter));
        assert_eq!("Robert'); DROP TABLE--".parse::<PersonName>(), Err(PersonNameError::ForbiddenCharacter));
        assert_eq!("a".repeat(101).parse::<PersonName>(), Err(PersonNameError::TooLong));
    }

    #[test]
    fn phones() {
        for ok in ["081234567890", "+62 812-3456-7890", "6281234567890", "0812.345.678"] {
            assert!(ok.parse::<Phone>().is_ok(), "{ok}");
        }
        assert_eq!("0812 3456 7890".parse::<Phone>().unwrap().as_str(), "+6281234567890");
        for bad in ["0212345678", "12345", "08123456789012345", "0812abc4567"] {
            assert!(bad.parse::<Phone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn doc_ids_are_canonical() {
        let id = DocId::new_v7(1_764_300_000_000, [7; 10]);
        let s = id.to_string();
        assert_eq!(s.parse::<DocId>().unwrap(), id);
        assert!(s.to_uppercase().parse::<DocId>().is_ok());
        assert!(s.replace('-', "").parse::<DocId>().is_err());
    }
}
