//! Small value types shared by messages and state machines: time, node ids,
//! content hashes, task ids and epochs.

use std::fmt;
use std::ops::{Add, Sub};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since an arbitrary, node-local epoch.
///
/// The protocol never reads a clock: the node passes `Millis` from its
/// monotonic clock, the simulator from its virtual one. Values are never sent
/// on the wire as absolute times (clocks of two nodes do not agree), only as
/// durations.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Millis(pub u64);

impl Millis {
    /// Time zero.
    pub const ZERO: Millis = Millis(0);

    /// `self + ms`, saturating.
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// `self - earlier` in ms, or 0 when `earlier` is later.
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Millis {
    type Output = Millis;
    fn add(self, ms: u64) -> Millis {
        self.plus(ms)
    }
}

impl Sub<Millis> for Millis {
    type Output = u64;
    fn sub(self, earlier: Millis) -> u64 {
        self.since(earlier)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Longest node id, in bytes. A libp2p `PeerId` is a multihash of at most
/// 42 bytes in practice (38 for Ed25519 identity hashes), so 64 leaves room.
pub const MAX_NODE_ID_LEN: usize = 64;

/// Opaque identity of a node: the node stores its libp2p `PeerId` bytes here,
/// the simulator a small integer (see [`NodeId::from_u64`]).
///
/// `Copy` and fixed-size so state machines can key maps by it cheaply.
#[derive(Clone, Copy)]
pub struct NodeId {
    len: u8,
    bytes: [u8; MAX_NODE_ID_LEN],
}

/// A node id was empty or longer than [`MAX_NODE_ID_LEN`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node id of {len} bytes: must be 1..={max}", max = MAX_NODE_ID_LEN)]
pub struct NodeIdError {
    /// The offered length.
    pub len: usize,
}

impl NodeId {
    /// Wraps `b` (1 to 64 bytes).
    pub fn from_bytes(b: &[u8]) -> Result<NodeId, NodeIdError> {
        if b.is_empty() || b.len() > MAX_NODE_ID_LEN {
            return Err(NodeIdError { len: b.len() });
        }
        let mut bytes = [0u8; MAX_NODE_ID_LEN];
        bytes[..b.len()].copy_from_slice(b);
        // len <= 64 was checked above, so the cast is lossless.
        Ok(NodeId {
            len: b.len() as u8,
            bytes,
        })
    }

    /// An 8-byte big-endian id; big-endian so ids sort like the integers.
    pub fn from_u64(n: u64) -> NodeId {
        let mut bytes = [0u8; MAX_NODE_ID_LEN];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        NodeId { len: 8, bytes }
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for NodeId {
    fn eq(&self, o: &Self) -> bool {
        // Bytes past `len` are zero in every id.
        self.len == o.len && self.bytes == o.bytes
    }
}
impl Eq for NodeId {}
impl PartialOrd for NodeId {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
/// The order of the ids' bytes (as slices), eight bytes at a time: maps
/// keyed by ids compare them on every lookup. Bytes past `len` are zero, so
/// two ids that agree on their padded bytes differ only if one is a prefix
/// of the other, and the shorter sorts first, as a slice does.
impl Ord for NodeId {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        let words = usize::from(self.len.max(o.len)).div_ceil(8);
        let (a, _) = self.bytes.as_chunks::<8>();
        let (b, _) = o.bytes.as_chunks::<8>();
        for (x, y) in a.iter().zip(b).take(words) {
            match u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y)) {
                std::cmp::Ordering::Equal => {}
                ord => return ord,
            }
        }
        self.len.cmp(&o.len)
    }
}
impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_bytes().hash(h)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Simulator ids print as their integer, real ids as (short) hex.
        let b = self.as_bytes();
        if b.len() == 8 && b[0] == 0 {
            let mut n = [0u8; 8];
            n.copy_from_slice(b);
            return write!(f, "n{}", u64::from_be_bytes(n));
        }
        for x in b.iter().rev().take(6).rev() {
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "1 to {MAX_NODE_ID_LEN} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeId, E> {
                NodeId::from_bytes(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeId, A::Error> {
                let mut buf = [0u8; MAX_NODE_ID_LEN];
                let mut n = 0;
                while let Some(b) = seq.next_element::<u8>()? {
                    if n >= MAX_NODE_ID_LEN {
                        return Err(de::Error::invalid_length(n + 1, &self));
                    }
                    buf[n] = b;
                    n += 1;
                }
                NodeId::from_bytes(&buf[..n]).map_err(|_| de::Error::invalid_length(n, &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A BLAKE3 hash: of a chunk's bytes, or the root hash naming a blob
/// (see [`crate::blob`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// BLAKE3 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Twelve hex digits is plenty to follow a blob through logs.
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// Globally unique task id. Owners derive it from their id and a sequence
/// number with [`TaskId::derive`], so two owners never collide.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct TaskId(pub u128);

impl TaskId {
    /// First 16 bytes of BLAKE3(`owner` || `seq`).
    pub fn derive(owner: &NodeId, seq: u64) -> TaskId {
        let mut h = blake3::Hasher::new_derive_key("shoal task id v1");
        h.update(owner.as_bytes());
        h.update(&seq.to_le_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        TaskId(u128::from_le_bytes(out))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{:08x}", (self.0 >> 96) as u32)
    }
}

/// Auction round of a task. Every (re-)auction uses a fresh, larger epoch; a
/// lease, its heartbeats and its result carry the epoch they belong to, so
/// anything from an older epoch is recognisably stale.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u32);

impl Epoch {
    /// The following epoch.
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_round_trips_and_bounds() {
        let id = NodeId::from_bytes(&[7u8; 38]).unwrap();
        let enc = postcard::to_allocvec(&id).unwrap();
        assert_eq!(postcard::from_bytes::<NodeId>(&enc).unwrap(), id);
        assert!(NodeId::from_bytes(&[]).is_err());
        assert!(NodeId::from_bytes(&[0u8; 65]).is_err());
        let mut long = vec![65u8];
        long.extend([1u8; 65]);
        assert!(postcard::from_bytes::<NodeId>(&long).is_err());
        assert!(NodeId::from_u64(1) < NodeId::from_u64(2));
        assert_eq!(NodeId::from_u64(42).to_string(), "n42");
    }

    #[test]
    fn task_ids_differ_per_owner_and_seq() {
        let a = NodeId::from_u64(1);
        let b = NodeId::from_u64(2);
        assert_ne!(TaskId::derive(&a, 0), TaskId::derive(&a, 1));
        assert_ne!(TaskId::derive(&a, 0), TaskId::derive(&b, 0));
    }

    proptest::proptest! {
        /// Ids sort and compare as their bytes do, whatever their lengths
        /// (prefixes, trailing zero bytes, the whole 64).
        #[test]
        fn node_ids_order_as_their_bytes(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..=64),
            b in proptest::collection::vec(0u8..3, 1..=64),
            cut in 0usize..64,
        ) {
            // Draw a prefix of `a` too, and a copy with zeros appended.
            let p = &a[..(cut % a.len()) + 1];
            let mut z = a.clone();
            z.truncate(63);
            z.push(0);
            for (x, y) in [(&a[..], &b[..]), (&a[..], p), (&a[..], &z[..]), (&b[..], &z[..])] {
                let (ix, iy) = (NodeId::from_bytes(x).unwrap(), NodeId::from_bytes(y).unwrap());
                proptest::prop_assert_eq!(ix.cmp(&iy), x.cmp(y));
                proptest::prop_assert_eq!(ix == iy, x == y);
            }
        }
    }
}
