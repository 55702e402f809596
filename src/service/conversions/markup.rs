//! Markdown to HTML: CommonMark with tables, strikethrough and task lists rendered by
//! `pulldown-cmark`, then cleaned by `ammonia` (an allowlist of tags and attributes; no
//! scripts, event handlers, `javascript:` links or styles), so a converted document is
//! safe to open in a browser whatever the Markdown held, raw HTML included.

use super::{ConvertError, Format, Limits, Output};

pub fn markdown_to_html(input: &[u8], limits: &Limits) -> Result<Output, ConvertError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|_| {
        ConvertError::Invalid(
            "the Markdown is not UTF-8 (convert it as text with an `encoding` first)".to_owned(),
        )
    })?;
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    options.insert(pulldown_cmark::Options::ENABLE_TASKLISTS);
    let mut rendered = String::with_capacity(text.len() * 2);
    pulldown_cmark::html::push_html(
        &mut rendered,
        pulldown_cmark::Parser::new_ext(text, options),
    );
    let clean = ammonia::clean(&rendered);
    let document = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title></title>\n</head>\n<body>\n{clean}</body>\n</html>\n"
    );
    if document.len() as u64 > limits.max_output_bytes {
        return Err(ConvertError::TooLarge(format!(
            "the output would be larger than {} bytes (conversions.max_output_bytes)",
            limits.max_output_bytes
        )));
    }
    Ok(Output {
        bytes: document.into_bytes(),
        format: Format::Html,
    })
}
