//! The landscape figure: filled contours of a probe's energy, arrows of its force, the
//! population on top and a colour bar.

use anyhow::{bail, Result};
use plotters::coord::ReverseCoordTranslate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    color, draw_error, quantile_range, tick_label, Image, Rgb, DESC_SIZE, FONT, LABEL_SIZE,
    TICK_SIZE, TITLE_SIZE,
};

/// Everything the landscape figure shows.
#[derive(Debug, Clone)]
pub(crate) struct LandscapeFigure {
    /// Title above the plot.
    pub(crate) title: String,
    /// A second line under the title (e.g. the friction).
    pub(crate) subtitle: String,
    /// Label of the horizontal axis.
    pub(crate) x_label: String,
    /// Label of the vertical axis.
    pub(crate) y_label: String,
    /// Grid columns (increasing).
    pub(crate) u: Vec<f64>,
    /// Grid rows (increasing).
    pub(crate) v: Vec<f64>,
    /// Energies at `(u[i], v[j])`, index `j·u.len() + i`.
    pub(crate) energy: Vec<f64>,
    /// In-plane forces, index `2·(j·u.len() + i)`.
    pub(crate) force: Vec<f64>,
    /// The population, in plane coordinates.
    pub(crate) points: Vec<(f64, f64)>,
    /// Legend label of the population.
    pub(crate) points_label: String,
}

/// Number of filled contour levels.
const LEVELS: usize = 14;

/// Viridis at eight stops (matplotlib's values), interpolated linearly.
fn viridis(t: f64) -> Rgb {
    const STOPS: [Rgb; 8] = [
        [68, 1, 84],
        [70, 50, 127],
        [54, 92, 141],
        [39, 127, 142],
        [31, 161, 135],
        [74, 194, 109],
        [159, 218, 58],
        [253, 231, 37],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let mix = |c: usize| {
        (f64::from(STOPS[k][c]) * (1.0 - f) + f64::from(STOPS[k + 1][c]) * f).round() as u8
    };
    [mix(0), mix(1), mix(2)]
}

/// The colour of filled level `level` of `LEVELS`.
fn level_color(level: usize) -> Rgb {
    viridis((level as f64 + 0.5) / LEVELS as f64)
}

/// Bilinear interpolation of the grid values at `(a, b)` (inside the grid).
fn bilinear(u: &[f64], v: &[f64], values: &[f64], a: f64, b: f64) -> f64 {
    let cell = |axis: &[f64], x: f64| -> (usize, f64) {
        if axis.len() < 2 {
            return (0, 0.0);
        }
        let k = axis.partition_point(|&g| g <= x).clamp(1, axis.len() - 1) - 1;
        let f = ((x - axis[k]) / (axis[k + 1] - axis[k])).clamp(0.0, 1.0);
        (k, f)
    };
    let ((i, fu), (j, fv)) = (cell(u, a), cell(v, b));
    let n = u.len();
    let at = |i: usize, j: usize| values[j.min(v.len() - 1) * n + i.min(n - 1)];
    (1.0 - fv) * ((1.0 - fu) * at(i, j) + fu * at(i + 1, j))
        + fv * ((1.0 - fu) * at(i, j + 1) + fu * at(i + 1, j + 1))
}

/// Draws the landscape figure on a `width × height` image.
///
/// The colour scale covers the 1%–99% quantiles of the energies (a probe sitting on a
/// particle of a repulsive energy would otherwise flatten the rest into one colour); force
/// arrows on at most 18 × 18 grid points, scaled so that the longest spans one arrow cell.
///
/// # Errors
/// Grid and values of inconsistent sizes; drawing failures.
pub(crate) fn landscape_figure(
    fig: &LandscapeFigure,
    width: usize,
    height: usize,
) -> Result<Image> {
    let (nu, nv) = (fig.u.len(), fig.v.len());
    if nu < 2 || nv < 2 || fig.energy.len() != nu * nv || fig.force.len() != 2 * nu * nv {
        bail!(
            "landscape figure: a {nu} × {nv} grid needs at least 2 × 2 points, {} energies \
             and {} force values; got {} and {}",
            nu * nv,
            2 * nu * nv,
            fig.energy.len(),
            fig.force.len()
        );
    }
    let (lo, hi) = quantile_range(&fig.energy, 0.01);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let level =
        |e: f64| (((e - lo) / (hi - lo) * LEVELS as f64).floor().max(0.0) as usize).min(LEVELS - 1);
    let (u0, u1, v0, v1) = (fig.u[0], fig.u[nu - 1], fig.v[0], fig.v[nv - 1]);
    let err = draw_error(&fig.title);
    Image::draw(width, height, |root| {
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (top, rest) = root.split_vertically(58);
        let centred = |size: u32| {
            (FONT, size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        top.draw_text(&fig.title, &centred(TITLE_SIZE), (width as i32 / 2, 18))
            .map_err(|e| err(e.to_string()))?;
        top.draw_text(&fig.subtitle, &centred(DESC_SIZE), (width as i32 / 2, 42))
            .map_err(|e| err(e.to_string()))?;
        let (main, bar) = rest.split_horizontally(width.saturating_sub(110) as i32);
        let mut c = ChartBuilder::on(&main)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(u0..u1, v0..v1)
            .map_err(|e| err(e.to_string()))?;
        // Filled contours: every pixel of the plotting area takes the colour of the level of
        // the bilinearly interpolated energy there (pixel coordinates are the root's).
        let (xs, ys) = c.plotting_area().get_pixel_range();
        for py in ys {
            for px in xs.clone() {
                let Some((a, b)) = c.as_coord_spec().reverse_translate((px, py)) else {
                    continue;
                };
                let e = bilinear(&fig.u, &fig.v, &fig.energy, a, b);
                root.draw_pixel((px, py), &color(level_color(level(e))))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        c.configure_mesh()
            .x_desc(&fig.x_label)
            .y_desc(&fig.y_label)
            .axis_desc_style((FONT, DESC_SIZE))
            .label_style((FONT, TICK_SIZE))
            .x_label_formatter(&tick_label((u0, u1)))
            .y_label_formatter(&tick_label((v0, v1)))
            .disable_mesh()
            .draw()
            .map_err(|e| err(e.to_string()))?;
        // The population.
        let particle = RGBColor(255, 255, 255);
        c.draw_series(
            fig.points
                .iter()
                .filter(|(a, b)| (u0..=u1).contains(a) && (v0..=v1).contains(b))
                .map(|&p| Circle::new(p, 2, particle.mix(0.8).filled())),
        )
        .map_err(|e| err(e.to_string()))?
        .label(&fig.points_label)
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, RGBColor(140, 140, 140).filled()));
        // Force arrows.
        let stride_u = nu.div_ceil(18).max(1);
        let stride_v = nv.div_ceil(18).max(1);
        let cell = ((u1 - u0) / (nu.div_ceil(stride_u)) as f64)
            .min((v1 - v0) / (nv.div_ceil(stride_v)) as f64);
        let longest = (0..nu * nv)
            .map(|k| fig.force[2 * k].hypot(fig.force[2 * k + 1]))
            .fold(0.0, f64::max);
        let scale = if longest > 0.0 {
            0.9 * cell / longest
        } else {
            0.0
        };
        let arrow = RGBColor(0, 0, 0);
        let mut arrows = Vec::new();
        for j in (stride_v / 2..nv).step_by(stride_v) {
            for i in (stride_u / 2..nu).step_by(stride_u) {
                let k = j * nu + i;
                let (fa, fb) = (fig.force[2 * k] * scale, fig.force[2 * k + 1] * scale);
                let (a, b) = (fig.u[i], fig.v[j]);
                arrows.push(PathElement::new(
                    vec![(a, b), (a + fa, b + fb)],
                    arrow.stroke_width(1),
                ));
                let length = fa.hypot(fb);
                if length > 0.0 {
                    // Head: two strokes at ±25° back from the tip, a third of the length.
                    let (ux, uy) = (fa / length, fb / length);
                    let head = length / 3.0;
                    for s in [-1.0f64, 1.0] {
                        let (c25, s25) = (25f64.to_radians().cos(), s * 25f64.to_radians().sin());
                        let (dx, dy) = (ux * c25 - uy * s25, ux * s25 + uy * c25);
                        arrows.push(PathElement::new(
                            vec![(a + fa, b + fb), (a + fa - head * dx, b + fb - head * dy)],
                            arrow.stroke_width(1),
                        ));
                    }
                }
            }
        }
        c.draw_series(arrows)
            .map_err(|e| err(e.to_string()))?
            .label("force on the probe")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(0, 0, 0)));
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        // Colour bar.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(70)
            .margin_bottom(60)
            .margin_right(12)
            .y_label_area_size(0)
            .right_y_label_area_size(58)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(|e| err(e.to_string()))?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc("E(X ∪ {y}) − E(X)")
            .axis_desc_style((FONT, LABEL_SIZE))
            .label_style((FONT, TICK_SIZE))
            .y_label_formatter(&tick_label((lo, hi)))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        cb.draw_series((0..LEVELS).map(|l| {
            let (a, b) = (
                lo + (hi - lo) * l as f64 / LEVELS as f64,
                lo + (hi - lo) * (l + 1) as f64 / LEVELS as f64,
            );
            Rectangle::new([(0.0, a), (1.0, b)], color(level_color(l)).filled())
        }))
        .map_err(|e| err(e.to_string()))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::count_near;
    use super::*;

    fn figure(n: usize) -> LandscapeFigure {
        let u: Vec<f64> = (0..n)
            .map(|k| -2.0 + 4.0 * k as f64 / (n - 1) as f64)
            .collect();
        let v = u.clone();
        let mut energy = Vec::new();
        let mut force = Vec::new();
        for &b in &v {
            for &a in &u {
                energy.push(0.5 * (a * a + b * b));
                force.extend([-a, -b]);
            }
        }
        LandscapeFigure {
            title: "landscape".into(),
            subtitle: "friction γ = 0.1".into(),
            x_label: "x0".into(),
            y_label: "x1".into(),
            u,
            v,
            energy,
            force,
            points: vec![(0.0, 0.0), (1.0, -1.0)],
            points_label: "snapshot 0".into(),
        }
    }

    /// A bowl: every level present, and the lowest level's pixels centred where all the
    /// levels' pixels (the plotting area) are centred.
    #[test]
    fn filled_contours_of_a_bowl_put_the_low_level_in_the_middle() {
        let image = landscape_figure(&figure(21), 640, 520).unwrap();
        assert_eq!((image.width(), image.height()), (640, 520));
        // Pixels of the given levels left of the colour bar (which shows every level too):
        // their count, centre of mass and bounding-box centre.
        let pixels = |levels: &[usize]| {
            let mut found = Vec::new();
            for y in 0..image.height() {
                for x in 0..image.width() - 110 {
                    let p = image.pixel(x, y);
                    if levels.iter().any(|&l| p == Some(level_color(l))) {
                        found.push((x as f64, y as f64));
                    }
                }
            }
            found
        };
        for l in 0..LEVELS {
            assert!(
                count_near(&image, level_color(l), 0) > 20,
                "level {l} missing"
            );
        }
        let all = pixels(&(0..LEVELS).collect::<Vec<_>>());
        let low = pixels(&[0]);
        assert!(
            all.len() > 100_000 && low.len() > 1000,
            "{} {}",
            all.len(),
            low.len()
        );
        let bounds_centre = |p: &[(f64, f64)]| {
            let (x0, x1) = p
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q.0), b.max(q.0)));
            let (y0, y1) = p
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q.1), b.max(q.1)));
            (0.5 * (x0 + x1), 0.5 * (y0 + y1))
        };
        let (cx, cy) = bounds_centre(&all);
        let n = low.len() as f64;
        let (lx, ly) = (
            low.iter().map(|p| p.0).sum::<f64>() / n,
            low.iter().map(|p| p.1).sum::<f64>() / n,
        );
        assert!(
            (cx - lx).abs() < 5.0 && (cy - ly).abs() < 5.0,
            "{cx},{cy} vs {lx},{ly}"
        );
    }

    #[test]
    fn inconsistent_grids_are_errors() {
        let mut f = figure(5);
        f.energy.pop();
        let msg = format!("{:#}", landscape_figure(&f, 400, 300).err().unwrap());
        assert!(msg.contains("24"), "{msg}");
    }

    #[test]
    fn viridis_ends_at_its_stops() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(0.5), [35, 144, 139]);
    }
}
