package queue

import (
	"errors"
	"fmt"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Operands are what a "queue" command was given besides its switches'
// values: the message ids (or "-") and how the messages were chosen.
type Operands struct {
	Command string   // list, show, delete...
	IDs     []string // the arguments after the command
	All     bool     // --all
	Match   string   // --match
	State   string   // --state
}

// CheckOperands reports what is wrong with a command's operands, as
// "relaykeeper queue" says it before opening the spool; nil if nothing.
func CheckOperands(o Operands) error {
	name, pos := o.Command, o.IDs
	switch {
	case (name == "list" || name == "quarantine") && len(pos) > 0:
		return fmt.Errorf("unexpected argument %q", pos[0])
	case name == "show" && len(pos) != 1:
		return errors.New("queue show takes one message id")
	case name == "flush" && len(pos) > 0:
		return errors.New("queue flush takes no arguments (queue retry ID makes one message due)")
	case o.All && o.Match != "":
		return errors.New("--all and --match exclude each other")
	case (o.All || o.Match != "" || o.State != "") && len(pos) > 0:
		return errors.New("give message ids or --all, --match or --state, not both")
	}
	for _, id := range pos {
		if id != "-" && !spool.ValidID(id) {
			return fmt.Errorf("%q is not a message id", id)
		}
	}
	return nil
}
