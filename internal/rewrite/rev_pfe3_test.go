package rewrite

import (
	"slices"
	"testing"
)

// TestRevPFE3TargetDomainsPattern: a pattern table's result with
// substitutions names the domain it maps into all the same.
func TestRevPFE3TargetDomainsPattern(t *testing.T) {
	c := &Canonical{Sender: []Table{open(t, `regexp:{ {/^(.*)@host\.local$/ ${1}@Owner.Example}, {/^(.*)@(.*)\.lan$/ $1@${2}.corp.example}, {/^root$/ alerts@alerts.example} }`)},
		Common: []Table{open(t, `inline:{ {cron@host.local="Cron, Daemon" <cron@cron.example>} }`)}}
	got := c.TargetDomains()
	slices.Sort(got)
	if want := []string{"alerts.example", "corp.example", "cron.example", "owner.example"}; !slices.Equal(got, want) {
		t.Errorf("TargetDomains() = %q; want %q", got, want)
	}
}
