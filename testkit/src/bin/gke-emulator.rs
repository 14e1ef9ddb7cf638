//! `gke-emulator --cluster projects/P/locations/L/clusters/C=HOST:PORT --ca-file CA.pem`:
//! the GKE API emulator as a process, for trying `gcloud container clusters
//! get-credentials` or `lookctl deploy` with `cluster = "projects/…"` by hand. Tests start
//! it in-process instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use testkit::gke::{EmulatedCluster, GkeEmulator};

/// The GKE API emulator (clusters.get and clusters.list) on plain HTTP.
#[derive(Parser, Debug)]
#[command(name = "gke-emulator", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// A cluster and the API server it points at: `NAME=HOST:PORT`, NAME being
    /// `projects/P/locations/L/clusters/C`. Repeatable.
    #[arg(long, value_name = "NAME=ENDPOINT", required = true)]
    cluster: Vec<String>,
    /// The API server's CA certificate (PEM), given to every cluster.
    #[arg(long, value_name = "FILE")]
    ca_file: PathBuf,
    /// Require `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    require_token: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ca_pem = match std::fs::read_to_string(&args.ca_file) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("gke-emulator: {}: {e}", args.ca_file.display());
            return ExitCode::from(2);
        }
    };
    let mut clusters = BTreeMap::new();
    for spec in &args.cluster {
        let Some((name, endpoint)) = spec.split_once('=') else {
            eprintln!("gke-emulator: --cluster `{spec}`: expected NAME=HOST:PORT");
            return ExitCode::from(2);
        };
        clusters.insert(
            name.to_owned(),
            EmulatedCluster {
                endpoint: endpoint.to_owned(),
                ca_pem: ca_pem.clone(),
            },
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gke-emulator: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        let bound = listener.local_addr()?;
        // Scripts read this line to learn the port when they asked for :0.
        println!("gke-emulator listening on http://{bound}/");
        GkeEmulator::serve_forever(listener, clusters, args.require_token).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gke-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
