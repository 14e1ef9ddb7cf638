//! `kms-emulator --addr 127.0.0.1:PORT`: the Cloud KMS REST emulator as a process, for
//! trying `gcloud kms` by hand or from shell scripts. Tests start it in-process instead.

use std::net::SocketAddr;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: kms-emulator [--addr 127.0.0.1:PORT] [--seed TEXT]\n\n  --seed TEXT  derive each key's material from TEXT and the key name, so files\n               encrypted by one run decrypt in another (the example app's demo\n               files use --seed lookctl-demo); without it keys are random"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut addr = String::from("127.0.0.1:0");
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next() {
                Some(value) => addr = value,
                None => return usage(),
            },
            "--seed" => match args.next() {
                Some(value) => seed = Some(value),
                None => return usage(),
            },
            "-h" | "--help" => {
                let _ = usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("kms-emulator: --addr {addr:?} is not HOST:PORT");
        return ExitCode::from(2);
    };
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
