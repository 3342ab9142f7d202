// Package wal is aetcd's write-ahead log: the durable record of Raft entries,
// hard state, snapshot markers and member metadata.
//
// A WAL is a directory of segment files named %016x-%016x.wal: a sequence
// number (consecutive, starting at 0 until Release deletes a prefix) and the
// index of the first entry the segment may hold (one above the log's last
// index when it was created, so never 0). Each segment is preallocated with
// fallocate to Options.SegmentSizeBytes, so appends inside it do not change
// the file size and fdatasync need not write size metadata; the unused tail
// reads as zeros. Once a segment's data reaches
// that size, the WAL syncs and closes it, creates the next one, fsyncs the
// directory, and writes the latest metadata, snapshot marker and hard state at
// the new segment's head, so a segment never depends on state in earlier
// ones.
//
// A segment is a sequence of records:
//
//	[length uint32 LE][type uint8][crc32c uint32 LE][payload: length bytes]
//
// The CRC-32C (Castagnoli) covers the type byte and the payload. Types are
// RecordEntry, RecordHardState, RecordMetadata and RecordSnapshot; payloads
// are protobuf messages from package messages, or opaque bytes for metadata.
// A header whose length and type are zero marks the end of data.
//
// # Durability
//
// Save, SaveMetadata and SaveSnapshot encode into one buffer and write it
// with one pwrite; nothing is durable until Sync (fdatasync) returns nil.
// A failed write or fdatasync makes the WAL permanently failed (ErrFailed):
// after a failed fdatasync the kernel may have dropped the dirty pages, so
// retrying could report data durable that is not.
//
// # Releasing segments
//
// The log would grow forever, so the owner periodically takes a snapshot:
// once its backend has durably applied everything through index C (term T),
// it calls SaveSnapshot(&SnapshotMeta{Index: C, Term: T}), then Sync, then
// Release. Release syncs whatever is still unsynced, takes S, the index of
// the last snapshot marker written, and deletes every segment before the
// newest one whose name's first index is at most S+1, oldest first,
// fsyncing the directory after each deletion; it never deletes the current
// segment. Every entry in a deleted segment has an index at most S or was
// replaced by a later truncating Save, so no replay returns it, and the kept
// segment begins with copies of the metadata, snapshot marker and hard state
// written before it: Open returns exactly the Replay it returned before
// Release. Entries above S that a replay returns are never deleted, however
// old their segment (a segment created after such an entry was written has a
// first index above it, so the kept segment is at or before the entry's).
// With a snapshot every K entries at an index D behind the last index, the
// directory holds about D+K entries' worth of segments, plus two.
//
// Only a prefix of the segments is ever deleted. Open replays from the first
// segment present; if that is not segment 0, the entries in the missing
// segments had indexes below its first index, and Open accepts the directory
// only if the last snapshot marker covers every such index not replaced by a
// later entry (a truncating Save), so a prefix lost by any other means than
// Release is refused (a *CorruptError wrapping ErrMissingRecords and
// ErrNotContiguous) unless it is exactly as harmless as a Release. A crash in
// the middle of Release leaves a shorter prefix deleted, which the same rule
// accepts, and the next Release finishes the work. A missing segment in the
// middle is still refused (ErrSegmentGap).
//
// # Recovery
//
// Open reads every segment present in order. A record that is incomplete or
// fails its checksum is a torn tail, and is cut off, only if it is in the
// last segment and only zeros or end of file follow it: the partial write of
// a crash, which no Sync covered. Anywhere else such a record means the log was
// damaged after it was written, and Open refuses with a *CorruptError naming
// the file and offset; the member must not run past it. Open also refuses a
// log whose entry indexes skip (Save never writes one), an earlier segment
// whose data stops short of the index at which its successor was created,
// and missing leading segments that held entries a replay would return.
//
// The torn-tail rule is deliberately simple. Its consequences: a bit flip in
// the last record of the last segment, or one that enlarges a length field
// (up to MaxRecordBytes) so that the record seems to run into the zeroed
// tail, is indistinguishable from a torn write and is cut off; and after a
// power loss in which the page cache wrote back a later part of an unsynced
// append but not an earlier one, Open refuses rather than guess (a plain
// process crash cannot cause this, since written pages survive it).
package wal
