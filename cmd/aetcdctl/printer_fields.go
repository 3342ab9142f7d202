package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/aetcd/aetcd/messages"
	"google.golang.org/protobuf/proto"
)

// fieldsPrinter is etcdctl's "fields" format: one `"Name" : value` line
// per field.
type fieldsPrinter struct {
	w     io.Writer
	isHex bool
}

func (p *fieldsPrinter) kv(prefix string, kv *messages.KeyValue) {
	fmt.Fprintf(p.w, "\"%sKey\" : %q\n", prefix, string(kv.GetKey()))
	fmt.Fprintf(p.w, "\"%sCreateRevision\" : %d\n", prefix, kv.GetCreateRevision())
	fmt.Fprintf(p.w, "\"%sModRevision\" : %d\n", prefix, kv.GetModRevision())
	fmt.Fprintf(p.w, "\"%sVersion\" : %d\n", prefix, kv.GetVersion())
	fmt.Fprintf(p.w, "\"%sValue\" : %q\n", prefix, string(kv.GetValue()))
	if p.isHex {
		fmt.Fprintf(p.w, "\"%sLease\" : %016x\n", prefix, kv.GetLease())
	} else {
		fmt.Fprintf(p.w, "\"%sLease\" : %d\n", prefix, kv.GetLease())
	}
}

func (p *fieldsPrinter) header(h *messages.ResponseHeader) {
	if p.isHex {
		// etcd's types.ID prints in hex without padding.
		fmt.Fprintln(p.w, `"ClusterID" :`, strconv.FormatUint(h.GetClusterId(), 16))
		fmt.Fprintln(p.w, `"MemberID" :`, strconv.FormatUint(h.GetMemberId(), 16))
	} else {
		fmt.Fprintln(p.w, `"ClusterID" :`, h.GetClusterId())
		fmt.Fprintln(p.w, `"MemberID" :`, h.GetMemberId())
	}
	// Like etcdctl: the revision only when set.
	if h.GetRevision() > 0 {
		fmt.Fprintln(p.w, `"Revision" :`, h.GetRevision())
	}
	fmt.Fprintln(p.w, `"RaftTerm" :`, h.GetRaftTerm())
}

func (p *fieldsPrinter) Get(r *messages.RangeResponse) error {
	p.header(r.GetHeader())
	for _, kv := range r.GetKvs() {
		p.kv("", kv)
	}
	fmt.Fprintln(p.w, `"More" :`, r.GetMore())
	fmt.Fprintln(p.w, `"Count" :`, r.GetCount())
	return nil
}

func (p *fieldsPrinter) Put(r *messages.PutResponse) error {
	p.header(r.GetHeader())
	if r.GetPrevKv() != nil {
		p.kv("Prev", r.GetPrevKv())
	}
	return nil
}

func (p *fieldsPrinter) Del(r *messages.DeleteRangeResponse) error {
	p.header(r.GetHeader())
	fmt.Fprintln(p.w, `"Deleted" :`, r.GetDeleted())
	for _, kv := range r.GetPrevKvs() {
		p.kv("Prev", kv)
	}
	return nil
}

func (p *fieldsPrinter) Txn(r *messages.TxnResponse) error {
	p.header(r.GetHeader())
	fmt.Fprintln(p.w, `"Succeeded" :`, r.GetSucceeded())
	for _, op := range r.GetResponses() {
		switch v := op.GetResponse().(type) {
		case *messages.ResponseOp_ResponseDeleteRange:
			p.Del(v.ResponseDeleteRange)
		case *messages.ResponseOp_ResponsePut:
			p.Put(v.ResponsePut)
		case *messages.ResponseOp_ResponseRange:
			p.Get(v.ResponseRange)
		default:
			fmt.Fprintf(p.w, "\"Unknown\" : %q\n", fmt.Sprintf("%+v", v))
		}
	}
	return nil
}

func (p *fieldsPrinter) EndpointStatus(statuses []endpointStatus) error {
	for _, st := range statuses {
		s := st.Status
		p.header(s.GetHeader())
		fmt.Fprintf(p.w, "\"Version\" : %q\n", s.GetVersion())
		fmt.Fprintf(p.w, "\"StorageVersion\" : %q\n", s.GetStorageVersion())
		fmt.Fprintln(p.w, `"DBSize" :`, s.GetDbSize())
		fmt.Fprintln(p.w, `"DBSizeInUse" :`, s.GetDbSizeInUse())
		fmt.Fprintln(p.w, `"DBSizeQuota" :`, s.GetDbSizeQuota())
		fmt.Fprintln(p.w, `"Leader" :`, s.GetLeader())
		fmt.Fprintln(p.w, `"IsLearner" :`, s.GetIsLearner())
		fmt.Fprintln(p.w, `"RaftIndex" :`, s.GetRaftIndex())
		fmt.Fprintln(p.w, `"RaftTerm" :`, s.GetRaftTerm())
		fmt.Fprintln(p.w, `"RaftAppliedIndex" :`, s.GetRaftAppliedIndex())
		fmt.Fprintln(p.w, `"Errors" :`, s.GetErrors())
		fmt.Fprintf(p.w, "\"Endpoint\" : %q\n", st.Endpoint)
		fmt.Fprintf(p.w, "\"DowngradeTargetVersion\" : %q\n", s.GetDowngradeInfo().GetTargetVersion())
		fmt.Fprintln(p.w, `"DowngradeEnabled" :`, s.GetDowngradeInfo().GetEnabled())
		fmt.Fprintln(p.w)
	}
	return nil
}

func (p *fieldsPrinter) MemberList(r *messages.MemberListResponse) error {
	p.header(r.GetHeader())
	for _, m := range r.GetMembers() {
		if p.isHex {
			fmt.Fprintln(p.w, `"ID" :`, strconv.FormatUint(m.GetID(), 16))
		} else {
			fmt.Fprintln(p.w, `"ID" :`, m.GetID())
		}
		fmt.Fprintf(p.w, "\"Name\" : %q\n", m.GetName())
		for _, u := range m.GetPeerURLs() {
			fmt.Fprintf(p.w, "\"PeerURL\" : %q\n", u)
		}
		for _, u := range m.GetClientURLs() {
			fmt.Fprintf(p.w, "\"ClientURL\" : %q\n", u)
		}
		fmt.Fprintln(p.w, `"IsLearner" :`, m.GetIsLearner())
		fmt.Fprintln(p.w)
	}
	return nil
}

// fieldsPrinter prints no other member command: etcdctl fails them.

func (p *fieldsPrinter) MemberAdd(*messages.MemberAddResponse) error {
	return errUnsupported("fields")
}
func (p *fieldsPrinter) MemberRemove(uint64, *messages.MemberRemoveResponse) error {
	return errUnsupported("fields")
}
func (p *fieldsPrinter) MemberUpdate(uint64, *messages.MemberUpdateResponse) error {
	return errUnsupported("fields")
}
func (p *fieldsPrinter) MemberPromote(uint64, *messages.MemberPromoteResponse) error {
	return errUnsupported("fields")
}

// protobufPrinter writes the response's protobuf encoding, which is etcd's
// (aetcd's messages are wire-compatible with etcdserverpb).
type protobufPrinter struct {
	unsupportedPrinter
	w io.Writer
}

func (p *protobufPrinter) print(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = p.w.Write(b)
	return err
}

func (p *protobufPrinter) Get(r *messages.RangeResponse) error       { return p.print(r) }
func (p *protobufPrinter) Put(r *messages.PutResponse) error         { return p.print(r) }
func (p *protobufPrinter) Del(r *messages.DeleteRangeResponse) error { return p.print(r) }
func (p *protobufPrinter) Txn(r *messages.TxnResponse) error         { return p.print(r) }
func (p *protobufPrinter) MemberAdd(r *messages.MemberAddResponse) error {
	return p.print(r)
}
func (p *protobufPrinter) MemberRemove(_ uint64, r *messages.MemberRemoveResponse) error {
	return p.print(r)
}
func (p *protobufPrinter) MemberUpdate(_ uint64, r *messages.MemberUpdateResponse) error {
	return p.print(r)
}
func (p *protobufPrinter) MemberPromote(_ uint64, r *messages.MemberPromoteResponse) error {
	return p.print(r)
}
func (p *protobufPrinter) MemberList(r *messages.MemberListResponse) error { return p.print(r) }
