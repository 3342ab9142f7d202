package mvcc

// CheckFile exposes checkFile to the benchmarks.
var CheckFile = checkFile
