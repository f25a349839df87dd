package enforce

// defaultReplyFilter is the built-in reply filter, for Gmail's refusals.
// Its patterns see the whole reply on one line, as Postfix logs it.
const defaultReplyFilter = `# relaykeeper's built-in reply filter (smtp_reply_filter format): what the
# client that submitted a message hears when Gmail refused it. Each pattern
# sees the whole reply on one line as the rules see it: "550-5.7.26 ...",
# the later lines' "550-5.7.26" prefixes removed.

# Refusals that relaykeeper answers by forwarding the message encapsulated
# are reported as delivered. RewriteFor applies these rules only when
# the encapsulated copy was sent.
/^5[0-9][0-9][- ]5\.7\.(1|26) .*(DMARC policy|authentication information|authentication checks|fails to pass SPF|sender is unauthenticated|mail is unauthenticated)/	250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: 5.7.$1 authentication)
/^4[0-9][0-9][- ]4\.7\.0 .*(authentication information|authentication checks)/	250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: 4.7.0 authentication)
/^[45][0-9][0-9][- ]([45]\.7\.(26|27|30|32|40)) .*(unauthenticated|SPF authentication|DKIM authentication|DMARC record|aligned with either)/	250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: $1 authentication)
/^553[- ]5\.1\.7 .*not a valid RFC-?5321 address/	250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused the sender address)

# A temporary refusal for spam, bulk mail, reputation or one message sent
# again and again (the same Message-ID) becomes permanent, so that the
# sender stops retrying what will be refused again. "Bulk Email Senders
# Guidelines" is the guidelines Gmail points a bulk sender to; its
# authentication replies ("all bulk email senders to authenticate their
# email with SPF") stay temporary when no copy could be made.
/^4[0-9][0-9][- ]4\.7\.([0-9]+) (.*(unsolicited e?mail|suspicious|reputation|Bulk Email Senders'? Guidelines|messages that have the same Message-?ID).*)/	554 5.7.$1 $2
`

// DefaultReplyFilterText is the built-in reply filter file.
func DefaultReplyFilterText() string { return defaultReplyFilter }

// DefaultReplyFilter is the built-in reply filter: a refusal that
// relaykeeper forwarded encapsulated (DMARC, SPF, missing authentication, a
// sender address Gmail cannot parse) becomes "250 2.0.0 Ok: forwarded
// encapsulated ..." (through RewriteFor, only when the copy was sent), and
// a temporary refusal for unsolicited mail, suspicious content, low
// reputation, bulk mail (Gmail's "Bulk Email Senders Guidelines") or one
// message sent again and again (the same Message-ID) becomes a permanent 554 5.7.x with the same text. Gmail's other replies,
// its temporary authentication refusals among them, pass unchanged.
func DefaultReplyFilter() *ReplyFilter {
	f, err := ParseReplyFilter("reply filter (built in)", []byte(defaultReplyFilter))
	if err != nil {
		panic(err) // a test parses the same text
	}
	return f
}
