package route

import "testing"

// TestGd28DestinationUpstream: a destination says the host and port its
// sessions go to when the next hop names them (the relayhost, a
// transport's [host]:port), for the scheduler to match a proxy's upstream
// (deliver.ProxyPace); none for a next hop found by MX.
func TestGd28DestinationUpstream(t *testing.T) {
	dir := t.TempDir()
	tm := writeFile(t, dir, "transport", "a.example smtp:[192.0.2.1]:2525\nb.example smtp:[2001:db8::1]\nc.example smtp:c.example\n")
	d, err := NewDialer(DialerOptions{Routes: Options{RelayHost: "[smtp.example.net]:587", TransportMaps: []string{"texthash:" + tm}}, ConcurrencyLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range map[string]string{
		"x@a.example":     "192.0.2.1:2525",
		"x@b.example":     "[2001:db8::1]:25",
		"x@c.example":     "",
		"x@other.example": "smtp.example.net:587",
	} {
		if got := d.Route("", rcpt).Upstream; got != want {
			t.Errorf("Route(%q).Upstream = %q; want %q", rcpt, got, want)
		}
	}
}
