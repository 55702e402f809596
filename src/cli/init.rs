//! `sealbox init`: create everything `serve` would create at first start, then exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliResult, ConfigArgs, runtime};
use crate::app::App;
use crate::config::{TlsMode, default_config_path};
use crate::data_dir::write_atomic;
use crate::http::tls;

/// The documented configuration written by `init`.
const EXAMPLE_CONFIG: &str = include_str!("../../config.example.toml");

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: InitArgs) -> CliResult {
    let config_path: PathBuf = match &args.config.config {
        Some(path) => path.clone(),
        None => default_config_path().ok_or("cannot determine a config path; pass --config")?,
    };
    if config_path.exists() {
        println!("config:       {} (kept)", config_path.display());
    } else {
        let data_dir = match &args.config.data_dir {
            Some(dir) => dir.clone(),
            None => crate::data_dir::DataDir::default_root()?,
        };
        let text = config_with_data_dir(&data_dir)?;
        if let Some(parent) = config_path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_atomic(&config_path, text.as_bytes(), 0o640)?;
        println!("config:       {} (written)", config_path.display());
    }

    let config = ConfigArgs {
        config: Some(config_path),
        data_dir: args.config.data_dir.clone(),
    }
    .load()?;
    runtime()?.block_on(async move {
        let app = App::open(config).await?;
        println!("data:         {}", app.data_dir().root().display());
        println!("master key:   id {}", app.master_key().id());
        if app.config().tls.mode == TlsMode::SelfSigned {
            let (material, _) =
                tls::ensure_self_signed(app.data_dir(), &app.config().tls.hostnames)?;
            println!("TLS SHA-256:  {}", material.summary.fingerprint);
        }
        app.store().close().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The example configuration with `storage.data_dir` pointing at `data_dir`.
fn config_with_data_dir(data_dir: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let value = toml::Value::String(
        data_dir
            .to_str()
            .ok_or("the data directory path is not valid UTF-8")?
            .to_owned(),
    );
    let mut replaced = false;
    let text = EXAMPLE_CONFIG
        .lines()
        .map(|line| {
            if !replaced && line.starts_with("data_dir = ") {
                replaced = true;
                format!("data_dir = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if !replaced {
        return Err("config.example.toml has no `data_dir = ` line".into());
    }
    Ok(text + "\n")
}
