//! Schemas of the store's types that answers carry. `src/store` stays free of HTTP concerns, so
//! each type is described here by a twin with the same fields and serde attributes, and the
//! store type takes its twin's schema. The schemathesis test and the unit tests below check
//! the twins against what the store types actually serialise.

// The twins are only described, never built or read.
#![allow(dead_code)]

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::domain::Target;

/// Gives a store type the schema of its documented twin.
macro_rules! described_by {
    ($($real:ty => $twin:ty),* $(,)?) => {$(
        impl PartialSchema for $real {
            fn schema() -> RefOr<Schema> {
                <$twin as PartialSchema>::schema()
            }
        }

        impl ToSchema for $real {
            fn name() -> Cow<'static, str> {
                <$twin as ToSchema>::name()
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$twin as ToSchema>::schemas(schemas)
            }
        }
    )*};
}

described_by!(
    crate::store::IngestReceipt => IngestReceipt,
    crate::store::Rejection => Rejection,
    crate::store::TargetRow => TargetRow,
    crate::store::AuditEntry => AuditEntry,
    crate::store::Bucket => Bucket,
    crate::store::Aggregate => Aggregate,
    crate::store::BucketPoint => BucketPoint,
    crate::store::Backend => Backend,
);

/// The answer to a push: rows stored, rows already stored, and every row refused with why.
#[derive(ToSchema)]
#[schema(example = json!({"accepted": 1, "duplicates": 1, "rejected": [
    {"index": 2, "code": "value_out_of_range", "message": "4120000 is outside 0..=100000"}
]}))]
pub struct IngestReceipt {
    /// Rows stored as a new revision (or a withdrawal).
    accepted: usize,
    /// Rows identical to what was stored already: nothing changed.
    duplicates: usize,
    rejected: Vec<Rejection>,
}

/// One refused row.
#[derive(ToSchema)]
pub struct Rejection {
    /// The row's position in the request, from 0.
    index: usize,
    /// A stable reason: `missing_field`, `unknown_indicator`, `unknown_unit`,
    /// `unit_not_reporting`, `invalid_period`, `period_mismatch`, `period_in_future`,
    /// `invalid_value`, `value_not_finite`, `value_out_of_range`, `field_too_long`,
    /// `invalid_text` or `malformed_row`.
    #[schema(example = "value_out_of_range")]
    code: String,
    message: String,
}

/// A target as in force, with where it came from.
#[derive(ToSchema)]
pub struct TargetRow {
    #[serde(flatten)]
    target: Target,
    /// `config` (from `config/targets/`) or `api` (set with `PUT /api/v1/targets/…`).
    #[schema(example = "config")]
    origin: String,
    updated_at: DateTime<Utc>,
    /// Who set it: `config` or the token that did.
    updated_by: String,
}

/// One change of a target, as the audit log keeps it.
#[derive(ToSchema)]
pub struct AuditEntry {
    id: i64,
    at: DateTime<Utc>,
    /// The token that made the change.
    actor: String,
    #[schema(example = "target.set")]
    action: String,
    /// `year/indicator/unit`.
    subject: String,
    /// The target before the change (`null` when there was none).
    old: Option<serde_json::Value>,
    /// The target after the change.
    new: Option<serde_json::Value>,
    reason: Option<String>,
}

/// Calendar buckets in the city's zone.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// How a bucket's value is formed from its periods: flows are summed, cumulative figures keep
/// the last, the other kinds are averaged.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Last,
    Mean,
}

#[derive(ToSchema)]
pub struct BucketPoint {
    /// Start of the bucket.
    start: DateTime<Utc>,
    value: f64,
    /// Periods that went into the bucket.
    count: i64,
}

/// The storage backend.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
    Timescale,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`: the store answers and its migrations are applied.
#[derive(ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    status: String,
    backend: Backend,
    migrations: Migrations,
}

/// Migrations applied to the store, and those this build expects.
#[derive(ToSchema)]
pub struct Migrations {
    applied: i64,
    expected: i64,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;
    use serde_json::Value;

    use super::*;
    use crate::domain::{Code, TargetValue};
    use crate::store;

    /// The property names a schema declares itself (its inline `allOf` parts included).
    fn declared<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
        std::iter::once(&schema)
            .chain(parts.iter())
            .filter_map(|part| part["properties"].as_object())
            .flat_map(|properties| properties.keys().cloned())
            .collect()
    }

    fn keys(value: impl serde::Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn each_twin_declares_the_fields_its_store_type_serialises() {
        let rejection = store::Rejection {
            index: 0,
            code: "unknown_unit".into(),
            message: "x".into(),
        };
        assert_eq!(declared::<Rejection>(), keys(&rejection));
        let receipt = store::IngestReceipt {
            accepted: 1,
            duplicates: 0,
            rejected: vec![rejection],
        };
        assert_eq!(declared::<IngestReceipt>(), keys(&receipt));
        let entry = store::AuditEntry {
            id: 1,
            at: at(),
            actor: "admin:x".into(),
            action: "target.set".into(),
            subject: "2026/A/B".into(),
            old: None,
            new: None,
            reason: None,
        };
        assert_eq!(declared::<AuditEntry>(), keys(&entry));
        let point = store::BucketPoint {
            start: at(),
            value: 1.0,
            count: 1,
        };
        assert_eq!(declared::<BucketPoint>(), keys(&point));

        let target = Target {
            year: 2026,
            indicator: Code::parse("A").unwrap(),
            unit: Code::parse("B").unwrap(),
            value: TargetValue::Point { value: 1.0 },
            tolerance: None,
            source: None,
            illustrative: true,
        };
        let row = store::TargetRow {
            target: target.clone(),
            origin: "api".into(),
            updated_at: at(),
            updated_by: "admin:x".into(),
        };
        let own: BTreeSet<String> = keys(&row).difference(&keys(&target)).cloned().collect();
        assert_eq!(declared::<TargetRow>(), own, "beside the flattened target");
    }

    /// The values an enum schema allows.
    fn allowed<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let values = schema["enum"].as_array().unwrap();
        values
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn serialised<T: serde::Serialize>(all: &[T]) -> BTreeSet<String> {
        all.iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn each_twin_enum_allows_the_values_its_store_type_serialises() {
        use store::{Aggregate as A, Backend as Be, Bucket as Bu};
        assert_eq!(
            allowed::<Bucket>(),
            serialised(&[Bu::Day, Bu::Week, Bu::Month, Bu::Quarter, Bu::Year])
        );
        assert_eq!(
            allowed::<Aggregate>(),
            serialised(&[A::Sum, A::Last, A::Mean])
        );
        assert_eq!(
            allowed::<Backend>(),
            serialised(&[Be::Sqlite, Be::Postgres, Be::Timescale])
        );
    }
}
