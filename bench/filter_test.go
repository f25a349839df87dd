package bench

import (
	"context"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/milter"
)

// benchMessage writes a 4 KB message and an envelope as the spool would.
func benchMessage(b *testing.B) (content, envelope string) {
	dir := b.TempDir()
	content = filepath.Join(dir, "m.content")
	envelope = filepath.Join(dir, "m.envelope.new")
	body := "From: a@example.org\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n"
	for len(body) < 4096 {
		body += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
	}
	os.WriteFile(content, []byte(body), 0o640)
	os.WriteFile(envelope, []byte("X-MailRelay-Format: #2821.8\r\nX-MailRelay-From: a@example.org\r\n"+
		"X-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: b@example.net\r\nX-MailRelay-Client: 127.0.0.1:1\r\nX-MailRelay-End: 1\r\n"), 0o640)
	return content, envelope
}

// BenchmarkExecFilter is the cost per message of an E-MailRelay --filter
// program that does nothing (fork, exec, wait).
//
//	go test -run XXX -bench ExecFilter -benchmem ./bench/
func BenchmarkExecFilter(b *testing.B) {
	script := filepath.Join(b.TempDir(), "ok.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	f, err := filter.Parse(script, filter.Server, 0)
	if err != nil {
		b.Fatal(err)
	}
	content, env := benchMessage(b)
	b.ResetTimer()
	for range b.N {
		if r := f.Run(context.Background(), content, env); r.Outcome != filter.OK {
			b.Fatalf("filter = %+v", r)
		}
	}
}

type acceptMilter struct{ gomilter.NoOpMilter }

func (acceptMilter) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespAccept, nil
}
func (acceptMilter) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

// BenchmarkMilter is the cost per message of a milter session (connect,
// the whole message, accept) with an in-process milter on loopback.
//
//	go test -run XXX -bench Milter -benchmem ./bench/
func BenchmarkMilter(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return acceptMilter{} }}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	m, err := milter.New("inet:"+port+"@127.0.0.1", milter.Options{})
	if err != nil {
		b.Fatal(err)
	}
	content, env := benchMessage(b)
	b.ResetTimer()
	for range b.N {
		if r := m.Run(context.Background(), content, env); r.Outcome != filter.OK {
			b.Fatalf("milter = %+v", r)
		}
	}
}
