package sendmail

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRev22HandBackStdoutRedirected: a pipe: filter that re-injects with
// 'sendmail "$@" <in >/dev/null' (or >>log) threw the filtered message
// away, exited 0 with nothing on its standard output, and the original
// passed unfiltered (an attachment stripper bypassed). sendmail now
// refuses to hand back to anything but the filter's output pipe.
func TestRev22HandBackStdoutRedirected(t *testing.T) {
	const msg = "Subject: filtered\n\nbody\n"
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	for name, out := range map[string]*os.File{"/dev/null": devnull, "a log file": logf} {
		var errb bytes.Buffer
		if code := HandBackMessage(strings.NewReader(msg), out, &errb); code != 75 {
			t.Errorf("stdout to %s: exit %d; want 75 (EX_TEMPFAIL), the message kept", name, code)
		} else if !strings.Contains(errb.String(), "standard output") {
			t.Errorf("stdout to %s: stderr %q does not say why", name, errb.String())
		}
	}
	// The filter's own output pipe takes it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	var errb bytes.Buffer
	code := HandBackMessage(strings.NewReader(msg), w, &errb)
	w.Close()
	if got := <-done; code != 0 || got != msg {
		t.Errorf("to a pipe: exit %d, %q (%s); want 0 and the message", code, got, errb.String())
	}
}
