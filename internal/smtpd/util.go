package smtpd

import (
	"errors"
	"net"
	"os"
)

func openContent(path string) (*os.File, error) { return os.Open(path) }

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
