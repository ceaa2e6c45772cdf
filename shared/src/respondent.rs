//! The respondent profile of the SKM questionnaire (issue 14, item 7):
//! age band, sex, education and occupation, each optional.
//!
//! The lists follow the profile part of the sample questionnaire in the
//! Lampiran of PermenPANRB 14/2017 as SKM reports commonly print it:
//! jenis kelamin L/P; pendidikan in six levels from "SD ke bawah" to "S2
//! ke atas"; pekerjaan with PNS, TNI and Polri together, private
//! employees, the self-employed, students and "lainnya". The sample form
//! asks the age in years; the kiosk asks for the band the reports count
//! in (≤ 20, 21-30, 31-40, 41-50, > 50), so no exact age is ever stored.
//! Check the lists against the regulation's text before relying on them
//! in a dispute (`../shared/data/SKM.md`).
//!
//! Invariants: every answer is optional (`None` is "tidak menjawab"); a
//! code, once shipped, never changes meaning (documents and the server's
//! rollups keep codes, people see labels); the profile is reported only
//! as counts over respondents, never beside a name or a NIK.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::skm::decimal_text;

/// One question of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Age,
    Sex,
    Education,
    Occupation,
}

/// One answer a question offers, as people and the store see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub code: &'static str,
    pub label_id: &'static str,
    pub label_en: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProfileError {
    /// Names no key: whatever was sent as one is not echoed.
    #[error(
        "pertanyaan profil tidak dikenal (age, sex, education, occupation) / unknown profile question (age, sex, education, occupation)"
    )]
    UnknownDimension,
    #[error("jawaban {dimension} tidak dikenal / unknown answer to {dimension}")]
    UnknownCode { dimension: Dimension },
}

/// A closed list of answers with stable codes.
macro_rules! choices {
    ($(#[$meta:meta])* $name:ident, $dimension:expr, [$($variant:ident = ($code:literal, $id:literal, $en:literal)),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code documents and the store keep.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }

            pub fn label_id(self) -> &'static str {
                match self {
                    $($name::$variant => $id),+
                }
            }

            pub fn label_en(self) -> &'static str {
                match self {
                    $($name::$variant => $en),+
                }
            }

            fn choice(self) -> Choice {
                Choice { code: self.code(), label_id: self.label_id(), label_en: self.label_en() }
            }
        }

        impl FromStr for $name {
            type Err = ProfileError;
            fn from_str(s: &str) -> Result<Self, ProfileError> {
                $name::ALL.iter().copied().find(|c| c.code() == s).ok_or(ProfileError::UnknownCode { dimension: $dimension })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

choices!(
    /// Umur, in the bands SKM reports count.
    AgeBand,
    Dimension::Age,
    [
        UpTo20 = ("le20", "≤ 20 tahun", "20 or younger"),
        From21To30 = ("21-30", "21-30 tahun", "21-30"),
        From31To40 = ("31-40", "31-40 tahun", "31-40"),
        From41To50 = ("41-50", "41-50 tahun", "41-50"),
        Over50 = ("gt50", "> 50 tahun", "over 50"),
    ]
);

choices!(
    /// Jenis kelamin.
    Sex,
    Dimension::Sex,
    [Male = ("l", "Laki-laki", "Male"), Female = ("p", "Perempuan", "Female")]
);

choices!(
    /// Pendidikan terakhir.
    Education,
    Dimension::Education,
    [
        PrimaryOrLess = ("sd", "SD ke bawah", "Primary school or less"),
        JuniorHigh = ("smp", "SMP/SLTP", "Junior high school"),
        SeniorHigh = ("sma", "SMA/SLTA", "Senior high school"),
        Diploma = ("d1-d3", "D1-D3", "Diploma (D1-D3)"),
        Bachelor = ("d4-s1", "D4/S1", "Bachelor's degree (D4/S1)"),
        Postgraduate = ("s2", "S2 ke atas", "Master's degree or higher"),
    ]
);

choices!(
    /// Pekerjaan utama.
    Occupation,
    Dimension::Occupation,
    [
        CivilService = ("pns-tni-polri", "PNS/TNI/Polri", "Civil servant, military or police"),
        PrivateEmployee = ("swasta", "Pegawai swasta", "Private-sector employee"),
        SelfEmployed = ("wiraswasta", "Wiraswasta/usahawan", "Self-employed or business owner"),
        Student = ("pelajar", "Pelajar/mahasiswa", "Student"),
        Other = ("lainnya", "Lainnya", "Other"),
    ]
);

/// Most answers any question offers (education's six).
pub const CHOICES_MAX: usize = 6;

impl Dimension {
    pub const ALL: [Dimension; 4] = [Dimension::Age, Dimension::Sex, Dimension::Education, Dimension::Occupation];

    /// The key in a rating's `profile` map and in the server's rollup.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::Age => "age",
            Dimension::Sex => "sex",
            Dimension::Education => "education",
            Dimension::Occupation => "occupation",
        }
    }

    pub fn label_id(self) -> &'static str {
        match self {
            Dimension::Age => "Umur",
            Dimension::Sex => "Jenis kelamin",
            Dimension::Education => "Pendidikan terakhir",
            Dimension::Occupation => "Pekerjaan utama",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Dimension::Age => "Age",
            Dimension::Sex => "Sex",
            Dimension::Education => "Education",
            Dimension::Occupation => "Occupation",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The answers the question offers, in the questionnaire's order.
    pub fn choices(self) -> Vec<Choice> {
        match self {
            Dimension::Age => AgeBand::ALL.iter().map(|c| c.choice()).collect(),
            Dimension::Sex => Sex::ALL.iter().map(|c| c.choice()).collect(),
            Dimension::Education => Education::ALL.iter().map(|c| c.choice()).collect(),
            Dimension::Occupation => Occupation::ALL.iter().map(|c| c.choice()).collect(),
        }
    }

    /// The place of `code` among [`Dimension::choices`].
    pub fn position(self, code: &str) -> Result<usize, ProfileError> {
        self.choices().iter().position(|c| c.code == code).ok_or(ProfileError::UnknownCode { dimension: self })
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Dimension {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, ProfileError> {
        Dimension::ALL.into_iter().find(|d| d.key() == s).ok_or(ProfileError::UnknownDimension)
    }
}

/// One respondent's profile; every answer optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Profile {
    pub age: Option<AgeBand>,
    pub sex: Option<Sex>,
    pub education: Option<Education>,
    pub occupation: Option<Occupation>,
}

impl Profile {
    /// Nothing answered (also every rating made before the profile existed).
    pub fn is_empty(&self) -> bool {
        *self == Profile::default()
    }

    /// The code answered to `d`, if any.
    pub fn code(&self, d: Dimension) -> Option<&'static str> {
        match d {
            Dimension::Age => self.age.map(AgeBand::code),
            Dimension::Sex => self.sex.map(Sex::code),
            Dimension::Education => self.education.map(Education::code),
            Dimension::Occupation => self.occupation.map(Occupation::code),
        }
    }

    /// The answered questions with their codes, in [`Dimension::ALL`] order.
    pub fn answers(&self) -> impl Iterator<Item = (Dimension, &'static str)> + '_ {
        Dimension::ALL.into_iter().filter_map(|d| self.code(d).map(|c| (d, c)))
    }

    /// Sets the answer to `d` from its code.
    pub fn set(&mut self, d: Dimension, code: &str) -> Result<(), ProfileError> {
        match d {
            Dimension::Age => self.age = Some(code.parse()?),
            Dimension::Sex => self.sex = Some(code.parse()?),
            Dimension::Education => self.education = Some(code.parse()?),
            Dimension::Occupation => self.occupation = Some(code.parse()?),
        }
        Ok(())
    }

    /// From `(question key, code)` pairs, as the API and the documents
    /// carry them: unknown keys and codes are refused.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Profile, ProfileError> {
        let mut p = Profile::default();
        for (key, code) in pairs {
            let d: Dimension = key.parse()?;
            p.set(d, code)?;
        }
        Ok(p)
    }
}

/// Counts of answers over a group of respondents. Adding is associative,
/// so tallies of months and kelurahan add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProfileTally {
    /// Every respondent of the group, whether they answered or not.
    pub respondents: u64,
    counts: [[u64; CHOICES_MAX]; 4],
}

impl ProfileTally {
    /// A tally of `respondents` with no answer counted yet (the rollup
    /// adds its counts with [`ProfileTally::add_count`]).
    pub fn with_respondents(respondents: u64) -> ProfileTally {
        ProfileTally { respondents, ..ProfileTally::default() }
    }

    /// One more respondent, with their answers.
    pub fn add(&mut self, p: &Profile) {
        self.respondents += 1;
        for (d, code) in p.answers() {
            if let Ok(i) = d.position(code) {
                self.counts[d.index()][i] += 1;
            }
        }
    }

    /// `n` more answers `code` to `d` (respondents are counted apart).
    pub fn add_count(&mut self, d: Dimension, code: &str, n: u64) -> Result<(), ProfileError> {
        let i = d.position(code)?;
        self.counts[d.index()][i] += n;
        Ok(())
    }

    pub fn merge(&mut self, other: &ProfileTally) {
        self.respondents += other.respondents;
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }

    /// How many answered `code` to `d` (0 for an unknown code).
    pub fn count(&self, d: Dimension, code: &str) -> u64 {
        d.position(code).map_or(0, |i| self.counts[d.index()][i])
    }

    pub fn answered(&self, d: Dimension) -> u64 {
        self.counts[d.index()].iter().sum()
    }

    /// Respondents who left `d` unanswered ("tidak menjawab").
    pub fn unanswered(&self, d: Dimension) -> u64 {
        self.respondents.saturating_sub(self.answered(d))
    }

    /// `n` as a percentage of the respondents, two decimals, exact
    /// (half up); `None` without respondents.
    pub fn percent_text(&self, n: u64) -> Option<String> {
        (self.respondents > 0).then(|| decimal_text(100 * u128::from(n), u128::from(self.respondents), 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_read_back() {
        for d in Dimension::ALL {
            let choices = d.choices();
            assert!(!choices.is_empty() && choices.len() <= CHOICES_MAX, "{d}");
            let mut codes: Vec<&str> = choices.iter().map(|c| c.code).collect();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), choices.len(), "{d}: codes repeat");
            for (i, c) in choices.iter().enumerate() {
                assert_eq!(d.position(c.code), Ok(i));
                let mut p = Profile::default();
                p.set(d, c.code).unwrap();
                assert_eq!(p.code(d), Some(c.code));
                assert!(!c.label_id.is_empty() && !c.label_en.is_empty());
            }
            assert_eq!(d.key().parse::<Dimension>(), Ok(d));
        }
        // The codes are the stable interface: spelled out here once.
        let all: Vec<Vec<&str>> = Dimension::ALL.iter().map(|d| d.choices().iter().map(|c| c.code).collect()).collect();
        assert_eq!(
            all,
            [
                vec!["le20", "21-30", "31-40", "41-50", "gt50"],
                vec!["l", "p"],
                vec!["sd", "smp", "sma", "d1-d3", "d4-s1", "s2"],
                vec!["pns-tni-polri", "swasta", "wiraswasta", "pelajar", "lainnya"],
            ]
        );
        assert_eq!("p".parse::<Sex>().map(Sex::label_id), Ok("Perempuan"));
        assert_eq!(AgeBand::ALL.len(), 5);
    }

    #[test]
    fn unknown_keys_and_codes_are_refused_without_echo() {
        assert_eq!(Profile::from_pairs([("sex", "x")]), Err(ProfileError::UnknownCode { dimension: Dimension::Sex }));
        assert_eq!(Profile::from_pairs([("nik", "1271")]), Err(ProfileError::UnknownDimension));
        assert_eq!(Profile::from_pairs([("Sex", "p")]), Err(ProfileError::UnknownDimension), "keys are exact");
        assert_eq!(Profile::from_pairs([("age", "L")]), Err(ProfileError::UnknownCode { dimension: Dimension::Age }));
        let e = Profile::from_pairs([("education", "<script>")]).unwrap_err().to_string();
        assert!(!e.contains("<script>") && e.contains("education"), "{e}");
        let p = Profile::from_pairs([("sex", "p"), ("occupation", "pelajar")]).unwrap();
        assert_eq!(p.answers().collect::<Vec<_>>(), [(Dimension::Sex, "p"), (Dimension::Occupation, "pelajar")]);
        assert!(!p.is_empty() && Profile::default().is_empty());
    }

    #[test]
    fn tallies_count_answers_and_the_unanswered() {
        let mut t = ProfileTally::default();
        t.add(&Profile::from_pairs([("sex", "p"), ("age", "21-30")]).unwrap());
        t.add(&Profile::from_pairs([("sex", "p")]).unwrap());
        t.add(&Profile::default());
        assert_eq!((t.respondents, t.count(Dimension::Sex, "p"), t.unanswered(Dimension::Sex)), (3, 2, 1));
        assert_eq!(t.count(Dimension::Sex, "l"), 0);
        assert_eq!(t.unanswered(Dimension::Education), 3);
        // 2 of 3 = 66.666..% -> 66.67; 1 of 3 -> 33.33.
        assert_eq!(t.percent_text(2).as_deref(), Some("66.67"));
        assert_eq!(t.percent_text(1).as_deref(), Some("33.33"));
        assert_eq!(ProfileTally::default().percent_text(0), None);
        // A rollup's rows give the same tally.
        let mut r = ProfileTally::with_respondents(3);
        r.add_count(Dimension::Sex, "p", 2).unwrap();
        r.add_count(Dimension::Age, "21-30", 1).unwrap();
        assert_eq!(r, t);
        assert!(r.add_count(Dimension::Sex, "x", 1).is_err());
        let mut m = t;
        m.merge(&r);
        assert_eq!((m.respondents, m.count(Dimension::Sex, "p")), (6, 4));
    }
}
