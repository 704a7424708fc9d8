//! Percentiles and the per-case summary.

use serde::Serialize;

/// The `q` quantile (0..=1) of sorted values, interpolating linearly between
/// the two nearest order statistics (Hyndman and Fan type 7, what numpy and
/// R use by default). `None` for no values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 1.0);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// What one case (a Map-Resolver, with cold or warm referral caches) gave.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub cache: String,
    pub case: String,
    pub map_resolver: String,
    pub sent: usize,
    /// Positive Map-Replies (the ones in the statistics).
    pub answered: usize,
    pub negative: usize,
    pub lost: usize,
    pub median_ms: f64,
    pub p5_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// From the latencies (ms) of the positive answers.
    pub fn new(
        cache: &str,
        case: &str,
        map_resolver: &str,
        sent: usize,
        negative: usize,
        latencies_ms: &[f64],
    ) -> Summary {
        let mut v = latencies_ms.to_vec();
        v.sort_by(f64::total_cmp);
        let q = |p| quantile(&v, p).unwrap_or(f64::NAN);
        Summary {
            cache: cache.into(),
            case: case.into(),
            map_resolver: map_resolver.into(),
            sent,
            answered: v.len(),
            negative,
            lost: sent.saturating_sub(v.len() + negative),
            median_ms: q(0.5),
            p5_ms: q(0.05),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            min_ms: v.first().copied().unwrap_or(f64::NAN),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The summaries as a text table (what the scenario prints).
pub fn table(rows: &[Summary]) -> String {
    let mut s = format!(
        "{:<5} {:<28} {:>5} {:>5} {:>9} {:>8} {:>8} {:>8}\n",
        "cache", "case", "ok", "lost", "median", "p5", "p95", "p99"
    );
    for r in rows {
        s += &format!(
            "{:<5} {:<28} {:>5} {:>5} {:>6.2} ms {:>8.2} {:>8.2} {:>8.2}\n",
            r.cache,
            format!("{} ({})", r.case, r.map_resolver),
            r.answered,
            r.lost + r.negative,
            r.median_ms,
            r.p5_ms,
            r.p95_ms,
            r.p99_ms
        );
    }
    s
}

/// The summaries as a Markdown table (for the README).
pub fn markdown(rows: &[Summary]) -> String {
    let mut s = String::from(
        "| cache | case | answered / sent | median (ms) | p5 | p95 | p99 |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} ({}) | {} / {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            r.cache,
            r.case,
            r.map_resolver,
            r.answered,
            r.sent,
            r.median_ms,
            r.p5_ms,
            r.p95_ms,
            r.p99_ms
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((quantile(&hundred, 0.95).unwrap() - 95.05).abs() < 1e-9);
    }

    #[test]
    fn summary_counts_losses() {
        let s = Summary::new("cold", "msx", "mr1", 5, 1, &[3.0, 1.0, 2.0]);
        assert_eq!((s.answered, s.negative, s.lost), (3, 1, 1));
        assert_eq!(s.median_ms, 2.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 3.0);
    }
}
