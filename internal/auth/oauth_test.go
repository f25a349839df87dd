package auth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

var _ sasl.Client = (*refreshingXOAUTH2)(nil)

// tokenEndpoint is a fake OAuth 2 token endpoint on loopback: it checks the
// client and the refresh token and hands out token-1, token-2, ... valid
// for lifetime; fail makes it answer 400 invalid_grant as Google does for
// a revoked refresh token.
type tokenEndpoint struct {
	*httptest.Server
	lifetime time.Duration

	mu     sync.Mutex
	issued int
	fail   bool
}

func newTokenEndpoint(t *testing.T, lifetime time.Duration) *tokenEndpoint {
	e := &tokenEndpoint{lifetime: lifetime}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.fail || r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("refresh_token") != "1//refresh" ||
			id != "cid.apps.googleusercontent.com" || secret != "GOCSPX-secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
			return
		}
		e.issued++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","token_type":"Bearer","expires_in":%d}`, e.issued, int(e.lifetime/time.Second))
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued
}

func (e *tokenEndpoint) setFail(on bool) {
	e.mu.Lock()
	e.fail = on
	e.mu.Unlock()
}

func (e *tokenEndpoint) creds() OAuthCredentials {
	return OAuthCredentials{ClientID: "cid.apps.googleusercontent.com", ClientSecret: "GOCSPX-secret",
		RefreshToken: "1//refresh", TokenURL: e.URL + "/token"}
}

func TestTokenSourceRefreshesBeforeExpiry(t *testing.T) {
	e := newTokenEndpoint(t, time.Hour)
	var logs bytes.Buffer
	ts := NewTokenSource("me@gmail.com", e.creds(), slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Now()
	ts.now = func() time.Time { return now }

	tok, err := ts.Token()
	if tok != "token-1" || err != nil {
		t.Fatalf("Token() = %q, %v; want token-1", tok, err)
	}
	// Cached while fresh: no second request.
	now = now.Add(50 * time.Minute)
	if tok, _ := ts.Token(); tok != "token-1" || e.count() != 1 {
		t.Errorf("Token() 50 minutes on = %q after %d refreshes; want token-1 from the cache", tok, e.count())
	}
	// Five minutes before expiry (a quarter of an hour is more): refreshed.
	now = now.Add(5*time.Minute + time.Second)
	if tok, _ := ts.Token(); tok != "token-2" {
		t.Errorf("Token() 4m59s before expiry = %q; want token-2", tok)
	}

	// A refresh failure is an error and an alert; the next success
	// recovers.
	ts.Invalidate("token-2")
	e.setFail(true)
	if tok, err := ts.Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("Token() with the endpoint refusing = %q, %v; want an error naming invalid_grant", tok, err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "OAuth2 token refresh failed") {
		t.Errorf("a refresh failure was not logged as an error:\n%s", logs.String())
	}
	e.setFail(false)
	if tok, err := ts.Token(); tok != "token-3" || err != nil {
		t.Errorf("Token() after the endpoint recovered = %q, %v; want token-3", tok, err)
	}
	// Invalidate of another token leaves the cache alone.
	ts.Invalidate("token-1")
	if tok, _ := ts.Token(); tok != "token-3" {
		t.Errorf("Token() after invalidating an old token = %q; want token-3", tok)
	}
}

func TestOAuth2SecretsLine(t *testing.T) {
	e := newTokenEndpoint(t, time.Hour)
	dir := t.TempDir()
	c := e.creds()
	json := fmt.Sprintf(`{"type":"authorized_user","client_id":%q,"client_secret":%q,"refresh_token":%q,"token_uri":%q}`,
		c.ClientID, c.ClientSecret, c.RefreshToken, c.TokenURL)
	if err := os.WriteFile(filepath.Join(dir, "gmail.json"), []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "secrets")
	body := fmt.Sprintf("client oauth2 me@gmail.com %s,%s,%s,%s\nclient oauth2 other@gmail.com gmail.json other\n",
		c.ClientID, c.ClientSecret, c.RefreshToken, c.TokenURL)
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSecrets(file)
	if err != nil {
		t.Fatal(err)
	}
	for sel, user := range map[string]string{"": "me@gmail.com", "other": "other@gmail.com"} {
		f, ok := s.ClientAuth(sel)
		if !ok {
			t.Fatalf("ClientAuth(%q): no line", sel)
		}
		cl, err := f.Client([]string{"PLAIN", "XOAUTH2"})
		if err != nil {
			t.Fatal(err)
		}
		mech, ir, err := cl.Start()
		want := "user=" + user + "\x01auth=Bearer token-"
		if mech != "XOAUTH2" || !strings.HasPrefix(string(ir), want) || err != nil {
			t.Errorf("selector %q: Start() = %s, %q, %v; want XOAUTH2 starting %q", sel, mech, ir, err, want)
		}
		// The server refuses: the challenge invalidates the token.
		chal, _ := base64.StdEncoding.DecodeString("eyJzdGF0dXMiOiI0MDEifQ==")
		if resp, err := cl.Next(chal); len(resp) != 0 || err != nil {
			t.Errorf("Next(401 challenge) = %q, %v; want an empty answer", resp, err)
		}
	}
	if n := e.count(); n != 2 {
		t.Errorf("the endpoint issued %d tokens; want 2 (one per line)", n)
	}
}

func TestOAuth2SecretsLineErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"client oauth2 me a,b", "want CLIENT_ID,CLIENT_SECRET,REFRESH_TOKEN[,TOKEN_URL] or a file name"},
		{"client oauth2 me a,,c", "oauth2 credentials: no client secret"},
		{"client oauth2 me a,b,c,ftp://x", `oauth2 token URL "ftp://x": want an http or https URL`},
		{"client oauth2 me /nonexistent/creds.json", "no such file or directory"},
	}
	for _, tt := range tests {
		_, err := parseSecrets("secrets", strings.NewReader(tt.line))
		if err == nil || !strings.Contains(err.Error(), "secrets:1: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseSecrets(%q) = %v; want secrets:1: ...%s", tt.line, err, tt.want)
		}
	}
}
