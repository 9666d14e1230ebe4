//! TCP_NODELAY for PostgreSQL connections.
//!
//! sqlx 0.9.0 stopped disabling Nagle's algorithm on its sockets
//! (transact-rs/sqlx#4335; fixed upstream, not yet released). A message that
//! spans segments then waits for the server's delayed ACK: about 40 ms per
//! round trip, which caps group commit at a few hundred deliveries per second.
//! sqlx offers no hook to the socket, so right after each new connection we
//! set the option on this process's TCP sockets whose peer is the database.
//! Remove once a released sqlx sets it again.

/// Set TCP_NODELAY on every TCP socket of this process connected to `port`.
#[cfg(target_os = "linux")]
pub fn apply(port: u16) {
    use std::os::fd::BorrowedFd;
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was open a moment ago. Should another thread
        // close it meanwhile, the calls below fail with EBADF, or at worst
        // set TCP_NODELAY on whatever socket reused the number: harmless.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let to_database = socket
            .peer_addr()
            .ok()
            .and_then(|peer| peer.as_socket())
            .is_some_and(|peer| peer.port() == port);
        if to_database {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn apply(_port: u16) {}
