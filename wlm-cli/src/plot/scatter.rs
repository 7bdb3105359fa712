//! Grids of scatter panels (true vs predicted snapshots) with shared axis ranges.

use anyhow::Result;
use plotters::prelude::*;

use super::*;

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

/// Draws a grid of scatter panels with shared axis ranges.
///
/// The ranges cover the 0.5%–99.5% quantiles of all points, so a few runaway predictions do
/// not squeeze the rest into a corner; points outside are not drawn.
///
/// # Errors
/// Drawing failures.
pub(crate) fn scatter_grid(grid: &ScatterGrid, panel_size: usize) -> Result<Image> {
    register_font();
    let columns = grid.columns.max(1);
    let rows = grid.panels.len().div_ceil(columns).max(1);
    let (margin_top, legend_height) = (40usize, 30usize);
    let panel_width = panel_size + 40;
    let panels_width = 40 + columns * panel_width;
    // Wide enough for the title too (a long run name over few panels).
    let title_width = (FONT, TITLE_SIZE)
        .into_font()
        .box_size(&grid.title)
        .map_or(0, |(w, _)| w as usize);
    let width = panels_width.max(title_width + 40);
    let height = margin_top + legend_height + rows * (panel_size + 40) + 10;
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
    let per_panel = xs.len() / grid.panels.len().max(1);
    let (radius, alpha) = if per_panel > 2000 {
        (1, 0.5)
    } else {
        (2, 0.65)
    };
    let err = draw_error(&grid.title);
    Image::draw(width, height, |root| {
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (top, panels) = root.split_vertically((margin_top + legend_height) as i32);
        let (title_area, legend_area) = top.split_vertically(margin_top as i32);
        title_area
            .draw_text(
                &grid.title,
                &(FONT, TITLE_SIZE)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
                (width as i32 / 2, margin_top as i32 / 2),
            )
            .map_err(|e| err(e.to_string()))?;
        let font = (FONT, LABEL_SIZE).into_font();
        let widths: Vec<i32> = grid
            .legend
            .iter()
            .map(|(l, _)| font.box_size(l).map_or(0, |(w, _)| w as i32) + 40)
            .collect();
        let mut x = width as i32 / 2 - widths.iter().sum::<i32>() / 2;
        for ((label, rgb), w) in grid.legend.iter().zip(&widths) {
            let y = legend_height as i32 / 2;
            legend_area
                .draw(&Circle::new((x + 6, y), 5, color(*rgb).filled()))
                .map_err(|e| err(e.to_string()))?;
            legend_area
                .draw_text(
                    label,
                    &font.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
                    (x + 16, y),
                )
                .map_err(|e| err(e.to_string()))?;
            x += w;
        }
        let cells = panels.split_evenly((rows, columns));
        for (k, (panel, area)) in grid.panels.iter().zip(&cells).enumerate() {
            let mut c = ChartBuilder::on(area)
                .caption(&panel.title, (FONT, DESC_SIZE))
                .margin(6)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
                .map_err(|e| err(e.to_string()))?;
            c.configure_mesh()
                .x_desc(&grid.x_label)
                .y_desc(if k % columns == 0 {
                    grid.y_label.as_str()
                } else {
                    ""
                })
                .axis_desc_style((FONT, LABEL_SIZE))
                .label_style((FONT, TICK_SIZE))
                .x_label_formatter(&tick_label(x_range))
                .y_label_formatter(&tick_label(y_range))
                .x_labels(5)
                .y_labels(5)
                .light_line_style(WHITE)
                .bold_line_style(RGBColor(230, 230, 230))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            let inside = |&&(x, y): &&(f64, f64)| {
                x.is_finite()
                    && y.is_finite()
                    && (x_range.0..=x_range.1).contains(&x)
                    && (y_range.0..=y_range.1).contains(&y)
            };
            for (points, rgb) in &panel.clouds {
                let style = color(*rgb).mix(alpha).filled();
                c.draw_series(
                    points
                        .iter()
                        .filter(inside)
                        .map(|&p| Circle::new(p, radius, style)),
                )
                .map_err(|e| err(e.to_string()))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::count_near;

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
        let image = scatter_grid(&grid, 150).unwrap();
        assert!(image.width() > 300 && image.height() > 300);
        assert!(count_near(&image, PALETTE[0], 0) > 10);
        assert!(image.encode_png().is_ok());
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
        register_font();
        let text_width = (FONT, TITLE_SIZE).into_font().box_size(&title).unwrap().0;
        let image = scatter_grid(&grid, 150).unwrap();
        assert!(
            image.width() >= text_width as usize && text_width > 300,
            "{} vs {text_width}",
            image.width()
        );
    }
}
