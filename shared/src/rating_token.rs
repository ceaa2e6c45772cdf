//! The code on a citizen's receipt that lets them rate their request
//! (SKM). Ticket numbers count up, so without it anyone at a kiosk could
//! rate anyone's ticket.
//!
//! A token is 40 random bits (the caller's: this crate has no randomness),
//! shown as 8 Crockford base-32 symbols in two groups, `7K2M-9QXD`. Typed
//! back, case, dashes and spaces do not matter, and `O`/`I`/`L` read as
//! `0`/`1`/`1`. The request document keeps only a digest (`rating_key`):
//! SHA-256 over a domain tag, the document's id and the token, so one
//! digest says nothing about another request's token. Whoever holds the
//! document can still search the 2^40 tokens offline; the limit on tries at
//! the kiosk is what bounds guessing there.
//!
//! `Debug` hides the token: it must not reach a log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ids::DocId;

/// Crockford's base-32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Symbols in a token (5 bits each).
pub const SYMBOLS: usize = 8;

/// A receipt's rating code: 40 bits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RatingToken([u8; 5]);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "kode penilaian adalah 8 huruf/angka pada tanda terima, contoh: 7K2M-9QXD / the rating code is the 8 letters and digits on the receipt, e.g. 7K2M-9QXD"
)]
pub struct RatingTokenError;

impl RatingToken {
    /// A token from 5 random bytes.
    pub fn from_random(bytes: [u8; 5]) -> RatingToken {
        RatingToken(bytes)
    }

    fn symbols(&self) -> [u8; SYMBOLS] {
        let bits = self.0.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut out = [0u8; SYMBOLS];
        for (i, s) in out.iter_mut().enumerate() {
            let shift = 5 * (SYMBOLS - 1 - i);
            *s = ALPHABET[((bits >> shift) & 31) as usize];
        }
        out
    }

    /// The digest a request document keeps as `rating_key`: lowercase hex
    /// of SHA-256("loket-rating-token:1:" id ":" token).
    pub fn digest(&self, doc: &DocId) -> String {
        let mut h = Sha256::new();
        h.update(b"loket-rating-token:1:");
        h.update(doc.to_string().as_bytes());
        h.update(b":");
        h.update(self.symbols());
        let out = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in out {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        hex
    }

    /// Whether this is the token of the request `doc` whose document keeps
    /// `rating_key` (compared in constant time).
    pub fn matches(&self, doc: &DocId, rating_key: &str) -> bool {
        let mine = self.digest(doc);
        mine.len() == rating_key.len() && mine.bytes().zip(rating_key.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }
}

/// Whether `s` has the shape of a `rating_key` (64 lowercase hex digits).
pub fn is_rating_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for RatingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.symbols();
        let text = std::str::from_utf8(&s).map_err(|_| fmt::Error)?;
        write!(f, "{}-{}", &text[..4], &text[4..])
    }
}

impl fmt::Debug for RatingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RatingToken(…)")
    }
}

impl FromStr for RatingToken {
    type Err = RatingTokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 32 {
            return Err(RatingTokenError);
        }
        let mut bits = 0u64;
        let mut n = 0;
        for c in s.chars() {
            let v = match c.to_ascii_uppercase() {
                ' ' | '-' | '\t' => continue,
                'O' => 0,
                'I' | 'L' => 1,
                c if c.is_ascii() => ALPHABET.iter().position(|a| *a == c as u8).ok_or(RatingTokenError)? as u64,
                _ => return Err(RatingTokenError),
            };
            n += 1;
            if n > SYMBOLS {
                return Err(RatingTokenError);
            }
            bits = (bits << 5) | v;
        }
        if n != SYMBOLS {
            return Err(RatingTokenError);
        }
        let b = bits.to_be_bytes();
        Ok(RatingToken([b[3], b[4], b[5], b[6], b[7]]))
    }
}

impl Serialize for RatingToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RatingToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_however_they_are_typed() {
        let t = RatingToken::from_random([0x3a, 0x5c, 0x01, 0xff, 0x80]);
        let shown = t.to_string();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert!(shown.bytes().filter(|b| *b != b'-').all(|b| ALPHABET.contains(&b)), "{shown}");
        assert_eq!(shown.parse::<RatingToken>(), Ok(t));
        let zero = RatingToken::from_random([0; 5]);
        assert_eq!(zero.to_string(), "0000-0000");
        let ones = RatingToken::from_random([0x08, 0x42, 0x10, 0x84, 0x21]);
        assert_eq!(ones.to_string(), "1111-1111");
        let cases: &[(&str, Option<RatingToken>)] = &[
            ("0000-0000", Some(zero)),
            ("00000000", Some(zero)),
            ("oooo-oooo", Some(zero)),
            (" 0O0o 0000 ", Some(zero)),
            ("0000\t-\t0000", Some(zero)),
            ("1111-1111", Some(ones)),
            ("iIlL-1111", Some(ones)),
            (&shown.to_lowercase(), Some(t)),
            (&shown.replace('-', " "), Some(t)),
            ("", None),
            ("0000-000", None),
            ("0000-00000", None),
            ("UUUU-UUUU", None), // U is not in the alphabet
            ("0000-000!", None),
            ("0000-000٣", None),  // a digit, but not an ASCII one
            ("０000-0000", None), // fullwidth zero
            (&"-".repeat(40), None),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<RatingToken>().ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn every_bit_counts() {
        for i in 0..40 {
            let mut bytes = [0u8; 5];
            bytes[i / 8] = 0x80 >> (i % 8);
            let t = RatingToken::from_random(bytes);
            assert_ne!(t, RatingToken::from_random([0; 5]));
            assert_eq!(t.to_string().parse::<RatingToken>(), Ok(t), "bit {i}");
        }
    }

    #[test]
    fn the_digest_binds_the_token_to_its_request() {
        let a = DocId::new_v7(1_764_300_000_000, [1; 10]);
        let b = DocId::new_v7(1_764_300_000_000, [2; 10]);
        let t = RatingToken::from_random([9, 8, 7, 6, 5]);
        let key = t.digest(&a);
        assert!(is_rating_key(&key), "{key}");
        assert!(t.matches(&a, &key));
        assert!(!t.matches(&b, &key), "another request's key");
        assert!(!RatingToken::from_random([9, 8, 7, 6, 4]).matches(&a, &key));
        assert!(!t.matches(&a, &key[..63]));
        assert!(!t.matches(&a, ""));
        assert_ne!(t.digest(&a), t.digest(&b));
    }

    #[test]
    fn debug_hides_the_token() {
        let t = RatingToken::from_random([1, 2, 3, 4, 5]);
        assert!(!format!("{t:?}").contains(&t.to_string()[..4]));
    }
}
