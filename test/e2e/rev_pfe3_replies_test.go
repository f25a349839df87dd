package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// pfe3Reply is one line of internal/enforce/testdata/gmail-replies.txt:
// every reply of gmail-replies.md and its verdict.
type pfe3Reply struct {
	verdict, rule, code, enh, text string
	// at, when atSet, is where Gmail answers instead of stage's choice.
	at    harness.Stage
	atSet bool
	// shape, if set, rewrites the reply as Gmail folded it (odd
	// whitespace, other folds) before Gmail sends it.
	shape func(reply string) string
}

// pfe3Replies reads every reply of gmail-replies.md, 66 of them.
func pfe3Replies(t *testing.T) []pfe3Reply {
	t.Helper()
	out := readReplies(t, "gmail-replies.txt")
	if len(out) < 66 {
		t.Fatalf("%d replies; want the 66 of gmail-replies.md", len(out))
	}
	return out
}

// readReplies reads a file of internal/enforce/testdata in
// gmail-replies.txt's format.
func readReplies(t *testing.T, name string) []pfe3Reply {
	t.Helper()
	f, err := os.Open("../../internal/enforce/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pfe3Reply
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.SplitN(line, " ", 5)
		if len(fs) != 5 {
			t.Fatalf("bad line %q", line)
		}
		out = append(out, pfe3Reply{verdict: fs[0], rule: fs[1], code: fs[2], enh: fs[3], text: fs[4]})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no replies", name)
	}
	return out
}

// stage is where Gmail gives the reply: at MAIL for the sender it cannot
// parse (and for a relay that did not start TLS), at RCPT for the
// recipient's problems, else after the data.
func (c pfe3Reply) stage() harness.Stage {
	switch {
	case c.atSet:
		return c.at
	case c.enh == "5.1.7", c.code == "530":
		return stMail
	case c.enh == "5.1.1", c.enh == "5.2.1", c.enh == "5.1.2", c.enh == "4.2.2", c.enh == "4.5.3", c.enh == "4.2.1" && c.rule == "gmail-receiving-too-quickly":
		return stRcpt
	}
	return stData
}

// reply is Gmail's multi-line form, folded at one of three widths, for
// the sender from (Gmail's example.com becomes the sender's domain).
func (c pfe3Reply) reply(i int, from string) string {
	_, dom, _ := strings.Cut(from, "@")
	text := strings.ReplaceAll(c.text, "x@example.com", from)
	text = strings.ReplaceAll(text, "example.com", dom)
	r := foldReply(c.code, c.enh, text, []int{40, 62, 76}[i%3])
	if c.shape != nil {
		r = c.shape(r)
	}
	return r
}

var pfe3SessionID = regexp.MustCompile(`e2e\d+si\d+gsm\.\d+`)

// TestRevPFE3RelayEveryReply: every reply of gmail-replies.md, as Gmail
// sends it (multi-line, folded at three widths), by a fake Gmail to a
// relay that stores and forwards and to a proxy, each case from a client
// of its own, and again from welcomelisted clients. Each gets the
// document's action, by its rule: ban the client, block the sender's
// domain (the one Gmail names, else the sender's), encapsulate, alert the
// administrator, pace the destination, or nothing; a welcomelisted client
// is never banned or blocked, its mail encapsulated instead.
func TestRevPFE3RelayEveryReply(t *testing.T) {
	t.Parallel()
	relayEveryReply(t, pfe3Replies(t))
}

// relayEveryReply is TestRevPFE3RelayEveryReply for cases.
func relayEveryReply(t *testing.T, cases []pfe3Reply) { relayEveryReplyBy(t, cases, sendFrom) }

// relayEveryReplyBy is relayEveryReply with the clients sending each
// message by send (sendFrom's shape: DATA, or BDAT).
func relayEveryReplyBy(t *testing.T, cases []pfe3Reply, send func(addr, ip, from string, to []string, body string) (transaction, error)) {
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n" +
		"pace_suspend = \"1ms\"\npace_max_suspend = \"1ms\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\nquota_window = \"1ms\"\n"
	welcome := "127.0.5.0/24\n127.0.7.0/24\n"
	type who struct{ ip, from, to string }
	modes := []struct {
		name    string
		proxy   bool
		welcome bool
		who     func(i int) who
	}{
		{"store", false, false, func(i int) who {
			return who{fmt.Sprintf("127.0.4.%d", 10+i), fmt.Sprintf("s%d@pfe%d.example", i, i), fmt.Sprintf("r%d@gmail.test", i)}
		}},
		{"store-welcomelisted", false, true, func(i int) who {
			return who{fmt.Sprintf("127.0.5.%d", 10+i), fmt.Sprintf("w%d@wpfe%d.example", i, i), fmt.Sprintf("w%d@gmail.test", i)}
		}},
		{"proxy", true, false, func(i int) who {
			return who{fmt.Sprintf("127.0.6.%d", 10+i), fmt.Sprintf("p%d@ppfe%d.example", i, i), fmt.Sprintf("p%d@gmail.test", i)}
		}},
		{"proxy-welcomelisted", true, true, func(i int) who {
			return who{fmt.Sprintf("127.0.7.%d", 10+i), fmt.Sprintf("q%d@qpfe%d.example", i, i), fmt.Sprintf("q%d@gmail.test", i)}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			gmail := newFakeGmail(t)
			key := func(c pfe3Reply, w who) string {
				if c.stage() == stMail {
					return w.from
				}
				return w.to
			}
			for i, c := range cases {
				w := m.who(i)
				gmail.answer(key(c, w), c.stage(), c.reply(i, w.from))
			}
			pcfg := cfg
			if m.proxy {
				pcfg = strings.ReplaceAll(cfg, `"1ms"`, `"1ns"`) // a proxy's client within 1 ms of a pace is refused
			}
			r := startEnforcer(t, gmail.Addr(), enforceOpts{config: pcfg, proxy: m.proxy, welcome: welcome})
			ids := make([]string, len(cases))
			for i := range cases {
				w := m.who(i)
				tx, err := send(r.addr(), w.ip, w.from, []string{w.to}, gmailMessage(w.from, fmt.Sprintf("%s case %d", m.name, i)))
				if err != nil {
					t.Fatalf("case %d: send: %v", i, err)
				}
				if !m.proxy {
					if tx.Final.code() != 250 {
						t.Fatalf("case %d: store: %+v", i, tx)
					}
					ids[i] = queuedID(t, tx.Final)
					r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == ids[i] })
				}
			}
			time.Sleep(500 * time.Millisecond) // a late event would show now
			adminAlerts := map[string]bool{}
			for _, e := range r.events("admin-alert") {
				adminAlerts[e.Get("rule")] = true
			}
			for i, c := range cases {
				w := m.who(i)
				name := fmt.Sprintf("case %d (%s %s %s %.40s)", i, c.code, c.enh, c.rule, c.text)
				sent := gmail.lastSent(key(c, w))
				if sent == "" {
					t.Errorf("%s: Gmail never gave the reply", name)
					continue
				}
				es := enforceEvents(r, w.ip)
				var got []string
				for _, e := range es {
					got = append(got, e.Event)
					if e.Event != "spare" && e.Get("rule") != c.rule {
						t.Errorf("%s: %s line with rule=%q; want %q", name, e.Event, e.Get("rule"), c.rule)
					}
				}
				// A proxy refused before the data has no message yet to
				// encapsulate: it reports instead.
				noMessage := m.proxy && c.stage() != stData
				var want []string
				// A ban's words before the content (MAIL, RCPT) are about
				// the relay's address: nobody is banned or spared, and
				// the relay storing and forwarding paces and keeps the
				// mail (rep19).
				banUnread := c.verdict == "ban" && c.stage() != stData
				switch c.verdict {
				case "ban", "block-domain":
					switch {
					case banUnread:
					case m.welcome && noMessage:
						want = []string{"spare", "report"}
					case m.welcome:
						want = []string{"spare", "encapsulate"}
					case c.verdict == "ban":
						want = []string{"ban"}
					default:
						want = []string{"block"}
					}
				case "encapsulate":
					want = []string{"encapsulate"}
					if noMessage {
						want = []string{"report"}
					}
				case "alert":
					// Once per cause an hour: the first case of the rule.
					if !adminAlerts[c.rule] {
						t.Errorf("%s: no admin-alert line for rule %s", name, c.rule)
					}
					got = slices.DeleteFunc(got, func(s string) bool { return s == "admin-alert" })
				case "pace":
					if m.proxy {
						break // no queue: the client hears the deferral and paces itself
					}
					id := pfe3SessionID.FindString(sent)
					if len(eventsWithText(r, "pace", id)) == 0 {
						t.Errorf("%s: no pace line for Gmail's reply %s", name, id)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: enforcer's lines %v; want %v (%v)", name, got, want, fieldsOf(es))
				}
				if c.verdict == "block-domain" && !m.welcome && len(es) == 1 {
					if d := es[0].Get("domain"); d != strings.Split(w.from, "@")[1] {
						t.Errorf("%s: blocked %q; want the sender's %q", name, d, strings.Split(w.from, "@")[1])
					}
				}
				if !m.proxy && (c.verdict == "alert" || c.verdict == "pace" || banUnread) {
					if s := msgState(r.spool, ids[i]); s != "ready" {
						t.Errorf("%s: message %s is %s; want it kept queued", name, ids[i], s)
					}
				}
			}
			if data, err := os.ReadFile(enforceFile(r, "sender_access")); err == nil && m.welcome && strings.Contains(string(data), "REJECT") {
				t.Errorf("a welcomelisted client's domain was blocked:\n%s", data)
			}
		})
	}
}

// eventsWithText returns the lines of event that hold text in a value.
func eventsWithText(r *relay, event, text string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events(event) {
		if text != "" && strings.Contains(fmt.Sprint(e.Fields), text) {
			out = append(out, e)
		}
	}
	return out
}

// TestRevPFE3CompanionEveryReply: every reply of gmail-replies.md, given
// by a fake Gmail to a real Postfix (multi-line, folded at three widths:
// Postfix logs it joined, each line's "550-5.7.1" prefix kept), and
// "relaykeeper postfix-enforcer --once" over Postfix's log: each refusal
// gets the document's action, by its rule, for the client Postfix logged
// and the sender's domain; a welcomelisted client is never banned or
// blocked, its message encapsulated instead.
func TestRevPFE3CompanionEveryReply(t *testing.T) {
	t.Parallel()
	companionEveryReply(t, pfe3Replies(t))
}

// companionEveryReply is TestRevPFE3CompanionEveryReply for cases.
func companionEveryReply(t *testing.T, cases []pfe3Reply) {
	gmail := newFakeGmail(t)
	dir := t.TempDir()
	_, mbox, bcc := startCompanionBackup(t, dir)
	pf := companionPostfix(t, gmail.Addr(), bcc...)
	type who struct{ ip, from, to string }
	whoOf := func(welcomed bool, i int) who {
		if welcomed {
			return who{fmt.Sprintf("198.51.100.%d", 10+i), fmt.Sprintf("w%d@wpfe%d.example", i, i), fmt.Sprintf("w%d@gmail.test", i)}
		}
		return who{fmt.Sprintf("203.0.113.%d", 10+i), fmt.Sprintf("s%d@pfe%d.example", i, i), fmt.Sprintf("r%d@gmail.test", i)}
	}
	for _, welcomed := range []bool{false, true} {
		for i, c := range cases {
			w := whoOf(welcomed, i)
			k := w.to
			if c.stage() == stMail {
				k = w.from
			}
			gmail.answer(k, c.stage(), c.reply(i, w.from))
			hostileSend(t, pf.Addr(), w.ip, fmt.Sprintf("mx%d.client.test", i), []string{"MAIL FROM:<" + w.from + ">", "RCPT TO:<" + w.to + ">"},
				"From: <"+w.from+">\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n")
		}
	}
	for _, welcomed := range []bool{false, true} {
		for i := range cases {
			w := whoOf(welcomed, i)
			compWaitLog(t, pf, `to=<`+regexp.QuoteMeta(w.to)+`>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=(bounced|deferred|sent) `, 60*time.Second)
		}
	}
	compWait(t, 20*time.Second, "the backup mbox holds every message", func() bool {
		b, _ := os.ReadFile(mbox)
		return bytes.Count(b, []byte("@hostile.test>")) >= 2*len(cases)
	})

	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n198.51.100.0/24\n", "-f", mbox, "--trusted-upstream", "127.0.0.1")
	lines := strings.Split(out, "\n")
	alerts := map[string]int{}
	var wantBans []string
	for _, welcomed := range []bool{false, true} {
		for i, c := range cases {
			w := whoOf(welcomed, i)
			name := fmt.Sprintf("case %d welcomelisted=%v (%s %s %s %.40s)", i, welcomed, c.code, c.enh, c.rule, c.text)
			var got []string
			for _, l := range lines {
				if strings.Contains(l, " to=<"+w.to+"> ") {
					got = append(got, l)
				}
			}
			want := ""
			switch c.verdict {
			case "ban":
				want = `^\S+ ban client=` + regexp.QuoteMeta(w.ip) + ` `
				if !welcomed {
					wantBans = append(wantBans, w.ip)
				}
			case "block-domain":
				want = `^\S+ block-domain domain=` + regexp.QuoteMeta(strings.Split(w.from, "@")[1]) + ` .*client=` + regexp.QuoteMeta(w.ip) + ` `
			case "encapsulate":
				want = `^\S+ encapsulate .*client=` + regexp.QuoteMeta(w.ip) + ` `
			case "pace":
				want = `^\S+ pace `
			case "alert":
				// Told once per cause an hour: whichever case of the rule
				// Postfix logged first.
				for _, l := range got {
					if !regexp.MustCompile(`^\S+ alert .*rule=` + regexp.QuoteMeta(c.rule) + ` `).MatchString(l) {
						t.Errorf("%s: got %s; want an alert or nothing", name, l)
					}
				}
				alerts[c.rule] += len(got)
				continue
			}
			if welcomed && (c.verdict == "ban" || c.verdict == "block-domain") {
				want = `^\S+ encapsulate .*client=` + regexp.QuoteMeta(w.ip) + ` `
			}
			if want == "" {
				if len(got) != 0 {
					t.Errorf("%s: want no action; got\n%s", name, strings.Join(got, "\n"))
				}
				continue
			}
			want += `.*rule=` + regexp.QuoteMeta(c.rule) + ` `
			if welcomed && (c.verdict == "ban" || c.verdict == "block-domain") {
				want += `why="the client is on the welcomelist" `
			}
			if len(got) != 1 || !regexp.MustCompile(want).MatchString(got[0]) {
				t.Errorf("%s: got\n%s\nwant one line matching %s", name, strings.Join(got, "\n"), want)
			}
		}
	}
	for _, c := range cases {
		if c.verdict == "alert" && alerts[c.rule] != 1 {
			t.Errorf("rule %s: %d alert lines; want 1", c.rule, alerts[c.rule])
			alerts[c.rule] = 1
		}
	}
	banned, b := banLogIPs(filepath.Join(dir, "bans.log"))
	slices.Sort(banned)
	slices.Sort(wantBans)
	if !slices.Equal(banned, wantBans) {
		t.Errorf("ban log bans %q; want %q:\n%s", banned, wantBans, b)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "sender_access"))
	if strings.Contains(string(b), "wpfe") {
		t.Errorf("a welcomelisted client's domain was blocked:\n%s", b)
	}
}
