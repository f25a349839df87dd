package admin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// FuzzHTTP sends any method, path, query and body to the HTTP API from a
// loopback client: no request makes the handler panic or fail with a 5xx
// other than 503 or 501 (not configured), every answer is JSON (or the message content, or the
// dashboard), and no request creates or removes a file outside the spool.
func FuzzHTTP(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/api/status", ""}, {"GET", "/api/queue?state=failed&limit=5", ""}, {"GET", "/api/queue/ID", ""},
		{"GET", "/api/queue/ID/content", ""}, {"POST", "/api/queue/ID/hold", ""}, {"POST", "/api/queue/ID/release", ""},
		{"POST", "/api/queue/ID/unfail", ""}, {"DELETE", "/api/queue/ID", ""}, {"POST", "/api/unfail-all", ""},
		{"POST", "/api/flush", ""}, {"POST", "/api/forward", ""}, {"POST", "/api/smtp", `{"enabled": false}`},
		{"POST", "/api/dnsbl", `{"running": false, "seconds": 60}`}, {"GET", "/api/queue/..%2f..%2fetc/content", ""},
		{"DELETE", "/api/queue/%2e%2e", ""}, {"POST", "/api/bans", `{"ip": "192.0.2.1", "reason": "x\r\ny"}`},
		{"DELETE", "/api/bans/192.0.2.1", ""}, {"GET", "/api/activity?hours=-1&limit=99999999999999999999", ""},
		{"GET", "/api/rates?minutes=0", ""}, {"GET", "/", ""}, {"GET", "/static/../admin.go", ""}, {"POST", "/api/blocks", `{"domain": "."}`},
	} {
		f.Add(s.method, s.path, s.body)
	}
	bans, err := enforce.OpenBans(filepath.Join(f.TempDir(), "bans"), nil)
	if err != nil {
		f.Fatal(err)
	}
	fx := newFixture(f, Options{Bans: bans})
	id := addMessage(f, fx.spool, "alice@example.org", "bob@example.net", spool.Ready)
	dir := fx.spool.Dir()
	parent := filepath.Dir(dir)
	before := listDir(f, parent)
	h := fx.srv.Handler()
	f.Fuzz(func(t *testing.T, method, path, body string) {
		path = strings.ReplaceAll(path, "ID", id)
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(path, "/") {
			return
		}
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %q %q: status %d: %s", method, path, body, rec.Code, rec.Body)
		}
		if got := listDir(t, parent); got != before {
			t.Fatalf("%s %q %q: files beside the spool changed: %s", method, path, body, got)
		}
	})
}

func listDir(t testing.TB, dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}
