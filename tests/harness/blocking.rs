//! The blocking driver (`ferry-blocking`) behind the harness's traits: its
//! endpoint, closed-session subscription, session and stream handles.

use super::*;

impl Peer for ferry_blocking::Endpoint {
    fn local_addr(&self) -> SocketAddr {
        ferry_blocking::Endpoint::local_addr(self)
    }

    fn connect(&self, addr: SocketAddr) -> Result<Box<dyn Conn>, ConnectError> {
        let session = ferry_blocking::Endpoint::connect(self, addr)?;
        Ok(Box::new(session))
    }

    fn connect_to(&self, addr: SocketAddr, key: PublicKey) -> Result<Box<dyn Conn>, ConnectError> {
        Ok(Box::new(ferry_blocking::Endpoint::connect_to(
            self, addr, key,
        )?))
    }

    fn connect_resumed(
        &self,
        ticket: &Ticket,
        early: &[Bytes],
    ) -> Result<Box<dyn Conn>, ConnectError> {
        Ok(Box::new(ferry_blocking::Endpoint::connect_resumed(
            self, ticket, early,
        )?))
    }

    fn accept(&self) -> Option<Box<dyn Conn>> {
        ferry_blocking::Endpoint::accept(self).map(|s| Box::new(s) as Box<dyn Conn>)
    }

    fn incoming(&self) -> Option<Box<dyn Pending>> {
        ferry_blocking::Endpoint::incoming(self).map(|i| Box::new(i) as Box<dyn Pending>)
    }

    fn session_count(&self) -> usize {
        ferry_blocking::Endpoint::session_count(self)
    }

    fn stats(&self) -> EndpointStats {
        ferry_blocking::Endpoint::stats(self)
    }

    fn sessions(&self) -> Vec<SessionId> {
        ferry_blocking::Endpoint::sessions(self)
    }

    fn session(&self, id: SessionId) -> Option<Box<dyn Conn>> {
        ferry_blocking::Endpoint::session(self, id).map(|s| Box::new(s) as Box<dyn Conn>)
    }

    fn broadcast(&self, message: Bytes) -> BroadcastReport {
        ferry_blocking::Endpoint::broadcast(self, message)
    }

    fn broadcast_to(&self, ids: &[SessionId], message: Bytes) -> BroadcastReport {
        ferry_blocking::Endpoint::broadcast_to(self, ids, message)
    }

    fn closed_events(&self) -> Box<dyn Subscription> {
        Box::new(ferry_blocking::Endpoint::closed_events(self))
    }

    fn closed_events_with_capacity(&self, capacity: usize) -> Box<dyn Subscription> {
        Box::new(ferry_blocking::Endpoint::closed_events_with_capacity(
            self, capacity,
        ))
    }

    fn set_accept_incoming(&self, accept: bool) {
        ferry_blocking::Endpoint::set_accept_incoming(self, accept);
    }

    fn close(&self) {
        ferry_blocking::Endpoint::close(self);
    }

    fn is_closed(&self) -> bool {
        ferry_blocking::Endpoint::is_closed(self)
    }

    fn fallback_addr(&self) -> Option<SocketAddr> {
        ferry_blocking::Endpoint::fallback_addr(self)
    }

    fn fallback_stats(&self) -> FallbackStats {
        ferry_blocking::Endpoint::fallback_stats(self)
    }
}

impl Subscription for ferry_blocking::ClosedEvents {
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ClosedEvent>, String> {
        ferry_blocking::ClosedEvents::recv_timeout(self, timeout).map_err(|e| e.to_string())
    }
}

impl Conn for ferry_blocking::Session {
    fn id(&self) -> SessionId {
        ferry_blocking::Session::id(self)
    }

    fn clone_handle(&self) -> Box<dyn Conn> {
        Box::new(self.clone())
    }

    fn remote_addr(&self) -> SocketAddr {
        ferry_blocking::Session::remote_addr(self)
    }

    fn transport(&self) -> Transport {
        ferry_blocking::Session::transport(self)
    }

    fn peer_identity(&self) -> Option<PublicKey> {
        ferry_blocking::Session::peer_identity(self)
    }

    fn ticket(&self) -> Option<Ticket> {
        ferry_blocking::Session::ticket(self)
    }

    fn is_resumed(&self) -> bool {
        ferry_blocking::Session::is_resumed(self)
    }

    fn state(&self) -> State {
        ferry_blocking::Session::state(self)
    }

    fn max_message_size(&self) -> usize {
        ferry_blocking::Session::max_message_size(self)
    }

    fn max_datagram_size(&self) -> usize {
        ferry_blocking::Session::max_datagram_size(self)
    }

    fn send(&self, message: Bytes) -> Result<(), SendError> {
        ferry_blocking::Session::send(self, message)
    }

    fn recv(&self) -> Result<Bytes, RecvError> {
        ferry_blocking::Session::recv(self)
    }

    fn send_datagram(&self, datagram: Bytes) -> Result<(), DatagramError> {
        ferry_blocking::Session::send_datagram(self, datagram)
    }

    fn recv_datagram(&self, timeout: Duration) -> Result<Bytes, RecvError> {
        ferry_blocking::Session::recv_datagram_timeout(self, timeout)
    }

    fn close(&self, code: u64) {
        ferry_blocking::Session::close(self, code);
    }

    fn close_with_reason(&self, code: u64, reason: &str) {
        ferry_blocking::Session::close_with_reason(self, code, reason);
    }

    fn closed(&self) -> CloseReason {
        ferry_blocking::Session::closed(self)
    }

    fn stats(&self) -> SessionStats {
        ferry_blocking::Session::stats(self)
    }

    fn open_stream(&self, kind: StreamKind) -> Result<Box<dyn StreamConn>, StreamError> {
        Ok(Box::new(ferry_blocking::Session::open_stream(self, kind)?))
    }

    fn accept_stream(&self, timeout: Duration) -> Result<Option<Box<dyn StreamConn>>, String> {
        ferry_blocking::Session::accept_stream_timeout(self, timeout)
            .map(|s| s.map(|s| Box::new(s) as Box<dyn StreamConn>))
            .map_err(|e| e.to_string())
    }

    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        ferry_blocking::Session::acknowledged_timeout(self, timeout)
    }
}

impl StreamConn for ferry_blocking::Stream {
    fn id(&self) -> StreamId {
        ferry_blocking::Stream::id(self)
    }

    fn kind(&self) -> StreamKind {
        ferry_blocking::Stream::kind(self)
    }

    fn send(&self, message: Bytes) -> Result<(), StreamSendError> {
        ferry_blocking::Stream::send(self, message)
    }

    fn recv(&self, timeout: Duration) -> Result<Option<Bytes>, StreamRecvError> {
        ferry_blocking::Stream::recv_timeout(self, timeout)
    }

    fn finish(&self) -> Result<(), StreamSendError> {
        ferry_blocking::Stream::finish(self)
    }

    fn reset(&self, code: u64) -> Result<(), StreamSendError> {
        ferry_blocking::Stream::reset(self, code)
    }

    fn end(&self) -> Option<StreamEnd> {
        ferry_blocking::Stream::end(self)
    }

    fn closed(&self) -> Option<StreamEnd> {
        ferry_blocking::Stream::closed(self)
    }

    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        ferry_blocking::Stream::acknowledged_timeout(self, timeout)
    }

    fn finish_acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        ferry_blocking::Stream::finish_acknowledged_timeout(self, timeout)
    }
}
