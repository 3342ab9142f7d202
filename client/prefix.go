package client

// PrefixEnd returns the range end that, with key, selects every key that
// has key as a prefix: key with its last byte below 0xff incremented and the
// rest dropped. When every byte is 0xff (or key is empty) there is no such
// bound and PrefixEnd returns "\x00", which etcd reads as "no upper bound".
// This is clientv3's GetPrefixRangeEnd.
func PrefixEnd(key []byte) []byte {
	end := make([]byte, len(key))
	copy(end, key)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}
