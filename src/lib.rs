//! sealbox: a self-hosted, single-binary appliance for end-to-end encrypted file transfers,
//! encrypted files and secrets. `main.rs` only parses the command line and calls
//! [`cli::run`]; tests boot the same [`app::App`] the binary runs.

pub mod app;
pub mod auth;
pub mod blob;
pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod http;
pub mod ids;
pub mod mail;
pub mod metrics;
pub mod service;
pub mod store;
pub mod worker;
