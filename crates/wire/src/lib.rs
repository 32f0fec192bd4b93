//! The providers' wire formats, shared by the service (which verifies), the
//! simulator (which plays the providers and signs) and tests: one
//! implementation of each algorithm and one builder of each payload, checked
//! against the reference vectors and examples (external-apis.md).
//!
//! - [`signature`]: Twilio's HMAC-SHA1 and ElevenLabs' `t=…,v0=…` signatures.
//! - [`twilio`]: the status callback form.
//! - [`elevenlabs`]: the post-call webhook bodies and the conversation.

#![forbid(unsafe_code)]

pub mod elevenlabs;
pub mod signature;
pub mod twilio;
