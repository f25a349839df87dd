package enforce

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Gmail's replies, wrapped as Gmail wraps them. relay-enforcer's filter
// (testdata/smtp_dsn_rw_filter.pcre) was written for these last lines.
const (
	gmailDMARCOld = "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's\r\n" +
		"550-5.7.26 DMARC policy. Please contact the administrator of example.com domain if\r\n" +
		"550-5.7.26 this was a legitimate mail. Please visit\r\n" +
		"550-5.7.26  https://support.google.com/mail/answer/2451690 to learn about the\r\n" +
		"550 5.7.26 DMARC initiative. a1si123 - gsmtp\r\n"
	gmailDMARCNow = "550-5.7.26 Unauthenticated email from example.com is not accepted due to\n" +
		"550-5.7.26 domain's DMARC policy. Please contact the administrator of\n" +
		"550-5.7.26 example.com domain if this was a legitimate mail. To learn about\n" +
		"550-5.7.26 the DMARC initiative, go to\n" +
		"550 5.7.26  https://support.google.com/mail/?p=DmarcRejection a1si123 - gsmtp"
	gmailAuth421 = "421-4.7.0 This message does not have authentication information or fails to\n" +
		"421-4.7.0 pass authentication checks. To best protect our users from spam, the\n" +
		"421-4.7.0 message has been blocked. Please visit\n" +
		"421-4.7.0  https://support.google.com/mail/answer/81126#authentication for more\n" +
		"421 4.7.0 information. a1si123 - gsmtp"
	gmailAuth550 = "550-5.7.26 This message does not have authentication information or fails to\n" +
		"550-5.7.26 pass authentication checks. To best protect our users from spam, the\n" +
		"550-5.7.26 message has been blocked. Please visit\n" +
		"550-5.7.26  https://support.google.com/mail/answer/81126#authentication for more\n" +
		"550 5.7.26 information. a1si123 - gsmtp"
	gmailBulk = "421-4.7.0 [192.0.2.25      15] Our system has detected an unusual rate of\n" +
		"421-4.7.0 unsolicited mail originating from your IP address. To protect our\n" +
		"421-4.7.0 users from spam, mail sent from your IP address has been temporarily\n" +
		"421-4.7.0 rate limited. Please visit\n" +
		"421-4.7.0  https://support.google.com/mail/?p=UnsolicitedRateLimitError to\n" +
		"421 4.7.0 review our Bulk Email Senders Guidelines. a1si123 - gsmtp"
	gmailTemp        = "421 4.3.0 Temporary System Problem.  Try again later (10). a1si123 - gsmtp"
	gmailUnsolicited = "550-5.7.1 [192.0.2.25      12] Our system has detected that this message is\n" +
		"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n" +
		"550-5.7.1 this message has been blocked. Please visit\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\n" +
		"550 5.7.1 for more information. a1si123 - gsmtp"
	gmailSuspicious = "421-4.7.0 [192.0.2.25 15] Gmail has detected that this message is suspicious\n" +
		"421-4.7.0 due to the nature of the content or the links within. To best\n" +
		"421-4.7.0 protect our users from spam, the message has been blocked. Please visit\n" +
		"421 4.7.0  https://support.google.com/mail/?p=UnsolicitedMessageError a1si123 - gsmtp"
	gmailOK = "250 2.0.0 OK  1795310619 a1si123 - gsmtp"
)

// bulk28 is gmailBulk as a 4.7.28 reply.
var bulk28 = strings.ReplaceAll(gmailBulk, "4.7.0", "4.7.28")

// joined is a reply as Postfix logs it.
func joined(reply string) string {
	return strings.Join(inputLines(reply), " ")
}

type rewriteCase struct {
	name  string
	reply string
	// want and wantOK: encapsulated; wantNot, wantNotOK: not.
	want      string
	wantOK    bool
	wantNot   string
	wantNotOK bool
}

func checkRewrites(t *testing.T, f *ReplyFilter, tests []rewriteCase) {
	t.Helper()
	for _, tt := range tests {
		for _, form := range []string{"as sent", "joined"} {
			reply := tt.reply
			if form == "joined" {
				reply = joined(reply)
			}
			unchanged := func(want string, ok bool) string {
				if !ok {
					return reply
				}
				return want
			}
			got, ok := f.RewriteFor(reply, true)
			if want := unchanged(tt.want, tt.wantOK); got != want || ok != tt.wantOK {
				t.Errorf("%s (%s): RewriteFor(%q, true) =\n%q, %v; want\n%q, %v", tt.name, form, reply, got, ok, want, tt.wantOK)
			}
			if got2, ok2 := f.Rewrite(reply); got2 != got || ok2 != ok {
				t.Errorf("%s (%s): Rewrite = %q, %v; RewriteFor(..., true) = %q, %v", tt.name, form, got2, ok2, got, ok)
			}
			got, ok = f.RewriteFor(reply, false)
			if want := unchanged(tt.wantNot, tt.wantNotOK); got != want || ok != tt.wantNotOK {
				t.Errorf("%s (%s): RewriteFor(%q, false) =\n%q, %v; want\n%q, %v", tt.name, form, reply, got, ok, want, tt.wantNotOK)
			}
		}
	}
}

// TestSeedReplyFilter is relay-enforcer's example smtp_dsn_rw_filter.pcre,
// exactly as its manual prints it, on Gmail's replies. Its patterns are
// anchored on a reply's last line ("^550 5\.7\.26 ..."), so they work
// through the line-by-line pass, as in Postfix. Two things it does as
// written: its 4.7.28 rule says "gmstp" and never matches (the bulk and
// generic rules catch 4.7.28), and its "no change" rule keeps only the
// matched "421 4.3.0 Temporary ".
func TestSeedReplyFilter(t *testing.T) {
	f, err := LoadReplyFilter("testdata/smtp_dsn_rw_filter.pcre")
	if err != nil {
		t.Fatal(err)
	}
	const reply250 = "250-2.0.0 Unauthenticated email from example.com is not accepted due to domain's " +
		"250-2.0.0 DMARC policy. Please contact the administrator of example.com domain if " +
		"250-2.0.0 this was a legitimate mail. Please visit " +
		"250-2.0.0 https://support.google.com/mail/answer/2451690 to learn about the " +
		"250 2.0.0 DMARC initiative. a1si123 - gsmtp-fmod_dmarc"
	auth := func(code, enh, suffix string) string {
		return code + "-" + enh + " This message does not have authentication information or fails to " +
			code + "-" + enh + " pass authentication checks. To best protect our users from spam, the " +
			code + "-" + enh + " message has been blocked. Please visit " +
			code + "-" + enh + " https://support.google.com/mail/answer/81126#authentication for more " +
			code + " " + enh + " information. a1si123 - gsmtp" + suffix
	}
	bulk := func(enh, suffix string) string {
		return "554-" + enh + " [192.0.2.25 15] Our system has detected an unusual rate of " +
			"554-" + enh + " unsolicited mail originating from your IP address. To protect our " +
			"554-" + enh + " users from spam, mail sent from your IP address has been temporarily " +
			"554-" + enh + " rate limited. Please visit " +
			"554-" + enh + " https://support.google.com/mail/?p=UnsolicitedRateLimitError to " +
			"554 " + enh + " review our Bulk Email Senders Guidelines. a1si123 - gsmtp" + suffix
	}
	const suspicious = "554-5.7.0 [192.0.2.25 15] Gmail has detected that this message is suspicious " +
		"554-5.7.0 due to the nature of the content or the links within. To best " +
		"554-5.7.0 protect our users from spam, the message has been blocked. Please visit " +
		"554 5.7.0 https://support.google.com/mail/?p=UnsolicitedMessageError a1si123 - gsmtp-fmod_generic"
	checkRewrites(t, f, []rewriteCase{
		{"DMARC, last line \"DMARC initiative\"", gmailDMARCOld, reply250, true, "", false},
		{"DMARC, today's wording", gmailDMARCNow, "", false, "", false},
		{"authentication 421", gmailAuth421, auth("250", "2.0.0", "-fmod_lackauth"), true,
			// Not forwarded: the 250 rule is skipped and the generic one applies.
			auth("554", "5.7.0", "-fmod_generic"), true},
		{"authentication 550 5.7.26", gmailAuth550, auth("250", "2.0.0", "-fmod_lackauth"), true, "", false},
		{"temporary problem", gmailTemp, "421 4.3.0 Temporary", true, "421 4.3.0 Temporary", true},
		{"bulk 4.7.0", gmailBulk, bulk("5.7.0", "-fmod_bulk"), true, bulk("5.7.0", "-fmod_bulk"), true},
		{"bulk 4.7.28", bulk28, bulk("5.7.28", "-fmod_bulk"), true, bulk("5.7.28", "-fmod_bulk"), true},
		{"suspicious content", gmailSuspicious, suspicious, true, suspicious, true},
		{"4.7.28 on one line", "421 4.7.28 rate limited. a1si123 - gsmtp", "554 5.7.28 rate limited. a1si123 - gsmtp-fmod_generic", true,
			"554 5.7.28 rate limited. a1si123 - gsmtp-fmod_generic", true},
		{"unsolicited 550", gmailUnsolicited, "", false, "", false},
		{"accepted", gmailOK, "", false, "", false},
	})
}

// TestDefaultReplyFilter: forwarded-encapsulated refusals are delivered
// only when the copy was sent; temporary spam refusals become permanent.
func TestDefaultReplyFilter(t *testing.T) {
	f := DefaultReplyFilter()
	const delivered = "250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: "
	// A whole-reply rewrite sees the reply normalised, on one line.
	oneLine := func(code, enh, reply string) string {
		n := Normalize(reply)
		return code + " " + enh + n[strings.IndexByte(n, ' '):]
	}
	checkRewrites(t, f, []rewriteCase{
		{"DMARC", gmailDMARCNow, delivered + "5.7.26 authentication)", true, "", false},
		{"DMARC, old wording", gmailDMARCOld, delivered + "5.7.26 authentication)", true, "", false},
		{"authentication 550", gmailAuth550, delivered + "5.7.26 authentication)", true, "", false},
		{"authentication 550 5.7.1", strings.ReplaceAll(gmailAuth550, "5.7.26", "5.7.1"), delivered + "5.7.1 authentication)", true, "", false},
		{"authentication 421", gmailAuth421, delivered + "4.7.0 authentication)", true, "", false},
		{"SPF fail", "550-5.7.26 This message fails to pass SPF checks for an SPF record with a hard fail\n550 5.7.26 policy (-all). a1si123 - gsmtp",
			delivered + "5.7.26 authentication)", true, "", false},
		{"unauthenticated sender", "550-5.7.26 This mail has been blocked because the sender is\n550 5.7.26 unauthenticated. a1si123 - gsmtp",
			delivered + "5.7.26 authentication)", true, "", false},
		{"RFC-5321", "553-5.1.7 The sender address <x@example.com> is not a valid RFC-5321\n553 5.1.7 address. a1si123 - gsmtp",
			"250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused the sender address)", true, "", false},
		{"bulk 4.7.0", gmailBulk, oneLine("554", "5.7.0", gmailBulk), true, oneLine("554", "5.7.0", gmailBulk), true},
		{"bulk 4.7.28", bulk28, oneLine("554", "5.7.28", bulk28), true, oneLine("554", "5.7.28", bulk28), true},
		{"suspicious content", gmailSuspicious, oneLine("554", "5.7.0", gmailSuspicious), true, oneLine("554", "5.7.0", gmailSuspicious), true},
		{"temporary problem", gmailTemp, "", false, "", false},
		{"receiving too quickly", "450-4.2.1 The user you are trying to contact is receiving mail too quickly.\n450 4.2.1 Please resend later. a1si123 - gsmtp", "", false, "", false},
		{"over quota", "452-4.2.2 The recipient's inbox is out of storage space.\n452 4.2.2 Please direct the recipient. a1si123 - gsmtp", "", false, "", false},
		{"unsolicited 550", gmailUnsolicited, "", false, "", false},
		{"accepted", gmailOK, "", false, "", false},
	})
	if got, want := oneLine("554", "5.7.0", gmailSuspicious), "554 5.7.0 [192.0.2.25 15] Gmail has detected that this message is suspicious due to the nature of the content or the links within. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError a1si123 - gsmtp"; got != want {
		t.Errorf("oneLine = %q; want %q", got, want)
	}
}

func TestReplyFilterSyntax(t *testing.T) {
	const text = `# every form
/^250 / 250 unchanged
if /^5/
if !/gsmtp$/
/^550 (x+) (y+)/ 551 $1 ${2} $(1) $$ cost
endif
/^550 XX/i 552 case-sensitive pattern never matches lower case
/^550 a/
    552 continued result
endif
!/^4/ 553 not a 4xx
/^4[0-9]{2} z/ 454 braces are not a table spec
/^(4[0-9][0-9]) w/ $1 from a group
/^4[0-9][0-9] v/ ${9} oops
`
	// ${9} is refused: check the rest without that line first.
	if _, err := ParseReplyFilter("f", []byte(text)); err == nil || err.Error() != "f:14: $9 in the result, but the pattern has 0 groups" {
		t.Errorf("ParseReplyFilter = %v; want f:14: $9 ...", err)
	}
	f, err := ParseReplyFilter("f", []byte(strings.Replace(text, "${9} oops", "450 ok", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"250 fine", "250 unchanged"},
		{"550 xx yyy", "551 xx yyy xx $ cost"},
		{"550 xx yyy - gsmtp", "553 not a 4xx"},
		{"550 a b", "552 continued result"},
		{"451 z", "454 braces are not a table spec"},
		{"452 w", "452 from a group"},
		{"453 v", "450 ok"},
		{"499 none", ""},
	}
	for _, tt := range tests {
		got, ok := f.Rewrite(tt.in)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("Rewrite(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestReplyFilterErrors(t *testing.T) {
	const text = `/^550/
/^550 551 no closing slash
x/550/ 551 not a pattern
/(/ 551 bad regexp
/^550/q 551 bad flag
/^550/ hello not a reply
/^550/ 551 $x
/^550/ 551 ${1
!/^(5)/ 551 $1 from a negated pattern
endif
if /a/ extra
if /b/
/ok/ 250 ok
`
	path := writeFile(t, "filter.pcre", text)
	_, err := LoadReplyFilter(path)
	if err == nil {
		t.Fatal("no error")
	}
	var got []string
	for _, l := range strings.Split(err.Error(), "\n") {
		got = append(got, strings.TrimPrefix(l, path))
	}
	want := []string{
		`:1: no result after the pattern`,
		`:2: no closing / after the pattern in "/^550 551 no closing slash"`,
		`:3: line "x/550/ 551 not a pattern": want /pattern/ result, if /pattern/ or endif`,
		":4: pattern: error parsing regexp: missing closing ): `(?is)(`",
		`:5: pattern flag 'q' is not supported (i, m and s are)`,
		`:6: result "hello not a reply" is not a reply: it must start with a 2xx, 4xx or 5xx code`,
		`:7: "$x" in the result: want $N, ${N}, $(N) or $$`,
		`:8: "${1" in the result: want $N, ${N}, $(N) or $$`,
		`:9: $N in the result of a negated pattern, which has no groups when it applies`,
		`:10: endif without an if`,
		`:11: text after the pattern of an if: "extra"`,
		`:13: if without endif`,
		`:13: if without endif`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadReplyFilter errors (-want +got):\n%s", diff)
	}
	if _, err := LoadReplyFilter(path + ".missing"); err == nil || !strings.HasPrefix(err.Error(), "enforce: reply filter: open ") {
		t.Errorf("LoadReplyFilter(missing) = %v", err)
	}
}

// A filter with no rules, and nil, rewrite nothing.
func TestReplyFilterEmpty(t *testing.T) {
	f, err := ParseReplyFilter("empty", []byte("# nothing\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*ReplyFilter{f, nil, {}} {
		if got, ok := f.Rewrite(gmailAuth421); ok || got != gmailAuth421 {
			t.Errorf("Rewrite with no rules = %q, %v", got, ok)
		}
	}
}

// The seed file in testdata is the manual's example, byte for byte.
func TestSeedFilterFileIsVerbatim(t *testing.T) {
	data, err := os.ReadFile("testdata/smtp_dsn_rw_filter.pcre")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `/^421 4\.7\.28( .+gmstp)/ 554 5.7.28${1}-fmod_unsol`) ||
		strings.Count(string(data), "\n") != 12 {
		t.Errorf("testdata/smtp_dsn_rw_filter.pcre is not the manual's example:\n%s", data)
	}
}
