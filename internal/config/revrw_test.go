package config

import (
	"strings"
	"testing"
)

// TestRevRWBannerUnknownParameter: smtp.banner expands $myhostname and
// $mail_name; a Postfix smtpd_banner carried over with any other
// parameter ("$myhostname ESMTP $mail_name ($mail_version)") was greeted
// with as written, "$mail_version" and all. It is refused at start.
func TestRevRWBannerUnknownParameter(t *testing.T) {
	for banner, ok := range map[string]bool{
		"${myhostname} ESMTP $mail_name ready":         true,
		"$myhostname ESMTP":                            true,
		"$myhostname ESMTP $mail_name ($mail_version)": false,
		"$(myhostname) ESMTP":                          false,
	} {
		c := Default()
		c.SMTP.Banner = banner
		err := c.Validate()
		if ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "smtp.banner") {
			t.Errorf("banner %q: Validate() = %v", banner, err)
		}
	}
}
