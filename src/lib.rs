//! KT-XH Live: a city's yearly socio-economic targets, watched in real time.
//!
//! Data flows through the modules in this order:
//!
//! ```text
//! collectors (pull, MQTT, NATS, import) ─┐
//! ingest (formats, validation) ←──────────┘
//!        → writer (group commit) → store (SQLite | PostgreSQL | TimescaleDB)
//!        → pipeline: live state → rules (status, projection) → alerts (outbox) → websocket hub
//!        → screens
//! ```
//!
//! - [`config`]: settings and the catalogue files, validated at start.
//! - [`domain`]: pure types (codes, periods, indicators, targets, observations).
//! - [`collectors`]: feeds the service fetches or subscribes to, and back-fill from files.
//! - [`ingest`]: push formats and per-row validation; [`demo`] feeds it simulated departments.
//! - [`writer`]: one task per instance that commits the queued batches as one group.
//! - [`pipeline`]: what follows any change (rows committed, a target set, the timer): the
//!   engine, the alerts of the targets that moved, the screens.
//! - [`store`]: the storage trait and its backends.
//! - [`live`]: the latest value of every series; [`rules`] judges targets from it.
//! - [`alerts`]: alert states, routing and the delivery outbox.
//! - [`hub`]: numbered deltas and snapshots for the screens' websockets.
//! - [`http`]: the API, its error type and authentication; [`auth`] mints and checks tokens.
//! - [`app`]: wires the parts together and runs until shutdown.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod collectors;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod store;
pub mod writer;
