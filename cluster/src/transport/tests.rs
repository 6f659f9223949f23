use std::time::SystemTime;

use raft::prelude::MessageType;

use super::*;
use crate::pki::ClusterCa;

fn msg(from: u64, to: u64, term: u64) -> Message {
    Message {
        msg_type: MessageType::MsgHeartbeat,
        from,
        to,
        term,
        ..Default::default()
    }
}

async fn receiver(tls: &NodeTls) -> (SocketAddr, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel(16);
    let addr = listen("127.0.0.1:0".parse().unwrap(), tls, tx, None)
        .await
        .unwrap()
        .0;
    (addr, rx)
}

async fn nothing_arrives(rx: &mut mpsc::Receiver<Message>) -> bool {
    tokio::time::timeout(Duration::from_millis(700), rx.recv())
        .await
        .is_err()
}

#[tokio::test]
async fn members_talk_and_strangers_do_not() {
    let now = SystemTime::now();
    let ca = ClusterCa::generate("c1", now).unwrap();
    let n1 = NodeTls::issue(&ca, 1, now).unwrap();
    let n2 = NodeTls::issue(&ca, 2, now).unwrap();
    let (addr2, mut rx2) = receiver(&n2).await;

    // A member reaches another.
    let out1 = Outbound::new(&n1, [(2, addr2)].into()).unwrap();
    out1.send(msg(1, 2, 5));
    let got = tokio::time::timeout(Duration::from_secs(5), rx2.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.from, got.to, got.term), (1, 2, 5));

    // A certificate from another cluster's CA does not get through the handshake.
    let other = ClusterCa::generate("c2", now).unwrap();
    let stranger = NodeTls::issue(&other, 1, now).unwrap();
    let out = Outbound::new(&stranger, [(2, addr2)].into()).unwrap();
    out.send(msg(1, 2, 6));
    assert!(
        nothing_arrives(&mut rx2).await,
        "a foreign certificate was accepted"
    );

    // A member cannot speak in another member's name.
    let n3 = NodeTls::issue(&ca, 3, now).unwrap();
    let out3 = Outbound::new(&n3, [(2, addr2)].into()).unwrap();
    out3.send(msg(1, 2, 7));
    assert!(
        nothing_arrives(&mut rx2).await,
        "a forged sender id was accepted"
    );

    // No certificate at all, or garbage instead of TLS: nothing, and the listener lives on.
    let mut plain = TcpStream::connect(addr2).await.unwrap();
    let _ = plain.write_all(b"\x00\x00\x00\x05\x00hello").await;
    assert!(nothing_arrives(&mut rx2).await);
    out1.send(msg(1, 2, 8));
    let got = tokio::time::timeout(Duration::from_secs(5), rx2.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.term, 8);
}
