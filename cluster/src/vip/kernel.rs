//! The kernel side of a virtual IP: the address on an interface with a lifetime (rtnetlink;
//! the kernel removes it by itself when the lifetime ends unrenewed, so a hung daemon loses
//! it), and the gratuitous ARP request (sender IP = target IP) that moves neighbours'
//! caches to this node (a raw AF_PACKET socket). Needs CAP_NET_ADMIN and CAP_NET_RAW.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt as _;
use netlink_packet_route::address::{AddressAttribute, CacheInfo};
use netlink_packet_route::link::LinkAttribute;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, sendto, socket};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{0:?} is not an IPv4 address/prefix (e.g. 198.18.0.100/24)")]
    BadAddress(String),
    #[error("no interface {0}")]
    NoInterface(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("gratuitous ARP on {interface}: {reason}")]
    Arp { interface: String, reason: String },
}

/// `198.18.0.100/24` → address and prefix.
pub fn parse(vip: &str) -> Result<(Ipv4Addr, u8), KernelError> {
    let bad = || KernelError::BadAddress(vip.to_owned());
    let (ip, prefix) = vip.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix == 0 || prefix > 32 {
        return Err(bad());
    }
    Ok((ip, prefix))
}

/// A netlink connection for managing addresses.
#[derive(Debug, Clone)]
pub struct Kernel {
    handle: rtnetlink::Handle,
}

fn nl(e: impl std::fmt::Display) -> KernelError {
    KernelError::Netlink(e.to_string())
}

impl Kernel {
    /// Opens the connection (its task runs on the current tokio runtime).
    pub fn new() -> Result<Kernel, KernelError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(nl)?;
        tokio::spawn(connection);
        Ok(Kernel { handle })
    }

    async fn link(
        &self,
        interface: &str,
    ) -> Result<netlink_packet_route::link::LinkMessage, KernelError> {
        self.handle
            .link()
            .get()
            .match_name(interface.to_owned())
            .execute()
            .try_next()
            .await
            .map_err(|_| KernelError::NoInterface(interface.to_owned()))?
            .ok_or_else(|| KernelError::NoInterface(interface.to_owned()))
    }

    async fn index(&self, interface: &str) -> Result<u32, KernelError> {
        Ok(self.link(interface).await?.header.index)
    }

    /// Adds `vip` to `interface`, or renews it, valid for `secs` more seconds.
    pub async fn hold(&self, vip: &str, interface: &str, secs: u32) -> Result<(), KernelError> {
        let (ip, prefix) = parse(vip)?;
        let index = self.index(interface).await?;
        let mut req = self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .replace();
        let mut lifetime = CacheInfo::default();
        lifetime.ifa_valid = secs;
        lifetime.ifa_preferred = secs;
        req.message_mut()
            .attributes
            .push(AddressAttribute::CacheInfo(lifetime));
        req.execute().await.map_err(nl)
    }

    /// Removes `vip` from `interface` if it is there.
    pub async fn release(&self, vip: &str, interface: &str) -> Result<(), KernelError> {
        let (ip, _) = parse(vip)?;
        let index = self.index(interface).await?;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(IpAddr::V4(ip))
            .execute();
        while let Some(a) = addrs.try_next().await.map_err(nl)? {
            self.handle.address().del(a).execute().await.map_err(nl)?;
        }
        Ok(())
    }

    /// The MAC address of `interface`.
    pub async fn mac(&self, interface: &str) -> Result<[u8; 6], KernelError> {
        self.link(interface)
            .await?
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| KernelError::NoInterface(interface.to_owned()))
    }
}

/// A gratuitous ARP request for `ip` from `mac`: broadcast, sender IP = target IP (the form
/// neighbours accept even right after their last update; TESTBED.md).
pub fn garp_frame(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]); // destination: broadcast
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]); // Ethernet, IPv4
    f.extend_from_slice(&[0x00, 0x01]); // request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip.octets());
    f
}

/// Sends a gratuitous ARP request for `ip` out of `interface` (whose MAC is `mac`).
pub fn announce(interface: &str, mac: [u8; 6], ip: Ipv4Addr) -> Result<(), KernelError> {
    let err = |reason: String| KernelError::Arp {
        interface: interface.to_owned(),
        reason,
    };
    // The interface's link-layer address as the kernel reports it names the interface to
    // send on (sll_ifindex); the frame carries its own Ethernet header.
    let link = nix::ifaddrs::getifaddrs()
        .map_err(|e| err(e.to_string()))?
        .filter(|i| i.interface_name == interface)
        .find_map(|i| i.address.and_then(|a| a.as_link_addr().copied()))
        .ok_or_else(|| err("no link-layer address".into()))?;
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err(format!("packet socket: {e} (needs CAP_NET_RAW)")))?;
    let frame = garp_frame(mac, ip);
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &frame,
        &link,
        MsgFlags::empty(),
    )
    .map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_frames_are_arp_requests() {
        assert_eq!(
            parse("198.18.0.100/24").unwrap(),
            (Ipv4Addr::new(198, 18, 0, 100), 24)
        );
        for bad in ["198.18.0.100", "x/24", "198.18.0.100/33", "198.18.0.100/0"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "a request, not a reply");
        assert_eq!(&f[28..32], &f[38..42], "sender IP = target IP");
    }
}
