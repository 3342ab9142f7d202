package bootstrap

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"time"
)

// splitListener serves gRPC (HTTP/2 with prior knowledge, as etcd clients
// speak it) and plain HTTP/1 (curl /health) on one port, like etcd's client
// port. It sniffs the first bytes of each connection: the HTTP/2 client
// preface goes to the gRPC listener, anything else to the HTTP listener.
type splitListener struct {
	inner   net.Listener
	grpc    *chanListener
	http    *chanListener
	closing sync.Once
}

var http2Preface = []byte("PRI * HTTP/2.0")

func newSplitListener(l net.Listener) *splitListener {
	s := &splitListener{inner: l, grpc: newChanListener(l.Addr()), http: newChanListener(l.Addr())}
	go s.acceptLoop()
	return s
}

func (s *splitListener) acceptLoop() {
	for {
		c, err := s.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			s.Close()
			return
		}
		go s.route(c)
	}
}

func (s *splitListener) route(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, err := br.Peek(len(http2Preface))
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if err == nil && bytes.Equal(head, http2Preface) {
		s.grpc.deliver(pc)
		return
	}
	if len(head) == 0 {
		c.Close()
		return
	}
	s.http.deliver(pc)
}

func (s *splitListener) Close() error {
	var err error
	s.closing.Do(func() {
		err = s.inner.Close()
		s.grpc.Close()
		s.http.Close()
	})
	return err
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
