//! Switchboard domain: the types and rules every other crate shares, with no I/O.
//!
//! Layout:
//! - [`ids`]: typed, prefixed identifiers (`call_…`, `evt_…`).
//! - [`time`]: the millisecond timestamp discipline both stores keep.
//! - [`call`]: the merged call record, its status lattice and the merge rules
//!   (architecture §3) applied by every store in the same way.
//! - [`event`]: call events — every provider webhook is kept as one.
//!
//! Storage backends convert these types to their own rows and documents; the
//! domain never derives a driver trait.

#![forbid(unsafe_code)]

pub mod call;
pub mod event;
pub mod ids;
mod macros;
pub mod time;

pub use call::{AnsweredBy, Call, CallStatus, CallUpdate, Direction, MergeError, Source};
pub use event::CallEvent;
pub use ids::{CallId, EventId, IdError};
