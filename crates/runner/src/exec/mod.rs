//! `hearth exec`'s parts: act's value flags and files (`inputs`), the scheduler that starts
//! jobs as their needs end (`schedule`), and the two sinks, for people (`console`) and for
//! machines (`json`).

mod called;
pub mod console;
pub mod inputs;
pub mod json;
pub mod local;
mod out;
pub mod results;
pub mod schedule;
