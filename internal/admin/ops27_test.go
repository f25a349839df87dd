package admin

import (
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestOps27StaticIsNoSecondDashboard: /static/ served the page's
// template as a file, a second dashboard whose token was the literal
// "{{.CSRF}}", so that every button there answered 403 "reload the
// dashboard", and reloading it never helped.
func TestOps27StaticIsNoSecondDashboard(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.api(t)
	for _, path := range []string{"/static/", "/static/index.html", "/static/?x=1"} {
		code, body := a.do("GET", path, nil, nil)
		if code != http.StatusNotFound || strings.Contains(body, "{{") {
			t.Errorf("GET %s = %d\n%.300s\nwant 404, never the page's template", path, code, body)
		}
	}
	for _, path := range []string{"/static/app.js", "/static/style.css", "/static/favicon.svg", "/static/noscript.css"} {
		if code, _ := a.do("GET", path, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s = %d; want 200", path, code)
		}
	}
}

// TestOps27DashboardWithoutJavaScript: with JavaScript off (a text
// browser over ssh, a locked-down browser) the page showed its title and
// six tabs that did nothing, and no data. Its read-only parts are now in
// the page itself, inside <noscript>: the queue, the bans, the blocked
// domains and the alerts, every value escaped.
func TestOps27DashboardWithoutJavaScript(t *testing.T) {
	bans, err := enforce.OpenBans(filepath.Join(t.TempDir(), "bans"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bans.AddNet(netip.MustParsePrefix("192.0.2.7/32"), time.Hour, "spam <b>bold</b>"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Bans: bans})
	hostile := `"<img src=x onerror=alert(1)>"@example.org`
	ready := addMessage(t, f.spool, hostile, "bob@example.net", spool.Ready)
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	a := f.api(t)
	code, body := a.do("GET", "/", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	start, end := strings.Index(body, "<noscript>\n<section"), strings.LastIndex(body, "</noscript>")
	if start < 0 || end < start {
		t.Fatalf("GET /: no read-only view for a browser without JavaScript:\n%s", body)
	}
	view := body[start:end]
	for _, want := range []string{
		ready, failed, "ready", "failed", "bob@example.net", "550 5.1.1 No such user",
		"&lt;img src=x onerror=alert(1)&gt;", // the sender, as text
		"192.0.2.7", "spam &lt;b&gt;bold&lt;/b&gt;",
		"2 messages",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("the read-only view lacks %q:\n%s", want, view)
		}
	}
	if strings.Contains(view, "<img") || strings.Contains(view, "<b>") {
		t.Errorf("the read-only view has a value as HTML:\n%s", view)
	}
	if !strings.Contains(body, `<noscript><link rel="stylesheet" href="/static/noscript.css"></noscript>`) {
		t.Errorf("GET /: the tabs, useless without JavaScript, are not hidden then")
	}
}
