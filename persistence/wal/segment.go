package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const segmentSuffix = ".wal"

// segment names one segment file: seq is its position in the log, firstIndex
// is one above the log's last index when it was created, the lowest entry
// index it can hold unless a later truncation rewrote lower indexes.
type segment struct {
	seq        uint64
	firstIndex uint64
}

func (s segment) name() string {
	return fmt.Sprintf("%016x-%016x%s", s.seq, s.firstIndex, segmentSuffix)
}

// parseSegmentName accepts exactly the names segment.name produces, whose
// first index is never 0.
func parseSegmentName(name string) (segment, bool) {
	const hexLen = 16
	if len(name) != 2*hexLen+1+len(segmentSuffix) || name[hexLen] != '-' || !strings.HasSuffix(name, segmentSuffix) {
		return segment{}, false
	}
	seq, err1 := strconv.ParseUint(name[:hexLen], 16, 64)
	idx, err2 := strconv.ParseUint(name[hexLen+1:2*hexLen+1], 16, 64)
	s := segment{seq: seq, firstIndex: idx}
	if err1 != nil || err2 != nil || s.name() != name || s.firstIndex == 0 {
		return segment{}, false
	}
	return s, true
}

// listSegments returns the segments in dir in sequence order. Files not
// ending in ".wal" are ignored.
func listSegments(dir string) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	var segs []segment
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), segmentSuffix) {
			continue
		}
		s, ok := parseSegmentName(de.Name())
		if !ok || !de.Type().IsRegular() {
			return nil, fmt.Errorf("%w: %s", ErrBadSegmentName, filepath.Join(dir, de.Name()))
		}
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, fmt.Errorf("%w: %s follows %s in %s", ErrSegmentGap, segs[i].name(), segs[i-1].name(), dir)
		}
	}
	return segs, nil
}

// withFd runs fn on f's descriptor while holding a reference to it, so a
// concurrent Close cannot release (and the kernel reuse) the descriptor.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

func fdatasync(f *os.File) error {
	return withFd(f, func(fd int) error {
		for {
			err := unix.Fdatasync(fd)
			if err != unix.EINTR {
				return err
			}
		}
	})
}

// preallocate extends f to at least size bytes of allocated zeros, so later
// appends inside that range do not change the file size. Filesystems without
// fallocate are tolerated: the file then grows as it is written.
func preallocate(f *os.File, size int64) error {
	err := withFd(f, func(fd int) error {
		for {
			err := unix.Fallocate(fd, 0, 0, size)
			if err != unix.EINTR {
				return err
			}
		}
	})
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// createSegment creates, preallocates and fsyncs a new segment file, then
// fsyncs dir so the new name is durable.
func createSegment(dir *os.File, s segment, size int64) (*os.File, error) {
	path := filepath.Join(dir.Name(), s.name())
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := preallocate(f, size); err != nil {
		f.Close()
		return nil, fmt.Errorf("preallocate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := dir.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fsync directory %s: %w", dir.Name(), err)
	}
	return f, nil
}
