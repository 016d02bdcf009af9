//! Address defaults as libprocess and the JVM pick them when no flag says otherwise.

use std::net::{Ipv4Addr, ToSocketAddrs};

/// The host name (`gethostname`), e.g. the pod's name inside a pod's UTS namespace.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

/// libprocess' choice of IP without `--ip`: `LIBPROCESS_IP`, else what the host name
/// resolves to (`/etc/hosts` first), else loopback.
pub fn default_ip() -> Ipv4Addr {
    if let Some(ip) = std::env::var("LIBPROCESS_IP")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return ip;
    }
    hostname()
        .and_then(|h| (h.as_str(), 0).to_socket_addrs().ok())
        .and_then(|mut addrs| {
            addrs.find_map(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}
