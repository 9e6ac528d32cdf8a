/*
 * The one table of configuration keys.  Each row gives the key's name, its
 * type, the field of struct conf that holds it, its default in libconfig
 * value syntax (parsed by conf_new through the same code as the file), its
 * bounds (integers, sizes and the items of integer lists), the processes
 * whose slice carries it, CONF_F_* flags and a one-line doc.
 *
 * Adding a key: add the field to struct conf, a row here, an entry in
 * man/mtad.conf.5 and a commented line in conf/mtad.conf; `make lint-conf`
 * fails until all four agree.
 */
#include <stddef.h>

#include "conf.h"
#include "proto.h"

#define F(field)	offsetof(struct conf, field)
#define ALL		(P_MASTER | P_CHILDREN)
#define PORT		1, 65535

const struct conf_key conf_table[] = {
	/* --- inbound SMTP ---------------------------------------------- */
	{ "smtp-ip", CONF_T_STR, F(smtp_ip), "\"\"", 0, 0,
	  P_MASTER | P_SMTPD, CONF_F_RESTART,
	  "address to listen on; empty: every address" },
	{ "smtp-port", CONF_T_INTLIST, F(smtp_port), "[25]", PORT,
	  P_MASTER | P_SMTPD, CONF_F_RESTART,
	  "port or list of ports for SMTP" },
	{ "smtp-secure-port", CONF_T_INTLIST, F(smtp_secure_port), "[]", PORT,
	  P_MASTER | P_SMTPD, CONF_F_RESTART | CONF_F_PENDING,
	  "port or list of ports for SMTP over TLS from the first byte" },
	{ "smtp-certificate", CONF_T_STR, F(smtp_certificate), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "PEM file with the TLS certificate chain" },
	{ "smtp-key", CONF_T_STR, F(smtp_key), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "PEM file with the TLS private key" },
	{ "smtp-ciphers", CONF_T_STR, F(smtp_ciphers), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "OpenSSL cipher list; empty: the library's default" },
	{ "smtp-range", CONF_T_STR, F(smtp_range), "\"127.0.0.0/8;::1/128\"",
	  0, 0, P_SMTPD, 0,
	  "networks allowed to relay, separated by ';'" },
	{ "smtp-username", CONF_T_STR, F(smtp_username), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "AUTH user name that may relay from anywhere; empty: no AUTH" },
	{ "smtp-password", CONF_T_STR, F(smtp_password), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_SECRET | CONF_F_PENDING,
	  "AUTH password for smtp-username" },
	{ "smtp-proxy", CONF_T_STR, F(smtp_proxy), "\"\"", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "networks allowed to send a PROXY header, separated by ';'" },
	{ "smtp-maxsize", CONF_T_SIZE, F(smtp_maxsize), "\"100MB\"",
	  1024, 4294967296LL, P_SMTPD, 0,
	  "largest message accepted, in bytes or with KB, MB or GB" },
	{ "smtp-hostname", CONF_T_STR, F(smtp_hostname), "\"\"", 0, 0,
	  P_SMTPD | P_SMTP, 0,
	  "name in the greeting, EHLO and Received:; empty: the host name" },
	{ "smtp-mq-headers", CONF_T_BOOL, F(smtp_mq_headers), "true", 0, 0,
	  P_SMTPD, CONF_F_PENDING,
	  "honour x-mq-* headers from clients allowed to relay" },
	{ "smtp-max-recipients", CONF_T_INT, F(smtp_max_recipients), "1000",
	  1, 100000, P_SMTPD, 0,
	  "most RCPT TO commands accepted per message" },
	{ "smtp-timeout", CONF_T_INT, F(smtp_timeout), "300", 1, 3600,
	  P_SMTPD, 0,
	  "seconds an idle client may wait before it is disconnected" },
	{ "smtp-max-connections", CONF_T_INT, F(smtp_max_connections), "1000",
	  1, 100000, P_SMTPD, 0,
	  "most simultaneous inbound connections" },

	/* --- routing --------------------------------------------------- */
	{ "smarthost", CONF_T_STR, F(smarthost), "\"\"", 0, 0,
	  P_SMTP | P_QMGR, 0,
	  "relay all mail through this host; empty: deliver to MX hosts" },
	{ "smarthost-port", CONF_T_INT, F(smarthost_port), "25", PORT,
	  P_SMTP, 0,
	  "port of the smarthost" },
	{ "smarthost-username", CONF_T_STR, F(smarthost_username), "\"\"", 0, 0,
	  P_SMTP, 0,
	  "AUTH user name at the smarthost; empty: no AUTH" },
	{ "smarthost-password", CONF_T_STR, F(smarthost_password), "\"\"", 0, 0,
	  P_SMTP, CONF_F_SECRET,
	  "AUTH password at the smarthost" },
	{ "smarthosts", CONF_T_SMARTHOSTS, F(smarthosts), "()", 0, 0,
	  P_SMTP | P_QMGR, CONF_F_PENDING,
	  "list of weighted smarthosts, each a group { hostname = ...; }" },
	{ "routes", CONF_T_ROUTES, F(routes), "()", 0, 0,
	  P_SMTP, CONF_F_PENDING,
	  "list of per-domain routes, each a group { domain = ...; host = ...; }" },
	{ "smtp-sink-address", CONF_T_STR, F(smtp_sink_address), "\"\"", 0, 0,
	  P_SMTP, CONF_F_PENDING,
	  "send every connection to this host instead (alias smtp-sink-ip)" },
	{ "smtp-sink-ip", CONF_T_STR, F(smtp_sink_address), NULL, 0, 0,
	  P_SMTP, CONF_F_PENDING | CONF_F_ALIAS,
	  "alias of smtp-sink-address" },
	{ "smtp-sink-port", CONF_T_INT, F(smtp_sink_port), "25", PORT,
	  P_SMTP, CONF_F_PENDING,
	  "port of the sink" },
	{ "smtp-sink-username", CONF_T_STR, F(smtp_sink_username), "\"\"", 0, 0,
	  P_SMTP, CONF_F_PENDING,
	  "AUTH user name at the sink; empty: no AUTH" },
	{ "smtp-sink-password", CONF_T_STR, F(smtp_sink_password), "\"\"", 0, 0,
	  P_SMTP, CONF_F_SECRET | CONF_F_PENDING,
	  "AUTH password at the sink" },
	{ "smtp-connect-timeout", CONF_T_INT, F(smtp_connect_timeout), "30",
	  1, 600, P_SMTP, 0,
	  "seconds to wait for an outbound connection to open" },

	/* --- RabbitMQ bridge ------------------------------------------- */
	{ "rabbitmq-address", CONF_T_STR, F(rabbitmq_address), "\"\"", 0, 0,
	  P_QMGR, CONF_F_SECRET | CONF_F_PENDING,
	  "amqp://user:pass@host:port/vhost, or a comma-separated list" },
	{ "rabbitmq-inbox", CONF_T_STR, F(rabbitmq_inbox), "\"\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "queue for mail received over SMTP; empty: rabbitmq-outbox" },
	{ "rabbitmq-outbox", CONF_T_STR, F(rabbitmq_outbox), "\"outbox\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "queue consumed for mail to deliver" },
	{ "rabbitmq-results", CONF_T_STR, F(rabbitmq_results), "\"\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "queue for the result of every attempt; empty: none" },
	{ "rabbitmq-success", CONF_T_STR, F(rabbitmq_success), "\"\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "queue for final successes; empty: none" },
	{ "rabbitmq-failure", CONF_T_STR, F(rabbitmq_failure), "\"\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "queue for final failures; empty: none" },
	{ "rabbitmq-retry", CONF_T_STR, F(rabbitmq_retry), "\"\"", 0, 0,
	  P_QMGR, CONF_F_PENDING,
	  "delay queue that dead-letters back to the outbox; empty: none" },
	{ "rabbitmq-prefetch", CONF_T_INT, F(rabbitmq_prefetch), "100",
	  1, 65535, P_QMGR, CONF_F_PENDING,
	  "most unacknowledged messages taken from the outbox at once" },

	/* --- queue ----------------------------------------------------- */
	{ "retries", CONF_T_INTLIST, F(retries),
	  "[600, 1800, 3600, 7200, 14400]", 1, 604800, P_QMGR, 0,
	  "seconds between delivery attempts; the last one repeats" },
	{ "max-delivery-time", CONF_T_INT, F(max_delivery_time), "432000",
	  1, 2592000, P_QMGR, 0,
	  "seconds after which an undelivered message bounces" },
	{ "spool-dir", CONF_T_STR, F(spool_dir), "\"/var/spool/mtad\"", 0, 0,
	  ALL, CONF_F_RESTART,
	  "directory of the message spool" },

	/* --- processes ------------------------------------------------- */
	{ "user", CONF_T_STR, F(user), "\"mtad\"", 0, 0,
	  ALL, CONF_F_RESTART,
	  "unprivileged user the processes run as" },
	{ "control-socket", CONF_T_STR, F(control_socket),
	  "\"/run/mtad/control.sock\"", 0, 0, P_MASTER, CONF_F_RESTART,
	  "UNIX socket for mtactl" },
	{ "pid-file", CONF_T_STR, F(pid_file), "\"/run/mtad/mtad.pid\"", 0, 0,
	  P_MASTER, CONF_F_RESTART,
	  "file holding the master's process id" },
	{ "smtp-workers", CONF_T_INT, F(smtp_workers), "0", 0, 64,
	  P_MASTER, CONF_F_RESTART,
	  "number of outbound smtp processes; 0: one per CPU" },
	{ "resolver-nameservers", CONF_T_STRLIST, F(resolver_nameservers), "[]",
	  0, 0, P_RESOLVER, 0,
	  "DNS servers as ip, ip:port or [ipv6]:port; empty: resolv.conf" },
	{ "log-level", CONF_T_STR, F(log_level), "\"info\"", 0, 0,
	  ALL, 0,
	  "least severe level logged: err, warning, info or debug" },
};

const size_t conf_table_len = sizeof(conf_table) / sizeof(conf_table[0]);
