//! The providers' wire formats, shared by the service (which verifies), the
//! simulator (which plays the providers and signs) and tests: one
//! implementation of each algorithm, checked against the reference vectors.

#![forbid(unsafe_code)]

pub mod signature;
pub mod twilio;
