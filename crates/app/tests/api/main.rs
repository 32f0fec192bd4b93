#![allow(unreachable_pub)]
//! API integration tests: one binary, a real server on 127.0.0.1:0 per test.

mod cache;
mod calls;
mod campaigns;
mod contacts;
mod conversations;
mod dashboard;
mod google;
mod hardening;
mod helpers;
mod imports;
mod live;
mod openapi_schemas;
mod retention;
mod service;
mod sheets_sync;
mod sim;
mod webhooks_elevenlabs;
mod webhooks_twilio;
