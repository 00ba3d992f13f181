//! Who listens on a port, read from Linux's `/proc`.
//!
//! A test fixture picks a free port, lets it go, and starts a server on it. In between,
//! anything else (another test's server, an ephemeral port some runtime binds) can take it:
//! then the fixture's server fails to bind, and a readiness probe that only asks "does
//! something answer here?" is answered by the wrong server, and the test talks to it.
//! [`listened_by`] lets the probe ask "does *my* process answer here?".

use std::path::Path;

/// Whether a process for which `ours(pid)` holds listens on TCP `port` (any local address).
/// `None` where `/proc` cannot tell (not Linux): the caller then trusts its probe alone.
pub fn listened_by(port: u16, ours: impl Fn(u32) -> bool) -> Option<bool> {
    listeners(port).map(|pids| pids.into_iter().any(ours))
}

/// The processes that listen on TCP `port` (any local address); `None` where `/proc` cannot
/// tell (not Linux).
pub fn listeners(port: u16) -> Option<Vec<u32>> {
    let mut inodes = Vec::new();
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        readable = true;
        inodes.extend(listening_inodes(&text, port));
    }
    if !readable {
        return None;
    }
    let mut pids = Vec::new();
    if inodes.is_empty() {
        return Some(pids);
    }
    let sockets: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| sockets.iter().any(|s| Path::new(s) == link)));
        if holds {
            pids.push(pid);
        }
    }
    Some(pids)
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
pub fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses): state, ppid, pgrp.
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

/// The inodes of the sockets in LISTEN state on `port` in one `/proc/net/tcp{,6}` table.
fn listening_inodes(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
    let port = format!("{port:04X}");
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl, local_address (hex address:hex port), rem_address, st (0A is LISTEN), ..., inode.
        let local_port = fields.get(1)?.rsplit_once(':')?.1;
        (local_port == port && *fields.get(3)? == "0A").then(|| fields.get(9)?.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_listener_of_this_process_is_found_and_only_for_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if listened_by(port, |_| true).is_none() {
            return; // no /proc here
        }
        assert_eq!(listened_by(port, |pid| pid == std::process::id()), Some(true));
        assert_eq!(listened_by(port, |pid| pid != std::process::id()), Some(false));
        drop(listener);
        assert_eq!(listened_by(port, |_| true), Some(false), "nobody listens once it is closed");
    }

    #[test]
    fn the_listeners_of_a_port_are_the_processes_holding_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Some(pids) = listeners(port) else { return }; // no /proc here
        assert_eq!(pids, vec![std::process::id()]);
        drop(listener);
        assert_eq!(listeners(port), Some(vec![]));
    }

    #[test]
    fn the_table_is_read_by_port_and_state() {
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n\
           1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n\
           2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0\n";
        assert_eq!(listening_inodes(table, 8080).collect::<Vec<_>>(), vec![4242]);
        assert_eq!(listening_inodes(table, 8082).count(), 0);
    }

    #[test]
    fn this_process_has_a_group() {
        if Path::new("/proc/self/stat").exists() {
            assert!(process_group(std::process::id()).is_some());
        }
    }
}
