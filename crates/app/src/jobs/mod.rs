//! Background work that runs inside `serve` beside the HTTP server: each job
//! is safe with any number of instances on one store (coordination goes
//! through the store, never through memory).
//!
//! - [`dialer`]: claims due enrollments, places calls, reconciles calls in
//!   flight (asking the providers about quiet ones) and completes campaigns.
//! - [`import_sweeper`]: undoes contact imports whose writer died.
//! - [`rollups`]: keeps the `analytics` rollups equal to the calls (incremental and repair).
//! - [`search_index`]: merges the SQLite full-text index's segments.
//!
//! Where new jobs go: the Sheets sync, analytics rollups, the archiver. A job
//! takes `now` as an argument for its step (tests drive the clock) and never
//! waits forever (every state it leaves has a deadline).

pub mod dialer;
pub mod import_sweeper;
pub mod live_changes;
pub mod reconciler;
pub mod retention;
pub mod rollups;
pub mod runner;
pub mod search_index;
pub mod sheets;
