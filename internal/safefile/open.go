package safefile

import (
	"fmt"
	"os"
	"syscall"
)

// Open opens a configuration file (a table, a secrets file, a list) for
// reading. Unlike os.Open it never waits: a named pipe in the file's place
// would have the reader (a reload, the start) wait for a writer for good,
// with every later reload queued behind it; such a pipe, a socket and a
// directory are refused, naming what they are. A character device stays
// allowed: /dev/null is an empty table, as in Postfix.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	what := ""
	switch m := fi.Mode(); {
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&os.ModeSocket != 0:
		what = "a socket"
	case m.IsDir():
		what = "a directory"
	}
	if what != "" {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("is %s, not a file", what)}
	}
	return f, nil
}
