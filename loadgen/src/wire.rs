//! What a player says on the wire, per protocol: how it gets its seat after
//! the WebSocket opens, how an act is written, and what a server frame
//! means. Everything else a player does — pacing, reconnects, measuring,
//! recording what it saw — is the same for every protocol, so the player
//! loop is written once over [`Wire`].
//!
//! Two implementations: [`reference::Reference`] (`tierlab-server`'s frames,
//! with server seqs and resume) and [`socketio::SocketIo`] (a Socket.IO
//! game, its events named by the scenario). All methods are plain functions
//! of text, so each protocol is unit-tested without a socket.

use serde::Deserialize;

use crate::scenario::{Protocol, ProtocolKind};

pub mod reference;
pub mod socketio;

/// How a player enters its room.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub room: &'a str,
    /// The player's name for a fresh seat.
    pub name: &'a str,
    /// The session to resume and the last seq seen, when the protocol can.
    pub resume: Option<(&'a str, u64)>,
}

/// A step of getting a seat: what to answer a server frame with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// Send this, then keep reading.
    Send(String),
    /// Nothing to say yet.
    Wait,
    /// Seated. `player` is the server's name for it (when it has one),
    /// `seq` the room's seq at the join (server seqs only).
    Joined {
        player: Option<String>,
        session: String,
        seq: u64,
    },
    /// The server said no, or the frame made no sense (an error kind).
    Refused(&'static str),
}

/// What a sender embeds in every act: when it was meant to go (µs since the
/// Unix epoch), which worker and player sent it, and the player's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Stamp {
    pub t: u64,
    #[serde(default)]
    pub w: Option<u32>,
    #[serde(default)]
    pub p: Option<u32>,
    #[serde(default)]
    pub n: Option<u64>,
}

/// A server frame, as the player loop needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A broadcast; `seq` when the server numbers a room's events.
    Event {
        seq: Option<u64>,
        stamp: Option<Stamp>,
    },
    Ack {
        id: u64,
        seq: Option<u64>,
    },
    /// The server refused something (an act, when `id` is given).
    Refused {
        id: Option<u64>,
        code: &'static str,
    },
    /// Answer at once (a heartbeat).
    Reply(String),
    /// The server is closing this connection.
    Close,
    /// The server is closing it because the room no longer exists (its
    /// state store lost it): the member did not leave.
    RoomGone,
    Other,
    /// Not a frame of this protocol: an error counted against the target.
    Bad,
}

/// What the delivery checker can hold the target to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Server seqs: every acknowledged event reaches every member from its
    /// join (or resume) on, once and in order.
    ServerSeqs,
    /// Sender counters: every acknowledged (or, without acks, sent) act
    /// reaches every member that had joined before it was sent, once and in
    /// each sender's order, also while the member was reconnecting.
    SenderCounters { acks: bool },
}

impl Guarantee {
    pub fn describe(self) -> &'static str {
        match self {
            Guarantee::ServerSeqs => "server seqs: every acknowledged event reaches every member from its join (or resume) until it leaves, once and in order",
            Guarantee::SenderCounters { acks: true } => "sender counters: every acknowledged act reaches every member that joined before it was sent and stayed, once and in its sender's order; events sent while a member reconnected count as lost",
            Guarantee::SenderCounters { acks: false } => "sender counters (no acks): every act written to a socket reaches every member that joined before it was sent and stayed, once and in its sender's order; events sent while a member reconnected count as lost",
        }
    }
}

/// One protocol's view of the wire.
pub trait Wire: Send + Sync + std::fmt::Debug {
    /// Reads one server frame while entering; the first frame after the
    /// WebSocket opens is the server's greeting.
    fn greet(&self, text: &str, entry: Entry<'_>) -> Greeting;
    /// An act's frame. `fields` is the inside of the act's JSON object
    /// (`"t":…,"p":…,"n":…,"pad":"…"`), `id` the player's counter; `keyed`:
    /// carry an idempotency key, where the protocol has them, so a retry is
    /// not applied twice. `None` if they do not make an act of this protocol.
    fn act(&self, room: &str, id: u64, fields: &str, keyed: bool) -> Option<String>;
    fn read(&self, text: &str) -> Incoming;
    /// What a player sends before closing, if anything.
    fn leave(&self) -> Option<String>;
    fn guarantee(&self) -> Guarantee;
    /// Whether players can resume a seat (else they join afresh, and the
    /// record of what they saw carries over).
    fn resumes(&self) -> bool {
        self.guarantee() == Guarantee::ServerSeqs
    }
}

/// The wire a scenario's players speak.
pub fn for_protocol(protocol: &Protocol) -> Box<dyn Wire> {
    match protocol.kind {
        ProtocolKind::Tierlab => Box::new(reference::Reference),
        ProtocolKind::Socketio => Box::new(socketio::SocketIo::new(protocol)),
    }
}
