//! Text in another encoding to UTF-8, with `encoding_rs` (the WHATWG Encoding Standard:
//! its labels, its decoders). Without an `encoding` option a byte order mark decides
//! (UTF-8, UTF-16LE, UTF-16BE), else the text must already be UTF-8. The output has no
//! byte order mark.

use super::{ConvertError, Format, Limits, Options, Output};

pub fn to_utf8(input: &[u8], options: &Options, limits: &Limits) -> Result<Output, ConvertError> {
    let (encoding, body) = match encoding_rs::Encoding::for_bom(input) {
        Some((bom_encoding, bom_len)) if options.encoding.is_none_or(|e| e == bom_encoding) => {
            (bom_encoding, &input[bom_len..])
        }
        _ => (options.encoding.unwrap_or(encoding_rs::UTF_8), input),
    };
    let (text, had_errors) = encoding.decode_without_bom_handling(body);
    if had_errors {
        return Err(ConvertError::Invalid(format!(
            "the text is not valid {}; name its encoding in options.encoding",
            encoding.name()
        )));
    }
    if text.len() as u64 > limits.max_output_bytes {
        return Err(ConvertError::TooLarge(format!(
            "the output would be larger than {} bytes (conversions.max_output_bytes)",
            limits.max_output_bytes
        )));
    }
    Ok(Output {
        bytes: text.into_owned().into_bytes(),
        format: Format::Text,
    })
}
