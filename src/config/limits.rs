//! `[limits]`: request rates, failed-authentication throttling, timeouts, the connection caps
//! (in all and per client IP), websockets and websocket tickets per token and the database
//! pool's acquire timeout.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// Requests per second one token may make, after its burst is spent.
    pub token_per_second: u32,
    /// Requests one token may make at once before the per-second rate applies.
    pub token_burst: u32,
    /// Requests per second from one client IP (an IPv6 client is its /64).
    pub ip_per_second: u32,
    pub ip_burst: u32,
    /// Failed authentications one client IP may make per minute; beyond that its requests
    /// carrying a credential are answered 429 without the token being looked up.
    pub auth_failures_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed, e.g. `["127.0.0.1/32"]`; from any other
    /// peer the header is ignored and the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    pub header_read_timeout_seconds: u64,
    /// Time a client has to send a whole request body, counted from the request's arrival.
    pub body_timeout_seconds: u64,
    /// Time from a request's arrival to its answer's headers; longer gets 503.
    pub handler_timeout_seconds: u64,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one client IP (an IPv6 client is its /64) may hold open; a further one is
    /// closed as soon as it is accepted. Trusted proxies are exempt: they carry many clients.
    pub max_connections_per_ip: usize,
    /// Websockets one token may hold open; beyond it the upgrade is answered 429.
    pub max_websockets_per_token: usize,
    /// Time a write to a client may wait for the client to take bytes; a client that stops
    /// reading loses its connection after it.
    pub write_timeout_seconds: u64,
    /// One-time websocket tickets one token may hold outstanding.
    pub ws_tickets_per_token: usize,
    /// How long a request waits for a database connection before it is answered 503.
    pub db_acquire_timeout_seconds: u64,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            token_per_second: 200,
            token_burst: 400,
            ip_per_second: 500,
            ip_burst: 1000,
            auth_failures_per_minute: 10,
            trusted_proxies: Vec::new(),
            header_read_timeout_seconds: 15,
            body_timeout_seconds: 30,
            handler_timeout_seconds: 60,
            max_connections: 4096,
            max_connections_per_ip: 256,
            max_websockets_per_token: 50,
            write_timeout_seconds: 60,
            ws_tickets_per_token: 100,
            db_acquire_timeout_seconds: 2,
        }
    }
}

impl LimitsSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds)
    }

    pub fn handler_timeout(&self) -> Duration {
        Duration::from_secs(self.handler_timeout_seconds)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_seconds)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.db_acquire_timeout_seconds)
    }

    /// Every problem as `(key, message)`, keys relative to the file.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("limits.token_per_second", self.token_per_second),
            ("limits.token_burst", self.token_burst),
            ("limits.ip_per_second", self.ip_per_second),
            ("limits.ip_burst", self.ip_burst),
            (
                "limits.auth_failures_per_minute",
                self.auth_failures_per_minute,
            ),
        ] {
            if value == 0 {
                problems.push((key, "must be at least 1".to_owned()));
            }
        }
        for (key, value) in [
            (
                "limits.header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            ("limits.body_timeout_seconds", self.body_timeout_seconds),
            (
                "limits.handler_timeout_seconds",
                self.handler_timeout_seconds,
            ),
            (
                "limits.db_acquire_timeout_seconds",
                self.db_acquire_timeout_seconds,
            ),
            ("limits.write_timeout_seconds", self.write_timeout_seconds),
        ] {
            if value == 0 {
                problems.push((key, "must be at least 1".to_owned()));
            }
        }
        // The body's deadline must fall first: a slow upload is the client's fault (408), not
        // the service's (503).
        if self.handler_timeout_seconds <= self.body_timeout_seconds {
            problems.push((
                "limits.handler_timeout_seconds",
                format!(
                    "must be longer than limits.body_timeout_seconds ({})",
                    self.body_timeout_seconds
                ),
            ));
        }
        for (key, value) in [
            ("limits.max_connections", self.max_connections),
            ("limits.max_connections_per_ip", self.max_connections_per_ip),
            (
                "limits.max_websockets_per_token",
                self.max_websockets_per_token,
            ),
            ("limits.ws_tickets_per_token", self.ws_tickets_per_token),
        ] {
            if value == 0 {
                problems.push((key, "must be at least 1".to_owned()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(LimitsSettings::default().problems(), Vec::new());
    }

    #[test]
    fn a_handler_timeout_not_longer_than_the_body_timeout_is_refused() {
        let limits = LimitsSettings {
            body_timeout_seconds: 30,
            handler_timeout_seconds: 30,
            ..LimitsSettings::default()
        };
        let keys: Vec<_> = limits.problems().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["limits.handler_timeout_seconds"]);
    }

    #[test]
    fn trusted_proxies_are_ranges_and_may_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let env = |value: &str| [("KTXH__LIMITS__TRUSTED_PROXIES".to_owned(), value.to_owned())];
        let settings =
            crate::config::Settings::load(dir.path(), env(r#"["10.0.0.0/8", "::1/128"]"#)).unwrap();
        let proxies = &settings.limits.trusted_proxies;
        assert!(proxies[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert!(proxies[1].contains(&"::1".parse::<std::net::IpAddr>().unwrap()));
        let refused = crate::config::Settings::load(dir.path(), env(r#"["proxy.local"]"#));
        let text = refused.unwrap_err().to_string();
        assert!(text.contains("limits.trusted_proxies"), "{text}");
    }

    #[test]
    fn zero_rates_and_caps_are_refused() {
        let limits = LimitsSettings {
            token_per_second: 0,
            max_connections: 0,
            ..LimitsSettings::default()
        };
        let keys: Vec<_> = limits.problems().into_iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["limits.token_per_second", "limits.max_connections"]);
    }
}
