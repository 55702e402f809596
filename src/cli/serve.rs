//! `sealbox serve`: run the appliance until SIGINT or SIGTERM.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Args;
use tracing_subscriber::EnvFilter;

use super::{CliResult, ConfigArgs, runtime};
use crate::app::App;
use crate::config::{Config, LogFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on, such as 127.0.0.1:8443; wins over server.listen
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(args: ServeArgs) -> CliResult {
    let mut config = args.config.load()?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    config.validate()?;
    init_logging(&config)?;

    let runtime = runtime()?;
    let served: CliResult = runtime.block_on(async move {
        // Listen for signals before announcing the URL: a supervisor may stop us at once.
        let shutdown = shutdown_signal()?;
        let app = App::open(config).await?;
        let bound = app.bind().await?;
        println!(
            "sealbox {} serving {}",
            env!("CARGO_PKG_VERSION"),
            bound.url()
        );
        if !app.config().server.public_url.is_empty() {
            println!("  public URL:   {}", app.config().server.public_url);
        }
        println!("  data:         {}", app.data_dir().root().display());
        if let Some(metrics) = bound.metrics_url() {
            println!("  metrics:      {metrics}");
        }
        if let Some(cert) = bound.certificate() {
            println!("  TLS SHA-256:  {}", cert.fingerprint);
        }
        if let Some(token) = app.setup_token() {
            // The link a browser elsewhere reaches: the public URL when one is set.
            let public = app.config().server.public_url.trim_end_matches('/');
            let base = if public.is_empty() { bound.url() } else { public.to_owned() };
            println!("  setup link:   {base}/setup?token={token}");
            println!("  setup token:  {token}");
            println!("                no account exists yet: open the setup link in a browser, or");
            println!("                POST {base}/v1/setup with this token");
            println!("                to create the first admin (a new token is printed at each start until then)");
        }
        app.serve(bound, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // The shutdown timeout has passed by now; blocking work still running (a file write
    // of a dropped request) gets a moment more, not an unbounded wait.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM (systemd stop) handlers now and returns a
/// future that resolves when either arrives.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

fn init_logging(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_new(&config.log.level).map_err(|e| {
        format!(
            "log.level `{}` is not a valid filter: {e}",
            config.log.level
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs(
            config.log.format,
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        ));
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Whether log lines carry ANSI colour codes: only text logs written to a terminal, never
/// JSON, a file, a pipe or journald (which store the escape codes as text), and not when
/// `NO_COLOR` is set (<https://no-color.org>).
fn colour_logs(format: LogFormat, stderr_is_terminal: bool, no_color: bool) -> bool {
    matches!(format, LogFormat::Text) && stderr_is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_for_text_on_a_terminal_without_no_color() {
        assert!(colour_logs(LogFormat::Text, true, false));
        assert!(!colour_logs(LogFormat::Text, false, false));
        assert!(!colour_logs(LogFormat::Text, true, true));
        assert!(!colour_logs(LogFormat::Json, true, false));
        assert!(!colour_logs(LogFormat::Json, false, false));
    }
}
