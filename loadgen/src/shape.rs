//! Load-shape arithmetic: stages → the target at any moment. A stage moves
//! linearly from the previous stage's value (0 before the first) to its `to`
//! over its `over`. Closed model: the target is concurrent players. Open
//! model: the target is an arrival rate, and [`Shape::arrivals`] integrates it.

use std::time::Duration;

use crate::scenario::Stage;

#[derive(Debug, Clone)]
pub struct Shape {
    /// (start time s, start value, end time s, end value) per stage.
    segments: Vec<(f64, f64, f64, f64)>,
}

impl Shape {
    pub fn new(stages: &[Stage]) -> Shape {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut value) = (0.0, 0.0);
        for stage in stages {
            let end = t + stage.over.as_secs_f64();
            segments.push((t, value, end, stage.to));
            (t, value) = (end, stage.to);
        }
        Shape { segments }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.segments.last().map_or(0.0, |s| s.2))
    }

    /// The target at `at` (the last stage's value after the end).
    pub fn value_at(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        for &(t0, v0, t1, v1) in &self.segments {
            if t < t1 {
                if t1 <= t0 {
                    return v1;
                }
                return v0 + (v1 - v0) * ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
            }
        }
        self.segments.last().map_or(0.0, |s| s.3)
    }

    /// The largest target over the whole shape.
    pub fn peak(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.1.max(s.3))
            .fold(0.0, f64::max)
    }

    /// Open model: expected arrivals in `[0, at]` (the integral of the rate).
    pub fn arrivals(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        let mut total = 0.0;
        for &(t0, v0, t1, v1) in &self.segments {
            if t <= t0 {
                break;
            }
            let upto = t.min(t1);
            let v_upto = if t1 > t0 {
                v0 + (v1 - v0) * (upto - t0) / (t1 - t0)
            } else {
                v1
            };
            total += (v0 + v_upto) / 2.0 * (upto - t0);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(to: f64, secs: u64) -> Stage {
        Stage {
            to,
            over: Duration::from_secs(secs),
        }
    }

    fn at(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn ramp_hold_and_ramp_down() {
        let shape = Shape::new(&[stage(3000.0, 60), stage(3000.0, 300), stage(0.0, 30)]);
        assert_eq!(shape.duration(), Duration::from_secs(390));
        assert_eq!(shape.value_at(at(0.0)), 0.0);
        assert_eq!(shape.value_at(at(30.0)), 1500.0);
        assert_eq!(shape.value_at(at(60.0)), 3000.0);
        assert_eq!(shape.value_at(at(200.0)), 3000.0);
        assert_eq!(shape.value_at(at(375.0)), 1500.0);
        assert_eq!(shape.value_at(at(999.0)), 0.0);
        assert_eq!(shape.peak(), 3000.0);
    }

    #[test]
    fn a_zero_length_stage_is_a_step() {
        let shape = Shape::new(&[stage(100.0, 0), stage(100.0, 10)]);
        assert_eq!(shape.value_at(at(0.0)), 100.0);
        assert_eq!(shape.value_at(at(5.0)), 100.0);
    }

    #[test]
    fn arrivals_integrate_the_rate() {
        // 0 → 10/s over 10 s (50 arrivals), then 10/s for 5 s (50 more).
        let shape = Shape::new(&[stage(10.0, 10), stage(10.0, 5)]);
        assert!((shape.arrivals(at(10.0)) - 50.0).abs() < 1e-9);
        assert!((shape.arrivals(at(15.0)) - 100.0).abs() < 1e-9);
        assert!((shape.arrivals(at(5.0)) - 12.5).abs() < 1e-9);
        assert!((shape.arrivals(at(100.0)) - 100.0).abs() < 1e-9);
    }
}
