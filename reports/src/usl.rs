//! The Universal Scalability Law, fitted to measured (load, throughput)
//! points: X(N) = λN / (1 + σ(N−1) + κN(N−1)), σ contention, κ coherency;
//! the peak is at N* = √((1−σ)/κ).
//!
//! λ is the best throughput per unit of load measured (the light end);
//! with C = X/λ, N/C − 1 = κ(N−1)² + (σ+κ)(N−1) is linear in σ and κ and is
//! solved by least squares through the origin. A fit is refused when it
//! does not explain the points (R² below [`MIN_R2`]) or shows no
//! contention at all — then there is no peak to predict, only "not reached".

use serde::{Deserialize, Serialize};

/// Below this, the law does not describe the points well enough to
/// extrapolate from them.
pub const MIN_R2: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub lambda: f64,
    pub sigma: f64,
    pub kappa: f64,
    pub r2: f64,
    /// The load at which throughput peaks; `None` when κ is zero (no
    /// retrograde region).
    pub peak_n: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Usl {
    Fitted(Fit),
    /// Scaling stayed linear over the measured range: no peak to predict.
    NoContention {
        lambda: f64,
    },
    /// Too few points, or the law does not explain them.
    Refused {
        reason: String,
    },
}

impl Fit {
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }
}

/// Fits `points` (N, X): N the load (players, replicas), X the throughput.
pub fn fit(points: &[(f64, f64)]) -> Usl {
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(n, x)| n >= 1.0 && x > 0.0 && n.is_finite() && x.is_finite())
        .collect();
    if points.len() < 4 {
        return Usl::Refused {
            reason: format!("{} usable points; the fit needs at least 4", points.len()),
        };
    }
    let lambda = points.iter().map(|&(n, x)| x / n).fold(0.0, f64::max);
    let (mut aa, mut ab, mut bb, mut ay, mut by) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(n, x) in &points {
        let c = x / lambda;
        let y = n / c - 1.0;
        let (a, b) = ((n - 1.0).powi(2), n - 1.0);
        aa += a * a;
        ab += a * b;
        bb += b * b;
        ay += a * y;
        by += b * y;
    }
    let det = aa * bb - ab * ab;
    if det.abs() < f64::EPSILON * aa.max(1.0) * bb.max(1.0) {
        return Usl::Refused {
            reason: "the loads measured are too alike to separate contention from coherency".into(),
        };
    }
    let kappa = (ay * bb - by * ab) / det;
    let sum = (aa * by - ab * ay) / det;
    let (sigma, kappa) = ((sum - kappa).max(0.0), kappa.max(0.0));
    let mut fit = Fit {
        lambda,
        sigma,
        kappa,
        r2: 0.0,
        peak_n: (kappa > 0.0).then(|| ((1.0 - sigma).max(0.0) / kappa).sqrt()),
    };
    fit.r2 = r_squared(&points, |n| fit.throughput(n));
    if fit.r2 < MIN_R2 {
        return Usl::Refused {
            reason: format!(
                "R² {:.3} < {MIN_R2}: the law does not describe these points",
                fit.r2
            ),
        };
    }
    // Less than 1 % throughput lost to contention at the largest load measured.
    let top = points.iter().map(|p| p.0).fold(1.0, f64::max);
    if fit.throughput(top) >= 0.99 * lambda * top {
        return Usl::NoContention { lambda };
    }
    Usl::Fitted(fit)
}

fn r_squared(points: &[(f64, f64)], model: impl Fn(f64) -> f64) -> f64 {
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let residual: f64 = points.iter().map(|p| (p.1 - model(p.0)).powi(2)).sum();
    if total == 0.0 {
        0.0
    } else {
        1.0 - residual / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law(lambda: f64, sigma: f64, kappa: f64) -> Fit {
        Fit {
            lambda,
            sigma,
            kappa,
            r2: 1.0,
            peak_n: None,
        }
    }

    #[test]
    fn known_contention_and_coherency_are_recovered() {
        let truth = law(100.0, 0.05, 0.0005);
        let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0]
            .iter()
            .map(|&n| (n, truth.throughput(n)))
            .collect();
        let Usl::Fitted(fit) = fit(&points) else {
            panic!("{:?}", fit(&points))
        };
        assert!((fit.sigma - 0.05).abs() < 0.005, "{fit:?}");
        assert!((fit.kappa - 0.0005).abs() < 0.00005, "{fit:?}");
        assert!(fit.r2 > 0.999);
        let peak = ((1.0 - 0.05) / 0.0005f64).sqrt();
        assert!((fit.peak_n.unwrap() - peak).abs() / peak < 0.05, "{fit:?}");
    }

    #[test]
    fn noisy_points_still_fit_within_tolerance() {
        let truth = law(50.0, 0.1, 0.001);
        let points: Vec<(f64, f64)> = (1..=20)
            .map(|i| {
                let n = f64::from(i) * 2.0;
                let wobble = if i % 2 == 0 { 1.02 } else { 0.98 };
                (n, truth.throughput(n) * wobble)
            })
            .collect();
        let Usl::Fitted(fit) = fit(&points) else {
            panic!("{:?}", fit(&points))
        };
        assert!((fit.sigma - 0.1).abs() < 0.03, "{fit:?}");
        assert!((fit.kappa - 0.001).abs() < 0.0004, "{fit:?}");
    }

    #[test]
    fn linear_scaling_has_no_contention_signal() {
        let points: Vec<(f64, f64)> = (1..=10)
            .map(|n| (f64::from(n) * 100.0, f64::from(n) * 1000.0))
            .collect();
        assert!(
            matches!(fit(&points), Usl::NoContention { .. }),
            "{:?}",
            fit(&points)
        );
    }

    #[test]
    fn too_few_or_unexplained_points_are_refused() {
        assert!(matches!(
            fit(&[(1.0, 1.0), (2.0, 2.0)]),
            Usl::Refused { .. }
        ));
        let zigzag = [
            (1.0, 100.0),
            (2.0, 20.0),
            (3.0, 300.0),
            (4.0, 10.0),
            (5.0, 500.0),
            (6.0, 5.0),
        ];
        assert!(
            matches!(fit(&zigzag), Usl::Refused { .. }),
            "{:?}",
            fit(&zigzag)
        );
    }
}
