/*
 * smtp: the outbound SMTP worker.  qmgr hands it jobs (MSG_SMTP_DELIVER:
 * one message, one destination, some recipients, the spool file as a
 * read-only fd); it picks the next hop, talks SMTP, and answers one
 * MSG_SMTP_RESULT per job with every recipient's outcome.
 *
 *   smtp.c		entry, config, peers (qmgr, resolver), dispatch
 *   smtp_res.c		resolver client: query ids, pending lookups
 *   smtp_job.c		jobs: parsing, recipient outcomes, results, logs
 *   smtp_route.c	next hop: per-message smarthost, smarthost(s),
 *			route or MX hosts, their addresses, the sink
 *   smtp_smarthost.c	health of the smarthosts list: hosts marked down
 *   smtp_sink.c	the sink's address, resolved once; jobs wait for it
 *   smtp_session.c	the SMTP client state machine, connection reuse
 *   smtp_tls.c		outbound TLS (OpenSSL): context, handshake, I/O
 *   smtp_conn.c	opening a connection from the job's source address
 *   smtp_data.c	streaming the message: pread, dot-stuffing
 *
 * Ownership: a job owns its route and, while a session works for it,
 * points at that session; the session points back.  Whoever ends the
 * link clears both sides first, then calls on, because a call into the
 * route or the job may finish the job and free it.
 */
#ifndef MTAD_SMTP_H
#define MTAD_SMTP_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include "chan.h"
#include "conf.h"
#include "dotstuff.h"
#include "hostport.h"
#include "props_route.h"
#include "smtp_reply.h"

/* Reply timeouts (RFC 5321 4.5.3.2 suggests 5/5/5/2/10 minutes). */
#define SMTP_TO_GREETING	300
#define SMTP_TO_EHLO		300
#define SMTP_TO_MAIL		300
#define SMTP_TO_RCPT		300
#define SMTP_TO_DATA		120
#define SMTP_TO_BODY		180	/* per write progress */
#define SMTP_TO_DOT		600
#define SMTP_TO_RSET		60
#define SMTP_TO_QUIT		10
#define SMTP_TO_STARTTLS	120
#define SMTP_TO_TLS		120	/* the whole handshake */
#define SMTP_TO_AUTH		120	/* per AUTH round trip */

#define SMTP_DOWN_TIME		60	/* seconds a smarthost that failed to
					   connect or greet is passed over */
#define SMTP_SINK_WAIT		10	/* seconds a job waits for the sink's
					   address before it is deferred */

#define SMTP_IDLE_TIME		10	/* seconds an idle connection is kept */
#define SMTP_IDLE_MAX		64	/* idle connections kept at most */
#define SMTP_REUSE_MAX		100	/* transactions per connection */
#define SMTP_RCPT_WINDOW	100	/* RCPTs in flight with PIPELINING */

#define SMTP_IBUF_SIZE		(SMTP_REPLY_LINE_MAX + 512)
#define SMTP_OBUF_MAX		(128 * 1024)
#define SMTP_CHUNK		(16 * 1024)	/* message bytes per pread */
#define SMTP_ADDR_MAX		512	/* envelope address octets */
#define SMTP_RELAY_MAX		(256 + HOSTPORT_IPSTRLEN + 16)
#define SMTP_TEXT_MAX		512	/* outcome text */

/*
 * The worker's slice of the config.  The slice itself is kept; the
 * pointers below point into it and are "" rather than NULL.  Routes and
 * sessions copy what they keep, so a reload may free the old slice.
 */
struct smtp_conf {
	struct conf			*conf;
	const char			*smarthost;	/* "" when none */
	int				 smarthost_port;
	const char			*smarthost_username;
	const char			*smarthost_password;
	const struct conf_smarthost	*shosts;	/* smarthosts list */
	size_t				 nshosts;
	const struct conf_route		*routes;
	size_t				 nroutes;
	const char			*sink;		/* "" when none */
	int				 sink_port;
	const char			*sink_username;
	const char			*sink_password;
	int				 mx_port;
	int				 tls_policy;	/* TLS_POLICY_* */
	char				*helo;		/* EHLO name */
	int				 connect_timeout;
};

/*
 * Where a session connects and how it presents itself: what the route
 * chose for one address.  Strings belong to the caller; the session
 * copies them.
 */
struct smtp_dest {
	const char		*name;		/* relay= name: host or "sink" */
	const char		*sni;		/* TLS server name, NULL: none */
	const struct sockaddr	*sa;
	socklen_t		 salen;
	const char		*user;		/* NULL: no AUTH */
	const char		*pass;
	int			 notls;		/* no STARTTLS: a fallback */
	int			 policy;	/* TLS_POLICY_*, never UNSET */
	const char		*source;	/* local address to bind, "": any */
};

extern struct smtp_conf	 smtp_conf;

struct smtp_rcpt {
	uint32_t	 idx;		/* qmgr's index */
	char		*addr;
	int		 done;		/* outcome final for this attempt */
	int		 status;	/* RCPT_* */
	int		 code;		/* SMTP code, 0 when none */
	char		 dsn[SMTP_DSN_MAX];
	char		*text;		/* reply text, or what went wrong */
	const char	*cmd;		/* "RCPT TO"...: the reply's command */
	const char	*stage;		/* "connect"... "data" or "" (results) */
	int		 accepted;	/* 2xx to RCPT in this session */
	char		 relay[SMTP_RELAY_MAX];	/* when the outcome was set */
};

struct smtp_route;
struct smtp_session;

struct smtp_job {
	TAILQ_ENTRY(smtp_job)	 entry;
	uint32_t		 id;
	char			*msgid;
	char			*key;		/* queue key (DESIGN 4) */
	char			*sender;
	char			*source;	/* local IP it came in on, "": any */
	char			*props;		/* properties JSON */
	int			 policy;	/* "security" property, or UNSET */
	char			(*ips)[PROPS_IP_LEN];	/* "ips" property */
	size_t			 nips;
	size_t			 ipfirst;	/* rotation: the one tried first */
	uint64_t		 size;
	uint64_t		 data_off;	/* the message in fd */
	uint64_t		 data_len;
	int			 fd;		/* spool file, read-only */
	int			 smtputf8;	/* an address is not ASCII */
	struct smtp_rcpt	*rcpts;
	size_t			 nrcpt;

	struct smtp_route	*route;
	struct smtp_session	*sess;		/* working for this job */
	TAILQ_ENTRY(smtp_job)	 swait;		/* waiting for the sink */
	int			 sink_waiting;
	time_t			 sink_since;
	char			 relay[SMTP_RELAY_MAX];	/* or "none" */
	const char		*stage;		/* the session's, or NULL */

	struct timespec		 t_start;	/* arrival */
	struct timespec		 t_conn;	/* connected (DNS included) */
	struct timespec		 t_mail;	/* MAIL FROM sent */
};

/* smtp.c */
void		 smtp_qmgr_send(struct msgb *);

/* smtp_res.c: the callback gets RES_* and the answer (records or none). */
struct dns_answer;
struct smtp_res_req;
typedef void	(*smtp_res_cb)(const struct dns_answer *, void *);
void		 smtp_res_peer(int fd);
struct smtp_res_req *smtp_res_query(int qtype, const char *name,
		    smtp_res_cb, void *);
void		 smtp_res_cancel(struct smtp_res_req *);
int		 smtp_res_connected(void);

/* smtp_job.c */
void		 smtp_job_deliver(struct msg *);
void		 smtp_job_abort_all(void);
/* Set one recipient's outcome, unless it already has one. */
void		 smtp_job_rcpt(struct smtp_job *, struct smtp_rcpt *,
		    int status, int code, const char *dsn, const char *text,
		    const char *cmd);
/* The same outcome for every recipient without one. */
void		 smtp_job_rcpt_all(struct smtp_job *, int status, int code,
		    const char *dsn, const char *text, const char *cmd);
/* Status from a reply code: 2xx delivered, 5xx failed, else deferred. */
int		 smtp_job_status(int code);
/* Every recipient has its outcome: report, log, free the job. */
void		 smtp_job_done(struct smtp_job *);
double		 smtp_elapsed(const struct timespec *from,
		    const struct timespec *to);

/* smtp_route.c */
void		 smtp_route_start(struct smtp_job *);
void		 smtp_route_free(struct smtp_route *);
/*
 * The attempt at the current address failed before a transaction began:
 * remember why (soft: worth retrying later; down: the host did not
 * connect or greet, so a smarthost is marked down) and try the next
 * address.
 */
void		 smtp_route_failed(struct smtp_job *, int soft, int down,
		    int code, const char *dsn, const char *text);
/* A reused connection was stale: the same address, on a new one. */
void		 smtp_route_retry(struct smtp_job *);
/*
 * The TLS handshake failed: without credentials the same address again
 * without STARTTLS (opportunistic TLS), with them a 4.7.0 failure, and
 * under the required policy a 4.7.4 one.
 */
void		 smtp_route_tls_failed(struct smtp_job *, const char *text);

/* smtp_smarthost.c: the smarthosts list's health, per worker. */
void		 smtp_smarthost_reset(void);
/* The list's indexes in the order to try them (smarthost_order.h). */
size_t		 smtp_smarthost_order(size_t *order, unsigned *gen);
/* Entry idx (of list generation gen) failed: pass it over a while. */
void		 smtp_smarthost_down(size_t idx, unsigned gen, const char *why);

/* smtp_sink.c */
/* The config changed: resolve the sink again if it is another one. */
void		 smtp_sink_configure(void);
/* Start resolving when needed (worker start, a new resolver). */
void		 smtp_sink_kick(void);
/* The sink's address, or NULL while it is not known. */
const struct sockaddr *smtp_sink_addr(socklen_t *);
/* Park a job until the sink's address is known (or the wait is over). */
void		 smtp_sink_wait(struct smtp_job *);
/* A parked job goes away. */
void		 smtp_sink_forget(struct smtp_job *);

/*
 * smtp_conn.c: the source address for a connection of the job to dst
 * ("": any; *given set when it comes from "ips"), and a connecting
 * non-blocking socket to d from its source: -1 with *why when the
 * connection failed, -2 when a given source address could not be bound
 * (the job's own trouble, not the destination's).  id names the job in
 * the log.
 */
const char	*smtp_conn_source(const struct smtp_job *,
		    const struct sockaddr *dst);
int		 smtp_conn_open(const char *id, const struct smtp_dest *d,
		    char *why, size_t);

/* smtp_session.c */
/* Attach the job to an idle connection to dest from the job's source,
 * with the same credentials; 0 when found. */
int		 smtp_session_reuse(struct smtp_job *, const struct smtp_dest *);
/* Open a connection for the job; -1 with *why when it failed at once,
 * -2 when the source address could not be bound. */
int		 smtp_session_open(struct smtp_job *, const struct smtp_dest *,
		    char *why, size_t);
/* The job goes away (qmgr restarted): drop its connection. */
void		 smtp_session_abort(struct smtp_session *);

/*
 * smtp_tls.c: a client context made once (before the chroot), sessions
 * on it.  Certificates are not verified: opportunistic TLS only keeps
 * passive listeners out.  I/O calls return like read(2)/write(2); when
 * they would block, -1 with errno EAGAIN and *want EV_READ or EV_WRITE
 * (what the TLS layer waits for, which need not be the operation's own
 * direction); other errors -1 with errno EIO and the reason in err.
 */
struct ssl_st;
void		 smtp_tls_init(void);
struct ssl_st	*smtp_tls_new(int fd, const char *sni);
int		 smtp_tls_handshake(struct ssl_st *, int *want, char *err,
		    size_t);
ssize_t		 smtp_tls_read(struct ssl_st *, void *, size_t, int *want,
		    char *err, size_t);
ssize_t		 smtp_tls_write(struct ssl_st *, const void *, size_t,
		    int *want, char *err, size_t);
int		 smtp_tls_pending(struct ssl_st *);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
const char	*smtp_tls_info(struct ssl_st *, char *, size_t);
/* Send close_notify if it can go at once, then free. */
void		 smtp_tls_free(struct ssl_st *);

/* smtp_data.c: the body phase of a session. */
struct smtp_data {
	off_t		 off;		/* next file offset to read */
	off_t		 end;		/* where the message ends */
	int		 eof;		/* the terminator is queued */
	struct dotstuff	 dot;
};
/* The message is the len bytes at off of the file. */
void		 smtp_data_start(struct smtp_data *, uint64_t off, uint64_t len);
/*
 * Fill buf (room bytes free, at least SMTP_DATA_ROOM) from the file.
 * Returns the bytes added, 0 when everything is queued, -1 on a read
 * error (errno set).
 */
#define SMTP_DATA_ROOM	(DOTSTUFF_MAXOUT(SMTP_CHUNK) + DOTSTUFF_ENDLEN)
ssize_t		 smtp_data_fill(struct smtp_data *, int fd, char *buf,
		    size_t room);

#endif
