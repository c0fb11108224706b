//! API tests: the real server on a random port, over every storage backend.

mod helpers;
// Shared with the delivery tests, which use the parts these do not.
#[allow(dead_code)]
#[path = "../support/webhook.rs"]
mod webhook;

mod alerts;
mod auth;
mod ingest;
mod live;
mod read;
mod reports;
mod status;
mod store;
