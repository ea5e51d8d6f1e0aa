//! Membership changes through ZooKeeper's `reconfig`: add servers (each as
//! a learner first, promoted to voter once it has caught up, unless it is an
//! observer, which stays a learner) and remove servers, without downtime;
//! and the observers of zoo.cfg, added once the ensemble has a leader.
//!
//! Only the leader changes membership (openraft's joint consensus does the
//! safe part); a follower that receives a reconfig hands it to the leader
//! over a peer connection of its own. Once the new membership is committed,
//! the leader writes the new server list to `/zookeeper/config` through the
//! log, so every server (and every client watching it) sees the same text,
//! with `version=` the hex log index of the membership entry, which is what
//! a client passes back as `fromConfig` to make a conditional change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use jute::{GetDataResponse, ReconfigRequest, Record};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use super::link::Links;
use super::wire::{self, PeerRequest, PeerResponse};
use crate::config::{parse_server_line, Peer};
use crate::error::ZkError;
use crate::server::Server;
use crate::tree::acl::{allowed, AuthId};
use crate::tree::txn::Txn;

/// The znode holding the ensemble's membership, as in ZooKeeper.
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// A requested change, parsed (and so sent from a follower to the leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Servers to add: id to the `server.N=` value (`host:peer:election[:role][;client]`).
    pub joining: BTreeMap<u64, String>,
    /// Server ids to remove.
    pub leaving: BTreeSet<u64>,
    /// A whole new membership (non-incremental reconfig), replacing the current one.
    pub new_members: Option<BTreeMap<u64, String>>,
    /// The config version the change applies to (-1: any).
    pub expected_version: i64,
}

/// Parses `server.N=spec` entries separated by commas (or new lines).
fn parse_servers(list: &str) -> Result<BTreeMap<u64, String>, ZkError> {
    let mut out = BTreeMap::new();
    for item in list.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| ZkError::BadArguments(format!("{item:?}: {why}"));
        let (key, spec) = item.split_once('=').ok_or_else(|| bad("expected server.N=host:port:port"))?;
        let id = key.trim().strip_prefix("server.").ok_or_else(|| bad("expected server.N"))?;
        let id: u64 = id.parse().map_err(|_| bad("server id is not a number"))?;
        parse_server_line(spec.trim()).map_err(|e| bad(&e))?;
        out.insert(id, spec.trim().to_string());
    }
    Ok(out)
}

impl Change {
    /// Reads a reconfig request: incremental (joining/leaving) or a new member list.
    pub fn parse(req: &ReconfigRequest) -> Result<Change, ZkError> {
        let joining = parse_servers(&req.joining_servers)?;
        let mut leaving = BTreeSet::new();
        for id in req.leaving_servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let id = id.strip_prefix("server.").unwrap_or(id);
            leaving.insert(id.parse().map_err(|_| ZkError::BadArguments(format!("leaving server {id:?}")))?);
        }
        let new_members = match req.new_members.trim() {
            "" => None,
            list => Some(parse_servers(list)?),
        };
        if new_members.is_some() && (!joining.is_empty() || !leaving.is_empty()) {
            return Err(ZkError::BadArguments("either joining/leaving or new members, not both".into()));
        }
        if new_members.is_none() && joining.is_empty() && leaving.is_empty() {
            return Err(ZkError::BadArguments("nothing to change".into()));
        }
        Ok(Change { joining, leaving, new_members, expected_version: req.cur_config_id })
    }

    /// The server list after the change, from the current one; None if it would be empty.
    pub fn apply_to(&self, current: &BTreeMap<u64, String>) -> Option<BTreeMap<u64, String>> {
        let next = match &self.new_members {
            Some(all) => all.clone(),
            None => {
                let mut next = current.clone();
                next.retain(|id, _| !self.leaving.contains(id));
                next.extend(self.joining.iter().map(|(id, spec)| (*id, spec.clone())));
                next
            }
        };
        (!next.is_empty()).then_some(next)
    }
}

/// `/zookeeper/config`'s text: one `server.N=` line per member, written as
/// ZooKeeper writes it (see [`canonical`]), and the version.
pub fn render(servers: &BTreeMap<u64, String>, version: u64) -> String {
    let mut text: String = servers.iter().map(|(id, spec)| format!("server.{id}={}\n", canonical(spec))).collect();
    text.push_str(&format!("version={version:x}"));
    text
}

/// A `server.N=` value as ZooKeeper shows it in `/zookeeper/config`: the role
/// always named and a client part always with its address
/// (`a:1:2;2181` is `a:1:2:participant;0.0.0.0:2181`), so that clients that
/// compare or parse those lines find what a ZooKeeper ensemble writes. A value
/// that does not read as `host:peerPort:electionPort...` is left as it is.
pub fn canonical(spec: &str) -> String {
    let Ok(peer) = parse_server_line(spec) else { return spec.to_string() };
    let ports = spec.split(';').next().unwrap_or(spec);
    let parts: Vec<&str> = ports.split(':').map(str::trim).collect();
    let [host, peer_port, election, ..] = parts[..] else { return spec.to_string() };
    let role = if peer.observer { "observer" } else { "participant" };
    let mut out = format!("{host}:{peer_port}:{election}:{role}");
    if let Some(port) = peer.client_port {
        let host = peer.client_host.as_deref().unwrap_or("0.0.0.0");
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        out.push_str(&format!(";{host}:{port}"));
    }
    out
}

/// The `server.N=` lines of a `/zookeeper/config` text.
pub fn servers_of(text: &str) -> BTreeMap<u64, String> {
    let lines = text.lines().filter(|l| l.starts_with("server.")).collect::<Vec<_>>().join("\n");
    parse_servers(&lines).unwrap_or_default()
}

/// Answers a client's reconfig: checks it is allowed, has the leader carry it
/// out, and replies with `/zookeeper/config` as applied on this server.
pub async fn reconfig(server: &Server, req: &ReconfigRequest, ids: &[AuthId]) -> Result<(i64, BytesMut), ZkError> {
    if !server.config.reconfig_enabled {
        return Err(ZkError::ReconfigDisabled);
    }
    // ZooKeeper checks the change against the membership before it checks
    // who asks: a stale `fromConfig` or a change that cannot be made is
    // reported as such to any client, and only a valid change meets NoAuth
    // (kazoo's TestReconfig relies on that order). Checked here against this
    // server's view; the leader checks again against its own.
    let change = Change::parse(req)?;
    plan(server, &change)?;
    {
        // As ZooKeeper: WRITE on /zookeeper/config (world-readable only by
        // default, so in practice a super user).
        let state = server.shared.read();
        let node = state.tree.get(CONFIG_PATH).ok_or(ZkError::NoNode)?;
        if !server.config.skip_acl && !allowed(state.tree.acl(node), jute::perms::WRITE, ids) {
            return Err(ZkError::NoAuth);
        }
    }
    let zxid = match server.remote_leader() {
        None => lead(server, &change).await?,
        Some((leader, addr)) => {
            let limit = server.config.catch_up_limit();
            ask_leader(&server.links, server.forwarder.leader_addr(leader, &addr), change, limit).await?
        }
    };
    // Answer from this server's own state, once it holds the change.
    let mut applied = server.shared.applied.subscribe();
    let waited = tokio::time::timeout(Duration::from_secs(30), applied.wait_for(|z| *z >= zxid)).await;
    if !matches!(waited, Ok(Ok(_))) {
        return Err(ZkError::ConnectionLoss("the new config was not applied here in time".into()));
    }
    let state = server.shared.read();
    let node = state.tree.get(CONFIG_PATH).ok_or(ZkError::NoNode)?;
    let mut body = BytesMut::new();
    GetDataResponse { data: node.data().map(<[u8]>::to_vec), stat: node.wire_stat() }.write(&mut body);
    Ok((zxid, body))
}

/// Sends the request to the leader on a connection of its own (reconfigs are
/// rare and may take long: a joining server must catch up first).
async fn ask_leader(links: &Links, addr: &str, change: Change, catch_up: Duration) -> Result<i64, ZkError> {
    let lost = |e: String| ZkError::ConnectionLoss(format!("reconfig through the leader at {addr}: {e}"));
    let mut conn = tokio::time::timeout(Duration::from_secs(2), links.connect(addr))
        .await
        .map_err(|_| lost("connect timed out".into()))?
        .map_err(|e| lost(e.to_string()))?;
    wire::send(&mut conn, 1, &PeerRequest::Reconfig(change)).await.map_err(|e| lost(e.to_string()))?;
    let answer = tokio::time::timeout(catch_up + Duration::from_secs(30), wire::recv::<PeerResponse>(&mut conn))
        .await
        .map_err(|_| lost("no answer".into()))?
        .map_err(|e| lost(e.to_string()))?;
    match answer {
        (_, PeerResponse::Reconfigured(Ok(zxid))) => Ok(zxid),
        (_, PeerResponse::Reconfigured(Err(code))) => Err(from_code(code)),
        _ => Err(lost("unexpected answer".into())),
    }
}

/// The error a forwarded reconfig's code stands for.
pub fn from_code(code: i32) -> ZkError {
    match code {
        c if c == ZkError::BadVersion.raw() => ZkError::BadVersion,
        c if c == ZkError::NewConfigNoQuorum.raw() => ZkError::NewConfigNoQuorum,
        c if c == ZkError::ReconfigInProgress.raw() => ZkError::ReconfigInProgress,
        c if c == ZkError::ReconfigDisabled.raw() => ZkError::ReconfigDisabled,
        c if c == ZkError::NoAuth.raw() => ZkError::NoAuth,
        c if c == ZkError::BadArguments(String::new()).raw() => ZkError::BadArguments("rejected by the leader".into()),
        _ => ZkError::ConnectionLoss(format!("the leader answered error {code}")),
    }
}

/// Serialises membership changes on this server.
static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A change checked against the current membership: what it leads to.
struct Plan {
    /// The current config version (the log index of the membership entry).
    version: u64,
    /// The current voters.
    voters: BTreeSet<u64>,
    /// Every current member, voters and learners.
    members: BTreeSet<u64>,
    /// The server list after the change: id to its `server.N=` value.
    next: BTreeMap<u64, String>,
    /// The same list, read.
    peers: BTreeMap<u64, Peer>,
    /// The voters after the change.
    new_voters: BTreeSet<u64>,
}

/// Checks a change against this server's view of the membership, in
/// ZooKeeper's order: a change in progress, the expected version, then the
/// change itself.
fn plan(server: &Server, change: &Change) -> Result<Plan, ZkError> {
    let m = server.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return Err(ZkError::ReconfigInProgress);
    }
    let version = m.membership_config.log_id().map_or(0, |l| l.index);
    if change.expected_version != -1 && change.expected_version as u64 != version {
        return Err(ZkError::BadVersion);
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let members: BTreeSet<u64> = membership.nodes().map(|(id, _)| *id).collect();
    let current = current_servers(server, &members);
    // A leaving id that is not a member is passed over, as ZooKeeper does:
    // repeating a removal that already happened succeeds.
    let next = change.apply_to(&current).ok_or_else(|| ZkError::BadArguments("no server would be left".into()))?;
    let mut peers = BTreeMap::new();
    for (id, spec) in &next {
        peers.insert(*id, parse_server_line(spec).map_err(ZkError::BadArguments)?);
    }
    let new_voters: BTreeSet<u64> = peers.iter().filter(|(_, p)| !p.observer).map(|(id, _)| *id).collect();
    // As ZooKeeper: a lone participant is refused while `standaloneEnabled`
    // (its default) says a one-server ensemble should run standalone.
    // Observers do not count.
    if server.config.standalone_enabled && new_voters.len() < 2 {
        return Err(ZkError::BadArguments("new configuration must include at least 2 participants".into()));
    }
    if new_voters.is_empty() {
        return Err(ZkError::BadArguments("new configuration must include at least 1 participant".into()));
    }
    Ok(Plan { version, voters, members, next, peers, new_voters })
}

/// Carries out a change on the leader; returns the zxid of the new
/// `/zookeeper/config`.
pub async fn lead(server: &Server, change: &Change) -> Result<i64, ZkError> {
    let _one_at_a_time = CHANGING.try_lock().map_err(|_| ZkError::ReconfigInProgress)?;
    if server.raft.metrics().borrow().current_leader != Some(server.config.server_id) {
        return Err(ZkError::ConnectionLoss("this server is no longer the leader".into()));
    }
    let Plan { mut version, voters, members, next, peers, new_voters } = plan(server, change)?;

    // New servers join as learners (observers stay so) and participants are
    // promoted once they hold the log up to the current membership. An
    // observer is not waited for: it never counts towards a quorum, so, as on
    // ZooKeeper, it may join before it runs (kazoo's TestReconfig adds one
    // that never does).
    let limit = server.config.catch_up_limit();
    let mut joined = BTreeSet::new();
    for (id, peer) in peers.iter().filter(|(id, _)| !members.contains(id)) {
        tracing::info!(id, addr = %peer.peer_addr(), observer = peer.observer, "reconfig: adding a learner");
        joined.insert(*id);
        let added = tokio::time::timeout(limit, server.raft.add_learner(*id, BasicNode::new(peer.peer_addr()), false)).await;
        match added {
            Ok(Ok(r)) => version = r.log_id.index,
            Ok(Err(e)) => {
                undo(server, joined, limit).await;
                return Err(change_error(e));
            }
            Err(_) => {
                undo(server, joined, limit).await;
                return Err(ZkError::NewConfigNoQuorum);
            }
        }
    }
    for id in new_voters.difference(&voters) {
        if !caught_up(server, *id, version, limit).await {
            tracing::warn!(id, ?limit, "reconfig: the server did not catch up in time; the change is undone");
            undo(server, joined, limit).await;
            return Err(ZkError::NewConfigNoQuorum);
        }
    }
    if new_voters != voters {
        tracing::info!(?voters, ?new_voters, "reconfig: changing the voters");
        // Retained: a participant turned observer keeps receiving the log;
        // servers that leave altogether are removed just below.
        let changed = server.raft.change_membership(ChangeMembers::ReplaceAllVoters(new_voters), true).await;
        version = changed.map_err(change_error)?.log_id.index;
    }
    let gone: BTreeSet<u64> = members.iter().filter(|id| !next.contains_key(id)).copied().collect();
    if !gone.is_empty() {
        tracing::info!(?gone, "reconfig: removing servers");
        let changed = server.raft.change_membership(ChangeMembers::RemoveNodes(gone), false).await;
        version = changed.map_err(change_error)?.log_id.index;
    }
    let text = render(&next, version);
    let resp = server.write(0, Txn::SetData { path: CONFIG_PATH.into(), data: Some(text.into_bytes()), version: -1 }).await?;
    Ok(resp.zxid)
}

/// Waits until learner `id` holds the log up to `index` (so it is reachable
/// and has caught up with the membership that names it), at most `limit`.
///
/// openraft's own wait (`add_learner(.., true)`) counts a learner as caught
/// up once it lags by fewer than 5,000 entries, which a young log satisfies
/// before the learner has answered at all.
async fn caught_up(server: &Server, id: u64, index: u64, limit: Duration) -> bool {
    let holds = |m: &openraft::RaftMetrics<u64, BasicNode>| super::matched_index(m, id).is_some_and(|at| at >= index);
    server.raft.wait(Some(limit)).metrics(holds, "reconfig: a joining server catches up").await.is_ok()
}

/// Takes the learners a failed change added out of the membership again
/// (waiting at most `limit`), so that it changes nothing.
async fn undo(server: &Server, joined: BTreeSet<u64>, limit: Duration) {
    if joined.is_empty() {
        return;
    }
    let removed = tokio::time::timeout(limit, server.raft.change_membership(ChangeMembers::RemoveNodes(joined), false)).await;
    if !matches!(removed, Ok(Ok(_))) {
        tracing::warn!("reconfig: the learners added stay until the next change ({removed:?})");
    }
}

/// The current members' `server.N=` values: from `/zookeeper/config` once a
/// reconfig has written it, else from the local zoo.cfg.
fn current_servers(server: &Server, members: &BTreeSet<u64>) -> BTreeMap<u64, String> {
    let mut servers = configured_servers(server).map(|text| servers_of(&text)).unwrap_or_default();
    for (id, peer) in &server.config.peers {
        servers.entry(*id).or_insert_with(|| peer.spec.clone());
    }
    servers.retain(|id, _| members.contains(id));
    servers
}

/// `/zookeeper/config`'s text, once a reconfig has written it.
fn configured_servers(server: &Server) -> Option<String> {
    let state = server.shared.read();
    let node = state.tree.get(CONFIG_PATH)?;
    node.data().filter(|d| !d.is_empty()).map(|d| String::from_utf8_lossy(d).into_owned())
}

/// Makes the observers of zoo.cfg learners: the first start bootstraps the
/// participants only (openraft's initial membership has voters alone), and
/// whichever server then leads adds each observer its zoo.cfg lists. Ends
/// once the membership holds them all, or once a reconfig has written
/// `/zookeeper/config`: from then on the membership is the reconfig's, and
/// an observer it removed stays removed.
pub async fn add_configured_observers(server: Arc<Server>) {
    let mut metrics = server.raft.metrics();
    loop {
        let m = metrics.borrow_and_update().clone();
        if m.running_state.is_err() {
            return;
        }
        let membership = m.membership_config.membership();
        let missing: Vec<(u64, String)> = server
            .config
            .peers
            .iter()
            .filter(|(id, p)| p.observer && membership.get_node(id).is_none())
            .map(|(id, p)| (*id, p.peer_addr()))
            .collect();
        if missing.is_empty() || configured_servers(&server).is_some() {
            return;
        }
        if m.current_leader == Some(server.config.server_id) {
            if let Ok(_one_at_a_time) = CHANGING.try_lock() {
                for (id, addr) in missing {
                    match server.raft.add_learner(id, BasicNode::new(addr.clone()), false).await {
                        Ok(_) => tracing::info!(id, %addr, "observer added: it receives the log and never votes"),
                        Err(e) => tracing::warn!(id, %addr, "observer not added yet: {e}"),
                    }
                }
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn change_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> ZkError {
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(_))) => ZkError::ReconfigInProgress,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => ZkError::BadArguments(e.to_string()),
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ZkError::ConnectionLoss("leadership moved during the reconfig".into()),
        RaftError::Fatal(e) => ZkError::System(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(joining: &str, leaving: &str, new_members: &str) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: new_members.into(),
            cur_config_id: -1,
        }
    }

    #[test]
    fn parses_incremental_and_full_changes() {
        let c = Change::parse(&req("server.4=127.0.0.1:2890:3890;2184,server.5=h:1:2:participant;0.0.0.0:2185", "2, 3", "")).unwrap();
        assert_eq!(c.joining.keys().copied().collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(c.joining[&4], "127.0.0.1:2890:3890;2184");
        assert_eq!(c.leaving, BTreeSet::from([2, 3]));
        let c = Change::parse(&req("", "", "server.1=a:1:2\nserver.2=b:1:2")).unwrap();
        assert_eq!(c.new_members.unwrap().len(), 2);
        for bad in [
            req("", "", ""),
            req("server.x=a:1:2", "", ""),
            req("server.4=a", "", ""),
            req("", "two", ""),
            req("server.4=a:1:2", "", "server.1=a:1:2"),
        ] {
            assert!(matches!(Change::parse(&bad), Err(ZkError::BadArguments(_))), "{bad:?}");
        }
    }

    #[test]
    fn applies_to_the_current_list_and_renders_it() {
        let current = servers_of("server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nversion=100000000");
        assert_eq!(current.len(), 3);
        let c = Change::parse(&req("server.4=d:1:2;2184", "3", "")).unwrap();
        let next = c.apply_to(&current).unwrap();
        assert_eq!(
            render(&next, 0x1f),
            "server.1=a:1:2:participant\nserver.2=b:1:2:participant\nserver.4=d:1:2:participant;0.0.0.0:2184\nversion=1f"
        );
        let all_gone = Change::parse(&req("", "1,2,3", "")).unwrap();
        assert_eq!(all_gone.apply_to(&current), None);
    }

    #[test]
    fn writes_server_lines_as_zookeeper_does() {
        for (given, shown) in [
            ("a:1:2", "a:1:2:participant"),
            ("a:1:2:observer;2181", "a:1:2:observer;0.0.0.0:2181"),
            ("a:1:2:PARTICIPANT;10.0.0.1:2181", "a:1:2:participant;10.0.0.1:2181"),
            ("a:1:2;[::1]:2181", "a:1:2:participant;[::1]:2181"),
            ("a:1", "a:1"),
        ] {
            assert_eq!(canonical(given), shown, "{given}");
        }
    }
}
