//! Resumption tickets at the endpoint: a listener issues them (sealed under
//! its ticket keys, `crypto::ticket`), checks the ones Connects carry (key,
//! expiry, binding to its keys, the starter's key still admitted, and use:
//! the strike register), and runs the resumed handshake; a starter resumes
//! with one ([`Endpoint::connect_resumed`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, UNIX_EPOCH};

use bytes::Bytes;
use rand::RngCore;
use tracing::debug;

use crate::crypto::ticket::{FLAG_EARLY_DATA, TicketContents, TicketError, TicketKeys, binding};
use crate::crypto::{Handshake as NoiseHandshake, PreSharedKey, TicketMode};
use crate::error::ConnectError;
use crate::id::SessionId;
use crate::session::{Authenticated, decode_early, own_params, prologue};
use crate::ticket::Ticket;
use crate::wire::packet::{EARLY_ACCEPTED, FEATURES, Handshake, NewTicket, RESUMED};

use super::Endpoint;

/// Ticket ids remembered at most: a ticket is used once, and its id kept
/// until it expires. When the register is full (of tickets not yet
/// expired), tickets are refused (their starters run the full handshake)
/// rather than taken without being remembered.
pub(crate) const MAX_USED_TICKETS: usize = 65_536;

/// The ids of the tickets used, until they expire.
#[derive(Debug, Default)]
pub(crate) struct StrikeRegister {
    /// Ticket id to its expiry (Unix seconds).
    used: HashMap<[u8; 16], u64>,
}

impl StrikeRegister {
    /// Whether the ticket `id` was used.
    pub(crate) fn is_used(&self, id: &[u8; 16]) -> bool {
        self.used.contains_key(id)
    }

    /// Records the use of ticket `id`, good until `expires`; `false` when
    /// the register is full even of tickets still good at `now`.
    pub(crate) fn record(&mut self, id: [u8; 16], expires: u64, now: u64) -> bool {
        if self.used.len() >= MAX_USED_TICKETS {
            self.used.retain(|_, e| *e > now);
            if self.used.len() >= MAX_USED_TICKETS {
                return false;
            }
        }
        self.used.insert(id, expires);
        true
    }
}

/// What the listeners of one endpoint share about tickets: the keys that
/// seal them and the ids of those used. The shards of a driver's endpoint
/// share one ([`Endpoint::share_tickets`]), so that a ticket issued by one
/// opens at another, and once only.
#[derive(Debug)]
pub(crate) struct Tickets {
    keys: TicketKeys,
    strikes: StrikeRegister,
}

/// [`Tickets`], shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedTickets(Arc<Mutex<Tickets>>);

impl SharedTickets {
    /// Tickets living `lifetime` seconds.
    pub(crate) fn new(lifetime: u64) -> Self {
        Self(Arc::new(Mutex::new(Tickets {
            keys: TicketKeys::new(lifetime),
            strikes: StrikeRegister::default(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        // Nothing under the lock panics; should it have, the state is
        // still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a listener makes of a Connect's ticket, before the handshake.
#[derive(Debug)]
pub(super) enum TicketVerdict {
    /// Good: resume.
    Valid(Box<TicketContents>),
    /// Refused, and why (for the log).
    Refused(&'static str),
}

/// A resumed handshake's outcome at the listener.
pub(super) struct Resumed {
    pub(super) keys: Option<Authenticated>,
    /// The early messages, and the answer to give the starter.
    pub(super) early: Vec<Bytes>,
    pub(super) answer: u8,
}

impl Endpoint {
    /// Seconds since the Unix epoch at `now`, by the wall clock the driver
    /// gave ([`set_wall_clock`](Self::set_wall_clock)).
    pub(super) fn unix_seconds(&self, now: Instant) -> Option<u64> {
        let (at, wall) = self.wall_clock?;
        let since = wall.duration_since(UNIX_EPOCH).ok()? + now.saturating_duration_since(at);
        Some(since.as_secs())
    }

    /// Starts a session with the listener `ticket` came from, resuming: a
    /// shortened handshake (on an encrypted session `Noise_NNpsk0` under the
    /// ticket's secret, one Diffie-Hellman per side; in the clear no address
    /// check), and, if the ticket allows it, the messages queued on stream 0
    /// before the first Connect leaves (on the next
    /// [`poll_transmit`](Self::poll_transmit)) ride in it as early data, as
    /// many as fit. The listener may refuse the ticket: the session then
    /// falls back to the full handshake by itself, one round trip later, and
    /// early data not delivered goes normally once established. With an
    /// identity, [`Session::peer_identity`](crate::Session::peer_identity)
    /// names the listener key the ticket came from.
    ///
    /// A ticket already expired by this endpoint's clock
    /// ([`Ticket::expires`]) is not presented: the session runs the full
    /// handshake at once.
    ///
    /// The endpoint must be configured as the one the ticket was given to
    /// (the same kind of keys), else [`ConnectError::TicketMismatch`].
    pub fn connect_resumed(
        &mut self,
        now: Instant,
        ticket: &Ticket,
    ) -> Result<SessionId, ConnectError> {
        let config = TicketMode::of(self.config.psk.as_ref(), self.config.identity.as_ref());
        if config != ticket.mode {
            return Err(ConnectError::TicketMismatch {
                ticket: ticket.mode,
                config,
            });
        }
        let pin = ticket.listener_key.or(self.config.listener_key);
        if ticket.mode.has_identity() && pin.is_none() {
            return Err(ConnectError::NoListenerKey);
        }
        if self
            .unix_seconds(now)
            .is_some_and(|unix| unix >= ticket.expires)
        {
            // Expired by this side's clock: not worth a refusal's round
            // trip. A full handshake at once (the early messages go after
            // it).
            return self.open(now, ticket.listener, pin, None);
        }
        self.open(now, ticket.listener, pin, Some(ticket))
    }

    /// Makes this endpoint seal and open resumption tickets with `other`'s
    /// keys, and share its record of the tickets used: a ticket either
    /// issued opens at the other, once in all. The drivers call it for the
    /// shards of one endpoint (which serve one address); call it before
    /// either issues a ticket.
    pub fn share_tickets(&mut self, other: &Endpoint) {
        self.tickets = other.tickets.clone();
    }

    /// The ticket a starter's session `id` received, for the application.
    pub(super) fn ticket_of(&self, id: SessionId) -> Option<Ticket> {
        let session = &self.sessions.get(&id)?.session;
        let (t, at) = session.received_ticket()?;
        let received = self.unix_seconds(*at).unwrap_or(0);
        let mut secret = [0; 32];
        if t.secret.len() == 32 {
            secret.copy_from_slice(&t.secret);
        }
        Some(Ticket {
            listener: session.remote(),
            expires: received.saturating_add(t.lifetime),
            mode: TicketMode::of(self.config.psk.as_ref(), self.config.identity.as_ref()),
            early_data: t.flags & FLAG_EARLY_DATA != 0,
            listener_key: session.peer_identity(),
            secret,
            sealed: t.ticket.clone(),
        })
    }

    /// A listener gives the starter of session `id` a fresh ticket, if it
    /// issues them and knows the time.
    pub(super) fn issue_ticket(&mut self, now: Instant, id: SessionId) {
        if !self.config.issue_tickets {
            return;
        }
        let Some(unix) = self.unix_seconds(now) else {
            return;
        };
        let config = self.config.clone();
        let Some(slot) = self.sessions.get_mut(&id) else {
            return;
        };
        let mode = TicketMode::of(config.psk.as_ref(), config.identity.as_ref());
        let mut contents = TicketContents {
            id: [0; 16],
            issued: unix,
            lifetime: u32::try_from(config.ticket_lifetime.as_secs()).unwrap_or(u32::MAX),
            mode,
            flags: if config.accept_early_data {
                FLAG_EARLY_DATA
            } else {
                0
            },
            secret: [0; 32],
            starter: slot.session.peer_identity(),
            binding: binding(config.psk.as_ref(), config.identity.as_ref()),
        };
        self.rng.fill_bytes(&mut contents.id);
        if mode.is_keyed() {
            self.rng.fill_bytes(&mut contents.secret);
        }
        let sealed = self
            .tickets
            .lock()
            .keys
            .seal(&contents, unix, &mut self.rng);
        slot.session.offer_ticket(NewTicket {
            lifetime: u64::from(contents.lifetime),
            flags: contents.flags,
            // Secret only inside an encrypted session; in the clear there
            // is none.
            secret: if mode.is_keyed() {
                Bytes::copy_from_slice(&contents.secret)
            } else {
                Bytes::new()
            },
            ticket: Bytes::from(sealed),
        });
        self.stats.tickets_issued += 1;
    }

    /// Whether the ticket a Connect carries may resume a session now. Its
    /// use is not recorded yet (see [`resume`](Self::resume)).
    pub(super) fn check_ticket(&self, now: Instant, sealed: &[u8]) -> TicketVerdict {
        let Some(unix) = self.unix_seconds(now) else {
            return TicketVerdict::Refused("no wall clock");
        };
        let tickets = self.tickets.lock();
        let contents = match tickets.keys.open(sealed, unix) {
            Ok(c) => c,
            Err(TicketError::Expired) => return TicketVerdict::Refused("expired"),
            Err(TicketError::UnknownKey) => return TicketVerdict::Refused("unknown key"),
            Err(TicketError::Forged | TicketError::Malformed) => {
                return TicketVerdict::Refused("forged");
            }
        };
        let config = &self.config;
        if contents.binding != binding(config.psk.as_ref(), config.identity.as_ref())
            || contents.mode != TicketMode::of(config.psk.as_ref(), config.identity.as_ref())
        {
            return TicketVerdict::Refused("the endpoint's keys changed");
        }
        if let (Some(key), Some(list)) = (&contents.starter, &config.authorized_keys)
            && !list.contains(key)
        {
            return TicketVerdict::Refused("the starter's key is no longer admitted");
        }
        if tickets.strikes.is_used(&contents.id) {
            return TicketVerdict::Refused("used before");
        }
        TicketVerdict::Valid(Box::new(contents))
    }

    /// The listener's half of a resumed handshake for the session whose
    /// starter chose `id` and for which this side issued `local`: with keys,
    /// message 1 must open under the ticket's secret (its payload is the
    /// early data); the ticket's use is then recorded, and the early data
    /// accepted if this endpoint takes early data, the ticket allows it, and
    /// the use could be recorded (else the ticket is refused: `None`).
    pub(super) fn resume(
        &mut self,
        now: Instant,
        id: SessionId,
        local: SessionId,
        hs: &Handshake,
        contents: &TicketContents,
        undecided: bool,
    ) -> Result<Option<Resumed>, super::input::Unauthenticated> {
        use super::input::Unauthenticated;
        let config = self.config.clone();
        let mut noise = None;
        let early = if contents.mode.is_keyed() {
            let psk = PreSharedKey::from_bytes(contents.secret);
            let mut n =
                NoiseHandshake::responder_with(&psk, &prologue(id), config.cipher, &mut self.rng);
            let mut payload = Vec::new();
            if hs.auth.is_empty() || n.read_message(&hs.auth, &mut payload).is_err() {
                return Err(Unauthenticated::Failed);
            }
            noise = Some(n);
            decode_early(&payload)
        } else {
            decode_early(&hs.early)
        };
        let now = self.unix_seconds(now).unwrap_or(contents.issued);
        let expires = contents.issued + u64::from(contents.lifetime);
        if !self
            .tickets
            .lock()
            .strikes
            .record(contents.id, expires, now)
        {
            return Ok(None);
        }
        let early = early.unwrap_or_default();
        let accepted = !early.is_empty()
            && config.accept_early_data
            && contents.allows_early_data()
            && !undecided;
        if !early.is_empty() {
            if accepted {
                self.stats.early_data_accepted += 1;
            } else {
                self.stats.early_data_refused += 1;
            }
        }
        let answer = RESUMED | if accepted { EARLY_ACCEPTED } else { 0 };
        let keys = match noise {
            None => None,
            Some(noise) => {
                let params = Handshake {
                    listener_id: Some(local),
                    features: hs.features & FEATURES,
                    resume: Bytes::copy_from_slice(&[answer]),
                    ..own_params(&config)
                };
                Some(super::input::answer(noise, &params, contents.starter)?)
            }
        };
        debug!(session = %local, early = accepted, "session resumed");
        Ok(Some(Resumed {
            keys,
            early: if accepted { early } else { Vec::new() },
            answer,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strike_register_remembers_uses_and_refuses_when_full_of_live_tickets() {
        let mut strikes = StrikeRegister::default();
        assert!(!strikes.is_used(&[1; 16]));
        assert!(strikes.record([1; 16], 100, 10));
        assert!(strikes.is_used(&[1; 16]));
        for i in 1..MAX_USED_TICKETS {
            let mut id = [0; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            id[15] = 9;
            assert!(strikes.record(id, 100, 10));
        }
        // Full of tickets good until 100: the next is refused at 50...
        assert!(!strikes.record([2; 16], 200, 50));
        // ...and taken once they expired, forgetting them.
        assert!(strikes.record([2; 16], 200, 100));
        assert!(!strikes.is_used(&[1; 16]));
        assert!(strikes.is_used(&[2; 16]));
    }
}
