package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The session grammar of TestDiff23AgainstPostfix: seeded, deterministic
// client sessions that mix valid and malformed commands, odd addresses and
// parameters, long lines, pipelining and DATA/BDAT text with dot-stuffing
// and smuggling edge cases.

// d23Step is what the client does at one point of a session: write send,
// then read replies replies. A content step (text) is written only when
// the reply before it was a 354 (DATA); for a BDAT step the chunk is part
// of send.
type d23Step struct {
	kind    string // what the step exercises, for grouping differences
	send    []byte
	replies int
	content bool // DATA text: sent only after a 354
}

type d23Session struct {
	n       int
	trusted bool   // from 127.0.0.1 (mynetworks) or 127.0.0.2
	early   []byte // written before the banner is read
	steps   []d23Step
	end     string // "quit", "halfclose" or "drop"
}

type d23Gen struct {
	r *rand.Rand
	n int
}

func (g *d23Gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *d23Gen) chance(p float64) bool { return g.r.Float64() < p }

// rep makes a string of n octets from the alphabet a-z.
func d23Rep(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteByte(byte('a' + i%26))
	}
	return b.String()
}

// longAddr returns an address of n octets in all (local@domain).
func d23LongAddr(n int, domain string) string {
	local := n - len(domain) - 1
	if local < 1 {
		local = 1
	}
	return d23Rep(local) + "@" + domain
}

func d23DomainOf(n int) string {
	// labels of at most 63 octets under relay.example, n octets in all
	var parts []string
	rest := n - len(".relay.example")
	for rest > 0 {
		l := min(rest, 63)
		if rest-l == 1 {
			l-- // no empty label
		}
		parts = append(parts, d23Rep(l))
		rest -= l + 1
	}
	return strings.Join(append(parts, "relay.example"), ".")
}

func (g *d23Gen) helo() d23Step {
	verb := g.pick("EHLO", "EHLO", "EHLO", "HELO", "ehlo", "Helo")
	arg := g.pick("client.example", "client.example", "[127.0.0.1]", "[IPv6:::1]", "", "bad_name.example",
		"-bad.example", "a..b", "client.example junk", "[300.1.1.1]", "[IPv6:zz]", "xn--bcher-kva.example",
		"b\xc3\xbccher.example", d23Rep(64)+".example", d23Rep(300), "[127.0.0.1", "localhost")
	line := verb
	if arg != "" || g.chance(0.3) {
		line += " " + arg
	}
	return d23Step{kind: "helo:" + d23Kind(verb, arg), send: []byte(line + "\r\n"), replies: 1}
}

// d23Kind is a short label for a step's argument, so that differences
// group by what was sent.
func d23Kind(parts ...string) string {
	s := strings.Join(parts, " ")
	if len(s) > 40 {
		s = fmt.Sprintf("%s...(%d)", s[:24], len(s))
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

func (g *d23Gen) addr(rcpt bool) string {
	dom := "relay.example"
	if !rcpt {
		dom = "sender.example"
	}
	switch g.r.IntN(30) {
	case 0:
		return "<>"
	case 1:
		return "user@" + dom // no brackets
	case 2:
		return "< user@" + dom + ">"
	case 3:
		return "<user@" + dom + "> junk"
	case 4:
		return "<\"a b\"@" + dom + ">"
	case 5:
		return "<@route.example,@r2.example:user@" + dom + ">"
	case 6:
		return "<user@[127.0.0.1]>"
	case 7:
		return "<user@[IPv6:::1]>"
	case 8:
		return "<user@[IPv6:2001:db8::1]>"
	case 9:
		return "<" + d23Rep(64) + "@" + dom + ">"
	case 10:
		return "<" + d23Rep(65) + "@" + dom + ">"
	case 11:
		n := []int{254, 255, 256, 1000}[g.r.IntN(4)]
		return "<" + d23LongAddr(n, d23DomainOf(min(n-2, 250))) + ">"
	case 12:
		return "<user@" + d23DomainOf(g.pick2(253, 254, 255, 256)) + ">"
	case 13:
		return "<us\xc3\xa9r@" + dom + ">"
	case 14:
		return "<user@other.example>"
	case 15:
		return "<user>"
	case 16:
		return "<user@" + dom
	case 17:
		return "<<user@" + dom + ">>"
	case 18:
		return "<a@b@" + dom + ">"
	case 19:
		return "<\"a@b\"@" + dom + ">"
	case 20:
		return "<Postmaster>"
	case 21:
		return "<USER@" + strings.ToUpper(dom) + ">"
	case 22:
		return "<user@" + dom + ".>"
	case 23:
		return "<user@-bad." + dom + ">"
	case 24:
		return "<first.last@" + dom + ">"
	case 25:
		return "<.user@" + dom + ">"
	default:
		return "<user" + fmt.Sprint(g.r.IntN(5)) + "@" + dom + ">"
	}
}

func (g *d23Gen) pick2(xs ...int) int { return xs[g.r.IntN(len(xs))] }

func (g *d23Gen) mailParams() string {
	var ps []string
	for range g.r.IntN(3) {
		ps = append(ps, g.pick("SIZE=100", "SIZE=100000", "SIZE=100001", "SIZE=0", "SIZE=-1", "SIZE=99999999999999999999",
			"SIZE=abc", "SIZE", "BODY=8BITMIME", "BODY=7BIT", "BODY=BINARYMIME", "BODY=bogus", "SMTPUTF8", "SMTPUTF8=yes",
			"RET=HDRS", "RET=FULL", "RET=bogus", "ENVID=abc+2Bdef", "ENVID=a+zz", "ENVID=a b", "ENVID="+d23Rep(101),
			"FOO=bar", "AUTH=<>", "AUTH=", "size=100", "X-UNKNOWN"))
	}
	if len(ps) == 2 && g.chance(0.2) {
		ps[1] = ps[0] // repeated
	}
	return strings.Join(ps, " ")
}

func (g *d23Gen) rcptParams() string {
	if g.chance(0.7) {
		return ""
	}
	return g.pick("NOTIFY=SUCCESS,FAILURE", "NOTIFY=NEVER", "NOTIFY=SUCCESS,NEVER", "NOTIFY=bogus",
		"ORCPT=rfc822;user@relay.example", "ORCPT=rfc822;a+2Bb@relay.example", "ORCPT=rfc822;a+zzb", "ORCPT=bogus",
		"ORCPT=rfc822;"+d23Rep(501), "FOO=bar", "NOTIFY=NEVER NOTIFY=NEVER", "SIZE=100")
}

func (g *d23Gen) mail() d23Step {
	sep := g.pick("MAIL FROM:", "MAIL FROM:", "MAIL FROM:", "mail from:", "MAIL FROM: ", "MAIL  FROM:", "MAIL FROM ", "MAIL ")
	a := g.addr(false)
	p := g.mailParams()
	line := sep + a
	if p != "" {
		line += " " + p
	}
	return d23Step{kind: "mail:" + d23Kind(sep, a, p), send: []byte(line + "\r\n"), replies: 1}
}

func (g *d23Gen) rcpt() d23Step {
	sep := g.pick("RCPT TO:", "RCPT TO:", "RCPT TO:", "rcpt to:", "RCPT TO: ", "RCPT TO ")
	a := g.addr(true)
	p := g.rcptParams()
	line := sep + a
	if p != "" {
		line += " " + p
	}
	return d23Step{kind: "rcpt:" + d23Kind(sep, a, p), send: []byte(line + "\r\n"), replies: 1}
}

// text builds DATA content for session n, with the final dot. The first
// line is the tag the upstream copies are matched by.
func (g *d23Gen) text(n int) (string, []byte) {
	var b strings.Builder
	fmt.Fprintf(&b, "X-Diff: %d\r\nSubject: s%d\r\n\r\n", n, n)
	kinds := []string{}
	for range 1 + g.r.IntN(3) {
		k := g.pick("plain", "plain", "dot", "dotdot", "onlydot-stuffed", "lf.lf", "cr.crlf", "crlf.lf", "lf.crlf",
			"barecr", "barelf", "nul", "8bit", "len998", "len1000", "len2000", "len10000", "cr-cr-lf", "dot-space", "trailing-dot", "dot-crcrlf", "dotdot-crcrlf")
		kinds = append(kinds, k)
		switch k {
		case "plain":
			b.WriteString("hello world\r\n")
		case "dot":
			b.WriteString("..leading dot\r\n")
		case "dotdot":
			b.WriteString("...two\r\n")
		case "onlydot-stuffed":
			b.WriteString("..\r\n")
		case "lf.lf":
			b.WriteString("a\n.\nMAIL FROM:<smuggled@sender.example>\r\n")
		case "cr.crlf":
			b.WriteString("a\r.\r\nRCPT TO:<smuggled@relay.example>\r\n")
		case "crlf.lf":
			b.WriteString("a\r\n.\nb\r\n")
		case "lf.crlf":
			b.WriteString("a\n.\r\nb\r\n")
		case "barecr":
			b.WriteString("x\ry\r\n")
		case "barelf":
			b.WriteString("x\ny\r\n")
		case "nul":
			b.WriteString("x\x00y\r\n")
		case "8bit":
			b.WriteString("caf\xc3\xa9 \xff\r\n")
		case "len998":
			b.WriteString(d23Rep(998) + "\r\n")
		case "len1000":
			b.WriteString(d23Rep(1000) + "\r\n")
		case "len2000":
			b.WriteString(d23Rep(2000) + "\r\n")
		case "len10000":
			b.WriteString(d23Rep(10000) + "\r\n")
		case "cr-cr-lf":
			b.WriteString("x\r\r\n")
		case "dot-space":
			b.WriteString(". \r\n")
		case "trailing-dot":
			b.WriteString("end.\r\n")
		case "dot-crcrlf":
			b.WriteString(".\r\r\nRSET\r\n")
		case "dotdot-crcrlf":
			b.WriteString("..\r\r\n")
		}
	}
	if g.chance(0.05) {
		b.WriteString(d23Rep(101000) + "\r\n") // over the size limit
		kinds = append(kinds, "oversize")
	}
	b.WriteString(".\r\n")
	return strings.Join(kinds, ","), []byte(b.String())
}

func (g *d23Gen) misc() d23Step {
	line := g.pick("RSET", "NOOP", "NOOP arg", "VRFY user@relay.example", "VRFY", "EXPN list", "HELP", "HELP MAIL",
		"FOOBAR", "", "rset", "STARTTLS", "STARTTLS x", "AUTH PLAIN AGFAAGI=", "AUTH LOGIN", "ETRN relay.example",
		"TURN", "RSET junk", "DATA junk", "NOOP\x00x", "NO\rOP", "NOOP \xff", "QUIT junk",
		"NOOP "+d23Rep(505), "NOOP "+d23Rep(506), "X"+d23Rep(507), "NOOP "+d23Rep(993), "NOOP "+d23Rep(1995), "NOOP "+d23Rep(9995), "XCLIENT NAME=x")
	return d23Step{kind: "cmd:" + d23Kind(line), send: []byte(line + "\r\n"), replies: 1}
}

func (g *d23Gen) session() (s d23Session) {
	g.n++
	s = d23Session{n: g.n, trusted: g.chance(0.6), end: "quit"}
	if g.chance(0.03) {
		s.early = []byte("EHLO early.example\r\n")
		s.steps = append(s.steps, d23Step{kind: "early-ehlo", replies: 1})
	}
	prefix := ""
	if g.chance(0.9) {
		s.steps = append(s.steps, g.helo())
	} else {
		prefix = "nohelo "
	}
	defer func() {
		for i := range s.steps {
			s.steps[i].kind = prefix + s.steps[i].kind
		}
	}()
	for range 1 + g.r.IntN(3) {
		switch x := g.r.IntN(10); {
		case x < 6:
			s.steps = append(s.steps, g.transaction(s.n)...)
		case x < 7:
			s.steps = append(s.steps, g.pipelined(s.n))
		case x < 8:
			s.steps = append(s.steps, g.bdat(s.n)...)
		default:
			s.steps = append(s.steps, g.misc())
		}
	}
	switch x := g.r.IntN(20); {
	case x == 0:
		s.end = "halfclose"
	case x == 1:
		s.end = "drop"
	}
	return s
}

func (g *d23Gen) transaction(n int) []d23Step {
	var st []d23Step
	if g.chance(0.9) {
		st = append(st, g.mail())
	}
	for range g.r.IntN(7) {
		st = append(st, g.rcpt())
	}
	if g.chance(0.2) {
		st = append(st, g.misc())
	}
	if g.chance(0.85) {
		verb := g.pick("DATA", "DATA", "DATA", "data", "DATA ")
		st = append(st, d23Step{kind: "data:" + verb, send: []byte(verb + "\r\n"), replies: 1})
		k, text := g.text(n)
		st = append(st, d23Step{kind: "text:" + k, send: text, replies: 1, content: true})
	}
	return st
}

// pipelined sends a whole transaction in one write, as RFC 2920 allows
// (the text after DATA's 354 in a step of its own).
func (g *d23Gen) pipelined(n int) d23Step {
	lines := []string{"RSET", "MAIL FROM:<p" + fmt.Sprint(n) + "@sender.example>"}
	k := "pipe"
	for range 1 + g.r.IntN(3) {
		r := g.rcpt()
		lines = append(lines, strings.TrimSuffix(string(r.send), "\r\n"))
		k += "|" + r.kind
	}
	if g.chance(0.3) {
		lines = append(lines, "NOOP")
	}
	return d23Step{kind: k, send: []byte(strings.Join(lines, "\r\n") + "\r\n"), replies: len(lines)}
}

// bdat sends a transaction with BDAT chunks (RFC 3030).
func (g *d23Gen) bdat(n int) []d23Step {
	st := []d23Step{{kind: "mail:bdat", send: []byte(fmt.Sprintf("MAIL FROM:<b%d@sender.example>%s\r\n", n,
		g.pick("", " BODY=BINARYMIME", " BODY=8BITMIME"))), replies: 1}}
	for range 1 + g.r.IntN(2) {
		st = append(st, g.rcpt())
	}
	tk, text := g.text(n)
	text = text[:len(text)-3] // BDAT carries no final dot
	cut := g.r.IntN(len(text) + 1)
	switch g.r.IntN(6) {
	case 0:
		st = append(st, d23Step{kind: "bdat:bad-size", send: []byte("BDAT 0x10\r\n"), replies: 1})
	case 1:
		st = append(st, d23Step{kind: "bdat:bad-arg", send: []byte(fmt.Sprintf("BDAT %d MORE\r\n%s", len(text), text)), replies: 1})
	case 2:
		st = append(st, d23Step{kind: "bdat:then-data", send: []byte(fmt.Sprintf("BDAT %d\r\n%s", cut, text[:cut])), replies: 1},
			d23Step{kind: "bdat:data-after", send: []byte("DATA\r\n"), replies: 1})
	default:
		st = append(st, d23Step{kind: "bdat:chunk[" + tk + "]", send: []byte(fmt.Sprintf("BDAT %d\r\n%s", cut, text[:cut])), replies: 1},
			d23Step{kind: "bdat:last[" + tk + "]", send: []byte(fmt.Sprintf("BDAT %d LAST\r\n%s", len(text)-cut, text[cut:])), replies: 1})
	}
	return st
}
