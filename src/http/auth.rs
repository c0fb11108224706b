//! The `Caller` extractor: a verified bearer token, or a 401.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use chrono::Utc;

use super::error::ApiError;
use super::AppState;
use crate::auth::{self, Principal, Role};
use crate::domain::Code;

/// Query parameters that would carry a credential in a URL, where proxies and logs keep it.
const CREDENTIAL_PARAMS: &[&str] = &["token", "access_token", "api_key", "apikey", "key"];

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this action needs an admin token".into(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        refuse_credentials_in_query(parts.uri.query())?;
        let presented = bearer(&parts.headers).ok_or(ApiError::MissingToken)?;
        let principal = verify(state, presented).await?;
        Ok(Caller(principal))
    }
}

/// Refuses a query string that carries a credential, where proxies and logs would keep it.
pub fn refuse_credentials_in_query(query: Option<&str>) -> Result<(), ApiError> {
    let carries_credential = query.is_some_and(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|name| CREDENTIAL_PARAMS.contains(&name.to_ascii_lowercase().as_str()))
    });
    if carries_credential {
        Err(ApiError::TokenInUrl)
    } else {
        Ok(())
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// Checks a presented token against the store; any failure is the same 401 so that callers
/// cannot tell unknown from revoked tokens.
pub async fn verify(state: &AppState, presented: &str) -> Result<Principal, ApiError> {
    let id = auth::token_id(presented).ok_or(ApiError::InvalidToken)?;
    let record = state.store.token(id).await?.ok_or(ApiError::InvalidToken)?;
    if !auth::digest_matches(presented, &record.digest) || !record.is_usable(Utc::now()) {
        return Err(ApiError::InvalidToken);
    }
    let department = match record.department.as_deref() {
        Some(raw) => Some(Code::parse(raw).map_err(|_| ApiError::InvalidToken)?),
        None => None,
    };
    Ok(Principal {
        token_id: record.id,
        name: record.name,
        role: record.role,
        department,
    })
}
