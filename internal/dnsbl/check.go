package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// retransmit is how long Check waits for a UDP answer before asking again.
const retransmit = time.Second

// Hit is one zone that lists the client.
type Hit struct {
	Zone string
	// Codes are the A records that listed the client, such as 127.0.0.2.
	Codes []netip.Addr
	// Text is the zone's TXT record for the client, if it had one in time;
	// several records are joined with "; ".
	Text string
}

// Failure is a zone that gave no usable answer.
type Failure struct {
	Zone string
	Err  error
	// NoAnswer is true if the zone did not answer in time or its server
	// could not be reached; false if it answered with an error.
	NoAnswer bool
}

// Result is the verdict of the lists on one client address.
type Result struct {
	// Listed reports that at least Config.Threshold zones list the client,
	// or that the lookups timed out and Config.FailClosed is set. It is
	// never set with Threshold 0.
	Listed bool
	// Hits are the zones that list the client, in Config order. Once the
	// outcome is certain Check stops waiting, so a zone that was slow to
	// answer may be missing.
	Hits []Hit
	// TimedOut reports that zones that gave no answer in time (or could
	// not be reached) could have changed the outcome, so Listed is
	// FailClosed's choice. With Threshold 0 it reports any such zone.
	TimedOut bool
	// Failures are the zones without a usable answer, for the log.
	Failures []Failure
}

// RejectText returns a reply text like Postfix's reject_rbl_client, naming
// the first listing zone and its TXT record:
//
//	Service unavailable; Client host [192.0.2.1] blocked using zen.example; see https://...
//
// The TXT text is cut so that the reply line stays within 512 octets
// (maxReplyText). Postfix sends it with 554 5.7.1. For a client listed only because the
// lookups timed out (FailClosed), it names the zones that did not answer.
func (r Result) RejectText(ip netip.Addr) string {
	return r.ReplyText("Client host", ip.Unmap().String())
}

// ReplyText is RejectText for what Postfix's reply names in its place
// (default_rbl_reply's $rbl_class [$rbl_what]): "Sender address",
// "Helo command" and the like, with the address or name that is listed.
func (r Result) ReplyText(class, what string) string {
	host := "Service unavailable; " + class + " [" + what + "]"
	if len(r.Hits) > 0 {
		s := host + " blocked using " + r.Hits[0].Zone
		if r.Hits[0].Text != "" {
			s += "; " + clipText(r.Hits[0].Text, maxReplyText-len(s)-2)
		}
		return s
	}
	var zones []string
	for _, f := range r.Failures {
		if f.NoAnswer {
			zones = append(zones, f.Zone)
		}
	}
	return host + " blocked: no answer from " + strings.Join(zones, ", ")
}

// maxReplyText bounds RejectText: with "554 5.7.1 " in front and CRLF
// behind, the reply line stays within RFC 5321's 512 octets (section
// 4.5.3.1.5) however long a list's TXT records are. Postfix likewise cuts
// them at 500 bytes.
const maxReplyText = 512 - len("554 5.7.1 ") - len("\r\n")

// clipText cuts s to at most n bytes, at a character boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Checker looks addresses up in the lists of one Config. It is safe for
// concurrent use and holds no connections between checks.
type Checker struct {
	cfg    Config
	server string
	names  nameCache
}

// nameCache keeps CheckName's results for a while, as Postfix's smtpd
// keeps DNS list answers (smtpd_rbl_cache): the restrictions run for
// every recipient, with the same sender, HELO and client names, and a
// client must not multiply the queries to a list, nor the wait for one
// that does not answer, by its number of recipients. An answer with a
// failure is kept for less time, so that a list that comes back is
// asked again soon.
type nameCache struct {
	mu sync.Mutex
	m  map[string]nameEntry
}

type nameEntry struct {
	res     Result
	expires time.Time
}

const (
	nameCacheTTL     = time.Minute
	nameCacheFailTTL = 10 * time.Second
	nameCacheMax     = 1000
)

func (nc *nameCache) get(name string, now time.Time) (Result, bool) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	e, ok := nc.m[name]
	if !ok || now.After(e.expires) {
		return Result{}, false
	}
	return e.res, true
}

func (nc *nameCache) put(name string, res Result, now time.Time) {
	ttl := nameCacheTTL
	if len(res.Failures) > 0 || res.TimedOut {
		ttl = nameCacheFailTTL
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if len(nc.m) >= nameCacheMax {
		for k, e := range nc.m {
			if now.After(e.expires) {
				delete(nc.m, k)
			}
		}
		if len(nc.m) >= nameCacheMax {
			nc.m = nil
		}
	}
	if nc.m == nil {
		nc.m = make(map[string]nameEntry)
	}
	nc.m[name] = nameEntry{res: res, expires: now.Add(ttl)}
}

// New returns a Checker for cfg. With cfg.Server empty it reads
// /etc/resolv.conf once, now.
func New(cfg Config) *Checker {
	c := &Checker{cfg: cfg, server: cfg.Server}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	if c.server == "" {
		c.server = "127.0.0.1:53"
		if rc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(rc.Servers) > 0 {
			c.server = net.JoinHostPort(rc.Servers[0], rc.Port)
		}
	}
	return c
}

// Server returns the DNS server the Checker asks.
func (c *Checker) Server() string { return c.server }

// zoneAnswer is one zone's outcome (hit, fail, or neither for "not
// listed"), or, with isText, the TXT text of a zone that listed the client.
type zoneAnswer struct {
	i      int
	hit    *Hit
	fail   *Failure
	isText bool
	text   string
}

// Check looks ip up in every zone in parallel and returns once the outcome
// is certain or Config.Timeout has passed. It returns an error only for an
// invalid ip or when ctx ends first. The lookups it starts end when it
// returns.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) (Result, error) {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return Result{}, errors.New("dnsbl: invalid address")
	}
	return c.check(ctx, reversed(ip))
}

// CheckName looks a domain name up in every zone, as Postfix's
// reject_rhsbl_* and permit_rhswl_client do (RFC 5782 section 2.3):
// bad.example in dbl.example is asked as bad.example.dbl.example.
func (c *Checker) CheckName(ctx context.Context, domain string) (Result, error) {
	domain = strings.TrimSuffix(domain, ".")
	if strings.ContainsFunc(domain, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// An SMTPUTF8 sender's or recipient's domain in U-labels: the
		// lists list the A-label form, which Postfix asks for
		// (midna_domain_to_ascii); the UTF-8 bytes would never match.
		if a, err := idna.Lookup.ToASCII(domain); err == nil {
			domain = a
		}
	}
	domain = strings.ToLower(domain)
	if !isDomain(domain) {
		// Not a host name (bad characters, a label or the whole too
		// long, a last label of digits): no list lists it, and nothing
		// is asked, as Postfix's find_dnsxl_domain returns DUNNO.
		// Such names are the client's choice: no error to log.
		return Result{}, nil
	}
	if res, ok := c.names.get(domain, time.Now()); ok {
		return res, nil
	}
	res, err := c.check(ctx, domain+".")
	if err == nil {
		c.names.put(domain, res, time.Now())
	}
	return res, err
}

// check asks every zone for prefix+zone.
func (c *Checker) check(ctx context.Context, prefix string) (Result, error) {
	zones := c.cfg.Zones
	if len(zones) == 0 {
		return Result{}, nil
	}
	qctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	// Each zone sends its answer and, if it lists the client, then its
	// text; the buffer holds both, so senders never block. The goroutines
	// end with qctx, at the latest when Check returns.
	answers := make(chan zoneAnswer, 2*len(zones))
	for i, z := range zones {
		go c.checkZone(qctx, i, z, prefix, answers)
	}

	// The outcome is certain once enough zones list the client, or when
	// even the zones still to answer and those that gave no answer (which
	// FailClosed counts as listing) could not make up the threshold. Then
	// only the texts of the listings are awaited, within the same timeout.
	threshold := c.cfg.Threshold
	hits := make([]*Hit, len(zones))
	pending := make([]bool, len(zones))
	for i := range pending {
		pending[i] = true
	}
	var res Result
	nHits, nPending, noAnswer, textsDue := 0, len(zones), 0, 0
	decided, deadline := false, false
	for (nPending > 0 && !decided) || textsDue > 0 {
		var a zoneAnswer
		select {
		case a = <-answers:
		case <-qctx.Done():
			deadline = true
		}
		if deadline {
			break
		}
		if a.isText {
			hits[a.i].Text = a.text
			textsDue--
			continue
		}
		nPending--
		pending[a.i] = false
		switch {
		case a.hit != nil:
			hits[a.i] = a.hit
			nHits++
			textsDue++
		case a.fail != nil:
			res.Failures = append(res.Failures, *a.fail)
			if a.fail.NoAnswer {
				noAnswer++
			}
		}
		if threshold > 0 && (nHits >= threshold || nHits+nPending+noAnswer < threshold) {
			decided = true
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("dnsbl: %w", err)
	}
	for i := range zones {
		if hits[i] != nil {
			res.Hits = append(res.Hits, *hits[i])
		}
		if deadline && !decided && pending[i] {
			res.Failures = append(res.Failures, Failure{Zone: zones[i].Name, NoAnswer: true,
				Err: fmt.Errorf("no answer within %v", c.cfg.Timeout)})
			noAnswer++
		}
	}
	switch {
	case threshold == 0:
		res.TimedOut = noAnswer > 0
	case nHits >= threshold:
		res.Listed = true
	case nHits+noAnswer >= threshold:
		res.TimedOut = true
		res.Listed = c.cfg.FailClosed
	}
	return res, nil
}

// checkZone asks one zone for prefix and sends the outcome to out, then,
// if the zone lists it, the zone's text.
func (c *Checker) checkZone(ctx context.Context, i int, z Zone, prefix string, out chan<- zoneAnswer) {
	name := prefix + dns.Fqdn(z.Name)
	a := c.lookup(ctx, z, name)
	a.i = i
	out <- a
	if a.hit == nil {
		return
	}
	// The text is a nicety: without it in time, the client is still listed.
	var texts []string
	if r, err := c.exchange(ctx, name, dns.TypeTXT); err == nil && r.Rcode == dns.RcodeSuccess {
		for _, rr := range r.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				texts = append(texts, printable(unescapeTXT(strings.Join(t.Txt, ""))))
			}
		}
	}
	out <- zoneAnswer{i: i, isText: true, text: strings.Join(texts, "; ")}
}

// lookup asks for the A records of name and judges them for zone z.
func (c *Checker) lookup(ctx context.Context, z Zone, name string) zoneAnswer {
	r, err := c.exchange(ctx, name, dns.TypeA)
	if err != nil {
		return zoneAnswer{fail: &Failure{Zone: z.Name, Err: err, NoAnswer: true}}
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return zoneAnswer{fail: &Failure{Zone: z.Name, Err: fmt.Errorf("answer %s", dns.RcodeToString[r.Rcode])}}
	}
	var codes []netip.Addr
	errorCodes := 0
	for _, rr := range r.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(a.A)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		if z.lists(addr) {
			codes = append(codes, addr)
		} else if b := addr.As4(); addr.Is4() && b[0] == 127 && b[1] == 255 && b[2] == 255 {
			errorCodes++
		}
	}
	switch {
	case len(codes) > 0:
		return zoneAnswer{hit: &Hit{Zone: z.Name, Codes: codes}}
	case errorCodes > 0:
		return zoneAnswer{fail: &Failure{Zone: z.Name,
			Err: errors.New("answer is an error code (127.255.255.x): the list refuses this resolver's queries")}}
	}
	return zoneAnswer{}
}

// exchange asks c.server one question over UDP, asking again every
// retransmit interval, and over TCP if the answer was truncated.
func (c *Checker) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	udp := &dns.Client{Net: "udp"}
	co, err := udp.DialContext(ctx, c.server)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	// miekg/dns obeys ctx's deadline but not its cancellation.
	stop := context.AfterFunc(ctx, func() { co.SetDeadline(time.Now()) })
	defer stop()
	var r *dns.Msg
	for {
		actx, cancel := context.WithTimeout(ctx, retransmit)
		r, _, err = udp.ExchangeWithConnContext(actx, m, co)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
	}
	if !r.Truncated {
		return r, nil
	}
	tcp := &dns.Client{Net: "tcp"}
	tco, err := tcp.DialContext(ctx, c.server)
	if err != nil {
		return nil, err
	}
	defer tco.Close()
	stopTCP := context.AfterFunc(ctx, func() { tco.SetDeadline(time.Now()) })
	defer stopTCP()
	r, _, err = tcp.ExchangeWithConnContext(ctx, m, tco)
	return r, err
}

// queryName returns the DNSBL name for ip in zone: 4.3.2.1.zone. for
// 1.2.3.4, and the 32 nibbles in reverse for IPv6 (RFC 5782 2.4).
func queryName(ip netip.Addr, zone string) string { return reversed(ip) + dns.Fqdn(zone) }

// reversed is ip as a DNS list's query begins with it: "4.3.2.1." for
// 1.2.3.4, the nibbles in reverse for IPv6.
func reversed(ip netip.Addr) string {
	var b strings.Builder
	if ip.Is4() {
		a := ip.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.", a[3], a[2], a[1], a[0])
	} else {
		a := ip.As16()
		const hex = "0123456789abcdef"
		for i := len(a) - 1; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
	}
	return b.String()
}

// unescapeTXT undoes miekg/dns's presentation escapes (\" \\ \DDD).
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			b.WriteByte((s[i+1]-'0')*100 + (s[i+2]-'0')*10 + (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// printable replaces control characters, which must not reach an SMTP
// reply or a log line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
