//! A sweep's resource model as Markdown: what a player costs per
//! component, and the 1-replica model's predictions against the measured
//! sweeps (the validation docs/capacity.md shows).

use crate::capacity::{Sweep, COST_COLUMNS, PREDICTION_COLUMNS};
use crate::markdown::table;

pub fn model_tables(md: &mut String, sweep: &Sweep) {
    if sweep.models.is_empty() {
        return;
    }
    md.push_str("What a player costs (least squares over each configuration's held steps; ± half the slope's 95 % interval):\n\n");
    table(
        md,
        &COST_COLUMNS,
        sweep.models.iter().flat_map(|m| m.rows()),
    );
    if sweep.predictions.is_empty() {
        return;
    }
    md.push_str("The 1-replica model against the sweeps (the cores it had busy when it last held are the budget; each configuration's replicas add their idle cost):\n\n");
    table(
        md,
        &PREDICTION_COLUMNS,
        sweep.predictions.iter().map(|p| p.row()),
    );
}
