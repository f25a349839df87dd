package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps22DashboardCrossOriginInBrowser: a page on another origin of the
// same machine (another port of 127.0.0.1, the kind of page any local web
// application serves) tries every way a browser offers to change the
// relay's queue: a form posted into a hidden frame, fetch with and without
// CORS, and a frame of the dashboard whose token it would read. The
// message stays queued and ready.
func TestOps22DashboardCrossOriginInBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr(), "--log")
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.com"}, message("keep me")).Final)

	attack := `<!DOCTYPE html><html><body>
<iframe name="sink" id="sink"></iframe>
<iframe id="dash" src="BASE/"></iframe>
<form id="f1" method="POST" action="BASE/api/queue/ID/hold" target="sink" enctype="text/plain"><input name="x" value="y"></form>
<form id="f2" method="POST" action="BASE/api/forward" target="sink"></form>
<script>
const results = [];
async function run() {
  document.getElementById('f1').submit();
  document.getElementById('f2').submit();
  for (const [method, path] of [['DELETE', '/api/queue/ID'], ['POST', '/api/queue/ID/hold'], ['POST', '/api/unfail-all']]) {
    for (const mode of ['no-cors', 'cors']) {
      try {
        const r = await fetch('BASE' + path, {method, mode, credentials: 'include', headers: mode === 'cors' ? {'X-Relaykeeper-Csrf': 'guess'} : {}});
        results.push(method + ' ' + path + ' ' + mode + ': ' + r.type + ' ' + r.status);
      } catch (e) { results.push(method + ' ' + path + ' ' + mode + ': ' + e); }
    }
  }
  try { results.push('frame token: ' + document.getElementById('dash').contentDocument.querySelector('meta[name="csrf-token"]').content); }
  catch (e) { results.push('frame: ' + e.name); }
  document.title = 'done';
  document.body.dataset.results = results.join('\n');
}
window.onload = () => setTimeout(run, 200);
</script></body></html>`
	attack = strings.NewReplacer("BASE", base, "ID", id).Replace(attack)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, attack)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+l.Addr().String()+"/"),
		chromedp.WaitVisible(css(`body[data-results]`)),
	); err != nil {
		t.Fatalf("the other origin's page: %v", err)
	}
	results, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.results`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the forms' posts
	t.Logf("the other origin's attempts:\n%s", results)
	if strings.Contains(results, "frame token: ") && !strings.Contains(results, "frame token: \n") {
		t.Errorf("the other origin read the dashboard's token: %s", results)
	}
	if st := messageState(t, base, id); st != "ready" {
		t.Errorf("message %s is %q after the other origin's page; want ready", id, st)
	}
	for line := range strings.SplitSeq(r.stderr(), "\n") {
		if strings.Contains(line, `msg="admin: `) {
			t.Errorf("the relay carried out a request of the other origin's page: %s", line)
		}
	}
}
