package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// jsonPrinter writes what etcdctl's does: encoding/json of etcd's gogo
// response structs. The structs below mirror those field for field (names,
// order, omitempty), so numbers print as numbers, bytes as base64, and a
// ResponseOp's oneof under the untagged field name "Response". With --hex,
// member list is written by hand as etcdctl does (printMemberListWithHexJSON).
type jsonPrinter struct {
	w     io.Writer
	isHex bool
}

func (p *jsonPrinter) print(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(p.w, string(b))
	return err
}

func (p *jsonPrinter) Get(r *messages.RangeResponse) error       { return p.print(jsonRange(r)) }
func (p *jsonPrinter) Put(r *messages.PutResponse) error         { return p.print(jsonPut(r)) }
func (p *jsonPrinter) Del(r *messages.DeleteRangeResponse) error { return p.print(jsonDel(r)) }
func (p *jsonPrinter) Txn(r *messages.TxnResponse) error         { return p.print(jsonTxn(r)) }

func (p *jsonPrinter) EndpointStatus(statuses []endpointStatus) error {
	var out []jsonEndpointStatus // nil prints as null, as in etcdctl
	for _, s := range statuses {
		out = append(out, jsonEndpointStatus{Endpoint: s.Endpoint, Status: jsonStatus(s.Status)})
	}
	return p.print(out)
}

func (p *jsonPrinter) MemberAdd(r *messages.MemberAddResponse) error {
	return p.print(&jsonMemberAddResponse{Header: jsonHeader(r.GetHeader()), Member: jsonMember(r.GetMember()), Members: jsonMemberList(r.GetMembers())})
}

func (p *jsonPrinter) MemberRemove(_ uint64, r *messages.MemberRemoveResponse) error {
	return p.print(jsonMembers(r.GetHeader(), r.GetMembers()))
}

func (p *jsonPrinter) MemberUpdate(_ uint64, r *messages.MemberUpdateResponse) error {
	return p.print(jsonMembers(r.GetHeader(), r.GetMembers()))
}

func (p *jsonPrinter) MemberPromote(_ uint64, r *messages.MemberPromoteResponse) error {
	return p.print(jsonMembers(r.GetHeader(), r.GetMembers()))
}

func (p *jsonPrinter) MemberList(r *messages.MemberListResponse) error {
	if p.isHex {
		return p.memberListHex(r)
	}
	return p.print(jsonMembers(r.GetHeader(), r.GetMembers()))
}

// memberListHex writes what etcdctl's member list writes with --hex: IDs
// as unpadded hex strings, the header without its revision and with a
// raft_term even when 0, the members without isLearner, names unescaped
// and absent URL lists as null.
func (p *jsonPrinter) memberListHex(r *messages.MemberListResponse) error {
	var b strings.Builder
	h := r.GetHeader()
	fmt.Fprintf(&b, `{"header":{"cluster_id":"%x","member_id":"%x","raft_term":%d}`, h.GetClusterId(), h.GetMemberId(), h.GetRaftTerm())
	for i, m := range r.GetMembers() {
		if i == 0 {
			b.WriteString(`,"members":[`)
		} else {
			b.WriteString(",")
		}
		peers, err := json.Marshal(m.GetPeerURLs())
		if err != nil {
			return err
		}
		clients, err := json.Marshal(m.GetClientURLs())
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, `{"ID":"%x","name":"%s","peerURLs":%s,"clientURLs":%s}`, m.GetID(), m.GetName(), peers, clients)
	}
	if len(r.GetMembers()) > 0 {
		b.WriteString("]")
	}
	b.WriteString("}")
	_, err := fmt.Fprintln(p.w, b.String())
	return err
}

type jsonResponseHeader struct {
	ClusterID uint64 `json:"cluster_id,omitempty"`
	MemberID  uint64 `json:"member_id,omitempty"`
	Revision  int64  `json:"revision,omitempty"`
	RaftTerm  uint64 `json:"raft_term,omitempty"`
}

type jsonKeyValue struct {
	Key            []byte `json:"key,omitempty"`
	CreateRevision int64  `json:"create_revision,omitempty"`
	ModRevision    int64  `json:"mod_revision,omitempty"`
	Version        int64  `json:"version,omitempty"`
	Value          []byte `json:"value,omitempty"`
	Lease          int64  `json:"lease,omitempty"`
}

type jsonRangeResponse struct {
	Header *jsonResponseHeader `json:"header,omitempty"`
	Kvs    []*jsonKeyValue     `json:"kvs,omitempty"`
	More   bool                `json:"more,omitempty"`
	Count  int64               `json:"count,omitempty"`
}

type jsonPutResponse struct {
	Header *jsonResponseHeader `json:"header,omitempty"`
	PrevKv *jsonKeyValue       `json:"prev_kv,omitempty"`
}

type jsonDeleteRangeResponse struct {
	Header  *jsonResponseHeader `json:"header,omitempty"`
	Deleted int64               `json:"deleted,omitempty"`
	PrevKvs []*jsonKeyValue     `json:"prev_kvs,omitempty"`
}

type jsonTxnResponse struct {
	Header    *jsonResponseHeader `json:"header,omitempty"`
	Succeeded bool                `json:"succeeded,omitempty"`
	Responses []*jsonResponseOp   `json:"responses,omitempty"`
}

type jsonResponseOp struct {
	Response any // one of the four below; gogo's oneof field has no json tag
}

type jsonResponseOpRange struct {
	ResponseRange *jsonRangeResponse `json:"response_range,omitempty"`
}

type jsonResponseOpPut struct {
	ResponsePut *jsonPutResponse `json:"response_put,omitempty"`
}

type jsonResponseOpDeleteRange struct {
	ResponseDeleteRange *jsonDeleteRangeResponse `json:"response_delete_range,omitempty"`
}

type jsonResponseOpTxn struct {
	ResponseTxn *jsonTxnResponse `json:"response_txn,omitempty"`
}

type jsonStatusResponse struct {
	Header           *jsonResponseHeader `json:"header,omitempty"`
	Version          string              `json:"version,omitempty"`
	DbSize           int64               `json:"dbSize,omitempty"`
	Leader           uint64              `json:"leader,omitempty"`
	RaftIndex        uint64              `json:"raftIndex,omitempty"`
	RaftTerm         uint64              `json:"raftTerm,omitempty"`
	RaftAppliedIndex uint64              `json:"raftAppliedIndex,omitempty"`
	Errors           []string            `json:"errors,omitempty"`
	DbSizeInUse      int64               `json:"dbSizeInUse,omitempty"`
	IsLearner        bool                `json:"isLearner,omitempty"`
	StorageVersion   string              `json:"storageVersion,omitempty"`
	DbSizeQuota      int64               `json:"dbSizeQuota,omitempty"`
	DowngradeInfo    *jsonDowngradeInfo  `json:"downgradeInfo,omitempty"`
}

type jsonDowngradeInfo struct {
	Enabled       bool   `json:"enabled,omitempty"`
	TargetVersion string `json:"targetVersion,omitempty"`
}

type jsonMemberInfo struct {
	ID         uint64   `json:"ID,omitempty"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peerURLs,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

type jsonMemberAddResponse struct {
	Header  *jsonResponseHeader `json:"header,omitempty"`
	Member  *jsonMemberInfo     `json:"member,omitempty"`
	Members []*jsonMemberInfo   `json:"members,omitempty"`
}

// jsonMembersResponse is the shape of etcd's MemberRemoveResponse,
// MemberUpdateResponse, MemberPromoteResponse and MemberListResponse.
type jsonMembersResponse struct {
	Header  *jsonResponseHeader `json:"header,omitempty"`
	Members []*jsonMemberInfo   `json:"members,omitempty"`
}

// jsonEndpointStatus is etcdctl's epStatus.
type jsonEndpointStatus struct {
	Endpoint string              `json:"Endpoint"`
	Status   *jsonStatusResponse `json:"Status"`
}

func jsonHeader(h *messages.ResponseHeader) *jsonResponseHeader {
	if h == nil {
		return nil
	}
	return &jsonResponseHeader{ClusterID: h.ClusterId, MemberID: h.MemberId, Revision: h.Revision, RaftTerm: h.RaftTerm}
}

func jsonKV(kv *messages.KeyValue) *jsonKeyValue {
	if kv == nil {
		return nil
	}
	return &jsonKeyValue{
		Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision,
		Version: kv.Version, Value: kv.Value, Lease: kv.Lease,
	}
}

func jsonKVs(kvs []*messages.KeyValue) []*jsonKeyValue {
	var out []*jsonKeyValue
	for _, kv := range kvs {
		out = append(out, jsonKV(kv))
	}
	return out
}

func jsonRange(r *messages.RangeResponse) *jsonRangeResponse {
	if r == nil {
		return nil
	}
	return &jsonRangeResponse{Header: jsonHeader(r.Header), Kvs: jsonKVs(r.Kvs), More: r.More, Count: r.Count}
}

func jsonPut(r *messages.PutResponse) *jsonPutResponse {
	if r == nil {
		return nil
	}
	return &jsonPutResponse{Header: jsonHeader(r.Header), PrevKv: jsonKV(r.PrevKv)}
}

func jsonDel(r *messages.DeleteRangeResponse) *jsonDeleteRangeResponse {
	if r == nil {
		return nil
	}
	return &jsonDeleteRangeResponse{Header: jsonHeader(r.Header), Deleted: r.Deleted, PrevKvs: jsonKVs(r.PrevKvs)}
}

func jsonTxn(r *messages.TxnResponse) *jsonTxnResponse {
	if r == nil {
		return nil
	}
	out := &jsonTxnResponse{Header: jsonHeader(r.Header), Succeeded: r.Succeeded}
	for _, op := range r.Responses {
		jop := &jsonResponseOp{}
		switch v := op.GetResponse().(type) {
		case *messages.ResponseOp_ResponseRange:
			jop.Response = &jsonResponseOpRange{ResponseRange: jsonRange(v.ResponseRange)}
		case *messages.ResponseOp_ResponsePut:
			jop.Response = &jsonResponseOpPut{ResponsePut: jsonPut(v.ResponsePut)}
		case *messages.ResponseOp_ResponseDeleteRange:
			jop.Response = &jsonResponseOpDeleteRange{ResponseDeleteRange: jsonDel(v.ResponseDeleteRange)}
		case *messages.ResponseOp_ResponseTxn:
			jop.Response = &jsonResponseOpTxn{ResponseTxn: jsonTxn(v.ResponseTxn)}
		}
		out.Responses = append(out.Responses, jop)
	}
	return out
}

func jsonMember(m *messages.Member) *jsonMemberInfo {
	if m == nil {
		return nil
	}
	return &jsonMemberInfo{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

func jsonMemberList(ms []*messages.Member) []*jsonMemberInfo {
	var out []*jsonMemberInfo
	for _, m := range ms {
		out = append(out, jsonMember(m))
	}
	return out
}

func jsonMembers(h *messages.ResponseHeader, ms []*messages.Member) *jsonMembersResponse {
	return &jsonMembersResponse{Header: jsonHeader(h), Members: jsonMemberList(ms)}
}

func jsonStatus(s *messages.StatusResponse) *jsonStatusResponse {
	if s == nil {
		return nil
	}
	out := &jsonStatusResponse{
		Header: jsonHeader(s.Header), Version: s.Version, DbSize: s.DbSize, Leader: s.Leader,
		RaftIndex: s.RaftIndex, RaftTerm: s.RaftTerm, RaftAppliedIndex: s.RaftAppliedIndex,
		Errors: s.Errors, DbSizeInUse: s.DbSizeInUse, IsLearner: s.IsLearner,
		StorageVersion: s.StorageVersion, DbSizeQuota: s.DbSizeQuota,
	}
	if d := s.DowngradeInfo; d != nil {
		out.DowngradeInfo = &jsonDowngradeInfo{Enabled: d.Enabled, TargetVersion: d.TargetVersion}
	}
	return out
}
