//! `fake-apiserver`: the fake Kubernetes API server as a standalone process, for manual
//! checks with kubectl and for tests of other binaries. Writes a kubeconfig pointing at
//! itself, prints the URL, and serves until interrupted.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use testkit::apiserver::{Config, FakeApiServer, util::parse_duration};

/// A fake Kubernetes API server on plain HTTP (see FAKE_APISERVER.md for what it models).
#[derive(Parser, Debug)]
#[command(name = "fake-apiserver", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the kubeconfig names it).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Where to write a kubeconfig for this server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Name of the cluster, user and context in the kubeconfig.
    #[arg(long, default_value = "fake")]
    context: String,
    /// Latency added to every request, e.g. 10ms, 1s.
    #[arg(long, value_parser = duration, default_value = "0ms")]
    latency: Duration,
    /// Fraction (0..1) of requests answered with 500, 503 or 429.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction (0..1) of requests whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// How long simulated controllers take to report rollout status, e.g. 200ms.
    #[arg(long, value_parser = duration, default_value = "200ms")]
    rollout_delay: Duration,
    /// Images containing this string never become ready (ImagePullBackOff).
    #[arg(long, default_value = ":missing")]
    failing_image_pattern: String,
    /// Seed for fault injection and generated names.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("invalid duration {s:?} (use e.g. 10ms, 2s, 1m)"))
}

fn rate(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("--{name} must be between 0 and 1, got {v}"))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (error_rate, drop_rate) = match (
        rate("error-rate", args.error_rate),
        rate("drop-rate", args.drop_rate),
    ) {
        (Ok(e), Ok(d)) => (e, d),
        (Err(m), _) | (_, Err(m)) => {
            eprintln!("fake-apiserver: {m}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        latency: args.latency,
        error_rate,
        drop_rate,
        rollout_delay: args.rollout_delay,
        failing_image_pattern: args.failing_image_pattern,
        seed: args.seed,
        addr: args.addr,
        ..Config::default()
    };
    let server = match FakeApiServer::start_blocking(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.write_kubeconfig(&args.kubeconfig, &args.context) {
        eprintln!("fake-apiserver: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "fake-apiserver listening on {} (kubeconfig: {})",
        server.url(),
        args.kubeconfig.display()
    );
    loop {
        std::thread::park();
    }
}
