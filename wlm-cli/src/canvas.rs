//! A tiny RGB raster: lines, dots, rectangles, 8×8 bitmap text, and PNG encoding.
//!
//! Text comes from the embedded `font8x8` glyphs, so plotting needs no system font and no
//! system library at all.

use std::path::Path;

use anyhow::Context;

/// An RGB colour.
pub(crate) type Rgb = [u8; 3];

/// White.
pub(crate) const WHITE: Rgb = [255, 255, 255];
/// Black.
pub(crate) const BLACK: Rgb = [0, 0, 0];
/// Light grey, for grid lines.
pub(crate) const GRID: Rgb = [225, 225, 225];
/// Mid grey, for secondary marks.
pub(crate) const GREY: Rgb = [120, 120, 120];

/// Width in pixels of one glyph at scale 1.
pub(crate) const GLYPH: usize = 8;

/// An RGB image held in memory.
pub(crate) struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas of `width × height` pixels filled with `background`.
    pub(crate) fn new(width: usize, height: usize, background: Rgb) -> Self {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    #[cfg(test)]
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    #[cfg(test)]
    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// Colour of pixel `(x, y)` (for tests), `None` outside the canvas.
    #[cfg(test)]
    pub(crate) fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = (y * self.width + x) * 3;
            [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
        })
    }

    /// Sets pixel `(x, y)`; coordinates outside the canvas are ignored.
    pub(crate) fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        self.pixels[i..i + 3].copy_from_slice(&color);
    }

    /// Blends `color` over pixel `(x, y)` with opacity `alpha` in `[0, 1]`.
    pub(crate) fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        for (pixel, &target) in self.pixels[i..i + 3].iter_mut().zip(&color) {
            let old = f64::from(*pixel);
            let new = old + alpha * (f64::from(target) - old);
            *pixel = new.round().clamp(0.0, 255.0) as u8;
        }
    }

    /// Fills the rectangle with corners `(x0, y0)` and `(x1, y1)` (inclusive).
    pub(crate) fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, color);
            }
        }
    }

    /// Outlines the rectangle with corners `(x0, y0)` and `(x1, y1)`.
    pub(crate) fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        self.line(x0, y0, x1, y0, color);
        self.line(x1, y0, x1, y1, color);
        self.line(x1, y1, x0, y1, color);
        self.line(x0, y1, x0, y0, color);
    }

    /// A one-pixel line from `(x0, y0)` to `(x1, y1)` (Bresenham).
    pub(crate) fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        let (mut x, mut y) = (x0, y0);
        let dx = (x1 - x0).abs();
        let dy = -(y1 - y0).abs();
        let sx = if x0 < x1 { 1 } else { -1 };
        let sy = if y0 < y1 { 1 } else { -1 };
        let mut err = dx + dy;
        // Bounded: at most dx + dy + 1 pixels.
        for _ in 0..=(dx - dy) {
            self.set(x, y, color);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// A line `width` pixels thick (a square brush dragged along the segment).
    pub(crate) fn thick_line(
        &mut self,
        from: (f64, f64),
        to: (f64, f64),
        width: usize,
        color: Rgb,
    ) {
        let half = (width as i64 - 1) / 2;
        let (x0, y0) = (from.0.round() as i64, from.1.round() as i64);
        let (x1, y1) = (to.0.round() as i64, to.1.round() as i64);
        for ox in -half..=(width as i64 - 1 - half) {
            for oy in -half..=(width as i64 - 1 - half) {
                self.line(x0 + ox, y0 + oy, x1 + ox, y1 + oy, color);
            }
        }
    }

    /// A filled disc of the given radius at `(cx, cy)`, blended with opacity `alpha`.
    pub(crate) fn dot(&mut self, cx: f64, cy: f64, radius: f64, color: Rgb, alpha: f64) {
        let r = radius.ceil() as i64;
        let (ix, iy) = (cx.round() as i64, cy.round() as i64);
        for y in iy - r..=iy + r {
            for x in ix - r..=ix + r {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= radius * radius + 0.25 {
                    self.blend(x, y, color, alpha);
                }
            }
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each glyph `8 × scale` pixels.
    ///
    /// Characters outside the font's basic Latin set are drawn as `?`.
    pub(crate) fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, color: Rgb) {
        for (k, ch) in text.chars().enumerate() {
            let glyph = glyph(ch);
            let gx = x + (k * GLYPH * scale) as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let px = gx + (col * scale) as i64;
                        let py = y + (row * scale) as i64;
                        self.fill_rect(px, py, px + scale as i64 - 1, py + scale as i64 - 1, color);
                    }
                }
            }
        }
    }

    /// Draws `text` rotated a quarter turn counter-clockwise (reading bottom to top), its
    /// bounding box's top-left corner at `(x, y)`.
    pub(crate) fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: usize, color: Rgb) {
        let n = text.chars().count();
        let total = (n * GLYPH * scale) as i64;
        for (k, ch) in text.chars().enumerate() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        // Glyph pixel (col, row) goes to (row, -col) after rotation.
                        let px = x + (row * scale) as i64;
                        let py = y + total - ((k * GLYPH + col + 1) * scale) as i64;
                        self.fill_rect(px, py, px + scale as i64 - 1, py + scale as i64 - 1, color);
                    }
                }
            }
        }
    }

    /// The image encoded as an 8-bit RGB PNG.
    ///
    /// # Errors
    /// Encoder failures (none are expected for an in-memory buffer).
    pub(crate) fn encode_png(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().context("cannot encode png header")?;
            writer
                .write_image_data(&self.pixels)
                .context("cannot encode png data")?;
            writer.finish().context("cannot finish png")?;
        }
        Ok(out)
    }

    /// Writes the image as a PNG file.
    ///
    /// # Errors
    /// Encoding or I/O failures, naming the file.
    pub(crate) fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = self.encode_png()?;
        wlm_data::write_atomic(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The 8×8 bitmap of `ch` (row-major, least significant bit leftmost): basic Latin and
/// Latin-1 (e.g. `±`, `²`); anything else is drawn as `?`.
fn glyph(ch: char) -> [u8; 8] {
    let code = ch as usize;
    match code {
        0..=127 => font8x8::legacy::BASIC_LEGACY[code],
        0xA0..=0xFF => font8x8::legacy::LATIN_LEGACY[code - 0xA0],
        _ => font8x8::legacy::BASIC_LEGACY['?' as usize],
    }
}

/// Width in pixels of `text` at `scale`.
pub(crate) fn text_width(text: &str, scale: usize) -> i64 {
    (text.chars().count() * GLYPH * scale) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_round_trips_dimensions() {
        let canvas = Canvas::new(40, 30, WHITE);
        let bytes = canvas.encode_png().unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, right after the chunk header.
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 40);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 30);
    }

    #[test]
    fn line_reaches_both_endpoints() {
        let mut canvas = Canvas::new(20, 20, WHITE);
        canvas.line(2, 3, 17, 11, BLACK);
        assert_eq!(canvas.pixel(2, 3), Some(BLACK));
        assert_eq!(canvas.pixel(17, 11), Some(BLACK));
        assert_eq!(canvas.pixel(0, 19), Some(WHITE));
    }

    #[test]
    fn text_draws_pixels_only_inside_its_box() {
        let mut canvas = Canvas::new(40, 20, WHITE);
        canvas.text(4, 4, "W1", 1, BLACK);
        let mut inside = 0;
        for y in 0..20 {
            for x in 0..40 {
                let on = canvas.pixel(x, y) == Some(BLACK);
                let in_box = (4..4 + 16).contains(&x) && (4..12).contains(&y);
                assert!(!on || in_box, "pixel ({x}, {y}) outside the text box");
                inside += usize::from(on);
            }
        }
        assert!(inside > 10, "text drew only {inside} pixels");
    }

    #[test]
    fn drawing_outside_the_canvas_is_ignored() {
        let mut canvas = Canvas::new(5, 5, WHITE);
        canvas.line(-10, -10, 20, 20, BLACK);
        canvas.dot(-3.0, 2.0, 2.0, BLACK, 1.0);
        canvas.text(3, 3, "long text", 2, BLACK);
        assert_eq!(canvas.pixel(2, 2), Some(BLACK));
    }
}
