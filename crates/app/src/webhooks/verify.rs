//! Webhook signature algorithms (external-apis.md A.7 and B.6): one
//! implementation in `switchboard-wire`, shared with the simulator that signs.

pub use switchboard_wire::signature::*;
