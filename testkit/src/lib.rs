//! Test infrastructure for lookctl, never shipped: a fake Kubernetes API server, a
//! Cloud KMS REST emulator and a GKE API emulator, each usable in-process from tests and as a standalone binary
//! bound to 127.0.0.1.

pub mod apiserver;
pub mod gke;
pub mod kms;

/// An axum app served on 127.0.0.1 (a free port) by a thread of its own with a
/// current-thread runtime, for synchronous tests: its address, the sender that stops it
/// (or dropping it does), and the thread to join.
pub(crate) fn serve_on_thread(
    name: &str,
    app: axum::Router,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("{name}-{}", addr.port()))
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        })?;
    Ok((addr, tx, thread))
}
