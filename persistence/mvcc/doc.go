// Package mvcc is aetcd's multi-version key-value store: etcd v3.6's MVCC
// semantics (revisions, generations, tombstones, compaction) over a bbolt
// file and an in-memory B-tree index.
//
// # Layout
//
// bbolt bucket "key" holds one record per change: the bbolt key is the
// revision {main, sub} encoded as 8 bytes big-endian main, '_', 8 bytes
// big-endian sub (17 bytes), followed by the byte 't' for a deletion
// (tombstone); the value is a marshalled messages.KeyValue (for a tombstone,
// only its key). Bucket "meta" holds the consistent index (the Raft index of
// the last applied entry, 8 bytes big-endian) and the scheduled and finished
// compaction revisions (17-byte revisions), written in the same bbolt
// transaction as the data they describe, and the record format (see
// Integrity). Bucket "lease" holds one record per
// lease: the bbolt key is the lease ID as 8 bytes big-endian, the value a
// marshalled messages.LeaseRecord (ID, granted TTL, last checkpointed
// remaining TTL). The layout and the key names follow etcd's. The three
// buckets and the record format are created together, in one transaction.
//
// Which keys are attached to which lease is not stored: Open rebuilds it
// from the lease in each live key's latest record. A live key whose lease
// has no record (etcd detaches such keys silently) stays unattached, and
// so does a later put of it with ignore_lease.
//
// In memory a B-tree maps each key to its generations of revisions (as
// etcd's treeIndex). Items of the tree are copy-on-write: a keyIndex visible
// to a published View is never modified, so btree.Clone gives readers an O(1)
// immutable snapshot.
//
// The lease table (lease ID → TTL, remaining TTL, attached keys) lives in
// memory beside the index. Lease grants and checkpoints change no revision;
// a revoke deletes the attached keys in one write (one revision,
// sub-revisions in key order, as a DeleteRange) and then the lease. Every
// put and delete attaches and detaches keys as it is applied. Compaction
// does not touch leases, and HashKV hashes bucket "key" only.
//
// # Concurrency
//
// One goroutine, the writer (the applier actor), calls Apply,
// SetConsistentIndex, Publish, Commit, HashKV, OpenSnapshot, Restore, Close,
// TakeEvents and the accessors Rev, CompactRev, ConsistentIndex,
// CommittedIndex and Pending. Any goroutine may call View, Size, Verify,
// Lease, Leases and every method of a View; a Snapshot is used by one
// goroutine at a time. The lease table is guarded by a sync.RWMutex that
// the writer holds for writing only while it changes the table, so Lease
// and Leases see every entry applied so far, which may be ahead of the
// newest published View (and of the file: they include writes not yet
// committed).
//
// # Snapshots
//
// OpenSnapshot gives a consistent copy of the file (a bbolt read
// transaction) for streaming to a follower. Restore replaces the store's
// file with a received one: views published before it keep answering from
// their overlays and answer rpcerr.Stopped where they need the old file.
//
// Writes accumulate in one open bbolt write transaction (the batch) until
// Commit. Publish makes them visible to readers without committing: a View is
// an index snapshot plus an immutable overlay of the records written since
// the last Commit. View.Range resolves revisions from the overlay and
// otherwise from bbolt in a read transaction that lives for one Range only
// and re-checks the finished compaction revision, so a Range racing a
// physical compaction answers "compacted", never a wrong or partial result.
// View.Txn answers a read-only txn the same way, with one read transaction
// for all its compares and ranges; it shares the compare, check and range
// code with Apply's txn path (reader, executeTxn).
//
// # Events
//
// Watches are fed from two paths that must agree exactly. Live: every record
// a write stores (puts and tombstones, whatever request made them) also
// becomes a pending event, which the writer takes with TakeEvents after each
// Apply, before Publish. Historical: View.Events reads the events of a
// revision window from the file (bucket "key" is ordered by revision)
// merged with the view's overlay, never splitting a revision. Both build an
// event from a record the same way. Compaction at R keeps each key's latest
// record <= R, a tombstone included, so events from R on stay readable
// (etcd #18089); a read from below R answers rpcerr.Compacted. Compaction
// itself produces no events.
//
// # Integrity
//
// bbolt checksums only its two meta pages. Every value this package
// stores, in every bucket, is sealed: followed by a CRC-32C of the bbolt
// key and the value (4 bytes, big-endian), which readers strip and check;
// bucket meta's "recordFormat" (sealed value 2) says so, and a file
// without it (written before seals) is refused. HashKV hashes the values
// without their seals, as etcd's records, so it matches etcd's.
//
// Open checks the whole file before trusting it (Verify does the same for
// a received snapshot): checkFile reads the file as plain bytes and
// verifies the page structure (pages below the high-water mark, referenced
// once, carrying their own ID and type, elements inside their page with
// keys and values packed after them as bbolt writes them, keys ascending
// within their parent's bounds: bbolt's Tx.Check and more, without bbolt's
// unchecked pointer arithmetic, which on a damaged page can crash the
// process instead of failing); then only the buckets above may exist, none
// nested or with a sequence, bucket meta only holds its keys, and every
// record of every bucket must pass its seal, decode to exactly the bytes
// this package writes for it (no unknown fields, canonical encoding) and
// agree with the others as restore requires. A damaged file fails with
// ErrCorrupt naming the page, bucket or record. Of 3000 random bit flips
// in a small file (TestBackendBitFlipDetection), Open refuses 2982; the
// other 18 are in bbolt's meta pages, whose own checksum makes bbolt
// ignore the flip or fall back to the previous commit.
//
// A record read after Open that fails its seal (the file changed under a
// running member) panics with ErrCorrupt's message: the member stops
// rather than answer from it. What no seal can see is a record written
// wrong but well sealed (a bug, not a disk): if it changes HashKV, an
// initial corruption check against the peers refuses it.
//
// # Errors
//
// Client-visible failures are data: *messages.Error values from
// messages/rpcerr, returned inside responses. Go errors are returned only by
// Open, Commit and Close (I/O and corruption).
package mvcc
