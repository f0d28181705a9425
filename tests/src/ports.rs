//! Free TCP ports for the processes a test starts.
//!
//! Binding port 0 and handing the number on is racy: the listener is dropped before the child
//! binds, and in between the kernel may give the same port to anyone binding port 0, the
//! child's own other sockets included (a devnet's consensus listener took the REST port a test
//! had just picked this way). So ports come from below the kernel's ephemeral range, which it
//! never hands out by itself, each one probed by binding it; a counter keeps this process from
//! picking one twice and the process id spreads concurrent test processes apart.
//!
//! Std only: the node's own process tests include this file by path.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port of the kernel's ephemeral range (Linux; 32768 elsewhere or unreadable).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A port of `ip` that nothing listens on now and that the kernel does not hand to port-0
/// binds; panics (a test helper) when none is found.
pub fn free_port(ip: &str) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let high = u32::from(ephemeral_low());
    let low = 10_000u32.min(high / 2);
    let span = high.saturating_sub(low).max(1);
    let start = (std::process::id().wrapping_mul(97)) % span;
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let Ok(port) = u16::try_from(low + offset) else {
            continue;
        };
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    // The range is exhausted or unusable: fall back to a port the kernel picks.
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
}
