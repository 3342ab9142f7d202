package mvcc_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/mvcc"
)

// BenchmarkApplyPut applies puts of 256-byte values over 10,000 keys,
// publishing every 100 and committing (with fsync) every 1,000, as the
// applier does.
func BenchmarkApplyPut(b *testing.B) {
	s, err := mvcc.Open(filepath.Join(b.TempDir(), "db"), mvcc.Options{InitialMmapSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const keys = 10000
	reqs := make([]*messages.InternalRequest, keys)
	for i := range reqs {
		reqs[i] = putReq(&messages.PutRequest{Key: fmt.Appendf(nil, "/registry/pods/key-%08d", i), Value: make([]byte, 256)})
	}
	b.SetBytes(256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if e := s.Apply(uint64(i+1), reqs[i%keys]).GetError(); e != nil {
			b.Fatal(e.Message)
		}
		if (i+1)%100 == 0 {
			s.Publish()
		}
		if (i+1)%1000 == 0 {
			if err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkViewRangeSingleKey reads single keys from the published view on
// parallel goroutines: "file" reads committed records from bbolt, "overlay"
// records applied since the last commit.
func BenchmarkViewRangeSingleKey(b *testing.B) {
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "file", false: "overlay"}[commit]
		b.Run(name, func(b *testing.B) {
			s, err := mvcc.Open(filepath.Join(b.TempDir(), "db"), mvcc.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const keys = 10000
			reqs := make([]*messages.RangeRequest, keys)
			for i := range keys {
				key := fmt.Appendf(nil, "/registry/pods/key-%08d", i)
				s.Apply(uint64(i+1), putReq(&messages.PutRequest{Key: key, Value: make([]byte, 256)}))
				reqs[i] = &messages.RangeRequest{Key: key}
			}
			if commit {
				if err := s.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			s.Publish()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					i += 7919
					resp, e := s.View().Range(reqs[i%keys])
					if e != nil || len(resp.Kvs) != 1 {
						b.Fatal("range failed")
					}
				}
			})
		})
	}
}
