//! Order statistics over a handful of samples: the bench reports medians and p99, never means,
//! because one slow fork or page fault should show as a tail, not move the centre.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>, Option<(f64, f64)>);

impl Samples {
    /// The difference of two distributions at their p50 and at their p99 (`a` − `b`): "how
    /// much does A add over B", robust to B being bimodal in a way a paired difference is not.
    pub fn quantile_difference(a: &Samples, b: &Samples) -> Samples {
        Samples(a.0.clone(), Some((a.p50() - b.p50(), a.p99() - b.p99())))
    }

    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn push_dur(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile (`p` in 0..=100); `NaN` with no samples.
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    /// The smallest sample (for a throughput, the worst run; for a latency, the best).
    pub fn min(&self) -> f64 {
        match self.1 {
            // A difference of distributions has no meaningful minimum of its own.
            Some(_) => f64::NAN,
            None => self.0.iter().copied().fold(f64::NAN, f64::min),
        }
    }

    pub fn p50(&self) -> f64 {
        self.1.map_or_else(|| self.pct(50.0), |(p50, _)| p50)
    }

    pub fn p99(&self) -> f64 {
        self.1.map_or_else(|| self.pct(99.0), |(_, p99)| p99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s = Samples::default();
        for v in [5.0, 1.0, 3.0, 2.0, 4.0] {
            s.push(v);
        }
        assert_eq!(s.p50(), 3.0);
        assert_eq!(s.p99(), 5.0);
        assert_eq!(s.pct(20.0), 1.0);
        assert!(Samples::default().p50().is_nan());
        assert_eq!(s.min(), 1.0);
    }
}
