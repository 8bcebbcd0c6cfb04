//! The listener's side: a thread accepting TCP connections, each upgraded
//! to WebSocket on a thread of its own.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{debug, info};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderValue, StatusCode};

use super::connection;
use super::{Hub, WEBSOCKET_PATH, WEBSOCKET_PROTOCOL};

/// How long a peer may take over its HTTP upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept thread looks whether the endpoint closed.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Binds the fallback's TCP listener on `addr` and starts accepting;
/// returns the address bound.
pub(crate) fn listen(hub: &Arc<Hub>, addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let hub = hub.clone();
    std::thread::Builder::new()
        .name("ferry-ws-accept".into())
        .spawn(move || accept_loop(&hub, &listener))?;
    info!(addr = %local, "accepting the WebSocket fallback on TCP");
    Ok(local)
}

fn accept_loop(hub: &Arc<Hub>, listener: &TcpListener) {
    while !hub.is_closed() {
        match listener.accept() {
            Ok((stream, peer)) => {
                if !hub.reserve() {
                    debug!(%peer, "too many WebSocket connections: refused");
                    continue;
                }
                let hub2 = hub.clone();
                let spawned = std::thread::Builder::new()
                    .name("ferry-ws-upgrade".into())
                    .spawn(move || {
                        if let Err(e) = upgrade(&hub2, stream, peer) {
                            debug!(%peer, error = %e, "WebSocket upgrade refused");
                            hub2.counters.refused.fetch_add(1, Ordering::Relaxed);
                            hub2.release();
                        }
                    });
                if spawned.is_err() {
                    hub.release();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                debug!(error = %e, "accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    debug!("the fallback's accept thread ends");
}

/// Runs the server's side of the HTTP upgrade (path [`WEBSOCKET_PATH`],
/// subprotocol [`WEBSOCKET_PROTOCOL`]), then starts the connection.
fn upgrade(hub: &Arc<Hub>, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(UPGRADE_TIMEOUT))?;
    stream.set_write_timeout(Some(UPGRADE_TIMEOUT))?;
    let check = |request: &Request, mut response: Response| {
        if request.uri().path() != WEBSOCKET_PATH {
            return Err(refusal(StatusCode::NOT_FOUND, "not a Ferry endpoint"));
        }
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == WEBSOCKET_PROTOCOL);
        if !offered {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "ask for the `ferry` WebSocket subprotocol",
            ));
        }
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(WEBSOCKET_PROTOCOL),
        );
        Ok(response)
    };
    // The client sends nothing more before it has read the answer, so the
    // handshake reads no frame ahead: dropping its socket loses nothing.
    let socket = tungstenite::accept_hdr(stream.try_clone()?, check)
        .map_err(|e| io::Error::other(e.to_string()))?;
    drop(socket);
    connection::start(hub, stream, peer, false)?;
    debug!(%peer, "WebSocket connection accepted");
    Ok(())
}

fn refusal(status: StatusCode, text: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text.to_owned()));
    *response.status_mut() = status;
    response
}
