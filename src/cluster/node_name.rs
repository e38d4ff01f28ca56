//! The default node name: the host name, or the container's name when the
//! node runs in a Docker container under the random host name Docker gives.
//!
//! Docker names a container's host after its id (`3f4e9a1c0b2d`), new on
//! every recreate: unreadable in `X-Served-By` and in metric labels, and
//! every recreate looks like a new node. The container's name is what
//! people see in `docker ps`, and compose makes it readable, unique and
//! stable: `<project>_worker_2` (v1) or `<project>-worker-2` (v2), the same
//! number after a recreate. A compose file cannot give each `--scale`
//! replica its own `NAME`, so the node finds its container name itself:
//! Docker's DNS server (127.0.0.11, on every user-defined network) answers
//! a reverse lookup of a container's address with `<name>.<network>`. The
//! query goes straight to that server, not through the system resolver,
//! which would read the id from the `/etc/hosts` Docker writes.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};

/// Docker's embedded DNS server, inside every container on a user-defined
/// network.
const DOCKER_DNS: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11)), 53);

/// The server is local to the container; an answer takes microseconds.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The node's name when `NAME` is not set: the container's name if this is
/// a Docker container that Docker's DNS knows by `advertise_ip`, otherwise
/// the host name. `None` when there is no host name either.
pub fn default_name(advertise_ip: IpAddr) -> Option<String> {
    let host = gethostname::gethostname().into_string().ok()?;
    if is_container_id(&host) {
        if let Some(name) = container_name(advertise_ip) {
            return Some(name);
        }
    }
    Some(host).filter(|h| !h.is_empty())
}

/// Docker's default host name: the first 12 hex digits of the container id.
fn is_container_id(host: &str) -> bool {
    host.len() == 12
        && host
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Asks Docker's DNS for the name of `ip`; `None` outside Docker (nothing
/// answers on 127.0.0.11) or when it does not know the address.
fn container_name(ip: IpAddr) -> Option<String> {
    let id: u16 = rand::random();
    let mut query = Message::new();
    query
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from(ip), RecordType::PTR));
    let request = query.to_vec().ok()?;
    let socket = UdpSocket::bind((IpAddr::from([127, 0, 0, 1]), 0)).ok()?;
    socket.set_read_timeout(Some(LOOKUP_TIMEOUT)).ok()?;
    socket.connect(DOCKER_DNS).ok()?;
    socket.send(&request).ok()?;
    let mut buf = [0u8; 1024];
    let len = socket.recv(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..len]).ok()?;
    if reply.id() != id {
        return None;
    }
    reply
        .answers()
        .iter()
        .find_map(|record| match record.data() {
            RData::PTR(ptr) => name_from_ptr(&ptr.0.to_utf8()),
            _ => None,
        })
}

/// `imgproxy_worker_2.imgproxy_cluster.` -> `imgproxy_worker_2`: Docker
/// answers `<container>.<network>`, and compose's container names have no
/// dots.
fn name_from_ptr(ptr: &str) -> Option<String> {
    let first = ptr.split('.').next()?;
    Some(first.to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_docker_default_host_names() {
        assert!(is_container_id("3f4e9a1c0b2d"));
        assert!(!is_container_id("worker-2"));
        assert!(!is_container_id("3f4e9a1c0b2"));
        assert!(!is_container_id("3F4E9A1C0B2D"));
        assert!(!is_container_id("3f4e9a1c0b2g"));
    }

    #[test]
    fn container_name_is_the_first_label_of_the_answer() {
        assert_eq!(
            name_from_ptr("imgproxy_worker_2.imgproxy_cluster.").as_deref(),
            Some("imgproxy_worker_2")
        );
        assert_eq!(
            name_from_ptr("proj-gateway-1.proj_edge").as_deref(),
            Some("proj-gateway-1")
        );
        assert_eq!(name_from_ptr(".").as_deref(), None);
    }

    #[test]
    fn outside_docker_the_host_name_stays() {
        // This test machine's host name is not a container id, or if it is,
        // no Docker DNS answers for the unspecified address.
        let host = gethostname::gethostname().into_string().unwrap();
        assert_eq!(default_name(IpAddr::from([0, 0, 0, 0])), Some(host));
    }
}
