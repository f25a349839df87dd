package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview11EnforceTestReplies runs every reply of the shared
// gmail-replies.md, transcribed on its own (testdata/review11-gmail-
// replies.txt), through "relaykeeper enforce test": as Gmail sends it
// (multi-line, CRLF) and as Postfix logs it (joined, with "host ... said:"),
// in both wordings ("mail" and "email") and in capitals. The verdict is the
// first word printed.
func TestReview11EnforceTestReplies(t *testing.T) {
	t.Parallel()
	bin := harness.Binary(t)
	f, err := os.Open("testdata/review11-gmail-replies.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type reply struct{ want, code, enh, text string }
	var replies []reply
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			p := strings.SplitN(l, " ", 4)
			text := strings.ReplaceAll(p[3], "[R", "[198.51.100.25")
			text = strings.ReplaceAll(text, "address R.", "address 198.51.100.25.")
			replies = append(replies, reply{p[0], p[1], p[2], text})
		}
	}
	if len(replies) < 60 {
		t.Fatalf("%d replies read; want the whole file", len(replies))
	}

	// Gmail's lines: at most width characters, the last with the session
	// id and "gsmtp".
	lines := func(r reply, text string, width int) []string {
		var out []string
		cur := ""
		for _, w := range strings.Fields(text) {
			if cur != "" && len(cur)+1+len(w) > width {
				out = append(out, cur)
				cur = w
			} else if cur == "" {
				cur = w
			} else {
				cur += " " + w
			}
		}
		out = append(out, cur+" d75a77b69052e-4a1b2c3d4e5sm123456qtb.42 - gsmtp")
		for i := range out {
			sep := "-"
			if i == len(out)-1 {
				sep = " "
			}
			out[i] = r.code + sep + r.enh + " " + out[i]
		}
		return out
	}
	swap := func(s string) string {
		if strings.Contains(s, " email") {
			return strings.ReplaceAll(s, " email", " mail")
		}
		return strings.ReplaceAll(s, " mail", " email")
	}
	type tcase struct{ name, want, in string }
	var multi, joined []tcase
	for _, r := range replies {
		if r.code == "250" {
			joined = append(joined, tcase{"250", r.want, r.code + " " + r.enh + " " + r.text})
			continue
		}
		multi = append(multi, tcase{"multi-line CRLF: " + r.text, r.want, strings.Join(lines(r, r.text, 60), "\r\n")})
		for _, v := range []struct{ name, text string }{{"", r.text}, {"swapped wording, ", swap(r.text)}, {"capitals, ", strings.ToUpper(r.text)}} {
			for _, w := range []int{40, 76} {
				joined = append(joined, tcase{"joined " + v.name + v.text, r.want,
					"host gmail-smtp-in.l.google.com[142.250.153.27] said: " + strings.Join(lines(r, v.text, w), " ") + " (in reply to end of DATA command)"})
			}
		}
	}
	miss := 0
	for _, c := range multi {
		out, err := exec.Command(bin, "enforce", "test", c.in).Output()
		if got, _, _ := strings.Cut(firstLine(string(out)), " "); err != nil || got != c.want {
			miss++
			t.Errorf("%s: enforce test = %q (%v); want %s", c.name, firstLine(string(out)), err, c.want)
		}
	}
	var in strings.Builder
	for _, c := range joined {
		in.WriteString(c.in + "\n")
	}
	cmd := exec.Command(bin, "enforce", "test", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("enforce test -: %v", err)
	}
	blocks := strings.Split(strings.TrimSpace(string(out)), "\n\n")
	if len(blocks) != len(joined) {
		t.Fatalf("enforce test - printed %d answers for %d replies", len(blocks), len(joined))
	}
	for i, b := range blocks {
		_, verdictLine, _ := strings.Cut(b, "\n")
		if got, _, _ := strings.Cut(firstLine(verdictLine), " "); got != joined[i].want {
			miss++
			t.Errorf("%s: enforce test = %q; want %s", joined[i].name, firstLine(verdictLine), joined[i].want)
		}
	}
	t.Logf("%d of %d forms gave the right verdict", len(multi)+len(joined)-miss, len(multi)+len(joined))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
