//! The server's typed errors, and their one mapping to ZooKeeper error codes.

use jute::ErrorCode;

/// Why a ZooKeeper operation failed, in the server's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    /// The node does not exist.
    #[error("no node")]
    NoNode,
    /// The node already exists.
    #[error("node exists")]
    NodeExists,
    /// The expected version did not match.
    #[error("bad version")]
    BadVersion,
    /// The node still has children.
    #[error("not empty")]
    NotEmpty,
    /// Ephemeral nodes cannot have children.
    #[error("ephemerals cannot have children")]
    NoChildrenForEphemerals,
    /// A path or argument was malformed.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// A request ZooKeeper cannot unmarshal into what its op code names
    /// (a multi with reads in it, a multiRead with writes).
    #[error("marshalling error: {0}")]
    Marshalling(String),
    /// The ACL is empty or malformed.
    #[error("invalid ACL")]
    InvalidAcl,
    /// The caller lacks the permission.
    #[error("not authorised")]
    NoAuth,
    /// Authentication failed.
    #[error("authentication failed")]
    AuthFailed,
    /// The server requires authentication (`enforce.auth.enabled`) the
    /// connection has not done: it is closed, the session lives on.
    #[error("session closed because client failed to authenticate")]
    AuthRequired,
    /// A write on a read-only connection (a server without a quorum).
    #[error("not a read-only call")]
    NotReadOnly,
    /// The session is gone.
    #[error("session expired")]
    SessionExpired,
    /// The operation is not implemented by this server.
    #[error("unimplemented")]
    Unimplemented,
    /// Reconfiguration is disabled (ZooKeeper's default, reconfigEnabled=false).
    #[error("reconfig is disabled")]
    ReconfigDisabled,
    /// A write would take a quota'd path past a hard limit (`enforceQuota`).
    #[error("quota exceeded for {0}")]
    QuotaExceeded(String),
    /// A membership change is already under way.
    #[error("reconfig in progress")]
    ReconfigInProgress,
    /// The new membership could not be formed (a joining server did not catch up).
    #[error("new config has no quorum")]
    NewConfigNoQuorum,
    /// No matching watch to remove.
    #[error("no watcher")]
    NoWatcher,
    /// A later op of a failed multi that was not attempted.
    #[error("runtime inconsistency")]
    RuntimeInconsistency,
    /// The cluster could not commit the request (no leader, shutting down).
    #[error("connection loss: {0}")]
    ConnectionLoss(String),
    /// An internal failure.
    #[error("system error: {0}")]
    System(String),
}

impl ZkError {
    /// The ZooKeeper error code a client sees for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ZkError::NoNode => ErrorCode::NoNode,
            ZkError::NodeExists => ErrorCode::NodeExists,
            ZkError::BadVersion => ErrorCode::BadVersion,
            ZkError::NotEmpty => ErrorCode::NotEmpty,
            ZkError::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            ZkError::BadArguments(_) => ErrorCode::BadArguments,
            ZkError::Marshalling(_) => ErrorCode::MarshallingError,
            ZkError::InvalidAcl => ErrorCode::InvalidAcl,
            ZkError::NoAuth => ErrorCode::NoAuth,
            ZkError::NotReadOnly => ErrorCode::NotReadOnly,
            ZkError::AuthFailed => ErrorCode::AuthFailed,
            ZkError::AuthRequired => ErrorCode::SessionClosedRequireSasl,
            ZkError::SessionExpired => ErrorCode::SessionExpired,
            ZkError::Unimplemented => ErrorCode::Unimplemented,
            ZkError::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            ZkError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            ZkError::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            ZkError::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            ZkError::NoWatcher => ErrorCode::NoWatcher,
            ZkError::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            ZkError::ConnectionLoss(_) => ErrorCode::ConnectionLoss,
            ZkError::System(_) => ErrorCode::SystemError,
        }
    }

    /// The raw code, as carried in replies and in replicated outcomes.
    pub fn raw(&self) -> i32 {
        self.code().code()
    }
}

impl From<crate::tree::path::PathError> for ZkError {
    fn from(e: crate::tree::path::PathError) -> Self {
        ZkError::BadArguments(e.to_string())
    }
}
