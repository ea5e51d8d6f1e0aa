//! `paddock bench-plot`: draws the comparison's throughput and p99 per
//! workload as an SVG, from the JSON results `bench/compare.sh` collects.
//!
//! Results are `<workload>.<server>.<round>.json` files (`paddock bench
//! --json`); for each workload and server the round of highest throughput is
//! drawn, as the markdown report shows it. Servers are drawn in a fixed order
//! and colour: ZooKeeper and paddock single node, then 3-node ensembles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::prelude::*;
use serde::Deserialize;

/// Arguments of `paddock bench-plot`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// Directory of `<workload>.<server>.<round>.json` results.
    #[arg(long)]
    pub results: PathBuf,
    /// SVG file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// The servers a comparison may hold, in drawing order: (file name part, legend, colour).
const SERVERS: [(&str, &str, RGBColor); 4] = [
    ("zookeeper", "ZooKeeper 3.8", RGBColor(0x9e, 0x9e, 0x9e)),
    ("paddock", "paddock", RGBColor(0x1f, 0x77, 0xb4)),
    ("zookeeper3", "ZooKeeper 3.8, 3 nodes", RGBColor(0x5a, 0x5a, 0x5a)),
    ("paddock3", "paddock, 3 nodes", RGBColor(0x0b, 0x3c, 0x6e)),
];

/// Workloads in the report's order (memory is a table, not a bar).
const WORKLOADS: [&str; 8] = ["create", "set", "get", "mixed", "create-seq-ephemeral", "multi", "watch", "lock"];

#[derive(Deserialize)]
struct Run {
    throughput: f64,
    latency_ms: P99,
}

#[derive(Deserialize)]
struct P99 {
    p99: f64,
}

/// Best run per (workload, server): throughput and p99 ms.
type Figures = BTreeMap<(String, String), (f64, f64)>;

/// Reads the results directory.
fn load(dir: &Path) -> Result<Figures, String> {
    let mut figures = Figures::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else { continue };
        let mut parts = name.rsplitn(3, '.');
        let (Some(_round), Some(server), Some(workload)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let run: Run = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let best = figures.entry((workload.to_string(), server.to_string())).or_insert((0.0, 0.0));
        if run.throughput > best.0 {
            *best = (run.throughput, run.latency_ms.p99);
        }
    }
    Ok(figures)
}

/// Draws the two panels into `out`.
pub fn draw(figures: &Figures, out: &Path) -> Result<(), String> {
    let workloads: Vec<&str> = WORKLOADS.iter().copied().filter(|w| figures.keys().any(|(fw, _)| fw == w)).collect();
    let servers: Vec<&(&str, &str, RGBColor)> = SERVERS.iter().filter(|(s, _, _)| figures.keys().any(|(_, fs)| fs == s)).collect();
    if workloads.is_empty() || servers.is_empty() {
        return Err("no results to plot".into());
    }
    let root = SVGBackend::new(out, (1100, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(410);
    panel(&top, "Throughput (operations/s, higher is better)", &workloads, &servers, figures, |f| f.0, true)?;
    panel(&bottom, "p99 latency (ms, lower is better)", &workloads, &servers, figures, |f| f.1, false)?;
    root.present().map_err(|e| e.to_string())
}

/// One grouped-bar panel: a group per workload, a bar per server.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    workloads: &[&str],
    servers: &[&(&str, &str, RGBColor)],
    figures: &Figures,
    value: impl Fn(&(f64, f64)) -> f64,
    thousands: bool,
) -> Result<(), String> {
    let get = |w: &str, s: &str| figures.get(&(w.to_string(), s.to_string())).map(&value);
    let max = workloads.iter().flat_map(|w| servers.iter().filter_map(move |s| get(w, s.0))).fold(0.0f64, f64::max);
    let n = workloads.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..(max * 1.1).max(1e-9))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            // Label the middle of each group with its workload.
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 && i < n {
                workloads[i].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| match (thousands, max) {
            (true, _) => format!("{:.0}k", y / 1000.0),
            (false, m) if m >= 10.0 => format!("{y:.0}"),
            _ => format!("{y:.2}"),
        })
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / servers.len() as f64;
    for (k, (server, legend, colour)) in servers.iter().enumerate() {
        let bars = workloads.iter().enumerate().filter_map(|(i, w)| {
            let v = get(w, server)?;
            let x0 = i as f64 + 0.1 + k as f64 * width;
            Some(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], colour.filled()))
        });
        let colour = *colour;
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(*legend)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Runs the subcommand.
pub fn main(args: PlotArgs) -> ExitCode {
    match load(&args.results).and_then(|f| draw(&f, &args.out)) {
        Ok(()) => {
            eprintln!("wrote {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-plot: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_every_workload_and_server_found() {
        let dir = tempfile::tempdir().unwrap();
        for (w, s, t, p99) in
            [("create", "paddock", 50_000.0, 9.5), ("create", "zookeeper", 25_000.0, 30.0), ("get", "paddock", 90_000.0, 2.0)]
        {
            let json = format!(r#"{{"throughput": {t}, "latency_ms": {{"p99": {p99}}}}}"#);
            std::fs::write(dir.path().join(format!("{w}.{s}.r1.json")), json).unwrap();
        }
        let figures = load(dir.path()).unwrap();
        assert_eq!(figures[&("create".to_string(), "zookeeper".to_string())], (25_000.0, 30.0));
        let out = dir.path().join("plot.svg");
        draw(&figures, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        for text in ["<svg", "create", "get", "ZooKeeper 3.8", "paddock", "p99 latency"] {
            assert!(svg.contains(text), "the plot lacks {text:?}");
        }
        assert!(draw(&Figures::new(), &out).is_err(), "nothing to plot is an error");
    }
}
