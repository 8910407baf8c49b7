//! `airlock classify`: the classifier's verdict on one command, or on one command per line of
//! stdin (`--stdin`, one output line per input line, in order, for batch use and CI).

use std::io::{BufRead, Write};

use airlock_classifier::{Assessment, Classifier, Context};
use anyhow::{Result, bail};
use serde::Serialize;

/// `--target-label k=v` arguments as a classifier context.
pub fn context(labels: &[String]) -> Result<Context> {
    let mut ctx = Context::default();
    for l in labels {
        let Some((k, v)) = l.split_once('=') else {
            bail!("--target-label {l:?}: expected K=V")
        };
        ctx.labels.insert(k.to_owned(), v.to_owned());
    }
    Ok(ctx)
}

#[derive(Serialize)]
struct Line<'a> {
    command: &'a str,
    #[serde(flatten)]
    assessment: &'a Assessment,
}

pub fn print_human(out: &mut impl Write, a: &Assessment) -> std::io::Result<()> {
    writeln!(out, "{} (score {})", a.tier, a.score)?;
    for r in &a.reasons {
        writeln!(out, "  - [{}] {} ({})", r.tier, r.text, r.rule)?;
    }
    // The gateway judges these files too when the command runs (docs/classifier.md).
    for f in &a.files {
        let role = serde_json::to_value(f.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "  runs {} as {role}: the gateway reads and judges it on the target when it runs",
            f.path
        )?;
    }
    Ok(())
}

/// Classify one command and print the verdict.
pub fn one(classifier: &Classifier, ctx: &Context, json: bool, command: &str) -> Result<()> {
    let a = classifier.classify(command, ctx);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(
            &mut out,
            &Line {
                command,
                assessment: &a,
            },
        )?;
        writeln!(out)?;
    } else {
        print_human(&mut out, &a)?;
    }
    Ok(())
}

/// Classify every line of `input`: one JSON object (or one `TIER SCORE COMMAND` line) per line,
/// in order. Lines that are not UTF-8 are classified high rather than stopping the batch.
///
/// Lines are read in chunks and each chunk is classified on every core (the classifier is
/// pure and shared); the chunk's output is written in input order before the next is read.
pub fn batch(
    classifier: &Classifier,
    ctx: &Context,
    json: bool,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<usize> {
    const CHUNK: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut n = 0;
    let mut lines = input.split(b'\n');
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for line in lines.by_ref().take(CHUNK) {
            let mut bytes = line?;
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            chunk.push(bytes);
        }
        if chunk.is_empty() {
            break;
        }
        n += chunk.len();
        let per = chunk.len().div_ceil(threads);
        let rendered: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunk
                .chunks(per)
                .map(|part| scope.spawn(move || render(classifier, ctx, json, part)))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a classifier thread panicked")))
                })
                .collect()
        });
        for part in rendered {
            out.write_all(&part?)?;
        }
    }
    out.flush()?;
    Ok(n)
}

/// The output lines for `lines`, in order.
fn render(
    classifier: &Classifier,
    ctx: &Context,
    json: bool,
    lines: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(lines.len() * 256);
    for bytes in lines {
        let a = classifier.classify_bytes(bytes, ctx);
        let command = String::from_utf8_lossy(bytes);
        if json {
            serde_json::to_writer(
                &mut out,
                &Line {
                    command: &command,
                    assessment: &a,
                },
            )?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}\t{}\t{}", a.tier, a.score, command)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_keeps_order_and_survives_bad_bytes() {
        let c = Classifier::builtin();
        let input: &[u8] = b"ls\nrm -rf /srv\n\xff\xfe\r\ngit status\n";
        let mut out = Vec::new();
        let n = batch(&c, &Context::default(), true, input, &mut out).expect("batch");
        assert_eq!(n, 4);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .expect("utf8 output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        let tiers: Vec<&str> = lines
            .iter()
            .map(|v| v["tier"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(tiers, ["low", "high", "high", "low"]);
        assert_eq!(lines[1]["command"], "rm -rf /srv");
        assert!(
            lines[1]["reasons"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        );
    }
}
