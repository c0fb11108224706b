//! What every outbound caller shares (the alert receivers and the pull collectors): which
//! hosts they may reach, which answers are worth another attempt, the server's `Retry-After`,
//! and an error's causes said in one line.
//!
//! # Where the service may connect
//!
//! A URL from the configuration is an invitation to reach anything the service's machine can:
//! the cloud metadata service at 169.254.169.254, a database on loopback, the city's internal
//! network. So every outbound host must be on the `[outbound]` allow-list of
//! `config/ktxh.toml`, and every address it connects to must be a public address unless it is
//! listed itself:
//!
//! ```toml
//! [outbound]
//! allow_hosts = ["api.telegram.org", "*.haiquan.example.vn"]  # "*" = any host name
//! allow_cidrs = ["10.20.0.0/16"]                              # internal services
//! ```
//!
//! The addresses are checked when a connection is made, after DNS ([`GuardedResolver`]), so a
//! listed name that resolves to loopback is still refused, and a name whose answer changes
//! between a check and the connection cannot slip through. An IP address written in a URL is
//! checked as it stands. Redirects are followed only to the same host, and re-checked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Url;
use serde::Deserialize;

/// 5xx, 408 (request timeout) and 429 (too many requests) may succeed on retry; any other
/// failure will not (3xx included: a redirect that was not followed will not be next time).
pub fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// `Retry-After` in seconds, as servers send it when they want a pause.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// "outer: cause: root cause", skipping causes their parent already quotes: database and
/// hyper errors repeat their source's message in their own.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `[outbound]` of `config/ktxh.toml`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Host names (`api.telegram.org`), wildcards of a domain (`*.example.vn`), `*` for any
    /// name, or IP addresses.
    pub allow_hosts: Vec<String>,
    /// Address ranges (`10.20.0.0/16`, `127.0.0.1/32`, `fd00::/8`) that may be reached even
    /// though they are loopback, private or link-local.
    pub allow_cidrs: Vec<String>,
}

impl OutboundSettings {
    /// The checked policy; every entry that does not read is named by its key.
    pub fn policy(&self) -> Result<Policy, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut policy = Policy::default();
        for (index, entry) in self.allow_hosts.iter().enumerate() {
            let key = format!("outbound.allow_hosts[{index}]");
            let entry = entry.trim().to_ascii_lowercase();
            let bracketless = entry.trim_start_matches('[').trim_end_matches(']');
            // A fully qualified name's final dot changes nothing.
            let name = entry.trim_end_matches('.');
            if let Ok(ip) = bracketless.parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip.to_canonical()));
            } else if entry == "*" {
                policy.any_name = true;
            } else if let Some(domain) = entry.strip_prefix("*.") {
                let domain = domain.trim_end_matches('.');
                match valid_name(domain) {
                    true => policy.suffixes.push(format!(".{domain}")),
                    false => problems.push((key, format!("`{entry}` is not a domain wildcard"))),
                }
            } else if valid_name(name) {
                policy.names.push(name.to_owned());
            } else {
                problems.push((key, format!("`{entry}` is not a host name or IP address")));
            }
        }
        for (index, entry) in self.allow_cidrs.iter().enumerate() {
            let key = format!("outbound.allow_cidrs[{index}]");
            match entry.trim().parse::<IpNet>() {
                Ok(net) => policy.nets.push(canonical_net(net)),
                Err(_) => problems.push((key, format!("`{entry}` is not a CIDR like 10.0.0.0/8"))),
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }
}

/// A host name as DNS would take it: labels of letters, digits, `-` and `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// What kind of address an IP address is; anything but [`AddressClass::Public`] is refused
/// unless it is listed in `allow_cidrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Unspecified,
    Loopback,
    /// 169.254.0.0/16 and fe80::/10, where cloud metadata services answer.
    LinkLocal,
    /// RFC 1918, unique local fc00::/7, deprecated site-local fec0::/10.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    Multicast,
    /// Documentation, benchmarking, protocol assignments, 240.0.0.0/4, broadcast.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::LinkLocal => "link-local",
            Self::Private => "private",
            Self::Shared => "shared (carrier-grade NAT)",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                .map(|n| n.trunc())
                .unwrap_or(net),
            None => net,
        },
        other => other.trunc(),
    }
}

/// The class of an address. IPv6 forms that carry an IPv4 address (mapped `::ffff:0:0/96`,
/// compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that address,
/// so `::ffff:169.254.169.254` is link-local.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip.to_canonical() {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (10, _, _) | (192, 168, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::Shared,
        (224..=239, _, _) => AddressClass::Multicast,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Reserved,
        (198, 18..=19, _) | (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        classify_v4(Ipv4Addr::new(a, b, c, d))
    };
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    match segments {
        [0, 0, 0, 0, 0, 0, high, low] => embedded_v4(high, low),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => embedded_v4(high, low),
        [0x2002, high, low, ..] => embedded_v4(high, low),
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => AddressClass::Private,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddressClass::Private,
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::Multicast,
        [0x2001, 0x0db8, ..] => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// Why an outbound connection was refused. Says hosts and addresses, never a whole URL (its
/// path or query may hold a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL has no host")]
    NoHost,
    #[error("host `{0}` is not in outbound.allow_hosts")]
    HostNotListed(String),
    #[error("{address} is a {class} address; list it in outbound.allow_cidrs to allow it")]
    Address {
        address: IpAddr,
        class: AddressClass,
    },
    #[error("`{host}` resolves only to refused addresses ({reasons})")]
    Resolved { host: String, reasons: String },
    #[error("a redirect from `{from}` to another origin (`{to}`) is not followed")]
    RedirectElsewhere { from: String, to: String },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// Whether `error` or one of its causes is a [`Refusal`]: no retry will change the answer.
pub fn is_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<Refusal>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Redirects followed at most, as browsers do.
const MAX_REDIRECTS: usize = 10;

/// The checked `[outbound]` allow-list.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    names: Vec<String>,
    /// `.example.vn` for `*.example.vn`.
    suffixes: Vec<String>,
    any_name: bool,
    nets: Vec<IpNet>,
}

impl Policy {
    /// Whether `ip` may be connected to: public, or listed.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        if self.nets.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match classify(ip) {
            AddressClass::Public => Ok(()),
            class => Err(Refusal::Address { address: ip, class }),
        }
    }

    fn name_listed(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.any_name
            || self.names.contains(&name)
            || self.suffixes.iter().any(|suffix| name.ends_with(suffix))
    }

    /// Whether a host as a URL names it may be reached: a listed name (whose addresses are
    /// checked again when connecting), or an address that is listed, or public under `*`.
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refusal> {
        let ip = match host {
            url::Host::Domain(name) => {
                // RFC 6761: these never leave the machine, whatever DNS says.
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    return self.check_address(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                if self.name_listed(&name) {
                    return Ok(());
                }
                return Err(Refusal::HostNotListed(name));
            }
            url::Host::Ipv4(v4) => IpAddr::V4(*v4),
            url::Host::Ipv6(v6) => IpAddr::V6(*v6),
        };
        let ip = ip.to_canonical();
        if self.nets.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        self.check_address(ip)?;
        if self.any_name {
            Ok(())
        } else {
            Err(Refusal::HostNotListed(ip.to_string()))
        }
    }

    /// [`Policy::check_host`] for a URL's host.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let host = url.host().ok_or(Refusal::NoHost)?;
        self.check_host(&host)
    }

    /// [`Policy::check_host`] for a host written alone, as an SMTP server is.
    pub fn check_host_str(&self, host: &str) -> Result<(), Refusal> {
        let bracketless = host.trim().trim_start_matches('[').trim_end_matches(']');
        match bracketless.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => self.check_host(&url::Host::Ipv4(v4)),
            Ok(IpAddr::V6(v6)) => self.check_host(&url::Host::Ipv6(v6)),
            Err(_) => self.check_host(&url::Host::Domain(bracketless)),
        }
    }

    /// The permitted addresses `host` resolves to, now; for clients that cannot take a
    /// resolver (SMTP), which then connect to exactly these.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        self.check_host_str(host)?;
        let bracketless = host.trim().trim_start_matches('[').trim_end_matches(']');
        let found = tokio::net::lookup_host((bracketless, port))
            .await
            .map_err(|error| ResolveError::Lookup(error.to_string()))?;
        Ok(self.permitted(host, found)?)
    }

    fn permitted(
        &self,
        host: &str,
        found: impl Iterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let mut kept = Vec::new();
        let mut reasons = Vec::new();
        for address in found {
            match self.check_address(address.ip()) {
                Ok(()) => kept.push(address),
                Err(_) => reasons.push(format!("{}: {}", address.ip(), classify(address.ip()))),
            }
        }
        if kept.is_empty() {
            if reasons.is_empty() {
                reasons.push("no address".into());
            }
            return Err(Refusal::Resolved {
                host: host.to_owned(),
                reasons: reasons.join(", "),
            });
        }
        Ok(kept)
    }

    /// A client builder that connects only where this policy allows: its resolver drops
    /// refused addresses, and redirects go only to the same host, checked again.
    pub fn client_builder(self: &Arc<Self>) -> reqwest::ClientBuilder {
        let policy = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refusal::TooManyRedirects(MAX_REDIRECTS));
            }
            // The origin, not only the host: a redirect to another port or from https to
            // http would carry the feed's own headers (API keys) somewhere else, or in clear.
            let from = attempt
                .previous()
                .first()
                .map(|url| url.origin().ascii_serialization())
                .unwrap_or_default();
            let to = attempt.url().origin().ascii_serialization();
            if !from.eq_ignore_ascii_case(&to) {
                return attempt.error(Refusal::RedirectElsewhere { from, to });
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        reqwest::Client::builder()
            // A proxy from the environment (HTTPS_PROXY, ALL_PROXY) would resolve the target
            // itself, out of the resolver's sight: outbound requests go direct.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: self.clone(),
            }))
            .redirect(redirects)
    }
}

/// Why [`Policy::resolve`] found nowhere to connect.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("DNS lookup failed: {0}")]
    Lookup(String),
}

/// The resolver of every outbound HTTP client: the system's answer, less the addresses the
/// policy refuses. Called for each new connection, so the check is the connection's own.
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Redirects and proxies bring names of their own: the name is checked too.
            policy.check_host(&url::Host::Domain(&host))?;
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = policy.permitted(&host, found)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
