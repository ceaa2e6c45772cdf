//! Staff credentials: argon2id password hashes (from the roster) and
//! session tokens. A token is 32 random bytes shown to the client once; the
//! store keeps only its SHA-256, so a copied database holds no usable token.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

use crate::store::random_bytes;

/// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~30 ms here, and
/// affordable on a kiosk's small CPU.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    Ok(hash.to_string())
}

/// A hash of nothing anyone knows, verified when the staff id is unknown
/// so that the answer takes as long as for a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("loket-dummy-password").expect("hashing a constant works"));

/// Checks a password against a PHC hash; `None` means "no such user" and
/// still costs one verification.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(hash) else {
        tracing::error!("a roster password hash is not a valid PHC string");
        return false;
    };
    argon2().verify_password(password.as_bytes(), &parsed).is_ok() && known
}

/// Checks that a roster entry holds an argon2id PHC hash.
pub fn is_argon2id_hash(s: &str) -> bool {
    PasswordHash::new(s).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// A new session token (hex) and the hash to store.
pub fn new_token() -> (String, String) {
    let token = hex::encode(random_bytes::<32>());
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password("rahasia-123").unwrap();
        assert!(is_argon2id_hash(&h));
        assert!(verify_password("rahasia-123", Some(&h)));
        assert!(!verify_password("rahasia-124", Some(&h)));
        assert!(!verify_password("loket-dummy-password", None));
        assert!(!verify_password("x", Some("not a hash")));
    }
}
