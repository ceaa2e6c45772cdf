//! Kota Medan's 21 kecamatan and 151 kelurahan with their Kemendagri codes
//! (Kepmendagri 300.2.2-2138/2025; see data/medan_wilayah.csv), compiled in
//! so that neither binary needs a data file to run. Other regions' codes are
//! valid too: this table only supplies names.

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
    pub name: &'static str,
    pub level: Level,
}

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
            (code, Region { code, name: name.expect("name column"), level })
        })
        .collect()
});

/// The region with this code, if it is one of Medan's.
pub fn region(code: &str) -> Option<Region> {
    REGIONS.get(code).copied()
}

/// All of Medan's regions at one level, in code order.
pub fn medan(level: Level) -> Vec<Region> {
    REGIONS.values().filter(|r| r.level == level).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
