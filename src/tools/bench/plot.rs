//! A line chart as a standalone SVG file: axes with ticks, one line of
//! points, a title. Enough to look at a latency CDF or a rate over time
//! without any other tool.

use std::fmt::Write as _;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// One axis: its label and scale.
pub struct Axis {
    label: String,
    log: bool,
}

impl Axis {
    pub fn linear(label: &str) -> Self {
        Self {
            label: label.into(),
            log: false,
        }
    }

    pub fn log(label: &str) -> Self {
        Self {
            label: label.into(),
            log: true,
        }
    }

    /// The range drawn and the tick values for data from `min` to `max`.
    fn ticks(&self, min: f64, max: f64) -> (f64, f64, Vec<f64>) {
        if self.log {
            let lo = min.max(1e-3).log10().floor();
            let hi = max.max(min.max(1e-3) * 10.0).log10().ceil();
            let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            (10f64.powf(lo), 10f64.powf(hi), ticks)
        } else {
            let lo = min.min(0.0);
            let hi = if max > lo { max } else { lo + 1.0 };
            let raw = (hi - lo) / 5.0;
            let magnitude = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * magnitude)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            let hi = (hi / step).ceil() * step;
            let ticks = (0..=((hi - lo) / step).round() as usize)
                .map(|i| lo + step * i as f64)
                .collect();
            (lo, hi, ticks)
        }
    }

    fn position(&self, v: f64, lo: f64, hi: f64) -> f64 {
        if self.log {
            (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10())
        } else {
            (v - lo) / (hi - lo)
        }
    }
}

/// A chart of one line.
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub points: Vec<(f64, f64)>,
}

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    pub fn svg(&self) -> String {
        let finite = || {
            self.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        let (x_min, x_max) = finite().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
        let (y_min, y_max) = finite().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
        let (x_min, x_max) = if x_min <= x_max {
            (x_min, x_max)
        } else {
            (0.0, 1.0)
        };
        let (y_min, y_max) = if y_min <= y_max {
            (y_min, y_max)
        } else {
            (0.0, 1.0)
        };
        let (x_lo, x_hi, x_ticks) = self.x.ticks(x_min, x_max);
        let (y_lo, y_hi, y_ticks) = self.y.ticks(y_min, y_max);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let px = |x: f64| LEFT + plot_w * self.x.position(x, x_lo, x_hi);
        let py = |y: f64| TOP + plot_h * (1.0 - self.y.position(y, y_lo, y_hi));

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="25" text-anchor="middle" font-size="15">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        );
        for t in &x_ticks {
            let x = px(*t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 18.0,
                label(*t)
            );
        }
        for t in &y_ticks {
            let y = py(*t);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 8.0,
                y + 4.0,
                label(*t)
            );
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 15.0,
            escape(&self.x.label)
        );
        let _ = writeln!(
            svg,
            r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.y.label)
        );
        let line: Vec<String> = finite()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
            line.join(" ")
        );
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_point_and_survives_empty_data() {
        let chart = Chart {
            title: "a < b".into(),
            x: Axis::log("us"),
            y: Axis::linear("%"),
            points: vec![(50.0, 10.0), (80.0, 50.0), (400.0, 100.0)],
        };
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b"));
        let polyline = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(polyline.matches(',').count(), 3);
        let empty = Chart {
            points: vec![],
            ..chart
        };
        assert!(empty.svg().contains("<polyline"));
    }
}
