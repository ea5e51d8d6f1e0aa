//! The process's open-files limit (RLIMIT_NOFILE), shared between storage
//! and client connections.
//!
//! Every client connection holds a file descriptor, and so does every file
//! RocksDB has open. A login shell's soft limit is often 1,024 while its
//! hard limit allows hundreds of thousands; ZooKeeper's JVM raises the soft
//! limit to the hard one as it starts (HotSpot's `MaxFDLimit`), so a server
//! started by hand takes as many connections as its hard limit allows.
//! paddock does the same.
//!
//! Raising is not enough: connections could still take every descriptor,
//! and then RocksDB could not create the file a memtable flush writes. Its
//! writes would fail and the server would stop (a server whose disk refuses
//! a write exits). So a share of the limit is kept back for storage and the
//! ensemble, and a client connection beyond the rest is refused at once, as
//! one beyond `maxCnxns` is (`network::stats::Admitted`).

/// Table files each RocksDB database keeps open at most (its
/// `max_open_files`): without a cap it keeps every one open.
pub const TABLE_FILES_PER_DB: i32 = 128;

/// Descriptors kept back from client connections: for each of the two
/// databases its table files plus the files it writes (write-ahead logs,
/// flush and compaction output, the manifest, its info log), and for the
/// rest of the process (peer links and their listener, with at most
/// `raft::peer_server::MAX_HANDSHAKES` connections not yet known to be
/// members; the admin and metrics servers, with at most
/// `admin::http::MAX_CONNECTIONS` clients each; the audit log, the
/// runtime's epoll and eventfds, standard streams).
pub const RESERVED: u64 = 2 * (TABLE_FILES_PER_DB as u64 + 32) + 192;

/// The limit as it stands after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit before.
    pub was: u64,
    /// The soft limit now: the most descriptors the process may hold.
    pub now: u64,
}

impl Limit {
    /// How many client connections fit beside [`RESERVED`]; half the
    /// limit if it is below twice that, so a server under a small limit
    /// still serves (and warns, see `server`).
    pub fn client_connections(&self) -> usize {
        usize::try_from(self.now.saturating_sub(RESERVED).max(self.now / 2)).unwrap_or(usize::MAX)
    }
}

/// Raises the soft open-files limit to the hard one (as far as the kernel's
/// `fs.nr_open` allows) and returns it; the limit unchanged if it cannot.
pub fn raise() -> std::io::Result<Limit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let was = limit.rlim_cur;
    // The kernel refuses a soft limit above fs.nr_open, which an
    // unlimited hard limit would ask for.
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let wanted = match ceiling {
        Some(ceiling) => limit.rlim_max.min(ceiling),
        None => limit.rlim_max,
    };
    if wanted <= was {
        return Ok(Limit { was, now: was });
    }
    let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
    // SAFETY: setrlimit reads only the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Ok(Limit { was, now: was });
    }
    Ok(Limit { was, now: wanted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_what_the_reserve_leaves() {
        assert_eq!(Limit { was: 1024, now: 1024 }.client_connections(), 1024 - RESERVED as usize);
        assert_eq!(Limit { was: 1024, now: 1_048_576 }.client_connections(), 1_048_576 - RESERVED as usize);
        // A small limit is shared half and half.
        assert_eq!(Limit { was: 600, now: 600 }.client_connections(), 300);
        assert_eq!(Limit { was: 100, now: 100 }.client_connections(), 50);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let limit = raise().unwrap();
        assert!(limit.now >= limit.was);
        // A second raise finds it raised already.
        assert_eq!(raise().unwrap(), Limit { was: limit.now, now: limit.now });
    }
}
