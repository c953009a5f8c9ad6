//! Pulling a peer's model snapshot: the digest from its gossip names the
//! root hash; the manifest is verified against that root, then each chunk
//! against the manifest ([`shoal_protocol::BlobAssembler`]), so a lying peer
//! wastes at most one chunk.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use shoal_protocol::{BlobAssembler, BlobError, Hash, Manifest, ModelDigest, Request, Response};
use tracing::{debug, info_span, Instrument};

use super::{Client, NetError};

/// Why a model fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no model digest known for peer {0} (no status gossip from it yet)")]
    NoDigest(PeerId),
    #[error("peer {0} does not hold that snapshot or blob")]
    NotFound(PeerId),
    #[error("peer {peer} answered {what}")]
    Unexpected { peer: PeerId, what: String },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("verification: {0}")]
    Blob(#[from] BlobError),
}

/// A verified snapshot from a peer.
#[derive(Debug)]
pub struct FetchedModel {
    pub digest: ModelDigest,
    pub bytes: Vec<u8>,
    pub elapsed: Duration,
}

/// Downloads and verifies every chunk of blob `root` described by `manifest`.
async fn fetch_chunks(
    client: &Client,
    peer: PeerId,
    root: Hash,
    manifest: Manifest,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    // The assembler checks the manifest against the root we asked for.
    let mut asm = BlobAssembler::new(root, manifest, limit)?;
    let missing: Vec<u32> = asm.missing().collect();
    for index in missing {
        match client
            .request(peer, Request::ChunkFetch { hash: root, index })
            .await?
        {
            Response::Chunk(c) => {
                asm.insert(&c)?;
            }
            Response::NotFound { .. } => return Err(FetchError::NotFound(peer)),
            other => {
                return Err(FetchError::Unexpected {
                    peer,
                    what: format!("{other:?}"),
                })
            }
        }
    }
    Ok(asm.finish()?)
}

/// Fetches data blob `root` from `peer` (manifest, then verified chunks),
/// at most `limit` bytes.
pub async fn fetch_blob(
    client: &Client,
    peer: PeerId,
    root: Hash,
    limit: u64,
) -> Result<(Vec<u8>, Duration), FetchError> {
    async move {
        let started = Instant::now();
        let manifest = match client
            .request(peer, Request::ManifestFetch { hash: root })
            .await?
        {
            Response::Manifest(m) => m,
            Response::NotFound { .. } => return Err(FetchError::NotFound(peer)),
            other => {
                return Err(FetchError::Unexpected {
                    peer,
                    what: format!("{other:?}"),
                })
            }
        };
        let bytes = fetch_chunks(client, peer, root, manifest, limit).await?;
        debug!(bytes = bytes.len(), "blob fetched");
        Ok((bytes, started.elapsed()))
    }
    .instrument(info_span!("fetch_blob", peer = %peer, blob = %root))
    .await
}

/// Fetches the newest snapshot `peer` announced, at most `limit` bytes.
pub async fn fetch_model(
    client: &Client,
    peer: PeerId,
    limit: u64,
) -> Result<FetchedModel, FetchError> {
    async move {
        let started = Instant::now();
        let digest = client
            .peer_digest(peer)
            .await?
            .ok_or(FetchError::NoDigest(peer))?;
        let root = digest.hash;
        let (digest, manifest) = match client
            .request(peer, Request::ModelFetch { hash: root })
            .await?
        {
            Response::ModelManifest { digest, manifest } => (digest, manifest),
            Response::NotFound { .. } => return Err(FetchError::NotFound(peer)),
            other => {
                return Err(FetchError::Unexpected {
                    peer,
                    what: format!("{other:?}"),
                })
            }
        };
        let bytes = fetch_chunks(client, peer, root, manifest, limit).await?;
        debug!(
            bytes = bytes.len(),
            version = digest.version,
            "model fetched"
        );
        Ok(FetchedModel {
            digest,
            bytes,
            elapsed: started.elapsed(),
        })
    }
    .instrument(info_span!("fetch_model", peer = %peer))
    .await
}
