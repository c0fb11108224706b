//! KT-XH Live: a city's yearly socio-economic targets, watched in real time.
//!
//! Data flows through the modules in this order:
//!
//! ```text
//! collectors (pull, MQTT, NATS, import) ─┐
//! ingest (formats, validation) ←──────────┘
//!        → writer (group commit) → store (SQLite | PostgreSQL | TimescaleDB)
//!        → pipeline: rules (series, status, projection) → alerts (outbox) → live (websocket hub)
//!        → screens
//! ```
//!
//! - [`config`]: settings and the catalogue files, validated at start.
//! - [`domain`]: pure types (codes, periods, indicators, targets, observations, the release
//!   calendar, alert and token records); it imports nothing else of the crate.
//! - [`collectors`]: feeds the service fetches or subscribes to (`feeds.toml`), and back-fill
//!   from files.
//! - [`ingest`]: push formats and per-row validation; [`demo`] feeds it simulated departments.
//! - [`writer`]: one task per instance that commits the queued batches as one group.
//! - [`pipeline`]: what follows any change (rows committed, a target set, the timer): the
//!   engine, the alerts of the targets that moved, the screens.
//! - [`store`]: the storage trait and its backends.
//! - [`rules`]: the latest value of every series in memory, and the judgement of targets.
//! - [`alerts`]: alert states, routing and the delivery outbox.
//! - [`live`]: live push: topics, numbered deltas and snapshots, tickets for the screens'
//!   websockets.
//! - [`http`]: the API, its error type and authentication; [`auth`] mints and checks tokens.
//! - [`leader`]: which of the instances sharing a PostgreSQL database does what must happen
//!   once (alert commits, delivery, reports, collectors).
//! - [`app`]: wires the parts together and runs until shutdown; [`cli`] is the command line.
//!
//! The modules import one another without a cycle, `domain` at the bottom and `app` and `cli`
//! on top (ARCHITECTURE §3); `tests/architecture.rs` keeps it so.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod leader;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod store;
pub mod writer;
