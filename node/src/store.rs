//! The node's durable state, in one redb database (`<data-dir>/shoal.redb`).
//!
//! Tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | identity key (libp2p protobuf keypair), ingest offset, counters, the market's auction owner state |
//! | `snapshots` | version | postcard [`crate::learner::Snapshot`] (model + schema + offset) |
//! | `learn_log` | sequence | postcard batch accepted by `POST /v1/learn`, not yet in a snapshot |
//! | `blobs` | root hash | blob body (content-addressed, [`shoal_protocol::Manifest`] root) |
//! | `blob_order` | sequence | root hash, oldest first, for eviction |
//! | `peer_models` | peer id | last snapshot fetched from that peer |
//! | `tasks` | task id (16 bytes, big-endian) | task ledger entry (JSON `TaskRecord`), written with the owner state |
//!
//! Every write commits with redb's default durability (fsync) before the
//! caller is told it succeeded. A snapshot, the ingest offset and the removal
//! of the learn-log entries it covers share one transaction, so after
//! `kill -9` the node restarts at a consistent (model, offset) pair and
//! replays exactly the log entries the snapshot does not contain.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use shoal_protocol::Hash;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const LEARN_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("learn_log");
const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
const BLOB_ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_order");
const PEER_MODELS: TableDefinition<&str, &[u8]> = TableDefinition::new("peer_models");
const TASKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tasks");

const KEY_IDENTITY: &str = "identity";
const KEY_OFFSET: &str = "ingest_offset";
const KEY_BLOB_BYTES: &str = "blob_bytes";
const KEY_BLOB_SEQ: &str = "blob_seq";
const KEY_MARKET_OWNER: &str = "market_owner";

/// Snapshots kept besides the newest (for peers still fetching an older one).
const KEEP_SNAPSHOTS: usize = 3;

/// A storage failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    #[error("database {what}: {source}")]
    Db {
        what: &'static str,
        #[source]
        source: redb::Error,
    },
    #[error("corrupt {what} in database: {why}")]
    Corrupt { what: &'static str, why: String },
    #[error("blob of {size} bytes exceeds the blob budget of {budget} bytes")]
    BlobTooLarge { size: u64, budget: u64 },
}

fn db<E: Into<redb::Error>>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Db {
        what,
        source: e.into(),
    }
}

fn u64_of(what: &'static str, v: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        what,
        why: format!("expected 8 bytes, found {}", v.len()),
    })?;
    Ok(u64::from_le_bytes(arr))
}

/// What the latest snapshot row holds, without decoding the model.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub version: u64,
    pub bytes: Vec<u8>,
}

/// A task ledger row: (task id bytes, JSON entry).
pub type TaskRow = (Vec<u8>, Vec<u8>);

/// Handle to the database; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) `<dir>/shoal.redb`, creating `dir` with mode 0700
    /// and the file with mode 0600: it holds the node's secret key.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join("shoal.redb");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| open_err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))?;
        restrict_permissions(dir, 0o700);
        let database = Database::create(&path).map_err(open_err)?;
        restrict_permissions(&path, 0o600);
        let store = Store {
            db: Arc::new(database),
            path,
        };
        store.create_tables()?;
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        tx.open_table(META).map_err(db("open meta"))?;
        tx.open_table(SNAPSHOTS).map_err(db("open snapshots"))?;
        tx.open_table(LEARN_LOG).map_err(db("open learn_log"))?;
        tx.open_table(BLOBS).map_err(db("open blobs"))?;
        tx.open_table(BLOB_ORDER).map_err(db("open blob_order"))?;
        tx.open_table(PEER_MODELS).map_err(db("open peer_models"))?;
        tx.open_table(TASKS).map_err(db("open tasks"))?;
        tx.commit().map_err(db("commit"))
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(META).map_err(db("open meta"))?;
        let v = t.get(key).map_err(db("read meta"))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// The node's identity keypair (protobuf encoding), creating and storing
    /// it with `generate` on first use so the peer id is stable across
    /// restarts.
    pub fn identity_or_create(
        &self,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        if let Some(k) = self.meta_get(KEY_IDENTITY)? {
            return Ok(k);
        }
        let key = generate();
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut t = tx.open_table(META).map_err(db("open meta"))?;
            t.insert(KEY_IDENTITY, key.as_slice())
                .map_err(db("write identity"))?;
        }
        tx.commit().map_err(db("commit identity"))?;
        Ok(key)
    }

    /// Ingest offset of the latest snapshot (samples of the source consumed).
    pub fn ingest_offset(&self) -> Result<u64, StoreError> {
        match self.meta_get(KEY_OFFSET)? {
            Some(v) => u64_of("ingest offset", &v),
            None => Ok(0),
        }
    }

    /// Newest snapshot, if any.
    pub fn latest_snapshot(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(SNAPSHOTS).map_err(db("open snapshots"))?;
        let last = t.last().map_err(db("read snapshots"))?;
        Ok(last.map(|(k, v)| StoredSnapshot {
            version: k.value(),
            bytes: v.value().to_vec(),
        }))
    }

    /// Number of snapshots stored.
    pub fn snapshot_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(SNAPSHOTS).map_err(db("open snapshots"))?;
        t.len().map_err(db("count snapshots"))
    }

    /// Writes snapshot `version`, the ingest `offset`, and drops the learn-log
    /// entries up to and including `log_upto` — all in one transaction.
    /// Keeps the newest few snapshots only.
    pub fn commit_snapshot(
        &self,
        version: u64,
        bytes: &[u8],
        offset: u64,
        log_upto: Option<u64>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut snaps = tx.open_table(SNAPSHOTS).map_err(db("open snapshots"))?;
            snaps.insert(version, bytes).map_err(db("write snapshot"))?;
            while snaps.len().map_err(db("count snapshots"))? > KEEP_SNAPSHOTS as u64 {
                snaps.pop_first().map_err(db("prune snapshots"))?;
            }
            let mut meta = tx.open_table(META).map_err(db("open meta"))?;
            meta.insert(KEY_OFFSET, offset.to_le_bytes().as_slice())
                .map_err(db("write offset"))?;
            if let Some(upto) = log_upto {
                let mut log = tx.open_table(LEARN_LOG).map_err(db("open learn_log"))?;
                log.retain_in(..=upto, |_, _| false)
                    .map_err(db("trim learn_log"))?;
            }
        }
        tx.commit().map_err(db("commit snapshot"))
    }

    /// Appends one accepted `POST /v1/learn` batch; durable when this returns.
    pub fn append_learn_log(&self, batch: &[u8]) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        let seq;
        {
            let mut log = tx.open_table(LEARN_LOG).map_err(db("open learn_log"))?;
            seq = match log.last().map_err(db("read learn_log"))? {
                Some((k, _)) => k.value() + 1,
                None => 0,
            };
            log.insert(seq, batch).map_err(db("append learn_log"))?;
        }
        tx.commit().map_err(db("commit learn_log"))?;
        Ok(seq)
    }

    /// Learn-log batches not yet covered by a snapshot, oldest first.
    pub fn learn_log(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(LEARN_LOG).map_err(db("open learn_log"))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db("read learn_log"))? {
            let (k, v) = row.map_err(db("read learn_log"))?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Stores a blob under its root hash, evicting the oldest blobs until
    /// the total fits `budget` bytes. Storing a blob already held is a no-op.
    pub fn put_blob(&self, root: &Hash, body: &[u8], budget: u64) -> Result<(), StoreError> {
        let size = body.len() as u64;
        if size > budget {
            return Err(StoreError::BlobTooLarge { size, budget });
        }
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut blobs = tx.open_table(BLOBS).map_err(db("open blobs"))?;
            if blobs
                .get(root.0.as_slice())
                .map_err(db("read blobs"))?
                .is_some()
            {
                return Ok(());
            }
            let mut order = tx.open_table(BLOB_ORDER).map_err(db("open blob_order"))?;
            let mut meta = tx.open_table(META).map_err(db("open meta"))?;
            let mut total = match meta.get(KEY_BLOB_BYTES).map_err(db("read meta"))? {
                Some(v) => u64_of("blob bytes", v.value())?,
                None => 0,
            };
            let seq = match meta.get(KEY_BLOB_SEQ).map_err(db("read meta"))? {
                Some(v) => u64_of("blob seq", v.value())?,
                None => 0,
            };
            while total + size > budget {
                let Some((_, h)) = order.pop_first().map_err(db("evict blob"))? else {
                    break;
                };
                let h = h.value().to_vec();
                if let Some(old) = blobs.remove(h.as_slice()).map_err(db("evict blob"))? {
                    total = total.saturating_sub(old.value().len() as u64);
                }
            }
            blobs
                .insert(root.0.as_slice(), body)
                .map_err(db("write blob"))?;
            order
                .insert(seq, root.0.as_slice())
                .map_err(db("write blob_order"))?;
            meta.insert(KEY_BLOB_BYTES, (total + size).to_le_bytes().as_slice())
                .map_err(db("write meta"))?;
            meta.insert(KEY_BLOB_SEQ, (seq + 1).to_le_bytes().as_slice())
                .map_err(db("write meta"))?;
        }
        tx.commit().map_err(db("commit blob"))
    }

    /// A blob's body, if held.
    pub fn get_blob(&self, root: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(BLOBS).map_err(db("open blobs"))?;
        let v = t.get(root.0.as_slice()).map_err(db("read blob"))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// Whether a blob is held (without reading its body).
    pub fn has_blob(&self, root: &Hash) -> Result<bool, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(BLOBS).map_err(db("open blobs"))?;
        let v = t.get(root.0.as_slice()).map_err(db("read blob"))?;
        Ok(v.is_some())
    }

    /// The newest `limit` blobs: (root hash, size), newest first.
    pub fn blob_list(&self, limit: usize) -> Result<Vec<(Hash, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let order = tx.open_table(BLOB_ORDER).map_err(db("open blob_order"))?;
        let blobs = tx.open_table(BLOBS).map_err(db("open blobs"))?;
        let mut out = Vec::new();
        for row in order
            .iter()
            .map_err(db("read blob_order"))?
            .rev()
            .take(limit)
        {
            let (_, h) = row.map_err(db("read blob_order"))?;
            let Ok(arr) = <[u8; 32]>::try_from(h.value()) else {
                continue;
            };
            if let Some(b) = blobs.get(h.value()).map_err(db("read blob"))? {
                out.push((Hash(arr), b.value().len() as u64));
            }
        }
        Ok(out)
    }

    /// Number of blobs held and their total size in bytes.
    pub fn blob_stats(&self) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(BLOBS).map_err(db("open blobs"))?;
        let n = t.len().map_err(db("count blobs"))?;
        let m = tx.open_table(META).map_err(db("open meta"))?;
        let bytes = match m.get(KEY_BLOB_BYTES).map_err(db("read meta"))? {
            Some(v) => u64_of("blob bytes", v.value())?,
            None => 0,
        };
        Ok((n, bytes))
    }

    /// Remembers the last model snapshot fetched from `peer`.
    pub fn put_peer_model(&self, peer: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut t = tx.open_table(PEER_MODELS).map_err(db("open peer_models"))?;
            t.insert(peer, bytes).map_err(db("write peer model"))?;
        }
        tx.commit().map_err(db("commit peer model"))
    }

    /// Peers whose model we hold.
    pub fn peer_model_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(PEER_MODELS).map_err(db("open peer_models"))?;
        t.len().map_err(db("count peer models"))
    }

    /// The task ledger: (task id bytes, JSON entry), in key order, at most
    /// `limit` entries.
    pub fn tasks(&self, limit: usize) -> Result<Vec<TaskRow>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(TASKS).map_err(db("open tasks"))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db("read tasks"))?.take(limit) {
            let (k, v) = row.map_err(db("read tasks"))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The market's persisted auction owner state, if any.
    pub fn market_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.meta_get(KEY_MARKET_OWNER)
    }

    /// Writes the market owner state (when given) and task ledger rows in
    /// one transaction: a commit or failure and the state that emitted it
    /// are durable together or not at all.
    pub fn commit_market(
        &self,
        owner_state: Option<&[u8]>,
        rows: &[TaskRow],
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            if let Some(state) = owner_state {
                let mut meta = tx.open_table(META).map_err(db("open meta"))?;
                meta.insert(KEY_MARKET_OWNER, state)
                    .map_err(db("write market state"))?;
            }
            let mut t = tx.open_table(TASKS).map_err(db("open tasks"))?;
            for (k, v) in rows {
                t.insert(k.as_slice(), v.as_slice())
                    .map_err(db("write task"))?;
            }
        }
        tx.commit().map_err(db("commit market"))
    }

    /// One task ledger entry.
    pub fn task(&self, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let t = tx.open_table(TASKS).map_err(db("open tasks"))?;
        let v = t.get(id).map_err(db("read task"))?;
        Ok(v.map(|g| g.value().to_vec()))
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: a data dir on a filesystem without modes still works.
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict permissions");
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path, _mode: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "shoal-store-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        d
    }

    #[test]
    fn identity_is_stable_and_snapshot_trims_log() {
        let dir = tmp();
        let s = Store::open(&dir).unwrap();
        let k1 = s.identity_or_create(|| vec![1, 2, 3]).unwrap();
        let k2 = s.identity_or_create(|| vec![9]).unwrap();
        assert_eq!(k1, k2);
        let a = s.append_learn_log(b"a").unwrap();
        let b = s.append_learn_log(b"b").unwrap();
        s.commit_snapshot(1, b"snap", 42, Some(a)).unwrap();
        assert_eq!(s.ingest_offset().unwrap(), 42);
        let log = s.learn_log().unwrap();
        assert_eq!(log, vec![(b, b"b".to_vec())]);
        drop(s);
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.latest_snapshot().unwrap().unwrap().version, 1);
        assert_eq!(s.identity_or_create(|| vec![7]).unwrap(), k1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn blobs_evict_oldest_within_budget() {
        let dir = tmp();
        let s = Store::open(&dir).unwrap();
        let h = |i: u8| Hash([i; 32]);
        for i in 0..5 {
            s.put_blob(&h(i), &[i; 100], 250).unwrap();
        }
        let (n, bytes) = s.blob_stats().unwrap();
        assert_eq!((n, bytes), (2, 200));
        assert!(s.get_blob(&h(0)).unwrap().is_none());
        assert_eq!(s.get_blob(&h(4)).unwrap().unwrap(), vec![4; 100]);
        assert!(s.put_blob(&h(9), &[0; 300], 250).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
