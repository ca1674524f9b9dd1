//! Topics and patterns: dot-separated tokens, matched without allocating or re-parsing.
//!
//! The rules (NATS subjects, so topics and patterns carry between shardcast and NATS
//! unchanged) are in [`Topic`]'s docs, where users read them.
//!
//! # Representation
//! Both types are validated once and store their token boundaries (`ends[i]`, the byte
//! offset where token `i` ends; 255 bytes fit a `u8`), so [`Pattern::matches`] compares
//! token slices directly. `Topic` also stores its hash, and both are one shared allocation.
//!
//! # Interning
//! The first [`Topic::INTERN_LIMIT`] distinct topics a process validates are interned: kept for
//! the life of the process in one table, so that cloning and dropping such a topic is a
//! pointer copy, and a publish touches no reference count on a line that the threads
//! dropping events write. Past the limit, topics are reference-counted (`Arc`), which is
//! slower but just as correct. [`Topic::new`] looks the text up before it parses: a hot
//! topic is validated once.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::str::FromStr;
// std's lock, not `crate::sync`: the table is process-wide, outside any loom model.
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::error::{
    PatternError, TopicError, TopicErrorKind, TOPIC_MAX_LEN as MAX_LEN,
    TOPIC_MAX_TOKENS as MAX_TOKENS,
};

const SYS: &str = "$SYS";

/// See [`Topic::INTERN_LIMIT`].
const INTERN_LIMIT: usize = 4096;

/// Token boundaries of a validated topic or pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bounds {
    /// Number of tokens, 1..=32.
    count: u8,
    /// `ends[i]` is the byte offset just past token `i`.
    ends: [u8; MAX_TOKENS],
}

impl Bounds {
    fn token<'a>(&self, text: &'a str, i: usize) -> &'a [u8] {
        debug_assert!(i < self.count as usize);
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize + 1 };
        &text.as_bytes()[start..self.ends[i] as usize]
    }
}

/// Parses `s` into token boundaries. With `wildcards`, `*` and `>` are accepted as whole
/// tokens (and `>` only last); the bit mask of `*` tokens and whether the last token is
/// `>` come back too.
fn parse(s: &str, wildcards: bool) -> Result<(Bounds, u32, bool), TopicErrorKind> {
    if s.is_empty() {
        return Err(TopicErrorKind::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(TopicErrorKind::TooLong);
    }
    let bytes = s.as_bytes();
    let mut bounds = Bounds { count: 0, ends: [0; MAX_TOKENS] };
    let mut stars = 0u32;
    let mut tail = false;
    let mut start = 0;
    // One pass over the bytes plus a virtual '.' at the end closes the last token.
    for at in 0..=bytes.len() {
        let byte = bytes.get(at).copied().unwrap_or(b'.');
        match byte {
            b'.' => {
                if at == start {
                    return Err(TopicErrorKind::EmptyToken(at));
                }
                let index = bounds.count as usize;
                if index == MAX_TOKENS {
                    return Err(TopicErrorKind::TooManyTokens);
                }
                if tail {
                    // A `>` token was followed by another token.
                    return Err(TopicErrorKind::TailNotLast(start - 2));
                }
                match &bytes[start..at] {
                    b"*" if wildcards => stars |= 1 << index,
                    b">" if wildcards => tail = true,
                    _ => {}
                }
                bounds.ends[index] = at as u8;
                bounds.count += 1;
                start = at + 1;
            }
            b'*' | b'>' if wildcards => {
                // Only as a whole token: the token must be this one byte.
                let whole = at == start && matches!(bytes.get(at + 1), None | Some(b'.'));
                if !whole {
                    return Err(TopicErrorKind::PartialWildcard { byte, at });
                }
            }
            b'!'..=b'~' if byte != b'*' && byte != b'>' => {}
            _ => return Err(TopicErrorKind::InvalidByte { byte, at }),
        }
    }
    Ok((bounds, stars, tail))
}

struct TopicInner {
    hash: u64,
    /// The first token is `$SYS`: asked per event by the publisher's and the shards' topic
    /// counters, so answered without reading `text` (a line of its own).
    system: bool,
    bounds: Bounds,
    text: Box<str>,
}

/// A validated event topic. Cheap to clone (a pointer copy for the first
/// [`Topic::INTERN_LIMIT`] distinct topics of a process); hash precomputed.
///
/// # Rules (NATS subjects)
/// These are the NATS subject rules, so topics and patterns carry between shardcast and NATS
/// unchanged.
/// - A topic is one or more tokens separated by `.`; no token is empty (so no leading,
///   trailing or doubled dots).
/// - A token is printable ASCII (`!`..=`~`) except `.`, `*` and `>`: no spaces, no control
///   bytes, no non-ASCII.
/// - At most [`Topic::MAX_LEN`] (255) bytes and [`Topic::MAX_TOKENS`] (32) tokens.
/// - A pattern follows the same rules, plus two wildcards, each a whole token:
///   `*` matches exactly one token, `>` matches one or more trailing tokens and may only be
///   the last token. `orders.*.created` matches `orders.eu.created`; `orders.>` matches
///   `orders.eu` and `orders.eu.created` but not `orders`; `>` matches every topic.
/// - Topics whose first token is `$SYS` are reserved for the bus's own events:
///   [`Topic::new`] refuses them ([`TopicErrorKind::Reserved`]); patterns may name them
///   (`$SYS.>`) to subscribe.
pub struct Topic(Repr);

enum Repr {
    /// In the process's intern table, never freed: clones copy the reference.
    Interned(&'static TopicInner),
    /// Past [`Topic::INTERN_LIMIT`]: reference-counted.
    Counted(Arc<TopicInner>),
}

impl Clone for Topic {
    #[inline]
    fn clone(&self) -> Self {
        Topic(match &self.0 {
            Repr::Interned(inner) => Repr::Interned(inner),
            Repr::Counted(inner) => Repr::Counted(Arc::clone(inner)),
        })
    }
}

/// The intern table: text → topic. Only `Topic::new` and `Topic::system` touch it.
fn interned() -> &'static RwLock<HashMap<&'static str, &'static TopicInner>> {
    static TABLE: OnceLock<RwLock<HashMap<&'static str, &'static TopicInner>>> = OnceLock::new();
    TABLE.get_or_init(|| RwLock::new(HashMap::new()))
}

impl Topic {
    /// The longest topic, in bytes.
    pub const MAX_LEN: usize = MAX_LEN;
    /// The most tokens a topic may have.
    pub const MAX_TOKENS: usize = MAX_TOKENS;
    /// Distinct topics interned per process: the first this many distinct topics made
    /// (by [`Topic::new`] or a publish by text) are kept for the life of the process, at
    /// most about 300 bytes each (about 1.2 MiB in all), and cloning or dropping them
    /// touches no reference count. Later topics are reference-counted: correct, a little
    /// slower to publish.
    pub const INTERN_LIMIT: usize = INTERN_LIMIT;

    /// Validates `s` as a topic (see [`Topic`] for the rules).
    ///
    /// ```
    /// use shardcast::Topic;
    /// assert_eq!(Topic::new("orders.eu.created")?.as_str(), "orders.eu.created");
    /// assert_eq!(
    ///     Topic::new("orders..created").unwrap_err().to_string(),
    ///     r#"invalid topic "orders..created": empty token at byte 7"#
    /// );
    /// assert!(Topic::new("$SYS.stats").is_err()); // reserved for the bus
    /// # Ok::<(), shardcast::TopicError>(())
    /// ```
    ///
    /// # Errors
    /// What is wrong and where.
    pub fn new(s: &str) -> Result<Topic, TopicError> {
        let topic = Self::parse(s)?;
        if topic.is_system() {
            return Err(TopicError::new(s, TopicErrorKind::Reserved));
        }
        Ok(topic)
    }

    /// A `$SYS` topic, for the bus's own events.
    pub(crate) fn system(s: &str) -> Result<Topic, TopicError> {
        let topic = Self::parse(s)?;
        debug_assert!(topic.is_system());
        Ok(topic)
    }

    fn parse(s: &str) -> Result<Topic, TopicError> {
        // A panic while the lock was held cannot leave the map half-updated (one insert),
        // so a poisoned lock is used as is.
        if let Some(inner) = interned().read().unwrap_or_else(PoisonError::into_inner).get(s) {
            return Ok(Topic(Repr::Interned(inner)));
        }
        let (bounds, _, _) = parse(s, false).map_err(|kind| TopicError::new(s, kind))?;
        let hash = TOPIC_HASHER.hash_one(s);
        let system = bounds.token(s, 0) == SYS.as_bytes();
        let inner = TopicInner { hash, system, bounds, text: s.into() };
        let mut table = interned().write().unwrap_or_else(PoisonError::into_inner);
        if let Some(inner) = table.get(s) {
            // Interned by another thread meanwhile.
            return Ok(Topic(Repr::Interned(inner)));
        }
        if table.len() >= INTERN_LIMIT {
            return Ok(Topic(Repr::Counted(Arc::new(inner))));
        }
        // Leaked on purpose: interned topics live as long as the process (bounded by
        // INTERN_LIMIT), reachable from the table.
        let inner: &'static TopicInner = Box::leak(Box::new(inner));
        table.insert(&inner.text, inner);
        Ok(Topic(Repr::Interned(inner)))
    }

    #[inline]
    fn inner(&self) -> &TopicInner {
        match &self.0 {
            Repr::Interned(inner) => inner,
            Repr::Counted(inner) => inner,
        }
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.inner().text
    }

    /// Number of tokens.
    pub fn token_count(&self) -> usize {
        self.inner().bounds.count as usize
    }

    /// Token `i`, if there is one.
    pub fn token(&self, i: usize) -> Option<&str> {
        (i < self.token_count()).then(|| {
            let inner = self.inner();
            let bytes = inner.bounds.token(&inner.text, i);
            // Tokens are ASCII (validated), so any token boundary is a char boundary.
            std::str::from_utf8(bytes).unwrap_or_default()
        })
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        (0..self.token_count()).filter_map(|i| self.token(i))
    }

    /// Whether `other` is this very topic (the same allocation): a pointer compare.
    pub(crate) fn same(&self, other: &Topic) -> bool {
        std::ptr::eq(self.inner(), other.inner())
    }

    /// Whether this is a `$SYS` topic (the bus's own events).
    pub fn is_system(&self) -> bool {
        self.inner().system
    }

    /// The precomputed hash (fixed per process).
    #[cfg(test)]
    pub(crate) fn precomputed_hash(&self) -> u64 {
        self.inner().hash
    }

    /// Whether this topic is interned (see [`Topic::INTERN_LIMIT`]): its clones and drops
    /// touch no reference count.
    pub fn is_interned(&self) -> bool {
        matches!(self.0, Repr::Interned(_))
    }
}

/// Fixed keys: topic hashes must agree across threads (every shard caches by topic).
static TOPIC_HASHER: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

impl PartialEq for Topic {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.inner(), other.inner());
        std::ptr::eq(a, b) || (a.hash == b.hash && a.text == b.text)
    }
}

impl Eq for Topic {}

impl Hash for Topic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner().hash);
    }
}

impl PartialOrd for Topic {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Topic {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::new(s)
    }
}

impl TryFrom<&str> for Topic {
    type Error = TopicError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Topic::new(s)
    }
}

struct PatternInner {
    bounds: Bounds,
    /// Bit `i` set: token `i` is `*`.
    stars: u32,
    /// The last token is `>`.
    tail: bool,
    text: Box<str>,
}

/// A subscription pattern: a topic with `*` (one token) and `>` (one or more trailing
/// tokens) wildcards; the rules are in [`Topic`]. Cheap to clone.
#[derive(Clone)]
pub struct Pattern(Arc<PatternInner>);

impl Pattern {
    /// Validates `s` as a pattern (see [`Topic`] for the rules).
    ///
    /// ```
    /// use shardcast::{Pattern, Topic};
    /// let p = Pattern::new("orders.*.created")?;
    /// assert!(p.matches(&Topic::new("orders.eu.created")?));
    /// assert!(!p.matches(&Topic::new("orders.eu.cancelled")?));
    /// assert_eq!(
    ///     Pattern::new("orders.>.created").unwrap_err().to_string(),
    ///     r#"invalid pattern "orders.>.created": '>' must be the last token (byte 7)"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// What is wrong and where.
    pub fn new(s: &str) -> Result<Pattern, PatternError> {
        let (bounds, stars, tail) = parse(s, true).map_err(|kind| PatternError::new(s, kind))?;
        Ok(Pattern(Arc::new(PatternInner { bounds, stars, tail, text: s.into() })))
    }

    /// The pattern that matches every topic, `>`.
    pub fn any() -> Pattern {
        Pattern::new(">").unwrap_or_else(|_| unreachable!("'>' is a valid pattern"))
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// Whether the pattern has no wildcard (it matches exactly one topic).
    pub fn is_literal(&self) -> bool {
        self.0.stars == 0 && !self.0.tail
    }

    /// Whether `topic` matches. Allocates nothing; compares precomputed token slices.
    pub fn matches(&self, topic: &Topic) -> bool {
        let p = &*self.0;
        let t = topic.inner();
        let (pn, tn) = (p.bounds.count as usize, t.bounds.count as usize);
        let literal_tokens = if p.tail {
            // `>` needs at least one token in its place.
            if tn < pn {
                return false;
            }
            pn - 1
        } else {
            if tn != pn {
                return false;
            }
            pn
        };
        (0..literal_tokens).all(|i| {
            p.stars & (1 << i) != 0 || p.bounds.token(&p.text, i) == t.bounds.token(&t.text, i)
        })
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::new(s)
    }
}

impl TryFrom<&str> for Pattern {
    type Error = PatternError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Pattern::new(s)
    }
}

/// A `Hasher` that passes a precomputed `u64` through: maps keyed by [`Topic`] hash it once,
/// at construction, not per lookup.
#[derive(Default, Clone, Copy)]
pub(crate) struct PrecomputedHasher(u64);

impl Hasher for PrecomputedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type BuildPrecomputed = std::hash::BuildHasherDefault<PrecomputedHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_tokens() {
        let t = Topic::new("orders.eu.created").unwrap();
        assert_eq!(t.tokens().collect::<Vec<_>>(), ["orders", "eu", "created"]);
        assert_eq!(t.token(3), None);
        let same = Topic::new("orders.eu.created").unwrap();
        assert_eq!(t, same);
        assert_eq!(t.precomputed_hash(), same.precomputed_hash());
    }

    #[test]
    fn system_topics() {
        assert_eq!(Topic::new("$SYS.stats").unwrap_err().kind(), TopicErrorKind::Reserved);
        assert_eq!(Topic::new("$SYS").unwrap_err().kind(), TopicErrorKind::Reserved);
        assert!(!Topic::new("$SYSTEM.x").unwrap().is_system());
        assert!(!Topic::new("a.$SYS").unwrap().is_system());
        assert!(Topic::system("$SYS.stats").unwrap().is_system());
        assert!(Topic::system("$SYS").unwrap().is_system());
        assert!(Pattern::new("$SYS.>").unwrap().matches(&Topic::system("$SYS.stats").unwrap()));
    }
}
