/*
 * smtp: the outbound SMTP worker.  qmgr hands it jobs (MSG_SMTP_DELIVER:
 * one message, one destination, some recipients, the spool file as a
 * read-only fd); it picks the next hop, talks SMTP, and answers one
 * MSG_SMTP_RESULT per job with every recipient's outcome.
 *
 *   smtp.c		entry, config, peers (qmgr, resolver), dispatch
 *   smtp_res.c		resolver client: query ids, pending lookups
 *   smtp_job.c		jobs: parsing, recipient outcomes, results, logs
 *   smtp_route.c	next hop: smarthost or MX hosts, their addresses
 *   smtp_session.c	the SMTP client state machine, connection reuse
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
#include "dotstuff.h"
#include "hostport.h"
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

/* The worker's slice of the config. */
struct smtp_conf {
	char		*smarthost;		/* "" when none */
	int		 smarthost_port;
	char		*smarthost_username;
	char		*smarthost_password;
	char		*helo;			/* EHLO name */
	int		 connect_timeout;
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
	char			*source;	/* local IP to bind, "": any */
	char			*props;		/* properties JSON */
	uint64_t		 size;
	int			 fd;		/* spool file, read-only */
	int			 smtputf8;	/* an address is not ASCII */
	struct smtp_rcpt	*rcpts;
	size_t			 nrcpt;

	struct smtp_route	*route;
	struct smtp_session	*sess;		/* working for this job */
	char			 relay[SMTP_RELAY_MAX];	/* or "none" */

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
 * remember why (soft: worth retrying later) and try the next address.
 */
void		 smtp_route_failed(struct smtp_job *, int soft, int code,
		    const char *dsn, const char *text);
/* A reused connection was stale: the same address, on a new one. */
void		 smtp_route_retry(struct smtp_job *);

/* smtp_conn.c: a connecting non-blocking socket, or -1 with *why. */
int		 smtp_conn_open(const char *host, const struct sockaddr *,
		    socklen_t, const char *source, char *why, size_t);

/* smtp_session.c */
/* Attach the job to an idle connection to (sa, source); 0 when found. */
int		 smtp_session_reuse(struct smtp_job *, const struct sockaddr *,
		    const char *host);
/* Open a connection for the job; -1 with *why when it failed at once. */
int		 smtp_session_open(struct smtp_job *, const char *host,
		    const struct sockaddr *, socklen_t, char *why, size_t);
/* The job goes away (qmgr restarted): drop its connection. */
void		 smtp_session_abort(struct smtp_session *);

/* smtp_data.c: the body phase of a session. */
struct smtp_data {
	off_t		 off;		/* next file offset to read */
	int		 eof;		/* the terminator is queued */
	struct dotstuff	 dot;
};
void		 smtp_data_start(struct smtp_data *);
/*
 * Fill buf (room bytes free, at least SMTP_DATA_ROOM) from the file.
 * Returns the bytes added, 0 when everything is queued, -1 on a read
 * error (errno set).
 */
#define SMTP_DATA_ROOM	(DOTSTUFF_MAXOUT(SMTP_CHUNK) + DOTSTUFF_ENDLEN)
ssize_t		 smtp_data_fill(struct smtp_data *, int fd, char *buf,
		    size_t room);

#endif
