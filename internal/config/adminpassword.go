package config

import (
	"fmt"
	"os"
	"strings"
)

// ReadAdminPasswordFile reads the admin password from the first line of file
// (admin.password_file), as docs/admin.md says; an empty first line is an
// error, not an open door. Errors name the file; the caller names the
// setting (config.Setting), and so its switch or its line.
func ReadAdminPasswordFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pw := strings.TrimSpace(first)
	if pw == "" {
		return "", fmt.Errorf("%s: the first line is empty", file)
	}
	return pw, nil
}
