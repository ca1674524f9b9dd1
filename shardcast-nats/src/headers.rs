//! The NATS headers an export writes and an import reads.
//!
//! An export writes one header, `Shardcast`, with five or six fields separated by single
//! spaces, and `Shardcast-Alias` when the event has an alias:
//!
//! ```text
//! Shardcast: <origin> <export> <export-seq> <seq> <published-at> [<route>]
//! Shardcast-Alias: ["<namespace>","<key>"]
//! ```
//!
//! | field | value | required on import |
//! |---|---|---|
//! | `origin` | the exporting bridge's origin id (a UUID) | yes |
//! | `export` | the export's number within its bridge | yes |
//! | `export-seq` | position in that export's stream, from 1; lost events keep their numbers | yes |
//! | `seq` | the event's sequence number on its origin bus | yes |
//! | `published-at` | publish time on the origin bus, microseconds since the Unix epoch, or `-` when unknown | yes (`-` allowed) |
//! | `route` | the event's route as resolved at dispatch (a UUID) | no |
//! | `Shardcast-Alias` (own header) | the event's alias, as a JSON array `["namespace","key"]` | no |
//!
//! `export-seq` is what makes losses between two buses visible: an import that sees 7
//! after 4 from the same (origin, export) counts 2 missed events, whatever lost them (the
//! export's subscription overflowing, a connection that dropped with messages in flight,
//! a slow consumer on the server).
//!
//! One header rather than one per field because async-nats keeps headers in a
//! `HashMap<HeaderName, Vec<HeaderValue>>`: every header costs allocations and hashing
//! when the export builds it, when the receiving client parses it, and at every lookup.
//! With six headers that was about a fifth of the bridge's CPU (docs/perf/README.md,
//! "The NATS bridge").
//!
//! Imports also accept the one-header-per-field form that earlier builds wrote
//! ([`ORIGIN`], [`EXPORT`], [`EXPORT_SEQ`], [`SEQ`], [`PUBLISHED_AT`], [`ROUTE`], with
//! the same values), when a message has no `Shardcast` header.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::header::HeaderName;
use async_nats::HeaderMap;
use shardcast::{Alias, Delivery, Uuid};

use crate::error::DecodeError;

/// The header an export writes: origin, export, export seq, seq, publish time and route.
pub const SHARDCAST: &str = "Shardcast";
/// Alias as a JSON array of namespace and key.
pub const ALIAS: &str = "Shardcast-Alias";
/// Origin bridge id (per-field form, accepted on import).
pub const ORIGIN: &str = "Shardcast-Origin";
/// Export number within the origin bridge (per-field form, accepted on import).
pub const EXPORT: &str = "Shardcast-Export";
/// Position in the export's stream (per-field form, accepted on import).
pub const EXPORT_SEQ: &str = "Shardcast-Export-Seq";
/// Sequence number on the origin bus (per-field form, accepted on import).
pub const SEQ: &str = "Shardcast-Seq";
/// Publish time on the origin bus, microseconds since the Unix epoch (per-field form,
/// accepted on import).
pub const PUBLISHED_AT: &str = "Shardcast-Published-At";
/// Resolved route (per-field form, accepted on import).
pub const ROUTE: &str = "Shardcast-Route";

// Names built once: `&str` names allocate a `HeaderName` at every insert and lookup.
const SHARDCAST_NAME: HeaderName = HeaderName::from_static(SHARDCAST);
const ALIAS_NAME: HeaderName = HeaderName::from_static(ALIAS);

/// What an export knows about one event besides its topic and payload.
pub(crate) struct Outgoing {
    pub origin: Uuid,
    pub export: u32,
    pub export_seq: u64,
}

pub(crate) fn encode<E>(out: &Outgoing, delivery: &Delivery<E>) -> HeaderMap {
    // 36 + 10 + 20 + 20 + 16 + 36 bytes of fields and five spaces at most.
    let mut value = String::with_capacity(144);
    let _ = write!(
        value,
        "{} {} {} {} ",
        out.origin.hyphenated(),
        out.export,
        out.export_seq,
        delivery.seq()
    );
    let published_at = delivery
        .age()
        .and_then(|age| SystemTime::now().checked_sub(age))
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok());
    match published_at {
        Some(since) => {
            let _ = write!(value, "{}", since.as_micros());
        }
        None => value.push('-'),
    }
    if let Some(route) = delivery.resolved_route() {
        let _ = write!(value, " {}", route.hyphenated());
    }
    let mut headers = HeaderMap::new();
    headers.insert(SHARDCAST_NAME, value);
    if let Some(alias) = delivery.alias() {
        // JSON escapes every control byte, so the value can never break the header block.
        if let Ok(json) = serde_json::to_string(&[alias.namespace(), alias.key()]) {
            headers.insert(ALIAS_NAME, json);
        }
    }
    headers
}

/// What an import reads from a message's headers. Every other field is validated too
/// (a garbled one drops the message) but not kept: the imported event is stamped by the
/// local bus and carries the bridge alias in place of its original one.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub origin: Uuid,
    pub export: u32,
    pub export_seq: u64,
    pub route: Option<Uuid>,
}

fn parsed<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, DecodeError> {
    value.trim().parse().map_err(|_| DecodeError::BadHeader(name, value.to_owned()))
}

pub(crate) fn decode(headers: Option<&HeaderMap>) -> Result<Incoming, DecodeError> {
    let headers = headers.ok_or(DecodeError::MissingHeader(SHARDCAST))?;
    // One pass over the (usually one or two) entries: `HeaderMap::get` hashes its key.
    let (mut compact, mut alias, mut per_field) = (None, None, false);
    for (name, values) in headers.iter() {
        let Some(value) = values.first() else { continue };
        match name.as_ref() {
            SHARDCAST => compact = Some(value.as_str()),
            ALIAS => alias = Some(value.as_str()),
            ORIGIN => per_field = true,
            _ => {}
        }
    }
    let incoming = match compact {
        Some(value) => decode_compact(value)?,
        None if per_field => decode_per_field(headers)?,
        None => return Err(DecodeError::MissingHeader(SHARDCAST)),
    };
    if let Some(v) = alias {
        let bad = || DecodeError::BadHeader(ALIAS, v.to_owned());
        let [namespace, key]: [String; 2] = serde_json::from_str(v).map_err(|_| bad())?;
        Alias::new(&namespace, &key).map_err(|_| bad())?;
    }
    Ok(incoming)
}

fn decode_compact(value: &str) -> Result<Incoming, DecodeError> {
    let bad = || DecodeError::BadHeader(SHARDCAST, value.to_owned());
    let mut fields = value.split(' ');
    let mut next = || fields.next().filter(|f| !f.is_empty()).ok_or_else(bad);
    let origin = next()?.parse().map_err(|_| bad())?;
    let export = next()?.parse().map_err(|_| bad())?;
    let export_seq = next()?.parse().map_err(|_| bad())?;
    let _seq: u64 = next()?.parse().map_err(|_| bad())?;
    match next()? {
        "-" => {}
        micros => {
            let _: u64 = micros.parse().map_err(|_| bad())?;
        }
    }
    let route = match fields.next() {
        None => None,
        Some(route) => Some(route.parse().map_err(|_| bad())?),
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(Incoming { origin, export, export_seq, route })
}

fn decode_per_field(headers: &HeaderMap) -> Result<Incoming, DecodeError> {
    let required = |name: &'static str| {
        headers.get(name).map(|v| v.as_str()).ok_or(DecodeError::MissingHeader(name))
    };
    let origin = parsed(ORIGIN, required(ORIGIN)?)?;
    let export = parsed(EXPORT, required(EXPORT)?)?;
    let export_seq = parsed(EXPORT_SEQ, required(EXPORT_SEQ)?)?;
    let _seq: u64 = parsed(SEQ, required(SEQ)?)?;
    let route = match headers.get(ROUTE) {
        Some(v) => Some(parsed(ROUTE, v.as_str())?),
        None => None,
    };
    if let Some(v) = headers.get(PUBLISHED_AT) {
        let _micros: u64 = parsed(PUBLISHED_AT, v.as_str())?;
    }
    Ok(Incoming { origin, export, export_seq, route })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN_9: &str = "00000000-0000-0000-0000-000000000009";

    fn compact(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SHARDCAST, value);
        h
    }

    fn per_field() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, ORIGIN_9);
        h.insert(EXPORT, "0");
        h.insert(EXPORT_SEQ, "3");
        h.insert(SEQ, "41");
        h
    }

    #[test]
    fn decodes_the_one_header_form_with_and_without_route() {
        let route = Uuid::from_u128(5);
        let mut h = compact(&format!("{ORIGIN_9} 2 3 41 1764700000000000 {route}"));
        h.insert(ALIAS, r#"["conn","a\nb"]"#);
        let got = decode(Some(&h)).unwrap();
        assert_eq!(got.origin, Uuid::from_u128(9));
        assert_eq!((got.export, got.export_seq), (2, 3));
        assert_eq!(got.route, Some(route));
        let got = decode(Some(&compact(&format!("{ORIGIN_9} 0 7 41 -")))).unwrap();
        assert_eq!((got.export_seq, got.route), (7, None));
    }

    #[test]
    fn decodes_the_per_field_form() {
        let mut h = per_field();
        h.insert(ROUTE, Uuid::from_u128(5).to_string().as_str());
        h.insert(PUBLISHED_AT, "17");
        let got = decode(Some(&h)).unwrap();
        assert_eq!(got.origin, Uuid::from_u128(9));
        assert_eq!((got.export, got.export_seq), (0, 3));
        assert_eq!(got.route, Some(Uuid::from_u128(5)));
    }

    #[test]
    fn names_the_missing_or_garbled_header() {
        assert_eq!(decode(None).unwrap_err().to_string(), "missing header Shardcast");
        assert_eq!(decode(Some(&HeaderMap::new())).unwrap_err().reason(), "header");
        for garbled in [
            "",
            "x 0 1 2 -",
            &format!("{ORIGIN_9} 0 1 2"),
            &format!("{ORIGIN_9} 0 x 2 -"),
            &format!("{ORIGIN_9} 0 1 2 soon"),
            &format!("{ORIGIN_9}  0 1 2 -"),
            &format!("{ORIGIN_9} 0 1 2 - not-a-route"),
            &format!("{ORIGIN_9} 0 1 2 - {ORIGIN_9} extra"),
        ] {
            let err = decode(Some(&compact(garbled))).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid header Shardcast: {garbled:?}"));
        }
        let mut h = per_field();
        h.insert(EXPORT_SEQ, "x");
        assert_eq!(
            decode(Some(&h)).unwrap_err().to_string(),
            "invalid header Shardcast-Export-Seq: \"x\""
        );
        let mut h = per_field();
        h.insert(ALIAS, "[1]");
        assert_eq!(decode(Some(&h)).unwrap_err().reason(), "header");
    }

    #[test]
    fn encode_writes_what_decode_reads() {
        let bus: shardcast::Bus<u8> = shardcast::Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(shardcast::Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let route = Uuid::from_u128(77);
        let alias = Alias::new("conn", "a b").unwrap();
        let topic = shardcast::Topic::new("orders.eu").unwrap();
        publisher
            .publish_blocking(shardcast::Event::new(topic.clone(), 1).with_alias(alias))
            .unwrap();
        publisher.publish_blocking(shardcast::Event::new(topic, 2).with_route(route)).unwrap();
        let out = Outgoing { origin: Uuid::from_u128(9), export: 4, export_seq: 11 };
        for expected_route in [None, Some(route)] {
            let delivery = sub.recv_blocking().unwrap();
            let headers = encode(&out, &delivery);
            let value = headers.get(SHARDCAST).unwrap().as_str().to_owned();
            assert!(value.starts_with(&format!("{ORIGIN_9} 4 11 {} ", delivery.seq())), "{value}");
            assert_eq!(headers.get(ALIAS).is_some(), delivery.alias().is_some());
            let got = decode(Some(&headers)).unwrap();
            assert_eq!((got.origin, got.export, got.export_seq), (out.origin, 4, 11));
            assert_eq!(got.route, expected_route);
        }
    }
}
