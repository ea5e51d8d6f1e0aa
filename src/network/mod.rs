//! The client port: accepting connections and serving each one.

pub mod connection;
pub mod frame;
pub mod stats;
pub mod tls;
pub mod x509;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::server::Server;

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts client connections until the process ends: plain ones, or on the
/// secure client port (`tls`) each after its TLS handshake.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let max = server.config.max_client_cnxns;
                let Some(admitted) = stats::Admitted::new(&server, peer.ip(), max) else {
                    // As ZooKeeper: the connection is closed at once, with this warning.
                    tracing::warn!("Too many connections from {} - max is {max}", peer.ip());
                    drop(stream);
                    continue;
                };
                let server = server.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => connection::serve(server, stream, peer).await,
                        Some(tls) => {
                            let _ = stream.set_nodelay(true);
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => connection::serve_tls(server, stream, peer).await,
                                Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                    drop(admitted);
                });
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
