// Package config turns the configuration file and the command line into
// plain structs, with defaults in one literal and validation that reports
// every problem with its file and line.
//
// Only cmd/relaykeeper reads this package; every other package takes its own
// small options struct, so that the wiring stays explicit in main.
package config

import "time"

// Mode is what the process does with mail.
type Mode string

const (
	// ModeServer stores accepted mail in the spool and forwards it when a
	// trigger says so (--poll, --forward-on-disconnect, admin), or never.
	ModeServer Mode = "server"
	// ModeProxy forwards each message while it is being received: the
	// client's reply to its final dot is the upstream's reply.
	ModeProxy Mode = "proxy"
	// ModeClient forwards everything spooled, then exits.
	ModeClient Mode = "client"
)

// Config is the whole configuration after the file and the switches have
// been merged. Durations are time.Duration; sizes are bytes.
type Config struct {
	Mode Mode `toml:"mode"`

	// Domain is the name used in the greeting, the Received header and the
	// EHLO sent upstream. Defaults to the host name.
	Domain string `toml:"domain"`

	SMTP     SMTP     `toml:"smtp"`
	Spool    Spool    `toml:"spool"`
	Forward  Forward  `toml:"forward"`
	Log      Log      `toml:"log"`
	Process  Process  `toml:"process"`
	Delivery Delivery `toml:"delivery"`

	// OtherInterfaces keeps the --interface entries that name another
	// listener with E-MailRelay's prefixes ("pop=ADDR", "admin=ADDR"),
	// keyed by the prefix, so that the POP3 and admin front ends can take
	// them up once they exist. Not read from the file yet.
	OtherInterfaces map[string][]string `toml:"-"`

	// Origin records where each setting came from. It is not a setting:
	// Load and the command-line parser fill it so that Validate can point
	// at the line or the switch to fix instead of at a Go field name.
	Origin Origin `toml:"-"`
}

// Origin says where settings came from. Keys are TOML keys ("smtp.port").
// The zero value means "everything is a default".
type Origin struct {
	// File is the configuration file that was loaded, empty if none.
	File string
	// Lines maps a key to its line in File.
	Lines map[string]int
	// Switches maps a key to the command-line switch that last set it
	// ("--port"); a switch overrides the file, so it wins here too.
	Switches map[string]string
}

// SMTP configures the listeners and the server side of the protocol.
type SMTP struct {
	// Disabled is --no-smtp: no SMTP listener at all.
	Disabled bool `toml:"disabled"`
	// Port is used for every Interface given without a port.
	Port int `toml:"port"`
	// Interfaces are listen addresses ("127.0.0.1", "0.0.0.0:2525", "::").
	// Empty means all addresses on Port.
	Interfaces []string `toml:"interfaces"`
	// RemoteClients allows clients outside loopback and private networks.
	RemoteClients bool `toml:"remote_clients"`
	// MaxMessageSize is --size; 0 means unlimited.
	MaxMessageSize int64 `toml:"max_message_size"`
	// MaxRecipients per message.
	MaxRecipients int `toml:"max_recipients"`
	// IdleTimeout is how long the server waits for the client's next command.
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// TransactionTimeout bounds one MAIL..final-dot transaction.
	TransactionTimeout time.Duration `toml:"transaction_timeout"`
	// ShutdownGrace is how long sessions may run on after SIGTERM.
	ShutdownGrace time.Duration `toml:"shutdown_grace"`
}

// Spool configures the durable queue on disk.
type Spool struct {
	Dir string `toml:"dir"`
}

// Forward configures the upstream (smarthost) and when to forward to it.
type Forward struct {
	// To is the smarthost, "host:port"; "host:smtp" is port 25.
	To string `toml:"to"`
	// AtStartup is --forward: forward the spool once when starting.
	AtStartup bool `toml:"at_startup"`
	// Poll is the forwarding period; zero means no polling. PollSet tells
	// "--poll 0" (forward on disconnect) from no --poll at all.
	Poll    time.Duration `toml:"poll"`
	PollSet bool          `toml:"-"`
	// OnDisconnect forwards whenever an SMTP client disconnects.
	OnDisconnect bool `toml:"on_disconnect"`
	// Immediate forwards each message during DATA (what --as-proxy does).
	Immediate bool `toml:"immediate"`
	// ConnectionTimeout bounds connecting and the greeting.
	ConnectionTimeout time.Duration `toml:"connection_timeout"`
	// ResponseTimeout bounds the wait for each upstream reply.
	ResponseTimeout time.Duration `toml:"response_timeout"`
}

// Delivery configures the outbound scheduler.
type Delivery struct {
	// Connections is how many upstream connections run in parallel.
	Connections int `toml:"connections"`
	// MessagesPerConnection is how many messages one connection carries
	// before it is closed and a new one opened.
	MessagesPerConnection int `toml:"messages_per_connection"`
	// MinBackoff and MaxBackoff bound the retry delay after a temporary
	// failure (Postfix: minimal_backoff_time 300s, maximal_backoff_time 4000s).
	MinBackoff time.Duration `toml:"min_backoff"`
	MaxBackoff time.Duration `toml:"max_backoff"`
}

// Log configures the diagnostic log and the mail log.
type Log struct {
	// Enabled is --log: informational messages, not only warnings.
	Enabled bool `toml:"enabled"`
	// Verbose is --verbose: debug detail.
	Verbose bool `toml:"verbose"`
	// File is --log-file; empty means standard error.
	File string `toml:"file"`
	// MailLog is where the mail log goes; empty means the same place as
	// the diagnostic log.
	MailLog string `toml:"mail_log"`
}

// Process configures the process itself.
type Process struct {
	PidFile string `toml:"pid_file"`
}

// Default returns the configuration that applies when neither the file nor
// the switches say otherwise.
func Default() Config {
	return Config{
		Mode: ModeServer,
		SMTP: SMTP{
			Port:               25,
			MaxMessageSize:     10240000, // Postfix's message_size_limit
			MaxRecipients:      1000,     // Postfix's smtpd_recipient_limit
			IdleTimeout:        60 * time.Second,
			TransactionTimeout: 10 * time.Minute,
			ShutdownGrace:      10 * time.Second,
		},
		Spool: Spool{Dir: "/var/spool/relaykeeper"},
		Forward: Forward{
			ConnectionTimeout: 40 * time.Second,
			ResponseTimeout:   60 * time.Second,
		},
		Delivery: Delivery{
			Connections:           4,
			MessagesPerConnection: 100,
			MinBackoff:            300 * time.Second,
			MaxBackoff:            4000 * time.Second,
		},
	}
}
