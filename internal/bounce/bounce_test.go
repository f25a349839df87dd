package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	now     = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	arrival = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
)

const original = "Return-Path: <alice@example.org>\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net, carol@example.net\r\n" +
	"Subject: lunch\r\n" +
	"Message-Id: <20261120093000.1@example.org>\r\n" +
	"\r\n" +
	"See you at noon.\r\n"

// testEnv is a message with two failed recipients (one with ORCPT), one
// delivered and one still deferred.
func testEnv() *spool.Envelope {
	return &spool.Envelope{
		ID:       "6A1E3F00C0FFEE11",
		From:     "alice@example.org",
		Client:   "192.0.2.10:50123",
		Arrival:  arrival,
		Attempts: 3,
		EnvID:    "QQ314159",
		Ret:      "FULL",
		Recipients: []spool.Recipient{
			{Addr: "bob@example.net", Status: spool.Bounced, ORCPT: "rfc822;Bob@Example.NET",
				Reply: "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table", InReplyTo: "RCPT TO"},
			{Addr: "carol@example.net", Status: spool.Bounced, Reply: "554 transaction failed", InReplyTo: "end of DATA"},
			{Addr: "dave@example.net", Status: spool.Sent, Reply: "250 2.0.0 Ok: queued as 4XyZ", InReplyTo: "end of DATA"},
			{Addr: "erin@example.net", Status: spool.Deferred, Reply: "451 4.3.0 try again later", InReplyTo: "RCPT TO"},
		},
	}
}

func testOpts() Options {
	return Options{
		ReportingMTA: "mail.example.org",
		RemoteMTA:    "smtp.example.net[192.0.2.25]",
		Now:          now,
		RetryUntil:   arrival.Add(5 * 24 * time.Hour),
		MessageID:    func() string { return "<20261122100000.TESTMID@mail.example.org>" },
	}
}

func build(t *testing.T, env *spool.Envelope, content string, k Kind, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, env, strings.NewReader(content), k, Recipients(env, k), opts); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b.Bytes()
}

// notice is a built notice as go-message reads it.
type notice struct {
	header message.Header
	parts  []noticePart
}

type noticePart struct {
	header message.Header
	ctype  string
	body   []byte
}

func parse(t *testing.T, raw []byte) notice {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v", err)
	}
	n := notice{header: e.Header}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("notice is not multipart: %q", e.Header.Get("Content-Type"))
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("reading part: %v", err)
		}
		ct, _, _ := p.Header.ContentType()
		n.parts = append(n.parts, noticePart{header: p.Header, ctype: ct, body: body})
	}
	return n
}

// dsnGroups reads a message/delivery-status body into its field groups,
// per-message first, keys in lower case.
func dsnGroups(t *testing.T, body []byte) []map[string]string {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(body))
	var groups []map[string]string
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return groups
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("ReadHeader: %v", err)
		}
		g := map[string]string{}
		for f := h.Fields(); f.Next(); {
			g[strings.ToLower(f.Key())] = f.Value()
		}
		groups = append(groups, g)
	}
}

func TestStructure(t *testing.T) {
	n := parse(t, build(t, testEnv(), original, Failure, testOpts()))
	ct, params, err := n.header.ContentType()
	if err != nil || ct != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("Content-Type = %q %v (%v); want multipart/report with report-type=delivery-status", ct, params, err)
	}
	for k, want := range map[string]string{
		"From":           "MAILER-DAEMON@mail.example.org (Mail Delivery System)",
		"To":             "alice@example.org",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Date":           "Sun, 22 Nov 2026 10:00:00 +0000",
		"Message-Id":     "<20261122100000.TESTMID@mail.example.org>",
		"Auto-Submitted": "auto-replied",
		"Mime-Version":   "1.0",
	} {
		if got := n.header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	var types []string
	for _, p := range n.parts {
		types = append(types, p.ctype)
	}
	if diff := cmp.Diff([]string{"text/plain", "message/delivery-status", "message/rfc822"}, types); diff != "" {
		t.Errorf("part types (-want +got):\n%s", diff)
	}
}

func TestDeliveryStatusFailure(t *testing.T) {
	n := parse(t, build(t, testEnv(), original, Failure, testOpts()))
	got := dsnGroups(t, n.parts[1].body)
	const date = "Sun, 22 Nov 2026 10:00:00 +0000"
	want := []map[string]string{{
		"original-envelope-id":   "QQ314159",
		"reporting-mta":          "dns; mail.example.org",
		"arrival-date":           "Fri, 20 Nov 2026 09:30:00 +0000",
		"x-relaykeeper-queue-id": "6A1E3F00C0FFEE11",
	}, {
		"original-recipient": "rfc822;Bob@Example.NET",
		"final-recipient":    "rfc822; bob@example.net",
		"action":             "failed",
		"status":             "5.1.1",
		"remote-mta":         "dns; smtp.example.net",
		"diagnostic-code":    "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
		"last-attempt-date":  date,
	}, {
		"final-recipient":   "rfc822; carol@example.net",
		"action":            "failed",
		"status":            "5.0.0",
		"remote-mta":        "dns; smtp.example.net",
		"diagnostic-code":   "smtp; 554 transaction failed",
		"last-attempt-date": date,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivery-status fields (-want +got):\n%s", diff)
	}
	text := string(n.parts[0].body)
	for _, s := range []string{
		"This is the mail system at host mail.example.org.",
		"<carol@example.net>: host smtp.example.net[192.0.2.25] said: 554 transaction\r\n    failed",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("text part lacks %q:\n%s", s, text)
		}
	}
}

func TestDelayAndSuccess(t *testing.T) {
	tests := []struct {
		kind               Kind
		subject, ctype     string
		action, status     string
		retryUntil, inText string
	}{
		{Delay, "Delayed Mail (still being retried)", "text/rfc822-headers", "delayed", "4.3.0",
			"Wed, 25 Nov 2026 09:30:00 +0000", "It will be retried until it is 5 day(s) old."},
		{Success, "Successful Mail Delivery Report", "text/rfc822-headers", "relayed", "2.0.0",
			"", "<dave@example.net>: delivery via smtp.example.net[192.0.2.25]: 250 2.0.0"},
	}
	for _, tt := range tests {
		env := testEnv()
		env.Ret = "" // without RET, delay and success notices return headers
		for i := range env.Recipients {
			env.Recipients[i].Notify = "SUCCESS,DELAY"
		}
		n := parse(t, build(t, env, original, tt.kind, testOpts()))
		if got := n.header.Get("Subject"); got != tt.subject {
			t.Errorf("%v: Subject = %q; want %q", tt.kind, got, tt.subject)
		}
		if got := n.parts[2].ctype; got != tt.ctype {
			t.Errorf("%v: returned part %q; want %q", tt.kind, got, tt.ctype)
		}
		g := dsnGroups(t, n.parts[1].body)
		if len(g) != 2 {
			t.Fatalf("%v: %d field groups; want 2", tt.kind, len(g))
		}
		if g[1]["action"] != tt.action || g[1]["status"] != tt.status || g[1]["will-retry-until"] != tt.retryUntil {
			t.Errorf("%v: Action %q Status %q Will-Retry-Until %q; want %q %q %q", tt.kind,
				g[1]["action"], g[1]["status"], g[1]["will-retry-until"], tt.action, tt.status, tt.retryUntil)
		}
		if text := strings.Join(strings.Fields(string(n.parts[0].body)), " "); !strings.Contains(text, tt.inText) {
			t.Errorf("%v: text part lacks %q:\n%s", tt.kind, tt.inText, text)
		}
	}
}

func TestRecipients(t *testing.T) {
	rcpt := func(st spool.RcptStatus, notify string) *spool.Envelope {
		return &spool.Envelope{From: "alice@example.org", Recipients: []spool.Recipient{
			{Addr: "bob@example.net", Status: st, Notify: notify}}}
	}
	tests := []struct {
		name string
		env  *spool.Envelope
		kind Kind
		want bool
	}{
		{"failed, no NOTIFY", rcpt(spool.Bounced, ""), Failure, true},
		{"deferred, no NOTIFY", rcpt(spool.Deferred, ""), Delay, true},
		{"pending, no NOTIFY", rcpt(spool.Pending, ""), Delay, true},
		{"sent, no NOTIFY", rcpt(spool.Sent, ""), Success, false},
		{"failed, NEVER", rcpt(spool.Bounced, "NEVER"), Failure, false},
		{"deferred, NEVER", rcpt(spool.Deferred, "NEVER"), Delay, false},
		{"sent, NEVER", rcpt(spool.Sent, "NEVER"), Success, false},
		{"failed, SUCCESS only", rcpt(spool.Bounced, "SUCCESS"), Failure, false},
		{"deferred, SUCCESS only", rcpt(spool.Deferred, "SUCCESS"), Delay, false},
		{"sent, SUCCESS only", rcpt(spool.Sent, "SUCCESS"), Success, true},
		{"failed, lower case", rcpt(spool.Bounced, "success,failure"), Failure, true},
		{"deferred, FAILURE only", rcpt(spool.Deferred, "FAILURE"), Delay, false},
		{"sent, not a failure", rcpt(spool.Sent, "FAILURE,DELAY"), Failure, false},
		{"failed, NEVER with others", rcpt(spool.Bounced, "NEVER,FAILURE"), Failure, false},
	}
	for _, tt := range tests {
		got := len(Recipients(tt.env, tt.kind)) == 1
		if got != tt.want {
			t.Errorf("%s: Recipients(%v) has bob = %v; want %v", tt.name, tt.kind, got, tt.want)
		}
		if got := Needed(tt.env, tt.kind); got != tt.want {
			t.Errorf("%s: Needed(%v) = %v; want %v", tt.name, tt.kind, got, tt.want)
		}
	}
}

func TestNeededNever(t *testing.T) {
	null := testEnv()
	null.From = ""
	angle := testEnv()
	angle.From = "<>"
	own := testEnv()
	own.Bounce = true
	for name, env := range map[string]*spool.Envelope{"null sender": null, "<> sender": angle, "bounce": own} {
		for _, k := range []Kind{Failure, Delay, Success} {
			if Needed(env, k) {
				t.Errorf("Needed(%s, %v) = true; want false", name, k)
			}
		}
	}
	if !Needed(testEnv(), Failure) {
		t.Errorf("Needed(failed recipients, Failure) = false; want true")
	}
}

func TestReturnedOriginal(t *testing.T) {
	headers := original[:strings.Index(original, "\r\n\r\n")+2]
	big := original + strings.Repeat("lorem ipsum dolor sit amet\r\n", 2000)
	eight := "From: J\xc3\xbcrgen <j@example.org>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nH\xc3\xa4llo\r\n"
	// Bare LF, a line over 998 octets and no final line end: all must
	// come back as they went, unwrapped and unencoded.
	odd := "Subject: odd\r\n\r\nbare\nlf\r\n" + strings.Repeat("x", 1500) + "\r\nno end"
	// Byte for byte, but for the line past 998 octets, broken as
	// Postfix's smtp client breaks it (TestBB6ReturnedLongLines).
	oddBack := "Subject: odd\r\n\r\nbare\nlf\r\n" + strings.Repeat("x", 998) + "\r\n" + strings.Repeat("x", 502) + "\r\nno end"
	tests := []struct {
		name        string
		ret         string
		kind        Kind
		content     string
		hdrsOnly    bool
		max         int64
		wantType    string
		wantBody    string
		want8bit    bool
		wantDescrip string
	}{
		{"RET=FULL", "FULL", Failure, original, false, 0, "message/rfc822", original, false, "Undelivered Message"},
		{"RET=HDRS", "HDRS", Failure, original, false, 0, "text/rfc822-headers", headers, false, "Undelivered Message Headers"},
		{"no RET, failure", "", Failure, original, false, 0, "message/rfc822", original, false, "Undelivered Message"},
		{"no RET, delay", "", Delay, original, false, 0, "text/rfc822-headers", headers, false, "Undelivered Message Headers"},
		{"no RET, success", "", Success, original, false, 0, "text/rfc822-headers", headers, false, "Message Headers"},
		{"forced headers", "FULL", Failure, original, true, 0, "text/rfc822-headers", headers, false, "Undelivered Message Headers"},
		{"too large", "FULL", Failure, big, false, 1000, "text/rfc822-headers", headers, false, "Undelivered Message Headers"},
		{"larger than default", "FULL", Failure, original + strings.Repeat("y", DefaultMaxReturnSize), false, 0, "text/rfc822-headers", headers, false, "Undelivered Message Headers"},
		{"no limit", "FULL", Failure, big, false, -1, "message/rfc822", big, false, "Undelivered Message"},
		{"exactly the limit", "FULL", Failure, original, false, int64(len(original)), "message/rfc822", original, false, "Undelivered Message"},
		// UTF-8 header fields (RFC 6532) go back in RFC 6533's types;
		// an 8-bit body alone does not need them.
		{"8-bit", "FULL", Failure, eight, false, 0, "message/global", eight, true, "Undelivered Message"},
		{"8-bit headers", "HDRS", Failure, eight, false, 0, "message/global-headers", eight[:strings.Index(eight, "\r\n\r\n")+2], true, "Undelivered Message Headers"},
		{"8-bit body", "FULL", Failure, original + "H\xc3\xa4llo\r\n", false, 0, "message/rfc822", original + "H\xc3\xa4llo\r\n", true, "Undelivered Message"},
		{"odd bytes", "FULL", Failure, odd, false, 0, "message/rfc822", oddBack, false, "Undelivered Message"},
		{"headers cut at a line", "HDRS", Failure, original, false, 50, "text/rfc822-headers", "Return-Path: <alice@example.org>\r\n", false, "Undelivered Message Headers"},
		{"header only message", "FULL", Failure, "Subject: x\r\n", false, 0, "message/rfc822", "Subject: x\r\n", false, "Undelivered Message"},
	}
	for _, tt := range tests {
		env := testEnv()
		env.Ret = tt.ret
		for i := range env.Recipients {
			env.Recipients[i].Notify = "FAILURE,DELAY,SUCCESS"
		}
		opts := testOpts()
		opts.ReturnHeadersOnly = tt.hdrsOnly
		opts.MaxReturnSize = tt.max
		raw := build(t, env, tt.content, tt.kind, opts)
		n := parse(t, raw)
		if len(n.parts) != 3 {
			t.Fatalf("%s: %d parts; want 3", tt.name, len(n.parts))
		}
		p := n.parts[2]
		if p.ctype != tt.wantType {
			t.Errorf("%s: returned part is %q; want %q", tt.name, p.ctype, tt.wantType)
		}
		if got := p.header.Get("Content-Description"); got != tt.wantDescrip {
			t.Errorf("%s: Content-Description = %q; want %q", tt.name, got, tt.wantDescrip)
		}
		if string(p.body) != tt.wantBody {
			t.Errorf("%s: returned bytes differ (%d bytes; want %d):\n%s", tt.name, len(p.body), len(tt.wantBody),
				cmp.Diff(tt.wantBody, string(p.body)))
		}
		wantCTE := ""
		if tt.want8bit {
			wantCTE = "8bit"
		}
		if got := p.header.Get("Content-Transfer-Encoding"); got != wantCTE {
			t.Errorf("%s: part Content-Transfer-Encoding = %q; want %q", tt.name, got, wantCTE)
		}
		if got := n.header.Get("Content-Transfer-Encoding"); got != wantCTE {
			t.Errorf("%s: top Content-Transfer-Encoding = %q; want %q", tt.name, got, wantCTE)
		}
	}
}

func TestNoContent(t *testing.T) {
	env := testEnv()
	var b bytes.Buffer
	if err := Build(&b, env, nil, Failure, Recipients(env, Failure), testOpts()); err != nil {
		t.Fatalf("Build: %v", err)
	}
	if n := parse(t, b.Bytes()); len(n.parts) != 2 {
		t.Errorf("notice without the original has %d parts; want 2", len(n.parts))
	}
}

func TestBoundaryClash(t *testing.T) {
	first := parse(t, build(t, testEnv(), original, Failure, testOpts()))
	_, params, _ := first.header.ContentType()
	content := original + "--" + params["boundary"] + "\r\n"
	n := parse(t, build(t, testEnv(), content, Failure, testOpts()))
	_, p2, _ := n.header.ContentType()
	if p2["boundary"] == params["boundary"] {
		t.Errorf("boundary %q kept although the original contains it", p2["boundary"])
	}
	if len(n.parts) != 3 || string(n.parts[2].body) != content {
		t.Errorf("original not returned intact around a boundary clash")
	}
}

func TestFolding(t *testing.T) {
	env := testEnv()
	reply := "550-5.7.1 [192.0.2.10] The IP you're using to send mail is not authorized to send email directly to our servers. 550 5.7.1 Please use the SMTP relay at your service provider instead. Learn more at https://support.example.net/mail/?p=NotAuthorizedError 123-abc.45"
	env.Recipients = []spool.Recipient{{Addr: "bob@example.net", Status: spool.Bounced, Reply: reply}}
	n := parse(t, build(t, env, original, Failure, testOpts()))
	for l := range strings.SplitSeq(string(n.parts[1].body), "\r\n") {
		if len(l) > maxLine {
			t.Errorf("delivery-status line of %d octets: %q", len(l), l)
		}
	}
	g := dsnGroups(t, n.parts[1].body)
	if got, want := g[1]["diagnostic-code"], "smtp; "+reply; got != want {
		t.Errorf("Diagnostic-Code unfolds to %q; want %q", got, want)
	}
	if got := g[1]["status"]; got != "5.7.1" {
		t.Errorf("Status = %q; want 5.7.1", got)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		reply string
		kind  Kind
		want  string
	}{
		{"550 5.1.1 no such user", Failure, "5.1.1"},
		{"550-5.7.1 first 550 5.7.1 second", Failure, "5.7.1"},
		{"550 no enhanced code", Failure, "5.0.0"},
		{"550 4.2.2 class disagrees", Failure, "5.2.2"},
		{"452 4.2.2 mailbox full", Delay, "4.2.2"},
		{"421", Delay, "4.0.0"},
		{"250 2.0.0 Ok", Success, "2.0.0"},
		{"temporary failure: dial tcp: connection refused", Delay, "4.0.0"},
		{"connection refused", Failure, "5.0.0"},
		{"", Success, "2.0.0"},
		{"5501 not a code", Failure, "5.0.0"},
		// The relay's own account of a failure (reply.Account).
		{"5.6.7 the upstream does not offer SMTPUTF8", Failure, "5.6.7"},
		{"4.4.6 mail loops", Delay, "4.4.6"},
		{"4.4.6 a temporary code in a failure notice", Failure, "5.0.0"},
	}
	for _, tt := range tests {
		if got := status(tt.reply, tt.kind); got != tt.want {
			t.Errorf("status(%q, %v) = %q; want %q", tt.reply, tt.kind, got, tt.want)
		}
	}
}

func TestLocalDiagnostic(t *testing.T) {
	env := testEnv()
	env.LastReply = "temporary failure: dial tcp 192.0.2.25:25: connect: connection refused"
	env.Recipients = []spool.Recipient{{Addr: "bob@example.net", Status: spool.Deferred}}
	n := parse(t, build(t, env, original, Delay, testOpts()))
	g := dsnGroups(t, n.parts[1].body)
	if got, want := g[1]["diagnostic-code"], "X-Relaykeeper; "+env.LastReply; got != want {
		t.Errorf("Diagnostic-Code = %q; want %q", got, want)
	}
	if _, ok := g[1]["remote-mta"]; ok {
		t.Errorf("Remote-MTA %q given for a reply no remote host sent", g[1]["remote-mta"])
	}
}

func TestBuildErrors(t *testing.T) {
	good := testEnv()
	null := testEnv()
	null.From = ""
	noMTA := testOpts()
	noMTA.ReportingMTA = ""
	tests := []struct {
		name  string
		env   *spool.Envelope
		rcpts []spool.Recipient
		kind  Kind
		opts  Options
	}{
		{"null sender", null, good.Recipients[:1], Failure, testOpts()},
		{"no recipients", good, nil, Failure, testOpts()},
		{"no reporting MTA", good, good.Recipients[:1], Failure, noMTA},
		{"unknown kind", good, good.Recipients[:1], Kind(7), testOpts()},
	}
	for _, tt := range tests {
		err := Build(io.Discard, tt.env, strings.NewReader(original), tt.kind, tt.rcpts, tt.opts)
		if err == nil || !strings.HasPrefix(err.Error(), "bounce: ") {
			t.Errorf("%s: Build = %v; want a bounce: error", tt.name, err)
		}
	}
}

func TestGolden(t *testing.T) {
	got := build(t, testEnv(), original, Failure, testOpts())
	path := filepath.Join("testdata", "failure.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("failure notice differs from %s (-want +got):\n%s", path, diff)
	}
	for i, l := range bytes.Split(got, []byte("\r\n")) {
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, l)
		}
	}
}

// TestOwnAccount: a failure the relay found itself (stored without a reply
// code, reply.Account) is not put in the upstream's mouth: no "host X
// said", no Remote-MTA, Diagnostic-Code X-Relaykeeper, and its own status.
func TestOwnAccount(t *testing.T) {
	env := testEnv()
	const account = "5.6.7 <bob@example.net>: the upstream does not offer SMTPUTF8, which this address needs"
	env.Recipients = []spool.Recipient{{Addr: "bob@example.net", Status: spool.Bounced, Reply: account}}
	n := parse(t, build(t, env, original, Failure, testOpts()))
	g := dsnGroups(t, n.parts[1].body)
	if got := g[1]["diagnostic-code"]; got != "X-Relaykeeper; "+account {
		t.Errorf("Diagnostic-Code %q; want X-Relaykeeper; %s", got, account)
	}
	if got := g[1]["status"]; got != "5.6.7" {
		t.Errorf("Status %q; want 5.6.7", got)
	}
	if got, ok := g[1]["remote-mta"]; ok {
		t.Errorf("Remote-MTA %q; want none: no server said it", got)
	}
	if text := string(n.parts[0].body); strings.Contains(text, " said:") {
		t.Errorf("the text blames a host:\n%s", text)
	}
}

// TestInternationalized: a notice about an SMTPUTF8 message whose failed
// recipient, reply or header is UTF-8 uses RFC 6533's types, since
// message/delivery-status, message/rfc822 and text/rfc822-headers are
// ASCII only; a notice with nothing but an 8-bit body keeps RFC 3464's.
func TestInternationalized(t *testing.T) {
	const utf8Original = "From: Jörg <jörg@exämple.org>\r\nSubject: grüße\r\n\r\ncafé\r\n"
	env := testEnv()
	env.Recipients = []spool.Recipient{{Addr: "mañana@example.net", Status: spool.Bounced,
		ORCPT: "utf-8;mañana@example.net", Reply: "550 5.1.1 no such user"}}

	for _, tc := range []struct {
		name, ret string
		want      []string
	}{
		{"full", "FULL", []string{"text/plain", "message/global-delivery-status", "message/global"}},
		{"headers", "HDRS", []string{"text/plain", "message/global-delivery-status", "message/global-headers"}},
	} {
		env.Ret = tc.ret
		n := parse(t, build(t, env, utf8Original, Failure, testOpts()))
		if _, params, _ := n.header.ContentType(); params["report-type"] != "global-delivery-status" {
			t.Errorf("%s: report-type = %q; want global-delivery-status", tc.name, params["report-type"])
		}
		var types []string
		for _, p := range n.parts {
			types = append(types, p.ctype)
		}
		if diff := cmp.Diff(tc.want, types); diff != "" {
			t.Errorf("%s: part types (-want +got):\n%s", tc.name, diff)
		}
		if g := dsnGroups(t, n.parts[1].body); len(g) < 2 || g[1]["final-recipient"] != "utf-8; mañana@example.net" {
			t.Errorf("%s: Final-Recipient = %q; want the utf-8 address type", tc.name, g[len(g)-1]["final-recipient"])
		}
	}

	// An ASCII envelope and header with an 8-bit body: RFC 3464's types.
	env = testEnv()
	n := parse(t, build(t, env, "Subject: x\r\n\r\ncafé\r\n", Failure, testOpts()))
	if _, params, _ := n.header.ContentType(); params["report-type"] != "delivery-status" {
		t.Errorf("8-bit body: report-type = %q; want delivery-status", params["report-type"])
	}
	if n.parts[1].ctype != "message/delivery-status" || n.parts[2].ctype != "message/rfc822" {
		t.Errorf("8-bit body: parts %q, %q; want message/delivery-status, message/rfc822", n.parts[1].ctype, n.parts[2].ctype)
	}
}

// TestExpired: a recipient that outlived the queue failed for want of
// time, not because anyone refused it: its Status stays in class 4 (the
// last deferral's, else 4.4.7 "delivery time expired"), as Postfix and
// RFC 3463 have it, so that a bounce processor does not take it for a
// hard bounce and drop the address; the last SMTP reply is the
// Diagnostic-Code.
func TestExpired(t *testing.T) {
	for _, tt := range []struct {
		last                 string
		status, remote, diag string
	}{
		{"451 4.3.0 Try again later", "4.3.0", "dns; smtp.example.net", "smtp; 451 4.3.0 Try again later"},
		{"421 service not available", "4.0.0", "dns; smtp.example.net", "smtp; 421 service not available"},
		{"4.4.1 upstream connect failed: Connection refused", "4.4.1", "",
			"X-Relaykeeper; " + Expired(5*24*time.Hour, "4.4.1 upstream connect failed: Connection refused")},
		{"", "4.4.7", "", "X-Relaykeeper; " + strings.TrimSpace(Expired(5*24*time.Hour, ""))},
	} {
		env := testEnv()
		env.Recipients = []spool.Recipient{{Addr: "erin@example.net", Status: spool.Bounced, Reply: Expired(5*24*time.Hour, tt.last)}}
		if tt.remote != "" {
			// The last deferral was the upstream's reply, and the
			// recipient keeps what it answered (attempt records it).
			env.Recipients[0].InReplyTo = "RCPT TO"
		}
		n := parse(t, build(t, env, original, Failure, testOpts()))
		g := dsnGroups(t, n.parts[1].body)
		if len(g) != 2 {
			t.Fatalf("%q: %d field groups; want 2", tt.last, len(g))
		}
		if g[1]["action"] != "failed" || g[1]["status"] != tt.status || g[1]["remote-mta"] != tt.remote || g[1]["diagnostic-code"] != tt.diag {
			t.Errorf("last reply %q: Action %q, Status %q, Remote-MTA %q, Diagnostic-Code %q; want failed, %q, %q, %q",
				tt.last, g[1]["action"], g[1]["status"], g[1]["remote-mta"], g[1]["diagnostic-code"], tt.status, tt.remote, tt.diag)
		}
		if text := strings.Join(strings.Fields(string(n.parts[0].body)), " "); !strings.Contains(text, "<erin@example.net>: message delivery expired after 5 days in the queue") {
			t.Errorf("last reply %q: text part does not say the message expired:\n%s", tt.last, n.parts[0].body)
		}
	}
}

// TestAge: the delay warning says how old a message may get in the unit
// that fits: a lifetime under an hour in minutes, not "1 hour(s)".
func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Minute:   "30 minute(s)",
		20 * time.Second:   "1 minute(s)",
		90 * time.Minute:   "2 hour(s)",
		5 * 24 * time.Hour: "5 day(s)",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q; want %q", d, got, want)
		}
	}
}

// TestLongReplyWord: an upstream may send a reply line of 2,048
// characters without a space (remote reads that much); the notice still
// keeps every line within RFC 5322's 998 characters, in the text and the
// delivery-status part, so that the next hop does not refuse or break it.
func TestLongReplyWord(t *testing.T) {
	env := testEnv()
	long := "550 5.7.1 " + strings.Repeat("x", 2040)
	env.Recipients = []spool.Recipient{{Addr: "bob@example.net", Status: spool.Bounced, Reply: long, InReplyTo: "RCPT TO"}}
	env.EnvID = strings.Repeat("e", 100)
	raw := build(t, env, original, Failure, testOpts())
	for i, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("line %d is %d characters long: %.60q...", i+1, len(l), l)
		}
	}
	n := parse(t, raw)
	g := dsnGroups(t, n.parts[1].body)
	if got := strings.ReplaceAll(g[1]["diagnostic-code"], " ", ""); got != "smtp;"+strings.ReplaceAll(long, " ", "") {
		t.Errorf("Diagnostic-Code, spaces aside, is not the reply: %.80q...", got)
	}
}

// TestHumanAge: a notice says how long a message was queued in words.
func TestHumanAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                    "0 seconds",
		time.Second:                          "1 second",
		90 * time.Minute:                     "1 hour 30 minutes",
		120*time.Hour + 3*time.Second:        "5 days 3 seconds",
		49*time.Hour + 1500*time.Millisecond: "2 days 1 hour 2 seconds",
	} {
		if got := humanAge(d); got != want {
			t.Errorf("humanAge(%v) = %q; want %q", d, got, want)
		}
	}
}

// TestDiscardSuccessDelivered: a discard: transport's success is the
// relay's own, with no upstream to report further: Action "delivered",
// as Postfix's discard(8) says, not "relayed".
func TestDiscardSuccessDelivered(t *testing.T) {
	env := testEnv()
	env.Recipients = []spool.Recipient{{Addr: "dave@example.net", Status: spool.Sent, Notify: "SUCCESS", Reply: "250 2.0.0 discarded"}}
	g := dsnGroups(t, parse(t, build(t, env, original, Success, testOpts())).parts[1].body)
	if len(g) != 2 || g[1]["action"] != "delivered" || g[1]["status"] != "2.0.0" {
		t.Errorf("groups %q; want Action delivered, Status 2.0.0", g)
	}
}
