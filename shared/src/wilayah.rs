//! Kota Medan's 21 kecamatan and 151 kelurahan with their Kemendagri codes
//! (Kepmendagri 300.2.2-2138/2025; see data/medan_wilayah.csv), compiled in
//! so that neither binary needs a data file to run.
//!
//! Codes are the keys; names are for people. The official list abbreviates
//! some names ("P Berayan Darat I", "Tegal S Mandala I"); [`FULL_NAMES`]
//! spells those out for display, each with its basis (data/WILAYAH_NAMES.md).
//! `Region::official_name` keeps the list's spelling.

use std::collections::BTreeMap;
use std::sync::LazyLock;

const CSV: &str = include_str!("../data/medan_wilayah.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Kecamatan,
    Kelurahan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub code: &'static str,
    /// The name to show: the official one, spelled out where the list
    /// abbreviates it.
    pub name: &'static str,
    /// The name exactly as the official list writes it.
    pub official_name: &'static str,
    pub level: Level,
}

/// Names the official list abbreviates or runs together, spelled out:
/// `(code, as the list writes it, as shown)`. The basis of each is in
/// data/WILAYAH_NAMES.md; names not listed there are shown as written.
pub const FULL_NAMES: &[(&str, &str, &str)] = &[
    ("12.71.01.1006", "Kotamatsum III", "Kota Matsum III"),
    ("12.71.01.1010", "Sudirejo 1", "Sudirejo I"),
    ("12.71.04.1001", "Tegal S Mandala I", "Tegal Sari Mandala I"),
    ("12.71.04.1002", "Tegal S Mandala II", "Tegal Sari Mandala II"),
    ("12.71.04.1003", "Tegal S Mandala III", "Tegal Sari Mandala III"),
    ("12.71.06.1001", "Titipapan", "Titi Papan"),
    ("12.71.10.1004", "S. Rengas Permata", "Sei Rengas Permata"),
    ("12.71.20.1006", "P Berayan Darat I", "Pulo Berayan Darat I"),
    ("12.71.20.1007", "P Berayan Darat II", "Pulo Berayan Darat II"),
    ("12.71.20.1008", "P Berayan Bengkel", "Pulo Berayan Bengkel"),
    ("12.71.20.1009", "PB Bengkel Baru", "Pulo Berayan Bengkel Baru"),
    ("12.71.21.1003", "P Bulan Selayang II", "Padang Bulan Selayang II"),
    ("12.71.21.1005", "P Bulan Selayang I", "Padang Bulan Selayang I"),
];

static REGIONS: LazyLock<BTreeMap<&'static str, Region>> = LazyLock::new(|| {
    CSV.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.splitn(3, ',');
            let (code, name, level) = (cols.next(), cols.next(), cols.next());
            let level = match level.map(str::trim) {
                Some("kecamatan") => Level::Kecamatan,
                Some("kelurahan") => Level::Kelurahan,
                other => panic!("medan_wilayah.csv: unknown level {other:?} in {line:?}"),
            };
            let code = code.expect("code column");
            let official_name = name.expect("name column");
            // A spelled-out name applies only while the list still writes
            // what it was made for (a test checks every entry matches).
            let name = FULL_NAMES
                .iter()
                .find(|(c, official, _)| *c == code && *official == official_name)
                .map_or(official_name, |(_, _, full)| *full);
            (code, Region { code, name, official_name, level })
        })
        .collect()
});

/// The region with this code, if it is one of Medan's.
pub fn region(code: &str) -> Option<Region> {
    REGIONS.get(code).copied()
}

/// Whether `code` is one of Medan's kelurahan (the region list; other
/// regions' codes are well-formed but not served yet).
pub fn is_known_kelurahan(code: &str) -> bool {
    region(code).is_some_and(|r| r.level == Level::Kelurahan)
}

/// The kecamatan with this code (`12.71.01`), if it is one of Medan's.
pub fn kecamatan(code: &str) -> Option<Region> {
    region(code).filter(|r| r.level == Level::Kecamatan)
}

/// The kecamatan a kelurahan (`12.71.01.1001`) lies in, if it is one of
/// Medan's.
pub fn kecamatan_of(kelurahan: &str) -> Option<Region> {
    region(kelurahan).filter(|r| r.level == Level::Kelurahan)?;
    kecamatan(kelurahan.rsplit_once('.')?.0)
}

/// All of Medan's regions at one level, in code order.
pub fn medan(level: Level) -> Vec<Region> {
    REGIONS.values().filter(|r| r.level == level).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kelurahan_lies_in_its_kecamatan() {
        assert_eq!(kecamatan_of("12.71.01.1001").map(|k| k.code), Some("12.71.01"));
        assert_eq!(kecamatan_of("12.71.21.1005").map(|k| k.code), Some("12.71.21"));
        assert_eq!(kecamatan_of("12.71.01").map(|k| k.code), None, "a kecamatan is in no kecamatan");
        assert_eq!(kecamatan_of("12.71.99.1001").map(|k| k.code), None);
        assert_eq!(kecamatan("12.71.01.1001").map(|k| k.code), None, "a kelurahan is not a kecamatan");
        for k in medan(Level::Kelurahan) {
            assert!(kecamatan_of(k.code).is_some(), "{} lies in no kecamatan", k.code);
        }
    }

    #[test]
    fn medan_has_21_kecamatan_and_151_kelurahan() {
        assert_eq!(medan(Level::Kecamatan).len(), 21);
        let kel = medan(Level::Kelurahan);
        assert_eq!(kel.len(), 151);
        for k in kel {
            let code: crate::ids::KelurahanCode = k.code.parse().unwrap();
            assert!(region(code.kecamatan()).is_some(), "{}", k.code);
        }
        assert_eq!(region("12.71.01.1001").map(|r| r.name), Some("Pasar Baru"));
    }

    /// Every spelled-out name still matches the list's spelling (so a new
    /// list that renames a kelurahan is shown as it writes it, not with a
    /// stale expansion), and the names people complained about read whole.
    #[test]
    fn abbreviated_names_are_spelled_out_and_codes_stay_the_keys() {
        for (code, official, full) in FULL_NAMES {
            let r = region(code).unwrap_or_else(|| panic!("{code} is not in the list"));
            assert_eq!(r.official_name, *official, "{code}");
            assert_eq!(r.name, *full, "{code}");
            assert_eq!(r.level, Level::Kelurahan);
        }
        let shown = |code: &str| region(code).map(|r| r.name);
        assert_eq!(shown("12.71.20.1006"), Some("Pulo Berayan Darat I"));
        assert_eq!(shown("12.71.04.1001"), Some("Tegal Sari Mandala I"));
        assert_eq!(shown("12.71.01.1006"), Some("Kota Matsum III"));
        assert_eq!(shown("12.71.06.1001"), Some("Titi Papan"));
        // Names that only look short are letters of the name, shown as written.
        assert_eq!(shown("12.71.02.1002"), Some("Sei Sikambing B"));
        assert_eq!(shown("12.71.07.1008"), Some("Simalingkar B"));
        // No name is left with a bare initial followed by a space.
        for k in medan(Level::Kelurahan) {
            let first = k.name.split(' ').next().unwrap_or("");
            assert!(first.len() > 2 && !first.ends_with('.'), "{} {}", k.code, k.name);
        }
    }

    #[test]
    fn only_listed_kelurahan_are_known() {
        assert!(is_known_kelurahan("12.71.01.1001"));
        assert!(is_known_kelurahan("12.71.21.1006"));
        assert!(!is_known_kelurahan("12.71.01"), "a kecamatan");
        assert!(!is_known_kelurahan("12.71.01.1013"), "well-formed, not in the list");
        assert!(!is_known_kelurahan("12.71.22.1001"));
        assert!(!is_known_kelurahan("31.74.01.1001"), "another city");
    }
}
