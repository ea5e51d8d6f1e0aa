//! Result codes (`KeeperException.Code`), as carried in `ReplyHeader.err`.

use std::fmt;

/// A ZooKeeper 3.8 result code; `Ok` is success, everything else an error.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    /// A system or server-side error.
    SystemError = -1,
    /// A runtime inconsistency (also: a multi op not run because an earlier one failed).
    RuntimeInconsistency = -2,
    /// A data inconsistency was found.
    DataInconsistency = -3,
    /// Connection to the server was lost.
    ConnectionLoss = -4,
    /// Error while marshalling or unmarshalling data.
    MarshallingError = -5,
    /// Operation is unimplemented.
    Unimplemented = -6,
    /// Operation timeout.
    OperationTimeout = -7,
    /// Invalid arguments.
    BadArguments = -8,
    /// Unknown session (internal server use only).
    UnknownSession = -12,
    /// No quorum of the new config is connected and up-to-date with the leader.
    NewConfigNoQuorum = -13,
    /// Another reconfiguration is in progress.
    ReconfigInProgress = -14,
    /// API errors; codes below this are client-facing API errors.
    ApiError = -100,
    /// Node does not exist.
    NoNode = -101,
    /// Not authenticated.
    NoAuth = -102,
    /// Version conflict.
    BadVersion = -103,
    /// Ephemeral nodes may not have children.
    NoChildrenForEphemerals = -108,
    /// The node already exists.
    NodeExists = -110,
    /// The node has children.
    NotEmpty = -111,
    /// The session has been expired by the server.
    SessionExpired = -112,
    /// Invalid callback specified.
    InvalidCallback = -113,
    /// Invalid ACL specified.
    InvalidAcl = -114,
    /// Client authentication failed.
    AuthFailed = -115,
    /// Session moved to another server, so operation is ignored.
    SessionMoved = -118,
    /// State-changing request is passed to read-only server.
    NotReadOnly = -119,
    /// Attempt to create ephemeral node on a local session.
    EphemeralOnLocalSession = -120,
    /// Attempting to remove a non-existing watcher.
    NoWatcher = -121,
    /// Request not completed within max allowed time.
    RequestTimeout = -122,
    /// Attempts to perform a reconfiguration operation when it is disabled.
    ReconfigDisabled = -123,
    /// The session was closed because SASL authentication is required.
    SessionClosedRequireSasl = -124,
    /// Exceeded the quota set on the path.
    QuotaExceeded = -125,
    /// Operation was throttled and not executed at all.
    Throttled = -127,
}

/// (code, Java enum constant name, Java `KeeperException.getCodeMessage` text).
const TABLE: [(ErrorCode, &str, &str); 32] = [
    (ErrorCode::Ok, "OK", "ok"),
    (ErrorCode::SystemError, "SYSTEMERROR", "SystemError"),
    (ErrorCode::RuntimeInconsistency, "RUNTIMEINCONSISTENCY", "RuntimeInconsistency"),
    (ErrorCode::DataInconsistency, "DATAINCONSISTENCY", "DataInconsistency"),
    (ErrorCode::ConnectionLoss, "CONNECTIONLOSS", "ConnectionLoss"),
    (ErrorCode::MarshallingError, "MARSHALLINGERROR", "MarshallingError"),
    (ErrorCode::Unimplemented, "UNIMPLEMENTED", "Unimplemented"),
    (ErrorCode::OperationTimeout, "OPERATIONTIMEOUT", "OperationTimeout"),
    (ErrorCode::BadArguments, "BADARGUMENTS", "BadArguments"),
    (ErrorCode::UnknownSession, "UNKNOWNSESSION", "UnknownSession"),
    (ErrorCode::NewConfigNoQuorum, "NEWCONFIGNOQUORUM", "NewConfigNoQuorum"),
    (ErrorCode::ReconfigInProgress, "RECONFIGINPROGRESS", "ReconfigInProgress"),
    (ErrorCode::ApiError, "APIERROR", "APIError"),
    (ErrorCode::NoNode, "NONODE", "NoNode"),
    (ErrorCode::NoAuth, "NOAUTH", "NoAuth"),
    (ErrorCode::BadVersion, "BADVERSION", "BadVersion"),
    (ErrorCode::NoChildrenForEphemerals, "NOCHILDRENFOREPHEMERALS", "NoChildrenForEphemerals"),
    (ErrorCode::NodeExists, "NODEEXISTS", "NodeExists"),
    (ErrorCode::NotEmpty, "NOTEMPTY", "Directory not empty"),
    (ErrorCode::SessionExpired, "SESSIONEXPIRED", "Session expired"),
    (ErrorCode::InvalidCallback, "INVALIDCALLBACK", "Invalid callback"),
    (ErrorCode::InvalidAcl, "INVALIDACL", "InvalidACL"),
    (ErrorCode::AuthFailed, "AUTHFAILED", "AuthFailed"),
    (ErrorCode::SessionMoved, "SESSIONMOVED", "Session moved"),
    (ErrorCode::NotReadOnly, "NOTREADONLY", "Not a read-only call"),
    (ErrorCode::EphemeralOnLocalSession, "EPHEMERALONLOCALSESSION", "Ephemeral node on local session"),
    (ErrorCode::NoWatcher, "NOWATCHER", "No such watcher"),
    (ErrorCode::RequestTimeout, "REQUESTTIMEOUT", "RequestTimeout"),
    (ErrorCode::ReconfigDisabled, "RECONFIGDISABLED", "Reconfig is disabled"),
    (ErrorCode::SessionClosedRequireSasl, "SESSIONCLOSEDREQUIRESASLAUTH", "Session closed because client failed to authenticate"),
    (ErrorCode::QuotaExceeded, "QUOTAEXCEEDED", "Quota has exceeded"),
    (ErrorCode::Throttled, "THROTTLEDOP", "Op throttled due to high load"),
];

impl ErrorCode {
    /// The wire value of this code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Maps a wire value to its code, or `None` if unknown.
    pub fn from_i32(v: i32) -> Option<ErrorCode> {
        TABLE.iter().find(|(c, _, _)| c.code() == v).map(|(c, _, _)| *c)
    }

    /// True for `Ok`.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }

    /// The Java enum constant name, e.g. `NONODE`.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The text Java puts after `KeeperErrorCode = `, e.g. `NoNode`.
    pub fn message(self) -> &'static str {
        self.entry().2
    }

    /// This code's row of the name table.
    fn entry(self) -> (ErrorCode, &'static str, &'static str) {
        TABLE.iter().copied().find(|(c, _, _)| *c == self).unwrap_or((self, "UNKNOWN", "Unknown error"))
    }
}

impl fmt::Display for ErrorCode {
    /// Formats like ZooKeeper's exception messages, e.g. `NoNode`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl From<ErrorCode> for i32 {
    fn from(code: ErrorCode) -> i32 {
        code.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_keeper_exception() {
        let expected = [
            (ErrorCode::Ok, 0),
            (ErrorCode::SystemError, -1),
            (ErrorCode::RuntimeInconsistency, -2),
            (ErrorCode::DataInconsistency, -3),
            (ErrorCode::ConnectionLoss, -4),
            (ErrorCode::MarshallingError, -5),
            (ErrorCode::Unimplemented, -6),
            (ErrorCode::OperationTimeout, -7),
            (ErrorCode::BadArguments, -8),
            (ErrorCode::UnknownSession, -12),
            (ErrorCode::NewConfigNoQuorum, -13),
            (ErrorCode::ReconfigInProgress, -14),
            (ErrorCode::ApiError, -100),
            (ErrorCode::NoNode, -101),
            (ErrorCode::NoAuth, -102),
            (ErrorCode::BadVersion, -103),
            (ErrorCode::NoChildrenForEphemerals, -108),
            (ErrorCode::NodeExists, -110),
            (ErrorCode::NotEmpty, -111),
            (ErrorCode::SessionExpired, -112),
            (ErrorCode::InvalidCallback, -113),
            (ErrorCode::InvalidAcl, -114),
            (ErrorCode::AuthFailed, -115),
            (ErrorCode::SessionMoved, -118),
            (ErrorCode::NotReadOnly, -119),
            (ErrorCode::EphemeralOnLocalSession, -120),
            (ErrorCode::NoWatcher, -121),
            (ErrorCode::RequestTimeout, -122),
            (ErrorCode::ReconfigDisabled, -123),
            (ErrorCode::SessionClosedRequireSasl, -124),
            (ErrorCode::QuotaExceeded, -125),
            (ErrorCode::Throttled, -127),
        ];
        assert_eq!(expected.len(), TABLE.len());
        for (code, value) in expected {
            assert_eq!(code.code(), value);
            assert_eq!(ErrorCode::from_i32(value), Some(code));
            assert_ne!(code.name(), "UNKNOWN");
        }
        for unknown in [1, -9, -126, -128, i32::MIN] {
            assert_eq!(ErrorCode::from_i32(unknown), None);
        }
        assert_eq!(ErrorCode::NoNode.to_string(), "NoNode");
        assert_eq!(ErrorCode::NotEmpty.name(), "NOTEMPTY");
        assert_eq!(i32::from(ErrorCode::NodeExists), -110);
        assert!(ErrorCode::Ok.is_ok());
    }
}
