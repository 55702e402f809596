//! The client's address: the TCP peer, unless the peer is a trusted reverse proxy
//! (`server.trusted_proxies`), in which case `X-Forwarded-For` is read from the right,
//! past every trusted hop, to the first address no trusted proxy vouches for.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// The configured proxies, attached to every request.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpNet>>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&canonical(ip)))
    }
}

/// The address a request came from, as far as can be trusted.
pub fn client_ip(req: &poem::Request) -> Option<IpAddr> {
    let peer = canonical(req.remote_addr().as_socket_addr()?.ip());
    let Some(proxies) = req.data::<TrustedProxies>() else {
        return Some(peer);
    };
    if !proxies.trusts(peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Garbage in the chain: stop at the last address a trusted proxy gave.
            break;
        };
        client = canonical(ip);
        if !proxies.trusts(client) {
            break;
        }
    }
    Some(client)
}

/// IPv4 clients of an IPv6 socket arrive as `::ffff:a.b.c.d`; they are IPv4 clients.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
