//! Real TCP on 127.0.0.1: echo servers as nodes, clients dialing through the mesh.

use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

/// How long a stalled link must stay silent.
const STALL: Duration = Duration::from_millis(300);
/// Generous bound for what should be prompt.
const PROMPT: Duration = Duration::from_secs(1);

/// An echo server; it lives as long as the test's runtime.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A mesh over `n` echo servers, and their addresses.
async fn mesh(n: usize) -> (ProxyMesh, Vec<SocketAddr>) {
    let mut targets = Vec::new();
    for _ in 0..n {
        targets.push(echo_server().await);
    }
    (ProxyMesh::start(&targets, 7).await.unwrap(), targets)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Sends `msg` on `s` and reads its echo.
async fn echo(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).await.unwrap();
    back
}

/// Whether a new connection through `addr` gets its echo promptly.
async fn answers(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    timeout(PROMPT, echo(&mut s, b"ping")).await.is_ok_and(|back| back == b"ping")
}

/// Whether a new connection through `addr` stays silent for [`STALL`] after a write; returns
/// the connection so the caller can see it resume.
async fn stalls(addr: SocketAddr) -> (bool, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let silent = timeout(STALL, s.read(&mut [0; 4])).await.is_err();
    (silent, s)
}

/// Round-trip time of one byte on a fresh connection through `addr`.
async fn rtt(addr: SocketAddr) -> Duration {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    assert_eq!(echo(&mut s, b"x").await, b"x");
    start.elapsed()
}

#[tokio::test]
async fn bytes_pass_unchanged_both_ways() {
    let (mesh, targets) = mesh(2).await;
    assert_eq!(mesh.nodes(), 2);
    assert_eq!(mesh.dial_map(0), vec![(targets[1], mesh.via(0, 1))]);
    assert_eq!(mesh.dial_map(1), vec![(targets[0], mesh.via(1, 0))]);
    let data = pattern(1 << 20);
    for (from, to) in [(0, 1), (1, 0)] {
        let (mut r, mut w) = TcpStream::connect(mesh.via(from, to)).await.unwrap().into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move { w.write_all(&sent).await.map(|()| w) });
        let mut back = vec![0; data.len()];
        timeout(PROMPT, r.read_exact(&mut back)).await.unwrap().unwrap();
        assert!(back == data, "echo through {from}->{to} differs");
        writer.await.unwrap().unwrap();
    }
    // Each node sent 1 MiB on its own connection and echoed 1 MiB on the other's.
    assert_eq!(mesh.forwarded(0, 1), 2 << 20);
    assert_eq!(mesh.forwarded(1, 0), 2 << 20);
}

#[tokio::test]
async fn cut_stalls_both_directions_and_heal_resumes_in_order() {
    let (mut mesh, _) = mesh(3).await;
    let mut open = TcpStream::connect(mesh.via(0, 1)).await.unwrap();
    assert_eq!(echo(&mut open, b"hello").await, b"hello");
    mesh.cut(0, 1);

    // The open connection: 256 KiB written during the cut, nothing comes back.
    let (mut r, mut w) = open.into_split();
    let data = pattern(256 << 10);
    let sent = data.clone();
    let writer = tokio::spawn(async move { w.write_all(&sent).await.map(|()| w) });
    let mut first = [0; 16];
    let (old_silent, (new_silent, mut reverse)) =
        tokio::join!(timeout(STALL, r.read(&mut first)), stalls(mesh.via(1, 0)));
    assert!(old_silent.is_err(), "open connection delivered during the cut");
    assert!(new_silent, "new connection 1->0 delivered during the cut");
    assert!(answers(mesh.via(0, 2)).await, "link 0-2 is not cut");

    mesh.heal();
    let mut back = vec![0; data.len()];
    timeout(PROMPT, r.read_exact(&mut back)).await.unwrap().unwrap();
    assert!(back == data, "held bytes resumed out of order or damaged");
    let mut ping = [0; 4];
    timeout(PROMPT, reverse.read_exact(&mut ping)).await.unwrap().unwrap();
    assert_eq!(&ping, b"ping");
    writer.await.unwrap().unwrap();
}

#[tokio::test]
async fn partition_cuts_only_between_groups() {
    let (mut mesh, _) = mesh(3).await;
    mesh.partition(&[vec![0], vec![1, 2]]);
    let ((a, _a), (b, _b), c, d) =
        tokio::join!(stalls(mesh.via(0, 1)), stalls(mesh.via(2, 0)), answers(mesh.via(1, 2)), answers(mesh.via(2, 1)));
    assert!(a && b, "0 is cut from 1 and 2");
    assert!(c && d, "1 and 2 still talk");
    mesh.heal();
    assert!(answers(mesh.via(0, 1)).await && answers(mesh.via(2, 0)).await);
}

#[tokio::test]
async fn shape_delays_links_of_the_node_and_keeps_order() {
    let (mut mesh, _) = mesh(3).await;
    mesh.shape(0, 100, 0.0);
    // Each direction waits 100 ms ± 25.
    for (from, to) in [(0, 1), (2, 0)] {
        let t = rtt(mesh.via(from, to)).await;
        assert!(t >= Duration::from_millis(150), "{from}->{to} took {t:?}");
    }
    let t = rtt(mesh.via(1, 2)).await;
    assert!(t < Duration::from_millis(50), "unshaped 1->2 took {t:?}");

    // Many small writes, each likely its own chunk with its own jitter, come back in order.
    let (mut r, mut w) = TcpStream::connect(mesh.via(0, 2)).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        for i in 0..100u32 {
            w.write_all(&i.to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w
    });
    let mut back = [0; 400];
    timeout(PROMPT, r.read_exact(&mut back)).await.unwrap().unwrap();
    let numbers: Vec<u32> = back.chunks(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    writer.await.unwrap();

    mesh.heal();
    let t = rtt(mesh.via(0, 1)).await;
    assert!(t < Duration::from_millis(50), "healed 0->1 took {t:?}");
}

#[tokio::test]
async fn loss_holds_chunks_for_a_retransmission_timeout() {
    let (mut mesh, _) = mesh(3).await;
    mesh.shape(1, 0, 100.0);
    mesh.shape(0, 100, 0.0);
    // Link 1-2: every chunk "lost" once, each way.
    let t = rtt(mesh.via(1, 2)).await;
    assert!(t >= Duration::from_millis(2 * RTO_MS), "1->2 took {t:?}");
    // Link 0-1 takes node 0's delay and node 1's loss.
    let t = rtt(mesh.via(0, 1)).await;
    assert!(t >= Duration::from_millis(2 * (75 + RTO_MS)), "0->1 took {t:?}");
}

#[tokio::test]
async fn added_node_joins_with_the_current_faults() {
    let (mut mesh, _) = mesh(2).await;
    mesh.shape(0, 100, 0.0);
    let target = echo_server().await;
    assert_eq!(mesh.add_node(target).await.unwrap(), 2);
    assert_eq!(mesh.dial_map(0)[1], (target, mesh.via(0, 2)));
    assert!(rtt(mesh.via(2, 1)).await < Duration::from_millis(50));
    assert!(rtt(mesh.via(2, 0)).await >= Duration::from_millis(150));
}

#[tokio::test]
async fn drop_closes_listeners_and_connections() {
    let (mesh, _) = mesh(2).await;
    let addr = mesh.via(0, 1);
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(echo(&mut open, b"x").await, b"x");
    drop(mesh);
    let read = timeout(PROMPT, open.read(&mut [0; 1])).await.expect("open connection closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    if let Ok(mut late) = TcpStream::connect(addr).await {
        let read = timeout(PROMPT, late.read(&mut [0; 1])).await.expect("late connection closed promptly");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
}

#[tokio::test]
async fn a_half_close_is_forwarded_and_the_answer_still_flows_back() {
    let (mesh, _) = mesh(2).await;
    let mut s = TcpStream::connect(mesh.via(0, 1)).await.unwrap();
    let msg = pattern(256 * 1024);
    s.write_all(&msg).await.unwrap();
    // The echo server sees end of input only once the shutdown is forwarded, and only then
    // closes; everything it echoed must still arrive.
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    timeout(PROMPT * 5, s.read_to_end(&mut back)).await.expect("the echo ends").unwrap();
    assert_eq!(back.len(), msg.len());
    assert!(back == msg, "echoed in order");
}
