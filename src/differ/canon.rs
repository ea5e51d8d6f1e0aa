//! Replies in a form two different servers must agree on.
//!
//! Two servers never share zxids, session ids or clocks, so those are
//! rewritten before comparing: a zxid becomes the step whose write made it
//! (`z17`), a session id the slot and generation that owns it (`s1.0`),
//! times are dropped. Children and ephemeral lists are sorted (ZooKeeper
//! answers them in hash order). Everything else must match byte for byte
//! in meaning: error codes, versions, data, paths, sequence numbers, ACLs.

use std::collections::HashMap;
use std::fmt::Write as _;

use jute::{
    Acl, Create2Response, CreateResponse, ErrorCode, ExistsResponse, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, MultiResponse, MultiResult, OpCode, Record, SetAclResponse,
    SetDataResponse, Stat, SyncResponse, WatcherEvent, WhoAmIResponse,
};

/// What one server's ids mean, learnt as the run goes.
#[derive(Default)]
pub struct Names {
    zxids: HashMap<i64, String>,
    sessions: HashMap<i64, String>,
}

impl Names {
    /// Names the zxid of a write that step `step` made.
    pub fn zxid_is_step(&mut self, zxid: i64, step: usize) {
        self.zxids.entry(zxid).or_insert_with(|| format!("z{step}"));
    }

    /// Names a session id after the slot and generation holding it.
    pub fn session_is(&mut self, id: i64, name: String) {
        self.sessions.insert(id, name);
    }

    fn zxid(&self, zxid: i64) -> String {
        match self.zxids.get(&zxid) {
            Some(name) => name.clone(),
            None => "z?".to_string(),
        }
    }

    fn owner(&self, owner: i64) -> String {
        match self.sessions.get(&owner) {
            Some(name) => name.clone(),
            // 0, a container's or a TTL node's marker: the same on both servers.
            None => format!("{owner:#x}"),
        }
    }

    /// A stat without times, its ids named.
    pub fn stat(&self, s: &Stat) -> String {
        format!(
            "stat(c={} m={} p={} v={} cv={} av={} owner={} len={} kids={})",
            self.zxid(s.czxid),
            self.zxid(s.mzxid),
            self.zxid(s.pzxid),
            s.version,
            s.cversion,
            s.aversion,
            self.owner(s.ephemeral_owner),
            s.data_length,
            s.num_children,
        )
    }

    /// A reply to `op`: the error code, then the body as the op defines it.
    /// With MarshallingError no client reads a body, and ZooKeeper's is
    /// whatever it had built when decoding failed (an empty multi response
    /// for a multiRead of writes only, none for one mixing reads and writes).
    pub fn reply(&self, op: OpCode, err: i32, body: &[u8]) -> String {
        if err != 0 && (op != OpCode::Multi && op != OpCode::MultiRead || err == ErrorCode::MarshallingError.code()) {
            return format!("err {err}");
        }
        let decoded = self.body(op, body);
        match decoded {
            Ok(text) => format!("err {err} {text}"),
            Err(e) => format!("err {err} undecodable body ({e}): {body:02x?}"),
        }
    }

    fn body(&self, op: OpCode, body: &[u8]) -> Result<String, jute::DecodeError> {
        Ok(match op {
            OpCode::Create => CreateResponse::from_bytes(body)?.path,
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                let r = Create2Response::from_bytes(body)?;
                format!("{} {}", r.path, self.stat(&r.stat))
            }
            OpCode::Exists => self.stat(&ExistsResponse::from_bytes(body)?.stat),
            OpCode::GetData => {
                let r = GetDataResponse::from_bytes(body)?;
                format!("{} {}", data(r.data.as_deref()), self.stat(&r.stat))
            }
            OpCode::SetData => self.stat(&SetDataResponse::from_bytes(body)?.stat),
            OpCode::GetAcl => {
                let r = GetAclResponse::from_bytes(body)?;
                format!("{} {}", acl(&r.acl), self.stat(&r.stat))
            }
            OpCode::SetAcl => self.stat(&SetAclResponse::from_bytes(body)?.stat),
            OpCode::GetChildren => sorted(GetChildrenResponse::from_bytes(body)?.children),
            OpCode::GetChildren2 => {
                let r = GetChildren2Response::from_bytes(body)?;
                format!("{} {}", sorted(r.children), self.stat(&r.stat))
            }
            OpCode::Sync => SyncResponse::from_bytes(body)?.path,
            OpCode::GetAllChildrenNumber => GetAllChildrenNumberResponse::from_bytes(body)?.total_number.to_string(),
            OpCode::GetEphemerals => sorted(GetEphemeralsResponse::from_bytes(body)?.ephemerals),
            // In the server's order: paddock lists identities as ZooKeeper's
            // hash set does (ops::identities).
            OpCode::WhoAmI => {
                let who: Vec<String> =
                    WhoAmIResponse::from_bytes(body)?.client_info.into_iter().map(|c| format!("{}:{}", c.auth_scheme, c.user)).collect();
                who.join(",")
            }
            OpCode::Multi | OpCode::MultiRead => {
                let mut out = String::new();
                for result in MultiResponse::from_bytes(body)?.results {
                    let _ = write!(out, "[{}] ", self.multi_result(&result));
                }
                out
            }
            // delete, check, addWatch, removeWatches, checkWatches: no body.
            _ if body.is_empty() => String::new(),
            _ => format!("{body:02x?}"),
        })
    }

    fn multi_result(&self, result: &MultiResult) -> String {
        match result {
            MultiResult::Create(path) => format!("create {path}"),
            MultiResult::Create2 { path, stat } => format!("create2 {path} {}", self.stat(stat)),
            MultiResult::Delete => "delete".to_string(),
            MultiResult::SetData(stat) => format!("setData {}", self.stat(stat)),
            MultiResult::Check => "check".to_string(),
            MultiResult::GetData { data: d, stat } => format!("getData {} {}", data(d.as_deref()), self.stat(stat)),
            MultiResult::GetChildren(children) => format!("getChildren {}", sorted(children.clone())),
            MultiResult::Error(code) => format!("error {code}"),
        }
    }

    /// A watch event, as the session saw it.
    pub fn event(&self, e: &WatcherEvent) -> String {
        format!("event type={} state={} {}", e.event_type, e.state, e.path)
    }
}

fn data(d: Option<&[u8]>) -> String {
    match d {
        None => "null".to_string(),
        Some(bytes) => format!("{bytes:02x?}"),
    }
}

fn acl(acl: &[Acl]) -> String {
    acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect::<Vec<_>>().join(",")
}

fn sorted(mut names: Vec<String>) -> String {
    names.sort();
    format!("{names:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_and_sessions_are_named_and_times_dropped() {
        let mut a = Names::default();
        let mut b = Names::default();
        a.zxid_is_step(0x1_0000_0005, 3);
        b.zxid_is_step(0x2_0000_0009, 3);
        a.session_is(77, "s1.0".into());
        b.session_is(99, "s1.0".into());
        let sa = Stat {
            czxid: 0x1_0000_0005,
            mzxid: 0x1_0000_0005,
            pzxid: 0x1_0000_0005,
            ctime: 1,
            mtime: 2,
            ephemeral_owner: 77,
            ..Stat::default()
        };
        let sb = Stat {
            czxid: 0x2_0000_0009,
            mzxid: 0x2_0000_0009,
            pzxid: 0x2_0000_0009,
            ctime: 5,
            mtime: 9,
            ephemeral_owner: 99,
            ..Stat::default()
        };
        assert_eq!(a.stat(&sa), b.stat(&sb));
        // A different version is a difference.
        assert_ne!(a.stat(&sa), b.stat(&Stat { version: 1, ..sb }));
        // A zxid no step made is not taken for one that a step made.
        assert_ne!(a.stat(&sa), b.stat(&Stat { mzxid: 0x2_0000_000a, ..sb }));
    }

    #[test]
    fn children_compare_in_any_order_and_errors_carry_no_body() {
        let names = Names::default();
        let one = GetChildrenResponse { children: vec!["b".into(), "a".into()] }.to_bytes();
        let other = GetChildrenResponse { children: vec!["a".into(), "b".into()] }.to_bytes();
        assert_eq!(names.reply(OpCode::GetChildren, 0, &one), names.reply(OpCode::GetChildren, 0, &other));
        assert_eq!(names.reply(OpCode::GetData, -101, &[]), "err -101");
        assert_ne!(names.reply(OpCode::GetData, -101, &[]), names.reply(OpCode::GetData, -102, &[]));
    }
}
