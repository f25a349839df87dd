package main

import (
	"os"

	"golang.org/x/term"
)

// isTerminal says whether a standard stream (an io.Reader or io.Writer) is
// a terminal: passwd then prompts, the relay tells the person watching
// where to look, and long commands show progress. /dev/null is not one.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
