//! Held-out corpora (`classifier/heldout/*.txt`): written by someone who had not read the rule
//! packs, from the families in docs/classifier.md and public knowledge only. What they exposed was
//! fixed by family, never by editing a line; the test holds the figures that say whether the
//! rules generalise:
//!
//! - high-risk recall (high lines classified high) of at least 97%;
//! - no high line classified low (it would run with no human at all);
//! - at most 5% of the lines marked `low` in a trap section (a `# ===== … traps … =====` heading) gated.
//!
//! It prints the confusion matrix and every disagreement, so the figures can be quoted.

mod lines;

use std::collections::BTreeMap;

use airlock_classifier::{Classifier, Context, Tier};

const TIERS: [Tier; 3] = [Tier::Low, Tier::Medium, Tier::High];
const MIN_HIGH_RECALL: f64 = 0.97;
const MAX_TRAP_FALSE_POSITIVES: f64 = 0.05;

#[test]
fn held_out_corpus() {
    let cases = lines::load("heldout");
    assert!(
        cases.len() >= 200,
        "held-out corpus has only {} lines",
        cases.len()
    );
    let classifier = Classifier::builtin();
    let ctx = Context::default();
    let mut matrix: BTreeMap<(Tier, Tier), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    let (mut traps, mut traps_gated) = (0usize, 0usize);
    for c in &cases {
        let a = classifier.classify(&c.command, &ctx);
        *matrix.entry((c.want, a.tier)).or_default() += 1;
        if c.section.contains("trap") && c.want == Tier::Low {
            traps += 1;
            traps_gated += usize::from(a.tier != Tier::Low);
        }
        if a.tier != c.want {
            let rules: Vec<&str> = a.reasons.iter().map(|r| r.rule.as_str()).collect();
            wrong.push(format!(
                "{}: want {}, got {} [{}]  {}",
                c.at,
                c.want,
                a.tier,
                rules.join(", "),
                c.command.escape_debug()
            ));
        }
    }
    let count = |w: Tier, g: Tier| matrix.get(&(w, g)).copied().unwrap_or(0);
    let highs: usize = TIERS.iter().map(|g| count(Tier::High, *g)).sum();
    let recall = count(Tier::High, Tier::High) as f64 / highs.max(1) as f64;
    let agree: usize = TIERS.iter().map(|t| count(*t, *t)).sum();
    let trap_rate = traps_gated as f64 / traps.max(1) as f64;
    println!("held-out corpus: {} commands", cases.len());
    println!(
        "{:>16} {:>8} {:>8} {:>8}",
        "expected \\ got", "low", "medium", "high"
    );
    for want in TIERS {
        let row: Vec<String> = TIERS
            .iter()
            .map(|g| format!("{:>8}", count(want, *g)))
            .collect();
        println!("{:>16} {}", want.as_str(), row.join(" "));
    }
    println!(
        "high recall {recall:.3}; high scored low {}; exact agreement {:.3}; traps gated {traps_gated}/{traps}",
        count(Tier::High, Tier::Low),
        agree as f64 / cases.len() as f64
    );
    println!("disagreements:\n{}", wrong.join("\n"));
    assert!(
        traps >= 20,
        "only {traps} trap lines: the trap figure means nothing"
    );
    assert_eq!(count(Tier::High, Tier::Low), 0, "high lines classified low");
    assert!(
        recall >= MIN_HIGH_RECALL,
        "high recall {recall:.3} < {MIN_HIGH_RECALL}"
    );
    assert!(
        trap_rate <= MAX_TRAP_FALSE_POSITIVES,
        "{traps_gated}/{traps} traps gated (> {MAX_TRAP_FALSE_POSITIVES})"
    );
}
