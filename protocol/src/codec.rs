//! Framing, size limits, versioning and protocol ids.
//!
//! A frame is one version byte ([`WIRE_VERSION`]) followed by the postcard
//! encoding of a [`GossipMessage`], [`Request`] or [`Response`]. Decoding
//! checks, in this order and before any message is built:
//!
//! 1. the frame is not longer than the largest message of its family;
//! 2. the version byte is supported;
//! 3. the enum tag names a known kind, and the frame is within *that kind's*
//!    limit ([`MessageKind::limit`]);
//! 4. postcard decodes it from exactly those bytes. Every collection inside is
//!    a bounded type that refuses oversized declared lengths before
//!    allocating, so memory is bounded by the frame length, itself bounded.
//!
//! Transports should read at most [`MAX_REQUEST_BYTES`] /
//! [`MAX_RESPONSE_BYTES`] / [`MAX_GOSSIP_BYTES`] (+1 to detect overflow)
//! from the wire.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::blob::{CHUNK_SIZE, MAX_CHUNKS};
use crate::msg::{GossipMessage, Request, Response, MAX_INLINE_RESULT};

/// Wire format major version carried in every frame and every protocol id.
pub const WIRE_VERSION: u8 = 1;

/// Request-response protocol id (libp2p stream protocol).
pub const PROTOCOL_REQ: &str = "/shoal/req/1";
/// Gossipsub topic of [`GossipMessage::Status`].
pub const TOPIC_STATUS: &str = "/shoal/gossip/status/1";
/// Gossipsub topic of [`GossipMessage::ModelAnnounce`].
pub const TOPIC_MODEL: &str = "/shoal/gossip/model/1";
/// Protocol version string for libp2p identify; peers announcing another
/// major version are not Shoal peers we can talk to.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/shoal/1";

/// Which decoder a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// [`GossipMessage`].
    Gossip,
    /// [`Request`].
    Request,
    /// [`Response`].
    Response,
}

impl Family {
    /// Kinds of this family, indexed by their postcard enum tag.
    pub fn kinds(self) -> &'static [MessageKind] {
        match self {
            Family::Gossip => &GOSSIP_KINDS,
            Family::Request => &REQUEST_KINDS,
            Family::Response => &RESPONSE_KINDS,
        }
    }

    /// Largest frame of this family.
    pub fn max_bytes(self) -> usize {
        match self {
            Family::Gossip => MAX_GOSSIP_BYTES,
            Family::Request => MAX_REQUEST_BYTES,
            Family::Response => MAX_RESPONSE_BYTES,
        }
    }

    /// Name for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gossip => "gossip",
            Family::Request => "request",
            Family::Response => "response",
        }
    }
}

/// Every message kind, with its size limit. Variants mirror the enum
/// variants of [`GossipMessage`], [`Request`] and [`Response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// [`GossipMessage::Status`].
    Status,
    /// [`GossipMessage::ModelAnnounce`].
    ModelAnnounce,
    /// [`Request::TaskAnnounce`].
    TaskAnnounce,
    /// [`Request::Bid`].
    Bid,
    /// [`Request::Award`].
    Award,
    /// [`Request::AwardAck`].
    AwardAck,
    /// [`Request::Heartbeat`].
    Heartbeat,
    /// [`Request::Result`].
    Result,
    /// [`Request::Cancel`].
    Cancel,
    /// [`Request::ModelFetch`].
    ModelFetch,
    /// [`Request::ManifestFetch`].
    ManifestFetch,
    /// [`Request::ChunkFetch`].
    ChunkFetch,
    /// [`Response::Ack`].
    Ack,
    /// [`Response::Rejected`].
    Rejected,
    /// [`Response::NotFound`].
    NotFound,
    /// [`Response::Manifest`].
    Manifest,
    /// [`Response::ModelManifest`].
    ModelManifest,
    /// [`Response::Chunk`].
    Chunk,
}

// Order = declaration order of the enum variants = postcard tag.
const GOSSIP_KINDS: [MessageKind; 2] = [MessageKind::Status, MessageKind::ModelAnnounce];
const REQUEST_KINDS: [MessageKind; 10] = [
    MessageKind::TaskAnnounce,
    MessageKind::Bid,
    MessageKind::Award,
    MessageKind::AwardAck,
    MessageKind::Heartbeat,
    MessageKind::Result,
    MessageKind::Cancel,
    MessageKind::ModelFetch,
    MessageKind::ManifestFetch,
    MessageKind::ChunkFetch,
];
const RESPONSE_KINDS: [MessageKind; 6] = [
    MessageKind::Ack,
    MessageKind::Rejected,
    MessageKind::NotFound,
    MessageKind::Manifest,
    MessageKind::ModelManifest,
    MessageKind::Chunk,
];

impl MessageKind {
    /// Largest frame (version byte included) of this kind, bytes. Each limit
    /// is the worst case of the bounded fields rounded up; a test encodes a
    /// maximal message of every kind to keep them honest.
    pub const fn limit(self) -> usize {
        match self {
            MessageKind::Status => 4096,
            MessageKind::ModelAnnounce => 512,
            // 16 inputs x 8 holders x 65-byte ids dominate.
            MessageKind::TaskAnnounce | MessageKind::Award => 12 * 1024,
            MessageKind::Bid => 256,
            MessageKind::AwardAck | MessageKind::Heartbeat | MessageKind::Cancel => 64,
            MessageKind::Result => MAX_INLINE_RESULT + 512,
            MessageKind::ModelFetch | MessageKind::ManifestFetch | MessageKind::ChunkFetch => 64,
            MessageKind::Ack | MessageKind::Rejected => 16,
            MessageKind::NotFound => 64,
            MessageKind::Manifest => MAX_CHUNKS * 32 + 64,
            MessageKind::ModelManifest => MAX_CHUNKS * 32 + 512,
            MessageKind::Chunk => CHUNK_SIZE + 128,
        }
    }

    /// Name for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Status => "status",
            MessageKind::ModelAnnounce => "model-announce",
            MessageKind::TaskAnnounce => "task-announce",
            MessageKind::Bid => "bid",
            MessageKind::Award => "award",
            MessageKind::AwardAck => "award-ack",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Result => "result",
            MessageKind::Cancel => "cancel",
            MessageKind::ModelFetch => "model-fetch",
            MessageKind::ManifestFetch => "manifest-fetch",
            MessageKind::ChunkFetch => "chunk-fetch",
            MessageKind::Ack => "ack",
            MessageKind::Rejected => "rejected",
            MessageKind::NotFound => "not-found",
            MessageKind::Manifest => "manifest",
            MessageKind::ModelManifest => "model-manifest",
            MessageKind::Chunk => "chunk",
        }
    }
}

const fn max_limit(kinds: &[MessageKind]) -> usize {
    let mut i = 0;
    let mut m = 0;
    while i < kinds.len() {
        let l = kinds[i].limit();
        if l > m {
            m = l;
        }
        i += 1;
    }
    m
}

/// Largest gossip frame, bytes.
pub const MAX_GOSSIP_BYTES: usize = max_limit(&GOSSIP_KINDS);
/// Largest request frame, bytes.
pub const MAX_REQUEST_BYTES: usize = max_limit(&REQUEST_KINDS);
/// Largest response frame, bytes.
pub const MAX_RESPONSE_BYTES: usize = max_limit(&RESPONSE_KINDS);

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than the limit of its kind (or of its family, when the kind was
    /// not looked at yet).
    #[error("{kind} frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Kind or family name.
        kind: &'static str,
        /// Frame length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame ended early.
    #[error("frame truncated")]
    Truncated,
    /// Another major version of the wire format.
    #[error("wire version {got} not supported (this node speaks {supported})")]
    UnknownVersion {
        /// Version byte of the frame.
        got: u8,
        /// Our version.
        supported: u8,
    },
    /// The enum tag names no known message of this family.
    #[error("unknown {family} message tag {tag}")]
    UnknownKind {
        /// Family name.
        family: &'static str,
        /// The tag.
        tag: u32,
    },
    /// Anything else: bad varint, invalid UTF-8, a bounded field over its
    /// bound, trailing bytes, ...
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message is over its kind's limit (peers would refuse it).
    #[error("{kind} message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Kind name.
        kind: &'static str,
        /// Encoded length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// postcard failed (should not happen for these types).
    #[error("encoding failed: {0}")]
    Serialize(String),
}

/// A message type with its own decoder: [`GossipMessage`], [`Request`],
/// [`Response`].
pub trait WireMessage: Serialize + DeserializeOwned + sealed::Sealed {
    /// Its family.
    const FAMILY: Family;
    /// Kind of this value.
    fn kind(&self) -> MessageKind;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::GossipMessage {}
    impl Sealed for super::Request {}
    impl Sealed for super::Response {}
}

impl WireMessage for GossipMessage {
    const FAMILY: Family = Family::Gossip;
    fn kind(&self) -> MessageKind {
        match self {
            GossipMessage::Status(_) => MessageKind::Status,
            GossipMessage::ModelAnnounce { .. } => MessageKind::ModelAnnounce,
        }
    }
}

impl GossipMessage {
    /// The gossipsub topic this message is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            GossipMessage::Status(_) => TOPIC_STATUS,
            GossipMessage::ModelAnnounce { .. } => TOPIC_MODEL,
        }
    }
}

impl WireMessage for Request {
    const FAMILY: Family = Family::Request;
    fn kind(&self) -> MessageKind {
        match self {
            Request::TaskAnnounce { .. } => MessageKind::TaskAnnounce,
            Request::Bid(_) => MessageKind::Bid,
            Request::Award { .. } => MessageKind::Award,
            Request::AwardAck { .. } => MessageKind::AwardAck,
            Request::Heartbeat { .. } => MessageKind::Heartbeat,
            Request::Result(_) => MessageKind::Result,
            Request::Cancel { .. } => MessageKind::Cancel,
            Request::ModelFetch { .. } => MessageKind::ModelFetch,
            Request::ManifestFetch { .. } => MessageKind::ManifestFetch,
            Request::ChunkFetch { .. } => MessageKind::ChunkFetch,
        }
    }
}

impl WireMessage for Response {
    const FAMILY: Family = Family::Response;
    fn kind(&self) -> MessageKind {
        match self {
            Response::Ack => MessageKind::Ack,
            Response::Rejected { .. } => MessageKind::Rejected,
            Response::NotFound { .. } => MessageKind::NotFound,
            Response::Manifest(_) => MessageKind::Manifest,
            Response::ModelManifest { .. } => MessageKind::ModelManifest,
            Response::Chunk(_) => MessageKind::Chunk,
        }
    }
}

/// Encodes `msg` as a frame, refusing messages over their kind's limit.
pub fn encode<M: WireMessage>(msg: &M) -> Result<Vec<u8>, EncodeError> {
    let kind = msg.kind();
    let out = postcard::to_extend(msg, vec![WIRE_VERSION])
        .map_err(|e| EncodeError::Serialize(e.to_string()))?;
    if out.len() > kind.limit() {
        return Err(EncodeError::TooLarge {
            kind: kind.name(),
            size: out.len(),
            limit: kind.limit(),
        });
    }
    Ok(out)
}

/// Checks the version byte of a frame without decoding the rest.
pub fn check_version(frame: &[u8]) -> Result<(), DecodeError> {
    match frame.first() {
        None => Err(DecodeError::Truncated),
        Some(&WIRE_VERSION) => Ok(()),
        Some(&got) => Err(DecodeError::UnknownVersion {
            got,
            supported: WIRE_VERSION,
        }),
    }
}

/// Reads postcard's varint-encoded u32 enum tag.
fn read_tag(bytes: &[u8]) -> Result<u32, DecodeError> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        let part = u32::from(b & 0x7f);
        if i == 4 && part > 0x0f {
            return Err(DecodeError::Malformed(
                "enum tag varint overflows u32".into(),
            ));
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    if bytes.len() < 5 {
        Err(DecodeError::Truncated)
    } else {
        Err(DecodeError::Malformed("enum tag varint too long".into()))
    }
}

/// Kind of a frame, after the family and version checks, without decoding
/// the body. Useful to apply per-kind rate limits before decoding.
pub fn peek_kind(family: Family, frame: &[u8]) -> Result<MessageKind, DecodeError> {
    if frame.len() > family.max_bytes() {
        return Err(DecodeError::TooLarge {
            kind: family.name(),
            size: frame.len(),
            limit: family.max_bytes(),
        });
    }
    check_version(frame)?;
    let tag = read_tag(&frame[1..])?;
    let kind = usize::try_from(tag)
        .ok()
        .and_then(|t| family.kinds().get(t))
        .copied()
        .ok_or(DecodeError::UnknownKind {
            family: family.name(),
            tag,
        })?;
    if frame.len() > kind.limit() {
        return Err(DecodeError::TooLarge {
            kind: kind.name(),
            size: frame.len(),
            limit: kind.limit(),
        });
    }
    Ok(kind)
}

/// Decodes one frame of family `M`.
pub fn decode<M: WireMessage>(frame: &[u8]) -> Result<M, DecodeError> {
    peek_kind(M::FAMILY, frame)?;
    let (msg, rest) = postcard::take_from_bytes::<M>(&frame[1..]).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        other => DecodeError::Malformed(other.to_string()),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Decodes a gossip frame.
pub fn decode_gossip(frame: &[u8]) -> Result<GossipMessage, DecodeError> {
    decode(frame)
}

/// Decodes a request frame.
pub fn decode_request(frame: &[u8]) -> Result<Request, DecodeError> {
    decode(frame)
}

/// Decodes a response frame.
pub fn decode_response(frame: &[u8]) -> Result<Response, DecodeError> {
    decode(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Hash, NodeId};

    #[test]
    fn version_and_limits_are_checked_first() {
        let msg = Request::ChunkFetch {
            hash: Hash([3; 32]),
            index: 7,
        };
        let mut f = encode(&msg).unwrap();
        assert_eq!(decode_request(&f).unwrap(), msg);
        f[0] = 2;
        assert_eq!(
            decode_request(&f),
            Err(DecodeError::UnknownVersion {
                got: 2,
                supported: WIRE_VERSION
            })
        );
        assert_eq!(decode_request(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode_request(&[WIRE_VERSION]), Err(DecodeError::Truncated));
        assert!(matches!(
            decode_request(&[WIRE_VERSION, 99]),
            Err(DecodeError::UnknownKind { tag: 99, .. })
        ));
        // A chunk-fetch tag followed by padding past the 64-byte limit.
        let mut big = vec![WIRE_VERSION, 9];
        big.resize(200, 0);
        assert_eq!(
            decode_request(&big),
            Err(DecodeError::TooLarge {
                kind: "chunk-fetch",
                size: 200,
                limit: 64
            })
        );
        let huge = vec![WIRE_VERSION; MAX_RESPONSE_BYTES + 1];
        assert!(matches!(
            decode_response(&huge),
            Err(DecodeError::TooLarge {
                kind: "response",
                ..
            })
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut f = encode(&Response::Ack).unwrap();
        f.push(0);
        assert!(matches!(
            decode_response(&f),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn huge_declared_lengths_fail_without_allocating() {
        // Status: node id with a declared length of u32::MAX.
        let f = [WIRE_VERSION, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_gossip(&f).is_err());
        // Manifest response: size 1, then 2^32-1 chunk hashes declared.
        let f = [WIRE_VERSION, 3, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_response(&f).is_err());
        // Chunk response: hash, index, then 2^63 data bytes declared.
        let mut f = vec![WIRE_VERSION, 5];
        f.extend([0u8; 32]);
        f.push(0);
        f.extend([0xff; 9]);
        f.push(0x7f);
        assert!(decode_response(&f).is_err());
    }

    #[test]
    fn gossip_topics() {
        let g = GossipMessage::ModelAnnounce {
            node: NodeId::from_u64(1),
            digest: crate::msg::ModelDigest {
                kind: "nb".try_into().unwrap(),
                version: 1,
                hash: Hash([0; 32]),
                size: 1,
                samples: 1,
                accuracy_bp: 5000,
            },
        };
        assert_eq!(g.topic(), TOPIC_MODEL);
        assert_eq!(decode_gossip(&encode(&g).unwrap()).unwrap(), g);
    }
}
