//! All integration tests, in one binary: each boots the real app (or the real `sealbox`
//! binary) on 127.0.0.1:0 with a temporary data directory and talks HTTP to it.

mod support;

mod admin;
mod api_keys;
mod audit;
mod auth_cache;
mod backup;
mod blob_store;
mod cli;
mod cli_transfers;
mod config_layers;
mod crypto_vectors;
mod doctor_scrub;
mod file_shares;
mod files;
mod hardening_crypto;
mod hardening_dos;
mod hardening_links;
mod hardening_tenancy;
mod http_conventions;
mod idempotency;
mod identity;
mod messaging;
mod metrics;
mod openapi;
mod organizations;
mod password_reset;
mod rate_limits;
mod recovery;
mod shutdown;
mod static_binary;
mod store;
mod tls;
mod transfers;
mod uploads_resume;
mod vault;
mod web_receive;
mod web_transfers;
mod web_ui;
mod web_vault;
mod web_workspace;
mod webhooks_api;
mod webhooks_delivery;
