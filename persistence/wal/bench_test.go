package wal_test

import (
	"fmt"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// BenchmarkSaveSync measures one Save of a batch of 256-byte entries plus its
// Sync: the cost of one group commit. ns/op is per batch.
func BenchmarkSaveSync(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			w, _ := mustOpen(b, b.TempDir(), wal.Options{})
			defer mustClose(b, w)
			data := make([]byte, 256)
			ents := make([]*messages.Entry, batch)
			hs := &messages.HardState{Term: 1, Vote: 1}
			next := uint64(1)
			b.SetBytes(int64(batch * len(data)))
			for b.Loop() {
				for i := range ents {
					ents[i] = &messages.Entry{Term: 1, Index: next, Data: data}
					next++
				}
				hs.Commit = next - 1
				if err := w.Save(hs, ents); err != nil {
					b.Fatal(err)
				}
				if err := w.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
