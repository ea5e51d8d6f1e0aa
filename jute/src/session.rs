//! Session-level records: the connect handshake, request/reply headers,
//! watch notifications, and their well-known constants.

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::{record, Record};
use crate::writer::{write_bool, write_buffer, write_i32, write_i64};

/// First frame a client sends on a new TCP connection.
///
/// Clients since 3.4 append a read-only flag byte after the jute fields;
/// older clients stop after `passwd`. The real 3.8 Java client sends the byte
/// and sends a 16-byte all-zero `passwd` when it has no session yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Client protocol version (0).
    pub protocol_version: i32,
    /// Highest zxid the client has seen (0 for a fresh session).
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout: i32,
    /// Session to resume, or 0 for a new session.
    pub session_id: i64,
    /// Password of the session to resume.
    pub passwd: Vec<u8>,
    /// Whether the client accepts a read-only server; `None` if the byte is absent.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: read_optional_bool(r)?,
        })
    }

    fn write(&self, buf: &mut BytesMut) {
        write_i32(buf, self.protocol_version);
        write_i64(buf, self.last_zxid_seen);
        write_i32(buf, self.timeout);
        write_i64(buf, self.session_id);
        write_buffer(buf, &self.passwd);
        if let Some(ro) = self.read_only {
            write_bool(buf, ro);
        }
    }
}

/// The server's answer to a `ConnectRequest` (sent without a `ReplyHeader`).
///
/// The real 3.8 server appends the read-only byte (0 for a normal server)
/// whenever the client's request carried one; a rejected session gets
/// `timeout` 0, `session_id` 0 and a 16-byte zero `passwd`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Server protocol version (0).
    pub protocol_version: i32,
    /// Negotiated session timeout in milliseconds.
    pub timeout: i32,
    /// The session id (new or resumed).
    pub session_id: i64,
    /// The session password the client must present to resume.
    pub passwd: Vec<u8>,
    /// Whether this server is read-only; `None` if the byte is absent.
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: read_optional_bool(r)?,
        })
    }

    fn write(&self, buf: &mut BytesMut) {
        write_i32(buf, self.protocol_version);
        write_i32(buf, self.timeout);
        write_i64(buf, self.session_id);
        write_buffer(buf, &self.passwd);
        if let Some(ro) = self.read_only {
            write_bool(buf, ro);
        }
    }
}

/// Reads a trailing boolean if any byte remains, else `None`.
fn read_optional_bool(r: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    if r.is_empty() {
        Ok(None)
    } else {
        r.read_bool().map(Some)
    }
}

record! {
    /// Prefix of every client request after the handshake.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct RequestHeader {
        /// Client-chosen id echoed in the reply (or a special `xid` value).
        pub xid: i32,
        /// The raw op code; map it with `OpCode::from_i32`.
        pub op: i32,
    }
}

record! {
    /// Prefix of every server reply and notification after the handshake.
    ///
    /// When `err` is nonzero the real server sends no body after the header;
    /// notifications carry `xid` -1 and `zxid` -1.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct ReplyHeader {
        /// The request's xid (or a special `xid` value).
        pub xid: i32,
        /// The last zxid the server had processed when replying.
        pub zxid: i64,
        /// An `ErrorCode` value; 0 on success.
        pub err: i32,
    }
}

record! {
    /// Body of a watch notification (reply with `xid::NOTIFICATION`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
    pub struct WatcherEvent {
        /// One of the `event_type` constants.
        pub event_type: i32,
        /// One of the `keeper_state` constants.
        pub state: i32,
        /// The path the event is about.
        pub path: String,
    }
}

/// `Watcher.Event.EventType` values for `WatcherEvent::event_type`.
pub mod event_type {
    /// A session state change, not about a node.
    pub const NONE: i32 = -1;
    /// A watched node was created.
    pub const NODE_CREATED: i32 = 1;
    /// A watched node was deleted.
    pub const NODE_DELETED: i32 = 2;
    /// A watched node's data changed.
    pub const NODE_DATA_CHANGED: i32 = 3;
    /// A watched node's child list changed.
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    /// A data watch was removed.
    pub const DATA_WATCH_REMOVED: i32 = 5;
    /// A child watch was removed.
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    /// A persistent watch was removed.
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// `Watcher.Event.KeeperState` values for `WatcherEvent::state`.
pub mod keeper_state {
    /// The client is disconnected.
    pub const DISCONNECTED: i32 = 0;
    /// The client is connected (the state of every server-sent notification).
    pub const SYNC_CONNECTED: i32 = 3;
    /// Authentication failed.
    pub const AUTH_FAILED: i32 = 4;
    /// Connected to a read-only server.
    pub const CONNECTED_READ_ONLY: i32 = 5;
    /// SASL authentication succeeded.
    pub const SASL_AUTHENTICATED: i32 = 6;
    /// The client closed the session.
    pub const CLOSED: i32 = 7;
    /// The session expired.
    pub const EXPIRED: i32 = -112;
}

/// Reserved xids with special meaning in request and reply headers.
///
/// The real 3.8 Java client overwrites the `SET_WATCHES` xid with an
/// ordinary sequential one when it sends, so a server must accept
/// SetWatches/SetWatches2 under any xid and echo the xid it received.
pub mod xid {
    /// Watch notifications from the server.
    pub const NOTIFICATION: i32 = -1;
    /// Pings and their replies.
    pub const PING: i32 = -2;
    /// Auth packets and their replies.
    pub const AUTH: i32 = -4;
    /// SetWatches sent by some clients on reconnect.
    pub const SET_WATCHES: i32 = -8;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::testing::{hostile_lengths, round_trip};

    fn connect_request(read_only: Option<bool>) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0x32,
            timeout: 6000,
            session_id: 0x0100_0007_c83e_000e,
            passwd: vec![7; 16],
            read_only,
        }
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        let old = connect_request(None);
        let old_bytes = round_trip(&old);
        assert_eq!(old_bytes.len(), 44);
        hostile_lengths::<ConnectRequest>(&old_bytes);

        for ro in [false, true] {
            let new = connect_request(Some(ro));
            let bytes = new.to_bytes();
            assert_eq!(bytes.len(), 45);
            assert_eq!(bytes[44], u8::from(ro));
            assert_eq!(ConnectRequest::from_bytes(&bytes).as_ref(), Ok(&new));
            // Dropping the flag byte yields the old-client form, anything
            // shorter is an error.
            assert_eq!(ConnectRequest::from_bytes(&bytes[..44]), Ok(old.clone()));
            for cut in 0..44 {
                assert!(ConnectRequest::from_bytes(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn connect_response_with_and_without_read_only() {
        let resp = ConnectResponse { protocol_version: 0, timeout: 30000, session_id: 42, passwd: vec![1, 2, 3], read_only: None };
        let bytes = round_trip(&resp);
        assert_eq!(bytes.len(), 23);
        hostile_lengths::<ConnectResponse>(&bytes);
        let ro = ConnectResponse { read_only: Some(false), ..resp.clone() };
        let ro_bytes = ro.to_bytes();
        assert_eq!(ro_bytes.len(), 24);
        assert_eq!(ConnectResponse::from_bytes(&ro_bytes), Ok(ro));
        assert_eq!(ConnectResponse::from_bytes(&ro_bytes[..23]), Ok(resp));
    }

    #[test]
    fn headers_and_events() {
        round_trip(&RequestHeader { xid: xid::PING, op: 11 });
        round_trip(&ReplyHeader { xid: 7, zxid: -1, err: -101 });
        let ev = WatcherEvent { event_type: event_type::NODE_DATA_CHANGED, state: keeper_state::SYNC_CONNECTED, path: "/d".into() };
        let bytes = round_trip(&ev);
        assert_eq!(bytes, b"\x00\x00\x00\x03\x00\x00\x00\x03\x00\x00\x00\x02/d");
        hostile_lengths::<WatcherEvent>(&bytes);
    }
}
