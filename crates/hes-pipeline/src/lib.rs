//! Processing stages as pure, synchronous functions (no I/O), for the pipeline's consumer
//! groups to run: validation (VEE) that flags every reading and drops none, transformation to
//! SI values, named channels and interval consumption, aggregation per hour/day/month, and
//! estimation of gaps. The bus and store wiring builds on these (see `docs/pipeline.md`).

pub mod aggregate;
pub mod estimate;
pub mod run;
pub mod stream;
pub mod transform;
pub mod validate;

pub use aggregate::{accumulate, aggregate, aggregate_with, group_total, rollup, Partial};
pub use estimate::{estimate_gaps, estimate_gaps_with};
pub use hes_model::{Aggregate, Period, Quality, ValidatedReading};
pub use transform::{
    channel, intervals, intervals_with, is_cumulative, to_si, IntervalConsumption, SKIP_FLAGS,
};
pub use validate::{Rules, Validator};

#[cfg(test)]
mod tests;
