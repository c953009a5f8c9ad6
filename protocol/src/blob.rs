//! Chunked, verified transfer of large bodies (model snapshots, data blobs).
//!
//! A body is cut into [`CHUNK_SIZE`] chunks (the last one shorter). The
//! [`Manifest`] lists the BLAKE3 hash of every chunk, and the blob is named by
//! its *root hash*: BLAKE3 in derive-key mode over the body size and the chunk
//! hashes. Anyone holding the body can compute the root; a receiver who knows
//! the root (from a task announce or a model digest) can therefore verify the
//! manifest before downloading anything, and every chunk as it arrives, so a
//! lying peer wastes at most one chunk of bandwidth.
//!
//! Note the root is *not* `b3sum` of the body.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedBytes, BoundedVec};
use crate::msg::Chunk;
use crate::types::Hash;

/// Chunk size in bytes (all chunks but the last).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Most chunks a blob may have.
pub const MAX_CHUNKS: usize = 4096;
/// Largest blob, bytes (256 MiB).
pub const MAX_BLOB_BYTES: u64 = (CHUNK_SIZE as u64) * (MAX_CHUNKS as u64);

const ROOT_CONTEXT: &str = "shoal blob root v1";

/// The chunk hashes of a blob.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Body size, bytes.
    pub size: u64,
    /// BLAKE3 of each chunk, in order.
    pub chunks: BoundedVec<Hash, MAX_CHUNKS>,
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Manifest({} bytes, {} chunks, root {})",
            self.size,
            self.chunks.len(),
            self.root()
        )
    }
}

/// What went wrong with a blob, a manifest or a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The body exceeds the limit (the protocol's or the caller's).
    #[error("blob {hash} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Root hash (all zero when not yet known).
        hash: Hash,
        /// Declared or actual size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest does not hash to the expected root.
    #[error("manifest for blob {expected} hashes to {got}")]
    ManifestMismatch {
        /// Root we asked for.
        expected: Hash,
        /// Root of the manifest we got.
        got: Hash,
    },
    /// The manifest's chunk count does not fit its size.
    #[error("manifest for blob {hash} lists {got} chunks, {size} bytes need {want}")]
    BadManifest {
        /// Root hash.
        hash: Hash,
        /// Declared size.
        size: u64,
        /// Chunks listed.
        got: usize,
        /// Chunks required.
        want: usize,
    },
    /// A chunk of another blob was delivered.
    #[error("chunk of blob {got} delivered for blob {expected}")]
    WrongBlob {
        /// Blob being assembled.
        expected: Hash,
        /// Blob named by the chunk.
        got: Hash,
    },
    /// Chunk index beyond the manifest.
    #[error("blob {hash} chunk {index} out of range: the blob has {chunks} chunks")]
    IndexOutOfRange {
        /// Root hash.
        hash: Hash,
        /// Offending index.
        index: u32,
        /// Chunk count.
        chunks: usize,
    },
    /// A chunk has the wrong length.
    #[error("blob {hash} chunk {index} has {got} bytes, expected {want}")]
    WrongSize {
        /// Root hash.
        hash: Hash,
        /// Chunk index.
        index: u32,
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// A chunk's bytes do not hash to the manifest entry.
    #[error("blob {hash} chunk {index} fails verification: hash {got}, manifest says {want}")]
    HashMismatch {
        /// Root hash.
        hash: Hash,
        /// Chunk index.
        index: u32,
        /// Hash of the bytes received.
        got: Hash,
        /// Hash in the manifest.
        want: Hash,
    },
    /// The same chunk arrived twice.
    #[error("blob {hash} chunk {index} received twice")]
    Duplicate {
        /// Root hash.
        hash: Hash,
        /// Chunk index.
        index: u32,
    },
    /// `finish` was called before every chunk arrived.
    #[error("blob {hash} truncated: got {got} of {want} bytes")]
    Truncated {
        /// Root hash.
        hash: Hash,
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        want: u64,
    },
}

/// Number of chunks needed for `size` bytes.
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64)
}

impl Manifest {
    /// Chunks and hashes `body`.
    pub fn of(body: &[u8]) -> Result<Manifest, BlobError> {
        let size = body.len() as u64;
        if size > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge {
                hash: Hash([0; 32]),
                size,
                limit: MAX_BLOB_BYTES,
            });
        }
        let hashes: Vec<Hash> = body.chunks(CHUNK_SIZE).map(Hash::of).collect();
        let chunks = BoundedVec::try_from_vec(hashes).map_err(|_| BlobError::TooLarge {
            hash: Hash([0; 32]),
            size,
            limit: MAX_BLOB_BYTES,
        })?;
        Ok(Manifest { size, chunks })
    }

    /// The root hash that names the blob.
    pub fn root(&self) -> Hash {
        let mut h = blake3::Hasher::new_derive_key(ROOT_CONTEXT);
        h.update(&self.size.to_le_bytes());
        h.update(&(self.chunks.len() as u64).to_le_bytes());
        for c in self.chunks.iter() {
            h.update(&c.0);
        }
        Hash(*h.finalize().as_bytes())
    }

    /// Expected length of chunk `index`, or `None` when out of range.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        let i = usize::try_from(index).ok()?;
        if i >= self.chunks.len() {
            return None;
        }
        let start = (i as u64).checked_mul(CHUNK_SIZE as u64)?;
        // checked: an unverified manifest may list more chunks than its size.
        let len = self.size.checked_sub(start)?.min(CHUNK_SIZE as u64);
        usize::try_from(len).ok()
    }

    /// Checks that the manifest names `expected` and is internally consistent.
    pub fn verify(&self, expected: &Hash) -> Result<(), BlobError> {
        let got = self.root();
        if got != *expected {
            return Err(BlobError::ManifestMismatch {
                expected: *expected,
                got,
            });
        }
        if self.size > MAX_BLOB_BYTES {
            return Err(BlobError::TooLarge {
                hash: got,
                size: self.size,
                limit: MAX_BLOB_BYTES,
            });
        }
        // chunk_count(size) <= MAX_CHUNKS here, so the cast cannot truncate.
        let want = chunk_count(self.size) as usize;
        if self.chunks.len() != want {
            return Err(BlobError::BadManifest {
                hash: got,
                size: self.size,
                got: self.chunks.len(),
                want,
            });
        }
        Ok(())
    }
}

/// Chunk `index` of `body` (the serving side of [`crate::Request::ChunkFetch`]),
/// or `None` when out of range.
pub fn chunk_of(body: &[u8], root: Hash, index: u32) -> Option<Chunk> {
    let start = usize::try_from(index).ok()?.checked_mul(CHUNK_SIZE)?;
    if start >= body.len() {
        return None;
    }
    let end = body.len().min(start + CHUNK_SIZE);
    let data = BoundedBytes::try_from_slice(&body[start..end]).ok()?;
    Some(Chunk {
        hash: root,
        index,
        data,
    })
}

/// Progress after a chunk was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More chunks are missing.
    Partial {
        /// Chunks still missing.
        missing: usize,
    },
    /// Every chunk is in; call [`BlobAssembler::finish`].
    Complete,
}

/// Reassembles a blob from verified chunks that arrive in any order.
///
/// Memory grows with the chunks actually received and never beyond the
/// manifest's size, which [`BlobAssembler::new`] checked against the
/// caller's limit.
#[derive(Debug)]
pub struct BlobAssembler {
    root: Hash,
    manifest: Manifest,
    parts: Vec<Option<Vec<u8>>>,
    received_bytes: u64,
    missing: usize,
}

impl BlobAssembler {
    /// Starts assembling the blob named `root` from `manifest` (as received
    /// from a peer), refusing bodies larger than `limit` bytes.
    pub fn new(root: Hash, manifest: Manifest, limit: u64) -> Result<Self, BlobError> {
        manifest.verify(&root)?;
        if manifest.size > limit {
            return Err(BlobError::TooLarge {
                hash: root,
                size: manifest.size,
                limit,
            });
        }
        let n = manifest.chunks.len();
        Ok(BlobAssembler {
            root,
            manifest,
            parts: vec![None; n],
            received_bytes: 0,
            missing: n,
        })
    }

    /// The blob's root hash.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Indices still missing, in order (what to request next).
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .filter_map(|(i, _)| u32::try_from(i).ok())
    }

    /// Bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Verifies and stores one chunk.
    pub fn insert(&mut self, chunk: &Chunk) -> Result<Progress, BlobError> {
        let hash = self.root;
        if chunk.hash != hash {
            return Err(BlobError::WrongBlob {
                expected: hash,
                got: chunk.hash,
            });
        }
        let index = chunk.index;
        let want = self
            .manifest
            .chunk_len(index)
            .ok_or(BlobError::IndexOutOfRange {
                hash,
                index,
                chunks: self.parts.len(),
            })?;
        // chunk_len returned Some, so the index fits usize and is in range.
        let i = index as usize;
        if self.parts[i].is_some() {
            return Err(BlobError::Duplicate { hash, index });
        }
        if chunk.data.len() != want {
            return Err(BlobError::WrongSize {
                hash,
                index,
                got: chunk.data.len(),
                want,
            });
        }
        let got = Hash::of(&chunk.data);
        let expect = self.manifest.chunks[i];
        if got != expect {
            return Err(BlobError::HashMismatch {
                hash,
                index,
                got,
                want: expect,
            });
        }
        self.parts[i] = Some(chunk.data.to_vec());
        self.received_bytes += want as u64;
        self.missing -= 1;
        Ok(if self.missing == 0 {
            Progress::Complete
        } else {
            Progress::Partial {
                missing: self.missing,
            }
        })
    }

    /// The body, once complete.
    pub fn finish(self) -> Result<Vec<u8>, BlobError> {
        if self.missing != 0 {
            return Err(BlobError::Truncated {
                hash: self.root,
                got: self.received_bytes,
                want: self.manifest.size,
            });
        }
        let mut out = Vec::with_capacity(usize::try_from(self.manifest.size).unwrap_or(0));
        for p in self.parts.into_iter().flatten() {
            out.extend_from_slice(&p);
        }
        // Every chunk matched its manifest hash and the manifest matched the
        // root, so the body is the one named by the root; a final length check
        // guards the arithmetic above.
        if out.len() as u64 != self.manifest.size {
            return Err(BlobError::Truncated {
                hash: self.root,
                got: out.len() as u64,
                want: self.manifest.size,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn reassembles_in_any_order() {
        let b = body(3 * CHUNK_SIZE + 17);
        let m = Manifest::of(&b).unwrap();
        let root = m.root();
        let mut a = BlobAssembler::new(root, m, 1 << 20).unwrap();
        for i in [3u32, 0, 2, 1] {
            a.insert(&chunk_of(&b, root, i).unwrap()).unwrap();
        }
        assert!(chunk_of(&b, root, 4).is_none());
        assert_eq!(a.finish().unwrap(), b);
    }

    #[test]
    fn empty_blob() {
        let m = Manifest::of(&[]).unwrap();
        let root = m.root();
        let a = BlobAssembler::new(root, m, 0).unwrap();
        assert_eq!(a.finish().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_bad_chunks() {
        let b = body(2 * CHUNK_SIZE + 5);
        let m = Manifest::of(&b).unwrap();
        let root = m.root();
        let mut a = BlobAssembler::new(root, m.clone(), 1 << 20).unwrap();
        let c0 = chunk_of(&b, root, 0).unwrap();
        a.insert(&c0).unwrap();
        assert!(matches!(
            a.insert(&c0),
            Err(BlobError::Duplicate { index: 0, .. })
        ));

        let mut bad = chunk_of(&b, root, 1).unwrap();
        let mut d = bad.data.to_vec();
        d[0] ^= 1;
        bad.data = BoundedBytes::try_from_vec(d).unwrap();
        assert!(matches!(
            a.insert(&bad),
            Err(BlobError::HashMismatch { index: 1, .. })
        ));

        let mut short = chunk_of(&b, root, 2).unwrap();
        short.data = BoundedBytes::try_from_slice(&[1, 2]).unwrap();
        assert!(matches!(
            a.insert(&short),
            Err(BlobError::WrongSize {
                got: 2,
                want: 5,
                ..
            })
        ));

        let mut oob = chunk_of(&b, root, 2).unwrap();
        oob.index = 9;
        assert!(matches!(
            a.insert(&oob),
            Err(BlobError::IndexOutOfRange { index: 9, .. })
        ));

        let mut other = chunk_of(&b, root, 2).unwrap();
        other.hash = Hash([1; 32]);
        assert!(matches!(a.insert(&other), Err(BlobError::WrongBlob { .. })));

        assert!(
            matches!(a.finish(), Err(BlobError::Truncated { got, .. }) if got == CHUNK_SIZE as u64)
        );
    }

    #[test]
    fn rejects_bad_manifests() {
        let b = body(CHUNK_SIZE + 1);
        let m = Manifest::of(&b).unwrap();
        let root = m.root();
        assert!(matches!(
            BlobAssembler::new(root, m.clone(), 100),
            Err(BlobError::TooLarge { limit: 100, .. })
        ));
        assert!(matches!(
            BlobAssembler::new(Hash([0; 32]), m.clone(), 1 << 20),
            Err(BlobError::ManifestMismatch { .. })
        ));
        // A manifest that lies about its size gets a different root, and one
        // whose root was computed over the lie is inconsistent.
        let lying = Manifest {
            size: 10 * CHUNK_SIZE as u64,
            chunks: m.chunks.clone(),
        };
        let lroot = lying.root();
        assert!(matches!(
            BlobAssembler::new(lroot, lying, u64::MAX),
            Err(BlobError::BadManifest {
                got: 2,
                want: 10,
                ..
            })
        ));
    }
}
