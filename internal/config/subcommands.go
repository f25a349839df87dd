package config

// Subcommands are listed in --help, the man page and completion; the command
// dispatches them.
var Subcommands = []Command{
	{Name: "queue", Help: "list and manage the messages in the spool", Usage: QueueUsage,
		Values: map[string][]string{"--state": {"new", "ready", "claimed", "failed", "held", "journal"}}},
	{Name: "stats", Help: "show delivery statistics", Usage: StatsUsage},
	{Name: "passwd", Help: "make an entry for a secrets file", Usage: PasswdUsage},
	{Name: "bans", Help: "list and lift bans", Usage: BansUsage},
	{Name: "submit", Help: "put a message read from standard input into the spool", Usage: SubmitUsage},
	{Name: "enforce", Help: "apply the rules about upstream replies", Usage: EnforceUsage},
	{Name: "postfix-enforcer", Help: "follow Postfix's mail log and apply the same rules", Usage: PostfixEnforcerUsage},
	{Name: "completion", Help: "print a bash completion script", Usage: CompletionUsage},
}

// HelpArgs turns "relaykeeper help" and "relaykeeper help COMMAND", as git
// and go take them, into "--help" and "COMMAND --help"; other command
// lines are returned as they are.
func HelpArgs(args []string) []string {
	switch {
	case len(args) == 0 || args[0] != "help":
		return args
	case len(args) == 1:
		return []string{"--help"}
	}
	return []string{args[1], "--help"}
}

// The subcommands' --help texts, also their man pages' bodies.
const (
	BansUsage = `usage: relaykeeper bans [FILE SWITCH] list [--json]
       relaykeeper bans [FILE SWITCH] add IP|IP/LEN [--duration 4h] [--reason TEXT]
       relaykeeper bans [FILE SWITCH] remove IP|IP/LEN

Lists, adds and lifts bans of client IPs and networks. The running relay
re-reads the ban file within seconds of a change. A ban added here takes
effect at once and lasts --duration (default 4h); adding a banned IP
extends its ban. An address bans that address alone; IP/LEN bans the
network (2001:db8:1:2::/64; at most an IPv4 /16 or an IPv6 /32). The
enforcer bans an IPv6 client's /64 ([enforce] ban_ipv6_prefix_length).

"remove" lifts every ban that keeps the address or network out: removing
an address inside a banned network lifts that network's ban, and says so
("2001:db8:1:2::/64 no longer banned (it held 2001:db8:1:2::8)").

The ban file is, first found:
  --bans FILE        that file
  --config FILE      its [enforce] bans, else its spool directory's
                     .enforce/bans (--spool-dir DIR: DIR's)
  --spool-dir DIR    DIR/.enforce/bans
  (none)             the same of /etc/relaykeeper/relaykeeper.toml if it
                     exists, else /var/spool/relaykeeper/.enforce/bans

A welcomelisted client is never sanctioned: a ban of its address, made
before it was listed or by hand, is ignored while it is listed (not
lifted: the ban file may be shared with relays whose welcomelist
differs). "list" marks such a ban "[not applied: welcomelisted]" (JSON:
"not_applied"), and "add" warns of one, reading the welcomelist found as
the ban file is (--welcomelist FILE, [enforce] welcomelist,
.enforce/welcomelist). The dashboard marks it too.

The spool directory (or the directory above a --bans FILE's) must exist:
a mistyped one is an error, never a new spool; .enforce is made in it.
`
	CompletionUsage = `usage: relaykeeper completion bash

Prints a bash completion script for relaykeeper's switches and commands.
Load it with:

  source <(relaykeeper completion bash)

or install it as /usr/share/bash-completion/completions/relaykeeper.
`
	EnforceUsage = `usage: relaykeeper enforce test REPLY [--rules FILE] [--reply-filter FILE] [--host HOST]
       relaykeeper enforce test - [...]     (replies from the standard input, one a line)
       relaykeeper enforce rules            (print the built-in rules)
       relaykeeper enforce reply-filter     (print the built-in reply filter)

"enforce test" prints what relaykeeper would do about an upstream's reply to
a relayed message, the rule that decided, and what the client that
submitted the message would hear after reply rewriting:

  $ relaykeeper enforce test '550-5.7.1 [192.0.2.25 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. ... - gsmtp'
  ban (rule gmail-unsolicited)
  client hears: 550-5.7.1 [192.0.2.25 12] Our system ... - gsmtp (unchanged)

REPLY may be as the server sent it (lines "550-5.7.1 ...", then "550 5.7.1
..."), as Postfix logs it (the lines joined on one line), or a piece of a
Postfix log line: "host H[A] said: REPLY (in reply to end of DATA command)".

  --rules FILE         rules to use instead of the built-in ones (docs/enforce-rules.md)
  --reply-filter FILE  reply filter (Postfix smtp_reply_filter format) instead of the built-in one
  --host HOST          the upstream's host name, for rules with a host condition
`
	PasswdUsage = `usage: relaykeeper passwd [--plain | --md5] [USER]

Reads a password from the standard input (one line) and prints a line for
the secrets file:

  server bcrypt USER HASH      (default: a bcrypt hash; PLAIN and LOGIN)
  server plain USER PASSWORD   (--plain: the password, xtext-encoded)
  server md5 USER STATE        (--md5: E-MailRelay's HMAC-MD5 state)

Without USER only the last field is printed. Plain and md5 lines also allow
CRAM-MD5; keep the file readable by relaykeeper only, whatever it holds.
`
	PostfixEnforcerUsage = `usage: relaykeeper postfix-enforcer [switches]

Follows Postfix's mail log and acts on the upstream's (Gmail's) refusals of
relayed mail, as relay-enforcer does: bans the client that submitted the
message (a "bannable" line for fail2ban), blocks the sender's domain in
sender_access, or sends the message on encapsulated, by the rules. See
docs/postfix-enforcer.md.

relay-enforcer's switches:
  -v              verbose: a dot per log line read, the time every hour
  -q              quiet: no line per action (errors are still shown)
  -t              test mode: say what would be done, change nothing
  -d              debug: every line understood and every verdict; implies -v
  -f BACKUP       the mbox that keeps a copy of every relayed message
                  (always_bcc); needed to encapsulate
  -m ADDRESS      mail ADDRESS a report of each action and unknown refusal;
                  a local user (root) is left for Postfix to qualify
  -a | -n         force | forbid following amavis's re-injection
  -r              replace a running instance (stop it, then run)
  -s              stop a running instance and exit

relaykeeper's:
  --log FILE            Postfix's mail log (default /var/log/mail.log)
  --state FILE          how far the log was read, and what was done
                        (default /var/lib/relaykeeper/postfix-enforcer.state)
  --sender-access FILE  the access table to block domains in
                        (default /etc/postfix/sender_access; postmap'ed)
  --welcomelist FILE    clients never banned (default
                        /etc/relaykeeper/welcomelist; created if missing)
  --rules FILE          the rules (default: the built-in Gmail rules)
  --smtp HOST:PORT      where encapsulated copies and reports are sent
                        (default 127.0.0.1:25)
  --sender ADDRESS      their sender (default postmaster@HOSTNAME)
  --ban-log FILE        append ban lines there instead of to syslog
  --ban-delay DURATION  wait before a ban line (default 10s, as relay-enforcer)
  --ban-ipv4-prefix-length N, --ban-ipv6-prefix-length N
                        how wide a ban is: 32 (the IPv4 address alone) and
                        64 (an IPv6 client's /64), the line ending in
                        ADDR/LEN for a network (fail2ban's <SUBNET>)
  --upstream REGEXP     act on refusals from relays ("host[ip]:port") that
                        match, instead of on replies ending in "gsmtp"
  --trusted-upstream HOST
                        a relay (name or address, as in relay=name[ip]:port)
                        whose refusals may ban or block, besides Google's
                        mail servers; name Postfix's relayhost here unless it
                        is Google (repeatable). Others' refusals are reported
  --srs-secret FILE     postsrsd's secret: an SRS sender is read back only if
                        it verifies
  --srs-domain DOMAIN   postsrsd's SRS_DOMAIN (default: --sender's domain)
  --filter-user USERS   the users (names or uids, comma-separated) that a pipe
                        content filter re-injecting with sendmail runs as:
                        their submissions are copies of an unknown client,
                        others' local (default: a submission within 5m of
                        a "delivered via ... service" line is a copy)
  --once                read what the log holds now, then exit
  --from-end            with no state yet, start at the log's end

SIGHUP re-reads the rules and the welcomelist (both are also re-read as
they change); SIGTERM and SIGINT stop it, exit status 0.
`
	QueueUsage = `usage: relaykeeper queue [COMMAND] [SWITCHES] [ARGS]

Lists and changes the messages in the spool, whether a relay is running on it
or not (see docs/queue.md).

  list                   the messages, like mailq (the default command)
      --sender TEXT      only those whose sender contains TEXT
      --recipient TEXT   only those with a recipient containing TEXT
      --reply TEXT       only those with a last reply containing TEXT
      --state STATE      only those in STATE: new, ready, claimed, failed,
                         held, journal (several separated by commas)
  show ID [--body]       one message's envelope and header (--body: all)
  delete ID...           remove messages for good
  hold ID...             keep ready messages from delivery
  release ID...          make held messages ready, due at once
  retry ID...            make ready and failed messages due at once
  flush                  make every ready message due at once
  quarantine             what recovery set aside in SPOOL/.quarantine, and
                         why, like Postfix's corrupt queue
  restore ID...          put repaired quarantined messages back

delete, hold, release and retry take ids, or "-" to read ids from the
standard input one per line (also when no ids are given and the standard
input is not a terminal), or --all, or --match TEXT (the messages whose
sender, a recipient or a reply contains TEXT); --state STATE keeps those in
STATE ("delete --state ready" is "postsuper -d ALL deferred" with the mail
not yet tried; add --match with the deferral's text to leave that out). A
message a delivery has claimed is reported busy and left alone; one whose
forwarder died (a crash) is listed as such, and retry and flush send it.
restore takes ids or "-"; a message whose envelope was set aside unfinished
(state new) comes back held.

Every command:
  -s, --spool-dir DIR    the spool (default: from --config, else from
                         /etc/relaykeeper/relaykeeper.toml if it exists,
                         as mailq, else /var/spool/relaykeeper)
      --config FILE      read the spool directory from this file
      --json             machine-readable output

After a change, a relay running on the spool is sent SIGHUP so that it
re-reads the envelopes. Exit status: 0 done, 1 some messages could not be
changed (not found, busy), 2 a wrong command line.
`
	StatsUsage = `usage: relaykeeper stats [--top N] [--json] [LOGFILE...]

Summarises the mail log, as pflogsumm does for Postfix: messages received,
delivered, deferred, bounced, rejected, proxied and quarantined; traffic by
hour of the day; the top senders, recipient domains, and reasons for
rejections, deferrals and bounces; and the upstream's rejection rate per
client and per hour, marked ALERT over 2% of at least 20 replies.

Reads the LOGFILEs in turn (gzip-compressed ones too), or the standard input
when there are none or for "-". The mail log may be its own file, or come
through the system log (/var/log/mail.log, journalctl -u relaykeeper), where
the lines tagged relaykeeper count. Lines that are not mail-log lines, such
as the diagnostic log's "time=... level=..." lines, are skipped and counted.

      --top N    entries in each top list (default 10)
      --json     machine-readable output
`
	SubmitUsage = `usage: relaykeeper submit [SWITCHES] [RECIPIENT...]

Reads a message (RFC 5322, LF or CRLF line endings) from the standard input
and puts it in the spool for forwarding, as E-MailRelay's emailrelay-submit
does (see docs/pop3.md).

  -f, --from ADDRESS     the envelope sender (default: the From header's
                         address, else USER@ORIGIN); "<>" for none
  -t                     also send to the addresses in the To, Cc and Bcc
                         headers
  -N NOTIFY              the notices wanted, for every recipient: never, or
                         some of success,failure,delay (default: failure
                         and delay), as Postfix's sendmail -N
  -R RET                 hdrs or full: what a failure notice returns
  -V ENVID               the envelope id notices quote (RFC 3461)
      --spool-dir DIR    the spool (default: from --config, else
                         /var/spool/relaykeeper)
      --config FILE      read the spool directory and ORIGIN from this file
                         ([rewrite] myorigin, else domain; else the host
                         name), the domain a bare RECIPIENT gets too
  -i, -oi                ignored, for sendmail's callers: the message always
                         ends at the end of the input, never at a "." line

emailrelay-submit's switches (its -t, -N, -V, -i, -F and -C are sendmail's
above; use the long forms):
      --content BASE64   a line of the message, base64; a comma separates
                         several, an empty one is an empty line; repeatable
      --no-stdin         read nothing from the standard input
      --content-to       add a To field for each recipient
  -v, --verbose          print the content file's path instead of the id
  -n, --filename         print the content file's name instead of the id
  -d, --content-date, --content-from, --content-message-id DOMAIN
                         accepted: Date, From and Message-ID are added to a
                         message that has none anyway

A RECIPIENT may be a comma-separated list. Bcc headers are removed. The
message gets a Received header, and Date and Message-ID headers if it has
none; it is stored durably, ready for forwarding, and its queue id printed.
A relay running on the spool is then sent SIGHUP so that it forwards the
message at once. Exit status: 0 stored, 1 not stored, 2 a wrong command line.
`
)
