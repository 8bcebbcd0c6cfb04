//! How `ferry config check` shows the session settings: one `key = value`
//! line each, with its unit, and for the key files their paths and public
//! keys only (never a private key).

use std::time::Duration;

use ferry_proto::CipherPreference;

use super::{PeerKey, SessionSettings};

impl SessionSettings {
    /// The identity lines of [`describe`](Self::describe): public keys and
    /// paths only, never a private key.
    fn describe_identity(&self) -> Vec<String> {
        let c = &self.endpoint.protocol;
        let unused = if c.identity.is_none() {
            " (unused without identity_file or --identity)"
        } else {
            ""
        };
        vec![
            match (&self.identity_file, &c.identity) {
                (Some(path), Some(id)) => format!(
                    "identity_file = {} (public key {}; sessions authenticated by public keys)",
                    path.display(),
                    id.public_key()
                ),
                (Some(path), None) => format!("identity_file = {} (not read)", path.display()),
                (None, _) => "identity_file = none (no identity)".into(),
            },
            match (&self.authorized_keys_file, &c.authorized_keys) {
                (Some(path), Some(list)) => {
                    let names: Vec<_> = list
                        .iter()
                        .map(|(k, n)| {
                            if n.is_empty() {
                                format!("{}…", k.short())
                            } else {
                                n.to_owned()
                            }
                        })
                        .collect();
                    format!(
                        "authorized_keys_file = {} ({}{}: listeners admit only these){unused}",
                        path.display(),
                        crate::counted(list.len() as u64, "key", "keys"),
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!(" {}", names.join(", "))
                        }
                    )
                }
                (Some(path), None) => {
                    format!("authorized_keys_file = {} (not read)", path.display())
                }
                (None, _) => {
                    "authorized_keys_file = none (a listener with an identity admits any key)"
                        .into()
                }
            },
            match &self.peer_key {
                Some(PeerKey {
                    key,
                    file: Some(path),
                }) => format!(
                    "peer_key = {key} (from {}; starters pin it as the listener's key){unused}",
                    path.display()
                ),
                Some(PeerKey { key, file: None }) => {
                    format!("peer_key = {key} (starters pin it as the listener's key){unused}")
                }
                None => "peer_key = none".into(),
            },
        ]
    }

    /// The settings as `key = value` lines, with their units, as `ferry
    /// config check` prints them (the key itself is not shown).
    pub fn describe(&self) -> Vec<String> {
        let c = &self.endpoint.protocol;
        let ms = |d: Duration| d.as_millis();
        let mut lines = vec![
            format!("mtu = {} bytes", c.mtu),
            format!("max_mtu = {} bytes", c.max_mtu),
            format!("congestion = {}", c.congestion.name()),
            format!("handshake_timeout = {} ms", ms(c.handshake_timeout)),
            format!("ping_interval = {} ms", ms(c.ping_interval)),
            format!("ping_packet_count = {}", c.ping_packet_count),
            format!("delivery_timeout = {} ms", ms(c.delivery_timeout)),
            format!("initial_rtt = {} ms", ms(c.initial_rtt)),
            format!("max_ack_delay = {} ms", ms(c.max_ack_delay)),
            format!("max_message_size = {} bytes", c.max_message_size),
            format!("recv_window = {} bytes", c.recv_window),
            format!("max_recv_window = {} bytes", c.max_recv_window),
            format!("stream_recv_window = {} bytes", c.stream_recv_window),
            format!(
                "max_stream_recv_window = {} bytes",
                c.max_stream_recv_window
            ),
            format!("send_buffer = {} bytes", c.send_buffer),
            format!("max_send_buffer = {} bytes", c.max_send_buffer),
            format!("stream_send_buffer = {} bytes", c.stream_send_buffer),
            format!("send_window = {} bytes", c.send_window),
            format!("max_streams = {}", c.max_streams),
            format!("max_sessions = {}", c.max_sessions),
            format!(
                "max_handshakes_per_source = {} per second",
                c.max_handshakes_per_source
            ),
            format!("max_pending_handshakes = {}", c.max_pending_handshakes),
            format!("amplification_factor = {}", c.amplification_factor),
            format!("max_recv_memory = {} bytes", c.max_recv_memory),
            format!(
                "udp_send_buffer = {} bytes",
                self.endpoint.socket_send_buffer
            ),
            format!(
                "udp_recv_buffer = {} bytes",
                self.endpoint.socket_recv_buffer
            ),
            match &self.key_file {
                Some(path) => format!(
                    "key_file = {} (sessions authenticated and encrypted)",
                    path.display()
                ),
                None => "key_file = none (no pre-shared key)".into(),
            },
        ];
        lines.extend(self.describe_identity());
        lines.extend([
            match (self.encrypted(), c.cipher) {
                (false, cipher) => format!("cipher = {cipher} (unused without a key or identity)"),
                (true, CipherPreference::Auto) => {
                    if ferry_proto::crypto::hardware_aes() {
                        "cipher = auto (aes-256-gcm first: this CPU has hardware AES)".into()
                    } else {
                        "cipher = auto (chacha20-poly1305 first: no hardware AES on this CPU)"
                            .into()
                    }
                }
                (true, cipher) => format!("cipher = {cipher} (forced)"),
            },
            match self.endpoint.shards {
                0 => "shards = 0 (one per core)".into(),
                1 => "shards = 1 (one socket, one driver)".into(),
                n => format!("shards = {n} (sockets and drivers on the address)"),
            },
            match c.server_id {
                Some(id) => format!("server_id = {id} (session ids route to this server)"),
                None => "server_id = none (not behind a load balancer that routes on ids)".into(),
            },
            match self.metrics {
                Some(addr) => format!("metrics = {addr} (Prometheus at http://{addr}/metrics)"),
                None => "metrics = none (no metrics endpoint)".into(),
            },
            format!(
                "grace_period = {} ms (on SIGTERM or Ctrl-C: receive, forward, forward-server)",
                self.grace_period
                    .unwrap_or(crate::shutdown::DEFAULT_GRACE)
                    .as_millis()
            ),
            match (
                self.endpoint.fallback.listen,
                self.endpoint.fallback.listen_addr,
            ) {
                (_, Some(addr)) => {
                    format!("tcp_fallback_listen = {addr} (listeners: WebSocket over TCP there)")
                }
                (true, None) => {
                    "tcp_fallback = true (listeners: WebSocket over TCP on the UDP port number)"
                        .into()
                }
                (false, None) => "tcp_fallback = false (listeners: UDP only)".into(),
            },
            match self.endpoint.fallback.after {
                Some(after) => format!(
                    "fallback_after = {} ms (starters: WebSocket over TCP when UDP gets no answer)",
                    after.as_millis()
                ),
                None => "fallback_after = 0 (starters: UDP only)".into(),
            },
        ]);
        lines
    }
}
