//! The processing rules as pure, synchronous functions (no I/O), for the pipeline's consumer
//! groups and the API to run: validation (VEE) that flags every reading and drops none,
//! transformation to SI values and named channels, interval consumption, aggregation per
//! hour/day/month, and estimation of gaps (see `docs/pipeline.md`).

pub mod aggregate;
pub mod definitions;
pub mod estimate;
pub mod incidents;
pub mod interval;
pub mod rules;
pub mod transform;
pub mod validate;

pub use aggregate::{accumulate, aggregate, aggregate_with, group_total, rollup, Partial};
pub use estimate::{estimate_gaps, estimate_gaps_with};
pub use hes_model::{Aggregate, Period, Quality, ValidatedReading};
pub use incidents::{incidents, EventIn, Incident};
pub use interval::{intervals, intervals_with, IntervalConsumption, SKIP_FLAGS};
pub use rules::Rules;
pub use transform::{channel, is_cumulative, to_si};
pub use validate::Validator;

#[cfg(test)]
mod tests;
