//! RocksDB implementation of `KvStore`.

use crate::{BatchOp, Cf, Direction, Durability, KvIter, KvPair, KvStore, StoreError, WriteBatch};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, FlushOptions,
    IteratorMode, Options, WriteOptions, DB,
};
use std::path::{Path, PathBuf};

/// Tuning knobs with safe defaults.
#[derive(Clone, Debug)]
pub struct RocksConfig {
    /// Shared block cache size in bytes.
    pub block_cache_bytes: usize,
    /// Maximum open files (-1 = unlimited).
    pub max_open_files: i32,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            block_cache_bytes: 128 * 1024 * 1024,
            max_open_files: 512,
        }
    }
}

/// One RocksDB database with a fixed set of column families.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
}

fn backend(e: rocksdb::Error) -> StoreError {
    let text = e.to_string();
    // RocksDB reports ENOSPC only in its message ("IO error: No space left on device: …").
    if text.contains("No space left on device") {
        StoreError::NoSpace(text)
    } else {
        StoreError::Backend(text)
    }
}

/// Options of every column family (and of the database itself).
fn column_options(cache: &Cache) -> Options {
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_bloom_filter(10.0, false);
    let mut o = Options::default();
    o.set_block_based_table_factory(&block);
    // Recent data is read and rewritten often: cheap LZ4. Old data settles in the bottom
    // level: denser zstd.
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_bottommost_compression_type(DBCompressionType::Zstd);
    o
}

/// `columns` and every other column family already on disk at `path` (not `default`).
fn column_names(opts: &Options, path: &Path, columns: &[Cf]) -> Vec<String> {
    let mut names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    if let Ok(existing) = DB::list_cf(opts, path) {
        for name in existing {
            if name != "default" && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

impl RocksStore {
    /// Opens (or creates) the database at `path` with `columns`. Column families that exist on
    /// disk but are not listed are opened too, so an older binary can still open a newer DB.
    pub fn open(
        path: &Path,
        columns: &[Cf],
        config: &RocksConfig,
    ) -> Result<RocksStore, StoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| StoreError::Backend(format!("create {}: {e}", path.display())))?;
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let mut db_opts = column_options(&cache);
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(config.max_open_files);
        db_opts.set_keep_log_file_num(5);
        // Never trust a torn WAL tail: recover to the last complete, consistent batch.
        db_opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
        let descriptors = column_names(&db_opts, path, columns)
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, column_options(&cache)));
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors).map_err(backend)?;
        Ok(RocksStore {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Opens the database that another process holds open at `primary` as a read-only
    /// secondary (RocksDB keeps the secondary's own files in `secondary`): a consistent view of
    /// the primary as of this call, to read a running node's data without stopping it.
    /// Writes fail.
    pub fn open_secondary(
        primary: &Path,
        secondary: &Path,
        config: &RocksConfig,
    ) -> Result<RocksStore, StoreError> {
        std::fs::create_dir_all(secondary)
            .map_err(|e| StoreError::Backend(format!("create {}: {e}", secondary.display())))?;
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let mut db_opts = column_options(&cache);
        // A secondary holds every table file open, so the primary's compactions cannot take
        // a file away from under a read.
        db_opts.set_max_open_files(-1);
        let descriptors = column_names(&db_opts, primary, &[])
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, column_options(&cache)));
        let db = DB::open_cf_descriptors_as_secondary(&db_opts, primary, secondary, descriptors)
            .map_err(backend)?;
        Ok(RocksStore {
            db,
            path: primary.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(cf)
            .ok_or_else(|| StoreError::UnknownColumn(cf.to_string()))
    }

    /// Flushes every column family's memtable and compacts it fully, so deleted data leaves
    /// the disk now rather than at the next compaction (benchmarks measure disk after it).
    pub fn compact(&self) -> Result<(), StoreError> {
        let names = DB::list_cf(&Options::default(), &self.path).map_err(backend)?;
        for name in names {
            if let Some(cf) = self.db.cf_handle(&name) {
                self.db.flush_cf(cf).map_err(backend)?;
                self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
            }
        }
        Ok(())
    }

    /// Approximate on-disk size of live data, for metrics.
    pub fn approximate_size_bytes(&self) -> u64 {
        self.db
            .property_int_value("rocksdb.total-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

impl KvStore for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let handle = self.cf(cf)?;
        self.db.get_cf(handle, key).map_err(backend)
    }

    fn disk_bytes(&self, cfs: &[Cf]) -> Option<u64> {
        let mut total: u64 = 0;
        for cf in cfs {
            let handle = self.db.cf_handle(cf)?;
            let live = self
                .db
                .property_int_value_cf(handle, "rocksdb.live-sst-files-size")
                .ok()
                .flatten()?;
            total = total.checked_add(live)?;
        }
        Some(total)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError> {
        // Sized up front: RocksDB's batch is one growing buffer, and a snapshot restore's or a
        // large block's batch of megabytes would otherwise be copied at every doubling.
        let bytes: usize = batch
            .ops()
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, value, .. } => key.len() + value.len() + 16,
                BatchOp::Delete { key, .. } => key.len() + 16,
            })
            .sum();
        let mut wb = rocksdb::WriteBatch::with_capacity_bytes(bytes + 12);
        // A block's batch has tens of thousands of operations over a dozen column families:
        // resolve each family's handle once, not per operation.
        let mut handles: Vec<(Cf, &rocksdb::ColumnFamily)> = Vec::new();
        let mut handle = |cf: Cf| -> Result<&rocksdb::ColumnFamily, StoreError> {
            if let Some((_, h)) = handles
                .iter()
                .find(|(name, _)| std::ptr::eq(*name, cf) || *name == cf)
            {
                return Ok(*h);
            }
            let h = self.cf(cf)?;
            handles.push((cf, h));
            Ok(h)
        };
        for op in batch.ops() {
            match op {
                BatchOp::Put { cf, key, value } => wb.put_cf(handle(cf)?, key, value),
                BatchOp::Delete { cf, key } => wb.delete_cf(handle(cf)?, key),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        opts.disable_wal(durability == Durability::Unlogged);
        self.db.write_opt(wb, &opts).map_err(backend)
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every family: unlogged data may sit in any memtable. `FlushOptions` waits by default,
        // and RocksDB fsyncs the table files a flush writes before recording them.
        let names = DB::list_cf(&Options::default(), &self.path).map_err(backend)?;
        let handles: Vec<&rocksdb::ColumnFamily> =
            names.iter().filter_map(|n| self.db.cf_handle(n)).collect();
        self.db
            .flush_cfs_opt(&handles, &FlushOptions::default())
            .map_err(backend)?;
        self.db.flush_wal(true).map_err(backend)
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        self.db
            .batched_multi_get_cf(self.cf(cf)?, keys, sorted)
            .into_iter()
            .map(|r| r.map(|v| v.map(|s| s.to_vec())).map_err(backend))
            .collect()
    }

    fn floor_entries(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<KvPair>>, StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            it.seek_for_prev(k);
            out.push(it.item().map(|(k, v)| (k.to_vec(), v.to_vec())));
        }
        it.status().map_err(backend)?;
        Ok(out)
    }

    fn iter_from<'a>(
        &'a self,
        cf: Cf,
        start: &[u8],
        direction: Direction,
    ) -> Result<KvIter<'a>, StoreError> {
        let handle = self.cf(cf)?;
        let dir = match direction {
            Direction::Forward => rocksdb::Direction::Forward,
            Direction::Reverse => rocksdb::Direction::Reverse,
        };
        let it = self
            .db
            .iterator_cf(handle, IteratorMode::From(start, dir))
            .map(|r| {
                r.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(backend)
            });
        Ok(Box::new(it))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn the_disk_bytes_of_column_families_grow_with_what_is_flushed_into_them() {
        let dir = tempfile::tempdir().unwrap();
        let cols = [conformance::CF_A, conformance::CF_B];
        let s = RocksStore::open(dir.path(), &cols, &RocksConfig::default()).unwrap();
        assert_eq!(s.disk_bytes(&cols), Some(0));
        let mut b = WriteBatch::new();
        for i in 0..1_000u32 {
            b.put(conformance::CF_A, i.to_be_bytes().to_vec(), vec![7; 100]);
        }
        s.write(b, Durability::Sync).unwrap();
        s.flush().unwrap();
        let a = s.disk_bytes(&[conformance::CF_A]).unwrap();
        assert!(a > 1_000, "{a}");
        assert_eq!(s.disk_bytes(&[conformance::CF_B]), Some(0));
        assert_eq!(s.disk_bytes(&cols), Some(a));
        assert_eq!(s.disk_bytes(&["no-such-family"]), None);
        assert_eq!(crate::MemStore::new(&cols).disk_bytes(&cols), None);
    }

    #[test]
    fn conforms_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let cols = [conformance::CF_A, conformance::CF_B];
        {
            let s = RocksStore::open(dir.path(), &cols, &RocksConfig::default()).unwrap();
            conformance::run(&s);
        }
        let s = RocksStore::open(dir.path(), &cols, &RocksConfig::default()).unwrap();
        assert_eq!(
            s.get(conformance::CF_A, b"k1").unwrap(),
            Some(b"v1".to_vec())
        );
        assert_eq!(
            s.get(conformance::CF_B, b"bulk").unwrap(),
            Some(b"loaded".to_vec())
        );
        // Opening with fewer columns still opens the ones on disk.
        drop(s);
        let s =
            RocksStore::open(dir.path(), &[conformance::CF_A], &RocksConfig::default()).unwrap();
        assert_eq!(
            s.get(conformance::CF_B, b"k1").unwrap(),
            Some(b"other".to_vec())
        );
    }

    #[test]
    fn a_secondary_reads_what_the_primary_holds_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let secondary = tempfile::tempdir().unwrap();
        let cols = [conformance::CF_A, conformance::CF_B];
        let primary = RocksStore::open(dir.path(), &cols, &RocksConfig::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(conformance::CF_A, b"k".to_vec(), b"v".to_vec());
        primary.write(b, Durability::Sync).unwrap();
        // The primary is still open (a running node): the secondary opens beside it.
        let reader =
            RocksStore::open_secondary(dir.path(), secondary.path(), &RocksConfig::default())
                .unwrap();
        assert_eq!(
            reader.get(conformance::CF_A, b"k").unwrap(),
            Some(b"v".to_vec())
        );
        let mut b = WriteBatch::new();
        b.put(conformance::CF_B, b"x".to_vec(), b"y".to_vec());
        assert!(reader.write(b, Durability::Sync).is_err());
        // A second normal open is refused while the primary holds the lock.
        assert!(RocksStore::open(dir.path(), &cols, &RocksConfig::default()).is_err());
    }

    #[test]
    fn a_flush_moves_unlogged_writes_out_of_memory() {
        let dir = tempfile::tempdir().unwrap();
        let cols = [conformance::CF_A, conformance::CF_B];
        let s = RocksStore::open(dir.path(), &cols, &RocksConfig::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(conformance::CF_A, b"a".to_vec(), b"1".to_vec());
        b.put(conformance::CF_B, b"b".to_vec(), b"2".to_vec());
        s.write(b, Durability::Unlogged).unwrap();
        let in_memory = |cf: Cf| {
            let handle = s.cf(cf).unwrap();
            s.db.property_int_value_cf(handle, "rocksdb.num-entries-active-mem-table")
                .unwrap()
                .unwrap()
        };
        assert_eq!(in_memory(conformance::CF_A), 1);
        s.flush().unwrap();
        // Only the memtables were lost on a crash; both are now in table files.
        assert_eq!(in_memory(conformance::CF_A), 0);
        assert_eq!(in_memory(conformance::CF_B), 0);
        assert_eq!(s.get(conformance::CF_B, b"b").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn a_batch_with_an_unknown_column_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s =
            RocksStore::open(dir.path(), &[conformance::CF_A], &RocksConfig::default()).unwrap();
        let mut b = WriteBatch::new();
        b.put(conformance::CF_A, b"x".to_vec(), b"1".to_vec());
        b.put("missing", b"x".to_vec(), b"1".to_vec());
        assert!(s.write(b, Durability::Sync).is_err());
        assert_eq!(s.get(conformance::CF_A, b"x").unwrap(), None);
    }
}
