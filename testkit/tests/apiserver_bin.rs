//! The `fake-apiserver` binary: documented flags, a kubeconfig naming the port it picked,
//! and real kubectl working through that kubeconfig.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

/// Kills the server even when an assertion fails.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_documents_every_flag() -> R {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .arg("--help")
        .output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    for flag in [
        "--addr",
        "--kubeconfig",
        "--context",
        "--latency",
        "--error-rate",
        "--drop-rate",
        "--rollout-delay",
        "--failing-image-pattern",
        "--seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--kubeconfig", "/dev/null", "--error-rate", "2"])
        .output()?;
    assert_eq!(bad.status.code(), Some(2));
    Ok(())
}

#[test]
fn binary_serves_kubectl_through_its_kubeconfig() -> R {
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--context",
            "ci",
            "--latency",
            "1ms",
            "--kubeconfig",
        ])
        .arg(&kc)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let _server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    assert!(
        line.starts_with("fake-apiserver listening on http://127.0.0.1:"),
        "{line}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kc.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = std::fs::read_to_string(&kc)?;
    assert!(config.contains("current-context: \"ci\""), "{config}");
    assert!(
        !config.contains("127.0.0.1:0\n"),
        "the kubeconfig must name the picked port"
    );
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args([
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .output()
        .map_err(|e| format!("cannot run kubectl (it must be installed for these tests): {e}"))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout)?, "Active");
    Ok(())
}
