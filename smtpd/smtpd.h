/*
 * smtpd: the inbound SMTP process.  Declarations shared by its files:
 *
 *	smtpd.c		entry point, configuration, master wiring, shutdown
 *	listener.c	listening sockets from the master, accept
 *	session.c	one client connection: I/O, state, timeouts, replies
 *	command.c	the verb table and the command handlers
 *	data.c		DATA: framing into the spool file, Received header
 *	spool.c		the channel to qmgr: create/commit/rollback requests
 *	txn.c		the mail transaction: sender, recipients, DSN
 *	limits.c	connections per client IP, the session time limit
 *	tls.c		TLS: the context, STARTTLS, non-blocking SSL I/O
 *	auth.c		AUTH PLAIN and LOGIN (RFC 4954), who may relay
 *	proxy.c		the HAProxy PROXY header before the greeting
 *
 * A session is a small state machine.  It reads a PROXY header in
 * S_PROXY (clients in smtp-proxy only, before the greeting), waits out
 * smtp-greet-delay in S_GREET (a client that talks then is dropped),
 * commands in
 * S_COMMAND, waits for qmgr in S_WAIT_CREATE and S_WAIT_COMMIT (input is
 * buffered, not processed), streams the message in S_DATA and, once it
 * decided to end, drains its output in S_CLOSING.  S_STARTTLS flushes the
 * 220 to STARTTLS before TLS starts; S_AUTH reads an AUTH response line
 * and S_AUTH_FAIL holds the 535 of a failed AUTH for a moment.  Input
 * and output use fixed per-session buffers: a client can never make
 * smtpd grow.
 */
#ifndef MTAD_SMTPD_H
#define MTAD_SMTPD_H

#include <sys/types.h>
#include <sys/queue.h>

#include <event.h>
#include <stdint.h>

#include "netaddr.h"
#include "smtp_parse.h"

#define SMTPD_INBUF		16384	/* client input buffer */
#define SMTPD_OUTBUF		16384	/* reply buffer */
#define SMTPD_REPLY_MAX		1024	/* room for one reply, kept free */
#define SMTPD_WBUF		65536	/* spool write buffer, during DATA */
#define SMTPD_MAX_ERRORS	20	/* then 421 and close */
#define SMTPD_SHUTDOWN_GRACE	10	/* seconds granted at SIGTERM */
#define SMTPD_CLOSE_LINGER	10	/* seconds to flush a last reply */
#define SMTPD_MSGID_MAX		64
#define SMTPD_NVERBS		16	/* verb table size bound (stats) */
#define SMTPD_PROXY_TIMEOUT	10	/* seconds for the PROXY header */
#define SMTPD_AUTH_DELAY	1	/* seconds before a 535 */
#define SMTPD_AUTH_MAX_FAIL	3	/* failed AUTHs, then 421 */
#define SMTPD_AUTH_LINE_MAX	12288	/* AUTH response line (RFC 4954 4) */

struct conf;
struct ssl_ctx_st;
struct ssl_st;

/* What the process keeps from its configuration slice. */
struct smtpd_env {
	char			 hostname[256];
	uint64_t		 maxsize;	/* 0: no limit */
	int			 max_recipients; /* 0: no limit */
	int			 timeout;	/* idle seconds */
	int			 max_connections; /* 0: no limit */
	int			 max_conn_per_ip; /* 0: no limit */
	int			 session_timeout; /* seconds, 0: none */
	int			 greet_delay;	/* seconds before the 220 */
	int			 mq_headers;	/* smtp-mq-headers */
	struct netaddr_range	 range;		/* clients allowed in */
	struct netaddr_range	 proxy;		/* must send a PROXY header */
	struct ssl_ctx_st	*tls;		/* NULL: no smtp-certificate */
	int			 auth;		/* smtp-username is set */
	unsigned char		 auth_user[32];	/* SHA-256 of smtp-username */
	unsigned char		 auth_pass[32];	/* SHA-256 of smtp-password */
	int			 shutting_down;
	unsigned		 nsessions;
};

extern struct smtpd_env	smtpd_env;

enum session_state {
	S_PROXY,		/* reading the PROXY header, no greeting yet */
	S_GREET,		/* smtp-greet-delay: the client must not talk */
	S_COMMAND,		/* reading commands */
	S_STARTTLS,		/* flushing the 220 to STARTTLS */
	S_AUTH,			/* reading an AUTH response line */
	S_AUTH_FAIL,		/* delaying the 535 of a failed AUTH */
	S_WAIT_CREATE,		/* DATA: waiting for qmgr's spool file */
	S_DATA,			/* receiving the message */
	S_WAIT_COMMIT,		/* end of data: waiting for qmgr's commit */
	S_CLOSING		/* flushing the last reply, then free */
};

/* Why a message being received will be refused at the end of data. */
#define DATA_E_NONE		0
#define DATA_E_TOOBIG		1	/* over smtp-maxsize */
#define DATA_E_BARE		2	/* bare CR or LF */
#define DATA_E_LONG		3	/* text line over 1000 octets */
#define DATA_E_WRITE		4	/* spool write failed */
#define DATA_E_QMGR		5	/* qmgr went away meanwhile */
#define DATA_E_LOOP		6	/* too many Received: headers */
#define DATA_E_NUL		7	/* a NUL octet */

#define SMTPD_HOPS_MAX		50	/* Received: headers a message may have */

struct spool_req;
struct mq_headers;
struct json_object;
struct limits_ip;

/* One accepted RCPT, with its RFC 3461 parameters. */
struct smtpd_rcpt {
	char			*addr;
	char			*orcpt;		/* "type;addr", "" if not given */
	int			 notify;	/* DSN_NOTIFY_*, 0: not given */
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	int			 fd;
	enum session_state	 state;
	int			 flags;
#define SF_EHLO		0x01	/* EHLO, not HELO: ESMTP */
#define SF_EOF		0x02	/* the client shut its side */
#define SF_DISCARD	0x04	/* skipping an overlong command line */
#define SF_READING	0x08	/* ev_read is added */
#define SF_WRITING	0x10	/* ev_write is added */
#define SF_ENDED	0x20	/* QUIT, or the end is logged already */
#define SF_TLS		0x40	/* TLS is on (implicit or STARTTLS) */
#define SF_AUTH		0x80	/* AUTH succeeded */
#define SF_RANGE	0x100	/* the client is inside smtp-range */
#define SF_PROXIED	0x200	/* addresses come from a PROXY header */
#define SF_TLS_UP	0x400	/* the handshake is done and logged */
#define SF_TLS_RWANTW	0x800	/* SSL_read waits for writability */
#define SF_TLS_WWANTR	0x1000	/* SSL_write waits for readability */
#define SF_TLS_IMPLICIT	0x2000	/* accepted on a smtp-secure-port */
	struct event		 ev_read;
	struct event		 ev_write;
	struct event		 ev_timer;
	struct netaddr		 peer;
	char			 peer_ip[NETADDR_STRLEN];
	char			 local_ip[NETADDR_STRLEN]; /* PROXY: its dst */
	char			 bind_ip[NETADDR_STRLEN]; /* the socket's */
	char			 proxy_ip[NETADDR_STRLEN]; /* the proxy */
	struct ssl_st		*ssl;		/* used once SF_TLS is set */
	char			*helo;
	const char		*last_verb;	/* for "... after VERB" logs */
	int			 errors;
	int			 auth_state;	/* AUTH_S_*, auth.c */
	int			 auth_failures;
	char			*auth_user;	/* LOGIN: user, until the password */
	int			 last_code;	/* of the last reply, 0: none */
	char			 last_reply[256];
	unsigned		 stats[SMTPD_NVERBS + 1][2]; /* ok, total */

	/* The mail transaction (txn.c). */
	char			*sender;	/* NULL: no MAIL yet */
	struct smtpd_rcpt	*rcpts;
	size_t			 nrcpt;
	size_t			 rcpt_cap;	/* allocated rcpts */
	size_t			 rcpt_bytes;	/* their share of the COMMIT */
	int			 body;		/* SMTP_BODY_* */
	int			 smtputf8;	/* MAIL ... SMTPUTF8 */
	int			 dsn_ret;	/* DSN_RET_*, 0: not given */
	char			*dsn_envid;	/* NULL: not given */
	struct mq_headers	*mqh;		/* x-mq-* filter, during DATA */

	/* limits.c */
	struct limits_ip	*ipcount;	/* counted for its client IP */
	struct event		 ev_life;	/* smtp-session-timeout */
	int			 life_armed;

	/* Its spool file, from qmgr. */
	struct spool_req	*req;		/* pending qmgr request */
	uint32_t		 reqid;		/* id of the CREATE */
	uint32_t		 spool_gen;	/* qmgr channel it came from */
	char			 msgid[SMTPD_MSGID_MAX];
	int			 spoolfd;
	char			*wbuf;
	size_t			 wlen;
	uint64_t		 written;	/* octets in the spool file */
	uint64_t		 msgsize;	/* message octets from the client */
	int			 data_err;	/* DATA_E_* */
	struct smtp_data	 framer;

	size_t			 inoff, inlen;
	size_t			 outoff, outlen;
	/* Last: session_accept() zeroes only what comes before them. */
	char			 inbuf[SMTPD_INBUF];
	char			 outbuf[SMTPD_OUTBUF];
};

/* smtpd.c */
void	smtpd_exit_soon(void);

/* listener.c */
void	listener_add(int fd, uint32_t flags, const char *addr);
void	listener_close_all(void);

/* session.c */
void	session_accept(int fd, const struct sockaddr *, unsigned slen,
	    int tls);
void	session_start(struct session *);
void	session_free(struct session *);
void	session_reply(struct session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_close(struct session *);
void	session_resume(struct session *, enum session_state);
void	session_enter(struct session *, enum session_state);
void	session_txn_reset(struct session *);
void	session_log_reject(struct session *, const char *stage,
	    const char *rcpt);
void	session_shutdown_all(void);
void	session_kill_all(void);
/* "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" (RFC 3848) */
const char *session_proto(struct session *);
/* Inside smtp-range, or authenticated: x-mq-* headers are honoured. */
int	session_may_relay(struct session *);

/* command.c */
void	command_line(struct session *, const char *line, size_t len);
void	command_stats(struct session *, char *buf, size_t len);
void	command_data_ok(struct session *);
void	command_verb_ok(struct session *, const char *verb);

/* tls.c */
int	tls_init(const char *cert, const char *key, const char *ciphers,
	    char **cause);
void	tls_command(struct session *, char *);
int	tls_offered(struct session *);
int	tls_start(struct session *);
void	tls_begin(struct session *);
void	tls_free(struct session *);
/* n > 0 octets, 0 at EOF, TLS_IO_AGAIN or TLS_IO_ERROR (logged) */
#define TLS_IO_ERROR	-1
#define TLS_IO_AGAIN	-2
ssize_t	tls_read(struct session *, void *, size_t);
ssize_t	tls_write(struct session *, const void *, size_t);
int	tls_pending(struct session *);
/* "(using TLSv1.3 with cipher ...)" for Received:, or "" */
void	tls_comment(struct session *, char *, size_t);

/* auth.c */
void	auth_configure(const struct conf *);
void	auth_command(struct session *, char *);
int	auth_offered(struct session *);
int	auth_may_mail(struct session *);
int	auth_input(struct session *);
void	auth_fail_done(struct session *);
void	auth_reset(struct session *);
int	auth_is_loopback(const struct netaddr *);

/* proxy.c */
void	proxy_input(struct session *);

/* txn.c */
void	txn_set_sender(struct session *, const char *,
	    const struct smtp_mail_params *);
int	txn_add_rcpt(struct session *, const char *,
	    const struct smtp_rcpt_params *);
void	txn_clear(struct session *);
/* The properties JSON for the COMMIT; props is consumed. */
char	*txn_properties(struct session *, struct json_object *props);

/* limits.c */
int	limits_ip_take(struct session *);
void	limits_ip_release(struct session *);
void	limits_life_start(struct session *);
void	limits_life_stop(struct session *);

/* data.c */
void	data_start(struct session *);
void	data_created(struct session *, const char *msgid, int fd);
void	data_create_failed(struct session *, unsigned code, const char *);
int	data_input(struct session *);
void	data_committed(struct session *);
void	data_commit_failed(struct session *, unsigned code, const char *);
void	data_abort(struct session *);

/* spool.c */
void	spool_set_chan(int fd);
int	spool_create(struct session *);
int	spool_commit(struct session *, const char *props);
void	spool_rollback(struct session *);
void	spool_detach(struct session *);
void	spool_flush(void);

#endif
