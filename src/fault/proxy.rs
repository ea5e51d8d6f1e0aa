//! Network partitions without root: a TCP proxy per directed peer link.
//!
//! Each server's zoo.cfg lists itself at its real peer port and every other
//! member at the port of a proxy owned by the harness, so every connection
//! from server i to server j (Raft RPCs and forwarded writes alike, which
//! paddock dials at the addresses of its own config) runs through the proxy
//! for the link i→j. A link passes bytes, drops them (connections stay open
//! and go silent, as when packets are lost: calls time out), or refuses
//! (connections are closed at once, as with a RST). Any change of mode
//! closes the connections that were open, so a healed link starts with clean
//! streams, never with a half-forwarded frame.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a link does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward both ways.
    Pass,
    /// Accept and hold connections, forward nothing.
    Drop,
    /// Close every connection at once.
    Refuse,
}

/// One directed link: a listener forwarding to `target`.
pub struct Link {
    /// Where the proxy listens.
    pub listen: SocketAddr,
    mode: watch::Sender<LinkMode>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Binds a proxy on a free 127.0.0.1 port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let (mode, rx) = watch::channel(LinkMode::Pass);
        let task = tokio::spawn(accept_loop(listener, target, rx));
        Ok(Link { listen, mode, task })
    }

    /// Sets the mode (a change closes the connections open so far).
    pub fn set(&self, mode: LinkMode) {
        self.mode.send_if_modified(|m| {
            let changed = *m != mode;
            *m = mode;
            changed
        });
    }

    /// The current mode.
    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<LinkMode>) {
    // Connections live as tasks of the harness's runtime, which ends with the run.
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        tokio::spawn(serve(inbound, target, mode.clone()));
    }
}

async fn serve(mut inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<LinkMode>) {
    let now = *mode.borrow_and_update();
    match now {
        LinkMode::Refuse => {}
        LinkMode::Drop => {
            // Silent until the link changes; then closed.
            let _ = mode.changed().await;
        }
        LinkMode::Pass => {
            let Ok(mut outbound) = TcpStream::connect(target).await else { return };
            let _ = outbound.set_nodelay(true);
            let _ = inbound.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                changed = mode.changed() => {
                    if changed.is_ok() && *mode.borrow_and_update() == LinkMode::Drop {
                        // Go silent with both ends open until the next change.
                        let _ = mode.changed().await;
                    }
                }
            }
        }
    }
}

/// The proxies of an ensemble of `n` members: `link(i, j)` carries what
/// server i sends to server j (ids are 1-based).
pub struct Mesh {
    n: usize,
    links: Vec<Option<Link>>,
}

impl Mesh {
    /// Starts a proxy for every ordered pair, forwarding to `peer_addrs[j-1]`.
    pub async fn start(peer_addrs: &[SocketAddr]) -> std::io::Result<Mesh> {
        let n = peer_addrs.len();
        let mut links = Vec::with_capacity(n * n);
        for i in 1..=n {
            for j in 1..=n {
                links.push(if i == j { None } else { Some(Link::start(peer_addrs[j - 1]).await?) });
            }
        }
        Ok(Mesh { n, links })
    }

    /// The link from server `from` to server `to`.
    pub fn link(&self, from: usize, to: usize) -> Option<&Link> {
        if from == 0 || to == 0 || from > self.n || to > self.n {
            return None;
        }
        self.links[(from - 1) * self.n + (to - 1)].as_ref()
    }

    /// Cuts server `id` off from every other server, both directions.
    pub fn isolate(&self, id: usize, mode: LinkMode) {
        for other in 1..=self.n {
            if other != id {
                self.cut(id, other, mode);
            }
        }
    }

    /// Cuts the links between `a` and `b`, both directions.
    pub fn cut(&self, a: usize, b: usize, mode: LinkMode) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(l) = self.link(x, y) {
                l.set(mode);
            }
        }
    }

    /// Heals every link.
    pub fn heal(&self) {
        for l in self.links.iter().flatten() {
            l.set(LinkMode::Pass);
        }
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.n
    }
}
