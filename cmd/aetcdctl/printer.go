package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// Output formatting, mirroring etcdctl 3.6's printers (ctlv3/command/
// printer_*.go) byte for byte: simple here, json, fields and protobuf in
// printer_json.go and printer_fields.go, table in printer_table.go. As in
// etcdctl, a format prints only some commands (supports).

// printer writes one command's response in one format.
type printer interface {
	Get(*messages.RangeResponse) error
	Put(*messages.PutResponse) error
	Del(*messages.DeleteRangeResponse) error
	Txn(*messages.TxnResponse) error
	EndpointStatus([]endpointStatus) error
	MemberAdd(*messages.MemberAddResponse) error
	// MemberRemove, MemberUpdate and MemberPromote get the ID the command
	// was given.
	MemberRemove(id uint64, r *messages.MemberRemoveResponse) error
	MemberUpdate(id uint64, r *messages.MemberUpdateResponse) error
	MemberPromote(id uint64, r *messages.MemberPromoteResponse) error
	MemberList(*messages.MemberListResponse) error
	Grant(*messages.LeaseGrantResponse) error
	// Revoke gets the ID the command was given.
	Revoke(id int64, r *messages.LeaseRevokeResponse) error
	KeepAlive(*messages.LeaseKeepAliveResponse) error
	// TimeToLive gets whether the attached keys were asked for.
	TimeToLive(r *messages.LeaseTimeToLiveResponse, keys bool) error
	Leases(*messages.LeaseLeasesResponse) error
	Watch(*messages.WatchResponse) error
}

// endpointStatus is one row of `endpoint status`.
type endpointStatus struct {
	Endpoint string
	Status   *messages.StatusResponse
}

// Kinds of output, for supports.
const (
	outKV     = "kv" // get, put, del, txn
	outStatus = "status"
)

// supports reports whether etcdctl's format has a printer for kind; for
// the others it fails with "<format> not supported as output format".
func supports(format, kind string) bool {
	switch format {
	case "simple", "fields":
		return true
	case "json":
		return kind == outKV || kind == outStatus
	case "protobuf":
		return kind == outKV
	case "table":
		return kind == outStatus
	}
	return false
}

// errUnsupported is etcdctl's error for a command the format cannot print.
func errUnsupported(format string) error {
	return errorf(exitBadFeature, "%s not supported as output format", format)
}

// newPrinter returns the printer for format writing to w, or nil for an
// unknown format.
func newPrinter(format string, isHex bool, w io.Writer) printer {
	switch format {
	case "simple":
		return &simplePrinter{w: w, isHex: isHex}
	case "json":
		return &jsonPrinter{w: w, isHex: isHex}
	case "fields":
		return &fieldsPrinter{w: w, isHex: isHex}
	case "protobuf":
		return &protobufPrinter{unsupportedPrinter: unsupportedPrinter{"protobuf"}, w: w}
	case "table":
		return &tablePrinter{unsupportedPrinter: unsupportedPrinter{"table"}, w: w}
	}
	return nil
}

// unsupportedPrinter fails every command; printers embed it and override
// what they support.
type unsupportedPrinter struct{ format string }

func (p unsupportedPrinter) Get(*messages.RangeResponse) error       { return errUnsupported(p.format) }
func (p unsupportedPrinter) Put(*messages.PutResponse) error         { return errUnsupported(p.format) }
func (p unsupportedPrinter) Del(*messages.DeleteRangeResponse) error { return errUnsupported(p.format) }
func (p unsupportedPrinter) Txn(*messages.TxnResponse) error         { return errUnsupported(p.format) }
func (p unsupportedPrinter) EndpointStatus([]endpointStatus) error   { return errUnsupported(p.format) }
func (p unsupportedPrinter) MemberAdd(*messages.MemberAddResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) MemberRemove(uint64, *messages.MemberRemoveResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) MemberUpdate(uint64, *messages.MemberUpdateResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) MemberPromote(uint64, *messages.MemberPromoteResponse) error {
	return errUnsupported(p.format)
}
func (p unsupportedPrinter) MemberList(*messages.MemberListResponse) error {
	return errUnsupported(p.format)
}

// simplePrinter is etcdctl's default format.
type simplePrinter struct {
	w         io.Writer
	isHex     bool
	valueOnly bool // get --print-value-only
}

func (p *simplePrinter) kv(kv *messages.KeyValue) {
	k, v := string(kv.GetKey()), string(kv.GetValue())
	if p.isHex {
		k, v = hexBytes(kv.GetKey()), hexBytes(kv.GetValue())
	}
	if !p.valueOnly {
		fmt.Fprintln(p.w, k)
	}
	fmt.Fprintln(p.w, v)
}

// hexBytes writes b as \x-escaped hex, like etcdctl's addHexPrefix.
func hexBytes(b []byte) string {
	var s strings.Builder
	h := hex.EncodeToString(b)
	for i := 0; i < len(h); i += 2 {
		s.WriteString(`\x`)
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

func (p *simplePrinter) Get(r *messages.RangeResponse) error {
	for _, kv := range r.GetKvs() {
		p.kv(kv)
	}
	return nil
}

func (p *simplePrinter) Put(r *messages.PutResponse) error {
	fmt.Fprintln(p.w, "OK")
	if r.GetPrevKv() != nil {
		p.kv(r.GetPrevKv())
	}
	return nil
}

func (p *simplePrinter) Del(r *messages.DeleteRangeResponse) error {
	fmt.Fprintln(p.w, r.GetDeleted())
	for _, kv := range r.GetPrevKvs() {
		p.kv(kv)
	}
	return nil
}

func (p *simplePrinter) Txn(r *messages.TxnResponse) error {
	if r.GetSucceeded() {
		fmt.Fprintln(p.w, "SUCCESS")
	} else {
		fmt.Fprintln(p.w, "FAILURE")
	}
	for _, op := range r.GetResponses() {
		fmt.Fprintln(p.w, "")
		switch v := op.GetResponse().(type) {
		case *messages.ResponseOp_ResponseDeleteRange:
			p.Del(v.ResponseDeleteRange)
		case *messages.ResponseOp_ResponsePut:
			p.Put(v.ResponsePut)
		case *messages.ResponseOp_ResponseRange:
			p.Get(v.ResponseRange)
		default:
			fmt.Fprintf(p.w, "unexpected response %+v\n", op)
		}
	}
	return nil
}

func (p *simplePrinter) EndpointStatus(statuses []endpointStatus) error {
	_, rows := endpointStatusTable(statuses)
	for _, row := range rows {
		fmt.Fprintln(p.w, strings.Join(row, ", "))
	}
	return nil
}

func (p *simplePrinter) MemberAdd(r *messages.MemberAddResponse) error {
	as := " "
	if r.GetMember().GetIsLearner() {
		as = " as learner "
	}
	fmt.Fprintf(p.w, "Member %16x added%sto cluster %16x\n", r.GetMember().GetID(), as, r.GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberRemove(id uint64, r *messages.MemberRemoveResponse) error {
	fmt.Fprintf(p.w, "Member %16x removed from cluster %16x\n", id, r.GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberUpdate(id uint64, r *messages.MemberUpdateResponse) error {
	fmt.Fprintf(p.w, "Member %16x updated in cluster %16x\n", id, r.GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberPromote(id uint64, r *messages.MemberPromoteResponse) error {
	fmt.Fprintf(p.w, "Member %16x promoted in cluster %16x\n", id, r.GetHeader().GetClusterId())
	return nil
}

func (p *simplePrinter) MemberList(r *messages.MemberListResponse) error {
	_, rows := memberListTable(r)
	for _, row := range rows {
		fmt.Fprintln(p.w, strings.Join(row, ", "))
	}
	return nil
}

// memberListTable is etcdctl's makeMemberListTable: a member without a
// name has not started yet.
func memberListTable(r *messages.MemberListResponse) (header []string, rows [][]string) {
	header = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	for _, m := range r.GetMembers() {
		status := "started"
		if m.GetName() == "" {
			status = "unstarted"
		}
		rows = append(rows, []string{
			strconv.FormatUint(m.GetID(), 16),
			status,
			m.GetName(),
			strings.Join(m.GetPeerURLs(), ","),
			strings.Join(m.GetClientURLs(), ","),
			strconv.FormatBool(m.GetIsLearner()),
		})
	}
	return header, rows
}

// endpointStatusTable is etcdctl's makeEndpointStatusTable.
func endpointStatusTable(statuses []endpointStatus) (header []string, rows [][]string) {
	header = []string{
		"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota", "is leader", "is learner", "raft term",
		"raft index", "raft applied index", "errors", "downgrade target version", "downgrade enabled",
	}
	for _, st := range statuses {
		s := st.Status
		rows = append(rows, []string{
			st.Endpoint,
			fmt.Sprintf("%x", s.GetHeader().GetMemberId()),
			s.GetVersion(),
			s.GetStorageVersion(),
			humanizeBytes(uint64(s.GetDbSize())),
			humanizeBytes(uint64(s.GetDbSizeInUse())),
			notInUse(s.GetDbSize(), s.GetDbSizeInUse()),
			humanizeBytes(uint64(s.GetDbSizeQuota())),
			fmt.Sprint(s.GetLeader() == s.GetHeader().GetMemberId()),
			fmt.Sprint(s.GetIsLearner()),
			fmt.Sprint(s.GetRaftTerm()),
			fmt.Sprint(s.GetRaftIndex()),
			fmt.Sprint(s.GetRaftAppliedIndex()),
			strings.Join(s.GetErrors(), ", "),
			s.GetDowngradeInfo().GetTargetVersion(),
			strconv.FormatBool(s.GetDowngradeInfo().GetEnabled()),
		})
	}
	return header, rows
}

// notInUse is the share of the backend not in use, as etcdctl computes it
// (integer arithmetic); etcdctl divides by zero on an empty size, we say 0%.
func notInUse(size, inUse int64) string {
	if size == 0 {
		return "0%"
	}
	return fmt.Sprintf("%d%%", 100-(inUse*100/size))
}
