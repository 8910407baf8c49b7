//! The golden corpus (`classifier/corpus/*.txt`): every line's expected tier must match.
//!
//! Prints the confusion matrix (rows: expected, columns: classified) so the figures can be
//! quoted, then fails listing every disagreement with the reasons the classifier gave.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_classifier::{Classifier, Context, Tier};

const TIERS: [Tier; 3] = [Tier::Low, Tier::Medium, Tier::High];

struct Case {
    file: String,
    line: usize,
    want: Tier,
    command: String,
}

fn load() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() || raw.starts_with('#') {
                continue;
            }
            let (tier, command) = raw
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("{file}:{}: expected `TIER COMMAND`", i + 1));
            let want: Tier = tier
                .parse()
                .unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            cases.push(Case {
                file: file.clone(),
                line: i + 1,
                want,
                command: command.trim_start().to_owned(),
            });
        }
    }
    cases
}

#[test]
fn golden_corpus() {
    let cases = load();
    assert!(cases.len() >= 300, "corpus has only {} lines", cases.len());
    let classifier = Classifier::builtin();
    let ctx = Context::default();
    let mut matrix: BTreeMap<(Tier, Tier), usize> = BTreeMap::new();
    let mut per_file: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for c in &cases {
        let a = classifier.classify(&c.command, &ctx);
        *matrix.entry((c.want, a.tier)).or_default() += 1;
        let e = per_file.entry(&c.file).or_default();
        e.0 += 1;
        if a.tier != c.want {
            e.1 += 1;
            let reasons: Vec<String> = a
                .reasons
                .iter()
                .map(|r| format!("{} ({})", r.rule, r.tier))
                .collect();
            wrong.push(format!(
                "{}:{}: want {}, got {} [{}]  {}",
                c.file,
                c.line,
                c.want,
                a.tier,
                reasons.join(", "),
                c.command
            ));
        }
    }
    println!("golden corpus: {} commands", cases.len());
    println!(
        "{:>16} {:>8} {:>8} {:>8}",
        "expected \\ got", "low", "medium", "high"
    );
    for want in TIERS {
        let row: Vec<String> = TIERS
            .iter()
            .map(|got| format!("{:>8}", matrix.get(&(want, *got)).copied().unwrap_or(0)))
            .collect();
        println!("{:>16} {}", want.as_str(), row.join(" "));
    }
    for (file, (n, bad)) in &per_file {
        println!("{file:>18}: {n:>4} lines, {bad} wrong");
    }
    assert!(
        wrong.is_empty(),
        "{} of {} misclassified:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
