// Package route decides, for each recipient of a message, the outbound
// transport and next hop, with Postfix's routing rules, and resolves a
// next hop to the addresses to connect to (MX, then A/AAAA).
//
// # Routing
//
// A Router answers Route(sender, rcpt) the way Postfix's trivial-rewrite(8)
// does for non-local mail (resolve.c, transport.c):
//
//  1. The default transport is Options.DefaultTransport ("smtp"), unless
//     sender_dependent_default_transport_maps has an answer for the
//     sender: it is searched for the sender address, the address without
//     its extension, then "@domain" ("<>" for the null sender); "DUNNO"
//     stops the search with no override. Either may carry a next hop
//     ("smtp:[relay.example]").
//  2. The default next hop is that explicit next hop, else the transport's
//     own Transport.NextHop, else Options.RelayHost, else the recipient
//     domain (MX delivery).
//  3. transport_maps, if it answers, overrides both. It is searched for the
//     recipient address, the address without its extension, the domain,
//     each parent domain as ".parent", and "*", each key in every table
//     (in order) before the next key, as Postfix's maps_find does; regexp,
//     pcre and cidr tables see only the full address and "*". The result
//     "transport:nexthop" is applied as transport(5) says: an empty
//     transport keeps the default transport; an empty next hop with a
//     transport resets the next hop to the transport's own, else the
//     recipient domain (relayhost does not apply); ":" changes nothing.
//
// The transports smtp and relay exist without configuration, plain, as in
// Postfix's stock master.cf. The error, retry and discard transports are
// built in: error:TEXT and
// retry:TEXT fail the recipient permanently or temporarily (Route.Error),
// discard:TEXT drops it. A transport that is not configured makes the
// recipient wait (4.3.5), as Postfix's queue manager defers mail for an
// unknown transport; New refuses the tables whose entries it can read in
// advance.
//
// A Router holds no state that changes; it is safe for concurrent use.
// Its tables may be reloaded (table.Table.Reload) while it routes: each
// lookup sees one version of each table.
//
// # Resolving
//
// Resolver.Hosts turns a Route into the "ip:port" addresses to try, with
// RFC 5321 section 5.1 (MX by preference, equal preferences shuffled;
// the domain's own addresses when it has no MX) and RFC 7505 (null MX).
// Its errors are *DNSError, which say whether they are temporary.
package route
