package wal_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/persistence/wal"
)

// TestOpenDamagedLogProperty damages a valid multi-segment log in one random
// way per trial (bit flip, cut, zeroed range, random bytes) and checks that
// Open never panics, refuses only with a *CorruptError, and when it succeeds
// replays a prefix of the entries that were written, never different ones.
func TestOpenDamagedLogProperty(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv("WAL_PROPERTY_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WAL_PROPERTY_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with WAL_PROPERTY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	template := t.TempDir()
	opts := wal.Options{SegmentSizeBytes: 1024}
	w, _ := mustOpen(t, template, opts)
	var written []*messages.Entry
	if err := w.SaveMetadata([]byte("meta")); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 120; {
		k := 1 + rng.Uint64N(5)
		batch := entries(i, i+k-1, 1)
		if err := w.Save(&messages.HardState{Term: 1, Commit: i - 1}, batch); err != nil {
			t.Fatal(err)
		}
		written = append(written, batch...)
		i += k
	}
	mustClose(t, w)
	names := segmentPaths(t, template)
	files := make([][]byte, len(names))
	for i, p := range names {
		var err error
		if files[i], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		names[i] = filepath.Base(p)
	}

	trials := 300
	if testing.Short() {
		trials = 50
	}
	outcomes := map[string]int{}
	for trial := range trials {
		dir := t.TempDir()
		victim := rng.IntN(len(files))
		for i, b := range files {
			b = append([]byte(nil), b...)
			if i == victim {
				b = damage(rng, b)
			}
			if err := os.WriteFile(filepath.Join(dir, names[i]), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		w, r, err := wal.Open(dir, opts)
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) {
				t.Fatalf("seed %d trial %d: Open refused with a non-corruption error: %v", seed, trial, err)
			}
			outcomes["refused"]++
			continue
		}
		mustClose(t, w)
		if len(r.Entries) > len(written) {
			t.Fatalf("seed %d trial %d: replayed %d entries, %d written", seed, trial, len(r.Entries), len(written))
		}
		for i, e := range r.Entries {
			if !proto.Equal(e, written[i]) {
				t.Fatalf("seed %d trial %d: entry %d replayed as %v, written %v", seed, trial, i, e, written[i])
			}
		}
		switch {
		case r.TornTailRepaired:
			outcomes["repaired"]++
		case len(r.Entries) == len(written):
			outcomes["intact"]++
		case victim == len(files)-1:
			// The last segment cut at a record boundary: indistinguishable
			// from a log that was never longer.
			outcomes["shorter"]++
		default:
			t.Fatalf("seed %d trial %d: %d of %d entries replayed without a repair", seed, trial, len(r.Entries), len(written))
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

func damage(rng *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return append(b, byte(rng.IntN(256)))
	}
	// Most damage lands in the data, which is near the start of the file.
	pos := func() int {
		if rng.IntN(4) == 0 {
			return rng.IntN(len(b))
		}
		return rng.IntN(min(len(b), 1200))
	}
	switch rng.IntN(4) {
	case 0:
		b[pos()] ^= 1 << rng.IntN(8)
	case 1:
		b = b[:pos()]
	case 2:
		p := pos()
		clear(b[p:min(len(b), p+1+rng.IntN(64))])
	default:
		p := pos()
		for i := p; i < min(len(b), p+1+rng.IntN(16)); i++ {
			b[i] = byte(rng.IntN(256))
		}
	}
	return b
}
