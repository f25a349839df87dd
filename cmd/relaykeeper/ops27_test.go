package main

import "testing"

// TestOps27CompletionPerCommandSwitches: after a subcommand's own command
// ("queue delete", "bans add"), the completion offered every switch of
// the subcommand, among them those that command refuses with exit status
// 2 ("queue delete does not take --sender", "--json does not go with
// add"). It now offers the command's own switches and the shared ones.
func TestOps27CompletionPerCommandSwitches(t *testing.T) {
	script := completionScript(t)
	tests := []struct {
		words string
		want  string
	}{
		{"relaykeeper queue delete --s", "--state --spool-dir"},
		{"relaykeeper queue delete --b", ""},
		{"relaykeeper queue list --s", "--sender --state --spool-dir"},
		{"relaykeeper queue show ID --b", "--body"},
		{"relaykeeper queue --spool-dir /tmp hold --r", ""},
		{"relaykeeper queue --s", "--sender --state --spool-dir"}, // no command yet: list's, the default
		{"relaykeeper bans add 192.0.2.1 --", "--duration --reason --bans --config --spool-dir --welcomelist --help"},
		{"relaykeeper bans list --", "--json --bans --config --spool-dir --welcomelist --help"},
		{"relaykeeper enforce test X --r", "--rules --reply-filter"},
	}
	for _, tt := range tests {
		if got := complete(t, script, tt.words); got != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, got, tt.want)
		}
	}
}
