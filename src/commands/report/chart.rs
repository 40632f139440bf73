//! The report's charts as inline SVG: change per run (added, modified, deleted on a log
//! scale, so twenty deletions among thousands of records still show, with a mark where an
//! alert fired), and records per object over time. Both with dates on the axis.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 56.0;
const BOTTOM_ROOM: f64 = 40.0;
const TOP: f64 = 28.0;
/// Room right of the records plot for the legend: object API names run long.
const LEGEND: f64 = 160.0;
/// Distinct series colours (Tableau 10).
pub const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
pub(super) const ADDED: &str = "#59a14f";
pub(super) const MODIFIED: &str = "#4e79a7";
pub(super) const DELETED: &str = "#e15759";
/// The mark over a run where an alert fired: a colour no series or bar uses.
pub const ALERT_MARK: &str = "#c2185b";

/// One run on the changes chart.
pub(super) struct RunBar {
    pub time_ms: i64,
    /// Added, modified, deleted over every object; None when the run made no snapshot.
    pub changes: Option<(u64, u64, u64)>,
    pub alerts: Vec<String>,
    pub outcome: String,
}

/// `12-01 03:00`: a run's date and time, short enough for an axis.
pub(super) fn short_time(ms: i64) -> String {
    let full = crate::time::format_datetime_z(ms);
    full.get(5..16).unwrap_or(&full).replace('T', " ")
}

/// `1`, `10`, `100`, `1k`, `10k`, `100k`, `1M`
fn tick_label(value: u64) -> String {
    match value {
        v if v >= 1_000_000 => format!("{}M", v / 1_000_000),
        v if v >= 1_000 => format!("{}k", v / 1_000),
        v => v.to_string(),
    }
}

/// Bars per run on a log scale (0 draws nothing; a single change a short bar), oldest run
/// left.
pub(super) fn changes(runs: &[RunBar]) -> String {
    const HEIGHT: f64 = 260.0;
    let plot_bottom = HEIGHT - BOTTOM_ROOM;
    let plot_right = WIDTH - 16.0;
    let max = runs
        .iter()
        .filter_map(|r| r.changes)
        .flat_map(|(a, m, d)| [a, m, d])
        .max()
        .unwrap_or(0)
        .max(10);
    let decades = (max as f64).log10().ceil().max(1.0);
    // log(1 + n): one change still rises above the axis, and 0 stays on it.
    let y =
        |v: u64| plot_bottom - ((1.0 + v as f64).log10() / decades).min(1.0) * (plot_bottom - TOP);
    let mut svg = format!(
        "<svg class=\"changes\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"records added, modified and deleted per run\">\n"
    );
    for decade in 0..=decades as u32 {
        let value = 10u64.pow(decade);
        let at = y(value);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{at:.1}\" x2=\"{plot_right}\" y2=\"{at:.1}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            at + 4.0,
            tick_label(value)
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{plot_bottom}\" x2=\"{plot_right}\" y2=\"{plot_bottom}\" stroke=\"#888\"/>"
    );
    let band = (plot_right - LEFT) / runs.len().max(1) as f64;
    let bar = (band / 4.0).min(18.0);
    // At most about a dozen dates fit under the axis.
    let every = runs.len().div_ceil(12).max(1);
    for (i, run) in runs.iter().enumerate() {
        let start = LEFT + band * i as f64 + (band - 3.0 * bar) / 2.0;
        let when = short_time(run.time_ms);
        match run.changes {
            Some((added, modified, deleted)) => {
                for (k, (kind, value, colour)) in [
                    ("added", added, ADDED),
                    ("modified", modified, MODIFIED),
                    ("deleted", deleted, DELETED),
                ]
                .into_iter()
                .enumerate()
                {
                    let top = if value == 0 { plot_bottom } else { y(value) };
                    let _ = writeln!(
                        svg,
                        "<rect class=\"bar {kind}\" data-run=\"{}\" data-count=\"{value}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {kind}: {value}</title></rect>",
                        escape(&when),
                        start + bar * k as f64,
                        (plot_bottom - top).max(0.0),
                        escape(&when)
                    );
                }
            }
            None => {
                let _ = writeln!(
                    svg,
                    "<text class=\"failed-mark\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" fill=\"#888\" text-anchor=\"middle\">×<title>{} {}: no snapshot</title></text>",
                    start + 1.5 * bar,
                    plot_bottom - 4.0,
                    escape(&when),
                    escape(&run.outcome)
                );
            }
        }
        if !run.alerts.is_empty() {
            let x = start + 1.5 * bar;
            let _ = writeln!(
                svg,
                "<path class=\"alert-mark\" d=\"M{:.1},{:.1} l7,12 l-14,0 z\" fill=\"{ALERT_MARK}\"><title>{}</title></path>",
                x,
                TOP - 20.0,
                escape(&run.alerts.join("\n"))
            );
        }
        if i % every == 0 || i + 1 == runs.len() {
            let _ = writeln!(
                svg,
                "<text class=\"date\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                LEFT + band * (i as f64 + 0.5),
                plot_bottom + 14.0,
                escape(&when)
            );
        }
    }
    let legend = [
        ("added", ADDED),
        ("modified", MODIFIED),
        ("deleted", DELETED),
    ];
    for (k, (name, colour)) in legend.iter().enumerate() {
        let x = LEFT + 90.0 * k as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{name}</text>",
            HEIGHT - 16.0,
            x + 14.0,
            HEIGHT - 7.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One `<polyline class="series" data-object=...>` per object: records over snapshot times,
/// with the snapshots' dates under the axis.
pub(super) fn records(series: &BTreeMap<String, Vec<(i64, u64)>>) -> String {
    const HEIGHT: f64 = 320.0;
    let plot_bottom = HEIGHT - BOTTOM_ROOM;
    let plot_right = WIDTH - LEGEND;
    let points: Vec<(i64, u64)> = series.values().flatten().copied().collect();
    let (min_t, max_t) = points
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    let max_n = points.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let span = (max_t - min_t).max(1) as f64;
    let x = |t: i64| LEFT + (t - min_t) as f64 / span * (plot_right - LEFT);
    let y = |n: u64| plot_bottom - n as f64 / max_n as f64 * (plot_bottom - TOP);
    let mut svg = format!(
        "<svg class=\"records\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"records per object over time\">\n"
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{plot_bottom}\" x2=\"{plot_right}\" y2=\"{plot_bottom}\" stroke=\"#888\"/><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{plot_bottom}\" stroke=\"#888\"/>"
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{plot_bottom}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        LEFT - 6.0,
        TOP + 4.0,
        crate::text::count(max_n),
        LEFT - 6.0
    );
    let mut times: Vec<i64> = points.iter().map(|(t, _)| *t).collect();
    times.sort_unstable();
    times.dedup();
    let every = times.len().div_ceil(6).max(1);
    for (i, t) in times.iter().enumerate() {
        if i % every == 0 || i + 1 == times.len() {
            let _ = writeln!(
                svg,
                "<text class=\"date\" x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                x(*t),
                plot_bottom + 14.0,
                escape(&short_time(*t))
            );
        }
    }
    for (i, (object, values)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = values
            .iter()
            .map(|(t, n)| format!("{:.1},{:.1}", x(*t), y(*n)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"series\" data-object=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            escape(object),
            path.join(" "),
            escape(object)
        );
        // The latest count beside the name: lines with equal counts lie on top of each other.
        let latest = values.last().map_or(0, |(_, n)| *n);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{} {latest}</text>",
            plot_right + 8.0,
            TOP + 14.0 * i as f64,
            escape(object)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_deletions_among_thousands_of_changes_stand_out() {
        let runs = [
            RunBar {
                time_ms: 1_764_558_000_000,
                changes: Some((1440, 0, 0)),
                alerts: Vec::new(),
                outcome: "success".into(),
            },
            RunBar {
                time_ms: 1_764_644_400_000,
                changes: Some((0, 3, 20)),
                alerts: vec!["Contact: 20 of 1440 deleted".into()],
                outcome: "success".into(),
            },
        ];
        let svg = changes(&runs);
        let height_of = |kind: &str, run: usize| -> f64 {
            let bar = svg
                .split(&format!("<rect class=\"bar {kind}\""))
                .nth(run + 1)
                .expect("the bar");
            let h = bar.split("height=\"").nth(1).expect("height");
            h.split('"').next().expect("value").parse().expect("number")
        };
        // On a log scale 20 is more than a third of 1440's height; on a linear one it would
        // be under 2%.
        assert!(height_of("deleted", 1) > height_of("added", 0) / 3.0);
        assert_eq!(height_of("deleted", 0), 0.0);
        assert!(height_of("modified", 1) > 10.0, "three changes show");
        assert_eq!(svg.matches("class=\"alert-mark\"").count(), 1);
        assert!(svg.contains(">12-01 03:00</text>"), "{svg}");
    }
}
