package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// api is an HTTP client for one test server.
type api struct {
	t     *testing.T
	url   string
	token string
}

func (f *fixture) api(t *testing.T) *api {
	ts := httptest.NewServer(f.srv.Handler())
	t.Cleanup(ts.Close)
	return &api{t: t, url: ts.URL}
}

// do sends a request and returns the status code and the body, decoded
// into out when it is not nil.
func (a *api) do(method, path string, hdr map[string]string, out any) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if out != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			a.t.Errorf("%s %s: Content-Type %q; want application/json", method, path, ct)
		}
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// errorOf returns the error text of a JSON error body.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("body %q is not a JSON error", body)
	}
	return e.Error
}

func TestHTTPStatus(t *testing.T) {
	f := newFixture(t, Options{})
	addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	a := f.api(t)
	var got statusReport
	if code, body := a.do("GET", "/api/status", nil, &got); code != http.StatusOK {
		t.Fatalf("GET /api/status = %d %s", code, body)
	}
	want := statusReport{
		PID: os.Getpid(), Started: t0.Add(-90 * time.Minute), UptimeSeconds: 5400,
		Listeners: []string{"127.0.0.1:25", "submission=127.0.0.1:587"}, SMTPEnabled: true, DNSBLEnabled: true,
		Sessions: 2, Connections: 154, Accepted: 120, Forwarded: 117, Failed: 3,
		Queue: map[string]int{"new": 0, "ready": 1, "claimed": 0, "failed": 1, "held": 0},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /api/status (-want +got):\n%s", d)
	}
}

func TestHTTPQueue(t *testing.T) {
	f := newFixture(t, Options{})
	ready := addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	held := addMessage(t, f.spool, "dave@example.com", "erin@example.org", spool.Held)
	a := f.api(t)

	tests := []struct {
		query string
		want  []string
	}{
		{"", sorted(ready, failed, held)},
		{"?state=failed,held", sorted(failed, held)},
		{"?state=ready&state=held", sorted(ready, held)},
		{"?sender=ALICE", []string{ready}},
		{"?recipient=example.org", []string{held}},
		{"?reply=5.1.1", []string{failed}},
		{"?sender=nobody-at-all", []string{}},
	}
	for _, tt := range tests {
		var got queueListing
		if code, body := a.do("GET", "/api/queue"+tt.query, nil, &got); code != http.StatusOK {
			t.Errorf("GET /api/queue%s = %d %s", tt.query, code, body)
			continue
		}
		ids := []string{}
		for _, m := range got.Messages {
			ids = append(ids, m.ID)
		}
		if !cmp.Equal(ids, tt.want) || got.Requests != len(tt.want) || got.Spool != f.spool.Dir() {
			t.Errorf("GET /api/queue%s = %q (%d requests, spool %q); want %q", tt.query, ids, got.Requests, got.Spool, tt.want)
		}
		if len(tt.want) > 0 && got.Bytes != int64(len(content)*len(tt.want)) {
			t.Errorf("GET /api/queue%s: bytes %d; want %d", tt.query, got.Bytes, len(content)*len(tt.want))
		}
	}
	for _, q := range []string{"?state=bogus", "?colour=red"} {
		if code, body := a.do("GET", "/api/queue"+q, nil, nil); code != http.StatusBadRequest {
			t.Errorf("GET /api/queue%s = %d %s; want 400", q, code, body)
		} else {
			errorOf(t, body)
		}
	}
}

func TestHTTPMessage(t *testing.T) {
	f := newFixture(t, Options{})
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	a := f.api(t)

	var got messageShown
	if code, body := a.do("GET", "/api/queue/"+failed, nil, &got); code != http.StatusOK {
		t.Fatalf("GET /api/queue/ID = %d %s", code, body)
	}
	want := messageShown{
		Message: queue.Message{ID: failed, State: "failed", Size: int64(len(content)), Arrival: t0,
			Sender: "carol@example.com", Attempts: 1, NextAttempt: t0.Add(time.Hour),
			LastReply: "550 5.1.1 No such user", Client: "127.0.0.1:40000", Helo: "client.example",
			Recipients: []queue.Recipient{{Addr: "nobody@example.net", Status: "failed", Reply: "550 5.1.1 No such user"}}},
		EnvelopeFile: f.spool.EnvelopePath(failed, spool.Failed),
		ContentFile:  f.spool.ContentPath(failed),
		Header:       "Received: from client.example\r\nSubject: test\r\nFrom: a@example.com\r\n",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GET /api/queue/ID (-want +got):\n%s", d)
	}

	code, body := a.do("GET", "/api/queue/"+failed+"/content", nil, nil)
	if code != http.StatusOK || body != content {
		t.Errorf("GET /api/queue/ID/content = %d %q; want 200 %q", code, body, content)
	}

	for _, path := range []string{"/api/queue/0000000000000000", "/api/queue/0000000000000000/content", "/api/queue/.hidden"} {
		if code, body := a.do("GET", path, nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s = %d %s; want 404", path, code, body)
		} else {
			errorOf(t, body)
		}
	}
}

func TestHTTPChange(t *testing.T) {
	f := newFixture(t, Options{})
	ready := addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	a := f.api(t)

	tests := []struct {
		method, path string
		code         int
		want         queue.Result
	}{
		{"POST", "/api/queue/" + ready + "/hold", 200, queue.Result{ID: ready, Outcome: queue.Done, From: "ready", To: "held", Detail: "held"}},
		{"POST", "/api/queue/" + ready + "/hold", 200, queue.Result{ID: ready, Outcome: queue.Unchanged, From: "held", Detail: "already held"}},
		{"POST", "/api/queue/" + ready + "/retry", 409, queue.Result{ID: ready, Outcome: queue.Refused, From: "held", Detail: "held; release it first"}},
		{"POST", "/api/queue/" + ready + "/release", 200, queue.Result{ID: ready, Outcome: queue.Done, From: "held", To: "ready", Detail: "released, due now"}},
		{"POST", "/api/queue/" + failed + "/retry", 200, queue.Result{ID: failed, Outcome: queue.Done, From: "failed", To: "ready", Detail: "due now"}},
		{"DELETE", "/api/queue/" + ready, 200, queue.Result{ID: ready, Outcome: queue.Done, From: "ready", Detail: "deleted"}},
		{"DELETE", "/api/queue/" + ready, 404, queue.Result{ID: ready, Outcome: queue.NotFound, Detail: "no such message"}},
	}
	for _, tt := range tests {
		var got queue.Result
		code, body := a.do(tt.method, tt.path, nil, &got)
		if code != tt.code || !cmp.Equal(got, tt.want) {
			t.Errorf("%s %s = %d %s; want %d %+v", tt.method, tt.path, code, body, tt.code, tt.want)
		}
	}
	// Each change that was done told the relay: hold, release, retry, delete.
	if got := f.relay.get().forwards; got != 4 {
		t.Errorf("relay told %d times; want 4", got)
	}
	if code, body := a.do("POST", "/api/queue/"+failed+"/explode", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown action = %d %s; want 404", code, body)
	}
	// A message another process holds is busy.
	cl, err := f.spool.Lock(failed)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Unlock()
	if code, body := a.do("POST", "/api/queue/"+failed+"/hold", nil, nil); code != http.StatusConflict {
		t.Errorf("hold of a locked message = %d %s; want 409", code, body)
	}
}

func TestHTTPUnfailAll(t *testing.T) {
	f := newFixture(t, Options{})
	failed := addMessage(t, f.spool, "carol@example.com", "nobody@example.net", spool.Failed)
	a := f.api(t)
	var got queueChanged
	if code, body := a.do("POST", "/api/unfail-all", nil, &got); code != http.StatusOK {
		t.Fatalf("POST /api/unfail-all = %d %s", code, body)
	}
	want := queueChanged{Action: "retry", Spool: f.spool.Dir(),
		Results: []queue.Result{{ID: failed, Outcome: queue.Done, From: "failed", To: "ready", Detail: "due now"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("POST /api/unfail-all (-want +got):\n%s", d)
	}
}

func TestHTTPFlush(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.api(t)
	var d done
	if code, body := a.do("POST", "/api/flush", nil, &d); code != http.StatusOK || d.Detail != "no messages to send" {
		t.Errorf("POST /api/flush on an empty spool = %d %s; want 200, no messages to send", code, body)
	}

	addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	f.relay.flushResult = make(chan error)
	f.relay.flushStarted = make(chan struct{}, 1)
	type answer struct {
		code int
		body string
	}
	for _, tt := range []struct {
		result error
		code   int
	}{
		{nil, http.StatusOK},
		{errors.New("upstream: connection refused"), http.StatusBadGateway},
	} {
		ch := make(chan answer, 1)
		go func() {
			code, body := a.do("POST", "/api/flush", nil, nil)
			ch <- answer{code, body}
		}()
		<-f.relay.flushStarted
		select {
		case got := <-ch:
			t.Fatalf("POST /api/flush answered %d %s before the flush was over", got.code, got.body)
		case <-time.After(50 * time.Millisecond):
		}
		if code, body := a.do("POST", "/api/flush", nil, nil); code != http.StatusConflict {
			t.Errorf("second POST /api/flush = %d %s; want 409", code, body)
		}
		f.relay.flushResult <- tt.result
		got := <-ch
		if got.code != tt.code {
			t.Errorf("POST /api/flush with result %v = %d %s; want %d", tt.result, got.code, got.body, tt.code)
		}
		if tt.result != nil && !strings.Contains(errorOf(t, got.body), tt.result.Error()) {
			t.Errorf("POST /api/flush error %s; want it to say %q", got.body, tt.result)
		}
	}
}

func TestHTTPForward(t *testing.T) {
	f := newFixture(t, Options{})
	a := f.api(t)
	if code, body := a.do("POST", "/api/forward", nil, &done{}); code != http.StatusAccepted {
		t.Errorf("POST /api/forward = %d %s; want 202", code, body)
	}
	if got := f.relay.get().forwards; got != 1 {
		t.Errorf("relay saw %d forwards; want 1", got)
	}
	f.relay.forwardErr = errors.New("no remote server configured")
	if code, body := a.do("POST", "/api/forward", nil, nil); code != http.StatusConflict {
		t.Errorf("POST /api/forward without upstream = %d %s; want 409", code, body)
	}
}

func TestHTTPSwitches(t *testing.T) {
	f := newFixture(t, Options{})
	var stopFor time.Duration
	f.srv.afterFunc = func(d time.Duration, fn func()) func() bool {
		stopFor = d
		return func() bool { return true }
	}
	a := f.api(t)
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/api/smtp?enabled=false", 200, `{"smtp_enabled":false}`},
		{"/api/smtp?enabled=true", 200, `{"smtp_enabled":true}`},
		{"/api/smtp", 400, ""},
		{"/api/smtp?enabled=maybe", 400, ""},
		{"/api/dnsbl?enabled=false&timeout=300", 200, `{"dnsbl_enabled":false,"timeout_seconds":300}`},
		{"/api/dnsbl?enabled=true", 200, `{"dnsbl_enabled":true}`},
		{"/api/dnsbl?enabled=true&timeout=5", 400, ""},
	}
	for _, tt := range tests {
		code, body := a.do("POST", tt.path, nil, nil)
		if code != tt.code {
			t.Errorf("POST %s = %d %s; want %d", tt.path, code, body, tt.code)
			continue
		}
		if tt.body == "" {
			errorOf(t, body)
		} else if compact(t, body) != tt.body {
			t.Errorf("POST %s = %s; want %s", tt.path, body, tt.body)
		}
	}
	got := f.relay.get()
	if want := []bool{false, true}; !slices.Equal(got.smtp, want) {
		t.Errorf("SetSMTP calls = %v; want %v", got.smtp, want)
	}
	if want := []bool{false, true}; !slices.Equal(got.dnsbl, want) {
		t.Errorf("SetDNSBL calls = %v; want %v", got.dnsbl, want)
	}
	if stopFor != 300*time.Second {
		t.Errorf("dnsbl re-enable scheduled after %v; want 5m0s", stopFor)
	}

	plain := newFixture(t, Options{Relay: plainRelay{&fakeRelay{}}}).api(t)
	for _, path := range []string{"/api/smtp?enabled=false", "/api/dnsbl?enabled=false"} {
		if code, body := plain.do("POST", path, nil, nil); code != http.StatusNotImplemented {
			t.Errorf("POST %s without support = %d %s; want 501", path, code, body)
		}
	}
}

func compact(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v in %s", err, s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestHTTPMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "relaykeeper_up 1\n")
	})
	a := newFixture(t, Options{Metrics: metrics, Password: "pw"}).api(t)
	if code, _ := a.do("GET", "/metrics", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the password = %d; want 401", code)
	}
	a.token = "pw"
	if code, body := a.do("GET", "/metrics", nil, nil); code != http.StatusOK || body != "relaykeeper_up 1\n" {
		t.Errorf("GET /metrics = %d %q", code, body)
	}
	none := newFixture(t, Options{}).api(t)
	if code, _ := none.do("GET", "/metrics", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET /metrics without a handler = %d; want 404", code)
	}
}

func TestHTTPRouting(t *testing.T) {
	a := newFixture(t, Options{}).api(t)
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/api/nothing", 404, ""},
		{"GET", "/api/queue/", 404, ""},
		{"GET", "/api/flush", 405, "POST"},
		{"PUT", "/api/queue/0000000000000000", 405, "DELETE, GET"},
		{"POST", "/api/status", 405, "GET"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, a.url+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d (Allow %q); want %d (Allow %q)", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.code, tt.allow)
		}
		errorOf(t, string(b))
	}
}

func TestHTTPSecurity(t *testing.T) {
	t.Run("password", func(t *testing.T) {
		a := newFixture(t, Options{Password: "s3cret"}).api(t)
		for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0", "Bearer s3cretX"} {
			code, body := a.do("GET", "/api/status", map[string]string{"Authorization": auth}, nil)
			if code != http.StatusUnauthorized {
				t.Errorf("Authorization %q = %d; want 401", auth, code)
			} else {
				errorOf(t, body)
			}
		}
		// Any Host is fine with the password.
		if code, body := a.do("GET", "/api/status", map[string]string{"Authorization": "bearer s3cret", "Host": "relay.example"}, nil); code != http.StatusOK {
			t.Errorf("right password = %d %s; want 200", code, body)
		}
	})
	t.Run("loopback", func(t *testing.T) {
		a := newFixture(t, Options{}).api(t)
		for host, want := range map[string]int{
			"localhost:8080": 200, "127.0.0.1": 200, "[::1]:1": 200, "admin.localhost": 200,
			"evil.example": 403, "evil.example:8080": 403, "10.0.0.1": 403,
		} {
			if code, _ := a.do("GET", "/api/status", map[string]string{"Host": host}, nil); code != want {
				t.Errorf("Host %q = %d; want %d", host, code, want)
			}
		}
		// A cross-site form post from a browser is refused.
		code, body := a.do("POST", "/api/forward", map[string]string{"Sec-Fetch-Site": "cross-site"}, nil)
		if code != http.StatusForbidden {
			t.Errorf("cross-site POST = %d %s; want 403", code, body)
		}
	})
}

func TestServeAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Password: "pw"})
	served := make(chan error, 1)
	go func() { served <- f.srv.ServeAPI(nonLoopback{l}) }()
	a := &api{t: t, url: "http://" + l.Addr().String(), token: "pw"}
	if code, body := a.do("GET", "/api/status", nil, &statusReport{}); code != http.StatusOK {
		t.Errorf("GET /api/status over ServeAPI = %d %s", code, body)
	}
	if err := f.srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeAPI after Close = %v; want ErrServerClosed", err)
	}
}
