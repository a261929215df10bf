//! Runs an axum router on 127.0.0.1 in a background thread with its own tokio
//! runtime, so callers stay synchronous.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

/// Binds `127.0.0.1:port` (0 = OS-chosen).
pub(crate) fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A running server. Dropping it stops the server and joins its thread.
pub(crate) struct ServerThread {
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Binds `127.0.0.1:port` (0 = OS-chosen) right away, so the server accepts
    /// connections (they queue in the backlog) as soon as this returns.
    /// `make_router` runs inside the server's runtime.
    pub(crate) fn spawn<F>(name: &str, port: u16, make_router: F) -> io::Result<ServerThread>
    where
        F: FnOnce() -> axum::Router + Send + 'static,
    {
        ServerThread::spawn_on(name, bind(port)?, make_router)
    }

    /// Like [`ServerThread::spawn`] with a listener from [`bind`].
    pub(crate) fn spawn_on<F>(
        name: &str,
        listener: TcpListener,
        make_router: F,
    ) -> io::Result<ServerThread>
    where
        F: FnOnce() -> axum::Router + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("devstack-{name}"))
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("devstack-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let router = make_router();
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        _ = axum::serve(listener, router) => {}
                        _ = rx => {}
                    }
                });
                // Drops in-flight connections (hung handlers, open SSE streams).
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("server thread exited during startup")),
        }
        Ok(ServerThread {
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Blocks until the server stops (it only stops when dropped, so: forever).
    pub(crate) fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
