//! Sign-in with identity providers (`[[auth.oidc]]`, `[auth.google]`, `[auth.github]`;
//! docs/sso.md): the entries as an operator writes them, their start-up checks, and the
//! one resolved list of providers ([`SsoProvider`]) the rest of sealbox reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Google's issuer: `[auth.google]` is an OpenID Connect provider with this issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The roles a provider may give a new member (owners are made by hand: an organization's
/// last-owner rules should not depend on a group claim).
pub const PROVISIONED_ROLES: [&str; 3] = ["admin", "member", "auditor"];
/// Provider ids the shortcuts take.
const RESERVED_IDS: [&str; 2] = ["google", "github"];
const MAX_ID_CHARS: usize = 32;

/// One `[[auth.oidc]]` entry: any OpenID Connect issuer (Authentik, Keycloak, Authelia,
/// Entra ID, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcProviderConfig {
    /// In the URLs: `/v1/auth/oauth/{id}`; lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// The sign-in button's label; empty: the id.
    pub display_name: String,
    /// The issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Empty for a public client (PKCE only).
    pub client_secret: Secret,
    /// A file holding the client secret (one trailing newline removed).
    pub client_secret_file: PathBuf,
    pub scopes: Vec<String>,
    /// The slug of the organization new accounts join; empty: no new accounts (only
    /// accounts already linked to this provider sign in).
    pub organization: String,
    /// The role new members get (`admin`, `member`, `auditor`).
    pub role: String,
    /// E-mail domains allowed to sign in (`example.com`); empty: any.
    pub allowed_domains: Vec<String>,
    /// Whether a verified e-mail address that matches an existing account links the
    /// provider to it at sign-in. Off: the user signs in with the password once and
    /// links the provider from the account page.
    pub link_by_email: bool,
    /// The ID token claim listing the user's groups (`groups`); empty: none.
    pub group_claim: String,
    /// Group name to role for new members; the highest mapped role wins.
    pub group_roles: BTreeMap<String, String>,
}

impl Default for OidcProviderConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            display_name: String::new(),
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: PathBuf::new(),
            scopes: default_scopes(),
            organization: String::new(),
            role: default_role(),
            allowed_domains: Vec::new(),
            link_by_email: false,
            group_claim: String::new(),
            group_roles: BTreeMap::new(),
        }
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

/// Who a provider lets in and where new accounts go: the same keys in every provider.
struct Policy<'a> {
    organization: &'a str,
    role: &'a str,
    allowed_domains: &'a [String],
    link_by_email: bool,
}

macro_rules! policy_of {
    ($entry:expr) => {
        Policy {
            organization: &$entry.organization,
            role: &$entry.role,
            allowed_domains: &$entry.allowed_domains,
            link_by_email: $entry.link_by_email,
        }
    };
}

fn default_role() -> String {
    "member".into()
}

/// `[auth.google]`: Google as an OpenID Connect provider; an empty `client_id` is off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: PathBuf,
    /// The slug of the organization new accounts join; empty: no new accounts (only
    /// accounts already linked to this provider sign in).
    pub organization: String,
    /// The role new members get (`admin`, `member`, `auditor`).
    pub role: String,
    /// E-mail domains allowed to sign in (`example.com`); empty: any.
    pub allowed_domains: Vec<String>,
    /// Whether a verified e-mail address that matches an existing account links the
    /// provider to it at sign-in. Off: the user signs in with the password once and
    /// links the provider from the account page.
    pub link_by_email: bool,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: PathBuf::new(),
            organization: String::new(),
            role: default_role(),
            allowed_domains: Vec::new(),
            link_by_email: false,
        }
    }
}

/// `[auth.github]`: GitHub's OAuth apps (OAuth 2, not OpenID Connect); an empty
/// `client_id` is off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: PathBuf,
    /// The slug of the organization new accounts join; empty: no new accounts (only
    /// accounts already linked to this provider sign in).
    pub organization: String,
    /// The role new members get (`admin`, `member`, `auditor`).
    pub role: String,
    /// E-mail domains allowed to sign in (`example.com`); empty: any.
    pub allowed_domains: Vec<String>,
    /// Whether a verified e-mail address that matches an existing account links the
    /// provider to it at sign-in. Off: the user signs in with the password once and
    /// links the provider from the account page.
    pub link_by_email: bool,
    /// Where the authorize and token endpoints live (GitHub Enterprise Server: its URL).
    pub web_url: String,
    /// The REST API (`/user`, `/user/emails`).
    pub api_url: String,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: PathBuf::new(),
            organization: String::new(),
            role: default_role(),
            allowed_domains: Vec::new(),
            link_by_email: false,
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

/// A configured provider, checked and with its secret read.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoProvider {
    pub id: String,
    pub display_name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub organization: String,
    pub role: String,
    pub group_roles: BTreeMap<String, String>,
    /// Lowercase.
    pub allowed_domains: Vec<String>,
    pub link_by_email: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderKind {
    Oidc {
        issuer: String,
        scopes: Vec<String>,
        group_claim: String,
    },
    Github {
        web_url: String,
        api_url: String,
    },
}

impl ProviderKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Oidc { .. } => "oidc",
            ProviderKind::Github { .. } => "github",
        }
    }
}

impl SsoProvider {
    /// Whether `email`'s domain may sign in with this provider.
    pub fn allows_email(&self, email: &str) -> bool {
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.allowed_domains.is_empty() || self.allowed_domains.contains(&domain)
    }

    /// The role a new member gets: the highest role any of `groups` maps to, else `role`.
    pub fn role_for(&self, groups: &[String]) -> String {
        let rank = |role: &str| PROVISIONED_ROLES.iter().position(|r| *r == role);
        groups
            .iter()
            .filter_map(|g| self.group_roles.get(g))
            .chain(std::iter::once(&self.role))
            .min_by_key(|role| rank(role).unwrap_or(usize::MAX))
            .cloned()
            .unwrap_or_else(|| self.role.clone())
    }
}

/// Resolves and checks every configured provider, in the order of the sign-in page:
/// the `[[auth.oidc]]` entries, then Google, then GitHub.
pub(super) fn resolve(auth: &super::AuthConfig) -> Result<Vec<SsoProvider>, ConfigError> {
    let mut providers = Vec::new();
    for (index, entry) in auth.oidc.iter().enumerate() {
        let key = format!("auth.oidc[{index}]");
        let id = entry.id.trim();
        if id.is_empty() {
            return Err(invalid(format!("{key}.id is required")));
        }
        if id.len() > MAX_ID_CHARS
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "{key}.id `{id}` must be 1 to {MAX_ID_CHARS} lowercase letters, digits, `-` or `_`"
            )));
        }
        if RESERVED_IDS.contains(&id) {
            return Err(invalid(format!(
                "{key}.id `{id}` is taken by [auth.{id}]; configure that section instead"
            )));
        }
        if providers.iter().any(|p: &SsoProvider| p.id == id) {
            return Err(invalid(format!("{key}.id `{id}` is used twice")));
        }
        let issuer = check_url(&entry.issuer, &format!("{key}.issuer"))?;
        if !entry.scopes.iter().any(|s| s == "openid") {
            return Err(invalid(format!(
                "{key}.scopes must include \"openid\" (and usually \"email\", \"profile\")"
            )));
        }
        if !entry.group_roles.is_empty() && entry.group_claim.trim().is_empty() {
            return Err(invalid(format!(
                "{key}.group_roles needs {key}.group_claim: the ID token claim that lists groups"
            )));
        }
        for (group, role) in &entry.group_roles {
            check_role(role, &format!("{key}.group_roles.{group}"))?;
        }
        let display_name = match entry.display_name.trim() {
            "" => id.to_owned(),
            name => name.to_owned(),
        };
        providers.push(provider(
            &key,
            id,
            display_name,
            ProviderKind::Oidc {
                issuer,
                scopes: entry.scopes.clone(),
                group_claim: entry.group_claim.trim().to_owned(),
            },
            (
                &entry.client_id,
                &entry.client_secret,
                &entry.client_secret_file,
            ),
            false,
            &policy_of!(entry),
            entry.group_roles.clone(),
        )?);
    }
    let google = &auth.google;
    if !google.client_id.trim().is_empty() {
        providers.push(provider(
            "auth.google",
            "google",
            "Google".into(),
            ProviderKind::Oidc {
                issuer: GOOGLE_ISSUER.into(),
                scopes: default_scopes(),
                group_claim: String::new(),
            },
            (
                &google.client_id,
                &google.client_secret,
                &google.client_secret_file,
            ),
            true,
            &policy_of!(google),
            BTreeMap::new(),
        )?);
    }
    let github = &auth.github;
    if !github.client_id.trim().is_empty() {
        providers.push(provider(
            "auth.github",
            "github",
            "GitHub".into(),
            ProviderKind::Github {
                web_url: check_url(&github.web_url, "auth.github.web_url")?,
                api_url: check_url(&github.api_url, "auth.github.api_url")?,
            },
            (
                &github.client_id,
                &github.client_secret,
                &github.client_secret_file,
            ),
            true,
            &policy_of!(github),
            BTreeMap::new(),
        )?);
    }
    if auth.sso_only && providers.is_empty() {
        return Err(invalid(
            "auth.sso_only turns password sign-in off, which needs at least one identity \
             provider ([[auth.oidc]], [auth.google] or [auth.github])"
                .into(),
        ));
    }
    Ok(providers)
}

#[allow(clippy::too_many_arguments)]
fn provider(
    key: &str,
    id: &str,
    display_name: String,
    kind: ProviderKind,
    (client_id, secret, secret_file): (&str, &Secret, &Path),
    secret_required: bool,
    policy: &Policy<'_>,
    group_roles: BTreeMap<String, String>,
) -> Result<SsoProvider, ConfigError> {
    if client_id.trim().is_empty() {
        return Err(invalid(format!("{key}.client_id is required")));
    }
    let client_secret = super::read_secret(key, "client_secret", secret, secret_file)?;
    if secret_required && client_secret.is_empty() {
        return Err(invalid(format!(
            "{key} needs client_secret or client_secret_file"
        )));
    }
    check_role(policy.role, &format!("{key}.role"))?;
    let mut allowed_domains = Vec::new();
    for domain in policy.allowed_domains {
        let domain = domain.trim().to_ascii_lowercase();
        if domain.is_empty() || domain.contains('@') || domain.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "{key}.allowed_domains: `{domain}` is not a domain such as example.com"
            )));
        }
        allowed_domains.push(domain);
    }
    Ok(SsoProvider {
        id: id.to_owned(),
        display_name,
        kind,
        client_id: client_id.trim().to_owned(),
        client_secret,
        organization: policy.organization.trim().to_owned(),
        role: policy.role.to_owned(),
        group_roles,
        allowed_domains,
        link_by_email: policy.link_by_email,
    })
}

fn check_role(role: &str, key: &str) -> Result<(), ConfigError> {
    if PROVISIONED_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{key} `{role}` must be one of {}",
            PROVISIONED_ROLES.join(", ")
        )))
    }
}

/// An https URL, or http on a loopback host (a provider on the same machine); returned
/// as written, trimmed.
fn check_url(raw: &str, key: &str) -> Result<String, ConfigError> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|_| {
        invalid(format!(
            "{key} `{raw}` is not a URL such as https://id.example.com"
        ))
    })?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(format!(
                "{key} `{raw}` must be https (http only on a loopback address)"
            )));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{key} `{raw}` cannot have a query or fragment"
        )));
    }
    Ok(raw.to_owned())
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::super::{AuthConfig, Config};
    use super::*;

    fn entry(id: &str) -> OidcProviderConfig {
        OidcProviderConfig {
            id: id.into(),
            issuer: "https://id.example.com/application/o/sealbox/".into(),
            client_id: "sealbox".into(),
            ..Default::default()
        }
    }

    fn refusal(auth: AuthConfig) -> String {
        resolve(&auth).unwrap_err().to_string()
    }

    #[test]
    fn providers_resolve_in_page_order_with_the_shortcuts_issuers() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("google-secret");
        std::fs::write(&secret, "g-secret\n").unwrap();
        let mut auth = AuthConfig::default();
        auth.oidc.push(entry("authentik"));
        auth.google.client_id = "google-client".into();
        auth.google.client_secret_file = secret;
        auth.github.client_id = "gh".into();
        auth.github.client_secret = Secret::new("gh-secret");
        let providers = resolve(&auth).unwrap();
        let ids: Vec<_> = providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["authentik", "google", "github"]);
        assert_eq!(providers[0].display_name, "authentik");
        assert_eq!(
            providers[1].kind,
            ProviderKind::Oidc {
                issuer: GOOGLE_ISSUER.into(),
                scopes: default_scopes(),
                group_claim: String::new()
            }
        );
        assert_eq!(providers[1].client_secret.expose(), "g-secret");
        assert!(!format!("{providers:?}").contains("g-secret"));
        assert_eq!(
            providers[2].kind,
            ProviderKind::Github {
                web_url: "https://github.com".into(),
                api_url: "https://api.github.com".into()
            }
        );
    }

    #[test]
    fn bad_entries_are_refused_naming_the_key() {
        let mut auth = AuthConfig::default();
        auth.oidc.push(OidcProviderConfig::default());
        assert!(refusal(auth.clone()).contains("auth.oidc[0].id is required"));
        auth.oidc[0] = entry("Bad Id");
        assert!(refusal(auth.clone()).contains("auth.oidc[0].id"));
        auth.oidc[0] = entry("google");
        assert!(refusal(auth.clone()).contains("[auth.google]"));
        auth.oidc = vec![entry("a"), entry("a")];
        assert!(refusal(auth.clone()).contains("used twice"));
        auth.oidc = vec![entry("a")];
        auth.oidc[0].issuer = "http://id.example.com".into();
        assert!(refusal(auth.clone()).contains("must be https"));
        auth.oidc[0].issuer = "http://127.0.0.1:9000/".into();
        assert!(resolve(&auth).is_ok(), "http on loopback");
        auth.oidc[0].scopes = vec!["email".into()];
        assert!(refusal(auth.clone()).contains("openid"));
        auth.oidc[0].scopes = default_scopes();
        auth.oidc[0]
            .group_roles
            .insert("admins".into(), "admin".into());
        assert!(refusal(auth.clone()).contains("group_claim"));
        auth.oidc[0].group_claim = "groups".into();
        auth.oidc[0]
            .group_roles
            .insert("root".into(), "owner".into());
        assert!(refusal(auth.clone()).contains("auth.oidc[0].group_roles.root"));
        auth.oidc[0].group_roles.remove("root");
        auth.oidc[0].client_secret = Secret::new("x");
        auth.oidc[0].client_secret_file = "/nonexistent".into();
        assert!(refusal(auth.clone()).contains("not both"));
        auth.oidc[0].client_secret = Secret::default();
        assert!(refusal(auth.clone()).contains("cannot read /nonexistent"));
        auth.oidc[0].client_secret_file = PathBuf::new();
        auth.oidc[0].allowed_domains = vec!["ada@example.com".into()];
        assert!(refusal(auth.clone()).contains("allowed_domains"));

        let mut auth = AuthConfig::default();
        auth.github.client_id = "gh".into();
        assert!(refusal(auth.clone()).contains("auth.github needs client_secret"));
        let auth = AuthConfig {
            sso_only: true,
            ..AuthConfig::default()
        };
        assert!(refusal(auth).contains("auth.sso_only"));
    }

    #[test]
    fn the_highest_mapped_role_wins_and_domains_are_matched_whole() {
        let mut auth = AuthConfig::default();
        let mut e = entry("kc");
        e.group_claim = "groups".into();
        e.group_roles.insert("staff".into(), "member".into());
        e.group_roles.insert("admins".into(), "admin".into());
        e.role = "auditor".into();
        e.allowed_domains = vec!["Example.com".into()];
        auth.oidc.push(e);
        let p = &resolve(&auth).unwrap()[0];
        assert_eq!(p.role_for(&[]), "auditor");
        assert_eq!(p.role_for(&["staff".into()]), "member");
        assert_eq!(p.role_for(&["staff".into(), "admins".into()]), "admin");
        assert!(p.allows_email("ada@EXAMPLE.com"));
        assert!(!p.allows_email("ada@evil-example.com"));
        assert!(!p.allows_email("ada@example.com.evil.io"));
    }

    #[test]
    fn shortcut_secrets_come_from_files_named_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("github-secret");
        std::fs::write(&secret, "gh-from-file\n").unwrap();
        let sources = super::super::Sources {
            file: None,
            env: vec![
                ("SEALBOX_AUTH__GITHUB__CLIENT_ID".into(), "gh".into()),
                (
                    "SEALBOX_AUTH__GITHUB__CLIENT_SECRET_FILE".into(),
                    secret.to_str().unwrap().into(),
                ),
            ],
        };
        let config = Config::load(&sources).unwrap();
        config.validate().unwrap();
        let providers = config.sso_providers().unwrap();
        assert_eq!(providers[0].id, "github");
        assert_eq!(providers[0].client_secret.expose(), "gh-from-file");
        assert!(!format!("{config:?}{providers:?}").contains("gh-from-file"));
    }

    #[test]
    fn entries_load_from_toml_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            r#"
[auth]
sso_only = true
[[auth.oidc]]
id = "authentik"
issuer = "https://auth.example.com/application/o/sealbox/"
client_id = "sealbox"
organization = "acme"
group_claim = "groups"
group_roles = { "sealbox-admins" = "admin" }
"#,
        )
        .unwrap();
        let sources = super::super::Sources {
            file: Some(file.clone()),
            env: vec![],
        };
        let config = Config::load(&sources).unwrap();
        config.validate().unwrap();
        let providers = config.sso_providers().unwrap();
        assert_eq!(providers[0].organization, "acme");
        assert_eq!(providers[0].role_for(&["sealbox-admins".into()]), "admin");

        std::fs::write(
            &file,
            "[[auth.oidc]]\nid = \"a\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nsecret = \"typo\"\n",
        )
        .unwrap();
        let error = Config::load(&sources).unwrap_err().to_string();
        assert!(error.contains("secret"), "{error}");
    }
}
