package smtpd

import (
	"errors"
	"net"
)

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
