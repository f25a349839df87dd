package postfixlog

import "testing"

// TestPfe19AmavisQueuedAsAfterHandOver: Postfix's hand-over line ("queued
// as 7F1A2B3C4D5") came before amavis's line about the same message, and
// so had linked the message's real copy already. The amavis line's
// Message-ID, the attacker's text relayed by an innocent list server, held
// another queued_as: the attacker's own re-injected copy, whose client=
// line was logged and whose re-injection (a large message) was still
// going on. The real choice was no longer open, the forged one was the only
// one that was, and was taken: the attacker's copy was tied to the list
// server, and Gmail's refusal of the attacker's spam banned the list
// server. A line one of whose choices is already the copy of the line's
// own message names amavis's choice: the others are the sender's text.
func TestPfe19AmavisQueuedAsAfterHandOver(t *testing.T) {
	checkHostile(t, "amavis-queued-as-after-handover.log", []Refusal{
		{QueueID: "5D0E1985119", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
	})
}
