//! Transfer links: `{server}/t/{transfer id}#s={link secret}`, plus `&k={base64url key}`
//! for an end-to-end transfer (`docs/transfers.md`). The fragment is never part of a
//! request URL (browsers strip it, and so does this client): the link secret travels in
//! the `X-Transfer-Secret` header, the key never leaves the client. Links of transfers
//! created before link secrets (`/t/{id}`, `/t/{id}#k=...`) still parse.

use url::Url;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::ClientError;
use crate::crypto::Dek;
use crate::crypto::transfer_e2e::{decode_key, encode_key};

/// A parsed transfer link. `Debug` hides the secret and the key.
pub struct TransferLink {
    /// The server's base URL (what came before `/t/`), ending in `/`.
    pub server: Url,
    pub transfer_id: Uuid,
    /// The link secret from `s=`, sent as `X-Transfer-Secret`.
    pub secret: Option<Zeroizing<String>>,
    /// The transfer key from `k=`, for an end-to-end transfer.
    pub key: Option<Dek>,
}

impl std::fmt::Debug for TransferLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferLink")
            .field("server", &self.server.as_str())
            .field("transfer_id", &self.transfer_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The link to print for an end-to-end transfer: the server's link (with its `#s=`
/// secret, which is kept) and the key as `k=`.
pub fn with_key(link: &str, key: &Dek) -> String {
    let (base, fragment) = link.split_once('#').unwrap_or((link, ""));
    let kept: Vec<&str> = fragment
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("k="))
        .collect();
    let key = format!("k={}", encode_key(key));
    if kept.is_empty() {
        format!("{base}#{key}")
    } else {
        format!("{base}#{}&{key}", kept.join("&"))
    }
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
             https://HOST/t/TRANSFER-ID#s=SECRET (and &k=KEY for an end-to-end transfer)"
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
    let parts: Vec<&str> = fragment
        .unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty())
        .collect();
    let mut secret = None;
    let mut key = None;
    for part in parts {
        if let Some(value) = part.strip_prefix("s=") {
            let valid = value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(bad("its s= is not a link secret"));
            }
            secret = Some(Zeroizing::new(value.to_owned()));
        } else if let Some(value) = part.strip_prefix("k=") {
            key = Some(decode_key(value).map_err(|e| bad(&e.to_string()))?);
        }
        // Other parameters are ignored (docs/crypto.md), for links of later versions.
    }
    Ok(TransferLink {
        server,
        transfer_id,
        secret,
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

    const SECRET: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80";

    #[test]
    fn a_server_link_with_its_secret_gets_the_key_appended_and_round_trips() {
        let key = generate_key();
        let server_link = format!("https://box.lan/t/{ID}#s={SECRET}");
        let printed = with_key(&server_link, &key);
        assert_eq!(
            printed,
            format!("https://box.lan/t/{ID}#s={SECRET}&k={}", encode_key(&key))
        );
        let link = parse(&printed).unwrap();
        assert_eq!(link.secret.as_deref().map(String::as_str), Some(SECRET));
        assert_eq!(link.key.unwrap().expose_bytes(), key.expose_bytes());
        let server_only = parse(&server_link).unwrap();
        assert_eq!(
            server_only.secret.as_deref().map(String::as_str),
            Some(SECRET)
        );
        assert!(server_only.key.is_none());
        // Appending the key twice keeps one.
        assert_eq!(with_key(&printed, &key), printed);
        let debug = format!("{:?}", parse(&printed).unwrap());
        assert!(
            !debug.contains(SECRET) && !debug.contains(&encode_key(&key)),
            "{debug}"
        );
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
        for fragment in [
            format!("k={secretish}"),
            format!("s={secretish}"),
            format!("s={SECRET}&k={secretish}"),
        ] {
            let err = parse(&format!("https://box.lan/t/{ID}#{fragment}"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(secretish), "{err}");
        }
    }
}
