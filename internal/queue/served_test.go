package queue

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

type nopWatcher struct{}

func (nopWatcher) Committed(string, []byte) {}

// TestShowServed: a message the relay in this process serves from its
// journal has no files yet; show says so rather than name files that are
// not there, and names them once they are written.
func TestShowServed(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Watch(nopWatcher{}) // a scheduler in this process: messages are served
	j, err := s.OpenJournal()
	if err != nil {
		t.Fatal(err)
	}
	id := addMessage(t, s, "alice@example.com", []string{"bob@example.net"}, false, nil, spool.Ready)
	sh, err := Show(s, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if !sh.Served || sh.ContentFile != "" || sh.EnvelopeFile != "" {
		t.Errorf("Show of a served message: served %v, files %q %q; want served and none", sh.Served, sh.EnvelopeFile, sh.ContentFile)
	}
	var out bytes.Buffer
	sh.WriteText(&out)
	if !strings.Contains(out.String(), "none yet: served from the relay's journal") || strings.Contains(out.String(), ".content") {
		t.Errorf("queue show of a served message:\n%s", out.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.Run(ctx); err != nil { // ends the journal: the files are written
		t.Fatal(err)
	}
	if sh, _ := Show(s, id, false); sh.Served || !strings.HasSuffix(sh.ContentFile, id+".content") {
		t.Errorf("Show after write-out: served %v, content %q; want the file", sh.Served, sh.ContentFile)
	}
}
