package chaos_test

import (
	"strings"
	"testing"

	"github.com/aetcd/aetcd/tests/chaos"
)

func TestCheckDurability(t *testing.T) {
	failedCAS := lCAS(1, "x", "zz", "c", 40, 50, false)
	tests := []struct {
		name string
		ops  []chaos.Op
		full []chaos.WatchEvent
		want []string // each violation's detail contains the corresponding string
	}{
		{
			name: "acknowledged, unknown and failed writes accounted for",
			ops: []chaos.Op{
				lPut(0, "x", "a", 0, 10),
				lCAS(1, "x", "a", "b", 20, 30, true),
				failedCAS,
				unknown(lPut(2, "y", "d", 0, 0)), // applied
				unknown(lPut(2, "y", "e", 5, 0)), // not applied
				lDelete(0, "x", 60, 70, 1),
				lGet(1, "y", 80, 90, true, "d"),
			},
			full: []chaos.WatchEvent{
				wPut("x", "a", 2, 2, 1), wPut("lease/1", "", 3, 3, 1), wPut("y", "d", 4, 4, 1),
				wPut("x", "b", 5, 2, 2), wDelete("x", 6), wDelete("lease/1", 7),
			},
		},
		{
			name: "lost acknowledged put",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lPut(0, "x", "b", 20, 30)},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1)},
			want: []string{`lost acknowledged write: put "x"="b" (acknowledged; client 0`},
		},
		{
			name: "lost successful CAS",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lCAS(0, "x", "a", "b", 20, 30, true)},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1)},
			want: []string{`lost acknowledged write: cas "x"="b"`},
		},
		{
			name: "phantom value",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10)},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1), wPut("x", "zz", 3, 2, 2)},
			want: []string{`phantom write: PUT "x"="zz" at revision 3 (created 2, version 2) was written by no operation`},
		},
		{
			name: "CAS that reported failure applied",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), failedCAS},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1), wPut("x", "c", 3, 2, 2)},
			want: []string{`phantom write: cas "x"="c" (failed; client 1, member , header revision 0) applied at revision 3 though it reported failure`},
		},
		{
			name: "value written to another key",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lPut(0, "y", "b", 0, 10)},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1), wPut("x", "b", 3, 2, 2)},
			want: []string{`lost acknowledged write: put "y"="b"`, `phantom write: PUT "x"="b" at revision 3`},
		},
		{
			name: "value applied twice",
			ops:  []chaos.Op{lPut(0, "x", "a", 0, 10), lPut(0, "x", "b", 20, 30)},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1), wPut("x", "b", 3, 2, 2), wPut("x", "b", 4, 2, 3)},
			want: []string{`value "b" written 2 times: "x" at revision 3, "x" at revision 4`},
		},
		{
			name: "unknown put applied twice",
			ops:  []chaos.Op{unknown(lPut(0, "x", "a", 0, 10))},
			full: []chaos.WatchEvent{wPut("x", "a", 2, 2, 1), wDelete("x", 3), wPut("x", "a", 4, 4, 1)},
			want: []string{`value "a" written 2 times`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := chaos.CheckDurability(tt.ops, tt.full)
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d violations %v, want %d: %q", len(vs), vs, len(tt.want), tt.want)
			}
			for i, v := range vs {
				if v.Check != "durability" || !strings.Contains(v.Detail, tt.want[i]) {
					t.Errorf("violation %d = %v, want a durability violation containing %q", i, v, tt.want[i])
				}
			}
		})
	}
}
