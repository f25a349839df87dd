package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/metrics"
)

var (
	_ BanStore   = (*enforce.Bans)(nil)
	_ BlockStore = enforce.BlockTable{}
	_ Live       = (*metrics.Metrics)(nil)
	_ Traffic    = (*metrics.Metrics)(nil)
	_ Pacer      = (*metrics.Metrics)(nil)
)

func TestDashboardPage(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.api(t)
	code, body := a.do("GET", "/", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, `<meta name="csrf-token" content="`+f.srv.csrfToken+`">`) {
		t.Fatalf("GET / = %d\n%s\nwant the page with its token", code, body)
	}
	for _, path := range []string{"/static/app.js", "/static/style.css"} {
		if code, _ := a.do("GET", path, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s = %d; want 200", path, code)
		}
	}
	// Nothing from another origin, no inline script.
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "<script>") {
		t.Errorf("the page refers to another origin or has inline script:\n%s", body)
	}
}

// TestDashboardScriptNeverUsesInnerHTML: every value reaches the page as
// text; the script has no way to parse HTML from data.
func TestDashboardScriptNeverUsesInnerHTML(t *testing.T) {
	b, err := webFiles.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func TestDashboardCSRF(t *testing.T) {
	bans, err := enforce.OpenBans(filepath.Join(t.TempDir(), "bans"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Bans: bans})
	a := f.api(t)
	body := `{"ip":"192.0.2.7","duration":"1h"}`
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"browser without token", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"browser with a wrong token", map[string]string{"Sec-Fetch-Site": "same-origin", csrfHeader: "x"}, http.StatusForbidden},
		{"cross-site with the token", map[string]string{"Sec-Fetch-Site": "cross-site", csrfHeader: f.srv.csrfToken}, http.StatusForbidden},
		{"browser with the token", map[string]string{"Sec-Fetch-Site": "same-origin", csrfHeader: f.srv.csrfToken}, http.StatusOK},
		{"a tool (no browser headers)", nil, http.StatusOK},
	}
	for _, tt := range tests {
		if code, got := a.post("/api/bans", body, tt.hdr); code != tt.want {
			t.Errorf("%s: POST /api/bans = %d %s; want %d", tt.name, code, got, tt.want)
		}
	}
	code, got := a.do("DELETE", "/api/bans/192.0.2.7", map[string]string{"Origin": a.url, csrfHeader: f.srv.csrfToken}, nil)
	if code != http.StatusOK {
		t.Errorf("DELETE /api/bans/192.0.2.7 = %d %s; want 200", code, got)
	}
	if n := len(bans.List()); n != 0 {
		t.Errorf("%d bans left after DELETE; want 0", n)
	}
}

func TestDashboardBasicPassword(t *testing.T) {
	f := newFixture(t, Options{Password: "s3cret"})
	a := f.api(t)
	req, _ := http.NewRequest("GET", a.url+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Values("WWW-Authenticate")[0], "Basic ") {
		t.Errorf("GET / without a password = %d %q; want 401 asking for Basic", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	req.SetBasicAuth("admin", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET / with the Basic password = %d, CSP %q; want 200 with a CSP", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}

// post sends a JSON body.
func (a *api) post(path, body string, hdr map[string]string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest("POST", a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// TestRemoteClientsRule: without RemoteClients a client outside local
// networks is refused, password or not, as E-MailRelay does.
func TestRemoteClientsRule(t *testing.T) {
	for _, tt := range []struct {
		remote bool
		addr   string
		want   int
	}{
		{false, "192.0.2.1:4000", http.StatusForbidden},
		{false, "10.0.0.5:4000", http.StatusOK},
		{false, "127.0.0.1:4000", http.StatusOK},
		{true, "192.0.2.1:4000", http.StatusOK},
	} {
		f := newFixture(t, Options{Password: "pw", RemoteClients: tt.remote})
		req := httptest.NewRequest("GET", "http://relay.example/api/status", nil)
		req.RemoteAddr = tt.addr
		req.Header.Set("Authorization", "Bearer pw")
		rec := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("RemoteClients=%v, client %s: %d; want %d", tt.remote, tt.addr, rec.Code, tt.want)
		}
	}
}
