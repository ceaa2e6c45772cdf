//! SKM (Survei Kepuasan Masyarakat) and IKM arithmetic after PermenPANRB
//! 14/2017, as summarised in ../shared/data/SKM.md.
//!
//! All arithmetic is exact: sums are integers, the IKM is the rational
//! `25 * total / (9 * respondents)`, and it is rounded half-up to two
//! decimals exactly once, before the grade is read off the published bands.
//! Weights are exactly 1/9 (reports that print 0.11 cap the IKM at 99).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The nine elements (unsur). Answers are stored by element code, never by
/// question position: the sample questionnaire asks U9 as question 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Element {
    U1,
    U2,
    U3,
    U4,
    U5,
    U6,
    U7,
    U8,
    U9,
}

pub struct ElementInfo {
    pub element: Element,
    pub name_id: &'static str,
    pub name_en: &'static str,
    pub question_id: &'static str,
    pub question_en: &'static str,
    /// Official answer labels for scores 1 to 4.
    pub labels_id: [&'static str; 4],
    pub labels_en: [&'static str; 4],
}

impl Element {
    pub const ALL: [Element; 9] = [
        Element::U1,
        Element::U2,
        Element::U3,
        Element::U4,
        Element::U5,
        Element::U6,
        Element::U7,
        Element::U8,
        Element::U9,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn code(self) -> &'static str {
        ["U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9"][self.index()]
    }

    pub fn info(self) -> &'static ElementInfo {
        &ELEMENTS[self.index()]
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Element {
    type Err = ScoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Element::ALL.into_iter().find(|e| e.code() == s).ok_or(ScoreError::UnknownElement)
    }
}

pub static ELEMENTS: [ElementInfo; 9] = [
    ElementInfo {
        element: Element::U1,
        name_id: "Persyaratan",
        name_en: "Requirements",
        question_id: "Bagaimana pendapat Saudara tentang kesesuaian persyaratan pelayanan dengan jenis pelayanannya?",
        question_en: "How well do the requirements fit the service?",
        labels_id: ["Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"],
        labels_en: ["Not appropriate", "Less appropriate", "Appropriate", "Very appropriate"],
    },
    ElementInfo {
        element: Element::U2,
        name_id: "Sistem, Mekanisme, dan Prosedur",
        name_en: "System, mechanism and procedure",
        question_id: "Bagaimana pemahaman Saudara tentang kemudahan prosedur pelayanan di unit ini?",
        question_en: "How easy is the procedure of this office?",
        labels_id: ["Tidak mudah", "Kurang mudah", "Mudah", "Sangat mudah"],
        labels_en: ["Not easy", "Less easy", "Easy", "Very easy"],
    },
    ElementInfo {
        element: Element::U3,
        name_id: "Waktu Penyelesaian",
        name_en: "Completion time",
        question_id: "Bagaimana pendapat Saudara tentang kecepatan waktu dalam memberikan pelayanan?",
        question_en: "How fast was the service?",
        labels_id: ["Tidak cepat", "Kurang cepat", "Cepat", "Sangat cepat"],
        labels_en: ["Not fast", "Less fast", "Fast", "Very fast"],
    },
    ElementInfo {
        element: Element::U4,
        name_id: "Biaya/Tarif",
        name_en: "Cost/fee",
        question_id: "Bagaimana pendapat Saudara tentang kewajaran biaya/tarif dalam pelayanan?",
        question_en: "How fair was the cost of the service?",
        labels_id: ["Sangat mahal", "Cukup mahal", "Murah", "Gratis"],
        labels_en: ["Very expensive", "Fairly expensive", "Cheap", "Free"],
    },
    ElementInfo {
        element: Element::U5,
        name_id: "Produk Spesifikasi Jenis Pelayanan",
        name_en: "Service product",
        question_id: "Bagaimana pendapat Saudara tentang kesesuaian produk pelayanan antara yang tercantum dalam standar pelayanan dengan hasil yang diberikan?",
        question_en: "Did the product match what the service standard promises?",
        labels_id: ["Tidak sesuai", "Kurang sesuai", "Sesuai", "Sangat sesuai"],
        labels_en: ["Not appropriate", "Less appropriate", "Appropriate", "Very appropriate"],
    },
    ElementInfo {
        element: Element::U6,
        name_id: "Kompetensi Pelaksana",
        name_en: "Staff competence",
        question_id: "Bagaimana pendapat Saudara tentang kompetensi/kemampuan petugas dalam pelayanan?",
        question_en: "How competent were the staff?",
        labels_id: ["Tidak kompeten", "Kurang kompeten", "Kompeten", "Sangat kompeten"],
        labels_en: ["Not competent", "Less competent", "Competent", "Very competent"],
    },
    ElementInfo {
        element: Element::U7,
        name_id: "Perilaku Pelaksana",
        name_en: "Staff conduct",
        question_id: "Bagaimana pendapat Saudara tentang perilaku petugas dalam pelayanan terkait kesopanan dan keramahan?",
        question_en: "How polite and friendly were the staff?",
        labels_id: ["Tidak sopan dan ramah", "Kurang sopan dan ramah", "Sopan dan ramah", "Sangat sopan dan ramah"],
        labels_en: [
            "Not polite and friendly",
            "Less polite and friendly",
            "Polite and friendly",
            "Very polite and friendly",
        ],
    },
    ElementInfo {
        element: Element::U8,
        name_id: "Penanganan Pengaduan, Saran dan Masukan",
        name_en: "Handling of complaints and suggestions",
        question_id: "Bagaimana pendapat Saudara tentang penanganan pengaduan pengguna layanan?",
        question_en: "How are complaints and suggestions handled?",
        labels_id: ["Tidak ada", "Ada tetapi tidak berfungsi", "Berfungsi kurang maksimal", "Dikelola dengan baik"],
        labels_en: ["There is none", "Exists but does not work", "Works, but not fully", "Well managed"],
    },
    ElementInfo {
        element: Element::U9,
        name_id: "Sarana dan Prasarana",
        name_en: "Facilities",
        question_id: "Bagaimana pendapat Saudara tentang kualitas sarana dan prasarana?",
        question_en: "How good are the facilities?",
        labels_id: ["Buruk", "Cukup", "Baik", "Sangat baik"],
        labels_en: ["Poor", "Adequate", "Good", "Very good"],
    },
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScoreError {
    /// Names no key: whatever was sent as one is not echoed.
    #[error("unsur SKM tidak dikenal (U1-U9) / unknown SKM element (U1-U9)")]
    UnknownElement,
    #[error("nilai {element} harus 1 sampai 4 / the score for {element} must be 1 to 4")]
    OutOfRange { element: Element },
    #[error("nilai {element} belum diisi / the score for {element} is missing")]
    Missing { element: Element },
}

/// One respondent's complete answers, 1-4 for each of the nine elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scores([u8; 9]);

impl Scores {
    pub fn new(values: [u8; 9]) -> Result<Scores, ScoreError> {
        for (element, v) in Element::ALL.into_iter().zip(values) {
            if !(1..=4).contains(&v) {
                return Err(ScoreError::OutOfRange { element });
            }
        }
        Ok(Scores(values))
    }

    /// From a map keyed by element code, as the API and the documents carry
    /// them. Every element must be present; unknown keys are refused.
    pub fn from_map<'a>(map: impl IntoIterator<Item = (&'a str, i64)>) -> Result<Scores, ScoreError> {
        let mut values = [0u8; 9];
        for (code, v) in map {
            let element: Element = code.parse()?;
            values[element.index()] =
                u8::try_from(v).ok().filter(|v| (1..=4).contains(v)).ok_or(ScoreError::OutOfRange { element })?;
        }
        if let Some(element) = Element::ALL.into_iter().find(|e| values[e.index()] == 0) {
            return Err(ScoreError::Missing { element });
        }
        Ok(Scores(values))
    }

    pub fn get(&self, element: Element) -> u8 {
        self.0[element.index()]
    }

    pub fn to_map(&self) -> BTreeMap<Element, u8> {
        Element::ALL.into_iter().map(|e| (e, self.get(e))).collect()
    }
}

/// The mutu pelayanan grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    /// The published bands on the converted IKM in hundredths:
    /// D 25.00-64.99, C 65.00-76.60, B 76.61-88.30, A 88.31-100.00.
    pub fn from_centi(ikm_centi: u32) -> Grade {
        match ikm_centi {
            0..=6499 => Grade::D,
            6500..=7660 => Grade::C,
            7661..=8830 => Grade::B,
            _ => Grade::A,
        }
    }

    /// Kinerja unit pelayanan.
    pub fn performance_id(self) -> &'static str {
        match self {
            Grade::A => "Sangat baik",
            Grade::B => "Baik",
            Grade::C => "Kurang baik",
            Grade::D => "Tidak baik",
        }
    }

    pub fn performance_en(self) -> &'static str {
        match self {
            Grade::A => "Very good",
            Grade::B => "Good",
            Grade::C => "Poor",
            Grade::D => "Not good",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        })
    }
}

/// Sums of scores over a group of respondents. Adding is associative, so
/// tallies of kelurahan add up to tallies of kecamatan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub respondents: u64,
    pub sums: [u64; 9],
}

/// The IKM of a group with at least one respondent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ikm {
    /// Converted IKM (25-100) in hundredths, rounded half up: 8831 = 88.31.
    pub centi: u32,
    pub grade: Grade,
}

impl Ikm {
    pub fn value(self) -> f64 {
        f64::from(self.centi) / 100.0
    }
}

/// Rounds `num / den` half up to a whole number (both positive).
fn div_round_half_up(num: u128, den: u128) -> u128 {
    (2 * num + den) / (2 * den)
}

impl Tally {
    pub fn add(&mut self, scores: &Scores) {
        self.respondents += 1;
        for e in Element::ALL {
            self.sums[e.index()] += u64::from(scores.get(e));
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.respondents += other.respondents;
        for (a, b) in self.sums.iter_mut().zip(other.sums) {
            *a += b;
        }
    }

    /// Nilai rata-rata unsur: sum of the element's scores / respondents.
    pub fn nrr(&self, element: Element) -> Option<f64> {
        (self.respondents > 0).then(|| self.sums[element.index()] as f64 / self.respondents as f64)
    }

    /// `None` for a group without respondents (shown as "no data", never 0).
    pub fn ikm(&self) -> Option<Ikm> {
        if self.respondents == 0 {
            return None;
        }
        let total: u128 = self.sums.iter().map(|&s| u128::from(s)).sum();
        // 25 * (total / 9) / respondents, in hundredths.
        let centi = div_round_half_up(2500 * total, 9 * u128::from(self.respondents));
        let centi = u32::try_from(centi).expect("an IKM is at most 100.00");
        Some(Ikm { centi, grade: Grade::from_centi(centi) })
    }
}

/// `num / den` rounded half up to `decimals` places, written out in
/// decimal (`den > 0`). Exact: no floating point anywhere, so a figure
/// printed from it never disagrees with the totals it came from.
pub fn decimal_text(num: u128, den: u128, decimals: u32) -> String {
    assert!(den > 0, "a ratio needs a denominator");
    let scale = 10u128.pow(decimals);
    let scaled = div_round_half_up(num * scale, den);
    let (whole, frac) = (scaled / scale, scaled % scale);
    if decimals == 0 { whole.to_string() } else { format!("{whole}.{frac:0width$}", width = decimals as usize) }
}

/// Decimals of the NRR, the weighted NRR and the unit IKM in the report.
pub const NRR_DECIMALS: u32 = 4;

impl Tally {
    /// NRR of an element to four decimals, from the exact sum.
    pub fn nrr_text(&self, element: Element) -> Option<String> {
        (self.respondents > 0)
            .then(|| decimal_text(u128::from(self.sums[element.index()]), u128::from(self.respondents), NRR_DECIMALS))
    }

    /// NRR tertimbang: NRR x 1/9, i.e. sum / (9 x respondents), to four
    /// decimals from the exact sum (never from the rounded NRR).
    pub fn weighted_nrr_text(&self, element: Element) -> Option<String> {
        (self.respondents > 0).then(|| {
            decimal_text(u128::from(self.sums[element.index()]), 9 * u128::from(self.respondents), NRR_DECIMALS)
        })
    }

    /// The unit IKM (1-4, the sum of the weighted NRR) to four decimals,
    /// from the exact total.
    pub fn ikm_unit_text(&self) -> Option<String> {
        let total: u128 = self.sums.iter().map(|&s| u128::from(s)).sum();
        (self.respondents > 0).then(|| decimal_text(total, 9 * u128::from(self.respondents), NRR_DECIMALS))
    }

    /// The `n` elements with the lowest NRR, lowest first (ties in element
    /// order). Every element shares the respondents, so comparing sums is
    /// comparing NRR exactly.
    pub fn lowest_elements(&self, n: usize) -> Vec<Element> {
        if self.respondents == 0 {
            return Vec::new();
        }
        let mut all = Element::ALL.to_vec();
        all.sort_by_key(|e| (self.sums[e.index()], e.index()));
        all.truncate(n);
        all
    }
}

impl Ikm {
    /// The converted IKM as printed: two decimals, the figure the grade is
    /// read from.
    pub fn text(self) -> String {
        format!("{}.{:02}", self.centi / 100, self.centi % 100)
    }
}

/// Krejcie-Morgan minimum sample for a population of `n` service users
/// (95% confidence, 5% margin): `3.841 N 0.25 / (0.0025 (N-1) + 3.841 * 0.25)`,
/// rounded to the nearest whole number. Multiplying through by 4000 gives
/// the exact integer form `3841 N / (10 N + 3831)`.
pub fn krejcie_morgan_min_sample(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let n = u128::from(n);
    u64::try_from(div_round_half_up(3841 * n, 10 * n + 3831)).expect("at most 385")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(respondents: u64, total: u64) -> Tally {
        // Spread `total` over the nine elements; the IKM depends only on the total.
        let mut t = Tally { respondents, sums: [0; 9] };
        for i in 0..9 {
            t.sums[i] = total / 9 + u64::from((i as u64) < total % 9);
        }
        t
    }

    #[test]
    fn ikm_hand_computed() {
        // (respondents, sum of all scores, converted IKM in hundredths, grade)
        // IKM = 25 * total / (9 * respondents).
        let cases: &[(u64, u64, u32, Grade)] = &[
            (1, 36, 10000, Grade::A), // all 4: 100.00
            (1, 9, 2500, Grade::D),   // all 1: 25.00
            (5, 117, 6500, Grade::C), // 25*117/45 = 65.000 exactly
            // 25*23395/9000 = 64.986.. -> 64.99 (D); one point less is 64.98.
            (1000, 23395, 6499, Grade::D),
            (1000, 23394, 6498, Grade::D),
            // 25*23398/9000 = 64.994.. -> 64.99; 23399 -> 64.997.. -> 65.00 (C)
            (1000, 23398, 6499, Grade::D),
            (1000, 23399, 6500, Grade::C),
            // 76.60 / 76.61: 25*27576/9000 = 76.600 exactly (C);
            // 25*27580/9000 = 76.611.. -> 76.61 (B)
            (1000, 27576, 7660, Grade::C),
            (1000, 27579, 7661, Grade::B), // 76.6083.. -> 76.61
            (1000, 27578, 7661, Grade::B), // 76.6055.. -> 76.61 (half up past .605)
            (1000, 27577, 7660, Grade::C), // 76.6027.. -> 76.60
            // 88.30 / 88.31: 25*31788/9000 = 88.300 (B); 31791 -> 88.3083 -> 88.31 (A)
            (1000, 31788, 8830, Grade::B),
            (1000, 31789, 8830, Grade::B), // 88.3027..
            (1000, 31790, 8831, Grade::A), // 88.3055..
            (1000, 31791, 8831, Grade::A),
            // An exact half: 2500*23391/9000 = 6497.5 hundredths -> 64.98.
            (1000, 23391, 6498, Grade::D),
        ];
        for &(r, total, centi, grade) in cases {
            let ikm = tally_of(r, total).ikm().unwrap();
            assert_eq!((ikm.centi, ikm.grade), (centi, grade), "R={r} total={total}");
        }
    }

    #[test]
    fn nrr_and_weights_are_exact() {
        let mut t = Tally::default();
        t.add(&Scores::new([4, 4, 4, 4, 4, 4, 4, 4, 4]).unwrap());
        t.add(&Scores::new([3, 3, 3, 3, 3, 3, 3, 3, 2]).unwrap());
        assert_eq!(t.nrr(Element::U1), Some(3.5));
        assert_eq!(t.nrr(Element::U9), Some(3.0));
        // (3.5*8 + 3.0) / 9 * 25 = 86.111.. -> 86.11
        assert_eq!(t.ikm().unwrap().centi, 8611);
        assert_eq!(Tally::default().ikm(), None);
        assert_eq!(Tally::default().nrr(Element::U1), None);
    }

    #[test]
    fn weighted_nrr_and_unit_ikm_are_printed_from_exact_totals() {
        // (respondents, sum of one element, NRR, weighted NRR)
        let cases: &[(u64, u64, &str, &str)] = &[
            (3, 10, "3.3333", "0.3704"), // 10/27 = 0.370370..
            (1000, 3532, "3.5320", "0.3924"),
            (7, 25, "3.5714", "0.3968"), // 25/63 = 0.396825..
            (1, 4, "4.0000", "0.4444"),
            (1, 1, "1.0000", "0.1111"),
            (2000, 1001, "0.5005", "0.0556"), // 1001/18000 = 0.05561..
            (16, 5, "0.3125", "0.0347"),      // 5/144 = 0.034722..
        ];
        for &(r, sum, nrr, weighted) in cases {
            let t = Tally { respondents: r, sums: [sum; 9] };
            assert_eq!(t.nrr_text(Element::U3).as_deref(), Some(nrr), "R={r} sum={sum}");
            assert_eq!(t.weighted_nrr_text(Element::U3).as_deref(), Some(weighted), "R={r} sum={sum}");
        }
        // Half up at the fifth decimal: 1/8 = 0.125 at two decimals is 0.13.
        assert_eq!(decimal_text(1, 8, 2), "0.13");
        assert_eq!(decimal_text(7, 1, 0), "7");
        assert_eq!(Tally::default().weighted_nrr_text(Element::U1), None);
        // 88.31: total 31790 of 1000 respondents is 3.53222.. per unit.
        let t = tally_of(1000, 31790);
        assert_eq!((t.ikm_unit_text().unwrap(), t.ikm().unwrap().text()), ("3.5322".into(), "88.31".into()));
        assert_eq!(tally_of(1000, 23395).ikm().unwrap().text(), "64.99");
        assert_eq!(tally_of(1, 9).ikm().unwrap().text(), "25.00");
    }

    #[test]
    fn the_lowest_elements_compare_exact_sums() {
        let t = Tally { respondents: 10, sums: [30, 31, 29, 40, 35, 29, 33, 30, 36] };
        assert_eq!(t.lowest_elements(3), [Element::U3, Element::U6, Element::U1]);
        assert!(Tally::default().lowest_elements(3).is_empty());
    }

    #[test]
    fn grade_bands() {
        for (centi, g) in [
            (2500, Grade::D),
            (6499, Grade::D),
            (6500, Grade::C),
            (7660, Grade::C),
            (7661, Grade::B),
            (8830, Grade::B),
            (8831, Grade::A),
            (10000, Grade::A),
        ] {
            assert_eq!(Grade::from_centi(centi), g, "{centi}");
        }
    }

    #[test]
    fn krejcie_morgan_table() {
        for (n, s) in [
            (100, 80),
            (500, 217),
            (1000, 278),
            (2000, 322),
            (3000, 341),
            (5000, 357),
            (10_000, 370),
            (1_000_000, 384),
            (0, 0),
            (1, 1),
            (10, 10),
        ] {
            assert_eq!(krejcie_morgan_min_sample(n), s, "N={n}");
        }
    }

    #[test]
    fn scores_from_map() {
        let all = |v: i64| Element::ALL.map(|e| (e.code(), v));
        assert!(Scores::from_map(all(3)).is_ok());
        assert_eq!(Scores::from_map(all(5)), Err(ScoreError::OutOfRange { element: Element::U1 }));
        assert_eq!(Scores::from_map(all(0)), Err(ScoreError::OutOfRange { element: Element::U1 }));
        assert_eq!(Scores::from_map(all(2).into_iter().take(8)), Err(ScoreError::Missing { element: Element::U9 }));
        let mut extra = all(2).to_vec();
        extra.push(("U10", 2));
        assert_eq!(Scores::from_map(extra), Err(ScoreError::UnknownElement));
    }

    proptest::proptest! {
        /// The integer rounding agrees with a decimal reference computed
        /// digit by digit (no floating point on either side).
        #[test]
        fn rounding_matches_long_division(r in 1u64..5000, avg in 9u64..=36) {
            let total = (r * avg).min(36 * r);
            let ikm = tally_of(r, total).ikm().unwrap();
            // Long division of 25*total by 9r to three decimals, then half up.
            let num = 25 * u128::from(total);
            let den = 9 * u128::from(r);
            let milli = num * 1000 / den;
            let expect = (milli / 10 + u128::from(milli % 10 >= 5)) as u32;
            proptest::prop_assert_eq!(ikm.centi, expect);
        }
    }
}
