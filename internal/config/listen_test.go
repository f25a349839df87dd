package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSMTPListens(t *testing.T) {
	c := Default()
	c.SMTP.Port = 2525
	if got, want := c.SMTPListens(), []Listen{{RoleSMTP, ":2525"}}; !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
	c.SMTP.Interfaces = []string{"127.0.0.1", "submission=[::1]:587", "smtps=::1"}
	want := []Listen{{RoleSMTP, "127.0.0.1:2525"}, {RoleSubmission, "[::1]:587"}, {RoleSMTPS, "[::1]:2525"}}
	if got := c.SMTPListens(); !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
}
