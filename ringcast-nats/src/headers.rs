//! The NATS headers an export writes and an import reads.
//!
//! | header | value | required on import |
//! |---|---|---|
//! | `Ringcast-Origin` | the exporting bridge's origin id (a UUID) | yes |
//! | `Ringcast-Export` | the export's number within its bridge | yes |
//! | `Ringcast-Export-Seq` | position in that export's stream, from 1; lost events keep their numbers | yes |
//! | `Ringcast-Seq` | the event's sequence number on its origin bus | yes |
//! | `Ringcast-Published-At` | publish time on the origin bus, microseconds since the Unix epoch | no |
//! | `Ringcast-Route` | the event's route as resolved at dispatch (a UUID) | no |
//! | `Ringcast-Alias` | the event's alias, as a JSON array `["namespace","key"]` | no |
//!
//! `Ringcast-Export-Seq` is what makes losses between two buses visible: an import that
//! sees 7 after 4 from the same (origin, export) counts 2 missed events, whatever lost
//! them (the export's subscription overflowing, a connection that dropped with messages
//! in flight, a slow consumer on the server).

use std::time::{SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use ringcast::{Alias, Delivery, Uuid};

use crate::error::DecodeError;

/// Origin bridge id.
pub const ORIGIN: &str = "Ringcast-Origin";
/// Export number within the origin bridge.
pub const EXPORT: &str = "Ringcast-Export";
/// Position in the export's stream.
pub const EXPORT_SEQ: &str = "Ringcast-Export-Seq";
/// Sequence number on the origin bus.
pub const SEQ: &str = "Ringcast-Seq";
/// Publish time on the origin bus, microseconds since the Unix epoch.
pub const PUBLISHED_AT: &str = "Ringcast-Published-At";
/// Resolved route.
pub const ROUTE: &str = "Ringcast-Route";
/// Alias as a JSON array of namespace and key.
pub const ALIAS: &str = "Ringcast-Alias";

/// What an export knows about one event besides its topic and payload.
pub(crate) struct Outgoing {
    pub origin: Uuid,
    pub export: u32,
    pub export_seq: u64,
}

pub(crate) fn encode<E>(out: &Outgoing, delivery: &Delivery<E>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, out.origin.to_string().as_str());
    headers.insert(EXPORT, out.export.to_string().as_str());
    headers.insert(EXPORT_SEQ, out.export_seq.to_string().as_str());
    headers.insert(SEQ, delivery.seq().to_string().as_str());
    if let Some(at) = delivery.age().and_then(|age| SystemTime::now().checked_sub(age)) {
        if let Ok(since) = at.duration_since(UNIX_EPOCH) {
            headers.insert(PUBLISHED_AT, since.as_micros().to_string().as_str());
        }
    }
    if let Some(route) = delivery.resolved_route() {
        headers.insert(ROUTE, route.to_string().as_str());
    }
    if let Some(alias) = delivery.alias() {
        // JSON escapes every control byte, so the value can never break the header block.
        if let Ok(json) = serde_json::to_string(&[alias.namespace(), alias.key()]) {
            headers.insert(ALIAS, json.as_str());
        }
    }
    headers
}

/// What an import reads from a message's headers. Every other header is validated too
/// (a garbled one drops the message) but not kept: the imported event is stamped by the
/// local bus and carries the bridge alias in place of its original one.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub origin: Uuid,
    pub export: u32,
    pub export_seq: u64,
    pub route: Option<Uuid>,
}

fn required<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, DecodeError> {
    headers.get(name).map(|v| v.as_str()).ok_or(DecodeError::MissingHeader(name))
}

fn parsed<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, DecodeError> {
    value.trim().parse().map_err(|_| DecodeError::BadHeader(name, value.to_owned()))
}

pub(crate) fn decode(headers: Option<&HeaderMap>) -> Result<Incoming, DecodeError> {
    let headers = headers.ok_or(DecodeError::MissingHeader(ORIGIN))?;
    let origin = parsed(ORIGIN, required(headers, ORIGIN)?)?;
    let export = parsed(EXPORT, required(headers, EXPORT)?)?;
    let export_seq = parsed(EXPORT_SEQ, required(headers, EXPORT_SEQ)?)?;
    let _seq: u64 = parsed(SEQ, required(headers, SEQ)?)?;
    let route = match headers.get(ROUTE) {
        Some(v) => Some(parsed(ROUTE, v.as_str())?),
        None => None,
    };
    if let Some(v) = headers.get(ALIAS) {
        let bad = || DecodeError::BadHeader(ALIAS, v.as_str().to_owned());
        let [namespace, key]: [String; 2] = serde_json::from_str(v.as_str()).map_err(|_| bad())?;
        Alias::new(&namespace, &key).map_err(|_| bad())?;
    }
    if let Some(v) = headers.get(PUBLISHED_AT) {
        let _micros: u64 = parsed(PUBLISHED_AT, v.as_str())?;
    }
    Ok(Incoming { origin, export, export_seq, route })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, Uuid::from_u128(9).to_string().as_str());
        h.insert(EXPORT, "0");
        h.insert(EXPORT_SEQ, "3");
        h.insert(SEQ, "41");
        h
    }

    #[test]
    fn decodes_required_and_optional_headers() {
        let mut h = base();
        h.insert(ALIAS, r#"["conn","a\nb"]"#);
        h.insert(ROUTE, Uuid::from_u128(5).to_string().as_str());
        let got = decode(Some(&h)).unwrap();
        assert_eq!(got.origin, Uuid::from_u128(9));
        assert_eq!((got.export, got.export_seq), (0, 3));
        assert_eq!(got.route, Some(Uuid::from_u128(5)));
    }

    #[test]
    fn names_the_missing_or_garbled_header() {
        assert_eq!(decode(None).unwrap_err().to_string(), "missing header Ringcast-Origin");
        let mut h = base();
        h.insert(EXPORT_SEQ, "x");
        assert_eq!(
            decode(Some(&h)).unwrap_err().to_string(),
            "invalid header Ringcast-Export-Seq: \"x\""
        );
        let mut h = base();
        h.insert(ALIAS, "[1]");
        assert_eq!(decode(Some(&h)).unwrap_err().reason(), "header");
    }
}
