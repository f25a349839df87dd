package harness

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Stage names the point of an SMTP session at which a Script answers.
type Stage int

const (
	StageConnect   Stage = iota // the greeting
	StageHelo                   // HELO or EHLO
	StageMail                   // MAIL FROM
	StageRcpt                   // RCPT TO, once per recipient
	StageData                   // the DATA command, normally answered 354
	StageContent                // while the message content is read
	StageEndOfData              // after the final "."
)

func (s Stage) String() string {
	switch s {
	case StageConnect:
		return "connect"
	case StageHelo:
		return "helo"
	case StageMail:
		return "mail"
	case StageRcpt:
		return "rcpt"
	case StageData:
		return "data"
	case StageContent:
		return "content"
	case StageEndOfData:
		return "end-of-data"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Fault is an answer other than a plain reply.
type Fault int

const (
	NoFault  Fault = iota
	Close          // close the connection without a reply
	Reset          // SO_LINGER 0, then close: the client sees a TCP reset
	Close421       // reply 421 (Response.Reply, or a default) and close
)

func (f Fault) String() string {
	switch f {
	case NoFault:
		return "none"
	case Close:
		return "close"
	case Reset:
		return "reset"
	case Close421:
		return "421-close"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Response is how FakeSMTP answers at one stage. The zero Response is the
// stage's default, healthy reply.
type Response struct {
	// Reply is the exact reply, one or more lines separated by "\r\n" or
	// "\n", as "550-5.7.1 line one\r\n550 5.7.1 line two". Each line is
	// sent as is with CRLF added. Empty means the stage's default.
	Reply string
	// Fault, if set, replaces the reply (Close421 sends Reply if set).
	Fault Fault
	// Delay stalls before the reply or fault: the server reads nothing and
	// sends nothing. It is bounded by Script.MaxStall and ends early when
	// the server is closed.
	Delay time.Duration
	// After applies to StageContent only: the number of content bytes read
	// before the Delay and the Fault. A content Response without a Fault
	// stalls and then goes on reading.
	After int
}

// defaultCapabilities are the EHLO keywords announced when
// Script.Capabilities is nil.
var defaultCapabilities = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 52428800"}

// Script says how FakeSMTP answers. The zero Script is a healthy server.
type Script struct {
	// Hostname is used in the default replies; default "fake.relaykeeper.test".
	Hostname string
	// Greeting defaults to "220 <Hostname> ESMTP fake".
	Greeting Response
	// Capabilities are the EHLO keywords after the hostname line; nil means
	// PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and "SIZE 52428800", an
	// empty non-nil slice none (the reply is then "250 <Hostname>").
	Capabilities []string
	// Helo answers HELO and EHLO; its default is built from Capabilities.
	Helo Response
	// Mail defaults to "250 2.1.0 Ok".
	Mail Response
	// Rcpt answers recipients not in RcptFor; default "250 2.1.5 Ok".
	Rcpt Response
	// RcptFor answers single recipients, by address without the angle
	// brackets, compared without regard to case.
	RcptFor map[string]Response
	// Data answers the DATA command; default
	// "354 End data with <CR><LF>.<CR><LF>". A reply other than 3xx ends the
	// DATA command without reading content.
	Data Response
	// Content is a stall or fault in the middle of the content; see After.
	Content Response
	// EndOfData answers the final "."; default "250 2.0.0 Ok: queued as FAKEn".
	EndOfData Response
	// Decide, if set, is asked first at every stage; a zero Response means
	// "use the fields above". tx is a copy of the transaction so far (at
	// StageConnect and StageHelo an empty one with Client and Helo set); arg
	// is the HELO name or the MAIL or RCPT address. It runs on the
	// connection's goroutine, without any lock held.
	Decide func(stage Stage, tx Transaction, arg string) Response
	// MaxStall bounds every Delay; default 30s.
	MaxStall time.Duration
	// IdleTimeout closes a connection that sends nothing for this long;
	// default 30s.
	IdleTimeout time.Duration
}

// Rcpt is one RCPT command of a Transaction.
type Rcpt struct {
	Addr   string // without the angle brackets
	Params string // the ESMTP parameters after the address
	Reply  string // the reply given; empty if a fault was the answer
}

// Transaction is one mail transaction as FakeSMTP saw it: from MAIL to the
// reply after the final ".", or to whatever ended it first.
type Transaction struct {
	Conn       int    // the connection's number, from 1
	Client     string // the client's address, "127.0.0.1:PORT"
	Helo       string // the HELO or EHLO argument
	MailFrom   string // without the angle brackets
	MailParams string // the ESMTP parameters, "SIZE=123 BODY=8BITMIME"
	MailReply  string
	Rcpts      []Rcpt
	DataReply  string // the reply to DATA, normally 354
	// Data is the content after dot-unstuffing, CRLF line endings kept; a
	// prefix of it if the transaction was cut short.
	Data []byte
	// Reply is the reply after the final "."; empty if there was none.
	Reply string
	// Fault is the fault the server answered with, if one ended it.
	Fault Fault
	// Aborted is true when it ended without a reply after "." (MAIL or DATA
	// rejected, RSET, a new HELO, QUIT, a disconnect or a fault).
	Aborted bool
}

// To returns the recipients that were accepted (2xx).
func (tx Transaction) To() []string {
	var to []string
	for _, r := range tx.Rcpts {
		if positive(r.Reply) {
			to = append(to, r.Addr)
		}
	}
	return to
}

// Accepted reports whether the message was accepted after the final ".".
func (tx Transaction) Accepted() bool { return positive(tx.Reply) }

// summary describes tx in one line, for test logs.
func (tx Transaction) summary() string {
	rcpts := make([]string, len(tx.Rcpts))
	for i, r := range tx.Rcpts {
		rcpts[i] = fmt.Sprintf("<%s> %q", r.Addr, r.Reply)
	}
	return fmt.Sprintf("conn %d from %s helo %q: MAIL <%s> %q, RCPT %s, DATA %q, %d bytes, reply %q, fault %v",
		tx.Conn, tx.Client, tx.Helo, tx.MailFrom, tx.MailReply, strings.Join(rcpts, ", "), tx.DataReply, len(tx.Data), tx.Reply, tx.Fault)
}

func (tx Transaction) clone() Transaction {
	tx.Rcpts = append([]Rcpt(nil), tx.Rcpts...)
	tx.Data = append([]byte(nil), tx.Data...)
	return tx
}

func positive(reply string) bool { return strings.HasPrefix(reply, "2") }

// FakeSMTP is a scripted SMTP server on 127.0.0.1, written with net and
// bufio so that it can send exact replies and misbehave on demand. It reads
// commands in a loop and answers them in order, flushing its replies when
// no more input is buffered, so pipelining clients work. It has no TLS.
// Its methods are safe for concurrent use.
type FakeSMTP struct {
	ln      net.Listener
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	script    Script
	txs       []Transaction
	conns     map[net.Conn]bool
	nconns    int // connections accepted so far
	active    int
	maxActive int
	ids       int // end-of-data replies so far, for queue ids
	closed    bool
}

// NewFakeSMTP starts a FakeSMTP with script on 127.0.0.1 and a free port.
// It is closed at the end of the test.
func NewFakeSMTP(t testing.TB, script Script) *FakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: fake smtp: %v", err)
	}
	f := &FakeSMTP{ln: ln, closing: make(chan struct{}), script: script, conns: make(map[net.Conn]bool)}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			for i, tx := range f.Transactions() {
				t.Logf("harness: fake smtp %s transaction %d: %s", f.Addr(), i+1, tx.summary())
			}
		}
	})
	return f
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (f *FakeSMTP) Addr() string { return f.ln.Addr().String() }

// SetScript replaces the script; sessions use it from their next command.
func (f *FakeSMTP) SetScript(s Script) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = s
}

// Update changes the script in place, under the server's lock; sessions use
// the change from their next command. For example, to stop deferring:
//
//	f.Update(func(s *harness.Script) { s.EndOfData.Reply = "" })
func (f *FakeSMTP) Update(change func(*Script)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.script)
}

// Transactions returns the transactions that have ended so far, in the
// order they ended.
func (f *FakeSMTP) Transactions() []Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	txs := make([]Transaction, len(f.txs))
	for i, tx := range f.txs {
		txs[i] = tx.clone()
	}
	return txs
}

// AcceptedFrom counts the accepted transactions by sender. Unlike
// Transactions it copies no content, so a test may call it in a polling
// loop while hundreds of large messages arrive.
func (f *FakeSMTP) AcceptedFrom() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[string]int{}
	for _, tx := range f.txs {
		if tx.Accepted() {
			n[tx.MailFrom]++
		}
	}
	return n
}

// WaitTransactions waits until at least n transactions have ended and
// returns them, or fails the test after timeout.
func (f *FakeSMTP) WaitTransactions(t testing.TB, n int, timeout time.Duration) []Transaction {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if txs := f.Transactions(); len(txs) >= n {
			return txs
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: fake smtp %s: %d transactions after %v; want %d", f.Addr(), len(f.Transactions()), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Connections returns the number of connections accepted so far.
func (f *FakeSMTP) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nconns
}

// MaxConcurrent returns the highest number of simultaneous connections.
func (f *FakeSMTP) MaxConcurrent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxActive
}

// Close stops listening, closes every connection, ends every stall and
// waits (up to 10 seconds) for the sessions to end. It can be called more
// than once.
func (f *FakeSMTP) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.closing)
	f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()

	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// accept runs until the listener is closed.
func (f *FakeSMTP) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = true
		f.nconns++
		f.active++
		f.maxActive = max(f.maxActive, f.active)
		n := f.nconns
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			// Ends when the session does: the client leaves, a fault, the
			// idle timeout, or Close closing the connection.
			defer f.wg.Done()
			s := &session{f: f, c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriter(c)}
			s.conn = n
			s.serve()
			c.Close()
			f.mu.Lock()
			delete(f.conns, c)
			f.active--
			f.mu.Unlock()
		}()
	}
}
