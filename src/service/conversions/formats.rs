//! What the converters can do: the formats, the conversions between them and the options
//! each takes. `GET /v1/formats` is this table, so it lists exactly what the binary has.

use serde_json::Value;

use super::image::Fit;
use crate::service::FieldError;

/// A file format a converter reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
    Gif,
    Bmp,
    Tiff,
    Csv,
    Json,
    Jsonl,
    Xlsx,
    Ods,
    Markdown,
    Html,
    Text,
}

impl Format {
    pub const ALL: [Format; 14] = [
        Format::Png,
        Format::Jpeg,
        Format::Webp,
        Format::Gif,
        Format::Bmp,
        Format::Tiff,
        Format::Csv,
        Format::Json,
        Format::Jsonl,
        Format::Xlsx,
        Format::Ods,
        Format::Markdown,
        Format::Html,
        Format::Text,
    ];

    /// The name on the wire (`from`, `to`).
    pub fn key(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Text => "text",
        }
    }

    /// For messages.
    pub fn label(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Webp => "WebP",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::Csv => "CSV",
            Format::Json => "JSON",
            Format::Jsonl => "JSON Lines",
            Format::Xlsx => "XLSX",
            Format::Ods => "ODS",
            Format::Markdown => "Markdown",
            Format::Html => "HTML",
            Format::Text => "text",
        }
    }

    /// The content type of a file written in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Jsonl => "application/jsonl",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Text => "text/plain; charset=utf-8",
        }
    }

    /// The file name extension of a converted file.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Markdown => "md",
            Format::Text => "txt",
            other => other.key(),
        }
    }

    pub fn parse(key: &str) -> Option<Format> {
        let key = key.trim().to_ascii_lowercase();
        let key = match key.as_str() {
            "jpg" => "jpeg",
            "tif" => "tiff",
            "md" => "markdown",
            "txt" => "text",
            "ndjson" => "jsonl",
            other => other,
        };
        Format::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The format a stored file's content type names, if any.
    pub fn of_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.content_type().split(';').next() == Some(essence.as_str()))
            .or(match essence.as_str() {
                "image/jpg" | "image/pjpeg" => Some(Format::Jpeg),
                "image/x-ms-bmp" => Some(Format::Bmp),
                "application/x-ndjson" | "application/x-jsonlines" => Some(Format::Jsonl),
                "text/x-markdown" => Some(Format::Markdown),
                _ => None,
            })
    }

    fn family(self) -> Family {
        match self {
            Format::Png
            | Format::Jpeg
            | Format::Webp
            | Format::Gif
            | Format::Bmp
            | Format::Tiff => Family::Image,
            Format::Csv | Format::Json | Format::Jsonl => Family::Data,
            Format::Xlsx | Format::Ods => Family::Spreadsheet,
            Format::Markdown | Format::Html => Family::Markup,
            Format::Text => Family::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Image,
    Data,
    Spreadsheet,
    Markup,
    Text,
}

/// One option a conversion takes.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    /// `integer`, `string` or `boolean`.
    pub kind: &'static str,
    pub description: &'static str,
}

const WIDTH: OptionSpec = OptionSpec {
    name: "width",
    kind: "integer",
    description: "Output width in pixels (1 to conversions.max_dimension); alone, the height follows the aspect ratio",
};
const HEIGHT: OptionSpec = OptionSpec {
    name: "height",
    kind: "integer",
    description: "Output height in pixels (1 to conversions.max_dimension); alone, the width follows the aspect ratio",
};
const FIT: OptionSpec = OptionSpec {
    name: "fit",
    kind: "string",
    description: "With width and height: `contain` (default, within the box), `cover` (fills it, cropped) or `fill` (stretched)",
};
const QUALITY: OptionSpec = OptionSpec {
    name: "quality",
    kind: "integer",
    description: "JPEG quality, 1 to 100 (default 85)",
};
const HEADER: OptionSpec = OptionSpec {
    name: "header",
    kind: "boolean",
    description: "Whether the first CSV row names the columns (default true): rows become objects keyed by it, else arrays",
};
const DELIMITER: OptionSpec = OptionSpec {
    name: "delimiter",
    kind: "string",
    description: "The CSV field delimiter, one ASCII character (default `,`)",
};
const SHEET: OptionSpec = OptionSpec {
    name: "sheet",
    kind: "string",
    description: "The worksheet to convert, by name (default: the first)",
};
const ENCODING: OptionSpec = OptionSpec {
    name: "encoding",
    kind: "string",
    description: "The input's encoding, a WHATWG label such as `windows-1252`, `iso-8859-2`, `shift_jis`, `utf-16le` (default: from its byte order mark, else UTF-8)",
};

/// The options of converting `from` to `to`, or `None` when there is no such conversion.
pub fn options_of(from: Format, to: Format) -> Option<&'static [OptionSpec]> {
    use Family::*;
    match (from.family(), to.family()) {
        (Image, Image) if to == Format::Jpeg => Some(&[WIDTH, HEIGHT, FIT, QUALITY]),
        (Image, Image) => Some(&[WIDTH, HEIGHT, FIT]),
        (Data, Data) if from != to => match (from, to) {
            (Format::Csv, _) => Some(&[HEADER, DELIMITER]),
            (_, Format::Csv) => Some(&[DELIMITER]),
            _ => Some(&[]),
        },
        (Spreadsheet, Data) if to != Format::Jsonl => match to {
            Format::Csv => Some(&[SHEET, DELIMITER]),
            _ => Some(&[SHEET, HEADER]),
        },
        (Markup, Markup) if from == Format::Markdown && to == Format::Html => Some(&[]),
        (Text, Text) => Some(&[ENCODING]),
        _ => None,
    }
}

/// Every conversion the binary has, in a stable order.
pub fn all() -> Vec<(Format, Format, &'static [OptionSpec])> {
    let mut pairs = Vec::new();
    for from in Format::ALL {
        for to in Format::ALL {
            if let Some(options) = options_of(from, to) {
                pairs.push((from, to, options));
            }
        }
    }
    pairs
}

/// A conversion's options, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Option<Fit>,
    pub quality: Option<u8>,
    pub header: Option<bool>,
    pub delimiter: Option<u8>,
    pub sheet: Option<String>,
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

impl Options {
    /// Checks `value` (a JSON object or absent) against the options of `from` -> `to`;
    /// each problem is reported under `path` (such as `options.width`).
    pub fn parse(
        value: Option<&Value>,
        from: Format,
        to: Format,
        max_dimension: u32,
        path: &str,
        problems: &mut Vec<FieldError>,
    ) -> Options {
        let mut options = Options::default();
        let Some(specs) = options_of(from, to) else {
            return options;
        };
        let Some(value) = value else {
            return options;
        };
        let Some(object) = value.as_object() else {
            problems.push(FieldError::new(path, "must be an object"));
            return options;
        };
        for (name, value) in object {
            let at = format!("{path}.{name}");
            if !specs.iter().any(|s| s.name == name) {
                let known: Vec<_> = specs.iter().map(|s| s.name).collect();
                problems.push(FieldError::new(
                    at,
                    if known.is_empty() {
                        format!("{} to {} takes no options", from.label(), to.label())
                    } else {
                        format!(
                            "not an option of {} to {} (its options: {})",
                            from.label(),
                            to.label(),
                            known.join(", ")
                        )
                    },
                ));
                continue;
            }
            match name.as_str() {
                "width" | "height" => match value.as_u64() {
                    Some(n) if (1..=u64::from(max_dimension)).contains(&n) => {
                        let n = Some(n as u32);
                        if name == "width" {
                            options.width = n;
                        } else {
                            options.height = n;
                        }
                    }
                    _ => problems.push(FieldError::new(
                        at,
                        format!("must be an integer from 1 to {max_dimension}"),
                    )),
                },
                "fit" => match value.as_str().and_then(Fit::parse) {
                    Some(fit) => options.fit = Some(fit),
                    None => {
                        problems.push(FieldError::new(at, "must be `contain`, `cover` or `fill`"))
                    }
                },
                "quality" => match value.as_u64() {
                    Some(n) if (1..=100).contains(&n) => options.quality = Some(n as u8),
                    _ => problems.push(FieldError::new(at, "must be an integer from 1 to 100")),
                },
                "header" => match value.as_bool() {
                    Some(b) => options.header = Some(b),
                    None => problems.push(FieldError::new(at, "must be true or false")),
                },
                "delimiter" => match value.as_str().map(str::as_bytes) {
                    Some([b]) if b.is_ascii() && !matches!(b, b'"' | b'\r' | b'\n') => {
                        options.delimiter = Some(*b)
                    }
                    _ => problems.push(FieldError::new(
                        at,
                        "must be one ASCII character other than a quote or a line break",
                    )),
                },
                "sheet" => match value.as_str() {
                    Some(s) if !s.is_empty() && s.chars().count() <= 255 => {
                        options.sheet = Some(s.to_owned())
                    }
                    _ => problems.push(FieldError::new(at, "must be a sheet name")),
                },
                "encoding" => {
                    match value
                        .as_str()
                        .and_then(|s| encoding_rs::Encoding::for_label(s.as_bytes()))
                    {
                        Some(encoding) => options.encoding = Some(encoding),
                        None => problems.push(FieldError::new(
                            at,
                            "must be a WHATWG encoding label, such as `windows-1252`",
                        )),
                    }
                }
                _ => {}
            }
        }
        if options.fit.is_some() && (options.width.is_none() || options.height.is_none()) {
            problems.push(FieldError::new(
                format!("{path}.fit"),
                "applies only with both width and height",
            ));
        }
        options
    }
}
