package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/aetcd/aetcd/messages"
)

// Range reads the keys in req's range.
func (c *Client) Range(ctx context.Context, req *messages.RangeRequest) (*messages.RangeResponse, error) {
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_Range{Range: req}}, "range", (*messages.ClientResponse).GetRange)
}

// Put writes one key.
func (c *Client) Put(ctx context.Context, req *messages.PutRequest) (*messages.PutResponse, error) {
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_Put{Put: req}}, "put", (*messages.ClientResponse).GetPut)
}

// DeleteRange deletes the keys in req's range.
func (c *Client) DeleteRange(ctx context.Context, req *messages.DeleteRangeRequest) (*messages.DeleteRangeResponse, error) {
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_DeleteRange{DeleteRange: req}}, "delete_range", (*messages.ClientResponse).GetDeleteRange)
}

// Txn runs a transaction.
func (c *Client) Txn(ctx context.Context, req *messages.TxnRequest) (*messages.TxnResponse, error) {
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_Txn{Txn: req}}, "txn", (*messages.ClientResponse).GetTxn)
}

// Compact compacts the key-value history up to req.Revision.
func (c *Client) Compact(ctx context.Context, req *messages.CompactionRequest) (*messages.CompactionResponse, error) {
	return call(c, ctx, &messages.ClientRequest{Request: &messages.ClientRequest_Compaction{Compaction: req}}, "compaction", (*messages.ClientResponse).GetCompaction)
}

// Status returns the status of the member that answers.
func (c *Client) Status(ctx context.Context) (*messages.StatusResponse, error) {
	return call(c, ctx, statusRequest(), "status", (*messages.ClientResponse).GetStatus)
}

// StatusAt returns the status of the member at endpoint.
func (c *Client) StatusAt(ctx context.Context, endpoint string) (*messages.StatusResponse, error) {
	resp, err := c.DoAt(ctx, endpoint, statusRequest())
	if err != nil {
		return nil, err
	}
	return pick(resp, endpoint, "status", (*messages.ClientResponse).GetStatus)
}

func statusRequest() *messages.ClientRequest {
	return &messages.ClientRequest{Request: &messages.ClientRequest_Status{Status: &messages.StatusRequest{}}}
}

func call[T comparable](c *Client, ctx context.Context, req *messages.ClientRequest, want string, get func(*messages.ClientResponse) T) (T, error) {
	resp, endpoint, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		var zero T
		return zero, err
	}
	return pick(resp, endpoint, want, get)
}

func pick[T comparable](resp *messages.ClientResponse, endpoint, want string, get func(*messages.ClientResponse) T) (T, error) {
	var zero T
	if r := get(resp); r != zero {
		return r, nil
	}
	got := "an empty response"
	if r := resp.GetResponse(); r != nil {
		got = strings.TrimPrefix(fmt.Sprintf("%T", r), "*messages.ClientResponse_")
	}
	return zero, &UnexpectedResponseError{Endpoint: endpoint, Want: want, Got: got}
}
