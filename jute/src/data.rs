//! The shared data records: `Stat`, `Id`, `Acl`, and the permission bits.

use crate::record::{record, record_fields};

record! {
    /// A node's metadata, as returned by exists/getData/setData and friends.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Stat {
        /// zxid of the transaction that created the node.
        pub czxid: i64,
        /// zxid of the transaction that last modified the node's data.
        pub mzxid: i64,
        /// Creation time, milliseconds since the epoch.
        pub ctime: i64,
        /// Last data modification time, milliseconds since the epoch.
        pub mtime: i64,
        /// Number of data changes.
        pub version: i32,
        /// Number of child-list changes.
        pub cversion: i32,
        /// Number of ACL changes.
        pub aversion: i32,
        /// Owning session id if ephemeral, else 0.
        pub ephemeral_owner: i64,
        /// Length of the node's data in bytes.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the transaction that last changed the child list.
        pub pzxid: i64,
    }
}

record! {
    /// An identity: an auth scheme and an id within it (e.g. `world`/`anyone`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
    pub struct Id {
        /// The auth scheme: `world`, `auth`, `digest`, `ip`, `sasl`, ...
        pub scheme: String,
        /// The scheme-specific identity.
        pub id: String,
    }
}

record! {
    /// One access-control entry: a permission bit set granted to an identity.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
    pub struct Acl {
        /// Bitwise OR of the `perms` constants.
        pub perms: i32,
        /// Who the permissions are granted to.
        pub id: Id,
    }
}

record_fields!(Stat, Id, Acl);

/// Permission bits of an `Acl` (`ZooDefs.Perms`).
pub mod perms {
    /// May read data and list children.
    pub const READ: i32 = 1;
    /// May set data.
    pub const WRITE: i32 = 2;
    /// May create children.
    pub const CREATE: i32 = 4;
    /// May delete children.
    pub const DELETE: i32 = 8;
    /// May set the ACL.
    pub const ADMIN: i32 = 16;
    /// All of the above.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

impl Id {
    /// Builds an id from its scheme and identity.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id { scheme: scheme.into(), id: id.into() }
    }

    /// The `world:anyone` identity that matches every client.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }

    /// The `auth:` identity, standing for the creator's authenticated ids.
    pub fn auth() -> Id {
        Id::new("auth", "")
    }
}

impl Acl {
    /// Builds an entry granting `perms` to `id`.
    pub fn new(perms: i32, id: Id) -> Acl {
        Acl { perms, id }
    }

    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: everything for `world:anyone`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, Id::anyone())]
    }

    /// `ZooDefs.Ids.READ_ACL_UNSAFE`: read-only for `world:anyone`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::READ, Id::anyone())]
    }

    /// `ZooDefs.Ids.CREATOR_ALL_ACL`: everything for the creator's auth ids.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, Id::auth())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::testing::{hostile_lengths, round_trip};
    use crate::record::Record;

    fn sample_stat() -> Stat {
        Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_001,
            version: 3,
            cversion: -1,
            aversion: 5,
            ephemeral_owner: 0x0100_0007_c83e_0000,
            data_length: 7,
            num_children: 8,
            pzxid: 9,
        }
    }

    #[test]
    fn stat_is_68_bytes() {
        let bytes = round_trip(&sample_stat());
        assert_eq!(bytes.len(), 68);
        assert_eq!(round_trip(&Stat::default()).len(), 68);
    }

    #[test]
    fn acl_round_trip() {
        for acl in Acl::open_unsafe()
            .into_iter()
            .chain(Acl::read_unsafe())
            .chain(Acl::creator_all())
            .chain([Acl::new(perms::READ | perms::ADMIN, Id::new("digest", "alice:h4sh="))])
        {
            let bytes = round_trip(&acl);
            hostile_lengths::<Acl>(&bytes);
        }
        let bytes = Acl::open_unsafe()[0].to_bytes();
        assert_eq!(&bytes[..], b"\x00\x00\x00\x1f\x00\x00\x00\x05world\x00\x00\x00\x06anyone");
        assert_eq!(perms::ALL, 31);
        assert_eq!(Acl::creator_all()[0].id, Id { scheme: "auth".into(), id: String::new() });
    }
}
