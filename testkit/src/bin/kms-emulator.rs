//! `kms-emulator --addr 127.0.0.1:PORT`: the Cloud KMS REST emulator as a process, for
//! trying `gcloud kms` by hand or from shell scripts. Tests start it in-process instead.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// The Cloud KMS REST emulator (encrypt, decrypt, key rings and keys) on plain HTTP.
#[derive(Parser, Debug)]
#[command(name = "kms-emulator", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Derive each key's material from TEXT and the key name, so that files encrypted by
    /// one run decrypt in another (the example app's demo files use `--seed
    /// lookctl-demo`); without it keys are random.
    #[arg(long, value_name = "TEXT")]
    seed: Option<String>,
}

fn main() -> ExitCode {
    let Args { addr, seed } = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kms-emulator: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // Scripts read this line to learn the port when they asked for :0.
        println!("kms-emulator listening on http://{bound}");
        testkit::kms::KmsEmulator::serve_forever_seeded(listener, seed).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
