//! Charts drawn on a [`Canvas`]: line charts (W1 per time, loss, friction) and grids of
//! scatter panels (true vs predicted snapshots).

use crate::canvas::{text_width, Canvas, Rgb, BLACK, GREY, GRID, WHITE};

/// Colours of successive series (blue, orange, green, red, purple, brown).
pub(crate) const PALETTE: [Rgb; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

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
    /// Legend label.
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

/// One scatter panel: clouds of 2-D points, each with a colour.
#[derive(Debug, Clone)]
pub(crate) struct ScatterPanel {
    /// Title above the panel.
    pub(crate) title: String,
    /// Clouds drawn in order, each `(points, colour)`.
    pub(crate) clouds: Vec<(Vec<(f64, f64)>, Rgb)>,
}

/// A grid of scatter panels sharing one pair of axis ranges.
#[derive(Debug, Clone)]
pub(crate) struct ScatterGrid {
    /// Title of the whole figure.
    pub(crate) title: String,
    /// Panels in row-major order.
    pub(crate) panels: Vec<ScatterPanel>,
    /// Number of panel columns.
    pub(crate) columns: usize,
    /// Label of the horizontal axis of every panel.
    pub(crate) x_label: String,
    /// Label of the vertical axis of every panel.
    pub(crate) y_label: String,
    /// Legend entries `(label, colour)` drawn under the title.
    pub(crate) legend: Vec<(String, Rgb)>,
}

/// Maps data coordinates to pixels inside a rectangle.
#[derive(Debug, Clone, Copy)]
struct Frame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    x_range: (f64, f64),
    y_range: (f64, f64),
    log_y: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let (lo, hi) = self.x_range;
        self.left + (x - lo) / (hi - lo) * (self.right - self.left)
    }

    fn py(&self, y: f64) -> f64 {
        let y = if self.log_y { y.log10() } else { y };
        let (lo, hi) = self.y_range;
        self.bottom - (y - lo) / (hi - lo) * (self.bottom - self.top)
    }

    fn contains(&self, px: f64, py: f64) -> bool {
        px >= self.left - 0.5
            && px <= self.right + 0.5
            && py >= self.top - 0.5
            && py <= self.bottom + 0.5
    }
}

/// A range `(lo, hi)` with `lo < hi` covering the values, padded by `pad` of its width.
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
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
fn quantile_range(values: &[f64], q: f64) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(q), at(1.0 - q))
}

/// About five "nice" tick positions (1, 2, 2.5 or 5 × 10^k apart) inside `(lo, hi)`.
pub(crate) fn nice_ticks(lo: f64, hi: f64) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 1.0);
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// A tick label for `value` on an axis whose ticks are `step` apart.
pub(crate) fn format_tick(value: f64, step: f64) -> String {
    let value = if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    };
    let a = value.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        return format!("{value:.1e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let decimals = if (step * 10f64.powi(decimals as i32) - 2.5).abs() < 1e-9 {
        decimals + 1
    } else {
        decimals
    };
    format!("{value:.decimals$}")
}

/// Draws axes, grid, ticks and labels of `frame` on the canvas.
fn draw_axes(canvas: &mut Canvas, frame: &Frame, x_label: &str, y_label: &str) {
    let (l, t, r, b) = (
        frame.left as i64,
        frame.top as i64,
        frame.right as i64,
        frame.bottom as i64,
    );
    let (x_ticks, x_step) = nice_ticks(frame.x_range.0, frame.x_range.1);
    let (y_ticks, y_step) = nice_ticks(frame.y_range.0, frame.y_range.1);
    for &x in &x_ticks {
        let px = frame.px(x).round() as i64;
        canvas.line(px, t, px, b, GRID);
    }
    for &y in &y_ticks {
        let py = if frame.log_y {
            frame.py(10f64.powf(y))
        } else {
            frame.py(y)
        }
        .round() as i64;
        canvas.line(l, py, r, py, GRID);
    }
    canvas.rect(l, t, r, b, BLACK);
    for &x in &x_ticks {
        let px = frame.px(x).round() as i64;
        canvas.line(px, b, px, b + 4, BLACK);
        let label = format_tick(x, x_step);
        canvas.text(px - text_width(&label, 1) / 2, b + 7, &label, 1, BLACK);
    }
    let mut widest = 0;
    for &y in &y_ticks {
        let (value, py) = if frame.log_y {
            (10f64.powf(y), frame.py(10f64.powf(y)))
        } else {
            (y, frame.py(y))
        };
        let py = py.round() as i64;
        canvas.line(l - 4, py, l, py, BLACK);
        let label = if frame.log_y {
            format_log_tick(value)
        } else {
            format_tick(value, y_step)
        };
        let w = text_width(&label, 1);
        widest = widest.max(w);
        canvas.text(l - 7 - w, py - 4, &label, 1, BLACK);
    }
    if !x_label.is_empty() {
        let w = text_width(x_label, 1);
        canvas.text((l + r) / 2 - w / 2, b + 20, x_label, 1, BLACK);
    }
    if !y_label.is_empty() {
        let h = text_width(y_label, 1);
        canvas.text_vertical(l - 7 - widest - 14, (t + b) / 2 - h / 2, y_label, 1, BLACK);
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

/// Draws a line chart on a `width × height` canvas.
pub(crate) fn line_chart(chart: &LineChart, width: usize, height: usize) -> Canvas {
    let mut canvas = Canvas::new(width, height, WHITE);
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
        padded_range(all.iter().map(|p| p.1.log10()), 0.05)
    } else {
        padded_range(all.iter().map(|p| p.1), 0.05)
    };
    let title_h = 30.0;
    let frame = Frame {
        left: 80.0,
        top: title_h + 10.0,
        right: width as f64 - 20.0,
        bottom: height as f64 - 45.0,
        x_range,
        y_range,
        log_y,
    };
    canvas.text(
        (width as i64 - text_width(&chart.title, 2)) / 2,
        10,
        &chart.title,
        2,
        BLACK,
    );
    draw_axes(&mut canvas, &frame, &chart.x_label, &chart.y_label);
    if let Some((x, label)) = &chart.marker {
        let px = frame.px(*x).round() as i64;
        if frame.contains(px as f64, frame.top) {
            let mut y = frame.top as i64;
            while y < frame.bottom as i64 {
                canvas.line(px, y, px, (y + 4).min(frame.bottom as i64), GREY);
                y += 8;
            }
            canvas.text(px + 4, frame.top as i64 + 4, label, 1, GREY);
        }
    }
    for series in &chart.series {
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(finite)
            .map(|(x, y)| (frame.px(x), frame.py(y)))
            .collect();
        for pair in pts.windows(2) {
            if frame.contains(pair[0].0, pair[0].1) && frame.contains(pair[1].0, pair[1].1) {
                canvas.thick_line(pair[0], pair[1], 2, series.color);
            }
        }
        if series.style == Style::LineMarkers || pts.len() == 1 {
            for &(px, py) in &pts {
                canvas.dot(px, py, 3.0, series.color, 1.0);
            }
        }
    }
    let entries: Vec<(String, Rgb)> = chart
        .series
        .iter()
        .map(|s| (s.label.clone(), s.color))
        .collect();
    let (w, h) = legend_size(&entries);
    // The corner whose legend box covers the fewest data points.
    let pixels: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied().filter(finite))
        .map(|(x, y)| (frame.px(x), frame.py(y)))
        .collect();
    let (l, t, r, b) = (
        frame.left as i64 + 8 + w,
        frame.top as i64 + 8,
        frame.right as i64 - 8,
        frame.bottom as i64 - 8 - h,
    );
    let corners = [(r, t), (l, t), (r, b), (l, b)];
    let covered = |&(right, top): &(i64, i64)| {
        pixels
            .iter()
            .filter(|&&(px, py)| {
                px >= (right - w - 4) as f64
                    && px <= (right + 4) as f64
                    && py >= (top - 4) as f64
                    && py <= (top + h + 4) as f64
            })
            .count()
    };
    let best = corners
        .iter()
        .min_by_key(|c| covered(c))
        .copied()
        .unwrap_or((r, t));
    draw_legend(&mut canvas, best.0, best.1, &entries);
    canvas
}

/// Width and height in pixels of the legend box of `entries`.
fn legend_size(entries: &[(String, Rgb)]) -> (i64, i64) {
    let shown: Vec<&(String, Rgb)> = entries.iter().filter(|e| !e.0.is_empty()).collect();
    let widest = shown.iter().map(|e| text_width(&e.0, 1)).max().unwrap_or(0);
    (widest + 30, 14 * shown.len() as i64 + 6)
}

/// Legend box with its top-right corner at `(right, top)`.
fn draw_legend(canvas: &mut Canvas, right: i64, top: i64, entries: &[(String, Rgb)]) {
    let entries: Vec<&(String, Rgb)> = entries.iter().filter(|e| !e.0.is_empty()).collect();
    if entries.is_empty() {
        return;
    }
    let owned: Vec<(String, Rgb)> = entries.iter().map(|e| (*e).clone()).collect();
    let (w, h) = legend_size(&owned);
    let left = right - w;
    canvas.fill_rect(left, top, right, top + h, WHITE);
    canvas.rect(left, top, right, top + h, GREY);
    for (k, (label, color)) in entries.iter().enumerate() {
        let y = top + 5 + 14 * k as i64;
        canvas.fill_rect(left + 5, y + 1, left + 17, y + 7, *color);
        canvas.text(left + 22, y, label, 1, BLACK);
    }
}

/// Draws a grid of scatter panels with shared axis ranges.
///
/// The ranges cover the 0.5%–99.5% quantiles of all points, so a few runaway predictions do
/// not squeeze the rest into a corner; points outside are not drawn.
pub(crate) fn scatter_grid(grid: &ScatterGrid, panel_size: usize) -> Canvas {
    let columns = grid.columns.max(1);
    let rows = grid.panels.len().div_ceil(columns).max(1);
    let margin_left = 70usize;
    let margin_top = 56usize;
    let gap = 60usize;
    let panels_width = margin_left + columns * panel_size + (columns - 1) * gap + 20;
    // Wide enough for the title too (a long run name over few panels).
    let width = panels_width.max(usize::try_from(text_width(&grid.title, 2)).unwrap_or(0) + 20);
    let height = margin_top + rows * (panel_size + gap) + 10;
    let mut canvas = Canvas::new(width, height, WHITE);
    canvas.text(
        (width as i64 - text_width(&grid.title, 2)) / 2,
        8,
        &grid.title,
        2,
        BLACK,
    );
    let xs: Vec<f64> = grid
        .panels
        .iter()
        .flat_map(|p| p.clouds.iter().flat_map(|c| c.0.iter().map(|q| q.0)))
        .collect();
    let ys: Vec<f64> = grid
        .panels
        .iter()
        .flat_map(|p| p.clouds.iter().flat_map(|c| c.0.iter().map(|q| q.1)))
        .collect();
    let x_range = {
        let (lo, hi) = quantile_range(&xs, 0.005);
        padded_range([lo, hi].into_iter(), 0.05)
    };
    let y_range = {
        let (lo, hi) = quantile_range(&ys, 0.005);
        padded_range([lo, hi].into_iter(), 0.05)
    };
    // Legend, centred under the title.
    let mut x = width as i64 / 2
        - grid
            .legend
            .iter()
            .map(|(l, _)| text_width(l, 1) + 36)
            .sum::<i64>()
            / 2;
    for (label, color) in &grid.legend {
        canvas.dot(x as f64 + 5.0, 34.0, 4.0, *color, 1.0);
        canvas.text(x + 14, 30, label, 1, BLACK);
        x += text_width(label, 1) + 36;
    }
    let n_points: usize = grid
        .panels
        .iter()
        .map(|p| p.clouds.iter().map(|c| c.0.len()).sum::<usize>())
        .sum();
    let per_panel = n_points / grid.panels.len().max(1);
    let (radius, alpha) = if per_panel > 2000 {
        (1.2, 0.5)
    } else {
        (2.0, 0.65)
    };
    for (k, panel) in grid.panels.iter().enumerate() {
        let (row, col) = (k / columns, k % columns);
        let left = (margin_left + col * (panel_size + gap)) as f64;
        let top = (margin_top + row * (panel_size + gap)) as f64 + 14.0;
        let frame = Frame {
            left,
            top,
            right: left + panel_size as f64,
            bottom: top + panel_size as f64 - 14.0,
            x_range,
            y_range,
            log_y: false,
        };
        canvas.text(
            (left + panel_size as f64 / 2.0) as i64 - text_width(&panel.title, 1) / 2,
            top as i64 - 12,
            &panel.title,
            1,
            BLACK,
        );
        draw_axes(
            &mut canvas,
            &frame,
            &grid.x_label,
            if col == 0 { &grid.y_label } else { "" },
        );
        for (points, color) in &panel.clouds {
            for &(x, y) in points {
                let (px, py) = (frame.px(x), frame.py(y));
                if x.is_finite() && y.is_finite() && frame.contains(px, py) {
                    canvas.dot(px, py, radius, *color, alpha);
                }
            }
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_lie_inside_the_range_and_are_evenly_spaced() {
        for &(lo, hi) in &[
            (0.0, 1.0),
            (-3.7, 12.2),
            (1e-4, 3e-4),
            (0.95, 1.05),
            (-1e6, 2e6),
        ] {
            let (ticks, step) = nice_ticks(lo, hi);
            assert!(
                ticks.len() >= 2 && ticks.len() <= 11,
                "{lo}..{hi}: {ticks:?}"
            );
            assert!(ticks.iter().all(|&t| t >= lo - 1e-12 && t <= hi + 1e-12));
            for pair in ticks.windows(2) {
                assert!((pair[1] - pair[0] - step).abs() < 1e-9 * step.max(1.0));
            }
        }
    }

    #[test]
    fn tick_labels_show_enough_decimals() {
        assert_eq!(format_tick(0.5, 0.5), "0.5");
        assert_eq!(format_tick(0.25, 0.25), "0.25");
        assert_eq!(format_tick(2.0, 1.0), "2");
        assert_eq!(format_tick(1e-17, 0.2), "0.0");
        assert_eq!(format_tick(2e-5, 1e-5), "2.0e-5");
    }

    #[test]
    fn line_chart_draws_series_colours() {
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
        let canvas = line_chart(&chart, 400, 300);
        let mut found = 0;
        for y in 0..canvas.height() {
            for x in 0..canvas.width() {
                found += usize::from(canvas.pixel(x, y) == Some(PALETTE[0]));
            }
        }
        assert!(found > 100, "only {found} pixels of the series colour");
    }

    #[test]
    fn scatter_grid_survives_degenerate_and_non_finite_points() {
        let grid = ScatterGrid {
            title: "t".into(),
            panels: vec![
                ScatterPanel {
                    title: "a".into(),
                    clouds: vec![(vec![(1.0, 1.0), (1.0, 1.0)], PALETTE[0])],
                },
                ScatterPanel {
                    title: "b".into(),
                    clouds: vec![(vec![(f64::NAN, 0.0), (f64::INFINITY, 2.0)], PALETTE[1])],
                },
                ScatterPanel {
                    title: "empty".into(),
                    clouds: vec![],
                },
            ],
            columns: 2,
            x_label: "x0".into(),
            y_label: "x1".into(),
            legend: vec![("true".into(), PALETTE[0])],
        };
        let canvas = scatter_grid(&grid, 150);
        assert!(canvas.width() > 300 && canvas.height() > 300);
        assert!(canvas.encode_png().is_ok());
    }

    #[test]
    fn a_long_title_widens_a_narrow_grid() {
        let title = "ocean-big-forecast-10-seed0: observed vs forecast".to_string();
        let grid = ScatterGrid {
            title: title.clone(),
            panels: vec![ScatterPanel {
                title: "a".into(),
                clouds: vec![(vec![(0.0, 0.0), (1.0, 1.0)], PALETTE[0])],
            }],
            columns: 1,
            x_label: "x0".into(),
            y_label: "x1".into(),
            legend: vec![],
        };
        let canvas = scatter_grid(&grid, 150);
        assert!(
            canvas.width() as i64 >= text_width(&title, 2),
            "{}",
            canvas.width()
        );
    }
}
