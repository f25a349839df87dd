package postfixlog

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// pfe19bUnsolicited is Gmail's refusal of spam, as Postfix logs it.
const pfe19bUnsolicited = "dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. For more information, go to 550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError x - gsmtp (in reply to end of DATA command))"

// pfe19bFilterLog is Postfix's simple content filter (FILTER_README): a
// spammer's message 4C2B7985118 handed to the pipe service "filter",
// whose script re-injected it with sendmail as user 998 (5D0E1985119);
// meanwhile, and an hour later, user 1000 submitted mail with the same
// Message-ID as the spam. Gmail refuses every copy as unsolicited. The
// pickup lines come at offsets pick (seconds after the pipe line; < 0:
// before it).
func pfe19bFilterLog(msgid string, pick int) []string {
	return pfe19bFilterLogAt(time.Date(0, 12, 6, 14, 0, 10, 0, time.UTC), msgid, pick)
}

// pfe19bFilterLogAt is pfe19bFilterLog with the pipe line at base.
func pfe19bFilterLogAt(base time.Time, msgid string, pick int) []string {
	at := func(s int) string {
		return base.Add(time.Duration(s) * time.Second).Format(time.Stamp)
	}
	var lines []string
	add := func(s int, f string, a ...any) { lines = append(lines, at(s)+" mx1 "+fmt.Sprintf(f, a...)) }
	add(-3, "postfix/smtpd[2107]: 4C2B7985118: client=mx.attacker.example[203.0.113.66]")
	add(-3, "postfix/cleanup[2108]: 4C2B7985118: message-id=<%s>", msgid)
	add(-3, "postfix/qmgr[2100]: 4C2B7985118: from=<bob@attacker.example>, size=1234, nrcpt=1 (queue active)")
	pickup := func(s int, id, uid, from string) {
		add(s, "postfix/pickup[2300]: %s: uid=%s from=<%s>", id, uid, from)
		add(s, "postfix/cleanup[2108]: %s: message-id=<%s>", id, msgid)
		add(s, "postfix/qmgr[2100]: %s: from=<%s>, size=1300, nrcpt=1 (queue active)", id, from)
	}
	if pick < 0 {
		pickup(pick, "5D0E1985119", "998", "bob@attacker.example")
		pickup(pick, "6E1F2A3B4C5", "1000", "alice@relay.test")
	}
	add(0, "postfix/pipe[2301]: 4C2B7985118: to=<m@gmail.com>, relay=filter, delay=3.1, delays=0.1/0/0/3, dsn=2.0.0, status=sent (delivered via filter service)")
	add(0, "postfix/qmgr[2100]: 4C2B7985118: removed")
	if pick >= 0 {
		pickup(pick, "5D0E1985119", "998", "bob@attacker.example")
		pickup(pick, "6E1F2A3B4C5", "1000", "alice@relay.test")
	}
	pickup(3600, "7F2A3B4C5D6", "1000", "alice@relay.test")
	for _, id := range []string{"5D0E1985119", "6E1F2A3B4C5", "7F2A3B4C5D6"} {
		add(3601, "postfix/smtp[2112]: %s: to=<m@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, %s", id, pfe19bUnsolicited)
	}
	return lines
}

func pfe19bRun(tr *Tracker, lines []string) map[string]Refusal {
	got := map[string]Refusal{}
	for _, line := range lines {
		if e, ok := ParseLine(line); ok {
			for _, r := range tr.Add(e) {
				got[r.QueueID] = r
			}
		}
	}
	for _, r := range tr.Release(0) {
		got[r.QueueID] = r
	}
	return got
}

// TestPfe19bSimpleFilterCopyNotLocal: the copy that a simple content
// filter re-injected with sendmail was taken for local mail, and Gmail's
// refusal of the spam had it encapsulated (the spam sent to Gmail again,
// as the relay) instead of reported. The copy is now of an unknown
// client (Reinjected): by its user with FilterUIDs, by a pipe(8)
// delivery near it without; never by its Message-ID, which the spammer
// writes: local mail with the spam's Message-ID stays local with
// FilterUIDs, and far from a pipe delivery.
func TestPfe19bSimpleFilterCopyNotLocal(t *testing.T) {
	type want struct{ copy, near, far bool } // Local of each
	for _, c := range []struct {
		name string
		tr   *Tracker
		want want
	}{
		{"auto", &Tracker{}, want{far: true}},
		{"amavis", &Tracker{Reinjection: ReinjectAlways}, want{far: true}},
		{"filter-user", &Tracker{FilterUIDs: []string{"998"}}, want{near: true, far: true}},
		{"no-filter", &Tracker{Reinjection: ReinjectNever}, want{copy: true, near: true, far: true}},
	} {
		for _, pick := range []int{-2, 0, 1, 250} {
			got := pfe19bRun(c.tr, pfe19bFilterLog(fmt.Sprintf("m%d@x", pick), pick))
			c.tr = &Tracker{Reinjection: c.tr.Reinjection, FilterUIDs: c.tr.FilterUIDs}
			for id, local := range map[string]bool{"5D0E1985119": c.want.copy, "6E1F2A3B4C5": c.want.near, "7F2A3B4C5D6": c.want.far} {
				r, ok := got[id]
				if !ok {
					t.Fatalf("%s %d: no refusal of %s", c.name, pick, id)
				}
				if r.Local != local || r.ClientIP != "" || (r.Reinjected == "") != local {
					t.Errorf("%s, pickup at %+ds: %s: Local %v Reinjected %q client %q; want Local %v", c.name, pick, id, r.Local, r.Reinjected, r.ClientIP, local)
				}
			}
		}
	}
}

// TestPfe19bNewYear: a traditional timestamp has no year. The filter's
// copy picked up at "Dec 31 23:59:58", its pipe line at "Jan  1
// 00:00:01", were a year apart, and the copy was local (encapsulated).
func TestPfe19bNewYear(t *testing.T) {
	for _, pick := range []int{-3, 3} {
		base := time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC).Add(time.Duration(-pick/3) * time.Second)
		got := pfe19bRun(&Tracker{}, pfe19bFilterLogAt(base, "m@x", pick))
		if r := got["5D0E1985119"]; r.Local || r.Reinjected == "" {
			t.Errorf("pickup %+ds from the pipe line across the new year: Local %v Reinjected %q", pick, r.Local, r.Reinjected)
		}
	}
}

// TestPfe19bRestart: the enforcer restarted between pickup's line of a
// filter's copy and pipe(8)'s line (or after the pipe line, before the
// copy's): the checkpoint had not kept them, and the copy was local.
func TestPfe19bRestart(t *testing.T) {
	for _, pick := range []int{-2, 2} {
		lines := pfe19bFilterLog("m@x", pick)
		cut := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "5D0E1985119: uid=") })
		if pick > 0 {
			cut = slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "postfix/pipe[") }) + 1
		} else {
			cut++
		}
		tr := &Tracker{}
		got := pfe19bRun(tr, lines[:cut])
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		tr = &Tracker{}
		if err := json.Unmarshal(b, tr); err != nil {
			t.Fatal(err)
		}
		maps.Copy(got, pfe19bRun(tr, lines[cut:]))
		if r := got["5D0E1985119"]; r.Local || r.Reinjected == "" {
			t.Errorf("restart with pickup at %+ds: the copy is Local %v, Reinjected %q", pick, r.Local, r.Reinjected)
		}
	}
}

// TestPfe19bPipeLine: pipe(8)'s delivery line names its service; a
// server's reply or local(8)'s words do not.
func TestPfe19bPipeLine(t *testing.T) {
	for line, svc := range map[string]string{
		"Dec  6 14:00:10 mx1 postfix/pipe[2301]: 4C2B7985118: to=<m@gmail.com>, relay=filter, delay=3.1, delays=0.1/0/0/3, dsn=2.0.0, status=sent (delivered via filter service)":                                                   "filter",
		"Dec  6 14:00:10 mx1 postfix/pipe[2301]: 4C2B7985118: to=<m@gmail.com>, relay=filter, delay=3.1, delays=0.1/0/0/3, dsn=2.0.0, status=sent (delivered via filter service (ok))":                                              "filter",
		"Dec  6 14:00:10 mx1 postfix/smtp[2301]: 4C2B7985118: to=<m@gmail.com>, relay=mx.example[192.0.2.1]:25, delay=3.1, delays=0.1/0/0/3, dsn=2.0.0, status=sent (delivered via filter service)":                                 "",
		"Dec  6 14:00:10 mx1 postfix/local[2301]: 4C2B7985118: to=<m@relay.test>, relay=local, delay=3.1, delays=0.1/0/0/3, dsn=2.0.0, status=sent (delivered to command: delivered via x service)":                                 "",
		"Dec  6 14:00:10 mx1 postfix/pipe[2301]: 4C2B7985118: to=<m@gmail.com>, relay=filter, delay=3.1, delays=0.1/0/0/3, dsn=5.3.0, status=bounced (Command died with status 1: \"/f\". Command output: delivered via x service)": "",
	} {
		e, ok := ParseLine(line)
		if !ok || e.Status == "sent" && e.PipeService != svc || e.Status != "sent" && e.PipeService != "" && svc == "" {
			t.Errorf("%s: ok %v, service %q; want %q", line, ok, e.PipeService, svc)
		}
	}
}

// FuzzTrackerSimpleFilter: a spammer chooses its Message-ID and sender,
// and when its message reaches the simple content filter, against local
// mail by user 1000 with the same Message-ID. Whatever it chooses, its
// copy names no client, is never local (encapsulated), and, with the
// filter's user named, the local mail stays local.
func FuzzTrackerSimpleFilter(f *testing.F) {
	f.Add("m@x", "bob", int16(1), false)
	f.Add("m@x", "bob", int16(-2), true)
	f.Add("m@x", "bob orig_id=8A0B1C2D3E4", int16(400), true)
	f.Fuzz(func(t *testing.T, msgid, local string, pick int16, named bool) {
		clean := strings.NewReplacer("\n", " ", "\r", " ", "\x00", " ").Replace
		// Without the filter's user, a pickup further than PipeWindow
		// from the pipe line is local: the spammer does not choose
		// when pickup logs its copy.
		window := int(PipeWindow / time.Second)
		if named {
			window = 3 * window
		}
		lines := pfe19bFilterLog(clean(msgid), int(pick)%(window+1))
		for i := range lines {
			lines[i] = strings.ReplaceAll(lines[i], "bob@attacker.example", clean(local)+"@attacker.example")
		}
		tr := &Tracker{}
		if named {
			tr.FilterUIDs = []string{"998"}
		}
		for id, r := range pfe19bRun(tr, lines) {
			if r.ClientIP != "" || r.ClientName != "" {
				t.Fatalf("%s names a client: %+v", id, r)
			}
			if id == "5D0E1985119" && r.Local {
				t.Fatalf("the spam's copy is local: %+v", r)
			}
			if named && id != "5D0E1985119" && !r.Local {
				t.Fatalf("local mail %s is not local: %+v", id, r)
			}
		}
	})
}
