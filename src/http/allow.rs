//! Which methods each route accepts, so every 405 can carry the `Allow` header that
//! RFC 9110 requires. Built once at start-up from the generated OpenAPI document (the
//! API's routes) plus the few routes outside it; poem's 405 does not say.

use std::collections::BTreeSet;

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
    pub fn from_openapi(document: &serde_json::Value) -> Self {
        let mut index = Self::default();
        if let Some(paths) = document["paths"].as_object() {
            for (path, operations) in paths {
                let methods: Vec<String> = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                index.add(
                    path,
                    &methods.iter().map(String::as_str).collect::<Vec<_>>(),
                );
            }
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
        let mut index = AllowIndex::from_openapi(&serde_json::json!({
            "paths": {
                "/v1/files/{id}": {"get": {}, "delete": {}},
                "/health": {"get": {}},
            }
        }));
        index.add("/assets/*", &["GET"]);
        assert_eq!(index.allow_for("/v1/files/abc"), Some("DELETE, GET, HEAD"));
        assert_eq!(index.allow_for("/health"), Some("GET, HEAD"));
        assert_eq!(index.allow_for("/assets/a/b.css"), Some("GET, HEAD"));
        assert_eq!(index.allow_for("/v1/files"), None);
        assert_eq!(index.allow_for("/v1/files/abc/extra"), None);
    }
}
