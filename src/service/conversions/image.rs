//! Image conversions on the `image` crate: PNG, JPEG, WebP, GIF, BMP and TIFF to any of
//! them, with an optional resize. Every decoder runs under [`image::Limits`] (width,
//! height, allocation), and the declared dimensions are checked against the pixel budget
//! before a single pixel is decoded, so a small file declaring a huge image (a
//! decompression bomb) is refused without the memory it asks for.
//!
//! The output carries no metadata of the input: the pixels are decoded and encoded
//! again, and no EXIF, XMP, ICC profile or text chunk is copied. The EXIF orientation is
//! applied to the pixels first, so an image looks the same without it.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::{ConvertError, Format, Limits, Options, Output};

/// The formats of this family.
pub const FORMATS: [Format; 6] = [
    Format::Png,
    Format::Jpeg,
    Format::Webp,
    Format::Gif,
    Format::Bmp,
    Format::Tiff,
];

fn image_format(format: Format) -> ImageFormat {
    match format {
        Format::Png => ImageFormat::Png,
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        Format::Bmp => ImageFormat::Bmp,
        Format::Tiff => ImageFormat::Tiff,
        other => unreachable!("{other:?} is not an image format"),
    }
}

/// How a resize fits the image into `width` x `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Within the box, keeping the aspect ratio (the default).
    Contain,
    /// Covers the box, keeping the aspect ratio, cropped to it.
    Cover,
    /// Exactly the box, stretched.
    Fill,
}

impl Fit {
    pub fn parse(text: &str) -> Option<Fit> {
        Some(match text {
            "contain" => Fit::Contain,
            "cover" => Fit::Cover,
            "fill" => Fit::Fill,
            _ => return None,
        })
    }
}

fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_decode_bytes);
    l
}

fn refused(from: Format, e: image::ImageError) -> ConvertError {
    match e {
        image::ImageError::Limits(_) => ConvertError::TooLarge(format!(
            "the {} image is larger than this server converts: {e}",
            from.label()
        )),
        other => ConvertError::Invalid(format!("not a readable {} image: {other}", from.label())),
    }
}

/// Decodes `input` as `from` within `limits`, with its EXIF orientation applied.
pub fn decode(from: Format, input: &[u8], limits: &Limits) -> Result<DynamicImage, ConvertError> {
    let mut reader = ImageReader::with_format(Cursor::new(input), image_format(from));
    reader.limits(decoder_limits(limits));
    // The header first: what the image says it is decides whether it is decoded at all.
    let mut decoder = reader.into_decoder().map_err(|e| refused(from, e))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ConvertError::TooLarge(format!(
            "the image declares {width}x{height} pixels ({pixels}); this server converts at \
             most {} pixels (a decompression bomb is refused before it is decoded)",
            limits.max_pixels
        )));
    }
    let orientation = decoder.orientation().map_err(|e| refused(from, e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| refused(from, e))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Converts one image.
pub fn convert(
    from: Format,
    to: Format,
    options: &Options,
    input: &[u8],
    limits: &Limits,
) -> Result<Output, ConvertError> {
    let mut image = decode(from, input, limits)?;
    if options.width.is_some() || options.height.is_some() {
        image = resize(&image, options);
    }
    let image = match to {
        // JPEG has no alpha; GIF and the lossless WebP encoder take 8-bit RGBA.
        Format::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8()),
        Format::Gif | Format::Webp => DynamicImage::ImageRgba8(image.to_rgba8()),
        Format::Bmp | Format::Tiff => {
            if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            }
        }
        _ => image,
    };
    let mut out = Cursor::new(Vec::new());
    let written = match to {
        Format::Jpeg => image.write_with_encoder(JpegEncoder::new_with_quality(
            &mut out,
            options.quality.unwrap_or(85),
        )),
        other => image.write_to(&mut out, image_format(other)),
    };
    written.map_err(|e| ConvertError::Invalid(format!("could not encode {}: {e}", to.label())))?;
    Ok(Output {
        bytes: out.into_inner(),
        format: to,
    })
}

/// The image resized to the requested box. With one side given, the other follows the
/// aspect ratio.
fn resize(image: &DynamicImage, options: &Options) -> DynamicImage {
    let (w, h) = (image.width().max(1), image.height().max(1));
    let (width, height) = match (options.width, options.height) {
        (Some(width), Some(height)) => (width, height),
        (Some(width), None) => (width, scaled(h, width, w)),
        (None, Some(height)) => (scaled(w, height, h), height),
        (None, None) => (w, h),
    };
    let filter = FilterType::Lanczos3;
    match options.fit.unwrap_or(Fit::Contain) {
        Fit::Contain => image.resize(width, height, filter),
        Fit::Cover => image.resize_to_fill(width, height, filter),
        Fit::Fill => image.resize_exact(width, height, filter),
    }
}

/// `side * new / old`, rounded, at least 1.
fn scaled(side: u32, new: u32, old: u32) -> u32 {
    ((u64::from(side) * u64::from(new) + u64::from(old) / 2) / u64::from(old)).max(1) as u32
}
