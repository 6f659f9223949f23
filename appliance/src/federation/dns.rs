//! Asks a validating resolver for a partner domain's OPENPGPKEY and SMIMEA records (for
//! `domainkey@DOMAIN`) and its `_mailenc` TXT policy, with the DNSSEC OK bit, and trusts an
//! answer only when the resolver set AD (authenticated data) — the way Postfix's DANE
//! trusts its local resolver. Over UDP, then TCP when the answer is truncated.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Largest answer read over TCP.
const MAX_TCP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{0:?} is not a domain name")]
    Name(String),
    #[error("DNS message: {0}")]
    Proto(String),
    #[error("the resolver {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("the resolver answered {0} (a DNSSEC failure gives SERVFAIL: the answer is bogus)")]
    Rcode(ResponseCode),
    #[error("the answer does not answer the question")]
    Mismatch,
}

/// What the resolver said for one name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The resolver validated it (AD set).
    pub authentic: bool,
    /// The record data: OPENPGPKEY public keys, TXT strings joined per record, or SMIMEA
    /// record data.
    pub records: Vec<Vec<u8>>,
}

/// Asks `resolver` for `name`/`rtype` (OPENPGPKEY, TXT or SMIMEA); NXDOMAIN and NODATA are an empty
/// answer, SERVFAIL (which is what a validating resolver says for a bogus answer) an error.
pub async fn query(
    resolver: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Result<Answer, DnsError> {
    let reply = ask(resolver, name, rtype).await?;
    let records = reply
        .answers()
        .iter()
        .filter(|r| r.record_type() == rtype)
        .filter_map(|r| match r.data() {
            RData::OPENPGPKEY(k) => Some(k.public_key().to_vec()),
            RData::TXT(t) => Some(
                t.txt_data()
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            // SMIMEA: hickory has no type for it; the record data as it came.
            RData::Unknown { rdata, .. } => Some(rdata.anything().to_vec()),
            _ => None,
        })
        .collect();
    Ok(Answer {
        authentic: reply.authentic_data(),
        records,
    })
}

/// The IPv4 and IPv6 addresses of `host` (for the WKD fetch: federation asks the one
/// resolver it is configured with for everything; WebPKI, not DNSSEC, vouches for them).
pub async fn addresses(resolver: SocketAddr, host: &str) -> Result<Vec<IpAddr>, DnsError> {
    let name = format!("{}.", host.trim_end_matches('.'));
    let (v4, v6) = tokio::join!(
        ask(resolver, &name, RecordType::A),
        ask(resolver, &name, RecordType::AAAA)
    );
    let mut out = Vec::new();
    for reply in [v4?, v6.unwrap_or_default()] {
        out.extend(reply.answers().iter().filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        }));
    }
    Ok(out)
}

/// Sends one question and checks the reply answers it; NXDOMAIN and NODATA are a reply
/// without answers, any other failure code an error.
async fn ask(resolver: SocketAddr, name: &str, rtype: RecordType) -> Result<Message, DnsError> {
    let qname = Name::from_ascii(name).map_err(|_| DnsError::Name(name.to_owned()))?;
    let id: u16 = rand_id();
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(qname.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    m.set_edns(edns);
    let wire = m.to_vec().map_err(|e| DnsError::Proto(e.to_string()))?;
    let mut reply = udp(resolver, &wire).await?;
    if reply.truncated() {
        reply = tcp(resolver, &wire).await?;
    }
    if reply.id() != id
        || reply
            .queries()
            .first()
            .is_none_or(|q| q.name() != &qname || q.query_type() != rtype)
    {
        return Err(DnsError::Mismatch);
    }
    match reply.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(reply),
        other => Err(DnsError::Rcode(other)),
    }
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    // A failing generator leaves 0: the answer is still matched by name and type.
    let _ = openssl::rand::rand_bytes(&mut b);
    u16::from_be_bytes(b)
}

async fn udp(resolver: SocketAddr, wire: &[u8]) -> Result<Message, DnsError> {
    let io = |e| DnsError::Io(resolver, e);
    let local: SocketAddr = if resolver.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local).await.map_err(io)?;
    sock.connect(resolver).await.map_err(io)?;
    sock.send(wire).await.map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).await.map_err(io)?;
    Message::from_vec(&buf[..n]).map_err(|e| DnsError::Proto(e.to_string()))
}

async fn tcp(resolver: SocketAddr, wire: &[u8]) -> Result<Message, DnsError> {
    let io = |e| DnsError::Io(resolver, e);
    let mut s = tokio::net::TcpStream::connect(resolver).await.map_err(io)?;
    let len = u16::try_from(wire.len()).map_err(|_| DnsError::Proto("query too long".into()))?;
    s.write_all(&len.to_be_bytes()).await.map_err(io)?;
    s.write_all(wire).await.map_err(io)?;
    let n = s.read_u16().await.map_err(io)? as usize;
    if n > MAX_TCP {
        return Err(DnsError::Proto("answer too long".into()));
    }
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.map_err(io)?;
    Message::from_vec(&buf).map_err(|e| DnsError::Proto(e.to_string()))
}

/// The first `nameserver` of resolv.conf's text.
pub fn resolv_conf_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver"))
            .then(|| w.next())
            .flatten()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// How long a query may take at most when the caller gives no shorter bound.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        assert_eq!(
            resolv_conf_nameserver("# x\nsearch a\nnameserver 198.18.0.53\nnameserver 1.1.1.1\n"),
            Some("198.18.0.53:53".parse().expect("addr"))
        );
        assert_eq!(resolv_conf_nameserver("search a\n"), None);
    }
}
