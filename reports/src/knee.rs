//! The knee of a capacity curve: the load at which latency departs from
//! flat. The flat level is the median of the lightest quarter of the points;
//! the knee is the first point from which three in a row sit above twice
//! that (and at least 2 ms above it), so a lone noisy second is not a knee.

/// Points as (players, p95 ms), in any order.
pub fn knee(points: &[(f64, f64)]) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    if sorted.len() < 6 {
        return None;
    }
    let flat_count = (sorted.len() / 4).max(3);
    let mut flat: Vec<f64> = sorted[..flat_count].iter().map(|p| p.1).collect();
    flat.sort_by(f64::total_cmp);
    let level = flat[flat.len() / 2];
    let limit = (level * 2.0).max(level + 2.0);
    sorted
        .windows(3)
        .find(|w| w.iter().all(|p| p.1 > limit))
        .map(|w| w[0].0)
}

/// (players, p95) per bin of players, the median p95 of the seconds in it:
/// the capacity curve drawn from a run's seconds.
pub fn curve(seconds: &[(f64, f64)], bins: usize) -> Vec<(f64, f64)> {
    let top = seconds.iter().map(|p| p.0).fold(0.0, f64::max);
    if top <= 0.0 || bins == 0 {
        return Vec::new();
    }
    let width = top / bins as f64;
    let mut grouped: Vec<Vec<(f64, f64)>> = vec![Vec::new(); bins];
    for &(players, p95) in seconds {
        let i = ((players / width).ceil() as usize).clamp(1, bins) - 1;
        grouped[i].push((players, p95));
    }
    grouped
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_by(|a, b| a.1.total_cmp(&b.1));
            let players = g.iter().map(|p| p.0).sum::<f64>() / g.len() as f64;
            (players, g[g.len() / 2].1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_then_rising_has_its_knee_where_it_rises() {
        let points: Vec<(f64, f64)> = (1..=20)
            .map(|i| {
                let players = f64::from(i) * 100.0;
                let p95 = if i <= 12 {
                    5.0
                } else {
                    5.0 + f64::from(i - 12).powi(2) * 4.0
                };
                (players, p95)
            })
            .collect();
        assert_eq!(knee(&points), Some(1400.0));
    }

    #[test]
    fn flat_throughout_has_no_knee() {
        let points: Vec<(f64, f64)> = (1..=20).map(|i| (f64::from(i) * 100.0, 5.0)).collect();
        assert_eq!(knee(&points), None);
    }

    #[test]
    fn lone_spikes_in_noise_are_not_a_knee() {
        let points: Vec<(f64, f64)> = (1..=30)
            .map(|i| {
                let noise = if i % 7 == 0 { 40.0 } else { f64::from(i % 3) };
                (f64::from(i) * 50.0, 4.0 + noise)
            })
            .collect();
        assert_eq!(knee(&points), None);
    }

    #[test]
    fn the_curve_bins_seconds_by_players() {
        let seconds = [
            (10.0, 1.0),
            (20.0, 2.0),
            (100.0, 9.0),
            (100.0, 11.0),
            (100.0, 10.0),
        ];
        let curve = curve(&seconds, 2);
        assert_eq!(curve, vec![(15.0, 2.0), (100.0, 10.0)]);
    }
}
