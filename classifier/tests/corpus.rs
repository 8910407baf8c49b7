//! The golden corpus (`classifier/corpus/*.txt`): every line's expected tier must match.
//!
//! Prints the confusion matrix (rows: expected, columns: classified) so the figures can be
//! quoted, then fails listing every disagreement with the reasons the classifier gave.

mod lines;

use std::collections::BTreeMap;

use airlock_classifier::{Classifier, Context, Tier};

const TIERS: [Tier; 3] = [Tier::Low, Tier::Medium, Tier::High];

#[test]
fn golden_corpus() {
    let cases = lines::load("corpus");
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
                "{}: want {}, got {} [{}]  {}",
                c.at,
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
