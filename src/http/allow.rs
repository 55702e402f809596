//! Which methods each route accepts, so every 405 can carry the `Allow` header that
//! RFC 9110 requires. Built once at start-up from the generated OpenAPI document (the
//! API's routes) plus the few routes outside it; poem's 405 does not say.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The routes of an OpenAPI document: each path with its methods (and `parameters`, which
/// [`AllowIndex::from_openapi`] skips), read without building the document in memory. The
/// whole document as a `serde_json::Value` took about 6 MiB at start-up, which the
/// allocator kept for the life of the process.
#[derive(Debug, Deserialize)]
pub struct OpenApiPaths {
    pub paths: BTreeMap<String, BTreeMap<String, IgnoredAny>>,
}

impl OpenApiPaths {
    pub fn parse(document: &str) -> serde_json::Result<Self> {
        serde_json::from_str(document)
    }
}

/// The operation keys of an OpenAPI path item (what is not `parameters`, `summary` ...).
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Path templates (`/v1/files/{id}`) and the methods they accept.
#[derive(Debug, Default)]
pub struct AllowIndex {
    routes: Vec<(Vec<Segment>, String)>,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    /// `{param}`: any one segment.
    Param,
    /// A trailing `*`: any rest of the path, including nothing.
    Rest,
}

impl AllowIndex {
    /// Indexes every path and method of an OpenAPI document.
    pub fn from_openapi(document: &OpenApiPaths) -> Self {
        let mut index = Self::default();
        for (path, item) in &document.paths {
            let methods: Vec<String> = item
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(|m| m.to_ascii_uppercase())
                .collect();
            index.add(
                path,
                &methods.iter().map(String::as_str).collect::<Vec<_>>(),
            );
        }
        index
    }

    /// Adds a route; `path` may end in `/*` for a whole subtree.
    pub fn add(&mut self, path: &str, methods: &[&str]) {
        let segments = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "*" => Segment::Rest,
                s if s.starts_with('{') && s.ends_with('}') => Segment::Param,
                s => Segment::Literal(s.to_owned()),
            })
            .collect();
        let mut set: BTreeSet<&str> = methods.iter().copied().collect();
        if set.contains("GET") {
            // poem answers HEAD wherever it answers GET.
            set.insert("HEAD");
        }
        let allow = set.into_iter().collect::<Vec<_>>().join(", ");
        self.routes.push((segments, allow));
    }

    /// The `Allow` value for a request path, if the path is a known route.
    pub fn allow_for(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        self.routes
            .iter()
            .find(|(segments, _)| matches(segments, &parts))
            .map(|(_, allow)| allow.as_str())
    }
}

fn matches(segments: &[Segment], parts: &[&str]) -> bool {
    match (segments.split_first(), parts.split_first()) {
        (Some((Segment::Rest, _)), _) => true,
        (None, None) => true,
        (Some((Segment::Param, rest)), Some((_, parts))) => matches(rest, parts),
        (Some((Segment::Literal(lit), rest)), Some((part, parts))) => {
            lit == part && matches(rest, parts)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segment_by_segment() {
        let document = OpenApiPaths::parse(
            r#"{"openapi": "3.0.0", "paths": {
                "/v1/files/{id}": {"parameters": [], "get": {"a": [1]}, "delete": {}},
                "/health": {"get": {}}
            }}"#,
        )
        .unwrap();
        let mut index = AllowIndex::from_openapi(&document);
        index.add("/assets/*", &["GET"]);
        assert_eq!(index.allow_for("/v1/files/abc"), Some("DELETE, GET, HEAD"));
        assert_eq!(index.allow_for("/health"), Some("GET, HEAD"));
        assert_eq!(index.allow_for("/assets/a/b.css"), Some("GET, HEAD"));
        assert_eq!(index.allow_for("/v1/files"), None);
        assert_eq!(index.allow_for("/v1/files/abc/extra"), None);
    }
}
