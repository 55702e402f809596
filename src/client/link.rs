//! Transfer links: `{server}/t/{transfer id}`, plus `#k={base64url key}` for an end-to-end
//! transfer. The fragment is never sent to the server (browsers strip it, and this client
//! never puts it in a request).

use url::Url;
use uuid::Uuid;

use super::ClientError;
use crate::crypto::Dek;
use crate::crypto::transfer_e2e::{decode_key, encode_key};

/// A parsed transfer link.
#[derive(Debug)]
pub struct TransferLink {
    /// The server's base URL (what came before `/t/`), ending in `/`.
    pub server: Url,
    pub transfer_id: Uuid,
    /// The transfer key from `#k=`, for an end-to-end transfer.
    pub key: Option<Dek>,
}

/// The link to print for an end-to-end transfer: the server's link and the key.
pub fn with_key(link: &str, key: &Dek) -> String {
    let link = link.split('#').next().unwrap_or(link);
    format!("{link}#k={}", encode_key(key))
}

/// Reads a link printed by `sealbox send` or shown by the web app. Errors never repeat
/// the fragment (it holds the key).
pub fn parse(text: &str) -> Result<TransferLink, ClientError> {
    let (base, fragment) = match text.trim().split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (text.trim(), None),
    };
    let bad = |why: &str| {
        ClientError::Usage(format!(
            "{base:?} is not a sealbox transfer link ({why}): expected \
             https://HOST/t/TRANSFER-ID#k=KEY"
        ))
    };
    let url = Url::parse(base).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(bad("not an http(s) URL"));
    }
    let path = url.path();
    let (prefix, id) = path.rsplit_once("/t/").ok_or_else(|| bad("no /t/ in it"))?;
    let transfer_id = Uuid::parse_str(id.trim_end_matches('/'))
        .map_err(|_| bad("the transfer id is not a UUID"))?;
    let mut server = url.clone();
    server.set_path(&format!("{prefix}/"));
    server.set_query(None);
    let key = match fragment {
        None | Some("") => None,
        Some(fragment) => {
            let encoded = fragment
                .split('&')
                .find_map(|part| part.strip_prefix("k="))
                .ok_or_else(|| bad("the part after # has no k="))?;
            Some(decode_key(encoded).map_err(|e| bad(&e.to_string()))?)
        }
    };
    Ok(TransferLink {
        server,
        transfer_id,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::transfer_e2e::generate_key;

    const ID: &str = "01939a6e-7c2f-7d4e-9a51-0c1d2e3f4a5b";

    #[test]
    fn a_link_with_its_key_round_trips() {
        let key = generate_key();
        let printed = with_key(&format!("https://box.lan:8443/t/{ID}"), &key);
        let link = parse(&printed).unwrap();
        assert_eq!(link.server.as_str(), "https://box.lan:8443/");
        assert_eq!(link.transfer_id.to_string(), ID);
        assert_eq!(link.key.unwrap().expose_bytes(), key.expose_bytes());
    }

    #[test]
    fn a_path_prefix_is_kept_and_server_links_have_no_key() {
        let link = parse(&format!("https://example.com/sealbox/t/{ID}")).unwrap();
        assert_eq!(link.server.as_str(), "https://example.com/sealbox/");
        assert!(link.key.is_none());
    }

    #[test]
    fn bad_links_and_fragments_are_refused_without_echoing_the_key() {
        for bad in [
            "not a link",
            "ftp://box.lan/t/x",
            "https://box.lan/transfers/abc",
            "https://box.lan/t/not-a-uuid",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let secretish = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for fragment in [format!("k={secretish}"), format!("x={secretish}")] {
            let err = parse(&format!("https://box.lan/t/{ID}#{fragment}"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(secretish), "{err}");
        }
    }
}
