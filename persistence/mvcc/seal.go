package mvcc

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Every value this package stores in any bucket is sealed: followed by a
// CRC-32 (Castagnoli) of the bbolt key and the value, 4 bytes big-endian.
// bbolt checksums only its meta pages; the seal makes a flipped bit in any
// record (key or value, current or superseded, in any bucket) an error
// instead of data.
const sealLen = 4

// recordFormat is the meta key naming the format of the records of a file;
// formatSealed, its only accepted value, says every record is sealed.
var (
	recordFormatKey = []byte("recordFormat")
	formatSealed    = []byte{2}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealSum is the checksum of a record with bbolt key k and value v.
func sealSum(k, v []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, k), castagnoli, v)
}

// seal returns v followed by its seal under key k, appending to v (v's
// spare capacity may be used).
func seal(k, v []byte) []byte {
	return binary.BigEndian.AppendUint32(v, sealSum(k, v))
}

// unseal returns the value of the sealed record k = sv without its seal,
// or an error if sv is too short to hold one or the seal does not match
// (the error does not name the record: callers do). The result aliases sv.
func unseal(k, sv []byte) ([]byte, error) {
	if len(sv) < sealLen {
		return nil, fmt.Errorf("%d bytes: too short for a checksum", len(sv))
	}
	v := sv[:len(sv)-sealLen]
	if got, want := binary.BigEndian.Uint32(sv[len(v):]), sealSum(k, v); got != want {
		return nil, fmt.Errorf("checksum mismatch: stored %08x, computed %08x", got, want)
	}
	return v, nil
}

// putSealed stores v sealed under k in b.
func putSealed(b *bolt.Bucket, k, v []byte) error {
	return b.Put(k, seal(k, v[:len(v):len(v)]))
}

// getSealed returns the unsealed value of k in b: nil, nil if b holds no k.
func getSealed(b *bolt.Bucket, k []byte) ([]byte, error) {
	sv := b.Get(k)
	if sv == nil {
		return nil, nil
	}
	return unseal(k, sv)
}

// mustUnseal is unseal for a record read after Open checked every record:
// a mismatch now means the file changed under the member, which must stop
// rather than answer from it.
func mustUnseal(k, sv []byte) []byte {
	v, err := unseal(k, sv)
	if err != nil {
		panic(fmt.Sprintf("%v: record %x: %v", ErrCorrupt, k, err))
	}
	return v
}
