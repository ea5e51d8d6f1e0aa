//! Request op codes (`ZooDefs.OpCode`), as carried in `RequestHeader.op`.

use std::fmt;

/// A request type of the client protocol, with ZooKeeper 3.8's numbering.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// Watch notification (server-internal).
    Notification = 0,
    /// Create a node; replies with its path.
    Create = 1,
    /// Delete a node.
    Delete = 2,
    /// Stat a node, optionally watching for its creation/change.
    Exists = 3,
    /// Read a node's data and stat.
    GetData = 4,
    /// Replace a node's data.
    SetData = 5,
    /// Read a node's ACL.
    GetAcl = 6,
    /// Replace a node's ACL.
    SetAcl = 7,
    /// List a node's children.
    GetChildren = 8,
    /// Flush the leader channel for a path.
    Sync = 9,
    /// Session heartbeat.
    Ping = 11,
    /// List a node's children together with its stat.
    GetChildren2 = 12,
    /// Check a node's version (only meaningful inside a multi).
    Check = 13,
    /// Atomic multi-op transaction.
    Multi = 14,
    /// Create a node; replies with its path and stat.
    Create2 = 15,
    /// Dynamic reconfiguration.
    Reconfig = 16,
    /// Ask whether a watch exists.
    CheckWatches = 17,
    /// Remove watches.
    RemoveWatches = 18,
    /// Create a container node.
    CreateContainer = 19,
    /// Delete a container node (server-internal).
    DeleteContainer = 20,
    /// Create a node with a time-to-live.
    CreateTtl = 21,
    /// Batch of reads (getData/getChildren) answered together.
    MultiRead = 22,
    /// Add authentication info to the session.
    Auth = 100,
    /// Re-register watches after a reconnect.
    SetWatches = 101,
    /// SASL authentication step.
    Sasl = 102,
    /// List the session's ephemeral nodes under a prefix.
    GetEphemerals = 103,
    /// Count all descendants of a node.
    GetAllChildrenNumber = 104,
    /// Re-register watches, including persistent ones.
    SetWatches2 = 105,
    /// Add a persistent (optionally recursive) watch.
    AddWatch = 106,
    /// Report the session's authenticated identities.
    WhoAmI = 107,
    /// Session creation (server-internal).
    CreateSession = -10,
    /// Close the session.
    CloseSession = -11,
    /// Error marker (e.g. a failed op inside a multi result).
    Error = -1,
}

impl OpCode {
    /// Every op code, in declaration order.
    pub const ALL: [OpCode; 33] = [
        OpCode::Notification,
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetAcl,
        OpCode::SetAcl,
        OpCode::GetChildren,
        OpCode::Sync,
        OpCode::Ping,
        OpCode::GetChildren2,
        OpCode::Check,
        OpCode::Multi,
        OpCode::Create2,
        OpCode::Reconfig,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CreateContainer,
        OpCode::DeleteContainer,
        OpCode::CreateTtl,
        OpCode::MultiRead,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::Sasl,
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::SetWatches2,
        OpCode::AddWatch,
        OpCode::WhoAmI,
        OpCode::CreateSession,
        OpCode::CloseSession,
        OpCode::Error,
    ];

    /// Maps a wire value to its op code, or `None` if unknown.
    pub fn from_i32(v: i32) -> Option<OpCode> {
        Self::ALL.iter().copied().find(|op| op.code() == v)
    }

    /// The wire value of this op code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The name ZooKeeper uses for this op code (`ZooDefs.OpCode` field name).
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "notification",
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::SetData => "setData",
            OpCode::GetAcl => "getACL",
            OpCode::SetAcl => "setACL",
            OpCode::GetChildren => "getChildren",
            OpCode::Sync => "sync",
            OpCode::Ping => "ping",
            OpCode::GetChildren2 => "getChildren2",
            OpCode::Check => "check",
            OpCode::Multi => "multi",
            OpCode::Create2 => "create2",
            OpCode::Reconfig => "reconfig",
            OpCode::CheckWatches => "checkWatches",
            OpCode::RemoveWatches => "removeWatches",
            OpCode::CreateContainer => "createContainer",
            OpCode::DeleteContainer => "deleteContainer",
            OpCode::CreateTtl => "createTTL",
            OpCode::MultiRead => "multiRead",
            OpCode::Auth => "auth",
            OpCode::SetWatches => "setWatches",
            OpCode::Sasl => "sasl",
            OpCode::GetEphemerals => "getEphemerals",
            OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
            OpCode::SetWatches2 => "setWatches2",
            OpCode::AddWatch => "addWatch",
            OpCode::WhoAmI => "whoAmI",
            OpCode::CreateSession => "createSession",
            OpCode::CloseSession => "closeSession",
            OpCode::Error => "error",
        }
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_zoodefs() {
        let expected = [
            (OpCode::Notification, 0),
            (OpCode::Create, 1),
            (OpCode::Delete, 2),
            (OpCode::Exists, 3),
            (OpCode::GetData, 4),
            (OpCode::SetData, 5),
            (OpCode::GetAcl, 6),
            (OpCode::SetAcl, 7),
            (OpCode::GetChildren, 8),
            (OpCode::Sync, 9),
            (OpCode::Ping, 11),
            (OpCode::GetChildren2, 12),
            (OpCode::Check, 13),
            (OpCode::Multi, 14),
            (OpCode::Create2, 15),
            (OpCode::Reconfig, 16),
            (OpCode::CheckWatches, 17),
            (OpCode::RemoveWatches, 18),
            (OpCode::CreateContainer, 19),
            (OpCode::DeleteContainer, 20),
            (OpCode::CreateTtl, 21),
            (OpCode::MultiRead, 22),
            (OpCode::Auth, 100),
            (OpCode::SetWatches, 101),
            (OpCode::Sasl, 102),
            (OpCode::GetEphemerals, 103),
            (OpCode::GetAllChildrenNumber, 104),
            (OpCode::SetWatches2, 105),
            (OpCode::AddWatch, 106),
            (OpCode::WhoAmI, 107),
            (OpCode::CreateSession, -10),
            (OpCode::CloseSession, -11),
            (OpCode::Error, -1),
        ];
        assert_eq!(expected.len(), OpCode::ALL.len());
        for (op, code) in expected {
            assert_eq!(op.code(), code);
            assert_eq!(OpCode::from_i32(code), Some(op));
        }
        for unknown in [10, 23, 99, 108, -2, -12, i32::MIN, i32::MAX] {
            assert_eq!(OpCode::from_i32(unknown), None);
        }
        assert_eq!(OpCode::CreateTtl.to_string(), "createTTL");
    }
}
