//! Tokens: expiry, and that secrets are stored only as digests.

use chrono::{Duration, Utc};
use ktxh::auth::{self, Role, TokenRecord};

use crate::helpers::{assert_problem, spawn_app, Backend};
use crate::on_every_backend;

async fn expired_tokens_are_refused_and_secrets_are_never_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let minted = auth::mint();
    app.store
        .insert_token(&TokenRecord {
            id: minted.id.clone(),
            name: "expired".into(),
            role: Role::Viewer,
            department: None,
            digest: minted.digest.clone(),
            created_at: Utc::now() - Duration::days(2),
            expires_at: Some(Utc::now() - Duration::days(1)),
            revoked_at: None,
        })
        .await
        .unwrap();
    assert_problem(
        &app.get("/api/v1/groups", &minted.plain).await,
        401,
        "invalid_token",
    );

    // Same id, wrong secret.
    let forged = format!("ktxh_{}_{}", minted.id, "0".repeat(64));
    assert_problem(
        &app.get("/api/v1/groups", &forged).await,
        401,
        "invalid_token",
    );

    for token in app.store.tokens().await.unwrap() {
        assert_eq!(token.digest.len(), 32, "a SHA-256 digest, not the secret");
    }
    assert_eq!(app.get("/api/v1/groups", &app.viewer).await.status, 200);
    app.stop().await;
}

on_every_backend!(expired_tokens_are_refused_and_secrets_are_never_stored);
