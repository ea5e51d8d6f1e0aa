//! The client port: accepting connections and serving each one.

pub mod connection;
pub mod der;
pub mod frame;
pub mod jks;
pub mod keystore;
pub mod pkcs12;
pub mod reload;
pub mod reverse_dns;
pub mod stats;
pub mod tls;
pub mod x509;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::server::Server;
use reload::Reloading;

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a client listener speaks.
#[derive(Clone)]
pub enum Listening {
    /// The plain protocol (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Tls(Reloading<TlsAcceptor>),
    /// Either, told apart by the first byte (`client.portUnification`).
    Unified(Reloading<TlsAcceptor>),
}

/// The first byte of a TLS handshake record; a plain connection starts
/// with a length (0 for any sane one) or a four-letter word.
const TLS_HANDSHAKE: u8 = 0x16;

/// Binds a client port, queueing up to `backlog` connections not yet
/// accepted (ZooKeeper's `clientPortListenBacklog`; not above 0: the
/// system's limit, as Netty's default).
pub fn bind(addr: SocketAddr, backlog: i64) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std's bind: a restarted server takes its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // The kernel caps the queue at net.core.somaxconn.
    socket.listen(u32::try_from(backlog).ok().filter(|b| *b > 0).unwrap_or(i32::MAX as u32))
}

/// Accepts client connections until the process ends, each served plain or
/// after its TLS handshake as `mode` says.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener, mode: Listening) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let limits = stats::Limits {
                    per_ip: server.config.max_client_cnxns,
                    total: server.config.max_cnxns,
                    open_files: server.client_budget,
                };
                let admitted = match stats::Admitted::new(&server, peer.ip(), limits) {
                    Ok(admitted) => admitted,
                    Err(refused) => {
                        // As ZooKeeper: the connection is closed at once, with this warning.
                        tracing::warn!("{refused}");
                        drop(stream);
                        continue;
                    }
                };
                let server = server.clone();
                let mode = mode.clone();
                tokio::spawn(async move {
                    serve(server, stream, peer, mode).await;
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

async fn serve(server: Arc<Server>, stream: TcpStream, peer: SocketAddr, mode: Listening) {
    let tls = match mode {
        Listening::Plain => None,
        Listening::Tls(tls) => Some(tls),
        Listening::Unified(tls) => {
            let mut first = [0u8; 1];
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(1..)) if first[0] == TLS_HANDSHAKE => Some(tls),
                Ok(Ok(1..)) => None,
                _ => return,
            }
        }
    };
    let Some(tls) = tls else { return connection::serve(server, stream, peer).await };
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.current().accept(stream)).await {
        Ok(Ok(stream)) => connection::serve_tls(server, stream, peer).await,
        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
    }
}
