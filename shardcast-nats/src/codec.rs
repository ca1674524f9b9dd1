//! How payloads become NATS message bodies and back.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CodecError;

/// Encodes a payload for export and decodes one on import. Implementations must be cheap
/// to share: one codec value serves a whole export or import.
pub trait Codec<E>: Send + Sync + 'static {
    /// A short name for logs and errors (`"json"`, `"raw"`).
    fn name(&self) -> &'static str;

    /// The message body for `payload`.
    ///
    /// # Errors
    /// The payload cannot be encoded (the export counts it and carries on).
    fn encode(&self, payload: &E) -> Result<Bytes, CodecError>;

    /// The payload carried by `body`.
    ///
    /// # Errors
    /// The body is not a valid encoding (the import counts it and carries on).
    fn decode(&self, body: Bytes) -> Result<E, CodecError>;
}

/// serde JSON, the default codec: any `E: Serialize + DeserializeOwned`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<E: Serialize + DeserializeOwned> Codec<E> for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, payload: &E) -> Result<Bytes, CodecError> {
        serde_json::to_vec(payload).map(Bytes::from).map_err(|e| CodecError::new("json", e))
    }

    fn decode(&self, body: Bytes) -> Result<E, CodecError> {
        serde_json::from_slice(&body).map_err(|e| CodecError::new("json", e))
    }
}

/// The payload is the body, byte for byte: `E` is [`Bytes`] or `Vec<u8>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec<Bytes> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, payload: &Bytes) -> Result<Bytes, CodecError> {
        // A reference-count increment, not a copy.
        Ok(payload.clone())
    }

    fn decode(&self, body: Bytes) -> Result<Bytes, CodecError> {
        Ok(body)
    }
}

impl Codec<Vec<u8>> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, payload: &Vec<u8>) -> Result<Bytes, CodecError> {
        Ok(Bytes::copy_from_slice(payload))
    }

    fn decode(&self, body: Bytes) -> Result<Vec<u8>, CodecError> {
        Ok(body.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
    }

    #[test]
    fn json_round_trips_and_rejects_garbage() {
        let body = Codec::<Order>::encode(&Json, &Order { id: 7 }).unwrap();
        assert_eq!(Codec::<Order>::decode(&Json, body).unwrap(), Order { id: 7 });
        let err = Codec::<Order>::decode(&Json, Bytes::from_static(b"{not json")).unwrap_err();
        assert!(err.to_string().starts_with("json codec: "), "{err}");
    }

    #[test]
    fn raw_is_the_body() {
        let body = Raw.encode(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(&body[..], [1, 2, 3]);
        let back: Vec<u8> = Raw.decode(body).unwrap();
        assert_eq!(back, [1, 2, 3]);
        let b = Bytes::from_static(b"xy");
        assert_eq!(Codec::<Bytes>::decode(&Raw, Raw.encode(&b).unwrap()).unwrap(), b);
    }
}
