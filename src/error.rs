//! Every public error type.
//!
//! They follow crossbeam and tokio: errors that hand a value back (`TryPublishError<T>`) never
//! require `T: Debug` for their own `Debug`, so `.unwrap()` works for any payload; `Display` is
//! lowercase; every type implements [`std::error::Error`]. One word for a finished bus
//! everywhere: `Closed`.

use std::fmt;

/// Longest topic or pattern, in bytes (`Topic::MAX_LEN`). Here, not in `topic`, because the
/// error messages name it and `topic` depends on this module.
pub(crate) const TOPIC_MAX_LEN: usize = 255;
/// Most tokens in a topic or pattern (`Topic::MAX_TOKENS`).
pub(crate) const TOPIC_MAX_TOKENS: usize = 32;

/// A builder or subscription value outside its documented bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    value: String,
    expected: &'static str,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        value: impl fmt::Display,
        expected: &'static str,
    ) -> Self {
        Self { field, value: value.to_string(), expected }
    }

    /// The builder field that was rejected, e.g. `"ring_capacity"`.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {}: expected {}", self.field, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong with a topic or pattern, and where (byte offsets into the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicErrorKind {
    /// The input is the empty string.
    Empty,
    /// A token is empty (`a..b`, `.a`, `a.`); the byte offset where it starts.
    EmptyToken(usize),
    /// A byte that may not appear: not printable ASCII, a space, or (in a topic) `*`/`>`.
    InvalidByte {
        /// The offending byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// A pattern wildcard that is not a whole token (`a*`, `>b`).
    PartialWildcard {
        /// `*` or `>`.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// A pattern's `>` is followed by more tokens; the offset of the `>`.
    TailNotLast(usize),
    /// Longer than [`Topic::MAX_LEN`](crate::Topic::MAX_LEN) bytes.
    TooLong,
    /// More than [`Topic::MAX_TOKENS`](crate::Topic::MAX_TOKENS) tokens.
    TooManyTokens,
    /// A `$SYS` topic: reserved for the bus's own events.
    Reserved,
}

fn describe(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    input: &str,
    kind: TopicErrorKind,
) -> fmt::Result {
    write!(f, "invalid {what} {input:?}: ")?;
    match kind {
        TopicErrorKind::Empty => write!(f, "empty {what}"),
        TopicErrorKind::EmptyToken(at) => write!(f, "empty token at byte {at}"),
        TopicErrorKind::InvalidByte { byte, at } => {
            write!(f, "invalid byte {:?} at byte {at}", char::from(byte))
        }
        TopicErrorKind::PartialWildcard { byte, at } => {
            write!(f, "'{}' must be a whole token (byte {at})", char::from(byte))
        }
        TopicErrorKind::TailNotLast(at) => write!(f, "'>' must be the last token (byte {at})"),
        TopicErrorKind::TooLong => write!(f, "{what} exceeds {} bytes", TOPIC_MAX_LEN),
        TopicErrorKind::TooManyTokens => {
            write!(f, "{what} has more than {} tokens", TOPIC_MAX_TOKENS)
        }
        TopicErrorKind::Reserved => f.write_str("'$SYS' topics are reserved for the bus"),
    }
}

/// Keeps error messages bounded even for huge inputs.
fn clip(input: &str) -> String {
    input.chars().take(64).collect()
}

/// Why a topic string was rejected. [`kind`](Self::kind) says what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    input: String,
    kind: TopicErrorKind,
}

impl TopicError {
    pub(crate) fn new(input: &str, kind: TopicErrorKind) -> Self {
        Self { input: clip(input), kind }
    }

    /// What is wrong.
    pub fn kind(&self) -> TopicErrorKind {
        self.kind
    }
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "topic", &self.input, self.kind)
    }
}

impl std::error::Error for TopicError {}

/// Why a pattern string was rejected. [`kind`](Self::kind) says what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    input: String,
    kind: TopicErrorKind,
}

impl PatternError {
    pub(crate) fn new(input: &str, kind: TopicErrorKind) -> Self {
        Self { input: clip(input), kind }
    }

    /// What is wrong.
    pub fn kind(&self) -> TopicErrorKind {
        self.kind
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "pattern", &self.input, self.kind)
    }
}

impl std::error::Error for PatternError {}

/// An [`Alias`](crate::Alias) part is empty or too long.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AliasError {
    /// The named part (`"namespace"` or `"key"`) is empty.
    Empty(&'static str),
    /// The named part is longer than 255 bytes (its length).
    TooLong(&'static str, usize),
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasError::Empty(part) => write!(f, "invalid alias: empty {part}"),
            AliasError::TooLong(part, len) => {
                write!(f, "invalid alias: {part} of {len} bytes exceeds 255 bytes")
            }
        }
    }
}

impl std::error::Error for AliasError {}

/// Why a bus is closed: what closed it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its last publisher was dropped or closed: the exclusive
    /// [`Publisher`](crate::Publisher), or the last [`SharedPublisher`](crate::SharedPublisher)
    /// clone. A bus has one publisher for its whole life.
    PublisherDropped,
    /// [`Bus::close`](crate::Bus::close) or [`Bus::close_async`](crate::Bus::close_async)
    /// was called.
    CloseCalled,
    /// A dispatcher thread panicked (in a subscription's filter), which closes the bus.
    DispatcherPanicked,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::PublisherDropped => "its last publisher was dropped",
            CloseReason::CloseCalled => "`Bus::close` was called",
            CloseReason::DispatcherPanicked => "a dispatcher thread panicked",
        })
    }
}

/// [`BusError::Closed`]: which operation a closed bus refused, and why the bus is closed.
/// Its `Display` says both, for example "cannot subscribe: bus closed: its last publisher
/// was dropped".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedError {
    operation: &'static str,
    reason: CloseReason,
}

impl ClosedError {
    pub(crate) fn new(operation: &'static str, reason: CloseReason) -> Self {
        Self { operation, reason }
    }

    /// The refused operation, e.g. `"subscribe"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// Why the bus is closed.
    pub fn reason(&self) -> CloseReason {
        self.reason
    }
}

impl fmt::Display for ClosedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {}: bus closed: {}", self.operation, self.reason)
    }
}

impl std::error::Error for ClosedError {}

/// An operation on the bus that cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusError {
    /// The bus is closed, for good: it takes no new publisher or subscriber. The
    /// [`ClosedError`] names the operation and why the bus closed (its last publisher was
    /// dropped, or `Bus::close` was called).
    Closed(ClosedError),
    /// A publisher of this bus is alive: the exclusive [`Publisher`](crate::Publisher)
    /// (which rules out a second publisher of either kind), or a
    /// [`SharedPublisher`](crate::SharedPublisher) when the exclusive one was asked for
    /// (clone the shared one, or ask [`Bus::shared_publisher`](crate::Bus::shared_publisher)).
    PublisherTaken,
    /// A subscription option is out of bounds: the same [`ConfigError`] that
    /// [`BusBuilder::build`](crate::BusBuilder::build) returns for a builder field, so one
    /// `?` handles both (`From<ConfigError> for BusError`).
    Config(ConfigError),
    /// A subscription pattern is invalid (from [`Bus::subscribe_to`](crate::Bus::subscribe_to),
    /// or a `?` on [`Bus::subscription`](crate::Bus::subscription) in a function that returns
    /// `BusError`).
    Pattern(PatternError),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Closed(e) => e.fmt(f),
            BusError::PublisherTaken => f.write_str("the bus already has a publisher"),
            BusError::Config(e) => e.fmt(f),
            BusError::Pattern(e) => e.fmt(f),
        }
    }
}

impl BusError {
    /// Whether the error is `Closed`.
    pub fn is_closed(&self) -> bool {
        matches!(self, BusError::Closed(_))
    }

    /// Why the bus is closed, for a `Closed` error.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            BusError::Closed(e) => Some(e.reason()),
            _ => None,
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BusError::Config(e) => Some(e),
            BusError::Pattern(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for BusError {
    fn from(e: ConfigError) -> Self {
        BusError::Config(e)
    }
}

impl From<PatternError> for BusError {
    fn from(e: PatternError) -> Self {
        BusError::Pattern(e)
    }
}

/// [`Publisher::publish`](crate::Publisher::publish) failed: the bus is closed. The event is
/// handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct PublishError<T>(pub T);

impl<T> PublishError<T> {
    /// The event that was not published.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublishError(..)")
    }
}

impl<T> fmt::Display for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("publishing on a closed bus")
    }
}

impl<T> std::error::Error for PublishError<T> {}

/// [`Publisher::publish_to`](crate::Publisher::publish_to) failed; the payload is handed
/// back.
#[derive(Clone, PartialEq, Eq)]
pub enum PublishToError<T> {
    /// The topic text is not a valid topic (see [`Topic`](crate::Topic)).
    Topic(TopicError, T),
    /// The bus is closed.
    Closed(T),
}

impl<T> PublishToError<T> {
    /// The payload that was not published.
    pub fn into_inner(self) -> T {
        match self {
            Self::Topic(_, t) | Self::Closed(t) => t,
        }
    }

    /// Whether the bus is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_))
    }
}

impl<T> fmt::Debug for PublishToError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Topic(e, _) => f.debug_tuple("Topic").field(e).finish_non_exhaustive(),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PublishToError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Topic(e, _) => fmt::Display::fmt(e, f),
            Self::Closed(_) => f.write_str("publishing on a closed bus"),
        }
    }
}

impl<T> std::error::Error for PublishToError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Topic(e, _) => Some(e),
            Self::Closed(_) => None,
        }
    }
}

macro_rules! full_or_closed {
    ($(#[$doc:meta])* $name:ident, $full:ident, $is_full:ident, $full_msg:literal) => {
        $(#[$doc])*
        #[derive(PartialEq, Eq, Clone, Copy)]
        pub enum $name<T> {
            #[doc = concat!("The event could not be published: ", $full_msg, ".")]
            $full(T),
            /// The bus is closed.
            Closed(T),
        }

        impl<T> $name<T> {
            /// The event that was not published.
            pub fn into_inner(self) -> T {
                match self {
                    Self::$full(t) | Self::Closed(t) => t,
                }
            }

            #[doc = concat!("Whether the error is `", stringify!($full), "`.")]
            pub fn $is_full(&self) -> bool {
                matches!(self, Self::$full(_))
            }

            /// Whether the bus is closed.
            pub fn is_closed(&self) -> bool {
                matches!(self, Self::Closed(_))
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::$full(_) => f.write_str(concat!(stringify!($full), "(..)")),
                    Self::Closed(_) => f.write_str("Closed(..)"),
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::$full(_) => f.write_str($full_msg),
                    Self::Closed(_) => f.write_str("publishing on a closed bus"),
                }
            }
        }

        impl<T> std::error::Error for $name<T> {}

        impl<T> From<PublishError<T>> for $name<T> {
            fn from(e: PublishError<T>) -> Self {
                Self::Closed(e.0)
            }
        }
    };
}

full_or_closed!(
    /// [`Publisher::try_publish`](crate::Publisher::try_publish) failed; the event is handed back.
    TryPublishError,
    Full,
    is_full,
    "ring full"
);

full_or_closed!(
    /// [`Publisher::publish_timeout`](crate::Publisher::publish_timeout) failed; the event is
    /// handed back.
    PublishTimeoutError,
    Timeout,
    is_timeout,
    "timed out waiting for ring space"
);

/// [`Subscriber::recv`](crate::Subscriber::recv) and `recv_blocking` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The bus closed and this subscriber's queue is drained (or it was disconnected by
    /// `Overflow::Disconnect`).
    Closed,
    /// This many events were lost since the last receive. The subscription continues: the
    /// next call returns the next event.
    Lagged(u64),
}

/// [`Subscriber::try_recv`](crate::Subscriber::try_recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No event is queued right now.
    Empty,
    /// The bus closed and this subscriber's queue is drained.
    Closed,
    /// This many events were lost since the last receive.
    Lagged(u64),
}

/// [`Subscriber::recv_timeout`](crate::Subscriber::recv_timeout) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No event arrived in time.
    Timeout,
    /// The bus closed and this subscriber's queue is drained.
    Closed,
    /// This many events were lost since the last receive.
    Lagged(u64),
}

fn fmt_lagged(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    write!(f, "subscriber lagged by {n} event{}", if n == 1 { "" } else { "s" })
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecvError::Closed => f.write_str("bus closed"),
            RecvError::Lagged(n) => fmt_lagged(f, n),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TryRecvError::Empty => f.write_str("no event queued"),
            TryRecvError::Closed => f.write_str("bus closed"),
            TryRecvError::Lagged(n) => fmt_lagged(f, n),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for an event"),
            RecvTimeoutError::Closed => f.write_str("bus closed"),
            RecvTimeoutError::Lagged(n) => fmt_lagged(f, n),
        }
    }
}

impl std::error::Error for RecvError {}
impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}
