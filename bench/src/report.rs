//! The result table: one row per measured figure, OpenSSH beside Airlock, with the ratio and
//! the target the issue set for this machine.

use crate::stats::Samples;

#[derive(Debug, Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

/// A target on one figure of a row.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Airlock p50 / OpenSSH p50 at most this (lower is better) or at least (higher).
    Ratio(f64),
    /// Airlock's own p99 at most this many units.
    P99AtMost(f64),
    /// Airlock's own p50 at most this many units.
    P50AtMost(f64),
    /// Airlock's own p50 at least this many units (throughputs).
    P50AtLeast(f64),
    None,
}

pub struct Row {
    pub scenario: String,
    pub unit: &'static str,
    pub better: Better,
    pub openssh: Option<Samples>,
    pub airlock: Samples,
    pub target: Target,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        let o = self.openssh.as_ref()?.p50();
        Some(self.airlock.p50() / o)
    }

    pub fn met(&self) -> Option<bool> {
        Some(match (self.target, self.better) {
            (Target::Ratio(r), Better::Lower) => self.ratio()? <= r,
            (Target::Ratio(r), Better::Higher) => self.ratio()? >= r,
            (Target::P99AtMost(v), _) => self.airlock.p99() <= v,
            (Target::P50AtMost(v), _) => self.airlock.p50() <= v,
            (Target::P50AtLeast(v), _) => self.airlock.p50() >= v,
            (Target::None, _) => return None,
        })
    }

    fn target_text(&self) -> String {
        match (self.target, self.better) {
            (Target::Ratio(r), Better::Lower) => format!("≤ {r}×"),
            (Target::Ratio(r), Better::Higher) => format!("≥ {r}×"),
            (Target::P99AtMost(v), _) => format!("p99 ≤ {v} {}", self.unit),
            (Target::P50AtMost(v), _) => format!("≤ {v} {}", self.unit),
            (Target::P50AtLeast(v), _) => format!("≥ {v} {}", self.unit),
            (Target::None, _) => "—".into(),
        }
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | unit | n | OpenSSH min | OpenSSH p50 | OpenSSH p99 | Airlock min | Airlock p50 | Airlock p99 | Airlock / OpenSSH (p50) | target | met |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (omin, op50, op99) = r
            .openssh
            .as_ref()
            .map(|o| (num(o.min()), num(o.p50()), num(o.p99())))
            .unwrap_or(("—".into(), "—".into(), "—".into()));
        let ratio = r.ratio().map(|x| format!("{x:.2}×")).unwrap_or("—".into());
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {omin} | {op50} | {op99} | {} | {} | {} | {ratio} | {} | {met} |\n",
            r.scenario,
            r.unit,
            r.airlock.len(),
            num(r.airlock.min()),
            num(r.airlock.p50()),
            num(r.airlock.p99()),
            r.target_text(),
        ));
    }
    s
}
