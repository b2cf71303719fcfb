//! Collection: the meter registry, invocation counters, jobs, sessions, pushes and commands.

pub mod secrets;
