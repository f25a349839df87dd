package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/rdns"
)

// lo28Bans bans every client but the one named welcomed; names says
// whether a name may spare a client.
type lo28Bans struct {
	welcomed string
	names    bool
}

func (b lo28Bans) BannedClient(ip netip.Addr, name string) (enforce.BanEntry, bool) {
	if b.names && name != "" && name == b.welcomed {
		return enforce.BanEntry{}, false
	}
	return enforce.BanEntry{IP: ip, Until: time.Now().Add(time.Hour), Reason: "lo28 spam"}, true
}

func (b lo28Bans) DueClient(ip netip.Addr, name string) (enforce.BanEntry, bool) {
	return b.BannedClient(ip, name)
}

func (b lo28Bans) NamesSpare() bool { return b.names }

// lo28Namer names every client name, and counts its lookups.
type lo28Namer struct {
	name    string
	lookups atomic.Int32
}

func (n *lo28Namer) Lookup(context.Context, netip.Addr) rdns.Names {
	n.lookups.Add(1)
	return rdns.Names{Name: n.name, Reverse: n.name}
}

// TestLo28BannedClientWelcomedByName: a client banned before the
// welcomelist named it by host name was refused at connect, where only its
// address was known. It is now let in, and greeted once its verified name
// is known and welcomelisted; refused there (over implicit TLS too) when
// its name is not; and refused at once, without a lookup, when the list has
// no host-name pattern.
func TestLo28BannedClientWelcomedByName(t *testing.T) {
	for _, tc := range []struct {
		what        string
		name        string
		names, tls  bool
		want        string
		wantLookups int32
	}{
		{what: "welcomed", name: "mx.partner.test", names: true, want: "220 ", wantLookups: 1},
		{what: "welcomed over TLS", name: "mx.partner.test", names: true, tls: true, want: "220 ", wantLookups: 1},
		{what: "other name", name: "mx.stranger.test", names: true, want: "554 5.7.1 ", wantLookups: 1},
		{what: "other name over TLS", name: "mx.stranger.test", names: true, tls: true, want: "554 5.7.1 ", wantLookups: 1},
		{what: "no name", name: "", names: true, want: "554 5.7.1 ", wantLookups: 1},
		{what: "no patterns", name: "mx.partner.test", names: false, want: "554 5.7.1 ", wantLookups: 0},
	} {
		t.Run(tc.what, func(t *testing.T) {
			namer := &lo28Namer{name: tc.name}
			ts := startServer(t, func(o *Options) {
				o.Bans, o.Names = lo28Bans{welcomed: "mx.partner.test", names: tc.names}, namer
				if tc.tls {
					o.TLSConfig, o.ImplicitTLS = selfSigned(t), true
				}
			})
			var c net.Conn
			var err error
			if tc.tls {
				c, err = tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
			} else {
				c, err = net.Dial("tcp", ts.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if !strings.HasPrefix(line, tc.want) {
				t.Fatalf("greeting %q (%v); want %q...", line, err, tc.want)
			}
			if got := namer.lookups.Load(); got != tc.wantLookups {
				t.Errorf("%d name lookups; want %d", got, tc.wantLookups)
			}
			if tc.want == "220 " {
				return
			}
			if !strings.Contains(line, "is banned until") {
				t.Errorf("refusal %q; want the ban's words", line)
			}
			if rest, err := br.ReadString('\n'); err == nil {
				t.Errorf("after the refusal, heard %q; want the connection closed", rest)
			}
			if !waitLog(ts, "stage=connect") {
				t.Errorf("mail log:\n%s\nwant the refusal at connect", ts.log.String())
			}
		})
	}
}

// waitLog waits a few seconds for the mail log to hold want.
func waitLog(ts *testServer, want string) bool {
	for i := 0; i < 100; i++ {
		if strings.Contains(ts.log.String(), want) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
