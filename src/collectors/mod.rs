//! Collectors: feeds the service fetches (HTTP pull on a schedule) or subscribes to (MQTT, NATS),
//! and back-fill from files. Each one hands its rows to the same [`crate::ingest::Ingestor`] as a
//! push, so validation, scoping and everything downstream are the same.

pub mod pull;
pub mod stream;
