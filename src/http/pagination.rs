//! The `Link: <...>; rel="next"` header (RFC 8288) of paginated lists (SPEC §3).

use poem::Request;

use crate::service::page::Cursor;

/// The `Link` header pointing at the next page: this request's path and query with the
/// cursor replaced; `None` on the last page.
pub fn next_link(req: &Request, next: Option<&Cursor>) -> Option<String> {
    let (name, id) = match next? {
        Cursor::Start => return None,
        Cursor::Before(id) => ("before", id),
        Cursor::After(id) => ("after", id),
    };
    // Other parameters are kept as the client encoded them; the cursor is an id, which
    // needs no escaping, but is escaped anyway so the header can never be malformed.
    let mut query: Vec<String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            key != "before" && key != "after"
        })
        .map(str::to_owned)
        .collect();
    query.push(format!("{name}={}", escape(id)));
    Some(format!(
        "<{}?{}>; rel=\"next\"",
        req.uri().path(),
        query.join("&")
    ))
}

fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
