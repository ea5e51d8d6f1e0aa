//! Which storage format every member reads, so that no server writes a
//! record another member cannot decode.
//!
//! During a rolling upgrade some members still run an older build. A log
//! entry in a newer format (a `Txn` variant it does not know) reaches them
//! in an append they cannot decode: they refuse every append from then on,
//! and with a majority of them the ensemble stops taking writes. So a
//! record that needs a newer format is written only once every member has
//! said it reads that format ([`ClusterFormat::allows`]).
//!
//! Each server asks every other member (`PeerRequest::Format`, on a
//! connection of its own): every 2 s until all answer this build's
//! [`FORMAT`], then every 30 s and whenever the membership changes. A member
//! that takes the connection but does not answer runs a build from before
//! the question, and counts as format 0. One that cannot be reached keeps
//! what it last answered (0 if it never did): a member that is down for a
//! while does not turn the newer records off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::link::Links;
use super::peer_server::{ask_why, NoAnswer};
use super::wire::{PeerRequest, PeerResponse};
use crate::server::Server;
use crate::storage::FORMAT;

/// The format from which a write may carry the reads it was sent after
/// (`Txn::AfterReads`, `session::reads`).
pub const AFTER_READS: u32 = 1;

/// The lowest storage format among the members, as last learnt.
#[derive(Debug, Default)]
pub struct ClusterFormat {
    lowest: AtomicU32,
}

impl ClusterFormat {
    /// True if every member reads records of `format`.
    pub fn allows(&self, format: u32) -> bool {
        self.lowest.load(Ordering::Relaxed) >= format
    }
}

/// Which format the member at `addr` reads: None if it cannot be reached,
/// 0 if it hangs up on the question (a build from before it).
async fn ask(links: &Links, addr: &str) -> Option<u32> {
    match ask_why(links, addr, &PeerRequest::Format, Duration::from_secs(5)).await {
        Ok(PeerResponse::Format(format)) => Some(format),
        Ok(_) | Err(NoAnswer::HungUp) => Some(0),
        Err(NoAnswer::Unreachable) => None,
    }
}

/// Keeps `server.formats` up to date until the process ends.
pub async fn run(server: Arc<Server>) {
    let mut known: HashMap<(u64, String), u32> = HashMap::new();
    let mut membership = server.raft.server_metrics();
    loop {
        let (formed, others): (bool, Vec<(u64, String)>) = {
            let m = membership.borrow_and_update();
            let members = m.membership_config.membership();
            let formed = members.nodes().next().is_some();
            let others = members.nodes().filter(|(id, _)| **id != m.id).map(|(id, n)| (*id, n.addr.clone())).collect();
            (formed, others)
        };
        if !formed {
            // Members not known yet (an ensemble still forming): nothing newer.
            server.formats.lowest.store(0, Ordering::Relaxed);
            if membership.changed().await.is_err() {
                return;
            }
            continue;
        }
        // Until they answer, members count as what they last said (new ones
        // as 0), so a member that just joined turns the newer records off
        // at once.
        let provisional = others.iter().map(|m| known.get(m).copied().unwrap_or(0)).fold(FORMAT, u32::min);
        server.formats.lowest.store(provisional, Ordering::Relaxed);
        let answers = futures::future::join_all(others.iter().map(|m| ask(&server.links, &m.1))).await;
        let mut lowest = FORMAT;
        for (member, answer) in others.iter().zip(answers) {
            let format = answer.or_else(|| known.get(member).copied()).unwrap_or(0);
            if known.insert(member.clone(), format) != Some(format) {
                tracing::info!(member = member.0, format, "storage format of a member");
            }
            lowest = lowest.min(format);
        }
        known.retain(|k, _| others.contains(k));
        server.formats.lowest.store(lowest, Ordering::Relaxed);
        let pause = Duration::from_secs(if lowest >= FORMAT { 30 } else { 2 });
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = membership.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire;
    use super::*;
    use tokio::net::TcpListener;
    use tokio_util::either::Either;

    /// A member on a local port: `answer` says what it does with a question.
    async fn member(answer: Option<PeerResponse>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut conn = wire::framed(Either::Left(stream));
            // A build that predates `Format` cannot decode it and hangs up.
            let Ok((id, PeerRequest::Format)) = wire::recv::<PeerRequest>(&mut conn).await else { return };
            if let Some(answer) = answer {
                let _ = wire::send(&mut conn, id, &answer).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_member_that_answers_gives_its_format_and_one_that_hangs_up_is_older() {
        let links = Links::default();
        assert_eq!(ask(&links, &member(Some(PeerResponse::Format(7))).await).await, Some(7));
        assert_eq!(ask(&links, &member(None).await).await, Some(0));
        // Nobody listening: unreachable, not older (it keeps what it said before).
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address").to_string();
        assert_eq!(ask(&links, &gone).await, None);
    }

    #[test]
    fn held_reads_need_every_member_at_their_format() {
        let formats = ClusterFormat::default();
        assert!(!formats.allows(AFTER_READS), "nothing known yet: only what every build reads");
        formats.lowest.store(FORMAT, Ordering::Relaxed);
        assert!(formats.allows(AFTER_READS));
    }
}
