//! Incoming sessions waiting for the application's decision
//! (`Config::decide_incoming`), behind one interface whatever drives them.

use std::net::SocketAddr;

use ferry_async::types::{ConnectError, PeerParams, SessionId};

use crate::harness::{AsyncConn, Conn};

/// A peer's request to open a session, whatever drives it.
pub trait Pending: Send {
    /// The session's id.
    fn id(&self) -> SessionId;
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;
    /// What the peer's Connect asked for.
    fn peer_params(&self) -> PeerParams;
    /// Accepts: the established session.
    fn accept(self: Box<Self>) -> Result<Box<dyn Conn>, ConnectError>;
    /// Refuses with an application code and text.
    fn refuse(self: Box<Self>, code: u64, reason: &str);
}

impl Pending for ferry_async::Incoming {
    fn id(&self) -> SessionId {
        ferry_async::Incoming::id(self)
    }

    fn remote_addr(&self) -> SocketAddr {
        ferry_async::Incoming::remote_addr(self)
    }

    fn peer_params(&self) -> PeerParams {
        ferry_async::Incoming::peer_params(self)
    }

    fn accept(self: Box<Self>) -> Result<Box<dyn Conn>, ConnectError> {
        Ok(Box::new(AsyncConn((*self).accept()?)))
    }

    fn refuse(self: Box<Self>, code: u64, reason: &str) {
        (*self).refuse(code, reason);
    }
}

impl Pending for ferry_blocking::Incoming {
    fn id(&self) -> SessionId {
        ferry_blocking::Incoming::id(self)
    }

    fn remote_addr(&self) -> SocketAddr {
        ferry_blocking::Incoming::remote_addr(self)
    }

    fn peer_params(&self) -> PeerParams {
        ferry_blocking::Incoming::peer_params(self)
    }

    fn accept(self: Box<Self>) -> Result<Box<dyn Conn>, ConnectError> {
        Ok(Box::new((*self).accept()?))
    }

    fn refuse(self: Box<Self>, code: u64, reason: &str) {
        (*self).refuse(code, reason);
    }
}
