package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/filter"
)

// takeOriginalClient reads the header section of a message coming back from
// the content filter, removes the X-Relaykeeper-Original-Client header the
// relay added on the way out, and returns the rest of the message and the
// client it names, and the client's verified host name ("name=", which the
// welcomelist's host-name patterns match; "" if none). The header section is
// read whole (bounded); the body streams.
//
// The relay's field is the first: it went out above the client's header
// section, and a filter adds its own fields at the top. A client may write
// the field in its own message to name another client (one to have
// banned, or a welcomelisted one); such a copy comes later, is not read,
// and is removed with its folded lines, as is every copy.
func takeOriginalClient(r io.Reader) (_ io.Reader, client, clientName string) {
	const name = "x-relaykeeper-original-client:"
	br := bufio.NewReaderSize(r, 64<<10)
	var head bytes.Buffer
	found, dropping := false, false
	for head.Len() < 1<<20 {
		line, err := br.ReadString('\n')
		end := err != nil || line == "\r\n" || line == "\n"
		switch {
		case end:
			head.WriteString(line)
		case dropping && (line[0] == ' ' || line[0] == '\t'):
			// A folded line of a field removed.
		case strings.HasPrefix(strings.ToLower(line), name):
			dropping = true
			if !found {
				client, found = strings.TrimSpace(line[len(name):]), true
			}
		default:
			dropping = false
			head.WriteString(line)
		}
		if end {
			break
		}
	}
	client, clientName = filter.SplitOriginalClient(client)
	return io.MultiReader(&head, br), client, clientName
}
