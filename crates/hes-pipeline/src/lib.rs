//! The processing stages as consumer groups on the bus ([`run`]), with streaming aggregation
//! ([`stream`]) and the slow path that recomputes from the store ([`recompute`]). The rules
//! they apply are the pure functions of `hes-rules`, re-exported here under their old paths
//! (see `docs/pipeline.md`).

pub mod recompute;
pub mod run;
pub mod stage;
pub mod stream;

mod consume;

pub use hes_model::{Aggregate, Period, Quality, ValidatedReading};
pub use hes_rules::{
    accumulate, aggregate, aggregate_with, channel, estimate, estimate_gaps, estimate_gaps_with,
    group_total, intervals, intervals_with, is_cumulative, rollup, to_si, IntervalConsumption,
    Partial, Rules, Validator, SKIP_FLAGS,
};

/// The rules' transformation, and interval consumption where it used to live.
pub mod transform {
    pub use hes_rules::interval::{intervals, intervals_with, IntervalConsumption, SKIP_FLAGS};
    pub use hes_rules::transform::*;
}

/// Validation and its parameters.
pub mod validate {
    pub use hes_rules::validate::*;
}
