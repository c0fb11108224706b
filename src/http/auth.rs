//! The `Caller` extractor: a verified bearer token, or a 401; and `CompatCaller` for the DHIS2
//! and InfluxDB compatibility endpoints, whose clients send the same token in their own schemes.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use chrono::Utc;

use super::error::ApiError;
use super::AppState;
use crate::auth::{self, Principal, Role};
use crate::domain::Code;

/// Query parameters that would carry a credential in a URL, where proxies and logs keep it.
const CREDENTIAL_PARAMS: &[&str] = &["token", "access_token", "api_key", "apikey", "key"];

/// Further query parameters that carry a password on the compatibility endpoints: InfluxDB 1.x
/// clients may put their credentials in `u` and `p`.
const COMPAT_CREDENTIAL_PARAMS: &[&str] = &["p", "password"];

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
        super::limits::credential_accepted(&parts.extensions);
        state.limits.check_token(&principal.token_id)?;
        Ok(Caller(principal))
    }
}

/// Refuses a query string that carries a credential, where proxies and logs would keep it.
pub fn refuse_credentials_in_query(query: Option<&str>) -> Result<(), ApiError> {
    refuse_params(query, CREDENTIAL_PARAMS)
}

fn refuse_params(query: Option<&str>, names: &[&str]) -> Result<(), ApiError> {
    let carries_credential = query.is_some_and(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|name| names.contains(&name.to_ascii_lowercase().as_str()))
    });
    if carries_credential {
        Err(ApiError::TokenInUrl)
    } else {
        Ok(())
    }
}

/// The authenticated caller of a compatibility endpoint (`POST /api/dataValueSets`,
/// `POST /api/v2/write`, `POST /write`).
///
/// Their clients cannot be told to send `Bearer`: DHIS2 clients send a personal access token as
/// `ApiToken <token>` or use Basic auth, InfluxDB clients send `Token <token>` (v2) or Basic auth
/// (v1). Every scheme carries one of our own tokens, and a Basic password is that token (the
/// username is ignored), so scoping is exactly that of `/api/v1/observations`.
pub struct CompatCaller(pub Principal);

impl FromRequestParts<AppState> for CompatCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        refuse_credentials_in_query(parts.uri.query())?;
        refuse_params(parts.uri.query(), COMPAT_CREDENTIAL_PARAMS)?;
        let presented = compat_token(&parts.headers)?.ok_or(ApiError::MissingToken)?;
        let principal = verify(state, &presented).await?;
        super::limits::credential_accepted(&parts.extensions);
        state.limits.check_token(&principal.token_id)?;
        Ok(CompatCaller(principal))
    }
}

/// The token of an `Authorization` header in any scheme the compatibility endpoints accept:
/// `Bearer`, `Token` (InfluxDB), `ApiToken` (DHIS2) or `Basic` with the token as password.
///
/// `Ok(None)` when there is no usable header; an error when Basic credentials are not
/// well-formed, which is a wrong credential rather than a missing one.
pub fn compat_token(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    let credentials = credentials.trim();
    if ["bearer", "token", "apitoken"]
        .iter()
        .any(|known| scheme.eq_ignore_ascii_case(known))
    {
        return Ok(Some(credentials.to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .map_err(|_| ApiError::InvalidToken)?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::InvalidToken)?;
    // RFC 7617: the user-id cannot contain a colon, so the password is everything after the first.
    let (_user, password) = text.split_once(':').ok_or(ApiError::InvalidToken)?;
    Ok(Some(password.to_owned()))
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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn presented(value: &str) -> Result<Option<String>, &'static str> {
        compat_token(&authorization(value)).map_err(|e| e.code())
    }

    #[test]
    fn every_compatibility_scheme_carries_the_token() {
        for value in [
            "Bearer ktxh_a_b",
            "Token ktxh_a_b",
            "token   ktxh_a_b ",
            "ApiToken ktxh_a_b",
            // "feed:ktxh_a_b", as curl -u and the InfluxDB 1.x clients send it
            "Basic ZmVlZDprdHhoX2FfYg==",
        ] {
            assert_eq!(presented(value), Ok(Some("ktxh_a_b".into())), "{value}");
        }
    }

    #[test]
    fn a_basic_password_may_contain_colons_and_the_username_is_ignored() {
        // ":a:b" — empty username, password "a:b"
        assert_eq!(presented("Basic OmE6Yg=="), Ok(Some("a:b".into())));
    }

    #[test]
    fn unknown_schemes_are_missing_and_broken_basic_credentials_are_invalid() {
        assert_eq!(
            compat_token(&HeaderMap::new()).map_err(|e| e.code()),
            Ok(None)
        );
        assert_eq!(presented("Digest abc"), Ok(None));
        assert_eq!(presented("ktxh_a_b"), Ok(None));
        assert_eq!(presented("Basic !!!"), Err("invalid_token"));
        // "no-colon"
        assert_eq!(presented("Basic bm8tY29sb24="), Err("invalid_token"));
    }

    #[test]
    fn influx_v1_passwords_in_the_query_are_refused_on_compatibility_endpoints() {
        assert!(refuse_params(Some("db=x&u=feed&p=secret"), COMPAT_CREDENTIAL_PARAMS).is_err());
        assert!(refuse_params(Some("db=x&precision=s"), COMPAT_CREDENTIAL_PARAMS).is_ok());
        assert!(refuse_credentials_in_query(Some("bucket=b&token=x")).is_err());
    }
}
