//! Reference documents, authored centrally and read-only at kiosks: the
//! service catalog and a kelurahan's staff roster (DESIGN.md §3).
//!
//! Layout (schema 1):
//!
//! ```text
//! catalog: ROOT { type: "catalog", schema: 1,
//!                 agencies: { CODE: { name } },
//!                 holidays?: { "YYYY-MM-DD": { name, kind?: "libur" | "cuti_bersama" } },
//!                 cuti_bersama_open?: bool,
//!                 hours?: { "default" | KELURAHAN: "mon=08:00-16:00; …" },
//!                 ikm?: { KELURAHAN: { period, label, centi, respondents, sample_min, published_at } },
//!                 services: { CODE: { name_id, name_en, sla_days, agency?, handoff: [CODE],
//!                                     handoff_sla?: { AGENCY: days },
//!                                     requirements_id: [..], requirements_en: [..],
//!                                     procedure_id, product_id, cost_id, complaint_id, active } } }
//! roster:  ROOT { type: "roster", schema: 1, kelurahan,
//!                 staff: { ID: { name, role, kind?, password_hash, active } } }
//! ```
//!
//! `ikm` is each office's latest published satisfaction index (the city
//! publishes it per period; its kiosks show it, offline too). The grade is
//! read from `centi`, never stored beside it, so the two cannot disagree.
//!
//! A staff member's `kind` (`pns`, `pppk`, `non_asn`) was added later:
//! absent, it is what the id's shape says (`StaffId::default_kind`).
//!
//! Maps are keyed by code, so central edits to different services or staff
//! merge field by field. Before enrollment a kiosk writes these itself from
//! its init files; after enrollment the server owns them.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::ids::{Code, KelurahanCode, StaffId, StaffKind};
use crate::request::SchemaError;
use crate::skm::Grade;
use crate::sla::ServiceHours;

pub const REFERENCE_SCHEMA_VERSION: i64 = 1;

/// The default catalog: Kota Medan's typical kelurahan services (facts from
/// ../shared/data/SERVICES.md), as a TOML file compiled into the binaries.
pub const DEFAULT_CATALOG_TOML: &str = include_str!("../data/default_catalog.toml");

/// One service as a citizen sees it: the six published components of a
/// service standard (PermenPANRB 15/2014) plus routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub code: Code,
    pub name_id: String,
    pub name_en: String,
    /// Working days, counted from the moment the file is complete.
    pub sla_days: u32,
    /// Agencies this service may be handed off to.
    #[serde(default)]
    pub handoff: Vec<Code>,
    /// An agency's own promise for its part, in working days counted from
    /// the hand-off (Disdukcapil: a KK in 3); an agency without one is
    /// measured but not judged.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub handoff_sla_days: std::collections::BTreeMap<Code, u32>,
    pub requirements_id: Vec<String>,
    pub requirements_en: Vec<String>,
    pub procedure_id: String,
    /// The procedure, product and complaint channel in English, for the
    /// kiosk's English mode; empty where the office publishes only the
    /// Indonesian text (the screen then says so and shows that).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub procedure_en: String,
    pub product_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product_en: String,
    pub cost_id: String,
    pub complaint_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub complaint_en: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// How the citizen UI groups services (absent in older catalogs).
    #[serde(default)]
    pub group: ServiceGroup,
}

/// The groups a citizen chooses from first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceGroup {
    /// Letters the kelurahan itself issues.
    Keterangan,
    /// Family card, ID card, moving, births and deaths (Disdukcapil).
    Kependudukan,
    /// Cover letters for another office (KUA, police, camat).
    Pengantar,
    #[default]
    Lainnya,
}

impl ServiceGroup {
    pub const ALL: [ServiceGroup; 4] =
        [ServiceGroup::Keterangan, ServiceGroup::Kependudukan, ServiceGroup::Pengantar, ServiceGroup::Lainnya];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceGroup::Keterangan => "keterangan",
            ServiceGroup::Kependudukan => "kependudukan",
            ServiceGroup::Pengantar => "pengantar",
            ServiceGroup::Lainnya => "lainnya",
        }
    }

    fn parse(s: &str) -> ServiceGroup {
        ServiceGroup::ALL.into_iter().find(|g| g.as_str() == s).unwrap_or_default()
    }

    /// (Bahasa Indonesia, English)
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            ServiceGroup::Keterangan => ("Surat keterangan", "Certificates"),
            ServiceGroup::Kependudukan => (
                "Kependudukan (KK, KTP, pindah, lahir, mati)",
                "Civil registry (family card, ID, moving, births, deaths)",
            ),
            ServiceGroup::Pengantar => ("Surat pengantar", "Cover letters"),
            ServiceGroup::Lainnya => ("Layanan lain", "Other services"),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub code: Code,
    pub name: String,
    /// How the agency is divided into units: one for the city (a dinas),
    /// or one per kecamatan (Kantor Camat, KUA, Polsek). A hand-off goes
    /// to the unit for the request's kelurahan; an account of a unit sees
    /// only its own region's requests (the server's `users.region`).
    #[serde(default, skip_serializing_if = "AgencyRegion::is_city")]
    pub region: AgencyRegion,
}

/// The region an agency's units cover (issue 16, item 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgencyRegion {
    /// One unit for the whole city.
    #[default]
    City,
    /// A unit per kecamatan (or a few kecamatan, as a Polsek's area).
    Kecamatan,
}

impl AgencyRegion {
    pub fn as_str(self) -> &'static str {
        match self {
            AgencyRegion::City => "city",
            AgencyRegion::Kecamatan => "kecamatan",
        }
    }

    pub fn is_city(&self) -> bool {
        *self == AgencyRegion::City
    }
}

impl Agency {
    /// The name of the unit that serves `kelurahan`: the agency's name and
    /// the kecamatan's (`Kantor Camat Medan Kota`) for a regional
    /// agency, the agency's name otherwise (or when the kelurahan is not
    /// one of Medan's).
    pub fn unit_name(&self, kelurahan: &str) -> String {
        match (self.region, crate::wilayah::kecamatan_of(kelurahan)) {
            (AgencyRegion::Kecamatan, Some(k)) => format!("{} {}", self.name, k.name),
            _ => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub agencies: Vec<Agency>,
    pub services: Vec<Service>,
    /// Public holidays and collective leave (cuti bersama) on which offices
    /// are closed: not working days for the SLA. Set centrally each year
    /// from the government's decree; absent in catalogs written before it.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// Whether offices open on cuti bersama days (then they count as
    /// working days). The city's decision; most offices close.
    #[serde(default)]
    pub cuti_bersama_open: bool,
    /// The city's service hours (absent: [`ServiceHours::CITY_DEFAULT`]).
    #[serde(default)]
    pub service_hours: ServiceHours,
    /// Kelurahan whose hours differ from the city's.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kelurahan_hours: std::collections::BTreeMap<KelurahanCode, ServiceHours>,
    /// Each office's latest published IKM (absent until the city publishes).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub published_ikm: std::collections::BTreeMap<KelurahanCode, PublishedIkm>,
}

/// An office's satisfaction index as the city published it for a period
/// (PermenPANRB 14/2017 has survey results published to the public), shown
/// on the office's kiosks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedIkm {
    /// The period's code (`2026-Q3`) and how an official writes it
    /// (`Triwulan III 2026`).
    pub period: String,
    pub period_label: String,
    /// The converted IKM (25.00-100.00) in hundredths.
    pub ikm_centi: u32,
    pub respondents: u64,
    /// The Krejcie-Morgan minimum for the period's service users.
    pub sample_min: u64,
    pub published_at_ms: i64,
}

impl PublishedIkm {
    pub fn grade(&self) -> Grade {
        Grade::from_centi(self.ikm_centi)
    }

    /// The IKM as printed, `87.31`.
    pub fn ikm_text(&self) -> String {
        format!("{}.{:02}", self.ikm_centi / 100, self.ikm_centi % 100)
    }

    /// Whether the period reached its minimum sample.
    pub fn sample_sufficient(&self) -> bool {
        self.respondents >= self.sample_min
    }

    /// Checks a publication, written centrally or read from a document.
    pub fn check(&self) -> Result<(), String> {
        let text =
            |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
        if !text(&self.period, 16) || !text(&self.period_label, 40) {
            return Err("periode 1-40 huruf / a period of 1-40 characters".into());
        }
        if !(2500..=10_000).contains(&self.ikm_centi) {
            return Err("IKM di luar 25,00-100,00 / an IKM outside 25.00-100.00".into());
        }
        if self.respondents == 0 || self.sample_min > 385 {
            return Err("jumlah responden tidak valid / invalid respondent counts".into());
        }
        Ok(())
    }
}

/// A day the offices are closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    /// `YYYY-MM-DD`, local date.
    #[serde(with = "ymd")]
    pub date: time::Date,
    pub name: String,
    #[serde(default)]
    pub kind: HolidayKind,
}

/// A national holiday, or a cuti bersama day (collective leave that the
/// city may keep offices open on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    #[default]
    Libur,
    CutiBersama,
}

impl HolidayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HolidayKind::Libur => "libur",
            HolidayKind::CutiBersama => "cuti_bersama",
        }
    }

    pub fn parse(s: &str) -> Option<HolidayKind> {
        match s {
            "libur" => Some(HolidayKind::Libur),
            "cuti_bersama" => Some(HolidayKind::CutiBersama),
            _ => None,
        }
    }

    /// `(Bahasa Indonesia, English)`.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            HolidayKind::Libur => ("Libur nasional", "National holiday"),
            HolidayKind::CutiBersama => ("Cuti bersama", "Collective leave"),
        }
    }
}

impl Holiday {
    /// Checks a holiday as entered centrally: a name of 1-120 printable
    /// characters.
    pub fn check(&self) -> Result<(), String> {
        let n = self.name.trim();
        if n.is_empty() || n.chars().count() > 120 || n.chars().any(char::is_control) {
            return Err("nama hari libur 1-120 huruf / a holiday name of 1-120 characters".into());
        }
        Ok(())
    }
}

/// `YYYY-MM-DD` dates.
pub mod ymd {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;

    const FORMAT: &[time::format_description::FormatItem<'static>] = format_description!("[year]-[month]-[day]");

    pub fn parse(s: &str) -> Option<time::Date> {
        time::Date::parse(s, FORMAT).ok()
    }

    pub fn format(d: time::Date) -> String {
        d.format(FORMAT).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Date, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a YYYY-MM-DD date: {s}")))
    }
}

impl Catalog {
    /// The days offices are closed, for working-day arithmetic: the
    /// holidays, and the cuti bersama days unless offices open on them.
    pub fn holiday_set(&self) -> crate::sla::Holidays {
        let closed = |h: &&Holiday| h.kind == HolidayKind::Libur || !self.cuti_bersama_open;
        crate::sla::Holidays::new(self.holidays.iter().filter(closed).map(|h| h.date).collect())
    }

    /// A kelurahan's service hours (its own, else the city's).
    pub fn hours_for(&self, kelurahan: &str) -> &ServiceHours {
        self.kelurahan_hours.iter().find(|(k, _)| k.as_str() == kelurahan).map_or(&self.service_hours, |(_, h)| h)
    }

    /// A service's promise for an agency's part, in working days.
    pub fn agency_sla_days(&self, service: &str, agency: &str) -> Option<u32> {
        self.service(service)?.handoff_sla_days.iter().find(|(a, _)| a.as_str() == agency).map(|(_, d)| *d)
    }

    pub fn service(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code.as_str() == code)
    }
    pub fn agency(&self, code: &str) -> Option<&Agency> {
        self.agencies.iter().find(|a| a.code.as_str() == code)
    }
    /// The office's latest published IKM.
    pub fn published_ikm_for(&self, kelurahan: &str) -> Option<&PublishedIkm> {
        self.published_ikm.iter().find(|(k, _)| k.as_str() == kelurahan).map(|(_, p)| p)
    }
    /// Checks references inside the catalog (handoff targets exist), the
    /// holidays' names and the published IKM.
    pub fn check(&self) -> Result<(), String> {
        for (k, p) in &self.published_ikm {
            p.check().map_err(|e| format!("ikm {k}: {e}"))?;
        }
        for h in &self.holidays {
            h.check().map_err(|e| format!("holiday {}: {e}", ymd::format(h.date)))?;
        }
        for s in &self.services {
            for a in &s.handoff {
                if self.agency(a.as_str()).is_none() {
                    return Err(format!("service {} hands off to unknown agency {a}", s.code));
                }
            }
            for a in s.handoff_sla_days.keys() {
                if !s.handoff.contains(a) {
                    return Err(format!("service {} has an SLA for {a}, which it does not hand off to", s.code));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Petugas layanan: works the queue.
    Staff,
    /// Lurah / sekretaris: everything staff can do.
    Supervisor,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Staff => "staff",
            StaffRole::Supervisor => "supervisor",
        }
    }

    /// How pages and exports name the role.
    pub fn label(self) -> &'static str {
        match self {
            StaffRole::Staff => "Petugas layanan",
            StaffRole::Supervisor => "Lurah / Sekretaris (pengawas)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: StaffId,
    pub name: String,
    pub role: StaffRole,
    /// PNS, PPPK or non-ASN; always one whose rule the id meets.
    pub kind: StaffKind,
    /// argon2id PHC string; never a plain password.
    pub password_hash: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub kelurahan: KelurahanCode,
    pub staff: Vec<StaffMember>,
}

fn put_str_list(doc: &mut AutoCommit, obj: &ObjId, key: &str, items: &[String]) -> Result<(), SchemaError> {
    let l = doc.put_object(obj, key, ObjType::List)?;
    for (i, item) in items.iter().enumerate() {
        doc.insert(&l, i, item.as_str())?;
    }
    Ok(())
}

/// Writes a whole catalog into a new document (one commit).
pub fn create_catalog(doc: &mut AutoCommit, catalog: &Catalog) -> Result<(), SchemaError> {
    doc.put(ROOT, "type", "catalog")?;
    doc.put(ROOT, "schema", REFERENCE_SCHEMA_VERSION)?;
    let agencies = doc.put_object(ROOT, "agencies", ObjType::Map)?;
    for a in &catalog.agencies {
        let m = doc.put_object(&agencies, a.code.as_str(), ObjType::Map)?;
        doc.put(&m, "name", a.name.as_str())?;
        // Written only when regional: a city-wide agency's map stays as
        // kiosks before units wrote it.
        if !a.region.is_city() {
            doc.put(&m, "region", a.region.as_str())?;
        }
    }
    doc.put_object(ROOT, "services", ObjType::Map)?;
    for s in &catalog.services {
        put_service(doc, s)?;
    }
    // Always made here, with the document: two writers that each created
    // the map would make concurrent objects under one key, and a merge
    // would keep only one of them (AUTOMERGE_NOTES.md).
    doc.put_object(ROOT, "holidays", ObjType::Map)?;
    for h in &catalog.holidays {
        put_holiday(doc, h)?;
    }
    doc.put_object(ROOT, "hours", ObjType::Map)?;
    put_hours(doc, None, &catalog.service_hours)?;
    for (k, h) in &catalog.kelurahan_hours {
        put_hours(doc, Some(k), h)?;
    }
    doc.put(ROOT, "cuti_bersama_open", catalog.cuti_bersama_open)?;
    doc.put_object(ROOT, "ikm", ObjType::Map)?;
    for (k, p) in &catalog.published_ikm {
        put_published_ikm(doc, k, p)?;
    }
    doc.commit();
    Ok(())
}

/// Sets the city's service hours (`None`) or a kelurahan's in a catalog
/// document (does not commit). A catalog from before service hours gets
/// its map here, by its one writer (the server).
pub fn put_hours(
    doc: &mut AutoCommit,
    kelurahan: Option<&KelurahanCode>,
    hours: &ServiceHours,
) -> Result<(), SchemaError> {
    let map = match doc.get(ROOT, "hours")? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, "hours", ObjType::Map)?,
    };
    doc.put(&map, kelurahan.map_or("default", KelurahanCode::as_str), hours.to_spec())?;
    Ok(())
}

/// Removes a kelurahan's own service hours (it follows the city's again);
/// `false` if it had none.
pub fn delete_hours(doc: &mut AutoCommit, kelurahan: &KelurahanCode) -> Result<bool, SchemaError> {
    let Some((Value::Object(ObjType::Map), map)) = doc.get(ROOT, "hours")? else { return Ok(false) };
    if doc.get(&map, kelurahan.as_str())?.is_none() {
        return Ok(false);
    }
    doc.delete(&map, kelurahan.as_str())?;
    Ok(true)
}

/// Sets whether offices open on cuti bersama days (does not commit).
pub fn put_cuti_bersama_open(doc: &mut AutoCommit, open: bool) -> Result<(), SchemaError> {
    doc.put(ROOT, "cuti_bersama_open", open)?;
    Ok(())
}

/// Publishes an office's IKM in a catalog document (does not commit),
/// replacing what was published for it before; keyed by kelurahan, so
/// publications for different offices merge.
pub fn put_published_ikm(doc: &mut AutoCommit, kelurahan: &KelurahanCode, p: &PublishedIkm) -> Result<(), SchemaError> {
    p.check().map_err(|reason| SchemaError::Invalid { field: "ikm".into(), reason })?;
    let map = match doc.get(ROOT, "ikm")? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, "ikm", ObjType::Map)?,
    };
    let m = doc.put_object(&map, kelurahan.as_str(), ObjType::Map)?;
    doc.put(&m, "period", p.period.as_str())?;
    doc.put(&m, "label", p.period_label.as_str())?;
    doc.put(&m, "centi", i64::from(p.ikm_centi))?;
    doc.put(&m, "respondents", p.respondents)?;
    doc.put(&m, "sample_min", p.sample_min)?;
    doc.put(&m, "published_at", ScalarValue::Timestamp(p.published_at_ms))?;
    Ok(())
}

/// Adds or renames a holiday in a catalog document (does not commit);
/// keyed by date, so concurrent edits to different days merge. A catalog
/// from before holidays gets its map here, by its one writer (the server,
/// whose writes are serialised).
pub fn put_holiday(doc: &mut AutoCommit, h: &Holiday) -> Result<(), SchemaError> {
    let holidays = match doc.get(ROOT, "holidays")? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(ROOT, "holidays", ObjType::Map)?,
    };
    let key = ymd::format(h.date);
    let m = match doc.get(&holidays, &key)? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(&holidays, &key, ObjType::Map)?,
    };
    doc.put(&m, "name", h.name.trim())?;
    doc.put(&m, "kind", h.kind.as_str())?;
    Ok(())
}

/// Removes a holiday from a catalog document (does not commit); `false` if
/// it was not there.
pub fn delete_holiday(doc: &mut AutoCommit, date: time::Date) -> Result<bool, SchemaError> {
    let Some((Value::Object(ObjType::Map), holidays)) = doc.get(ROOT, "holidays")? else { return Ok(false) };
    let key = ymd::format(date);
    if doc.get(&holidays, &key)?.is_none() {
        return Ok(false);
    }
    doc.delete(&holidays, &key)?;
    Ok(true)
}

/// Writes a whole roster into a new document (one commit).
pub fn create_roster(doc: &mut AutoCommit, roster: &Roster) -> Result<(), SchemaError> {
    doc.put(ROOT, "type", "roster")?;
    doc.put(ROOT, "schema", REFERENCE_SCHEMA_VERSION)?;
    doc.put(ROOT, "kelurahan", roster.kelurahan.as_str())?;
    doc.put_object(ROOT, "staff", ObjType::Map)?;
    for s in &roster.staff {
        put_staff(doc, s)?;
    }
    doc.commit();
    Ok(())
}

/// Adds or replaces one service in a catalog document (does not commit).
/// Other services are untouched, so concurrent edits to different services
/// merge; list fields are replaced whole.
pub fn put_service(doc: &mut AutoCommit, s: &Service) -> Result<(), SchemaError> {
    let services = get_map(doc, &ROOT, "services")?;
    let m = match doc.get(&services, s.code.as_str())? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(&services, s.code.as_str(), ObjType::Map)?,
    };
    doc.put(&m, "name_id", s.name_id.as_str())?;
    doc.put(&m, "name_en", s.name_en.as_str())?;
    doc.put(&m, "sla_days", i64::from(s.sla_days))?;
    let handoff: Vec<String> = s.handoff.iter().map(ToString::to_string).collect();
    put_str_list(doc, &m, "handoff", &handoff)?;
    // Replaced whole, like the lists: one editor owns a service's row.
    let slas = doc.put_object(&m, "handoff_sla", ObjType::Map)?;
    for (a, d) in &s.handoff_sla_days {
        doc.put(&slas, a.as_str(), i64::from(*d))?;
    }
    put_str_list(doc, &m, "requirements_id", &s.requirements_id)?;
    put_str_list(doc, &m, "requirements_en", &s.requirements_en)?;
    doc.put(&m, "procedure_id", s.procedure_id.as_str())?;
    doc.put(&m, "product_id", s.product_id.as_str())?;
    doc.put(&m, "cost_id", s.cost_id.as_str())?;
    doc.put(&m, "complaint_id", s.complaint_id.as_str())?;
    // The English texts are optional: an empty one is not stored (and one
    // emptied is removed), so older documents read the same.
    for (key, text) in
        [("procedure_en", &s.procedure_en), ("product_en", &s.product_en), ("complaint_en", &s.complaint_en)]
    {
        if text.is_empty() {
            if doc.get(&m, key)?.is_some() {
                doc.delete(&m, key)?;
            }
        } else {
            doc.put(&m, key, text.as_str())?;
        }
    }
    doc.put(&m, "active", s.active)?;
    doc.put(&m, "group", s.group.as_str())?;
    Ok(())
}

/// Adds or replaces one staff member in a roster document (does not
/// commit). Other members are untouched, so concurrent edits to different
/// staff merge.
pub fn put_staff(doc: &mut AutoCommit, member: &StaffMember) -> Result<(), SchemaError> {
    let staff = get_map(doc, &ROOT, "staff")?;
    let m = match doc.get(&staff, member.id.as_str())? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(&staff, member.id.as_str(), ObjType::Map)?,
    };
    doc.put(&m, "name", member.name.as_str())?;
    doc.put(&m, "role", member.role.as_str())?;
    doc.put(&m, "kind", member.kind.as_str())?;
    doc.put(&m, "password_hash", member.password_hash.as_str())?;
    doc.put(&m, "active", member.active)?;
    Ok(())
}

fn field(key: &str) -> SchemaError {
    SchemaError::Field(key.into())
}

fn get_scalar(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<ScalarValue, SchemaError> {
    match doc.get(obj, key)? {
        Some((Value::Scalar(s), _)) => Ok(s.into_owned()),
        _ => Err(field(key)),
    }
}

fn get_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String, SchemaError> {
    match get_scalar(doc, obj, key)? {
        ScalarValue::Str(s) => Ok(s.to_string()),
        _ => Err(field(key)),
    }
}

/// An optional text: absent reads as empty; anything but text is refused.
fn get_opt_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String, SchemaError> {
    match doc.get(obj, key)? {
        None => Ok(String::new()),
        Some(_) => get_str(doc, obj, key),
    }
}

fn get_map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<ObjId, SchemaError> {
    match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Err(field(key)),
    }
}

fn get_str_list(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Vec<String>, SchemaError> {
    let l = match doc.get(obj, key)? {
        Some((Value::Object(ObjType::List), id)) => id,
        _ => return Err(field(key)),
    };
    doc.list_range(&l, ..).map(|i| Value::from(i.value).as_str().map(str::to_owned).ok_or_else(|| field(key))).collect()
}

fn check_header(doc: &AutoCommit, ty: &str) -> Result<(), SchemaError> {
    let got = get_str(doc, &ROOT, "type")?;
    if got != ty {
        return Err(SchemaError::WrongType(got));
    }
    match get_scalar(doc, &ROOT, "schema")? {
        ScalarValue::Int(REFERENCE_SCHEMA_VERSION) => Ok(()),
        ScalarValue::Int(v) => Err(SchemaError::Version(v)),
        _ => Err(field("schema")),
    }
}

fn parse_code(key: &str) -> Result<Code, SchemaError> {
    key.parse().map_err(|e: crate::ids::CodeError| SchemaError::Invalid { field: key.into(), reason: e.to_string() })
}

pub fn read_catalog(doc: &AutoCommit) -> Result<Catalog, SchemaError> {
    check_header(doc, "catalog")?;
    let agencies_obj = get_map(doc, &ROOT, "agencies")?;
    let mut agencies = Vec::new();
    for key in doc.keys(&agencies_obj) {
        let m = get_map(doc, &agencies_obj, &key)?;
        let region = match get_opt_str(doc, &m, "region")?.as_str() {
            "" | "city" => AgencyRegion::City,
            "kecamatan" => AgencyRegion::Kecamatan,
            _ => return Err(SchemaError::Invalid { field: "region".into(), reason: "city or kecamatan".into() }),
        };
        agencies.push(Agency { code: parse_code(&key)?, name: get_str(doc, &m, "name")?, region });
    }
    let services_obj = get_map(doc, &ROOT, "services")?;
    let mut services = Vec::new();
    for key in doc.keys(&services_obj) {
        let m = get_map(doc, &services_obj, &key)?;
        let sla_days = match get_scalar(doc, &m, "sla_days")? {
            ScalarValue::Int(n) => u32::try_from(n).map_err(|_| field("sla_days"))?,
            ScalarValue::Uint(n) => u32::try_from(n).map_err(|_| field("sla_days"))?,
            _ => return Err(field("sla_days")),
        };
        let handoff = get_str_list(doc, &m, "handoff")?.iter().map(|c| parse_code(c)).collect::<Result<Vec<_>, _>>()?;
        let mut handoff_sla_days = std::collections::BTreeMap::new();
        if let Some((Value::Object(ObjType::Map), slas)) = doc.get(&m, "handoff_sla")? {
            for a in doc.keys(&slas) {
                let days = match get_scalar(doc, &slas, &a)? {
                    ScalarValue::Int(n) => u32::try_from(n).map_err(|_| field("handoff_sla"))?,
                    ScalarValue::Uint(n) => u32::try_from(n).map_err(|_| field("handoff_sla"))?,
                    _ => return Err(field("handoff_sla")),
                };
                handoff_sla_days.insert(parse_code(&a)?, days);
            }
        }
        services.push(Service {
            code: parse_code(&key)?,
            name_id: get_str(doc, &m, "name_id")?,
            name_en: get_str(doc, &m, "name_en")?,
            sla_days,
            handoff,
            handoff_sla_days,
            requirements_id: get_str_list(doc, &m, "requirements_id")?,
            requirements_en: get_str_list(doc, &m, "requirements_en")?,
            procedure_id: get_str(doc, &m, "procedure_id")?,
            procedure_en: get_opt_str(doc, &m, "procedure_en")?,
            product_id: get_str(doc, &m, "product_id")?,
            product_en: get_opt_str(doc, &m, "product_en")?,
            cost_id: get_str(doc, &m, "cost_id")?,
            complaint_id: get_str(doc, &m, "complaint_id")?,
            complaint_en: get_opt_str(doc, &m, "complaint_en")?,
            active: matches!(get_scalar(doc, &m, "active")?, ScalarValue::Boolean(true)),
            group: match doc.get(&m, "group")? {
                Some((Value::Scalar(v), _)) => match v.as_ref() {
                    ScalarValue::Str(g) => ServiceGroup::parse(g),
                    _ => ServiceGroup::default(),
                },
                _ => ServiceGroup::default(),
            },
        });
    }
    let mut holidays = Vec::new();
    if let Some((Value::Object(ObjType::Map), obj)) = doc.get(ROOT, "holidays")? {
        for key in doc.keys(&obj) {
            let m = get_map(doc, &obj, &key)?;
            let date = ymd::parse(&key).ok_or_else(|| SchemaError::Invalid {
                field: "holidays".into(),
                reason: format!("not a date: {key}"),
            })?;
            let kind = match doc.get(&m, "kind")? {
                Some((Value::Scalar(v), _)) => match v.as_ref() {
                    ScalarValue::Str(k) => HolidayKind::parse(k).ok_or_else(|| field("holidays.kind"))?,
                    _ => return Err(field("holidays.kind")),
                },
                _ => HolidayKind::Libur,
            };
            holidays.push(Holiday { date, name: get_str(doc, &m, "name")?, kind });
        }
    }
    let mut service_hours = ServiceHours::CITY_DEFAULT;
    let mut kelurahan_hours = std::collections::BTreeMap::new();
    if let Some((Value::Object(ObjType::Map), obj)) = doc.get(ROOT, "hours")? {
        for key in doc.keys(&obj) {
            let spec = get_str(doc, &obj, &key)?;
            let hours = ServiceHours::from_spec(&spec)
                .map_err(|e| SchemaError::Invalid { field: format!("hours.{key}"), reason: e.to_string() })?;
            if key == "default" {
                service_hours = hours;
            } else {
                let k = key.parse().map_err(|e: crate::ids::KelurahanCodeError| SchemaError::Invalid {
                    field: "hours".into(),
                    reason: e.to_string(),
                })?;
                kelurahan_hours.insert(k, hours);
            }
        }
    }
    let cuti_bersama_open = matches!(
        doc.get(ROOT, "cuti_bersama_open")?,
        Some((Value::Scalar(v), _)) if matches!(v.as_ref(), ScalarValue::Boolean(true))
    );
    let mut published_ikm = std::collections::BTreeMap::new();
    if let Some((Value::Object(ObjType::Map), obj)) = doc.get(ROOT, "ikm")? {
        for key in doc.keys(&obj) {
            let k: KelurahanCode = key.parse().map_err(|e: crate::ids::KelurahanCodeError| SchemaError::Invalid {
                field: "ikm".into(),
                reason: e.to_string(),
            })?;
            let m = get_map(doc, &obj, &key)?;
            let count = |name: &str| match get_scalar(doc, &m, name)? {
                ScalarValue::Int(n) => u64::try_from(n).map_err(|_| field(&format!("ikm.{name}"))),
                ScalarValue::Uint(n) => Ok(n),
                _ => Err(field(&format!("ikm.{name}"))),
            };
            let published_at_ms = match get_scalar(doc, &m, "published_at")? {
                ScalarValue::Timestamp(t) => t,
                _ => return Err(field("ikm.published_at")),
            };
            let p = PublishedIkm {
                period: get_str(doc, &m, "period")?,
                period_label: get_str(doc, &m, "label")?,
                ikm_centi: u32::try_from(count("centi")?).map_err(|_| field("ikm.centi"))?,
                respondents: count("respondents")?,
                sample_min: count("sample_min")?,
                published_at_ms,
            };
            p.check().map_err(|reason| SchemaError::Invalid { field: format!("ikm.{key}"), reason })?;
            published_ikm.insert(k, p);
        }
    }
    Ok(Catalog { agencies, services, holidays, cuti_bersama_open, service_hours, kelurahan_hours, published_ikm })
}

pub fn read_roster(doc: &AutoCommit) -> Result<Roster, SchemaError> {
    check_header(doc, "roster")?;
    let kelurahan = get_str(doc, &ROOT, "kelurahan")?.parse().map_err(|e: crate::ids::KelurahanCodeError| {
        SchemaError::Invalid { field: "kelurahan".into(), reason: e.to_string() }
    })?;
    let staff_obj = get_map(doc, &ROOT, "staff")?;
    let mut staff = Vec::new();
    for key in doc.keys(&staff_obj) {
        let m = get_map(doc, &staff_obj, &key)?;
        let role = match get_str(doc, &m, "role")?.as_str() {
            "staff" => StaffRole::Staff,
            "supervisor" => StaffRole::Supervisor,
            other => {
                return Err(SchemaError::Invalid { field: "role".into(), reason: format!("unknown role {other:?}") });
            }
        };
        let id: StaffId = key.parse().map_err(|e: crate::ids::StaffIdError| SchemaError::Invalid {
            field: "staff id".into(),
            reason: e.to_string(),
        })?;
        let kind = match doc.get(&m, "kind")? {
            None => id.default_kind(),
            Some(_) => get_str(doc, &m, "kind")?
                .parse::<StaffKind>()
                .map_err(|e| SchemaError::Invalid { field: "kind".into(), reason: e.to_string() })?,
        };
        if !kind.accepts(&id) {
            return Err(SchemaError::Invalid {
                field: "kind".into(),
                reason: format!("{id} is not a {} id", kind.label()),
            });
        }
        staff.push(StaffMember {
            id,
            name: get_str(doc, &m, "name")?,
            role,
            kind,
            password_hash: get_str(doc, &m, "password_hash")?,
            active: matches!(get_scalar(doc, &m, "active")?, ScalarValue::Boolean(true)),
        });
    }
    Ok(Roster { kelurahan, staff })
}

/// The type tag of any Loket document, for stores that keep several kinds.
pub fn doc_type(doc: &AutoCommit) -> Option<String> {
    match doc.get(ROOT, "type") {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in() -> Catalog {
        toml::from_str(DEFAULT_CATALOG_TOML).expect("the built-in catalog parses")
    }

    /// SERVICES.md: "Unless stated otherwise every service needs a
    /// pengantar from the Kepala Lingkungan, KTP-el and KK." PKTP is the
    /// one stated otherwise (a new or lost card: the old card or a police
    /// report stands for it). Each Indonesian item has its English twin.
    #[test]
    fn every_built_in_service_lists_the_shared_requirements() {
        for s in built_in().services {
            let r = &s.requirements_id;
            assert!(r.iter().any(|x| x == "Surat pengantar Kepala Lingkungan"), "{}: pengantar", s.code);
            assert!(r.iter().any(|x| x == "Kartu Keluarga" || x.starts_with("KK ")), "{}: KK", s.code);
            if s.code.as_str() == "PKTP" {
                assert!(r.iter().any(|x| x.starts_with("KTP lama")), "PKTP: the old card");
            } else {
                assert!(r.iter().any(|x| x.starts_with("KTP-el")), "{}: KTP-el", s.code);
            }
            assert_eq!(r.len(), s.requirements_en.len(), "{}: one English line per requirement", s.code);
            assert!(!s.cost_id.trim().is_empty(), "{}: the cost is published", s.code);
            for (what, en) in
                [("procedure", &s.procedure_en), ("product", &s.product_en), ("complaint", &s.complaint_en)]
            {
                assert!(!en.trim().is_empty(), "{}: the {what} in English for the English screens", s.code);
            }
        }
        let built = built_in();
        let polres = built.agency("POLRES").expect("the city police agency");
        assert!(polres.name.contains("Polrestabes Medan"), "Medan's police resort is a Polrestabes: {}", polres.name);
    }

    /// Kantor Camat, KUA and Polsek work per kecamatan; the dinas for the
    /// whole city. The region survives the document (a kiosk and the
    /// server read the same), a catalog from before units reads as
    /// city-wide, and an unknown region is refused.
    #[test]
    fn agencies_carry_their_units_region() {
        let built = built_in();
        for code in ["CAMAT", "KUA", "POLSEK"] {
            assert_eq!(built.agency(code).map(|a| a.region), Some(AgencyRegion::Kecamatan), "{code}");
        }
        for code in ["DISDUKCAPIL", "DINSOS", "DINKES", "DISDIK", "POLRES"] {
            assert_eq!(built.agency(code).map(|a| a.region), Some(AgencyRegion::City), "{code}");
        }
        let camat = built.agency("CAMAT").unwrap();
        assert_eq!(camat.unit_name("12.71.01.1001"), "Kantor Camat Medan Kota");
        assert_eq!(
            built.agency("DISDUKCAPIL").unwrap().unit_name("12.71.01.1001"),
            built.agency("DISDUKCAPIL").unwrap().name
        );

        let mut doc = AutoCommit::new();
        create_catalog(&mut doc, &built).unwrap();
        assert_eq!(
            read_catalog(&doc).unwrap().agencies.iter().find(|a| a.code.as_str() == "KUA").unwrap().region,
            AgencyRegion::Kecamatan
        );
        let agencies = match doc.get(ROOT, "agencies").unwrap() {
            Some((_, id)) => id,
            None => panic!("no agencies"),
        };
        let dukcapil = match doc.get(&agencies, "DISDUKCAPIL").unwrap() {
            Some((_, id)) => id,
            None => panic!("no DISDUKCAPIL"),
        };
        assert!(doc.get(&dukcapil, "region").unwrap().is_none(), "a city-wide agency is written as before units");
        let kua = match doc.get(&agencies, "KUA").unwrap() {
            Some((_, id)) => id,
            None => panic!("no KUA"),
        };
        doc.put(&kua, "region", "kelurahan").unwrap();
        assert!(read_catalog(&doc).is_err(), "an unknown region is refused");
    }

    /// Dinas Pendidikan is a real agency with the services a kelurahan
    /// hands to it; the domicile letter for school may first go to
    /// Disdukcapil, judged against its KK SOP.
    #[test]
    fn dinas_pendidikan_has_its_services() {
        let built = built_in();
        let to_disdik: Vec<&str> = built
            .services
            .iter()
            .filter(|s| s.handoff.iter().any(|a| a.as_str() == "DISDIK"))
            .map(|s| s.code.as_str())
            .collect();
        assert_eq!(to_disdik, ["SKTM", "SKTM_PDK", "SKD_SPMB"]);
        assert_eq!(built.agency_sla_days("SKD_SPMB", "DISDUKCAPIL"), Some(3));
        built.check().unwrap();
    }

    /// A roster with a PNS, a PPPK in either number form and a contract
    /// worker round-trips; a roster from before kinds reads each kind from
    /// the id; a kind whose rule the id breaks is refused.
    #[test]
    fn rosters_carry_each_staff_members_kind() {
        let member = |id: &str, kind| StaffMember {
            id: id.parse().unwrap(),
            name: "Petugas".into(),
            role: StaffRole::Staff,
            kind,
            password_hash: "$argon2id$x".into(),
            active: true,
        };
        let roster = Roster {
            kelurahan: "12.71.01.1001".parse().unwrap(),
            staff: vec![
                member("198503122010011002", StaffKind::Pns),
                member("199005232022212019", StaffKind::Pppk),
                member("198807202019031004", StaffKind::Pppk), // a PPPK number in the NIP form
                member("NA-1271011001-001", StaffKind::NonAsn),
            ],
        };
        let mut doc = AutoCommit::new();
        create_roster(&mut doc, &roster).unwrap();
        let mut back = read_roster(&doc).unwrap();
        back.staff.sort_by(|a, b| a.id.cmp(&b.id));
        let mut want = roster.staff.clone();
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(back.staff, want);

        // Older rosters have no kind: the id's shape says it.
        let staff = get_map(&doc, &ROOT, "staff").unwrap();
        for key in doc.keys(&staff).collect::<Vec<_>>() {
            let m = get_map(&doc, &staff, &key).unwrap();
            doc.delete(&m, "kind").unwrap();
        }
        doc.commit();
        let kinds: Vec<(String, StaffKind)> =
            read_roster(&doc).unwrap().staff.into_iter().map(|s| (s.id.to_string(), s.kind)).collect();
        assert!(kinds.contains(&("198807202019031004".into(), StaffKind::Pns)));
        assert!(kinds.contains(&("199005232022212019".into(), StaffKind::Pppk)));
        assert!(kinds.contains(&("NA-1271011001-001".into(), StaffKind::NonAsn)));

        // A kind the id does not fit is refused, not guessed.
        let m = get_map(&doc, &staff, "NA-1271011001-001").unwrap();
        doc.put(&m, "kind", "pns").unwrap();
        doc.commit();
        assert!(matches!(read_roster(&doc), Err(SchemaError::Invalid { .. })));
    }

    #[test]
    fn the_catalog_document_round_trips_with_its_holidays() {
        let catalog = built_in();
        catalog.check().unwrap();
        assert!(catalog.holidays.iter().any(|h| ymd::format(h.date) == "2026-08-17"));
        let mut doc = AutoCommit::new();
        create_catalog(&mut doc, &catalog).unwrap();
        let mut back = read_catalog(&doc).unwrap();
        back.holidays.sort_by_key(|h| h.date);
        let mut want = catalog.clone();
        want.holidays.sort_by_key(|h| h.date);
        assert_eq!(back.holidays, want.holidays);
        assert_eq!(back.holiday_set(), want.holiday_set());
        let by_code = |mut v: Vec<Service>| {
            v.sort_by(|a, b| a.code.cmp(&b.code));
            v
        };
        assert_eq!(by_code(back.services), by_code(want.services.clone()), "every service field, English too");

        // A catalog written before the English texts reads them as empty;
        // emptying one removes it from the document.
        let mut older = catalog.clone();
        for s in &mut older.services {
            s.procedure_en.clear();
            s.product_en.clear();
            s.complaint_en.clear();
        }
        for s in &older.services {
            put_service(&mut doc, s).unwrap();
        }
        doc.commit();
        let services = get_map(&doc, &ROOT, "services").unwrap();
        let skd = get_map(&doc, &services, "SKD").unwrap();
        assert!(doc.get(&skd, "procedure_en").unwrap().is_none());
        assert_eq!(by_code(read_catalog(&doc).unwrap().services), by_code(older.services));
    }

    /// The built-in catalog carries 2026's 17 national holidays and 8 cuti
    /// bersama days (HOLIDAYS_2026.md), and Disdukcapil's own 3 days for a
    /// KK. Offices close on cuti bersama unless the city opens them.
    #[test]
    fn the_built_in_calendar_is_2026s_decree() {
        let mut c = built_in();
        let count = |k: HolidayKind| c.holidays.iter().filter(|h| h.date.year() == 2026 && h.kind == k).count();
        assert_eq!((count(HolidayKind::Libur), count(HolidayKind::CutiBersama)), (17, 8));
        assert_eq!(c.agency_sla_days("PKK", "DISDUKCAPIL"), Some(3));
        assert_eq!(c.agency_sla_days("PKTP", "DISDUKCAPIL"), None, "no published figure: measured, not judged");
        let natal_eve = ymd::parse("2026-12-24").unwrap();
        assert!(c.holiday_set().contains(natal_eve));
        c.cuti_bersama_open = true;
        assert!(!c.holiday_set().contains(natal_eve), "open on cuti bersama: a working day");
        assert!(c.holiday_set().contains(ymd::parse("2026-12-25").unwrap()), "Christmas stays a holiday");
        assert_eq!(c.hours_for("12.71.01.1001"), &ServiceHours::CITY_DEFAULT);
    }

    /// Service hours, per-kelurahan hours, the cuti bersama setting and
    /// agencies' SLAs survive the document; a catalog from before them
    /// reads with the defaults.
    #[test]
    fn calendar_settings_round_trip_through_the_document() {
        let d = crate::sla::DayHours::new(7 * 60 + 30, 15 * 60);
        let hours = ServiceHours::new([d, d, d, d, d, None, None]).unwrap();
        let mut c = built_in();
        c.cuti_bersama_open = true;
        c.kelurahan_hours.insert("12.71.01.1001".parse().unwrap(), hours);
        let mut doc = AutoCommit::new();
        create_catalog(&mut doc, &c).unwrap();
        let back = read_catalog(&doc).unwrap();
        assert_eq!((back.cuti_bersama_open, &back.kelurahan_hours), (true, &c.kelurahan_hours));
        assert_eq!(back.hours_for("12.71.01.1001"), &hours);
        assert_eq!(back.hours_for("12.71.01.1002"), &ServiceHours::CITY_DEFAULT);
        assert_eq!(back.agency_sla_days("PKK", "DISDUKCAPIL"), Some(3));
        assert!(delete_hours(&mut doc, &"12.71.01.1001".parse().unwrap()).unwrap());
        put_cuti_bersama_open(&mut doc, false).unwrap();
        doc.commit();
        let back = read_catalog(&doc).unwrap();
        assert!(back.kelurahan_hours.is_empty() && !back.cuti_bersama_open);
        // Before service hours: no map, no setting.
        doc.delete(ROOT, "hours").unwrap();
        doc.delete(ROOT, "cuti_bersama_open").unwrap();
        doc.commit();
        let old = read_catalog(&doc).unwrap();
        assert_eq!((old.service_hours, old.cuti_bersama_open), (ServiceHours::CITY_DEFAULT, false));
        // An SLA for an agency the service does not hand off to is refused.
        let mut bad = built_in();
        let skd = bad.services.iter_mut().find(|s| s.code.as_str() == "SKD").unwrap();
        skd.handoff_sla_days.insert("DISDUKCAPIL".parse().unwrap(), 3);
        assert!(bad.check().is_err());
    }

    /// Holidays are keyed by date: concurrent additions of different days
    /// both survive a merge; a removal takes one day out.
    #[test]
    fn holidays_merge_by_day_and_can_be_removed() {
        let mut a = AutoCommit::new();
        create_catalog(&mut a, &Catalog { holidays: vec![], ..built_in() }).unwrap();
        let mut b = a.fork();
        let day = |s: &str| ymd::parse(s).unwrap();
        put_holiday(&mut a, &Holiday { date: day("2026-03-20"), name: "Idul Fitri".into(), kind: HolidayKind::Libur })
            .unwrap();
        a.commit();
        put_holiday(&mut b, &Holiday { date: day("2026-03-19"), name: "Nyepi".into(), kind: HolidayKind::Libur })
            .unwrap();
        b.commit();
        a.merge(&mut b).unwrap();
        let days: Vec<String> = read_catalog(&a).unwrap().holidays.iter().map(|h| ymd::format(h.date)).collect();
        assert_eq!(days, ["2026-03-19", "2026-03-20"]);
        assert!(delete_holiday(&mut a, day("2026-03-19")).unwrap());
        assert!(!delete_holiday(&mut a, day("2026-03-19")).unwrap(), "already gone");
        assert_eq!(read_catalog(&a).unwrap().holidays.len(), 1);
    }

    /// A catalog written before holidays existed reads with none, and gets
    /// its map at the first holiday.
    #[test]
    fn an_older_catalog_has_no_holidays() {
        let mut doc = AutoCommit::new();
        create_catalog(&mut doc, &Catalog { holidays: vec![], ..built_in() }).unwrap();
        doc.delete(ROOT, "holidays").unwrap();
        doc.commit();
        assert!(read_catalog(&doc).unwrap().holidays.is_empty());
        put_holiday(
            &mut doc,
            &Holiday {
                date: ymd::parse("2026-12-24").unwrap(),
                name: "Cuti bersama Natal".into(),
                kind: HolidayKind::CutiBersama,
            },
        )
        .unwrap();
        assert_eq!(read_catalog(&doc).unwrap().holidays.len(), 1);
    }

    fn published(centi: u32, respondents: u64) -> PublishedIkm {
        PublishedIkm {
            period: "2026-Q3".into(),
            period_label: "Triwulan III 2026".into(),
            ikm_centi: centi,
            respondents,
            sample_min: 120,
            published_at_ms: 1_790_000_000_000,
        }
    }

    /// A publication round-trips with the grade read from the figure (the
    /// band edges: 88.30 is B, 88.31 is A); a newer one replaces the
    /// office's older one; publications for different offices merge; a
    /// catalog from before publications reads with none.
    #[test]
    fn published_ikm_round_trips_and_merges_by_office() {
        let k1: KelurahanCode = "12.71.01.1001".parse().unwrap();
        let k2: KelurahanCode = "12.71.01.1002".parse().unwrap();
        let mut a = AutoCommit::new();
        create_catalog(&mut a, &built_in()).unwrap();
        assert!(read_catalog(&a).unwrap().published_ikm.is_empty());
        let mut b = a.fork();
        put_published_ikm(&mut a, &k1, &published(8830, 50)).unwrap();
        a.commit();
        put_published_ikm(&mut b, &k2, &published(8831, 400)).unwrap();
        b.commit();
        a.merge(&mut b).unwrap();
        let c = read_catalog(&a).unwrap();
        let p1 = c.published_ikm_for(k1.as_str()).unwrap();
        assert_eq!((p1.ikm_text(), p1.grade(), p1.sample_sufficient()), ("88.30".into(), Grade::B, false));
        let p2 = c.published_ikm_for(k2.as_str()).unwrap();
        assert_eq!((p2.ikm_text(), p2.grade(), p2.sample_sufficient()), ("88.31".into(), Grade::A, true));
        let newer =
            PublishedIkm { period: "2026-Q4".into(), period_label: "Triwulan IV 2026".into(), ..published(7660, 9) };
        put_published_ikm(&mut a, &k1, &newer).unwrap();
        a.commit();
        let c = read_catalog(&a).unwrap();
        assert_eq!(c.published_ikm_for(k1.as_str()), Some(&newer));
        assert_eq!(newer.grade(), Grade::C);
        c.check().unwrap();

        let mut old = AutoCommit::new();
        create_catalog(&mut old, &built_in()).unwrap();
        old.delete(ROOT, "ikm").unwrap();
        old.commit();
        assert!(read_catalog(&old).unwrap().published_ikm.is_empty());
    }

    /// Figures no survey can give are refused when written and when read.
    #[test]
    fn impossible_publications_are_refused() {
        let k: KelurahanCode = "12.71.01.1001".parse().unwrap();
        let mut doc = AutoCommit::new();
        create_catalog(&mut doc, &built_in()).unwrap();
        for bad in [
            published(2499, 5),
            published(10_001, 5),
            published(9000, 0),
            PublishedIkm { period_label: "<script>\u{0}".into(), ..published(9000, 5) },
            PublishedIkm { sample_min: 386, ..published(9000, 5) },
        ] {
            assert!(put_published_ikm(&mut doc, &k, &bad).is_err(), "{bad:?}");
        }
        put_published_ikm(&mut doc, &k, &published(9000, 5)).unwrap();
        doc.commit();
        // A document whose figure was forged past the check.
        let ikm = get_map(&doc, &ROOT, "ikm").unwrap();
        let m = get_map(&doc, &ikm, k.as_str()).unwrap();
        doc.put(&m, "centi", 12_000).unwrap();
        doc.commit();
        assert!(matches!(read_catalog(&doc), Err(SchemaError::Invalid { .. })));
        doc.put(&m, "centi", "90").unwrap();
        doc.commit();
        assert!(matches!(read_catalog(&doc), Err(SchemaError::Field(_))));
    }

    #[test]
    fn holiday_names_and_dates_are_checked() {
        let d = ymd::parse("2026-12-25").unwrap();
        assert!(Holiday { date: d, name: " ".into(), kind: HolidayKind::Libur }.check().is_err());
        assert!(Holiday { date: d, name: "a\u{0}".into(), kind: HolidayKind::Libur }.check().is_err());
        assert!(Holiday { date: d, name: "x".repeat(121), kind: HolidayKind::Libur }.check().is_err());
        Holiday { date: d, name: "Hari Raya Natal".into(), kind: HolidayKind::Libur }.check().unwrap();
        for bad in ["2026-02-30", "2026-2-3", "26-01-01", "2026-01-01T00:00", ""] {
            assert!(ymd::parse(bad).is_none(), "{bad}");
        }
        assert!(
            toml::from_str::<Catalog>(
                "agencies = []\nservices = []\n[[holidays]]\ndate = \"2026-13-01\"\nname = \"x\""
            )
            .is_err()
        );
    }
}
