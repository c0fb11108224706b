//! API tests: the real server on a random port, over every storage backend.

mod helpers;
// Shared with the delivery tests, which use the parts these do not.
#[allow(dead_code)]
#[path = "../support/webhook.rs"]
mod webhook;
mod workbook;

#[allow(dead_code)]
#[path = "../support/smtp.rs"]
mod smtp;

mod activity;
mod alert_texts;
mod alerts;
mod approvals;
mod as_of_replay;
mod audit;
mod auth;
mod careless_input;
mod claims;
mod departments;
mod dhis2;
mod dhis2_answers;
mod explanations;
mod first_start;
mod influx;
mod influx_query;
mod ingest;
mod instances;
mod limits;
mod live;
mod migration;
mod new_periods;
mod notification_order;
mod notifications;
mod observability;
mod openapi;
mod outbound;
mod padded_codes;
mod pipeline;
mod plan;
mod pull;
mod read;
mod rejected_spike;
mod reminders;
mod reported_at;
mod reports;
mod rollup;
mod sdmx;
mod security;
mod status;
mod store;
mod stream;
mod target_history;
mod tasks;
mod token_cache;
mod writer;
mod xlsx_upload;
mod year_close;
