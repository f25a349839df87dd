package config

import (
	"slices"
	"testing"
)

func TestFrontendAddrs(t *testing.T) {
	tests := []struct {
		name  string
		smtp  []string
		other map[string][]string
		def   string
		want  []string
	}{
		{"nothing: the default", nil, nil, "", []string{":110"}},
		{"nothing: loopback for admin", nil, nil, "127.0.0.1", []string{"127.0.0.1:110"}},
		{"plain --interface applies", []string{"192.0.2.1", "192.0.2.1:2525", "[2001:db8::1]"}, nil, "", []string{"192.0.2.1:110", "[2001:db8::1]:110"}},
		{"a role's entry does not", []string{"submission=192.0.2.1:587"}, nil, "", []string{":110"}},
		{"pop= wins", []string{"192.0.2.1"}, map[string][]string{"pop": {"127.0.0.1:1110", "::1"}}, "", []string{"127.0.0.1:1110", "[::1]:110"}},
	}
	for _, tt := range tests {
		c := Config{OtherInterfaces: tt.other}
		c.SMTP.Interfaces = tt.smtp
		if got := c.FrontendAddrs("pop", tt.def, 110); !slices.Equal(got, tt.want) {
			t.Errorf("%s: FrontendAddrs = %q; want %q", tt.name, got, tt.want)
		}
	}
}
