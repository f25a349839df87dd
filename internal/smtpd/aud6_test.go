package smtpd

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// readdressingFilter changes the To-Remote lines of messages whose content
// says "Subject: readdress" and leaves the rest as they are; it passes
// every message.
type readdressingFilter struct{}

func (readdressingFilter) Run(_ context.Context, content, envelope string) filter.Result {
	c, err := os.ReadFile(content)
	if err != nil {
		return filter.Result{Outcome: filter.TempFail, Code: 451}
	}
	if strings.Contains(string(c), "Subject: readdress") {
		e, err := os.ReadFile(envelope)
		if err != nil {
			return filter.Result{Outcome: filter.TempFail, Code: 451}
		}
		e = []byte(strings.Replace(string(e), "X-MailRelay-To-Remote: x@sink.test", "X-MailRelay-To-Remote: quarantine@sink.test", 1))
		if err := os.WriteFile(envelope, e, 0o600); err != nil {
			return filter.Result{Outcome: filter.TempFail, Code: 451}
		}
	}
	return filter.Result{Outcome: filter.OK}
}

func (readdressingFilter) String() string { return "readdressing" }

// TestAud6ProxyFilterReaddresses: in proxy mode (--as-proxy) a filter that
// changed a message's recipients, as E-MailRelay's filters may, had its
// change ignored without a word: the message went upstream to the
// recipients the client named, which the proxy had already given the
// upstream, so mail the filter sent elsewhere reached them anyway. It is
// refused for now (451), with an error in the log saying why; a filter
// that leaves the envelope alone passes as before, null sender included.
func TestAud6ProxyFilterReaddresses(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{})
	d := &countingDialer{d: remote.Dialer{Options: remote.Options{Helo: "relay.test", ResponseTimeout: 5 * time.Second}}}
	ts := startServer(t, func(o *Options) {
		o.Proxy = &Proxy{Addr: sink.Addr(), Dialer: d, IdleTimeout: time.Minute}
		o.Filter = readdressingFilter{}
	})
	c := dialClient(t, ts.addr, "client.test")
	c.message("a@client.test", "x@sink.test", "Subject: kept\r\n\r\nhello", "250")
	c.message("", "x@sink.test", "Subject: bounce\r\n\r\nhello", "250")
	c.message("a@client.test", "x@sink.test", "Subject: readdress\r\n\r\nhello", "451")
	c.quit()
	if n := sink.WaitCount(t, 2, 5*time.Second); n != 2 {
		t.Errorf("the upstream got %d messages; want the 2 the filter left alone", n)
	}
	for _, m := range sink.Messages() {
		if strings.Contains(m.Data, "Subject: readdress") {
			t.Errorf("the upstream got the readdressed message, for %v", m.To)
		}
	}
}
