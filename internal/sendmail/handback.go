package sendmail

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// handBackVar is set in the environment of a pipe: filter (Postfix's
// simple content filter) to the envelope of the message it filters: its
// sender and its recipients, one a line.
const handBackVar = "RELAYKEEPER_PIPE_FILTER"

// HandBackEnv is the environment entry a pipe: filter runs with for a
// message from sender to rcpts. Run by that filter with that envelope (as
// FILTER_README's script re-injects: -f ${sender} -- ${recipient}),
// relaykeeper's sendmail hands the message back (HandBackMessage) instead
// of queueing it a second time; any other message it queues as usual.
func HandBackEnv(sender string, rcpts []string) string {
	return handBackVar + "=" + handBackKey(sender, rcpts)
}

func handBackKey(sender string, rcpts []string) string {
	return strings.Join(append([]string{sender}, rcpts...), "\n")
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
func HandBackMessage(stdin io.Reader, stdout, stderr io.Writer) int {
	if _, err := io.Copy(stdout, stdin); err != nil {
		fmt.Fprintf(stderr, "sendmail: handing the message back to the filter: %v\n", err)
		return 75 // EX_TEMPFAIL
	}
	return 0
}
