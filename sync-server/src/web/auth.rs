//! Who is asking, as HTTP sees it: the bearer token of a request, and the
//! extractors that turn it into a [`User`], an [`Admin`] or a
//! [`KioskAuth`] (the checks themselves are `ops::auth`). Every request
//! re-reads the session or kiosk row: logging out and revoking a kiosk
//! take effect on the very next request.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
/// The bearer token of a request (`loket_node::token::bearer`: `Bearer`
/// in any case, a token of our shape, lowercased).
pub(crate) use loket_node::token::bearer;

use super::{ApiError, AppState, error};
use crate::ops::auth::{self, Admin, KioskAuth, KioskRefusal, Role, User};

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<User, ApiError> {
        let token = match bearer(&parts.headers) {
            Some(Ok(token)) => token,
            _ => return Err(error::unauthorized()),
        };
        auth::session_user(&st.db, &token).await?.ok_or_else(error::unauthorized)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Admin, ApiError> {
        let user = User::from_request_parts(parts, st).await?;
        user.require(Role::Admin)?;
        Ok(Admin(user))
    }
}

/// Refusals: no bearer → 401 `unauthorized`; a secret no kiosk holds → 401
/// `unknown_kiosk`; a revoked kiosk → 403 `kiosk_revoked`.
impl FromRequestParts<AppState> for KioskAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<KioskAuth, ApiError> {
        let token = match bearer(&parts.headers) {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "kredensial kiosk diperlukan / a kiosk credential is required",
                ));
            }
            Some(Err(())) => return Err(error::unknown_kiosk()),
            Some(Ok(token)) => token,
        };
        match auth::kiosk_by_secret(&st.db, &token).await {
            Ok(k) => Ok(k),
            Err(KioskRefusal::Unknown) => Err(error::unknown_kiosk()),
            Err(KioskRefusal::Revoked) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "kiosk_revoked",
                "kiosk ini sudah dicabut aksesnya; hubungi admin / this kiosk has been revoked; contact an admin",
            )),
            Err(KioskRefusal::Failed(e)) => Err(e.into()),
        }
    }
}
