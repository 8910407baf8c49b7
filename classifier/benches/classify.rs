//! Classifier throughput and latency over the golden corpus.
//!
//! Prints a table first — commands per second on one core, and p50/p99/max latency per
//! command over many passes of the corpus — then runs criterion for statistically careful
//! per-pass timings. Targets (issue 16): ≥ 200,000 commands/s and p99 ≤ 50 µs.
//!
//!     cargo bench -p airlock-classifier --bench classify

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use airlock_classifier::{Classifier, Context};
use criterion::{Criterion, Throughput, criterion_group};

fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "txt"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((_, cmd)) = line.split_once(char::is_whitespace) {
                out.push(cmd.trim_start().to_owned());
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// The table: single thread, corpus order, warm caches after one untimed pass.
fn table(c: &Classifier, cmds: &[String]) {
    let ctx = Context::default();
    let build = Instant::now();
    let fresh = Classifier::builtin();
    let build = build.elapsed();
    black_box(&fresh);
    for cmd in cmds {
        black_box(c.classify(cmd, &ctx));
    }
    let passes = 30;
    let mut samples = Vec::with_capacity(cmds.len() * passes);
    let start = Instant::now();
    for _ in 0..passes {
        for cmd in cmds {
            let t = Instant::now();
            black_box(c.classify(black_box(cmd), &ctx));
            samples.push(t.elapsed());
        }
    }
    let wall = start.elapsed();
    samples.sort_unstable();
    let n = samples.len();
    let busy: Duration = samples.iter().sum();
    println!();
    println!(
        "classifier over the golden corpus ({} commands × {passes} passes, one thread)",
        cmds.len()
    );
    println!("{:<32} {:>14}", "metric", "value");
    println!(
        "{:<32} {:>14.0}",
        "commands/s (wall clock)",
        n as f64 / wall.as_secs_f64()
    );
    println!(
        "{:<32} {:>14.0}",
        "commands/s (time in classify)",
        n as f64 / busy.as_secs_f64()
    );
    println!(
        "{:<32} {:>11.1} µs",
        "mean latency",
        busy.as_secs_f64() * 1e6 / n as f64
    );
    for (name, p) in [
        ("p50 latency", 0.50),
        ("p90 latency", 0.90),
        ("p99 latency", 0.99),
        ("p99.9 latency", 0.999),
    ] {
        println!(
            "{:<32} {:>11.1} µs",
            name,
            percentile(&samples, p).as_secs_f64() * 1e6
        );
    }
    println!(
        "{:<32} {:>11.1} µs",
        "max latency",
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
    println!(
        "{:<32} {:>11.1} ms",
        "Classifier::builtin() (compile)",
        build.as_secs_f64() * 1e3
    );
    // The slowest commands, so regressions point at their cause.
    let mut per_cmd: Vec<(Duration, &str)> = cmds
        .iter()
        .map(|cmd| {
            let t = Instant::now();
            for _ in 0..20 {
                black_box(c.classify(black_box(cmd), &ctx));
            }
            (t.elapsed() / 20, cmd.as_str())
        })
        .collect();
    per_cmd.sort_by_key(|p| std::cmp::Reverse(p.0));
    println!("slowest commands:");
    for (d, cmd) in per_cmd.iter().take(5) {
        println!(
            "  {:>8.1} µs  {}",
            d.as_secs_f64() * 1e6,
            cmd.chars().take(70).collect::<String>()
        );
    }
    println!();
}

fn bench(cr: &mut Criterion) {
    let c = Classifier::builtin();
    let cmds = corpus();
    let ctx = Context::default();
    let mut g = cr.benchmark_group("classify");
    g.throughput(Throughput::Elements(cmds.len() as u64));
    g.bench_function("golden corpus, one pass", |b| {
        b.iter(|| {
            for cmd in &cmds {
                black_box(c.classify(black_box(cmd), &ctx));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("rm -rf behind sudo + bash -c", |b| {
        b.iter(|| black_box(c.classify(black_box("sudo -u root bash -c 'rm -rf /srv'"), &ctx)))
    });
    g.bench_function("ls -la", |b| {
        b.iter(|| black_box(c.classify(black_box("ls -la"), &ctx)))
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    let c = Classifier::builtin();
    let cmds = corpus();
    table(&c, &cmds);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
