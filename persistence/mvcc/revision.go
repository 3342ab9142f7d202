package mvcc

import (
	"encoding/binary"
	"fmt"
)

const (
	// revKeyLen is the length of an encoded revision: main, '_', sub.
	revKeyLen = 8 + 1 + 8
	// markedRevKeyLen is the length of an encoded revision with a mark byte.
	markedRevKeyLen = revKeyLen + 1
	// tombstoneMark marks the bbolt key of a deletion record.
	tombstoneMark byte = 't'
)

// revision identifies one change: main is the store revision of the request
// that made it, sub its position among that request's changes.
type revision struct {
	main int64
	sub  int64
}

func (a revision) greater(b revision) bool {
	if a.main != b.main {
		return a.main > b.main
	}
	return a.sub > b.sub
}

func (a revision) less(b revision) bool { return b.greater(a) }

// appendRevKey appends the bbolt key of rev (with the tombstone mark if
// tombstone) to dst.
func appendRevKey(dst []byte, rev revision, tombstone bool) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(rev.main))
	dst = append(dst, '_')
	dst = binary.BigEndian.AppendUint64(dst, uint64(rev.sub))
	if tombstone {
		dst = append(dst, tombstoneMark)
	}
	return dst
}

// parseRevKey decodes a bbolt key of bucket "key".
func parseRevKey(b []byte) (rev revision, tombstone bool, err error) {
	switch {
	case len(b) != revKeyLen && len(b) != markedRevKeyLen:
		return revision{}, false, fmt.Errorf("revision key %x has length %d, want %d or %d", b, len(b), revKeyLen, markedRevKeyLen)
	case b[8] != '_':
		return revision{}, false, fmt.Errorf("revision key %x has separator %q, want '_'", b, b[8])
	case len(b) == markedRevKeyLen && b[revKeyLen] != tombstoneMark:
		return revision{}, false, fmt.Errorf("revision key %x has mark %q, want %q", b, b[revKeyLen], tombstoneMark)
	}
	rev = revision{main: int64(binary.BigEndian.Uint64(b[:8])), sub: int64(binary.BigEndian.Uint64(b[9:revKeyLen]))}
	if rev.main < 0 || rev.sub < 0 {
		return revision{}, false, fmt.Errorf("revision key %x decodes to invalid revision %d.%d", b, rev.main, rev.sub)
	}
	return rev, len(b) == markedRevKeyLen, nil
}
