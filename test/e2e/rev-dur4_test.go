package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevDur4KillVirtualBCC kills the relay with SIGKILL several times
// while clients load it, with virtual_alias_maps fanning the recipient out
// to two people and always_bcc adding an archive copy: the envelope the
// journal keeps is the one expansion and BCC made. Every acknowledged
// message must reach all three addresses, once or more.
func TestRevDur4KillVirtualBCC(t *testing.T) {
	dir := t.TempDir()
	virtual := writeFile(t, dir, "virtual", "crash@example.net  a@team.example, b@team.example\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf("connections = 3\n[rewrite]\nvirtual_alias_maps = [\"hash:%s\"]\nalways_bcc = \"archive@example.com\"\n", virtual))
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 200, 10, 3)
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool, "--no-bounces", "--config", cfg)
	var n atomic.Int64
	s := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		if n.Add(1)%5 == 0 {
			return revDur2Body(tag, 2500)
		}
		return revDur2Body(tag, 20)
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	s.start(3, stop, &wg)
	killLoop(6, 400*time.Millisecond, 1200*time.Millisecond, killRestart(t, r))
	time.Sleep(time.Second)
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	healthy.Store(true)
	acked := s.acknowledged(t, 20)
	revDur2Delivered(t, fake, acked, spool)
	got := map[string]map[string]bool{}
	for _, tx := range fake.Transactions() {
		if !tx.Accepted() {
			continue
		}
		tag, ok := revDur2Whole(tx.Data)
		if !ok {
			continue
		}
		if got[tag] == nil {
			got[tag] = map[string]bool{}
		}
		for _, rc := range tx.Rcpts {
			got[tag][rc.Addr] = true
		}
	}
	var short []string
	for tag := range acked {
		var to []string
		for a := range got[tag] {
			to = append(to, a)
		}
		sort.Strings(to)
		if strings.Join(to, ",") != "a@team.example,archive@example.com,b@team.example" {
			short = append(short, tag+": "+strings.Join(to, ","))
		}
	}
	if len(short) > 0 {
		t.Errorf("%d acknowledged messages did not reach every expanded recipient and the BCC: %v", len(short), first(short, 10))
	}
	t.Logf("%d acknowledged, %d retries", len(acked), s.retries)
	r.stop(20 * time.Second)
}

// TestRevDur4FilterGrowsEnvelopePastLimit: a filter that made the
// envelope longer than any reader takes (33 MiB of trailer lines) passed
// the server's check, which read only the first 16 MiB; the client heard
// 250, and the forwarder could not read the envelope ("envelope
// unreadable: not delivered until a restart quarantines it"). It is
// now a broken envelope: 451, and the client keeps the message.
func TestRevDur4FilterGrowsEnvelopePastLimit(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "grow.sh", "#!/bin/sh\n"+
		"head -c 34603008 /dev/zero | tr '\\0' n | fold -w 1000 | sed 's/^/X-Filter-Note: /' >> \"$2\"\nexit 0\n", 0o755)
	fake := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--interface", "127.0.0.1",
		"--spool-dir", spool, "--no-bounces", "--filter", script)
	tx, err := sendMail(r.addr(), "a@example.org", []string{"b@example.net"}, message("grown"))
	if err == nil || lastCode(tx)/100 != 4 {
		t.Errorf("a filter grew the envelope past what can be read: %v %q; want 451, the client keeping the message", err, tx.Final)
	}
	r.stop(10 * time.Second)
}
