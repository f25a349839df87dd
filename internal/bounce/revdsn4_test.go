package bounce

import "testing"

// TestRevDSN4RetFullOnlyForFailure: RFC 3461 section 4.3 says RET applies
// only to a notice that reports a failure; a delay warning or a success
// notice returns the headers only, whatever RET says, and Postfix's
// bounce(8) does so (bounce_warn_service and bounce_trace_service return
// DSN_RET_HDRS). The relay returned the whole message in a "still being
// retried" warning when the client said RET=FULL: a 10 MB attachment back
// to the sender for each warning.
func TestRevDSN4RetFullOnlyForFailure(t *testing.T) {
	for _, k := range []Kind{Delay, Success} {
		env := testEnv()
		env.Ret = "FULL"
		for i := range env.Recipients {
			env.Recipients[i].Notify = "FAILURE,DELAY,SUCCESS"
		}
		n := parse(t, build(t, env, original, k, testOpts()))
		if len(n.parts) != 3 || n.parts[2].ctype != "text/rfc822-headers" {
			var types []string
			for _, p := range n.parts {
				types = append(types, p.ctype)
			}
			t.Errorf("%v notice with RET=FULL: parts %q; want the original's headers as text/rfc822-headers", k, types)
		}
	}
}
