//! Where webhooks may be delivered: the SSRF policy of SPEC §7, as pure functions.
//!
//! A webhook URL is chosen by an organization's admin, and sealbox then makes requests to
//! it from inside the operator's network. Without a policy that would let anyone with
//! `webhooks:write` probe the appliance itself (`127.0.0.1`), the LAN, or the cloud's
//! metadata service, which hands out credentials. So:
//!
//! - addresses that only make sense inside the operator's network (loopback, link-local,
//!   private, shared CGNAT space and other non-global special-purpose ranges) are refused
//!   unless `webhooks.allowed_networks` lists them, because a homelab or an air-gapped
//!   site legitimately delivers to its own LAN;
//! - addresses no webhook should ever reach (cloud metadata services, unspecified,
//!   `0.0.0.0/8`, broadcast, multicast) are refused even if a listed network contains
//!   them;
//! - IPv6 addresses that carry an IPv4 address (`::ffff:a.b.c.d`, `::a.b.c.d`, NAT64
//!   `64:ff9b::/96`, 6to4 `2002::/16`) are judged as that IPv4 address, so the IPv4 rules
//!   cannot be sidestepped by spelling an address differently.
//!
//! This module decides; it does no I/O. A URL whose host is an address literal is checked
//! when the webhook is saved ([`TargetPolicy::check_url`], answered with a 422); a host
//! name is resolved at each delivery by the sender, which checks every resolved address
//! with [`TargetPolicy::check_ip`] and connects only to those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// The longest webhook URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Cloud metadata services: they answer unauthenticated requests from inside an instance
/// with credentials, so they are never a webhook target, whatever is allowed.
pub const METADATA_ADDRESSES: &[IpAddr] = &[
    // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Hetzner... (IPv4)
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS ECS task metadata and credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // AWS instance metadata over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    // Alibaba Cloud.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Azure WireServer (host agent; a public address only reachable from Azure VMs).
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
];

/// What kind of non-public address an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`: this machine.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`, `fec0::/10`.
    Private,
    /// `100.64.0.0/10`: carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// Other special-purpose ranges that are not globally reachable: documentation,
    /// benchmarking, IETF protocol assignments, the reserved `240.0.0.0/4`, Teredo, ORCHID,
    /// discard-only, local-use NAT64.
    Reserved,
    /// [`METADATA_ADDRESSES`]. Always refused.
    CloudMetadata,
    /// `0.0.0.0`, `::`: connecting to it reaches this machine. Always refused.
    Unspecified,
    /// `0.0.0.0/8`: "this network". Always refused.
    ThisNetwork,
    /// `255.255.255.255`. Always refused.
    Broadcast,
    /// `224.0.0.0/4`, `ff00::/8`. Always refused.
    Multicast,
}

impl AddressClass {
    /// Whether no configuration can make this a webhook target.
    pub fn always_refused(self) -> bool {
        matches!(
            self,
            Self::CloudMetadata
                | Self::Unspecified
                | Self::ThisNetwork
                | Self::Broadcast
                | Self::Multicast
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::LinkLocal => "a link-local address",
            Self::Private => "a private address",
            Self::SharedAddressSpace => "a carrier-grade NAT address (100.64.0.0/10)",
            Self::Reserved => "a reserved, non-public address",
            Self::CloudMetadata => "a cloud metadata service address",
            Self::Unspecified => "the unspecified address",
            Self::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Self::Broadcast => "the broadcast address",
            Self::Multicast => "a multicast address",
        }
    }
}

/// Why a URL or an address is not a webhook target. Messages are written for the caller
/// (a 422 `details` entry); they name the address or scheme at fault, never the URL's
/// path or query, which may carry a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("the URL must start with https:// or http://, not {0}://")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL must not contain a user name or password (user:pass@host)")]
    Userinfo,
    #[error("the URL's port 0 is not a port a server listens on")]
    PortZero,
    #[error("{}", forbidden_message(.address, .class))]
    Forbidden {
        /// The address as given or resolved.
        address: IpAddr,
        class: AddressClass,
    },
}

fn forbidden_message(address: &IpAddr, class: &AddressClass) -> String {
    let (address, class) = (*address, *class);
    let shown = match embedded_ipv4(address) {
        Some(v4) => format!("{address} (that is {v4})"),
        None => address.to_string(),
    };
    if class.always_refused() {
        format!(
            "{shown} is {} and is never a webhook target",
            class.describe()
        )
    } else {
        format!(
            "{shown} is {}; webhooks may reach it only if the server's \
             webhooks.allowed_networks lists it",
            class.describe()
        )
    }
}

/// The host of a checked webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// An address literal, already checked.
    Ip(IpAddr),
    /// A name, to resolve and check at each delivery.
    Name(String),
}

/// A webhook URL that passed [`TargetPolicy::check_url`]. `Debug` shows only its origin:
/// the path and query of a webhook URL often carry a token.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
    host: TargetHost,
}

impl TargetUrl {
    /// The parsed URL, as it will be requested.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL as text (normalized by the WHATWG URL parser; store this form).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn host(&self) -> &TargetHost {
        &self.host
    }

    pub fn into_url(self) -> Url {
        self.url
    }
}

impl std::fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetUrl")
            .field("origin", &self.url.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}

/// The origin (`scheme://host[:port]`) of a stored webhook URL: all that audit entries,
/// events and notifications show of it, since a webhook URL's path, query and user info
/// often carry the receiver's token. Empty if `url` does not parse (it always does once
/// stored).
pub fn url_origin(url: &str) -> String {
    Url::parse(url)
        .map(|parsed| parsed.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The SSRF policy: which addresses webhooks may reach.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// A policy that also allows `allowed_networks` (`webhooks.allowed_networks`): listed
    /// loopback, link-local, private, CGNAT or reserved addresses become targets; the
    /// always-refused classes stay refused.
    pub fn new(allowed_networks: Vec<IpNet>) -> Self {
        Self {
            allowed: allowed_networks,
        }
    }

    /// Whether a webhook may connect to `address`.
    pub fn check_ip(&self, address: IpAddr) -> Result<(), TargetError> {
        let judged = embedded_ipv4(address).map_or(address, IpAddr::V4);
        let Some(class) = classify(judged) else {
            return Ok(());
        };
        let listed = || {
            self.allowed
                .iter()
                .any(|net| net.contains(&address) || net.contains(&judged))
        };
        if class.always_refused() || !listed() {
            return Err(TargetError::Forbidden { address, class });
        }
        Ok(())
    }

    /// Checks a webhook URL as given by the caller: `https` or `http`, a host, no
    /// credentials, at most [`MAX_URL_LEN`] bytes; an address literal host is checked now
    /// (IPv4 in any spelling the URL standard accepts, such as `2130706433` or `0x7f.1`, is
    /// normalized first). A host name is accepted here and checked when it is resolved.
    pub fn check_url(&self, text: &str) -> Result<TargetUrl, TargetError> {
        if text.len() > MAX_URL_LEN {
            return Err(TargetError::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(TargetError::Invalid)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(TargetError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Userinfo);
        }
        if url.port() == Some(0) {
            return Err(TargetError::PortZero);
        }
        let host = match url.host() {
            None | Some(Host::Domain("")) => return Err(TargetError::NoHost),
            Some(Host::Domain(name)) => TargetHost::Name(name.to_owned()),
            Some(Host::Ipv4(v4)) => TargetHost::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => TargetHost::Ip(IpAddr::V6(v6)),
        };
        if let TargetHost::Ip(address) = host {
            self.check_ip(address)?;
        }
        Ok(TargetUrl { url, host })
    }
}

/// The IPv4 address an IPv6 address stands for, if it carries one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated, but `::` and `::1` are
/// themselves), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_ipv4(address: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = address else {
        return None;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let last32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(last32);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last32);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    match Ipv4Net::new(Ipv4Addr::new(a, b, c, d), prefix) {
        Ok(net) => net,
        Err(_) => panic!("a valid prefix length"),
    }
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    match Ipv6Net::new(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix) {
        Ok(net) => net,
        Err(_) => panic!("a valid prefix length"),
    }
}

/// IPv4 ranges and their class, most specific first (RFC 6890 and its updates).
const V4_RANGES: &[(Ipv4Net, AddressClass)] = &[
    (v4(255, 255, 255, 255, 32), AddressClass::Broadcast),
    (v4(0, 0, 0, 0, 32), AddressClass::Unspecified),
    (v4(0, 0, 0, 0, 8), AddressClass::ThisNetwork),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(100, 64, 0, 0, 10), AddressClass::SharedAddressSpace),
    // IETF protocol assignments.
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved),
    // Documentation (TEST-NET-1, -2, -3).
    (v4(192, 0, 2, 0, 24), AddressClass::Reserved),
    (v4(198, 51, 100, 0, 24), AddressClass::Reserved),
    (v4(203, 0, 113, 0, 24), AddressClass::Reserved),
    // Benchmarking (also the "fake IP" range of some DNS proxies).
    (v4(198, 18, 0, 0, 15), AddressClass::Reserved),
    // Reserved for future use.
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),
];

/// IPv6 ranges and their class, most specific first.
const V6_RANGES: &[(Ipv6Net, AddressClass)] = &[
    (v6([0; 8], 128), AddressClass::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        AddressClass::Multicast,
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        AddressClass::LinkLocal,
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), AddressClass::Private),
    // Deprecated site-local addresses.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::Private),
    // Discard-only.
    (
        v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),
        AddressClass::Reserved,
    ),
    // Local-use NAT64: its prefix layout is the operator's, so it cannot be unwrapped.
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        AddressClass::Reserved,
    ),
    // Teredo, benchmarking, ORCHID and ORCHIDv2 (within the IETF protocol assignments).
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Reserved,
    ),
    (
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        AddressClass::Reserved,
    ),
    (
        v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
        AddressClass::Reserved,
    ),
    (
        v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
        AddressClass::Reserved,
    ),
    // Documentation.
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        AddressClass::Reserved,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        AddressClass::Reserved,
    ),
];

/// The class of a non-public address, or `None` for an ordinary public address. IPv6
/// addresses carrying IPv4 are classified by the caller as their IPv4 address.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    if METADATA_ADDRESSES.contains(&address) {
        return Some(AddressClass::CloudMetadata);
    }
    match address {
        IpAddr::V4(a) => V4_RANGES
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, class)| *class),
        IpAddr::V6(a) => V6_RANGES
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, class)| *class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn strict() -> TargetPolicy {
        TargetPolicy::new(Vec::new())
    }

    fn allowing(nets: &[&str]) -> TargetPolicy {
        TargetPolicy::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn class_of_refusal(policy: &TargetPolicy, address: &str) -> Option<AddressClass> {
        match policy.check_ip(ip(address)) {
            Ok(()) => None,
            Err(TargetError::Forbidden { class, .. }) => Some(class),
            Err(other) => panic!("{address}: {other}"),
        }
    }

    #[test]
    fn public_addresses_are_targets() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "11.0.0.0",
            "9.255.255.255",
            "192.167.255.255",
            "192.169.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class_of_refusal(&strict(), address), None, "{address}");
        }
    }

    #[test]
    fn every_listable_range_is_refused_by_default_at_both_ends() {
        use AddressClass::*;
        for (address, class) in [
            ("127.0.0.0", Loopback),
            ("127.0.0.1", Loopback),
            ("127.255.255.255", Loopback),
            ("::1", Loopback),
            ("169.254.0.0", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("10.0.0.0", Private),
            ("10.255.255.255", Private),
            ("172.16.0.0", Private),
            ("172.31.255.255", Private),
            ("192.168.0.0", Private),
            ("192.168.255.255", Private),
            ("fc00::", Private),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Private),
            ("fec0::1", Private),
            ("100.64.0.0", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("192.0.0.1", Reserved),
            ("192.0.2.1", Reserved),
            ("198.51.100.1", Reserved),
            ("203.0.113.255", Reserved),
            ("198.18.0.0", Reserved),
            ("198.19.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("2001:db8::1", Reserved),
            ("3fff::1", Reserved),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("64:ff9b:1::a00:1", Reserved),
        ] {
            assert_eq!(
                class_of_refusal(&strict(), address),
                Some(class),
                "{address}"
            );
            assert!(!class.always_refused(), "{address}");
        }
    }

    #[test]
    fn some_addresses_are_refused_even_when_listed() {
        use AddressClass::*;
        let everything = allowing(&["0.0.0.0/0", "::/0"]);
        for (address, class) in [
            ("169.254.169.254", CloudMetadata),
            ("169.254.170.2", CloudMetadata),
            ("fd00:ec2::254", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("168.63.129.16", CloudMetadata),
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("0.255.255.255", ThisNetwork),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("2002:a9fe:a9fe::1", CloudMetadata),
        ] {
            assert_eq!(
                class_of_refusal(&strict(), address),
                Some(class),
                "{address}"
            );
            assert_eq!(
                class_of_refusal(&everything, address),
                Some(class),
                "{address} listed"
            );
            assert!(class.always_refused());
        }
        // Listing exactly the metadata address does not help either.
        let metadata = allowing(&["169.254.169.254/32", "169.254.0.0/16"]);
        assert_eq!(
            class_of_refusal(&metadata, "169.254.169.254"),
            Some(CloudMetadata)
        );
        assert_eq!(class_of_refusal(&metadata, "169.254.1.1"), None);
    }

    #[test]
    fn allowed_networks_let_exactly_their_addresses_through() {
        let policy = allowing(&["127.0.0.0/8", "10.1.0.0/16", "fd12:3456::/32"]);
        for address in [
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.0.9",
        ] {
            assert_eq!(class_of_refusal(&policy, address), None, "{address}");
        }
        for address in [
            "10.2.0.1",
            "192.168.1.1",
            "::1",
            "fd12:3457::1",
            "169.254.169.254",
        ] {
            assert!(class_of_refusal(&policy, address).is_some(), "{address}");
        }
        // ::1 is IPv6 loopback, which 127.0.0.0/8 does not cover.
        assert_eq!(class_of_refusal(&allowing(&["::1/128"]), "::1"), None);
    }

    #[test]
    fn ipv6_spellings_of_ipv4_addresses_are_judged_as_ipv4() {
        use AddressClass::*;
        for (address, class) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:192.168.1.1", Private),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::c0a8:101", Private),
            ("2002:7f00:1::", Loopback),
            ("2002:c0a8:101::1", Private),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::2", ThisNetwork),
        ] {
            assert_eq!(
                class_of_refusal(&strict(), address),
                Some(class),
                "{address}"
            );
        }
        let err = strict().check_ip(ip("::ffff:127.0.0.1")).unwrap_err();
        assert!(err.to_string().contains("(that is 127.0.0.1)"), "{err}");
    }

    #[test]
    fn refusals_say_what_and_how_to_allow_it() {
        let err = strict().check_ip(ip("192.168.1.10")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "192.168.1.10 is a private address; webhooks may reach it only if the server's \
             webhooks.allowed_networks lists it"
        );
        let err = strict().check_ip(ip("169.254.169.254")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "169.254.169.254 is a cloud metadata service address and is never a webhook target"
        );
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        let policy = strict();
        let ok = policy
            .check_url("https://hooks.example.com/sealbox?token=s3cret")
            .unwrap();
        assert_eq!(ok.host(), &TargetHost::Name("hooks.example.com".into()));
        assert_eq!(
            ok.as_str(),
            "https://hooks.example.com/sealbox?token=s3cret"
        );
        let shown = format!("{ok:?}");
        assert!(shown.contains("https://hooks.example.com"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(policy.check_url("http://hooks.example.com:8080/x").is_ok());
        assert!(policy.check_url("HTTPS://Hooks.Example.COM/").is_ok());
        assert_eq!(
            policy
                .check_url("https://93.184.215.14/hook")
                .unwrap()
                .host(),
            &TargetHost::Ip(ip("93.184.215.14"))
        );

        for (url, expected) in [
            ("ftp://example.com/", TargetError::Scheme("ftp".into())),
            ("file:///etc/passwd", TargetError::Scheme("file".into())),
            (
                "gopher://example.com/",
                TargetError::Scheme("gopher".into()),
            ),
            ("https://user:pass@example.com/", TargetError::Userinfo),
            ("https://user@example.com/", TargetError::Userinfo),
            ("https://:pass@example.com/", TargetError::Userinfo),
            ("https://example.com:0/", TargetError::PortZero),
        ] {
            assert_eq!(policy.check_url(url).unwrap_err(), expected, "{url}");
        }
        for url in [
            "",
            "example.com/hook",
            "https://",
            "http://[::1/",
            "https://exa mple.com/",
            "http://256.0.0.1/",
        ] {
            assert!(
                matches!(policy.check_url(url), Err(TargetError::Invalid(_))),
                "{url}: {:?}",
                policy.check_url(url)
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(policy.check_url(&long).unwrap_err(), TargetError::TooLong);
        let just_fits = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(just_fits.len(), MAX_URL_LEN);
        assert!(policy.check_url(&just_fits).is_ok());
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        let policy = strict();
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0:8443/",
            "http://0/",
            "http://10.0.0.1/",
            "http://[fe80::1]/",
        ] {
            assert!(
                matches!(policy.check_url(url), Err(TargetError::Forbidden { .. })),
                "{url}: {:?}",
                policy.check_url(url)
            );
        }
        let local = allowing(&["127.0.0.0/8", "::1/128"]);
        assert!(local.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check_url("http://[::1]:9000/hook").is_ok());
        assert!(matches!(
            local.check_url("http://169.254.169.254/"),
            Err(TargetError::Forbidden {
                class: AddressClass::CloudMetadata,
                ..
            })
        ));
        // A name is resolved (and checked) at delivery, not now.
        assert_eq!(
            policy.check_url("http://localhost:9000/").unwrap().host(),
            &TargetHost::Name("localhost".into())
        );
    }
}
