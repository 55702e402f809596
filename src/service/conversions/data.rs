//! Data conversions: CSV, JSON (an array of rows) and JSON Lines into one another, and
//! spreadsheets (XLSX, ODS, read by `calamine`) into CSV or JSON.
//!
//! A row is an object keyed by the header (CSV with `header`, the default) or an array.
//! JSON to CSV takes the union of the objects' keys, in the order first seen, as the
//! header; nested values are written as their JSON text. Output is bounded by
//! `max_output_bytes`; spreadsheets, which are zip files, are refused when their entries
//! declare more than `max_decode_bytes` uncompressed.

use std::io::{Cursor, Read as _};

use serde_json::{Map, Value};

use super::{ConvertError, Format, Limits, Options, Output};

/// Converts `input` as `from` to `to` (a pair [`super::formats::options_of`] allows).
pub fn convert(
    from: Format,
    to: Format,
    options: &Options,
    input: &[u8],
    limits: &Limits,
) -> Result<Output, ConvertError> {
    let rows = match from {
        Format::Csv => read_csv(input, options)?,
        Format::Json => read_json(input)?,
        Format::Jsonl => read_jsonl(input)?,
        Format::Xlsx | Format::Ods => {
            let rows = read_sheet(from, input, options, limits)?;
            if to == Format::Json && options.header.unwrap_or(true) {
                keyed_by_header(rows)
            } else {
                rows
            }
        }
        other => unreachable!("{other:?} is not a data format"),
    };
    let bytes = match to {
        Format::Csv => write_csv(&rows, options, limits)?,
        Format::Json => bounded(serde_json::to_vec_pretty(&Value::Array(rows)), limits)?,
        Format::Jsonl => {
            let mut out = Vec::new();
            for row in &rows {
                serde_json::to_writer(&mut out, row).map_err(json_error)?;
                out.push(b'\n');
                check_output(out.len(), limits)?;
            }
            out
        }
        other => unreachable!("{other:?} is not a data output"),
    };
    Ok(Output { bytes, format: to })
}

fn json_error(e: serde_json::Error) -> ConvertError {
    ConvertError::Invalid(format!("could not write JSON: {e}"))
}

fn bounded(out: serde_json::Result<Vec<u8>>, limits: &Limits) -> Result<Vec<u8>, ConvertError> {
    let out = out.map_err(json_error)?;
    check_output(out.len(), limits)?;
    Ok(out)
}

fn check_output(len: usize, limits: &Limits) -> Result<(), ConvertError> {
    if len as u64 > limits.max_output_bytes {
        return Err(ConvertError::TooLarge(format!(
            "the output would be larger than {} bytes (conversions.max_output_bytes)",
            limits.max_output_bytes
        )));
    }
    Ok(())
}

fn text_of(input: &[u8], what: &str) -> Result<String, ConvertError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    String::from_utf8(input.to_vec()).map_err(|_| {
        ConvertError::Invalid(format!(
            "the {what} is not UTF-8 (convert it as text with an `encoding` first)"
        ))
    })
}

fn read_csv(input: &[u8], options: &Options) -> Result<Vec<Value>, ConvertError> {
    let text = text_of(input, "CSV")?;
    let header = options.header.unwrap_or(true);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter.unwrap_or(b','))
        .from_reader(text.as_bytes());
    let mut names: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| ConvertError::Invalid(format!("CSV row {}: {e}", n + 1)))?;
        if header && names.is_none() {
            names = Some(record.iter().map(str::to_owned).collect());
            continue;
        }
        rows.push(match &names {
            Some(names) => {
                let mut object = Map::new();
                for (i, field) in record.iter().enumerate() {
                    let key = names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("column{}", i + 1));
                    object.insert(key, Value::String(field.to_owned()));
                }
                Value::Object(object)
            }
            None => Value::Array(record.iter().map(|f| Value::String(f.to_owned())).collect()),
        });
    }
    Ok(rows)
}

fn read_json(input: &[u8]) -> Result<Vec<Value>, ConvertError> {
    let text = text_of(input, "JSON")?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(rows)) => Ok(rows),
        Ok(_) => Err(ConvertError::Invalid(
            "the JSON must be an array of rows (objects or arrays)".to_owned(),
        )),
        Err(e) => Err(ConvertError::Invalid(format!("not valid JSON: {e}"))),
    }
}

fn read_jsonl(input: &[u8]) -> Result<Vec<Value>, ConvertError> {
    let text = text_of(input, "JSON Lines")?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(
            serde_json::from_str(line)
                .map_err(|e| ConvertError::Invalid(format!("JSON Lines line {}: {e}", n + 1)))?,
        );
    }
    Ok(rows)
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_csv(rows: &[Value], options: &Options, limits: &Limits) -> Result<Vec<u8>, ConvertError> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .delimiter(options.delimiter.unwrap_or(b','))
        .from_writer(Vec::new());
    let csv_error = |e: csv::Error| ConvertError::Invalid(format!("could not write CSV: {e}"));
    // Objects share one header: every key, in the order first seen.
    let mut header: Vec<String> = Vec::new();
    if rows.iter().any(Value::is_object) {
        let mut seen = std::collections::HashSet::new();
        for row in rows {
            if let Value::Object(object) = row {
                for key in object.keys() {
                    if seen.insert(key.clone()) {
                        header.push(key.clone());
                    }
                }
            }
        }
        writer.write_record(&header).map_err(csv_error)?;
    }
    for (n, row) in rows.iter().enumerate() {
        let record: Vec<String> = match row {
            Value::Object(object) => header
                .iter()
                .map(|key| object.get(key).map(cell_text).unwrap_or_default())
                .collect(),
            Value::Array(items) => items.iter().map(cell_text).collect(),
            _ => {
                return Err(ConvertError::Invalid(format!(
                    "row {} is neither an object nor an array",
                    n + 1
                )));
            }
        };
        writer.write_record(&record).map_err(csv_error)?;
        if n % 1024 == 0 {
            writer.flush().map_err(|e| csv_error(e.into()))?;
            check_output(writer.get_ref().len(), limits)?;
        }
    }
    let out = writer
        .into_inner()
        .map_err(|e| ConvertError::Invalid(format!("could not write CSV: {e}")))?;
    check_output(out.len(), limits)?;
    Ok(out)
}

/// The sum of the uncompressed sizes a zip's entries declare, checked before any is
/// inflated.
fn check_zip(from: Format, input: &[u8], limits: &Limits) -> Result<(), ConvertError> {
    let unreadable = |e: zip::result::ZipError| {
        ConvertError::Invalid(format!("not a readable {} file: {e}", from.label()))
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(input)).map_err(unreadable)?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        total = total.saturating_add(archive.by_index_raw(i).map_err(unreadable)?.size());
    }
    if total > limits.max_decode_bytes {
        return Err(ConvertError::TooLarge(format!(
            "the {} file unpacks to {total} bytes; this server unpacks at most {} \
             (conversions.max_decode_bytes)",
            from.label(),
            limits.max_decode_bytes
        )));
    }
    // Entries that inflate to more than they declare are cut by the reader's size check;
    // make sure every entry reads back at its declared size before calamine sees it.
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(unreadable)?;
        let declared = entry.size();
        let mut sink = std::io::sink();
        let read = std::io::copy(&mut (&mut entry).take(declared + 1), &mut sink).map_err(|e| {
            ConvertError::Invalid(format!("not a readable {} file: {e}", from.label()))
        })?;
        if read > declared {
            return Err(ConvertError::Invalid(format!(
                "the {} file's entries are larger than they declare",
                from.label()
            )));
        }
    }
    Ok(())
}

fn read_sheet(
    from: Format,
    input: &[u8],
    options: &Options,
    limits: &Limits,
) -> Result<Vec<Value>, ConvertError> {
    use calamine::Reader as _;
    check_zip(from, input, limits)?;
    let unreadable =
        |e: calamine::Error| ConvertError::Invalid(format!("not a readable {}: {e}", from.label()));
    let mut workbook =
        calamine::open_workbook_auto_from_rs(Cursor::new(input)).map_err(unreadable)?;
    let names = workbook.sheet_names();
    let name = match &options.sheet {
        Some(wanted) => names
            .iter()
            .find(|n| *n == wanted)
            .cloned()
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "no sheet named `{wanted}` (its sheets: {})",
                    names.join(", ")
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| ConvertError::Invalid("the workbook has no sheets".to_owned()))?,
    };
    let range = workbook.worksheet_range(&name).map_err(unreadable)?;
    let cell = |c: &calamine::Data| match c {
        calamine::Data::Empty => Value::Null,
        calamine::Data::Int(i) => Value::from(*i),
        // Spreadsheets store every number as a float: a whole one is written as an
        // integer (36, not 36.0), as the sheet shows it.
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            Value::from(*f as i64)
        }
        calamine::Data::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        calamine::Data::Bool(b) => Value::Bool(*b),
        other => Value::String(other.to_string()),
    };
    // A spreadsheet row is an array; JSON output with `header` keys them by the first row.
    Ok(range
        .rows()
        .map(|r| Value::Array(r.iter().map(cell).collect()))
        .collect())
}

/// Spreadsheet rows for JSON with `header` (the default): the first row names the keys.
fn keyed_by_header(rows: Vec<Value>) -> Vec<Value> {
    let mut rows = rows.into_iter();
    let Some(Value::Array(names)) = rows.next() else {
        return Vec::new();
    };
    let names: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| match cell_text(n) {
            s if s.is_empty() => format!("column{}", i + 1),
            s => s,
        })
        .collect();
    rows.map(|row| match row {
        Value::Array(cells) => Value::Object(
            cells
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        names
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| format!("column{}", i + 1)),
                        c,
                    )
                })
                .collect(),
        ),
        other => other,
    })
    .collect()
}
