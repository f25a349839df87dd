package enforce

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// Outside checker gm22: every reply of gmail-replies.md, varied the way
// Gmail's output varies (line breaks anywhere, Postfix's joining and log
// line, the relay's address in IPv4 and IPv6, session ids, URLs, case,
// spacing, the temporary or permanent twin), decided as the relay and
// postfix-enforcer decide it.

type gm22Welcome struct{ ip netip.Addr }

func (w gm22Welcome) Welcome(ip netip.Addr, _ string) bool { return ip == w.ip }

var gm22IDs = []string{
	"a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp",
	"d9443c01a7336-29ee9b0e4c1si1234567pjb.213 - gsmtp",
	"5b1f17b1804b1-47a8fd5b9cfsi12345675e9.2 - gsmtp",
	"ffacd0b85a97d-3a4f2d2a6b1si1234567f8f.27 - GSMTP",
	"",
}

var gm22RelayIPs = []string{"192.0.2.25", "203.0.113.250", "2001:db8::25", "2a00:1450:4864:20::42a", "2001:0db8:0000:0000:0000:0000:0000:0025"}

// gm22Variant is one form of a reply: the reply as the enforcer gets it,
// and what it answered.
type gm22Variant struct {
	name, reply, stage string
	code               int
}

// gm22Split breaks words into lines at the given word indexes.
func gm22Split(code int, enh string, words []string, cuts []int, indent string) []string {
	var lines []string
	prev := 0
	for _, c := range append(cuts, len(words)) {
		if c <= prev || c > len(words) {
			continue
		}
		lines = append(lines, strings.Join(words[prev:c], " "))
		prev = c
	}
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		p := fmt.Sprintf("%d%s", code, sep)
		if enh != "" {
			p += enh + " "
		}
		lines[i] = p + indent + lines[i]
	}
	return lines
}

var gm22URL = regexp.MustCompile(`\?p=([A-Za-z]+)`)

// gm22Variants makes the forms of one reply.
func gm22Variants(g gmailReply) []gm22Variant {
	var out []gm22Variant
	add := func(name, s string, code int) {
		out = append(out, gm22Variant{name: name, reply: s, stage: "data", code: code})
	}
	texts := map[string]string{"plain": g.text}
	for _, ip := range gm22RelayIPs[1:] {
		texts["ip "+ip] = strings.ReplaceAll(g.text, relayIP, ip)
	}
	texts["gmail spacing"] = strings.Replace(g.text, relayIP+" ", relayIP+"      ", 1)
	texts["upper"] = strings.ToUpper(g.text)
	texts["double spaces"] = strings.ReplaceAll(g.text, " ", "  ")
	texts["url variant"] = gm22URL.ReplaceAllString(g.text, "?p=${1}&hl=en")
	codes := []int{g.code}
	enhs := map[int]string{g.code: g.enh}
	// The temporary or permanent twin of a reply decided by its words.
	if !gm22CodeRule[g.rule] && g.enh != "" {
		twin, tenh := 421, "4"+g.enh[1:]
		if g.code/100 == 4 {
			twin, tenh = 550, "5"+g.enh[1:]
		}
		codes = append(codes, twin)
		enhs[twin] = tenh
	}
	for tn, text := range texts {
		for ii, id := range gm22IDs {
			full := strings.TrimSpace(text + " " + id)
			words := strings.Fields(full)
			if tn == "double spaces" {
				words = strings.Split(full, " ")
			}
			for _, code := range codes {
				enh := enhs[code]
				name := fmt.Sprintf("%s id%d %d", tn, ii, code)
				one := gm22Split(code, enh, words, nil, "")
				add(name+" one line", one[0], code)
				if tn == "plain" && ii == 0 {
					for _, st := range []string{"mail", "rcpt", "data command", "connect", "ehlo", "auth"} {
						out = append(out, gm22Variant{name: name + " at " + st, reply: one[0], stage: st, code: code})
					}
				}
				if ii > 0 {
					continue
				}
				// Two lines, cut at every word.
				for c := 1; c < len(words) && tn == "plain"; c++ {
					ls := gm22Split(code, enh, words, []int{c}, "")
					add(fmt.Sprintf("%s cut %d joined", name, c), strings.Join(ls, " "), code)
				}
				// Three lines, cut at pairs of words.
				for c := 1; c+1 < len(words) && tn == "plain"; c += 7 {
					for d := c + 1; d < len(words); d += 5 {
						ls := gm22Split(code, enh, words, []int{c, d}, "")
						add(fmt.Sprintf("%s cut %d,%d joined", name, c, d), strings.Join(ls, " "), code)
					}
				}
				// Gmail's line width, a URL line indented by a space.
				for _, w := range []int{56, 76} {
					var cuts []int
					n := 0
					for i, wd := range words {
						if n > 0 && n+1+len(wd) > w {
							cuts = append(cuts, i)
							n = 0
						}
						if n > 0 {
							n++
						}
						n += len(wd)
					}
					ls := gm22Split(code, enh, words, cuts, "")
					for i, l := range ls {
						ls[i] = strings.Replace(l, " https://", "  https://", 1)
					}
					multi := strings.Join(ls, "\r\n") + "\r\n"
					add(fmt.Sprintf("%s width %d", name, w), multi, code)
					joined := strings.Join(ls, " ")
					add(fmt.Sprintf("%s width %d joined", name, w), joined, code)
					host := "gmail-smtp-in.l.google.com[142.250.102.27]"
					if w == 76 {
						host = "alt1.gmail-smtp-in.l.google.com[2a00:1450:4010:c1e::1b]"
					}
					add(fmt.Sprintf("%s width %d postfix %s", name, w, host),
						"host "+host+" said: "+joined+" (in reply to end of DATA command)", code)
				}
			}
		}
	}
	return out
}

// gm22CodeRule are rules decided by the code: their twin is another reply.
var gm22CodeRule = map[string]bool{
	"gmail-no-such-user": true, "gmail-over-quota": true, "gmail-temporary-problem": true,
	"gmail-message-too-big": true, "gmail-server-busy": true, "gmail-receiving-too-quickly": true,
	"gmail-sending-limit": true, "gmail-auth-rejected": true, "gmail-malformed": true,
	"gmail-invalid-sender-address": true, "gmail-no-ptr": true, "gmail-peak-relay-limit": true,
}

func TestGm22GmailVariants(t *testing.T) {
	rules := DefaultRules()
	client := netip.MustParseAddr("198.51.100.7")
	total, good := map[Action]int{}, map[Action]int{}
	replies := map[Action]int{}
	bad := 0
	for _, g := range loadGmailReplies(t) {
		replies[g.want]++
		keys := map[string]string{}
		for i, v := range gm22Variants(g) {
			if (testing.Short() || gm22Race) && i%10 != 0 {
				continue
			}
			total[g.want]++
			u, err := ParseReply(v.reply)
			if err != nil {
				t.Errorf("line %d %s: %v", g.line, v.name, err)
				continue
			}
			if u.Host == "" {
				u.Host = "gmail-smtp-in.l.google.com"
			}
			u.Stage = v.stage
			vd := rules.Classify(u)
			want := g.want
			// The doc's verdict, as Decide changes it by the stage.
			wantAct := want
			switch {
			case BeforeTransaction(v.stage) && (want == Ban || want == BlockDomain || want == Encapsulate):
				wantAct = None
			case BeforeContent(v.stage) && want == Ban:
				wantAct = None
			}
			if vd.Action != want || (g.domain != "" && vd.Domain != g.domain) {
				bad++
				if bad < 40 {
					t.Errorf("line %d %s: Classify(%q) = %v; want %v", g.line, v.name, v.reply, vd, want)
				}
				continue
			}
			rf := Refusal{Client: client, From: "alice@example.com", To: []string{"bob@gmail.com"}, Upstream: u}
			p := Policy{Rules: rules}
			pl := Decide(p, rf)
			// The same refusal on a retry (another session id, the
			// relay's other address, lines broken elsewhere, as Postfix
			// logs it) has the same key: it is acted on once. (A reply
			// on one line, and in another case, is another reply.)
			if v.stage == "data" && !strings.HasPrefix(v.name, "upper") && !strings.HasPrefix(v.name, "url") && !strings.Contains(v.name, " id3 ") && !strings.Contains(v.name, " id4 ") && !strings.HasSuffix(v.name, "one line") {
				k := fmt.Sprint(v.code, " ", want)
				if first, ok := keys[k]; !ok {
					keys[k] = pl.Key
				} else if first != pl.Key {
					bad++
					t.Errorf("line %d %s: Key %q differs from the first form's %q: the retry is acted on again", g.line, v.name, pl.Key, first)
				}
			}
			if pl.Action != wantAct {
				bad++
				if bad < 40 {
					t.Errorf("line %d %s: Decide(%q at %s) = %v (%s); want %v", g.line, v.name, v.reply, v.stage, pl.Action, pl.Why, wantAct)
				}
				continue
			}
			p.Welcome = gm22Welcome{client}
			if pl := Decide(p, rf); pl.Action == Ban || pl.Action == BlockDomain {
				bad++
				t.Errorf("line %d %s: welcomelisted client: Decide = %v", g.line, v.name, pl.Action)
				continue
			}
			good[g.want]++
		}
	}
	for _, a := range []Action{Ban, BlockDomain, Encapsulate, Pace, Alert, None} {
		t.Logf("%-12v replies %3d variants %6d as the doc says %6d", a, replies[a], total[a], good[a])
	}
}
