//! Peers measured in the same run: quinn, behind the `peers` feature (so a
//! normal build never compiles it; `cargo xtask bench --peers` turns it on).
//!
//! quinn runs as the bulk suite's other transports do: two processes, a
//! current-thread tokio runtime each, one unidirectional stream carrying the
//! bytes in 1 MiB writes, the receiver closing the connection once it counted
//! them all. TLS 1.3 is quinn's only mode; the receiver makes a self-signed
//! certificate (rcgen) and hands it to the sender as hex on the command line.
//! Both sides get the socket buffers Ferry's drivers ask for, datagrams of
//! Ferry's MTU (path MTU discovery off) and flow-control windows as large as
//! Ferry's defaults, so loopback measures the stacks, not their defaults; a
//! second row runs quinn's default transport configuration as shipped (path
//! MTU discovery up to 1452 bytes, its own windows).
//!
//! For the sessions suite's connect rate ([`crate::connects`]), quinn opens
//! connections the way Ferry opens sessions there: a server endpoint
//! accepting every connection (each awaited in a task of its own), a client
//! endpoint connecting with many handshakes in flight and closing each
//! connection once established; both with quinn's default transport
//! configuration, the server's certificate self-signed (rcgen: ECDSA P-256).

use std::net::SocketAddr;

/// The quinn release the peer rows name.
pub(crate) const QUINN_VERSION: &str = "0.11";

/// One side of a quinn transfer.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
pub(crate) struct QuinnRole {
    /// The sending side (else the receiving one).
    pub(crate) send: bool,
    /// Receiver: where to bind. Sender: where to connect.
    pub(crate) addr: SocketAddr,
    pub(crate) bytes: u64,
    pub(crate) mtu: usize,
    /// Sender: the receiver's certificate, hex DER.
    pub(crate) cert: String,
    /// quinn's default transport configuration rather than Ferry's sizes.
    pub(crate) defaults: bool,
}

/// Without the `peers` feature there is no quinn.
#[cfg(not(feature = "peers"))]
pub(crate) fn quinn_role(_role: QuinnRole) -> Result<(), String> {
    Err("built without the `peers` feature: run `cargo xtask bench --peers`".into())
}

/// Without the `peers` feature there is no quinn.
#[cfg(not(feature = "peers"))]
pub(crate) async fn quinn_accept(_addr: SocketAddr, _count: usize) -> Result<(), String> {
    Err("built without the `peers` feature: run `cargo xtask bench --peers`".into())
}

/// Without the `peers` feature there is no quinn.
#[cfg(not(feature = "peers"))]
pub(crate) async fn quinn_open(
    _addr: SocketAddr,
    _cert: &str,
    _count: usize,
    _in_flight: usize,
) -> Result<(), String> {
    Err("built without the `peers` feature: run `cargo xtask bench --peers`".into())
}

#[cfg(feature = "peers")]
pub(crate) use with_quinn::{quinn_accept, quinn_open, quinn_role};

#[cfg(feature = "peers")]
mod with_quinn {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;
    use quinn::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    use quinn::{ClientConfig, Endpoint, EndpointConfig, ServerConfig, TransportConfig, VarInt};

    use super::QuinnRole;
    use crate::bulk::{CHUNK, chunks, report_received, report_sent, udp_socket};
    use crate::child::tell;
    use crate::connects::{open_all, report_accepted, report_opened};
    use crate::cpu::process_cpu;

    fn transport(role: &QuinnRole) -> Result<Arc<TransportConfig>, String> {
        if role.defaults {
            return Ok(Arc::new(TransportConfig::default()));
        }
        let mtu = role.mtu;
        let mtu = u16::try_from(mtu).map_err(|_| format!("mtu {mtu} too large for quinn"))?;
        let mut t = TransportConfig::default();
        t.initial_mtu(mtu)
            .min_mtu(mtu)
            .mtu_discovery_config(None)
            .stream_receive_window(VarInt::from_u32(24 << 20))
            .receive_window(VarInt::from_u32(32 << 20))
            .send_window(16 << 20);
        Ok(Arc::new(t))
    }

    fn endpoint(addr: SocketAddr, server: Option<ServerConfig>) -> Result<Endpoint, String> {
        let socket = udp_socket(addr)?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        Endpoint::new(
            EndpointConfig::default(),
            server,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| format!("quinn endpoint: {e}"))
    }

    use std::net::SocketAddr;

    /// One side of a quinn transfer, in a child process (see `bulk::role`).
    pub(crate) fn quinn_role(role: QuinnRole) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            if role.send {
                send(&role).await
            } else {
                receive(&role).await
            }
        })
    }

    /// A server configuration with a fresh self-signed certificate for
    /// `localhost`, and the certificate (DER).
    fn server_config() -> Result<(ServerConfig, CertificateDer<'static>), String> {
        let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).map_err(|x| e(&x))?;
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let config =
            ServerConfig::with_single_cert(vec![cert.clone()], key.into()).map_err(|x| e(&x))?;
        Ok((config, cert))
    }

    /// A client configuration trusting only `cert` (hex DER).
    fn client_config(cert: &str) -> Result<ClientConfig, String> {
        let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
        let mut roots = quinn::rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(unhex(cert)?))
            .map_err(|x| e(&x))?;
        ClientConfig::with_root_certificates(Arc::new(roots)).map_err(|x| e(&x))
    }

    async fn receive(role: &QuinnRole) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
        let (mut config, cert) = server_config()?;
        config.transport_config(transport(role)?);
        let endpoint = endpoint(role.addr, Some(config))?;
        tell(format_args!(
            "READY {} {}",
            endpoint.local_addr().map_err(|x| e(&x))?,
            hex(&cert)
        ));
        let conn = endpoint
            .accept()
            .await
            .ok_or("quinn: endpoint closed")?
            .await
            .map_err(|x| e(&x))?;
        let start = Instant::now();
        let mut stream = conn.accept_uni().await.map_err(|x| e(&x))?;
        let mut got = 0u64;
        while let Some(chunk) = stream
            .read_chunk(usize::MAX, true)
            .await
            .map_err(|x| e(&x))?
        {
            got += chunk.bytes.len() as u64;
        }
        let elapsed = start.elapsed();
        conn.close(VarInt::from_u32(0), b"done");
        endpoint.wait_idle().await;
        report_received(got, elapsed);
        Ok(())
    }

    async fn send(role: &QuinnRole) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
        let mut config = client_config(&role.cert)?;
        config.transport_config(transport(role)?);
        let mut endpoint = endpoint("127.0.0.1:0".parse().expect("address"), None)?;
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(role.addr, "localhost")
            .map_err(|x| e(&x))?
            .await
            .map_err(|x| e(&x))?;
        let chunk = Bytes::from(vec![0x5a; CHUNK]);
        let start = Instant::now();
        let mut stream = conn.open_uni().await.map_err(|x| e(&x))?;
        for n in chunks(role.bytes) {
            stream
                .write_chunk(chunk.slice(..n))
                .await
                .map_err(|x| e(&x))?;
        }
        stream.finish().map_err(|x| e(&x))?;
        // Until the receiver, having counted every byte, closes.
        conn.closed().await;
        report_sent(start.elapsed(), role.bytes);
        endpoint.wait_idle().await;
        Ok(())
    }

    /// The connect rate's server (see [`crate::connects`]): accepts `count`
    /// connections, each handshake awaited in a task of its own, and prints
    /// `READY <addr> <cert>` and `RESULT <accepted> <cpu s>`.
    pub(crate) async fn quinn_accept(addr: SocketAddr, count: usize) -> Result<(), String> {
        let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
        let (config, cert) = server_config()?;
        let endpoint = endpoint(addr, Some(config))?;
        tell(format_args!(
            "READY {} {}",
            endpoint.local_addr().map_err(|x| e(&x))?,
            hex(&cert)
        ));
        let cpu = process_cpu();
        let mut handshakes = tokio::task::JoinSet::new();
        for _ in 0..count {
            let incoming = endpoint.accept().await.ok_or("quinn: endpoint closed")?;
            // Established, then closed by the client: let it go.
            handshakes.spawn(async move { incoming.await.is_ok() });
        }
        let mut accepted = 0;
        while let Some(done) = handshakes.join_next().await {
            accepted += usize::from(done.map_err(|x| e(&x))?);
        }
        report_accepted(accepted, cpu);
        endpoint.wait_idle().await;
        Ok(())
    }

    /// The connect rate's client: `count` connections, `in_flight` at a
    /// time, each closed once established; prints `RESULT <opened>
    /// <elapsed s> <cpu s>`.
    pub(crate) async fn quinn_open(
        addr: SocketAddr,
        cert: &str,
        count: usize,
        in_flight: usize,
    ) -> Result<(), String> {
        let mut endpoint = endpoint("127.0.0.1:0".parse().expect("address"), None)?;
        endpoint.set_default_client_config(client_config(cert)?);
        let cpu = process_cpu();
        let elapsed = open_all(count, in_flight, || {
            let endpoint = endpoint.clone();
            async move {
                let e = |e: &dyn std::fmt::Display| format!("quinn: {e}");
                let conn = endpoint
                    .connect(addr, "localhost")
                    .map_err(|x| e(&x))?
                    .await
                    .map_err(|x| e(&x))?;
                conn.close(VarInt::from_u32(0), b"done");
                Ok(())
            }
        })
        .await?;
        report_opened(count, elapsed, cpu);
        endpoint.wait_idle().await;
        Ok(())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Result<Vec<u8>, String> {
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "quinn: a malformed certificate".to_owned())
            })
            .collect()
    }
}
