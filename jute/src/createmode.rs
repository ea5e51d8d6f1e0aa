//! Node creation modes, as carried in `CreateRequest.flags`.

/// How a node is created (`org.apache.zookeeper.CreateMode`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    /// A regular node that outlives its creator's session.
    Persistent = 0,
    /// A node deleted when its creator's session ends.
    Ephemeral = 1,
    /// A persistent node with a monotonically increasing 10-digit suffix.
    PersistentSequential = 2,
    /// An ephemeral node with a sequence suffix.
    EphemeralSequential = 3,
    /// A node the server deletes once its last child is gone.
    Container = 4,
    /// A persistent node deleted after its TTL if it has no children.
    PersistentWithTtl = 5,
    /// A sequential persistent node with a TTL.
    PersistentSequentialWithTtl = 6,
}

impl CreateMode {
    /// Maps the wire `flags` value to a mode, or `None` if unknown.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// The wire `flags` value of this mode.
    pub fn flags(self) -> i32 {
        self as i32
    }

    /// True for modes whose node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    /// True for modes that append a sequence number to the path.
    pub fn is_sequential(self) -> bool {
        matches!(self, CreateMode::PersistentSequential | CreateMode::EphemeralSequential | CreateMode::PersistentSequentialWithTtl)
    }

    /// True for container nodes.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// True for modes that carry a time-to-live.
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_and_predicates() {
        for flags in 0..7 {
            let mode = CreateMode::from_flags(flags).expect("known flag");
            assert_eq!(mode.flags(), flags);
        }
        assert_eq!(CreateMode::from_flags(7), None);
        assert_eq!(CreateMode::from_flags(-1), None);
        assert!(CreateMode::EphemeralSequential.is_ephemeral());
        assert!(CreateMode::EphemeralSequential.is_sequential());
        assert!(!CreateMode::Container.is_ephemeral());
        assert!(CreateMode::Container.is_container());
        assert!(CreateMode::PersistentSequentialWithTtl.is_ttl());
        assert!(CreateMode::PersistentSequentialWithTtl.is_sequential());
        assert!(!CreateMode::PersistentWithTtl.is_sequential());
        assert!(!CreateMode::Persistent.is_ttl());
    }
}
