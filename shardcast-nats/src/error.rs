//! Every public error type of the bridge.

use std::fmt;

/// A payload could not be encoded or decoded.
#[derive(Debug)]
pub struct CodecError {
    codec: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl CodecError {
    /// An error from the codec named `codec`.
    pub fn new(
        codec: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CodecError { codec, source: source.into() }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} codec: {}", self.codec, self.source)
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Why an incoming NATS message was dropped by an import.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// A required header is absent.
    MissingHeader(&'static str),
    /// A header is present but its value does not parse.
    BadHeader(&'static str, String),
    /// The subject, after the prefix, is not a valid shardcast topic.
    BadTopic(String),
    /// The body is larger than the import's limit.
    Oversized {
        /// Body size, in bytes.
        len: usize,
        /// The import's limit, in bytes.
        max: usize,
    },
    /// The codec rejected the body.
    Payload(CodecError),
}

impl DecodeError {
    /// The reason label used in stats (`header`, `topic`, `oversized`, `payload`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::MissingHeader(_) | DecodeError::BadHeader(..) => "header",
            DecodeError::BadTopic(_) => "topic",
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Payload(_) => "payload",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MissingHeader(name) => write!(f, "missing header {name}"),
            DecodeError::BadHeader(name, value) => write!(f, "invalid header {name}: {value:?}"),
            DecodeError::BadTopic(why) => write!(f, "invalid topic: {why}"),
            DecodeError::Oversized { len, max } => {
                write!(f, "payload of {len} bytes exceeds the limit of {max} bytes")
            }
            DecodeError::Payload(e) => write!(f, "undecodable payload: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Payload(e) => Some(e),
            _ => None,
        }
    }
}

/// Setting up a bridge, an export or an import failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// The first connection to the NATS server failed.
    Connect(async_nats::ConnectError),
    /// Subscribing on NATS failed.
    Subscribe(async_nats::SubscribeError),
    /// A pattern or prefix is not valid.
    Pattern(shardcast::PatternError),
    /// The prefix is not a valid topic (dot-separated tokens, no wildcards).
    Prefix(shardcast::TopicError),
    /// Subscribing to the local bus failed (it is closed, or the capacity is invalid).
    Bus(shardcast::BusError),
    /// The import's publishing thread could not be started. No longer returned (imports
    /// publish from a task); kept so that existing matches compile.
    Thread(std::io::Error),
    /// An option is out of range: which one, and what it must be.
    Config(&'static str, &'static str),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Connect(e) => write!(f, "cannot connect to nats: {e}"),
            BridgeError::Subscribe(e) => write!(f, "cannot subscribe on nats: {e}"),
            BridgeError::Pattern(e) => write!(f, "bad pattern: {e}"),
            BridgeError::Prefix(e) => write!(f, "bad prefix: {e}"),
            BridgeError::Bus(e) => write!(f, "cannot subscribe to the bus: {e}"),
            BridgeError::Thread(e) => write!(f, "cannot start the import thread: {e}"),
            BridgeError::Config(what, must) => write!(f, "invalid {what}: must be {must}"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Connect(e) => Some(e),
            BridgeError::Subscribe(e) => Some(e),
            BridgeError::Pattern(e) => Some(e),
            BridgeError::Prefix(e) => Some(e),
            BridgeError::Bus(e) => Some(e),
            BridgeError::Thread(e) => Some(e),
            BridgeError::Config(..) => None,
        }
    }
}

/// [`Bridge::import`](crate::Bridge::import) failed; the publisher is handed back (the
/// bus stays open).
pub struct ImportError<E, P = shardcast::Publisher<E>>(
    Box<(BridgeError, P)>,
    std::marker::PhantomData<fn() -> E>,
);

impl<E, P> ImportError<E, P> {
    pub(crate) fn new(error: BridgeError, publisher: P) -> Self {
        ImportError(Box::new((error, publisher)), std::marker::PhantomData)
    }

    /// What went wrong.
    pub fn error(&self) -> &BridgeError {
        &self.0 .0
    }

    /// The publisher that was passed in.
    pub fn into_publisher(self) -> P {
        self.0 .1
    }

    /// The error, dropping the publisher (which closes its bus).
    pub fn into_error(self) -> BridgeError {
        self.0 .0
    }
}

impl<E, P> fmt::Debug for ImportError<E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportError").field("error", self.error()).finish_non_exhaustive()
    }
}

impl<E, P> fmt::Display for ImportError<E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error(), f)
    }
}

impl<E, P> std::error::Error for ImportError<E, P> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error().source()
    }
}
