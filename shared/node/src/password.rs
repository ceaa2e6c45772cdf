//! Passwords: argon2id PHC strings with OWASP's baseline parameters
//! (19 MiB, 2 passes, 1 lane): ~30 ms on a kiosk's small CPU, and the same
//! on the server, so a roster hash made anywhere verifies everywhere.
//!
//! Invariants:
//! - Every hash this module makes is `$argon2id$v=19$m=19456,t=2,p=1$…`
//!   with a fresh 16-byte salt.
//! - [`verify_password`] costs one verification whether or not the account
//!   exists, so the time of an answer does not tell which names exist.
//! - Verification reads the parameters from the stored string, so raising
//!   them later still accepts older hashes.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&crate::random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    Ok(hash.to_string())
}

/// A hash of nothing anyone knows, checked when the account is unknown so
/// the answer takes as long as for a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("loket-dummy-password").expect("hashing a constant works"));

/// Checks a password against a PHC hash; `None` means "no such account"
/// and still costs one verification (then always `false`). A stored hash
/// that is not a PHC string is logged and refuses the login.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(hash) else {
        tracing::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    argon2().verify_password(password.as_bytes(), &parsed).is_ok() && known
}

/// Whether `s` is an argon2id PHC hash (what a roster file may carry).
pub fn is_argon2id_hash(s: &str) -> bool {
    PasswordHash::new(s).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password("rahasia-1234").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(is_argon2id_hash(&h));
        assert!(verify_password("rahasia-1234", Some(&h)));
        assert!(!verify_password("rahasia-1235", Some(&h)));
        assert!(!verify_password("loket-dummy-password", None), "the dummy never logs anyone in");
        assert!(!verify_password("x", Some("not a hash")));
        assert_ne!(hash_password("rahasia-1234").unwrap(), h, "a fresh salt every time");
    }

    #[test]
    fn only_argon2id_counts_as_a_roster_hash() {
        assert!(!is_argon2id_hash("rahasia-1234"));
        assert!(!is_argon2id_hash(""));
        // A valid PHC string of another algorithm (argon2i).
        assert!(!is_argon2id_hash(
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo"
        ));
    }

    /// A hash made with other parameters (an older or stronger setting)
    /// still verifies: the parameters are read from the string.
    #[test]
    fn hashes_with_other_parameters_still_verify() {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let h = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"rahasia-1234", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("rahasia-1234", Some(&h)));
    }
}
