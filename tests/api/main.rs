//! API tests: the real server on a random port, over every storage backend.

mod helpers;

mod alerts;
mod auth;
mod ingest;
mod live;
mod read;
mod status;
mod store;
