package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps28MessageIDInMailLog: the accept line names the message's
// Message-ID (message-id=, as Postfix's cleanup logs it), so that an
// administrator given a Message-ID from a user's copy finds the message's
// id with one grep. Before, no line had it: the only way was to search the
// spool's content files, which are gone once the message is delivered. A
// folded field is unfolded; a message without one is logged with the
// Message-ID the relay added, the one in the spooled content. A proxy's
// proxy line has it too.
func TestOps28MessageIDInMailLog(t *testing.T) {
	t.Parallel()
	spoolDir := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spoolDir)
	if _, err := sendMail(r.addr(), "alice@example.com", []string{"bob@example.net"},
		"Message-ID:\r\n <folded.4711@client.example>\r\nSubject: one\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendMail(r.addr(), "carol@example.com", []string{"dave@example.net"},
		"Subject: two, without a Message-ID\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	byFrom := map[string]*maillog.Entry{}
	if !waitFor(5*time.Second, func() bool {
		for _, e := range r.events("accept") {
			byFrom[e.Get("from")] = e
		}
		return len(byFrom) == 2
	}) {
		t.Fatalf("accept lines %v; want two", r.events("accept"))
	}
	if e := byFrom["<alice@example.com>"]; e.Get("message-id") != "<folded.4711@client.example>" {
		t.Errorf("accept line %v; want message-id=<folded.4711@client.example>", e.Fields)
	}
	var grepped []string
	for _, line := range strings.Split(r.stderr(), "\n") {
		if strings.Contains(line, "message-id=<folded.4711@client.example>") {
			grepped = append(grepped, line)
		}
	}
	if want := "id=" + byFrom["<alice@example.com>"].Get("id"); len(grepped) != 1 || !strings.Contains(grepped[0], want) {
		t.Errorf("grep message-id=<folded.4711@client.example> found %q; want the accept line with %s", grepped, want)
	}

	e := byFrom["<carol@example.com>"]
	added := e.Get("message-id")
	// The relay stores its messages' files within seconds (the journal's
	// checkpoint); the content has the Message-ID it added.
	var content []byte
	waitFor(10*time.Second, func() bool {
		var err error
		content, err = os.ReadFile(filepath.Join(spoolDir, e.Get("id")+".content"))
		return err == nil
	})
	if added == "" || !strings.Contains(string(content), "\r\nMessage-ID: "+added+"\r\n") {
		t.Errorf("accept line %v: message-id %q; want the one in the stored message:\n%s", e.Fields, added, content)
	}

	up := harness.NewFakeSMTP(t, harness.Script{})
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	if _, err := sendMail(proxy.addr(), "erin@example.com", []string{"frank@example.net"},
		"Subject: three\r\nMessage-ID: <proxied.1@client.example>\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if e := proxy.waitEvent("proxy", 5*time.Second, nil); e == nil || e.Get("message-id") != "<proxied.1@client.example>" {
		t.Errorf("proxy line %v; want message-id=<proxied.1@client.example>", e)
	}
}
