//! Topics and patterns against a reference validator and matcher written from the rules in
//! the `topic` module docs (NATS subjects), deliberately simple: split on `.`, look at each
//! token, compare token by token.
//!
//! For any input: parsing never panics; the library accepts exactly what the reference
//! accepts; an error names a rule the input really breaks, at a position where it breaks
//! it; a valid value round-trips through `Display`/`as_str` and reports the reference's
//! tokens; and `Pattern::matches` agrees with the reference matcher.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use arbitrary::Arbitrary;
use shardcast::{Pattern, Topic, TopicErrorKind};

use crate::support::decode_and_check;
use crate::{Bytes, Verdict};

/// Longest string (in bytes) a check runs; longer inputs are rejected. Twice the longest
/// valid topic, so every length rule is still exercised.
pub const MAX_LEN: usize = 2 * Topic::MAX_LEN + 2;

/// One topic string and one pattern string.
#[derive(Debug, Clone, Arbitrary)]
pub enum Input {
    /// Arbitrary bytes (not UTF-8: replaced lossily, which makes them non-ASCII).
    Raw {
        /// Topic bytes.
        topic: Bytes,
        /// Pattern bytes.
        pattern: Bytes,
    },
    /// Strings joined from a tiny token alphabet, so valid pairs and matches are common.
    Tokens {
        /// Topic tokens.
        topic: Vec<Token>,
        /// Pattern tokens.
        pattern: Vec<Token>,
    },
}

/// A token of the tiny alphabet.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Token {
    /// `a`.
    A,
    /// `b`.
    B,
    /// `$SYS` (reserved as a topic's first token).
    Sys,
    /// `*`.
    Star,
    /// `>`.
    Tail,
    /// The empty token.
    Empty,
    /// `x` repeated: reaches the length limit.
    Long(u8),
    /// Two arbitrary bytes (lossy UTF-8).
    Bytes([u8; 2]),
}

impl Token {
    fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Token::A => out.push(b'a'),
            Token::B => out.push(b'b'),
            Token::Sys => out.extend_from_slice(b"$SYS"),
            Token::Star => out.push(b'*'),
            Token::Tail => out.push(b'>'),
            Token::Empty => {}
            Token::Long(n) => out.extend(std::iter::repeat_n(b'x', usize::from(n))),
            Token::Bytes(b) => out.extend_from_slice(&b),
        }
    }
}

fn join(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        t.push_to(&mut out);
    }
    out
}

/// Decodes `data` as the fuzz target does and runs [`check`].
pub fn check_bytes(data: &[u8]) -> Verdict {
    decode_and_check(data, check)
}

/// Runs every comparison on one input; panics on the first disagreement.
pub fn check(input: &Input) -> Verdict {
    let (topic, pattern) = match input {
        Input::Raw { topic, pattern } => (topic.0.clone(), pattern.0.clone()),
        Input::Tokens { topic, pattern } => {
            if topic.len() > 4 * Topic::MAX_TOKENS || pattern.len() > 4 * Topic::MAX_TOKENS {
                return Verdict::Rejected;
            }
            (join(topic), join(pattern))
        }
    };
    if topic.len() > MAX_LEN || pattern.len() > MAX_LEN {
        return Verdict::Rejected;
    }
    let topic = String::from_utf8_lossy(&topic);
    let pattern = String::from_utf8_lossy(&pattern);
    check_strings(&topic, &pattern);
    Verdict::Checked
}

/// The comparisons for one topic string and one pattern string.
pub fn check_strings(topic: &str, pattern: &str) {
    let t = check_topic(topic);
    let p = check_pattern(pattern);
    // Also parse each string as the other kind: more coverage from the same input.
    let t_as_p = check_pattern(topic);
    let p_as_t = check_topic(pattern);
    // Every valid topic is a valid pattern (a literal one), and matches itself.
    for (t, as_p) in [(&t, &t_as_p), (&p_as_t, &p)] {
        if let Some(t) = t {
            let as_p = as_p.as_ref().unwrap_or_else(|| panic!("topic {t:?} is not a pattern"));
            assert!(as_p.is_literal(), "{as_p:?} has no wildcard but is not literal");
            assert!(as_p.matches(t), "literal pattern {as_p:?} does not match its topic");
        }
    }
    for p in [&p, &t_as_p].into_iter().flatten() {
        for t in [&t, &p_as_t].into_iter().flatten() {
            let want = reference_matches(&split(p.as_str()), &split(t.as_str()));
            assert_eq!(p.matches(t), want, "{p:?}.matches({t:?})");
        }
    }
}

fn split(s: &str) -> Vec<&str> {
    s.split('.').collect()
}

/// The reference matcher, for valid inputs: `*` is any one token, `>` (only last) is one
/// or more tokens, anything else is itself.
pub fn reference_matches(pattern: &[&str], topic: &[&str]) -> bool {
    match (pattern, topic) {
        ([], []) => true,
        ([">"], [_, ..]) => true,
        ([p, p_rest @ ..], [t, t_rest @ ..]) => {
            (*p == "*" || p == t) && reference_matches(p_rest, t_rest)
        }
        _ => false,
    }
}

/// Which kind of string the rules are applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Topic,
    Pattern,
}

/// Every rule `s` breaks, as the library's error kinds (with every position that breaks
/// it). Empty means `s` is valid.
fn violations(s: &str, kind: Kind) -> Vec<TopicErrorKind> {
    let wildcards = kind == Kind::Pattern;
    let mut found = Vec::new();
    if s.is_empty() {
        return vec![TopicErrorKind::Empty];
    }
    if s.len() > Topic::MAX_LEN {
        found.push(TopicErrorKind::TooLong);
    }
    let tokens = split(s);
    if tokens.len() > Topic::MAX_TOKENS {
        found.push(TopicErrorKind::TooManyTokens);
    }
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        if token.is_empty() {
            found.push(TopicErrorKind::EmptyToken(start));
        }
        let whole_wildcard = wildcards && (*token == "*" || *token == ">");
        if whole_wildcard && *token == ">" && !last {
            found.push(TopicErrorKind::TailNotLast(start));
        }
        if !whole_wildcard {
            for (offset, byte) in token.bytes().enumerate() {
                let at = start + offset;
                let printable = (b'!'..=b'~').contains(&byte);
                let wildcard = byte == b'*' || byte == b'>';
                if wildcard && wildcards {
                    found.push(TopicErrorKind::PartialWildcard { byte, at });
                } else if !printable || wildcard {
                    found.push(TopicErrorKind::InvalidByte { byte, at });
                }
            }
        }
        start += token.len() + 1;
    }
    if kind == Kind::Topic && tokens[0] == "$SYS" {
        found.push(TopicErrorKind::Reserved);
    }
    found
}

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn check_topic(s: &str) -> Option<Topic> {
    let broken = violations(s, Kind::Topic);
    match Topic::new(s) {
        Ok(t) => {
            assert!(broken.is_empty(), "topic {s:?} accepted but breaks {broken:?}");
            assert_eq!(t.as_str(), s);
            assert_eq!(t.to_string(), s);
            let displayed = t.to_string();
            let again = Topic::new(&displayed).expect("a topic's text is a valid topic");
            assert_eq!(again, t);
            assert_eq!(hash_of(&again), hash_of(&t), "equal topics hash differently: {s:?}");
            assert_eq!(s.parse::<Topic>().ok().as_ref(), Some(&t));
            let tokens = split(s);
            assert_eq!(t.token_count(), tokens.len(), "{s:?}");
            assert_eq!(t.tokens().collect::<Vec<_>>(), tokens, "{s:?}");
            assert_eq!(t.token(tokens.len()), None);
            assert!(!t.is_system());
            Some(t)
        }
        Err(e) => {
            assert!(!broken.is_empty(), "valid topic {s:?} rejected: {e}");
            assert!(
                broken.contains(&e.kind()),
                "topic {s:?}: error {:?} ({e}) is none of the rules it breaks: {broken:?}",
                e.kind()
            );
            assert!(e.to_string().starts_with("invalid topic \""), "{e}");
            None
        }
    }
}

fn check_pattern(s: &str) -> Option<Pattern> {
    let broken = violations(s, Kind::Pattern);
    match Pattern::new(s) {
        Ok(p) => {
            assert!(broken.is_empty(), "pattern {s:?} accepted but breaks {broken:?}");
            assert_eq!(p.as_str(), s);
            assert_eq!(p.to_string(), s);
            let displayed = p.to_string();
            let again = Pattern::new(&displayed).expect("a pattern's text is a valid pattern");
            assert_eq!(again, p);
            assert_eq!(hash_of(&again), hash_of(&p));
            assert_eq!(s.parse::<Pattern>().ok().as_ref(), Some(&p));
            let literal = split(s).iter().all(|t| *t != "*" && *t != ">");
            assert_eq!(p.is_literal(), literal, "{s:?}");
            Some(p)
        }
        Err(e) => {
            assert!(!broken.is_empty(), "valid pattern {s:?} rejected: {e}");
            assert!(
                broken.contains(&e.kind()),
                "pattern {s:?}: error {:?} ({e}) is none of the rules it breaks: {broken:?}",
                e.kind()
            );
            assert!(e.to_string().starts_with("invalid pattern \""), "{e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matcher_follows_the_docs() {
        let m = |p: &str, t: &str| reference_matches(&split(p), &split(t));
        assert!(m("orders.*.created", "orders.eu.created"));
        assert!(m("orders.>", "orders.eu"));
        assert!(m("orders.>", "orders.eu.created"));
        assert!(!m("orders.>", "orders"));
        assert!(m(">", "a.b.c"));
        assert!(!m("*", "a.b"));
    }

    #[test]
    fn reference_validator_follows_the_docs() {
        use TopicErrorKind::*;
        assert_eq!(violations("a.b", Kind::Topic), []);
        assert_eq!(violations("a.*", Kind::Topic), [InvalidByte { byte: b'*', at: 2 }]);
        assert_eq!(violations("a.>.", Kind::Pattern), [TailNotLast(2), EmptyToken(4)]);
        assert_eq!(violations("a*", Kind::Pattern), [PartialWildcard { byte: b'*', at: 1 }]);
        assert_eq!(violations("$SYS.x", Kind::Topic), [Reserved]);
        assert_eq!(violations("$SYS.x", Kind::Pattern), []);
    }
}
