package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
)

// DefaultSegmentSizeBytes is the segment size used when
// Options.SegmentSizeBytes is zero or negative.
const DefaultSegmentSizeBytes = 64 << 20

// maxKeptBufferBytes bounds the encode buffer a WAL keeps between calls.
const maxKeptBufferBytes = 4 << 20

// Options configure Open.
type Options struct {
	// SegmentSizeBytes is the size each segment is preallocated to; once the
	// current segment's data reaches it, the next write rotates to a new
	// segment. Zero or negative means DefaultSegmentSizeBytes.
	SegmentSizeBytes int64
	// SyncFault, when set, is called before each fdatasync of the current
	// segment by Sync; a non-nil result is treated exactly as that error
	// from fdatasync (the WAL fails). It exists for fault-injection tests.
	SyncFault func() error
}

// WAL appends records to the segment files of one directory.
//
// Concurrency: all methods are safe to call from several goroutines. Save,
// SaveMetadata and SaveSnapshot are serialised with each other; Sync may run
// concurrently with them (so a writer can encode and write the next batch
// while the previous fdatasync is in flight), and concurrent Syncs are
// serialised, never parallel. Release runs its fdatasync like a Sync and
// then deletes files while Save and Sync proceed; concurrent Releases are
// serialised, and Close waits for a running Release.
type WAL struct {
	opts Options
	dir  *os.File // held open for the flock and for directory fsyncs

	releaseMu sync.Mutex // serialises Release and Close; taken before syncMu
	syncMu    sync.Mutex // serialises Sync and Close; taken before mu

	mu      sync.Mutex // guards everything below
	file    *os.File   // current (last) segment
	seg     segment
	segs    []segment // every segment in the directory, oldest first; the last is seg
	offset  int64     // end of valid data in file: the next record goes here
	index   logIndex
	state   replayState // latest state payloads, rewritten at each new segment's head
	buf     []byte      // encode buffer, reused
	written uint64      // generation of the last write
	synced  uint64      // generation made durable by the last fdatasync
	err     error       // sticky failure; matches ErrFailed
	closed  bool
}

// Open opens the WAL in dir, creating dir and a first segment if needed, and
// replays every segment present in sequence order (the first need not be
// segment 0 after Release). Appending continues in the last segment after its
// last valid record. A torn tail in the last segment is cut off (and
// Replay.TornTailRepaired set); see Replay.
//
// Open takes an exclusive flock on dir until Close.
//
// Errors: a *CorruptError (matching ErrCorrupt) for a damaged record that is
// not a torn tail, an entry index gap, or missing records (including leading
// segments that held entries no snapshot marker covers); ErrBadSegmentName for a ".wal" file
// whose name does not parse; ErrSegmentGap for non-consecutive sequence
// numbers; ErrLocked if dir is already open; wrapped operating-system errors
// otherwise.
func Open(dir string, opts Options) (*WAL, *Replay, error) {
	if opts.SegmentSizeBytes <= 0 {
		opts.SegmentSizeBytes = DefaultSegmentSizeBytes
	}
	if err := mkdirDurable(dir); err != nil {
		return nil, nil, fmt.Errorf("wal: open: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open: %w", err)
	}
	if err := withFd(d, func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }); err != nil {
		d.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, nil, fmt.Errorf("wal: open: flock %s: %w", dir, err)
	}
	w := &WAL{opts: opts, dir: d}
	r, err := w.load()
	if err != nil {
		if w.file != nil {
			w.file.Close()
		}
		d.Close()
		return nil, nil, err
	}
	return w, r, nil
}

// mkdirDurable creates dir if it does not exist and makes its name durable.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	parent, err := os.Open(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return err
	}
	defer parent.Close()
	return parent.Sync()
}

// load reads the segments and leaves w ready to append.
func (w *WAL) load() (*Replay, error) {
	dir := w.dir.Name()
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		w.seg = segment{seq: 0, firstIndex: 1}
		w.file, err = createSegment(w.dir, w.seg, w.opts.SegmentSizeBytes)
		if err != nil {
			return nil, fmt.Errorf("wal: open: %w", err)
		}
		w.segs = []segment{w.seg}
		return &Replay{}, nil
	}
	st := &w.state
	// Segments before the first may have been deleted by Release. Whatever
	// entries they held had indexes below the first segment's firstIndex;
	// replay continues from there and checks at the end that a snapshot
	// marker covers every such entry that a later one did not replace.
	st.index.lastEntry = segs[0].firstIndex - 1
	st.released = segs[0].firstIndex - 1
	var (
		data []byte
		end  int64
		torn bool
		path string
	)
	for i, s := range segs {
		path = filepath.Join(dir, s.name())
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("wal: open: %w", err)
		}
		if end, torn, err = scanSegment(path, data, i == len(segs)-1, st); err != nil {
			return nil, err
		}
		// The next segment was named after the log's last index when it was
		// created, which is where this segment's data must end. A shortfall
		// means records vanished from the end of this segment.
		if i+1 < len(segs) && st.index.last()+1 != segs[i+1].firstIndex {
			return nil, &CorruptError{File: path, Offset: end, Err: ErrMissingRecords,
				Reason: fmt.Sprintf("%s: data ends at log index %d, but the next segment %s was created at index %d",
					reasonOf(ErrMissingRecords), st.index.last(), segs[i+1].name(), segs[i+1].firstIndex)}
		}
	}
	if st.released > st.index.snapshot {
		return nil, &CorruptError{File: filepath.Join(dir, segs[0].name()), Offset: 0,
			Err: fmt.Errorf("%w: %w", ErrMissingRecords, ErrNotContiguous),
			Reason: fmt.Sprintf("the segments before %s are missing, and they held entries up to index %d, above the last snapshot marker (index %d)",
				segs[0].name(), st.released, st.index.snapshot)}
	}
	w.seg, w.offset, w.segs = segs[len(segs)-1], end, segs
	if w.file, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	if torn {
		// Cut the damaged record and re-preallocate: the range after end
		// reads as zeros again, and durably so before any append.
		if err := w.file.Truncate(end); err != nil {
			return nil, fmt.Errorf("wal: open: repair torn tail of %s: %w", path, err)
		}
	}
	if torn || int64(len(data)) < w.opts.SegmentSizeBytes {
		if err := preallocate(w.file, w.opts.SegmentSizeBytes); err != nil {
			return nil, fmt.Errorf("wal: open: preallocate %s: %w", path, err)
		}
		if err := w.file.Sync(); err != nil {
			return nil, fmt.Errorf("wal: open: fsync %s: %w", path, err)
		}
	}
	r := st.replay()
	r.TornTailRepaired = torn
	w.index = st.index
	// The replayed messages now belong to the caller; w keeps payloads only.
	st.entries, st.hs, st.meta = nil, nil, nil
	return r, nil
}

// Save appends ents, in order, and then hs if it is not nil, with one write
// to the current segment. It does not sync: the records are durable once a
// later Sync returns nil. Each entry's index must be between 1 and one above
// the log's last index (the last entry written or the last snapshot marker,
// whichever is higher); an entry at or below the last index replaces the
// entries from its index on when the log is replayed.
//
// Errors: ErrNotContiguous (nothing written), ErrRecordTooLarge (nothing
// written), ErrClosed, or an error matching ErrFailed if the write or a
// segment rotation failed, after which the WAL is unusable.
func (w *WAL) Save(hs *messages.HardState, ents []*messages.Entry) error {
	if hs == nil && len(ents) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	index := w.index
	for _, e := range ents {
		if err := index.appendEntry(e.GetIndex()); err != nil {
			return fmt.Errorf("wal: save: %w", err)
		}
	}
	buf := w.buf[:0]
	var err error
	for _, e := range ents {
		if buf, _, err = appendMessage(buf, RecordEntry, e); err != nil {
			return fmt.Errorf("wal: save entry %d: %w", e.GetIndex(), err)
		}
	}
	var hsPayload []byte
	if hs != nil {
		if buf, hsPayload, err = appendMessage(buf, RecordHardState, hs); err != nil {
			return fmt.Errorf("wal: save hard state: %w", err)
		}
		hsPayload = bytes.Clone(hsPayload)
	}
	if err := w.write(buf); err != nil {
		return err
	}
	w.keepBuffer(buf)
	w.index = index
	if hs != nil {
		w.state.hsPayload = hsPayload
	}
	return w.maybeRotate()
}

// SaveMetadata appends a metadata record holding b (opaque to the WAL; Open
// returns the last one). It does not sync.
//
// Errors: ErrRecordTooLarge, ErrClosed, or an error matching ErrFailed.
func (w *WAL) SaveMetadata(b []byte) error {
	if len(b) > MaxRecordBytes {
		return fmt.Errorf("wal: save metadata: %w: %d bytes", ErrRecordTooLarge, len(b))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	buf := AppendRecord(w.buf[:0], RecordMetadata, b)
	if err := w.write(buf); err != nil {
		return err
	}
	w.keepBuffer(buf)
	w.state.metaPayload = append([]byte{}, b...)
	return w.maybeRotate()
}

// SaveSnapshot appends a snapshot marker: on replay, entries at or below
// meta.Index are dropped, and the next entry may have index meta.Index+1 even
// if the log is shorter. It does not sync. It panics if meta is nil.
//
// Errors: ErrNotContiguous if meta.Index is below the previous marker's
// (nothing written), ErrClosed, or an error matching ErrFailed.
func (w *WAL) SaveSnapshot(meta *messages.SnapshotMeta) error {
	if meta == nil {
		panic("wal: SaveSnapshot(nil)")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	index := w.index
	if err := index.setSnapshot(meta.Index); err != nil {
		return fmt.Errorf("wal: save snapshot: %w", err)
	}
	buf, payload, err := appendMessage(w.buf[:0], RecordSnapshot, meta)
	if err != nil {
		return fmt.Errorf("wal: save snapshot: %w", err)
	}
	payload = bytes.Clone(payload)
	if err := w.write(buf); err != nil {
		return err
	}
	w.keepBuffer(buf)
	w.state.snapPayload = payload
	w.index = index
	return w.maybeRotate()
}

// Sync makes every record written by a Save* call that returned before Sync
// was called durable (fdatasync of the current segment; earlier segments were
// synced when rotated). It skips the system call when nothing was written
// since the last successful Sync.
//
// Errors: ErrClosed, or an error matching ErrFailed: a failed fdatasync is
// permanent, since the kernel may have dropped the dirty pages, and every
// later call returns the same error.
func (w *WAL) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	_, err := w.syncLocked()
	return err
}

// durablePoint describes the log as of the last write a sync covered.
type durablePoint struct {
	seq      uint64 // the segment that was current
	snapshot uint64 // the index of the last snapshot marker
}

// syncLocked makes every record written so far durable and reports what that
// covered. Called with syncMu held and mu not held.
func (w *WAL) syncLocked() (durablePoint, error) {
	w.mu.Lock()
	if err := w.usable(); err != nil {
		w.mu.Unlock()
		return durablePoint{}, err
	}
	p := durablePoint{seq: w.seg.seq, snapshot: w.index.snapshot}
	if w.synced == w.written {
		w.mu.Unlock()
		return p, nil
	}
	f, gen := w.file, w.written
	w.mu.Unlock()

	var err error
	if w.opts.SyncFault != nil {
		err = w.opts.SyncFault()
	}
	if err == nil {
		err = fdatasync(f)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return durablePoint{}, w.err
	}
	if err != nil && w.seg.seq == p.seq {
		return durablePoint{}, w.fail(fmt.Errorf("fdatasync %s: %w", f.Name(), err))
	}
	// Either the fdatasync succeeded, or a concurrent rotation synced and
	// closed f first (it fails the WAL if that sync fails).
	w.synced = max(w.synced, gen)
	return p, nil
}

// Release deletes every segment that replaying the log no longer needs:
// after it returns, Open on the directory yields exactly the same Replay
// (Metadata, HardState, Snapshot, Entries) as it would have before. It
// returns the number of segments deleted.
//
// Release first makes every record written so far durable, as Sync does.
// Then, with S the index of the last snapshot marker written before it, it
// finds the newest segment created when the log's last index was at most S
// (its name's first index is at most S+1), and deletes every segment before
// that one, oldest first, fsyncing the directory after each deletion. Those
// segments hold only entries at or below S, or entries a later truncating
// Save replaced, none of which a replay returns, and the kept segment starts
// with copies of the metadata, snapshot marker and hard state written before
// it. The current segment is never deleted. So after SaveSnapshot at index C
// and Release, the directory holds the segment the log was in when its last
// index passed C, and every later one.
//
// A crash during Release leaves a shorter prefix deleted, which Open accepts
// too. Open refuses (*CorruptError wrapping ErrMissingRecords) a directory
// whose missing leading segments held entries that no snapshot marker
// covers, so deleting segments by hand cannot silently lose entries.
//
// Errors: ErrClosed; the sticky failure (matching ErrFailed) if the WAL had
// failed or the fdatasync fails; an error matching ErrFailed that wraps the
// I/O error if a deletion or a directory fsync fails, after which the WAL is
// unusable (the count then includes the segments already deleted).
func (w *WAL) Release() (int, error) {
	w.releaseMu.Lock()
	defer w.releaseMu.Unlock()
	w.syncMu.Lock()
	p, err := w.syncLocked()
	w.syncMu.Unlock()
	if err != nil {
		return 0, err
	}

	// Segments before the current one at p are closed and never written
	// again, rotations only append to w.segs, and releaseMu keeps Close and
	// other Releases out, so the deletions need not hold mu.
	w.mu.Lock()
	keep := 0
	for i, s := range w.segs {
		if s.seq > p.seq {
			break
		}
		if s.firstIndex <= p.snapshot+1 {
			keep = i
		}
	}
	victims := slices.Clone(w.segs[:keep])
	w.mu.Unlock()

	n := 0
	var rerr error
	for _, s := range victims {
		path := filepath.Join(w.dir.Name(), s.name())
		if err := os.Remove(path); err != nil {
			rerr = fmt.Errorf("release %s: %w", path, err)
			break
		}
		n++
		// Deleting oldest first is what keeps a crash from leaving a gap,
		// so each deletion is made durable before the next.
		if err := w.dir.Sync(); err != nil {
			rerr = fmt.Errorf("release: fsync directory %s: %w", w.dir.Name(), err)
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.segs = w.segs[n:]
	if rerr != nil {
		return n, w.fail(rerr)
	}
	return n, nil
}

// Close syncs the current segment, closes the files and releases the
// directory lock. The WAL is unusable afterwards, even if Close fails.
//
// Errors: ErrClosed if already closed; the sticky failure (matching
// ErrFailed) if the WAL had failed; a wrapped error if the final fdatasync or
// a close failed.
func (w *WAL) Close() error {
	w.releaseMu.Lock()
	defer w.releaseMu.Unlock()
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.err
	if err == nil && w.synced != w.written {
		if serr := fdatasync(w.file); serr != nil {
			err = w.fail(fmt.Errorf("fdatasync %s: %w", w.file.Name(), serr))
		}
	}
	if cerr := w.file.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("wal: close: %w", cerr)
	}
	if cerr := w.dir.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("wal: close: %w", cerr)
	}
	w.buf = nil
	return err
}

func (w *WAL) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// fail records a permanent failure and returns it. Called with mu held.
func (w *WAL) fail(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return w.err
}

// write appends buf at the end of the current segment. Called with mu held.
func (w *WAL) write(buf []byte) error {
	if _, err := w.file.WriteAt(buf, w.offset); err != nil {
		return w.fail(fmt.Errorf("write %s: %w", w.file.Name(), err))
	}
	w.offset += int64(len(buf))
	w.written++
	return nil
}

func (w *WAL) keepBuffer(buf []byte) {
	if cap(buf) <= maxKeptBufferBytes {
		w.buf = buf[:0]
	} else {
		w.buf = nil
	}
}

// maybeRotate starts a new segment once the current one is full: it syncs and
// closes the current segment, creates the next one (preallocated, fsynced,
// directory fsynced) and writes the latest metadata, snapshot marker and hard
// state at its head, so every segment carries the state that precedes it.
// Called with mu held.
func (w *WAL) maybeRotate() error {
	if w.offset < w.opts.SegmentSizeBytes {
		return nil
	}
	old := w.file
	if err := fdatasync(old); err != nil {
		return w.fail(fmt.Errorf("fdatasync %s: %w", old.Name(), err))
	}
	w.synced = w.written
	next := segment{seq: w.seg.seq + 1, firstIndex: w.index.last() + 1}
	f, err := createSegment(w.dir, next, w.opts.SegmentSizeBytes)
	if err != nil {
		return w.fail(err)
	}
	if err := old.Close(); err != nil {
		f.Close()
		return w.fail(fmt.Errorf("close %s: %w", old.Name(), err))
	}
	w.file, w.seg, w.offset = f, next, 0
	w.segs = append(w.segs, next)

	buf := w.buf[:0]
	if p := w.state.metaPayload; p != nil {
		buf = AppendRecord(buf, RecordMetadata, p)
	}
	if p := w.state.snapPayload; p != nil {
		buf = AppendRecord(buf, RecordSnapshot, p)
	}
	if p := w.state.hsPayload; p != nil {
		buf = AppendRecord(buf, RecordHardState, p)
	}
	if len(buf) == 0 {
		return nil
	}
	if err := w.write(buf); err != nil {
		return err
	}
	w.keepBuffer(buf)
	return nil
}

// appendMessage appends m as one record of type typ and returns the extended
// buffer and the payload within it. On error buf is returned unextended.
func appendMessage(buf []byte, typ RecordType, m proto.Message) (out, payload []byte, err error) {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	buf, err = proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], nil, err
	}
	if n := len(buf) - start - HeaderSize; n > MaxRecordBytes {
		return buf[:start], nil, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, n)
	}
	putHeader(buf[start:], typ)
	return buf, buf[start+HeaderSize:], nil
}
