//! `sealbox version`.

use std::process::ExitCode;

use super::CliResult;
use crate::http::middleware::API_VERSION;
use crate::store::LATEST_SCHEMA_VERSION;

pub fn run() -> CliResult {
    println!("sealbox {}", env!("CARGO_PKG_VERSION"));
    println!("api version {API_VERSION}");
    println!("database schema version {LATEST_SCHEMA_VERSION}");
    Ok(ExitCode::SUCCESS)
}
