package sendmail

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// handBackVar is set in the environment of a pipe: filter (Postfix's
// simple content filter) to a digest of the envelope of the message it
// filters: its sender and its recipients (handBackKey).
const handBackVar = "RELAYKEEPER_PIPE_FILTER"

// HandBackEnv is the environment entry a pipe: filter runs with for a
// message from sender to rcpts. Run by that filter with that envelope (as
// FILTER_README's script re-injects: -f ${sender} -- ${recipient}),
// relaykeeper's sendmail hands the message back (HandBackMessage) instead
// of queueing it a second time; any other message it queues as usual.
func HandBackEnv(sender string, rcpts []string) string {
	return handBackVar + "=" + handBackKey(sender, rcpts)
}

// handBackFileVar names the file, made by the relay for the filter's run,
// that the message goes back in (HandBackFileEnv).
const handBackFileVar = "RELAYKEEPER_PIPE_HANDBACK"

// HandBackFileEnv is the environment entry that names the file the
// filtered message goes back in. Without it (an older relay), the message
// goes back on standard output. A file, not the filter's standard output,
// which a script may fill with a progress line, send to /dev/null or
// capture ('res=$(sendmail "$@" <in)'): the filtered message would be lost
// and the original go out unfiltered.
func HandBackFileEnv(path string) string { return handBackFileVar + "=" + path }

// handBackKey is a digest of the envelope: written out whole, the
// recipients of a large message (1,000 long addresses) passed Linux's
// 128 KiB limit on one environment entry, and the filter could not run.
func handBackKey(sender string, rcpts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(append([]string{sender}, rcpts...), "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// handingBack says whether inv re-injects the message that the pipe:
// filter running it filters.
func handingBack(inv Invocation) bool {
	v, ok := os.LookupEnv(handBackVar)
	return ok && inv.Mode == Deliver && !inv.Headers && v == handBackKey(inv.From, inv.Recipients)
}

// HandBackMessage is sendmail in Mode HandBack: it copies the message from
// stdin to stdout, which is the filter's own standard output, so that the
// filtered message replaces the content of the message being filtered,
// whose envelope stays as it is. It returns sendmail's exit status.
//
// A standard output that is no pipe (the script's 'sendmail "$@" <in
// >/dev/null', or '>>log') is not the filter's: the filtered message
// would be thrown away and the original pass unfiltered, so sendmail
// fails with EX_TEMPFAIL and the message stays where it is.
func HandBackMessage(stdin io.Reader, stdout, stderr io.Writer) int {
	if path := os.Getenv(handBackFileVar); path != "" {
		// The relay made the file; it is not made here.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err == nil {
			_, err = io.Copy(f, stdin)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "sendmail: handing the message back to the filter: %v\n", err)
			return 75 // EX_TEMPFAIL
		}
		return 0
	}
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe == 0 {
			fmt.Fprintf(stderr, "sendmail: in a pipe: filter, the message for the same envelope goes back on the filter's "+
				"standard output, and this standard output is redirected (to %s): not sent\n", outputKind(fi.Mode()))
			return 75 // EX_TEMPFAIL
		}
	}
	if _, err := io.Copy(stdout, stdin); err != nil {
		fmt.Fprintf(stderr, "sendmail: handing the message back to the filter: %v\n", err)
		return 75 // EX_TEMPFAIL
	}
	return 0
}

// outputKind names what a standard output that is no pipe goes to.
func outputKind(m os.FileMode) string {
	switch {
	case m&os.ModeCharDevice != 0:
		return "a device, such as /dev/null"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a file"
	}
	return "no pipe"
}
