//! Figures drawn with plotters' bitmap backend and an embedded font: line charts (W1 per
//! time, loss, friction); the grids of scatter panels (true vs predicted snapshots) are in
//! `plot/scatter.rs` and the landscape figure in `plot/landscape.rs`.
//!
//! Text is rendered by `ab_glyph` from the embedded DejaVu Sans (`assets/DejaVuSans.ttf`,
//! Bitstream Vera licence beside it), so drawing needs no system font and no system library.

mod landscape;
mod scatter;

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(crate) use landscape::{landscape_figure, LandscapeFigure};
pub(crate) use scatter::{scatter_grid, ScatterGrid, ScatterPanel};

/// An RGB colour.
pub(crate) type Rgb = [u8; 3];

/// Colours of successive series (blue, orange, green, red, purple, brown).
pub(crate) const PALETTE: [Rgb; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// The font family every figure uses (registered from the embedded TTF).
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters, once.
fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font (a unit test draws text with them).
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

fn color(rgb: Rgb) -> RGBColor {
    RGBColor(rgb[0], rgb[1], rgb[2])
}

/// A drawing failure as an error naming the figure.
fn draw_error(figure: &str) -> impl Fn(String) -> anyhow::Error + '_ {
    move |e| anyhow!("cannot draw the figure `{figure}`: {e}")
}

/// An RGB image held in memory.
pub(crate) struct Image {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Image {
    /// Draws on a white `width × height` image with `draw`, given the root drawing area.
    ///
    /// # Errors
    /// The errors of `draw`.
    pub(crate) fn draw(
        width: usize,
        height: usize,
        draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
    ) -> Result<Self> {
        register_font();
        let mut pixels = vec![255u8; width * height * 3];
        {
            let size = (
                u32::try_from(width).context("figure too wide")?,
                u32::try_from(height).context("figure too high")?,
            );
            let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
            draw(&root)?;
            root.present().map_err(|e| anyhow!("cannot draw: {e}"))?;
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
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

    /// Colour of pixel `(x, y)` (for tests), `None` outside the image.
    #[cfg(test)]
    pub(crate) fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = (y * self.width + x) * 3;
            [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
        })
    }

    /// The image as PNG bytes.
    ///
    /// # Errors
    /// Encoding failures.
    pub(crate) fn encode_png(&self) -> Result<Vec<u8>> {
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

    /// Writes the image as a PNG file, atomically.
    ///
    /// # Errors
    /// Encoding or I/O failures, naming the file.
    pub(crate) fn save_png(&self, path: &Path) -> Result<()> {
        let bytes = self.encode_png()?;
        wlm_data::write_atomic(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Points joined by a line.
    Line,
    /// Points joined by a line, with a marker on each.
    LineMarkers,
}

/// One named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend label (no legend entry when empty).
    pub(crate) label: String,
    /// The points, in drawing order. Non-finite points are skipped.
    pub(crate) points: Vec<(f64, f64)>,
    /// Colour.
    pub(crate) color: Rgb,
    /// Line or line with markers.
    pub(crate) style: Style,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineChart {
    /// Title above the plot.
    pub(crate) title: String,
    /// Label of the horizontal axis.
    pub(crate) x_label: String,
    /// Label of the vertical axis.
    pub(crate) y_label: String,
    /// The series, drawn in order.
    pub(crate) series: Vec<Series>,
    /// Logarithmic vertical axis (used only when every finite y is positive).
    pub(crate) log_y: bool,
    /// A dashed vertical marker at this x with a label (e.g. the end of training).
    pub(crate) marker: Option<(f64, String)>,
}

/// A range `(lo, hi)` with `lo < hi` covering the values, padded by `pad` of its width.
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= 1e-12 * (1.0 + lo.abs()) {
        let half = 0.5 * (1.0 + lo.abs()) * 0.1;
        return (lo - half, hi + half);
    }
    let w = hi - lo;
    (lo - pad * w, hi + pad * w)
}

/// Robust bounds: the `q` and `1 − q` quantiles of the values.
pub(crate) fn quantile_range(values: &[f64], q: f64) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(q), at(1.0 - q))
}

// Font sizes in pixels. Even sizes only: plotters' ab_glyph path places each glyph at
// `(size / 2 + top) as i32`, which for an odd size truncates differently above and below
// zero and lifts some glyphs (the decimal point) one pixel off the baseline.
/// Titles.
const TITLE_SIZE: u32 = 20;
/// Axis descriptions and panel titles.
const DESC_SIZE: u32 = 16;
/// Legends.
const LABEL_SIZE: u32 = 14;
/// Tick labels.
const TICK_SIZE: u32 = 12;

/// The corner of the plot whose legend box would cover the fewest points, as a fraction of
/// the ranges (`points` already in `(x, y)` data coordinates, `log_y` applied to `y_range`).
fn legend_position(
    points: &[(f64, f64)],
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> SeriesLabelPosition {
    let fraction = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo);
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let covered = |&(_, right, upper): &(SeriesLabelPosition, bool, bool)| {
        points
            .iter()
            .filter(|&&(x, y)| {
                let (fx, fy) = (fraction(x, x_range), fraction(y, y_range));
                (if right { fx > 0.6 } else { fx < 0.4 })
                    && (if upper { fy > 0.7 } else { fy < 0.3 })
            })
            .count()
    };
    corners
        .iter()
        .min_by_key(|c| covered(c))
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0.clone())
}

/// Draws a line chart on a `width × height` image.
///
/// # Errors
/// Drawing failures.
pub(crate) fn line_chart(chart: &LineChart, width: usize, height: usize) -> Result<Image> {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let all: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(finite)
        .collect();
    let log_y = chart.log_y && !all.is_empty() && all.iter().all(|&(_, y)| y > 0.0);
    let x_range = padded_range(all.iter().map(|p| p.0), 0.02);
    let y_range = if log_y {
        let (lo, hi) = padded_range(all.iter().map(|p| p.1.log10()), 0.05);
        (10f64.powf(lo), 10f64.powf(hi))
    } else {
        padded_range(all.iter().map(|p| p.1), 0.05)
    };
    let fraction_points: Vec<(f64, f64)> = if log_y {
        all.iter().map(|&(x, y)| (x, y.log10())).collect()
    } else {
        all.clone()
    };
    let fraction_y = if log_y {
        (y_range.0.log10(), y_range.1.log10())
    } else {
        y_range
    };
    let legend = legend_position(&fraction_points, x_range, fraction_y);
    let err = draw_error(&chart.title);
    Image::draw(width, height, |root| {
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let builder = |root| {
            let mut b = ChartBuilder::on(root);
            b.caption(&chart.title, (FONT, TITLE_SIZE))
                .margin(12)
                .x_label_area_size(48)
                .y_label_area_size(72);
            b
        };
        // The two branches are deliberately parallel: plotters' log and linear vertical axes
        // are different coordinate types, so the chart and its mesh are built once per type.
        if log_y {
            let mut c = builder(root)
                .build_cartesian_2d(x_range.0..x_range.1, (y_range.0..y_range.1).log_scale())
                .map_err(|e| err(e.to_string()))?;
            c.configure_mesh()
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .axis_desc_style((FONT, DESC_SIZE))
                .label_style((FONT, TICK_SIZE))
                .light_line_style(RGBColor(238, 238, 238))
                .bold_line_style(RGBColor(215, 215, 215))
                .x_label_formatter(&tick_label(x_range))
                .y_label_formatter(&|v| format_log_tick(*v))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            draw_lines(&mut c, chart, y_range, legend).map_err(|e| err(e.to_string()))?;
        } else {
            let mut c = builder(root)
                .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
                .map_err(|e| err(e.to_string()))?;
            c.configure_mesh()
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .axis_desc_style((FONT, DESC_SIZE))
                .label_style((FONT, TICK_SIZE))
                .x_label_formatter(&tick_label(x_range))
                .y_label_formatter(&tick_label(y_range))
                .light_line_style(RGBColor(238, 238, 238))
                .bold_line_style(RGBColor(215, 215, 215))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            draw_lines(&mut c, chart, y_range, legend).map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    })
}

/// The series, the marker and the legend of a line chart on a chart context of any vertical
/// coordinate (linear or logarithmic).
fn draw_lines<'a, Y>(
    c: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    chart: &LineChart,
    y_range: (f64, f64),
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    if let Some((x, label)) = &chart.marker {
        let grey = RGBColor(120, 120, 120);
        c.draw_series(DashedLineSeries::new(
            [(*x, y_range.0), (*x, y_range.1)],
            6,
            5,
            grey.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        c.draw_series(std::iter::once(Text::new(
            format!(" {label}"),
            (*x, y_range.1),
            (FONT, LABEL_SIZE).into_font().color(&grey),
        )))
        .map_err(|e| e.to_string())?;
    }
    for series in &chart.series {
        let points: Vec<(f64, f64)> = series.points.iter().copied().filter(finite).collect();
        let rgb = color(series.color);
        let line = c
            .draw_series(LineSeries::new(points.clone(), rgb.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if !series.label.is_empty() {
            let markers = series.style == Style::LineMarkers;
            line.label(&series.label).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (22, 0)], rgb.stroke_width(2))
                    + Circle::new((11, 0), if markers { 3 } else { 0 }, rgb.filled())
            });
        }
        if series.style == Style::LineMarkers || points.len() == 1 {
            c.draw_series(points.iter().map(|&p| Circle::new(p, 3, rgb.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if chart.series.iter().any(|s| !s.label.is_empty()) {
        c.configure_series_labels()
            .position(legend)
            .margin(10)
            .label_font((FONT, LABEL_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Tick labels of a linear axis over `(lo, hi)`: as many decimals as 1-2-5 ticks about a
/// twelfth of the span apart need, no negative zero, scientific notation for very large or small values.
pub(crate) fn tick_label(range: (f64, f64)) -> impl Fn(&f64) -> String {
    let span = (range.1 - range.0).abs();
    // The finest 1-2-5 step plotters may choose (at most about 12 labels).
    let step = if span.is_finite() && span > 0.0 {
        let raw = span / 12.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= raw * (1.0 - 1e-12))
            .unwrap_or(10.0 * magnitude)
    } else {
        1.0
    };
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    let largest = range.0.abs().max(range.1.abs());
    move |value: &f64| {
        if largest >= 1e5 || (largest < 1e-3 && largest > 0.0) {
            return format!("{value:.1e}");
        }
        let text = format!("{value:.decimals$}");
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        }
    }
}

/// A label for a tick of a logarithmic axis.
fn format_log_tick(value: f64) -> String {
    if (1e-3..1e4).contains(&value) {
        let s = format!("{value:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{value:.0e}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Pixels of `image` within `tolerance` of `rgb` in every channel.
    pub(super) fn count_near(image: &Image, rgb: Rgb, tolerance: u8) -> usize {
        let mut found = 0;
        for y in 0..image.height() {
            for x in 0..image.width() {
                let p = image.pixel(x, y).unwrap();
                found += usize::from((0..3).all(|c| p[c].abs_diff(rgb[c]) <= tolerance));
            }
        }
        found
    }

    /// Pixels neither white nor a pure grey (anti-aliased text is a blend of black on white:
    /// greys; series are coloured).
    fn count_grey_levels(image: &Image) -> usize {
        let mut levels = std::collections::BTreeSet::new();
        for y in 0..image.height() {
            for x in 0..image.width() {
                let p = image.pixel(x, y).unwrap();
                if p[0] == p[1] && p[1] == p[2] {
                    levels.insert(p[0]);
                }
            }
        }
        levels.len()
    }

    #[test]
    fn line_chart_draws_series_colours_and_anti_aliased_text() {
        let chart = LineChart {
            title: "W1 per time".into(),
            x_label: "time".into(),
            y_label: "W1".into(),
            series: vec![Series {
                label: "model".into(),
                points: (0..20)
                    .map(|k| (f64::from(k), f64::from(k).sqrt()))
                    .collect(),
                color: PALETTE[0],
                style: Style::LineMarkers,
            }],
            log_y: false,
            marker: Some((10.0, "test".into())),
        };
        let image = line_chart(&chart, 400, 300).unwrap();
        assert_eq!((image.width(), image.height()), (400, 300));
        let found = count_near(&image, PALETTE[0], 0);
        assert!(found > 100, "only {found} pixels of the series colour");
        // Anti-aliased glyph edges give many grey levels; a 1-bit font gives two or three.
        let levels = count_grey_levels(&image);
        assert!(levels > 30, "only {levels} grey levels");
        assert!(image.encode_png().unwrap().starts_with(b"\x89PNG"));
    }

    #[test]
    fn tick_labels_have_enough_decimals_and_no_negative_zero() {
        let f = tick_label((-1.2, 0.6));
        assert_eq!(
            [f(&-0.0), f(&-1e-17), f(&0.2), f(&-1.0)],
            ["0.0", "0.0", "0.2", "-1.0"]
        );
        let f = tick_label((0.0, 8.0));
        assert_eq!([f(&2.0), f(&-0.0)], ["2", "0"]);
        assert_eq!(tick_label((0.0, 0.004))(&0.0025), "0.0025");
        assert_eq!(tick_label((0.0, 2e6))(&1e6), "1.0e6");
    }

    #[test]
    fn log_axis_chart_of_positive_values_draws() {
        let chart = LineChart {
            title: "loss".into(),
            series: vec![Series {
                label: String::new(),
                points: (1..50)
                    .map(|k| (f64::from(k), 1.0 / f64::from(k)))
                    .collect(),
                color: PALETTE[3],
                style: Style::Line,
            }],
            log_y: true,
            ..LineChart::default()
        };
        let image = line_chart(&chart, 300, 200).unwrap();
        assert!(count_near(&image, PALETTE[3], 0) > 50);
    }

    /// Every glyph of "1 . 1" at every size the figures use sits on one baseline (the lowest
    /// inked row of each glyph is the same).
    #[test]
    fn glyphs_share_a_baseline_at_every_figure_font_size() {
        for size in [TITLE_SIZE, DESC_SIZE, LABEL_SIZE, TICK_SIZE] {
            let image = Image::draw(120, 40, |root| {
                root.draw_text("1 . 1", &(FONT, size).into_font().color(&BLACK), (4, 6))
                    .map_err(|e| anyhow!("{e}"))
            })
            .unwrap();
            let ink = |x: usize, y: usize| image.pixel(x, y).unwrap()[0] < 128;
            let mut bottoms = Vec::new();
            let mut current: Option<usize> = None;
            for x in 0..image.width() {
                let lowest = (0..image.height()).rev().find(|&y| ink(x, y));
                match (lowest, current) {
                    (Some(y), c) => current = Some(c.map_or(y, |c| c.max(y))),
                    (None, Some(c)) => {
                        bottoms.push(c);
                        current = None;
                    }
                    (None, None) => {}
                }
            }
            assert_eq!(bottoms.len(), 3, "size {size}: glyph runs {bottoms:?}");
            assert!(
                bottoms.iter().all(|&b| b == bottoms[0]),
                "size {size}: glyph bottoms {bottoms:?}"
            );
        }
    }
}
