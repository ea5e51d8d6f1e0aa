//! The client port: accepting connections and serving each one.

pub mod connection;
pub mod frame;
pub mod stats;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::server::Server;

/// Accepts client connections until the process ends.
pub async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
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
                tokio::spawn(async move {
                    connection::serve(server, stream, peer).await;
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
