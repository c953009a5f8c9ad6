//! Collections whose maximum length is part of their type.
//!
//! Every variable-length field of a wire message is one of these. Their
//! `Deserialize` impls reject a declared length above the bound *before*
//! allocating, so a peer that writes "4 billion elements follow" into a
//! 40-byte frame costs nothing. (serde's own `Vec` impl would pre-allocate up
//! to 1 MiB from the declared length; nested, that is several MiB for a frame
//! whose limit is a few hundred bytes.)

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value did not fit the bound of the field it was put into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} holds {len} items, the limit is {max}")]
pub struct CapacityError {
    /// Which kind of container overflowed (`"vec"`, `"bytes"`, `"string"`).
    pub what: &'static str,
    /// Length that was offered.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

/// A `Vec<T>` of at most `MAX` elements.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// The bound.
    pub const MAX: usize = MAX;

    /// An empty vector.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Wraps `v` if it is within the bound.
    pub fn try_from_vec(v: Vec<T>) -> Result<Self, CapacityError> {
        if v.len() > MAX {
            return Err(CapacityError {
                what: "vec",
                len: v.len(),
                max: MAX,
            });
        }
        Ok(Self(v))
    }

    /// Keeps the first `MAX` elements of `v`, dropping the rest.
    pub fn truncating(mut v: Vec<T>) -> Self {
        v.truncate(MAX);
        Self(v)
    }

    /// Appends `item`, or hands it back when full.
    pub fn try_push(&mut self, item: T) -> Result<(), T> {
        if self.0.len() >= MAX {
            return Err(item);
        }
        self.0.push(item);
        Ok(())
    }

    /// Unwraps into the inner vector.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const MAX: usize> TryFrom<Vec<T>> for BoundedVec<T, MAX> {
    type Error = CapacityError;
    fn try_from(v: Vec<T>) -> Result<Self, CapacityError> {
        Self::try_from_vec(v)
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = BoundedVec<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a sequence of at most {MAX} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // postcard reports the declared length as the size hint: refuse
                // it before reserving anything.
                let hint = seq.size_hint().unwrap_or(0);
                if hint > MAX {
                    return Err(de::Error::invalid_length(hint, &self));
                }
                let mut out = Vec::with_capacity(hint);
                while let Some(item) = seq.next_element()? {
                    if out.len() >= MAX {
                        return Err(de::Error::invalid_length(MAX + 1, &self));
                    }
                    out.push(item);
                }
                Ok(BoundedVec(out))
            }
        }
        d.deserialize_seq(V::<T, MAX>(PhantomData))
    }
}

/// A byte string of at most `MAX` bytes, encoded as length + raw bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedBytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> BoundedBytes<MAX> {
    /// The bound.
    pub const MAX: usize = MAX;

    /// Wraps `v` if it is within the bound.
    pub fn try_from_vec(v: Vec<u8>) -> Result<Self, CapacityError> {
        if v.len() > MAX {
            return Err(CapacityError {
                what: "bytes",
                len: v.len(),
                max: MAX,
            });
        }
        Ok(Self(v))
    }

    /// Copies `s` if it is within the bound.
    pub fn try_from_slice(s: &[u8]) -> Result<Self, CapacityError> {
        if s.len() > MAX {
            return Err(CapacityError {
                what: "bytes",
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Self(s.to_vec()))
    }

    /// Unwraps into the inner vector.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl<const MAX: usize> Deref for BoundedBytes<MAX> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedBytes<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl<const MAX: usize> Serialize for BoundedBytes<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedBytes<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: usize>;
        impl<'de, const MAX: usize> Visitor<'de> for V<MAX> {
            type Value = BoundedBytes<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                if v.len() > MAX {
                    return Err(E::invalid_length(v.len(), &self));
                }
                Ok(BoundedBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                if v.len() > MAX {
                    return Err(E::invalid_length(v.len(), &self));
                }
                Ok(BoundedBytes(v))
            }
            // Self-describing formats (JSON on the REST API) hand bytes over as
            // a sequence of numbers.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > MAX {
                    return Err(de::Error::invalid_length(hint, &self));
                }
                let mut out = Vec::with_capacity(hint);
                while let Some(b) = seq.next_element::<u8>()? {
                    if out.len() >= MAX {
                        return Err(de::Error::invalid_length(MAX + 1, &self));
                    }
                    out.push(b);
                }
                Ok(BoundedBytes(out))
            }
        }
        // postcard checks that the declared length is present in the input
        // before handing us a borrowed slice, so nothing is allocated for a
        // length the frame does not actually contain.
        d.deserialize_bytes(V::<MAX>)
    }
}

/// A UTF-8 string of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> BoundedString<MAX> {
    /// The bound, in bytes.
    pub const MAX: usize = MAX;

    /// Copies `s` if it is within the bound.
    pub fn try_new(s: &str) -> Result<Self, CapacityError> {
        if s.len() > MAX {
            return Err(CapacityError {
                what: "string",
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> Deref for BoundedString<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MAX: usize> fmt::Display for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<const MAX: usize> TryFrom<&str> for BoundedString<MAX> {
    type Error = CapacityError;
    fn try_from(s: &str) -> Result<Self, CapacityError> {
        Self::try_new(s)
    }
}

impl<const MAX: usize> Serialize for BoundedString<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: usize>;
        impl<'de, const MAX: usize> Visitor<'de> for V<MAX> {
            type Value = BoundedString<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {MAX} bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.len() > MAX {
                    return Err(E::invalid_length(v.len(), &self));
                }
                Ok(BoundedString(v.to_owned()))
            }
        }
        d.deserialize_str(V::<MAX>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_length_over_bound_is_refused() {
        // varint 0xFFFF_FFFF as the length of a BoundedVec<u64, 4>
        let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
        assert!(postcard::from_bytes::<BoundedVec<u64, 4>>(&bytes).is_err());
        assert!(postcard::from_bytes::<BoundedBytes<4>>(&bytes).is_err());
        assert!(postcard::from_bytes::<BoundedString<4>>(&bytes).is_err());
    }

    #[test]
    fn within_bound_round_trips() {
        let v: BoundedVec<u32, 3> = BoundedVec::try_from_vec(vec![1, 2, 3]).unwrap();
        let enc = postcard::to_allocvec(&v).unwrap();
        assert_eq!(postcard::from_bytes::<BoundedVec<u32, 3>>(&enc).unwrap(), v);
        assert!(postcard::from_bytes::<BoundedVec<u32, 2>>(&enc).is_err());
        assert!(BoundedVec::<u32, 2>::try_from_vec(vec![1, 2, 3]).is_err());
        let s = BoundedString::<8>::try_new("héllo").unwrap();
        let enc = postcard::to_allocvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<BoundedString<8>>(&enc).unwrap(), s);
        assert!(BoundedString::<3>::try_new("long").is_err());
    }
}
