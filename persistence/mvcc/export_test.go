package mvcc

// CheckFile exposes checkFile to the benchmarks.
var CheckFile = checkFile

// Seal and Unseal expose the record checksum to tests that write or read
// records through bbolt directly.
var (
	Seal   = seal
	Unseal = unseal
)

// FormatRecord returns the key and the sealed value of the record naming
// the file's record format, which bucket meta must hold.
func FormatRecord() (k, v []byte) {
	return recordFormatKey, seal(recordFormatKey, formatSealed[:len(formatSealed):len(formatSealed)])
}
