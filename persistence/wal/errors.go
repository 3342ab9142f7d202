package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package matches one of these
// with errors.Is, except errors from the operating system that are wrapped
// with the operation and file they came from.
var (
	// ErrCorrupt matches every *CorruptError: a record in a segment failed its
	// checksum or could not be decoded and is not a torn tail.
	ErrCorrupt = errors.New("wal: corrupt record")

	// ErrTruncatedRecord is returned by DecodeRecord when the buffer ends
	// inside a record's header or payload.
	ErrTruncatedRecord = errors.New("wal: truncated record")
	// ErrChecksum is returned by DecodeRecord when a record's CRC-32C does
	// not match its type byte and payload.
	ErrChecksum = errors.New("wal: checksum mismatch")
	// ErrRecordTooLarge is returned by DecodeRecord for a length field above
	// MaxRecordBytes, and by the Save methods for a payload above it.
	ErrRecordTooLarge = errors.New("wal: record too large")
	// ErrUnknownRecordType is returned by DecodeRecord for a record whose
	// checksum is valid but whose type is not one this package writes.
	ErrUnknownRecordType = errors.New("wal: unknown record type")
	// ErrNotContiguous is returned by Save for an entry whose index is 0 or
	// more than one above the log's last index (the last entry index or the
	// snapshot index, whichever is higher), and by SaveSnapshot for a marker
	// below the previous one; Open reports the same conditions in a segment
	// as a *CorruptError wrapping it.
	ErrNotContiguous = errors.New("wal: entry index not contiguous")
	// ErrMissingRecords is wrapped by the *CorruptError Open returns when a
	// segment's data ends before the log index at which its successor was
	// created (its last records are gone), and, together with
	// ErrNotContiguous, when the segments before the first one present are
	// missing although they held entries above the last snapshot marker
	// (deleted by something other than Release; Offset is then 0 in the first
	// segment).
	ErrMissingRecords = errors.New("wal: records missing at end of segment")

	// ErrBadSegmentName is returned by Open when dir holds a file ending in
	// ".wal" whose name is not a segment name written by this package.
	ErrBadSegmentName = errors.New("wal: unparseable segment file name")
	// ErrSegmentGap is returned by Open when the segment sequence numbers in
	// dir are not consecutive.
	ErrSegmentGap = errors.New("wal: segment sequence numbers not contiguous")
	// ErrLocked is returned by Open when another WAL (in this or another
	// process) holds dir open.
	ErrLocked = errors.New("wal: directory locked by another WAL")

	// ErrFailed matches every error returned after a write, fdatasync or
	// segment rotation failed. Such a failure is permanent: the WAL's on-disk
	// state is unknown, so every later call returns the same error, which also
	// wraps the first cause. The owner must stop and reopen.
	ErrFailed = errors.New("wal: failed")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("wal: closed")
)

// CorruptError reports a record that Open refused: it failed its checksum, did
// not decode, or broke the entry index order, and it is not a torn tail (a
// damaged last record followed only by zeros or end of file in the last
// segment, which Open repairs instead); or records that are missing (see
// ErrMissingRecords). It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	File   string // path of the segment file
	Offset int64  // byte offset of the start of the bad record's header
	Reason string // what is wrong, for humans
	Err    error  // underlying cause; wraps ErrChecksum, ErrTruncatedRecord, ErrNotContiguous, ... where one applies
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the underlying sentinel, if any.
func (e *CorruptError) Unwrap() error { return e.Err }
