//! `switchboard bench`: one file per suite, each measuring in one run and
//! printing figures and ratios (never timed assertions in tests).
//!
//! - [`calls`] (`--suite calls`): webhook ingest throughput and latency, list
//!   queries at 100k and 1M calls.
//! - [`campaigns`] (`--suite campaigns`): contact import, contact-filter
//!   pages, claims, the dialer against the simulator.
//! - [`dashboard`] (`--suite dashboard`): dashboard endpoints at 100k and 1M
//!   calls, cache cold and warm; rollup rebuild and incremental pass.
//! - [`live`] (`--suite live`): Socket.IO fan-out to 1,000 official clients,
//!   webhook-to-client latency and its ratio to ingest.

pub mod analysis;
pub mod calls;
pub mod campaigns;
pub mod dashboard;
pub mod live;
pub mod sheets;

pub use calls::{BenchOptions, BenchReport, Latency, Machine, run};
