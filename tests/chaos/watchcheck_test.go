package chaos_test

import (
	"strings"
	"testing"

	"github.com/aetcd/aetcd/tests/chaos"
)

func wPut(key, value string, rev, created, version int64) chaos.WatchEvent {
	return chaos.WatchEvent{Put: true, Key: key, Value: value, ModRev: rev, CreateRev: created, Version: version}
}

func wDelete(key string, rev int64) chaos.WatchEvent {
	return chaos.WatchEvent{Key: key, ModRev: rev}
}

// watchFull is a full history through revision 7; revision 6 is one txn
// changing two keys.
var watchFull = []chaos.WatchEvent{
	wPut("a/1", "v1", 2, 2, 1),
	wPut("b/1", "v2", 3, 3, 1),
	wPut("a/1", "v3", 4, 2, 2),
	wDelete("a/1", 5),
	wPut("a/2", "v4", 6, 6, 1),
	wPut("b/1", "v5", 6, 3, 2),
	wPut("a/1", "v6", 7, 7, 1),
}

// watchEvents returns the events of watchFull at the given indexes.
func watchEvents(indexes ...int) []chaos.WatchEvent {
	var evs []chaos.WatchEvent
	for _, i := range indexes {
		evs = append(evs, watchFull[i])
	}
	return evs
}

func TestCheckWatches(t *testing.T) {
	changed := watchFull[2]
	changed.Value = "other"
	var many []chaos.WatchEvent
	for range 10 {
		many = append(many, watchFull[0])
	}

	tests := []struct {
		name     string
		full     []chaos.WatchEvent
		logs     []chaos.WatchLog
		finalRev int64
		want     []string // each violation's detail contains the corresponding string
	}{
		{
			name:     "every event, whole key space, from revision 1",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 1, Member: "m1", StartRev: 1, Events: watchFull}},
			finalRev: 7,
		},
		{
			name:     "prefix from the creation revision",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 1, Member: "m1", Prefix: "a/", CreatedRev: 3, Events: watchEvents(2, 3, 4, 6)}},
			finalRev: 7,
		},
		{
			name:     "restarted watcher resumes after the last revision seen",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 2, Member: "m2", Prefix: "b/", StartRev: 4, Events: watchEvents(5)}},
			finalRev: 7,
		},
		{
			name:     "watcher canceled early needs not reach the end",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 1, Member: "m1", StartRev: 1, Events: watchEvents(0, 1), End: "stream broke"}},
			finalRev: 7,
		},
		{
			name:     "live watcher with no matching change",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 1, Member: "m1", Prefix: "c/", StartRev: 1}},
			finalRev: 7,
		},
		{
			name:     "gap",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 3, Member: "m3", StartRev: 1, Events: watchEvents(0, 1, 3, 4, 5, 6)}},
			finalRev: 7,
			want:     []string{`watcher 3 (member m3, prefix ""): gap: missed PUT "a/1"="v3" at revision 4`},
		},
		{
			name:     "gap inside a revision",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 3, Member: "m3", StartRev: 1, Events: watchEvents(0, 1, 2, 3, 4, 6)}},
			finalRev: 7,
			want:     []string{`gap: missed PUT "b/1"="v5" at revision 6`},
		},
		{
			name:     "duplicate",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 4, Member: "m1", Prefix: "b/", StartRev: 1, Events: watchEvents(1, 1, 5)}},
			finalRev: 7,
			want:     []string{`watcher 4 (member m1, prefix "b/"): duplicate: PUT "b/1"="v2" at revision 3`},
		},
		{
			name:     "out of order",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 5, Member: "m2", Prefix: "a/", StartRev: 1, Events: watchEvents(0, 3, 2, 4, 6)}},
			finalRev: 7,
			want:     []string{`watcher 5 (member m2, prefix "a/"): out of order: PUT "a/1"="v3" at revision 4 (created 2, version 2) after revision 5`},
		},
		{
			name:     "value differs from the full history",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 6, Member: "m1", StartRev: 1, Events: append(watchEvents(0, 1), append([]chaos.WatchEvent{changed}, watchEvents(3, 4, 5, 6)...)...)}},
			finalRev: 7,
			want:     []string{`differs at revision 4: received PUT "a/1"="other"`},
		},
		{
			name:     "version differs from the full history",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 6, Member: "m1", Prefix: "b/", StartRev: 5, Events: []chaos.WatchEvent{wPut("b/1", "v5", 6, 3, 3)}}},
			finalRev: 7,
			want:     []string{`differs at revision 6`},
		},
		{
			name:     "event not in the full history",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 7, Member: "m1", Prefix: "b/", StartRev: 1, Events: append(watchEvents(1, 5), wPut("b/1", "v9", 7, 3, 3))}},
			finalRev: 7,
			want:     []string{`not in the full history: PUT "b/1"="v9" at revision 7`},
		},
		{
			name:     "event outside the prefix",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 8, Member: "m1", Prefix: "b/", StartRev: 1, Events: watchEvents(1, 4, 5)}},
			finalRev: 7,
			want:     []string{`outside the prefix: PUT "a/2"`},
		},
		{
			name:     "event before the start revision",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 9, Member: "m1", Prefix: "b/", CreatedRev: 3, Events: watchEvents(1, 5)}},
			finalRev: 7,
			want:     []string{`before the start revision 4: PUT "b/1"="v2" at revision 3`},
		},
		{
			name:     "live watcher did not reach the end",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 10, Member: "m3", Prefix: "a/", StartRev: 1, Events: watchEvents(0, 2, 3, 4)}},
			finalRev: 7,
			want:     []string{`watcher 10 (member m3, prefix "a/"): lived to the end but stopped at revision 6; the last matching change is at revision 7`},
		},
		{
			name:     "live watcher received nothing",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 11, Member: "m3", CreatedRev: 5}},
			finalRev: 7,
			want:     []string{`received nothing from revision 6 on; the last matching change is at revision 7`},
		},
		{
			name:     "problems capped per watcher",
			full:     watchFull,
			logs:     []chaos.WatchLog{{ID: 12, Member: "m1", StartRev: 1, Events: many, End: "canceled"}},
			finalRev: 7,
			want:     []string{"duplicate", "duplicate", "duplicate", "duplicate", "duplicate", "watcher 12 (member m1, prefix \"\"): 4 more problems"},
		},
		{
			name:     "full history with a hole",
			full:     append(watchEvents(0, 1), watchEvents(4, 5, 6)...),
			finalRev: 7,
			want:     []string{"full history: no event at revisions 4-5 (final revision 7)"},
		},
		{
			name:     "full history ends before the final revision",
			full:     watchFull,
			finalRev: 8,
			want:     []string{"full history: no event at revision 8 (final revision 8)"},
		},
		{
			name:     "full history starting at revision 1",
			full:     append([]chaos.WatchEvent{wPut("c", "v0", 1, 1, 1)}, watchFull...),
			finalRev: 7,
			want:     []string{"full history: an event at revision 1 (writes start at revision 2)"},
		},
		{
			name:     "full history out of order",
			full:     watchEvents(0, 2, 1, 3, 4, 5, 6),
			finalRev: 7,
			want:     []string{`full history: out of order: PUT "b/1"="v2" at revision 3 (created 3, version 1) after revision 4`},
		},
		{
			name:     "full history with two events of a key in one revision",
			full:     append(watchEvents(0, 1, 2, 3, 4, 4), watchEvents(5, 6)...),
			finalRev: 7,
			want:     []string{`full history: two events of key "a/2" at revision 6`},
		},
		{
			name:     "empty full history with writes",
			finalRev: 3,
			want:     []string{"full history: no event at all, but the final revision is 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := chaos.CheckWatches(tt.full, tt.logs, tt.finalRev)
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d violations %v, want %d: %q", len(vs), vs, len(tt.want), tt.want)
			}
			for i, v := range vs {
				if v.Check != "watch" || !strings.Contains(v.Detail, tt.want[i]) {
					t.Errorf("violation %d = %v, want a watch violation containing %q", i, v, tt.want[i])
				}
			}
		})
	}
}
