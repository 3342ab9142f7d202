package chaos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aetcd/aetcd/tests/chaos"
)

const leaseTTL = 5 * time.Second

// acks returns keep-alive answer times from start to end, every step.
func acks(start, end, step time.Duration) []int64 {
	var ts []int64
	for t := start; t <= end; t += step {
		ts = append(ts, int64(t))
	}
	return ts
}

func TestCheckLeases(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		full    []chaos.WatchEvent
		leases  []chaos.LeaseLog
		want    []string // each violation's detail contains the corresponding string
		checked int
		skipped int
	}{
		{
			name: "kept alive to the end, key kept",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1)},
			leases: []chaos.LeaseLog{{ID: 0x10, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: acks(2*s, 60*s, 2*s)}},
			checked: 1,
		},
		{
			name: "key deleted while kept alive to the end",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x10, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: acks(2*s, 60*s, 2*s)}},
			want:    []string{`lease 10 (TTL 5s, kept alive to the end, 30 acks): key "l/1" deleted at revision 9`},
			checked: 1,
		},
		{
			name: "key deleted before the revoke",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x11, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: acks(2*s, 30*s, 2*s), Revoked: int64(31 * s), RevokedRev: 12}},
			want:    []string{`lease 11 (TTL 5s, kept alive for 30s, 15 acks, revoked at revision 12): key "l/1" deleted at revision 9`},
			checked: 1,
		},
		{
			name: "keys deleted by the revoke",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wPut("l/2", "", 3, 3, 1), wDelete("l/1", 12), wDelete("l/2", 12)},
			leases: []chaos.LeaseLog{{ID: 0x12, TTL: leaseTTL, Keys: []string{"l/1", "l/2"},
				Granted: int64(s), Acks: acks(2*s, 30*s, 2*s), Revoked: int64(31 * s), RevokedRev: 12}},
			checked: 1,
		},
		{
			name: "key deleted after a TTL-long gap between acks",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x13, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: append(acks(2*s, 10*s, 2*s), acks(15*s, 60*s, 2*s)...)}},
			skipped: 1,
		},
		{
			name: "revoked a TTL after the last ack",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x14, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: acks(2*s, 10*s, 2*s), Revoked: int64(15 * s), RevokedRev: 12}},
			skipped: 1,
		},
		{
			name: "acks stopped a TTL before the run's last ack",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wPut("l/2", "", 3, 3, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{
				{ID: 0x15, TTL: leaseTTL, Keys: []string{"l/1"}, Granted: int64(s), Acks: acks(2*s, 20*s, 2*s)},
				{ID: 0x16, TTL: leaseTTL, Keys: []string{"l/2"}, Granted: int64(s), Acks: acks(2*s, 60*s, 2*s)},
			},
			checked: 1, skipped: 1,
		},
		{
			name: "revoke with an unknown outcome",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x17, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: acks(2*s, 30*s, 2*s), Revoked: int64(31 * s)}},
			skipped: 1,
		},
		{
			name: "key never attached",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1)},
			leases: []chaos.LeaseLog{{ID: 0x18, TTL: leaseTTL, Keys: []string{"l/1", "l/2"},
				Granted: int64(s), Acks: acks(2*s, 60*s, 2*s)}},
			want:    []string{`lease 18 (TTL 5s, kept alive to the end, 30 acks): key "l/2" was never attached (no PUT)`},
			checked: 1,
		},
		{
			name: "acks after the revoke ignored",
			full: []chaos.WatchEvent{wPut("l/1", "", 2, 2, 1), wDelete("l/1", 9)},
			leases: []chaos.LeaseLog{{ID: 0x19, TTL: leaseTTL, Keys: []string{"l/1"},
				Granted: int64(s), Acks: []int64{int64(2 * s), int64(20 * s)}, Revoked: int64(10 * s), RevokedRev: 12}},
			skipped: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, stats := chaos.CheckLeases(tt.full, tt.leases)
			if stats != (chaos.LeaseStats{Checked: tt.checked, Skipped: tt.skipped}) {
				t.Errorf("got %+v, want Checked %d Skipped %d", stats, tt.checked, tt.skipped)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d violations %v, want %d: %q", len(vs), vs, len(tt.want), tt.want)
			}
			for i, v := range vs {
				if v.Check != "lease" || !strings.Contains(v.Detail, tt.want[i]) {
					t.Errorf("violation %d = %v, want a lease violation containing %q", i, v, tt.want[i])
				}
			}
		})
	}
}
