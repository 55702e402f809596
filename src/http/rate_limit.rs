//! Rate limits (SPEC §3): a budget per client address for every API call, and one per
//! access token or API key for calls made with it, kept by `governor` (GCRA) in memory.
//!
//! Every limited response says where its tightest budget stands, in both header
//! families: `X-RateLimit-Limit|Remaining|Reset|Policy` and the IETF
//! `RateLimit-Policy: "ip";q=120;w=60` / `RateLimit: "ip";r=117;t=42`. A refusal is
//! `429 RATE_LIMITED` with `Retry-After`. Credentials are keyed by their SHA-256, checked
//! here before (and whether or not) they are valid, so floods of bad tokens cost nothing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sha2::{Digest, Sha256};

use super::authn::API_KEY_HEADER;
use super::client_ip::client_ip;
use super::error::{ApiError, code, error_response};
use crate::auth::api_key::KEY_MARKER;
use crate::config::RateLimitsConfig;
use crate::ids::OrgId;

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// One budget: a limiter and how it is described in headers.
struct Budget<K: std::hash::Hash + Eq + Clone> {
    name: &'static str,
    limit: u32,
    window: Duration,
    limiter: Keyed<K>,
}

/// Where one budget stands after a request was counted against it.
#[derive(Debug, Clone, Copy)]
struct Standing {
    name: &'static str,
    limit: u32,
    remaining: u32,
    window: Duration,
    /// Seconds until the budget is whole again (or, refused, until the next request fits).
    reset_after: u64,
    refused: bool,
}

impl<K: std::hash::Hash + Eq + Clone> Budget<K> {
    fn new(name: &'static str, limit: u32, window: Duration) -> Self {
        let burst = NonZeroU32::new(limit).expect("config validation keeps limits above 0");
        let quota = Quota::with_period(window / limit)
            .expect("a positive window")
            .allow_burst(burst);
        Self {
            name,
            limit,
            window,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    fn count(&self, key: &K) -> Standing {
        let per_request = self.window / self.limit;
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Standing {
                    name: self.name,
                    limit: self.limit,
                    remaining,
                    window: self.window,
                    reset_after: (per_request * (self.limit - remaining))
                        .as_secs_f64()
                        .ceil() as u64,
                    refused: false,
                }
            }
            Err(not_until) => Standing {
                name: self.name,
                limit: self.limit,
                remaining: 0,
                window: self.window,
                reset_after: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs_f64()
                    .ceil()
                    .max(1.0) as u64,
                refused: true,
            },
        }
    }
}

/// Every budget of the server. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits(Arc<Budgets>);

struct Budgets {
    ip: Budget<IpAddr>,
    token: Budget<[u8; 32]>,
    api_key: Budget<[u8; 32]>,
    org_uploads: Budget<OrgId>,
    org_media_uploads: Budget<OrgId>,
}

impl RateLimits {
    pub fn new(config: &RateLimitsConfig) -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self(Arc::new(Budgets {
            ip: Budget::new("ip", config.per_ip_per_minute, MINUTE),
            token: Budget::new("token", config.per_token_per_minute, MINUTE),
            api_key: Budget::new("api_key", config.per_api_key_per_minute, MINUTE),
            org_uploads: Budget::new(
                "uploads",
                config.org_uploads_per_hour,
                Duration::from_secs(3600),
            ),
            org_media_uploads: Budget::new(
                "media_uploads",
                config.org_media_uploads_per_hour,
                Duration::from_secs(3600),
            ),
        }))
    }

    /// Counts one upload started by `org`; `Err` is how long until one more fits.
    pub fn count_org_upload(&self, org: OrgId) -> Result<(), Duration> {
        let standing = self.0.org_uploads.count(&org);
        if standing.refused {
            crate::metrics::rate_limited(standing.name);
            return Err(Duration::from_secs(standing.reset_after.max(1)));
        }
        Ok(())
    }

    /// Counts one media upload (`POST /v1/upload-media`) of `org`; `Err` is how long
    /// until one more fits.
    pub fn count_org_media_upload(&self, org: OrgId) -> Result<(), Duration> {
        let standing = self.0.org_media_uploads.count(&org);
        if standing.refused {
            crate::metrics::rate_limited(standing.name);
            return Err(Duration::from_secs(standing.reset_after.max(1)));
        }
        Ok(())
    }

    /// Forgets budgets that are whole again, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.0.ip.limiter.retain_recent();
        self.0.token.limiter.retain_recent();
        self.0.api_key.limiter.retain_recent();
        self.0.org_uploads.limiter.retain_recent();
        self.0.org_media_uploads.limiter.retain_recent();
        for limiter in [&self.0.token.limiter, &self.0.api_key.limiter] {
            limiter.shrink_to_fit();
        }
        self.0.ip.limiter.shrink_to_fit();
    }

    /// Counts a request against its budgets and returns the tightest standing.
    fn count(&self, req: &Request) -> Standing {
        let mut standings = Vec::with_capacity(2);
        if let Some(ip) = client_ip(req) {
            standings.push(self.0.ip.count(&ip));
        }
        match credential(req) {
            Some(Credential::ApiKey(hash)) => standings.push(self.0.api_key.count(&hash)),
            Some(Credential::Token(hash)) => standings.push(self.0.token.count(&hash)),
            None => {}
        }
        standings
            .into_iter()
            .min_by_key(|s| (!s.refused, s.remaining))
            .unwrap_or(Standing {
                name: "ip",
                limit: self.0.ip.limit,
                remaining: self.0.ip.limit,
                window: self.0.ip.window,
                reset_after: 0,
                refused: false,
            })
    }
}

enum Credential {
    Token([u8; 32]),
    ApiKey([u8; 32]),
}

/// The SHA-256 of the credential the request presents (a bearer token or an API key),
/// whether or not it is valid.
pub(crate) fn credential_digest(req: &Request) -> Option<[u8; 32]> {
    match credential(req)? {
        Credential::Token(hash) | Credential::ApiKey(hash) => Some(hash),
    }
}

fn credential(req: &Request) -> Option<Credential> {
    let digest = |s: &str| -> [u8; 32] { Sha256::digest(s.as_bytes()).into() };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let token = value.to_str().ok()?.split_once(' ')?.1.trim();
        return Some(if token.starts_with(KEY_MARKER) {
            Credential::ApiKey(digest(token))
        } else {
            Credential::Token(digest(token))
        });
    }
    let key = req.headers().get(API_KEY_HEADER)?.to_str().ok()?.trim();
    Some(Credential::ApiKey(digest(key)))
}

fn refusal(standing: &Standing) -> ApiError {
    ApiError::new(
        poem::http::StatusCode::TOO_MANY_REQUESTS,
        code::RATE_LIMITED,
        format!(
            "the {} budget of {} requests per {} s is spent; retry after the delay",
            standing.name,
            standing.limit,
            standing.window.as_secs()
        ),
    )
    .with_retry_after(Duration::from_secs(standing.reset_after))
}

fn set_headers(response: &mut Response, standing: &Standing) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let window = standing.window.as_secs();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("x-ratelimit-limit", standing.limit.to_string());
    set("x-ratelimit-remaining", standing.remaining.to_string());
    set(
        "x-ratelimit-reset",
        (now + standing.reset_after).to_string(),
    );
    set(
        "x-ratelimit-policy",
        format!("{};w={window}", standing.limit),
    );
    set(
        "ratelimit-policy",
        format!("\"{}\";q={};w={window}", standing.name, standing.limit),
    );
    set(
        "ratelimit",
        format!(
            "\"{}\";r={};t={}",
            standing.name, standing.remaining, standing.reset_after
        ),
    );
}

/// Applies the budgets to the API routes.
#[derive(Clone)]
pub struct RateLimited(pub RateLimits);

impl<E: Endpoint> Middleware<E> for RateLimited {
    type Output = RateLimitedEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RateLimitedEndpoint {
            inner,
            limits: self.0.clone(),
        }
    }
}

pub struct RateLimitedEndpoint<E> {
    inner: E,
    limits: RateLimits,
}

impl<E: Endpoint> Endpoint for RateLimitedEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let standing = self.limits.count(&req);
        let mut response = if standing.refused {
            crate::metrics::rate_limited(standing.name);
            poem::error::ResponseError::as_response(&refusal(&standing))
        } else {
            match self.inner.call(req).await {
                Ok(output) => output.into_response(),
                Err(err) => error_response(err),
            }
        };
        set_headers(&mut response, &standing);
        Ok(response)
    }
}
