//! Secrets in receiver configuration: given inline (`secret = "..."`) or, better, named by an
//! environment variable (`secret_env = "NAME"`). When both are given the environment wins, so
//! a deployment can override a file's value without editing it.

use std::fmt;

use serde::Deserialize;

use super::error::ReceiverError;

/// A password, token or key read from configuration. Its `Debug` never shows the value, so a
/// logged config does not leak it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretString(***)")
    }
}

/// Reads environment variables; a parameter so tests do not touch the process environment.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The secret of `field` for `receiver`: the variable named by `{field}_env` when it is set and
/// not empty, else the inline value. `Ok(None)` when neither is configured; an error when one is
/// configured but yields nothing.
pub(crate) fn resolve(
    receiver: &str,
    field: &str,
    inline: Option<&SecretString>,
    env_name: Option<&str>,
    env: EnvLookup<'_>,
) -> Result<Option<String>, ReceiverError> {
    if let Some(name) = env_name {
        let name = name.trim();
        if name.is_empty() {
            return Err(ReceiverError::invalid(
                receiver,
                format!("`{field}_env` is empty"),
            ));
        }
        match env(name).filter(|value| !value.trim().is_empty()) {
            Some(value) => return Ok(Some(value)),
            None if inline.is_none() => {
                return Err(ReceiverError::invalid(
                    receiver,
                    format!("environment variable {name} (from `{field}_env`) is not set or empty"),
                ))
            }
            None => tracing::warn!(
                receiver,
                variable = name,
                "environment variable not set, using the value in the file"
            ),
        }
    }
    match inline {
        Some(SecretString(value)) if value.trim().is_empty() => Err(ReceiverError::invalid(
            receiver,
            format!("`{field}` is empty"),
        )),
        Some(SecretString(value)) => Ok(Some(value.clone())),
        None => Ok(None),
    }
}

/// Like [`resolve`], for a secret the receiver cannot work without.
pub(crate) fn require(
    receiver: &str,
    field: &str,
    inline: Option<&SecretString>,
    env_name: Option<&str>,
    env: EnvLookup<'_>,
) -> Result<String, ReceiverError> {
    resolve(receiver, field, inline, env_name, env)?
        .ok_or_else(|| ReceiverError::invalid(receiver, format!("set `{field}` or `{field}_env`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with_token(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "from-env".to_owned())
    }

    #[test]
    fn the_environment_is_preferred_to_the_file() {
        let inline = SecretString::new("from-file");
        let value = require("r", "secret", Some(&inline), Some("TOKEN"), &env_with_token);
        assert_eq!(value.unwrap(), "from-env");
    }

    #[test]
    fn the_file_is_used_when_the_variable_is_unset() {
        let inline = SecretString::new("from-file");
        let value = require("r", "secret", Some(&inline), Some("OTHER"), &env_with_token);
        assert_eq!(value.unwrap(), "from-file");
    }

    #[test]
    fn a_missing_variable_without_fallback_is_named_in_the_error() {
        let error = require("hook", "secret", None, Some("OTHER"), &env_with_token).unwrap_err();
        assert_eq!(
            error.to_string(),
            "receiver `hook`: environment variable OTHER (from `secret_env`) is not set or empty"
        );
    }

    #[test]
    fn empty_or_absent_secrets_are_refused() {
        let empty = SecretString::new("  ");
        let error = require("hook", "secret", Some(&empty), None, &env_with_token).unwrap_err();
        assert_eq!(error.to_string(), "receiver `hook`: `secret` is empty");
        let error = require("hook", "secret", None, None, &env_with_token).unwrap_err();
        assert_eq!(
            error.to_string(),
            "receiver `hook`: set `secret` or `secret_env`"
        );
    }

    #[test]
    fn debug_output_hides_the_value() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "SecretString(***)");
    }
}
