package harness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNSServer is a small DNS server for tests, on 127.0.0.1 over UDP and TCP
// (the same port). It answers every name from its own records, as if
// authoritative for the whole tree: a name it has no records for is
// NXDOMAIN, a name with records of other types only is an empty NOERROR
// answer, and a CNAME is followed within its records. UDP answers larger
// than the client allows are truncated (TC), so clients retry over TCP.
//
// Records are given as zone-file text to StartDNS and changed at run time
// with Set. Faults: SetDrop and SetDropFunc make it ignore queries (to test
// timeouts),
// SetRcode answers a name with an error code, SetDelay delays every answer.
// Queries and Questions report what it was asked.
type DNSServer struct {
	t    testing.TB
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu        sync.Mutex
	records   map[string][]dns.RR           // guarded by mu: by lower-case FQDN
	rcodes    map[string]int                // guarded by mu: forced answer codes by FQDN
	drop      []string                      // guarded by mu: zones whose queries are ignored
	dropFunc  func(name, qtype string) bool // guarded by mu: more queries to ignore
	delay     time.Duration                 // guarded by mu
	questions []string                      // guarded by mu: "name TYPE" of each query
}

// StartDNS starts a DNSServer with the records in zone, which is zone-file
// text (RFC 1035 master file format; names not ending in a dot are
// relative to the root, the TTL may be left out), for example:
//
//	2.0.0.127.zen.example.    A    127.0.0.2
//	2.0.0.127.zen.example.    TXT  "listed, see https://example.com"
//	example.com.              MX   10 mx.example.com.
//
// The server stops when the test ends.
func StartDNS(t testing.TB, zone string) *DNSServer {
	t.Helper()
	s := &DNSServer{t: t, records: map[string][]dns.RR{}, rcodes: map[string]int{}}
	if err := s.add(zone); err != nil {
		t.Fatalf("harness: StartDNS: %v", err)
	}

	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// UDP and TCP share a port number; another process may hold the TCP
	// one, so try a few UDP ports.
	for range 20 {
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: StartDNS: %v", err)
		}
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("harness: StartDNS: no port free for both UDP and TCP: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(s.serveDNS)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: handler, NotifyStartedFunc: notify,
		ReadTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go srv.ActivateAndServe() // ends at Shutdown
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("harness: StartDNS: server did not start")
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.udp.ShutdownContext(ctx)
		s.tcp.ShutdownContext(ctx)
	})
	return s
}

// Addr returns the server's address, 127.0.0.1:port, for UDP and TCP.
func (s *DNSServer) Addr() string { return s.addr }

// Add adds the records in zone-file text, as StartDNS takes them.
func (s *DNSServer) Add(zone string) {
	s.t.Helper()
	if err := s.add(zone); err != nil {
		s.t.Fatalf("harness: DNSServer.Add: %v", err)
	}
}

func (s *DNSServer) add(zone string) error {
	zp := dns.NewZoneParser(strings.NewReader("$TTL 60\n"+zone), ".", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
	return nil
}

// Set replaces the records of one name and type with values, written as in
// a zone file ("127.0.0.2", "10 mx.example.com."), except that TXT values
// are plain text, split into 255-byte strings as needed. Set with no values
// removes them. The type is a name such as "A", "AAAA", "MX", "TXT", "PTR",
// "CNAME".
func (s *DNSServer) Set(name, rrtype string, values ...string) {
	s.t.Helper()
	fqdn := strings.ToLower(dns.Fqdn(name))
	t, ok := dns.StringToType[strings.ToUpper(rrtype)]
	if !ok {
		s.t.Fatalf("harness: DNSServer.Set: unknown type %q", rrtype)
	}
	var rrs []dns.RR
	for _, v := range values {
		if t == dns.TypeTXT {
			rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: fqdn, Rrtype: t, Class: dns.ClassINET, Ttl: 60},
				Txt: splitTXT(v)})
			continue
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s 60 IN %s %s", fqdn, strings.ToUpper(rrtype), v))
		if err != nil || rr == nil {
			s.t.Fatalf("harness: DNSServer.Set(%q, %q, %q): %v", name, rrtype, v, err)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := rrs
	for _, rr := range s.records[fqdn] {
		if rr.Header().Rrtype != t {
			kept = append(kept, rr)
		}
	}
	if len(kept) == 0 {
		delete(s.records, fqdn)
	} else {
		s.records[fqdn] = kept
	}
}

// splitTXT cuts v into the 255-byte strings of a TXT record, each in the
// escaped form miekg/dns keeps them in (\" \\ and \DDD).
func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, escapeTXT(v[:255]))
		v = v[255:]
	}
	return append(out, escapeTXT(v))
}

func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SetRcode makes queries for name (any type) answer rcode, such as
// dns.RcodeServerFailure; dns.RcodeSuccess restores normal answers.
func (s *DNSServer) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fqdn := strings.ToLower(dns.Fqdn(name))
	if rcode == dns.RcodeSuccess {
		delete(s.rcodes, fqdn)
	} else {
		s.rcodes[fqdn] = rcode
	}
}

// SetDrop makes the server ignore queries for names at or under any of
// zones ("." for every query), so that clients time out. SetDrop with no
// zones answers everything again. Dropped queries are still counted.
func (s *DNSServer) SetDrop(zones ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = s.drop[:0]
	for _, z := range zones {
		s.drop = append(s.drop, strings.ToLower(dns.Fqdn(z)))
	}
}

// SetDropFunc makes the server also ignore the queries for which drop
// returns true; it is given the lower-case FQDN and the type name ("TXT").
// nil removes it.
func (s *DNSServer) SetDropFunc(drop func(name, qtype string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropFunc = drop
}

// SetDelay delays every answer by d.
func (s *DNSServer) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Queries returns how many queries the server has received, dropped ones
// included.
func (s *DNSServer) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.questions)
}

// Questions returns every question received, in order, as "name TYPE"
// ("2.0.0.127.zen.example. A").
func (s *DNSServer) Questions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.questions...)
}

// serveDNS answers one query. miekg/dns runs it on a goroutine of its own
// for each query.
func (s *DNSServer) serveDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)

	s.mu.Lock()
	s.questions = append(s.questions, name+" "+dns.TypeToString[q.Qtype])
	dropped := s.dropFunc != nil && s.dropFunc(name, dns.TypeToString[q.Qtype])
	for _, z := range s.drop {
		if dns.IsSubDomain(z, name) {
			dropped = true
		}
	}
	delay := s.delay
	rcode, forced := s.rcodes[name]
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if forced {
		m.Rcode = rcode
	} else {
		m.Answer, m.Rcode = s.lookup(name, q.Qtype)
	}
	s.mu.Unlock()

	if dropped {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if w.LocalAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// lookup finds the answer for name and qtype, following CNAMEs. The caller
// holds s.mu.
func (s *DNSServer) lookup(name string, qtype uint16) ([]dns.RR, int) {
	var answer []dns.RR
	for range 8 {
		rrs, exists := s.records[name]
		if !exists {
			if len(answer) > 0 {
				return answer, dns.RcodeSuccess
			}
			return nil, dns.RcodeNameError
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qtype || qtype == dns.TypeANY:
				answer = append(answer, dns.Copy(rr))
				found = true
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		if found || cname == nil {
			return answer, dns.RcodeSuccess
		}
		answer = append(answer, dns.Copy(cname))
		name = strings.ToLower(cname.Target)
	}
	return answer, dns.RcodeSuccess
}
