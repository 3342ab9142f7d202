package actors

import (
	"bytes"

	"github.com/aetcd/aetcd/messages"
	"github.com/aetcd/aetcd/messages/rpcerr"
)

// The checks below reproduce etcd 3.6's v3rpc request checks
// (server/etcdserver/api/v3rpc/key.go), in the same order, so the same bad
// request gets the same error.

func checkRange(r *messages.RangeRequest) *messages.Error {
	if len(r.GetKey()) == 0 {
		return rpcerr.EmptyKey
	}
	if _, ok := messages.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return rpcerr.InvalidSortOption
	}
	if _, ok := messages.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return rpcerr.InvalidSortOption
	}
	return nil
}

func checkPut(r *messages.PutRequest) *messages.Error {
	if len(r.GetKey()) == 0 {
		return rpcerr.EmptyKey
	}
	if r.GetIgnoreValue() && len(r.GetValue()) != 0 {
		return rpcerr.ValueProvided
	}
	if r.GetIgnoreLease() && r.GetLease() != 0 {
		return rpcerr.LeaseProvided
	}
	return nil
}

func checkDelete(r *messages.DeleteRangeRequest) *messages.Error {
	if len(r.GetKey()) == 0 {
		return rpcerr.EmptyKey
	}
	return nil
}

// checkTxn checks op counts and keys; maxOps shrinks for nested txns as in
// etcd.
func checkTxn(r *messages.TxnRequest, maxOps int) *messages.Error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxOps {
		return rpcerr.TooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return rpcerr.EmptyKey
		}
	}
	for _, ops := range [][]*messages.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := checkRequestOp(op, maxOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(op *messages.RequestOp, maxOps int) *messages.Error {
	switch r := op.GetRequest().(type) {
	case *messages.RequestOp_RequestRange:
		return checkRange(r.RequestRange)
	case *messages.RequestOp_RequestPut:
		return checkPut(r.RequestPut)
	case *messages.RequestOp_RequestDeleteRange:
		return checkDelete(r.RequestDeleteRange)
	case *messages.RequestOp_RequestTxn:
		return checkTxn(r.RequestTxn, maxOps)
	default:
		return rpcerr.KeyNotFound
	}
}

// interval is [begin, end); an empty end is +infinity, as in etcd's
// "string affine" intervals. A point k is [k, k+"\x00").
type interval struct{ begin, end []byte }

func pointInterval(k []byte) interval {
	return interval{k, append(append([]byte(nil), k...), 0)}
}

func (iv interval) contains(k []byte) bool {
	if bytes.Compare(k, iv.begin) < 0 {
		return false
	}
	return len(iv.end) == 0 || bytes.Compare(k, iv.end) < 0
}

type intervals []interval

func (s intervals) intersectsPoint(k []byte) bool {
	for _, iv := range s {
		if iv.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals rejects two writes to one key in one branch of a txn: two
// puts of a key, or a put of a key a delete in the same branch covers,
// including through nested txns (etcd's checkIntervals).
func checkIntervals(reqs []*messages.RequestOp) (map[string]struct{}, intervals, *messages.Error) {
	var dels intervals
	for _, op := range reqs {
		d := op.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.RangeEnd) != 0 {
			dels = append(dels, interval{d.Key, d.RangeEnd})
		} else {
			dels = append(dels, pointInterval(d.Key))
		}
	}
	puts := map[string]struct{}{}
	for _, op := range reqs {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, ok := puts[k]; ok {
				return nil, dels, rpcerr.DuplicateKey
			}
			if dels.intersectsPoint([]byte(k)) {
				return nil, dels, rpcerr.DuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, ok := puts[k]; ok {
				if _, safe := putsThen[k]; !safe {
					return nil, dels, rpcerr.DuplicateKey
				}
			}
			if dels.intersectsPoint([]byte(k)) {
				return nil, dels, rpcerr.DuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range reqs {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, ok := puts[k]; ok {
			return nil, dels, rpcerr.DuplicateKey
		}
		if dels.intersectsPoint(p.Key) {
			return nil, dels, rpcerr.DuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}

// CheckRequest validates a client request as etcd's gRPC layer does; nil
// means valid. maxTxnOps is --max-txn-ops.
func CheckRequest(req *messages.ClientRequest, maxTxnOps int) *messages.Error {
	switch r := req.GetRequest().(type) {
	case *messages.ClientRequest_Range:
		return checkRange(r.Range)
	case *messages.ClientRequest_Put:
		return checkPut(r.Put)
	case *messages.ClientRequest_DeleteRange:
		return checkDelete(r.DeleteRange)
	case *messages.ClientRequest_Txn:
		if err := checkTxn(r.Txn, maxTxnOps); err != nil {
			return err
		}
		if _, _, err := checkIntervals(r.Txn.Success); err != nil {
			return err
		}
		_, _, err := checkIntervals(r.Txn.Failure)
		return err
	}
	return nil
}
