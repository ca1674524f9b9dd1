//! Topics: dot-separated tokens such as `orders.eu.created`.
//!
//! # Rules
//! - At least one token; tokens are separated by `.` and none is empty (so no leading,
//!   trailing or doubled dots).
//! - A token is printable ASCII (`!`..=`~`) except `.`, `*` and `>`, which are reserved
//!   for patterns. No spaces, no control bytes, no non-ASCII.
//! - At most [`Topic::MAX_LEN`] bytes and [`Topic::MAX_TOKENS`] tokens.
//!
//! These are the NATS subject rules, so topics carry between ringcast and NATS unchanged.
//! A `Topic` is validated once, at construction, and is cheap to clone (one shared
//! allocation).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{TopicError, TopicErrorKind};

/// A validated event topic. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The longest topic, in bytes.
    pub const MAX_LEN: usize = 255;
    /// The most tokens a topic may have.
    pub const MAX_TOKENS: usize = 32;

    /// Validates `s` as a topic.
    ///
    /// ```
    /// use ringcast::Topic;
    /// assert_eq!(Topic::new("orders.eu.created")?.as_str(), "orders.eu.created");
    /// assert_eq!(
    ///     Topic::new("orders..created").unwrap_err().to_string(),
    ///     r#"invalid topic "orders..created": empty token at byte 7"#
    /// );
    /// # Ok::<(), ringcast::TopicError>(())
    /// ```
    pub fn new(s: &str) -> Result<Topic, TopicError> {
        validate(s)?;
        Ok(Topic(Arc::from(s)))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

fn validate(s: &str) -> Result<(), TopicError> {
    let err = |kind| Err(TopicError::new(s, kind));
    if s.is_empty() {
        return err(TopicErrorKind::Empty);
    }
    if s.len() > Topic::MAX_LEN {
        return err(TopicErrorKind::TooLong);
    }
    let mut tokens = 1;
    let mut token_start = 0;
    for (at, &byte) in s.as_bytes().iter().enumerate() {
        match byte {
            b'.' => {
                if at == token_start {
                    return err(TopicErrorKind::EmptyToken(at));
                }
                tokens += 1;
                if tokens > Topic::MAX_TOKENS {
                    return err(TopicErrorKind::TooManyTokens);
                }
                token_start = at + 1;
            }
            b'*' | b'>' => return err(TopicErrorKind::InvalidByte { byte, at }),
            b'!'..=b'~' => {}
            _ => return err(TopicErrorKind::InvalidByte { byte, at }),
        }
    }
    if token_start == s.len() {
        return err(TopicErrorKind::EmptyToken(token_start));
    }
    Ok(())
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let ok = ["a", "orders.eu.created", "$SYS.stats", "a-b_c.d:e", "x.y.z.w"];
        for s in ok {
            assert_eq!(Topic::new(s).unwrap().as_str(), s, "{s}");
        }
        let max = ["a"; 32].join(".");
        assert!(Topic::new(&max).is_ok());
        let cases: &[(&str, TopicErrorKind)] = &[
            ("", TopicErrorKind::Empty),
            (".a", TopicErrorKind::EmptyToken(0)),
            ("a.", TopicErrorKind::EmptyToken(2)),
            ("a..b", TopicErrorKind::EmptyToken(2)),
            ("a b", TopicErrorKind::InvalidByte { byte: b' ', at: 1 }),
            ("a.*", TopicErrorKind::InvalidByte { byte: b'*', at: 2 }),
            ("a.>", TopicErrorKind::InvalidByte { byte: b'>', at: 2 }),
            ("é", TopicErrorKind::InvalidByte { byte: 0xc3, at: 0 }),
            ("a\n", TopicErrorKind::InvalidByte { byte: b'\n', at: 1 }),
        ];
        for (s, kind) in cases {
            assert_eq!(Topic::new(s).unwrap_err().kind(), *kind, "{s:?}");
        }
        assert_eq!(Topic::new(&"a".repeat(256)).unwrap_err().kind(), TopicErrorKind::TooLong);
        assert!(Topic::new(&"a".repeat(255)).is_ok());
        let too_many = ["a"; 33].join(".");
        assert_eq!(Topic::new(&too_many).unwrap_err().kind(), TopicErrorKind::TooManyTokens);
        assert_eq!(
            Topic::new(&"a".repeat(300)).unwrap_err().to_string(),
            format!("invalid topic {:?}: topic exceeds 255 bytes", "a".repeat(64))
        );
    }
}
