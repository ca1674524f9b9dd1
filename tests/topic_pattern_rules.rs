//! Promise: topics and patterns follow the NATS subject rules, reject bad input with an
//! error that says what and where, and match exactly as the rules say.

use shardcast::{Pattern, Topic, TopicErrorKind};

/// (input, Ok(()) if a valid topic, else the error kind).
fn topic_cases() -> Vec<(String, Result<(), TopicErrorKind>)> {
    use TopicErrorKind::*;
    let mut cases: Vec<(String, Result<(), TopicErrorKind>)> = vec![
        ("a".into(), Ok(())),
        ("orders".into(), Ok(())),
        ("orders.eu.created".into(), Ok(())),
        ("a-b_c.d:e".into(), Ok(())),
        ("UPPER.lower.123".into(), Ok(())),
        ("$SYSTEM.not.reserved".into(), Ok(())),
        ("x.$SYS".into(), Ok(())),
        ("!#%&'()+,-/;<=?@[]^_`{|}~".into(), Ok(())),
        ("".into(), Err(Empty)),
        (".".into(), Err(EmptyToken(0))),
        (".a".into(), Err(EmptyToken(0))),
        ("a.".into(), Err(EmptyToken(2))),
        ("a..b".into(), Err(EmptyToken(2))),
        ("a.b..".into(), Err(EmptyToken(4))),
        ("a b".into(), Err(InvalidByte { byte: b' ', at: 1 })),
        ("a\tb".into(), Err(InvalidByte { byte: b'\t', at: 1 })),
        ("a\n".into(), Err(InvalidByte { byte: b'\n', at: 1 })),
        ("a\0".into(), Err(InvalidByte { byte: 0, at: 1 })),
        ("a\x7f".into(), Err(InvalidByte { byte: 0x7f, at: 1 })),
        ("é".into(), Err(InvalidByte { byte: 0xc3, at: 0 })),
        ("orders.ü".into(), Err(InvalidByte { byte: 0xc3, at: 7 })),
        ("a.*".into(), Err(InvalidByte { byte: b'*', at: 2 })),
        ("a.>".into(), Err(InvalidByte { byte: b'>', at: 2 })),
        ("a*".into(), Err(InvalidByte { byte: b'*', at: 1 })),
        ("$SYS".into(), Err(Reserved)),
        ("$SYS.stats".into(), Err(Reserved)),
        ("a".repeat(255), Ok(())),
        ("a".repeat(256), Err(TooLong)),
        (["a"; 32].join("."), Ok(())),
        (["a"; 33].join("."), Err(TooManyTokens)),
    ];
    // 255 bytes in 128 tokens: too many tokens, not too long.
    cases.push((["b"; 128].join("."), Err(TooManyTokens)));
    cases
}

fn pattern_cases() -> Vec<(String, Result<(), TopicErrorKind>)> {
    use TopicErrorKind::*;
    vec![
        (">".into(), Ok(())),
        ("*".into(), Ok(())),
        ("orders.>".into(), Ok(())),
        ("orders.*.created".into(), Ok(())),
        ("*.*.*".into(), Ok(())),
        ("$SYS.>".into(), Ok(())),
        ("a.b".into(), Ok(())),
        ("*.>".into(), Ok(())),
        ("".into(), Err(Empty)),
        ("a..b".into(), Err(EmptyToken(2))),
        (".>".into(), Err(EmptyToken(0))),
        ("a.>.".into(), Err(EmptyToken(4))),
        ("orders.>.created".into(), Err(TailNotLast(7))),
        (">.a".into(), Err(TailNotLast(0))),
        ("a*".into(), Err(PartialWildcard { byte: b'*', at: 1 })),
        ("*a".into(), Err(PartialWildcard { byte: b'*', at: 0 })),
        ("a.b>".into(), Err(PartialWildcard { byte: b'>', at: 3 })),
        ("a.**".into(), Err(PartialWildcard { byte: b'*', at: 2 })),
        ("a .>".into(), Err(InvalidByte { byte: b' ', at: 1 })),
        ("ü.>".into(), Err(InvalidByte { byte: 0xc3, at: 0 })),
        ("*".to_owned() + &".*".repeat(32), Err(TooManyTokens)),
        ("a".repeat(256), Err(TooLong)),
    ]
}

#[test]
fn topic_rules() {
    let cases = topic_cases();
    for (input, want) in &cases {
        let got = Topic::new(input).map(|t| assert_eq!(t.as_str(), input)).map_err(|e| e.kind());
        assert_eq!(&got, want, "topic {input:?}");
        // FromStr and TryFrom agree with new.
        assert_eq!(input.parse::<Topic>().is_ok(), want.is_ok());
        assert_eq!(Topic::try_from(input.as_str()).is_ok(), want.is_ok());
    }
    let patterns = pattern_cases();
    assert!(cases.len() + patterns.len() >= 40, "the table is the specification: keep it big");
}

#[test]
fn pattern_rules() {
    for (input, want) in pattern_cases() {
        let got = Pattern::new(&input).map(|p| assert_eq!(p.as_str(), input)).map_err(|e| e.kind());
        assert_eq!(got, want, "pattern {input:?}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let cases = [
        (
            Pattern::new("a..b").unwrap_err().to_string(),
            r#"invalid pattern "a..b": empty token at byte 2"#,
        ),
        (
            Pattern::new("a.>.b").unwrap_err().to_string(),
            r#"invalid pattern "a.>.b": '>' must be the last token (byte 2)"#,
        ),
        (
            Topic::new(&"a".repeat(256)).unwrap_err().to_string(),
            &format!("invalid topic {:?}: topic exceeds 255 bytes", "a".repeat(64)),
        ),
        (
            Topic::new("$SYS.stats").unwrap_err().to_string(),
            r#"invalid topic "$SYS.stats": '$SYS' topics are reserved for the bus"#,
        ),
        (
            Topic::new("a b").unwrap_err().to_string(),
            r#"invalid topic "a b": invalid byte ' ' at byte 1"#,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn matching() {
    let table: &[(&str, &str, bool)] = &[
        (">", "a", true),
        (">", "a.b.c", true),
        ("*", "a", true),
        ("*", "a.b", false),
        ("orders.>", "orders", false),
        ("orders.>", "orders.eu", true),
        ("orders.>", "orders.eu.created", true),
        ("orders.*", "orders.eu", true),
        ("orders.*", "orders.eu.created", false),
        ("orders.*.created", "orders.eu.created", true),
        ("orders.*.created", "orders.eu.cancelled", false),
        ("orders.*.created", "orders.created", false),
        ("*.eu.>", "orders.eu.created.v2", true),
        ("*.eu.>", "orders.us.created", false),
        ("a.b", "a.b", true),
        ("a.b", "a.bc", false),
        ("a.b", "ab", false),
        ("a.b", "a.b.c", false),
        ("*.>", "a", false),
        ("*.>", "a.b", true),
        ("$SYS.>", "x.y", false),
    ];
    for &(pattern, topic, want) in table {
        let p = Pattern::new(pattern).unwrap();
        let t = Topic::new(topic).unwrap();
        assert_eq!(p.matches(&t), want, "{pattern} vs {topic}");
    }
}
