//! The host name an address resolves back to, as Java's
//! `InetAddress.getHostName` finds it for ZooKeeper's quorum hostname
//! check: a reverse lookup whose answer must resolve forward to the same
//! address (else the name could be anyone's claim).

use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Longest host name `getnameinfo` writes (NI_MAXHOST).
const MAX_HOST: usize = 1025;

/// The confirmed name of `ip`, if it has one. Blocks on the system
/// resolver: call it off the async threads.
pub fn confirmed_name(ip: IpAddr) -> Option<String> {
    let name = reverse(ip)?;
    let forward = (name.as_str(), 0).to_socket_addrs().ok()?;
    forward.map(|a: SocketAddr| a.ip()).any(|a| a == ip).then_some(name)
}

/// `getnameinfo(NI_NAMEREQD)`: the name the resolver gives `ip`.
fn reverse(ip: IpAddr) -> Option<String> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(v4) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than, and aligned for, every sockaddr.
            unsafe { std::ptr::write((&mut addr as *mut libc::sockaddr_storage).cast(), sa) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut addr as *mut libc::sockaddr_storage).cast(), sa) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let mut host = [0 as libc::c_char; MAX_HOST];
    // SAFETY: `addr` holds an initialised sockaddr of `len` bytes; `host` is
    // writable for its whole length, which is passed; no service is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (&addr as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            MAX_HOST as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().filter(|n| !n.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_name() {
        // /etc/hosts names 127.0.0.1 (localhost) on every Debian machine.
        let name = confirmed_name("127.0.0.1".parse().unwrap()).expect("a name for 127.0.0.1");
        assert!(name.starts_with("localhost"), "{name}");
        // ::1 goes through the IPv6 form; /etc/hosts may or may not name it.
        if let Some(name) = confirmed_name("::1".parse().unwrap()) {
            assert!(name.contains("localhost"), "{name}");
        }
    }
}
