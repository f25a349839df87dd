// Package harness gives end-to-end tests real SMTP peers on the loopback
// interface, and runs the relaykeeper binary against them.
//
// Every peer listens on 127.0.0.1 only, every wait is bounded, and every
// process a peer starts is registered with t.Cleanup and ended by its PID,
// so a test leaves nothing running even when it fails. On failure the
// captured output of each process (and the Postfix mail log) is logged.
//
// The peers:
//
//   - Proc (Start, StartWith): any program, normally the relaykeeper binary
//     from Binary, with stdout and stderr captured to files, signals, exit
//     codes and an optional "wait until this port listens". Binary builds
//     ./cmd/relaykeeper once per test process (or takes $RELAYKEEPER_BIN);
//     a TestMain that calls Main removes the build afterwards.
//
//   - Sink (StartSink): Postfix's smtp-sink, the fast, dumb, real SMTP server.
//     It dumps every mail transaction to a file (-d); Count, Messages and
//     WaitCount read those files. SinkOptions expose its native faults:
//     hard (5xx) and soft (4xx) rejects at a command, disconnect or 421 at a
//     command, delays, an abort after DATA, and an EHLO without PIPELINING.
//     Stop and Restart on the same port model a smarthost that goes away and
//     comes back.
//
//   - Source: Postfix's smtp-source, a load generator that sends many
//     messages over parallel sessions.
//
//   - Swaks: the swaks command line client, for one scripted message.
//
//   - Postfix (StartPostfix): a private, real Postfix instance with its own
//     configuration, queue and data directories and its own mail log file,
//     an smtpd on a free loopback port, no local delivery, and a relayhost
//     of the test's choosing. Retries are quick (one second). It needs root,
//     as Postfix's master does; as root, postfix(1) and postqueue(1) accept
//     any -c directory, so the system instance's main.cf is never touched.
//     Its master is a daemon that outlives a test process killed before its
//     cleanups (go test's -timeout): each instance's directory records its
//     test process, and StartPostfix first stops (with the instance's own
//     "postfix -c DIR stop") and removes the instances whose recorded owner
//     is gone.
//
//   - FakeSMTP (NewFakeSMTP): a scripted SMTP server written here, for what
//     real servers will not do on demand: exact multi-line replies at each
//     stage (per recipient, too), a reset in the middle of DATA, a stall,
//     a close without a reply, 421 then close. It supports pipelining
//     clients, records every transaction and the peak number of
//     connections, and its Script can be changed while it runs.
//
// Peers that need an installed program (smtp-sink, smtp-source, postfix,
// swaks) skip the test, naming the program, when it is missing, and fail
// it when $CI is "true" (Missing); scripts/test-deps.sh installs them.
package harness
