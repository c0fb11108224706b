use super::*;

#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
struct Outer(#[source] Inner);

#[derive(Debug, thiserror::Error)]
#[error("file is not a database")]
struct Inner;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the store")]
struct Context(#[source] Outer);

#[test]
fn each_cause_is_said_once() {
    assert_eq!(
        causes(&Context(Outer(Inner))),
        "cannot open the store: database error: file is not a database"
    );
}

#[test]
fn server_errors_timeouts_and_rate_limits_are_retryable() {
    for status in [408, 429, 500, 503, 599] {
        assert!(status_is_retryable(status), "{status}");
    }
    for status in [301, 400, 401, 404, 410, 422] {
        assert!(!status_is_retryable(status), "{status}");
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect(text)
}

#[test]
fn addresses_are_classified_by_their_range_and_ipv6_forms_by_the_ipv4_they_carry() {
    use AddressClass::*;
    let table = [
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("127.0.0.1", Loopback),
        ("127.255.0.9", Loopback),
        ("169.254.169.254", LinkLocal),
        ("10.0.0.1", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.32.0.1", Public),
        ("192.168.1.1", Private),
        ("100.64.0.1", Shared),
        ("224.0.0.1", Multicast),
        ("192.0.2.7", Reserved),
        ("198.18.0.1", Reserved),
        ("240.0.0.1", Reserved),
        ("255.255.255.255", Reserved),
        ("8.8.8.8", Public),
        ("203.113.131.1", Public),
        ("::", Unspecified),
        ("::1", Loopback),
        ("fe80::1", LinkLocal),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("fec0::1", Private),
        ("ff02::1", Multicast),
        ("2001:db8::1", Reserved),
        ("2001:4860:4860::8888", Public),
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:169.254.169.254", LinkLocal),
        ("::ffff:10.1.2.3", Private),
        ("::ffff:8.8.8.8", Public),
        ("::127.0.0.1", Loopback),
        ("64:ff9b::a9fe:a9fe", LinkLocal),
        ("2002:7f00:1::", Loopback),
        ("2002:0808:0808::", Public),
    ];
    for (address, class) in table {
        assert_eq!(classify(ip(address)), class, "{address}");
    }
}

fn policy(hosts: &[&str], cidrs: &[&str]) -> Policy {
    OutboundSettings {
        allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        allow_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
    }
    .policy()
    .expect("a valid allow-list")
}

fn url(text: &str) -> Url {
    Url::parse(text).expect(text)
}

#[test]
fn nothing_is_reached_until_it_is_listed() {
    let empty = Policy::default();
    for target in [
        "https://api.telegram.org/",
        "http://8.8.8.8/",
        "http://127.0.0.1:9093/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/",
    ] {
        assert!(empty.check_url(&url(target)).is_err(), "{target}");
    }
}

#[test]
fn listed_names_wildcards_and_star_admit_names_but_never_special_addresses() {
    let listed = policy(&["api.telegram.org", "*.haiquan.example.vn"], &[]);
    assert_eq!(
        listed.check_url(&url("https://API.Telegram.org./bot")),
        Ok(())
    );
    assert_eq!(
        listed.check_url(&url("https://thongke.haiquan.example.vn/x")),
        Ok(())
    );
    assert_eq!(
        listed.check_url(&url("https://haiquan.example.vn.evil.example/x")),
        Err(Refusal::HostNotListed(
            "haiquan.example.vn.evil.example".into()
        ))
    );
    assert!(listed.check_url(&url("http://8.8.8.8/")).is_err());

    let any = policy(&["*"], &[]);
    assert_eq!(any.check_url(&url("https://example.org/")), Ok(()));
    assert_eq!(any.check_url(&url("http://8.8.8.8/")), Ok(()));
    for special in [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:7f00:1]/",
        "http://10.0.0.8/",
        "http://0.0.0.0/",
        "http://localhost/",
        "http://metrics.localhost/",
    ] {
        assert!(
            matches!(any.check_url(&url(special)), Err(Refusal::Address { .. })),
            "{special}"
        );
    }
}

#[test]
fn special_addresses_pass_only_when_their_range_is_listed() {
    let loopback = policy(&["127.0.0.1"], &["10.20.0.0/16", "::ffff:192.168.5.0/120"]);
    assert_eq!(loopback.check_url(&url("http://127.0.0.1:9/")), Ok(()));
    assert_eq!(
        loopback.check_url(&url("http://[::ffff:127.0.0.1]/")),
        Ok(())
    );
    assert_eq!(loopback.check_url(&url("http://localhost/")), Ok(()));
    assert_eq!(loopback.check_url(&url("http://10.20.3.4/")), Ok(()));
    assert_eq!(loopback.check_url(&url("http://192.168.5.9/")), Ok(()));
    assert!(loopback.check_url(&url("http://127.0.0.2/")).is_err());
    assert!(loopback.check_url(&url("http://10.21.0.1/")).is_err());
    let refused = loopback
        .check_url(&url("http://169.254.169.254/"))
        .expect_err("metadata");
    assert_eq!(
        refused.to_string(),
        "169.254.169.254 is a link-local address; list it in outbound.allow_cidrs to allow it"
    );
}

#[test]
fn resolved_addresses_are_filtered_and_a_name_resolving_only_to_loopback_is_refused() {
    let names = policy(&["*"], &[]);
    let socket = |text: &str| SocketAddr::new(ip(text), 443);
    let mixed = [socket("127.0.0.1"), socket("93.184.216.34")];
    assert_eq!(
        names.permitted("example.org", mixed.into_iter()),
        Ok(vec![socket("93.184.216.34")])
    );
    let refused = names
        .permitted(
            "rebind.example",
            [socket("127.0.0.1"), socket("::1")].into_iter(),
        )
        .expect_err("loopback only");
    assert_eq!(
        refused.to_string(),
        "`rebind.example` resolves only to refused addresses (127.0.0.1: loopback, ::1: loopback)"
    );
}

#[test]
fn entries_that_do_not_read_are_named_by_their_key() {
    let problems = OutboundSettings {
        allow_hosts: vec!["ok.example".into(), "not a host".into(), "*.".into()],
        allow_cidrs: vec!["10.0.0.0/8".into(), "10.0.0.0/33".into()],
    }
    .policy()
    .expect_err("bad entries");
    let keys: Vec<&str> = problems.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "outbound.allow_hosts[1]",
            "outbound.allow_hosts[2]",
            "outbound.allow_cidrs[1]"
        ]
    );
}

#[test]
fn a_refusal_is_found_among_the_causes() {
    let wrapped = Context(Outer(Inner));
    assert!(!is_refusal(&wrapped));
    assert!(is_refusal(&Refusal::NoHost));
}
