/*
 * smtpd: the inbound SMTP process.  Declarations shared by its files:
 *
 *	smtpd.c		entry point, configuration, master wiring, shutdown
 *	listener.c	listening sockets from the master, accept
 *	session.c	one client connection: I/O, state, timeouts, replies
 *	command.c	the verb table and the command handlers
 *	data.c		DATA: framing into the spool file, Received header
 *	spool.c		the channel to qmgr: create/commit/rollback requests
 *
 * A session is a small state machine.  It reads commands while in
 * S_COMMAND, waits for qmgr in S_WAIT_CREATE and S_WAIT_COMMIT (input is
 * buffered, not processed), streams the message in S_DATA and, once it
 * decided to end, drains its output in S_CLOSING.  Input and output use
 * fixed per-session buffers: a client can never make smtpd grow.
 */
#ifndef MTAD_SMTPD_H
#define MTAD_SMTPD_H

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

/* What the process keeps from its configuration slice. */
struct smtpd_env {
	char			 hostname[256];
	uint64_t		 maxsize;	/* 0: no limit */
	int			 max_recipients; /* 0: no limit */
	int			 timeout;	/* idle seconds */
	int			 max_connections; /* 0: no limit */
	struct netaddr_range	 range;		/* clients allowed in */
	int			 shutting_down;
	unsigned		 nsessions;
};

extern struct smtpd_env	smtpd_env;

enum session_state {
	S_COMMAND,		/* reading commands */
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

struct spool_req;

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
	struct event		 ev_read;
	struct event		 ev_write;
	struct event		 ev_timer;
	struct netaddr		 peer;
	char			 peer_ip[NETADDR_STRLEN];
	char			 local_ip[NETADDR_STRLEN];
	char			*helo;
	const char		*last_verb;	/* for "... after VERB" logs */
	int			 errors;
	int			 last_code;	/* of the last reply, 0: none */
	char			 last_reply[256];
	unsigned		 stats[SMTPD_NVERBS + 1][2]; /* ok, total */

	/* The mail transaction. */
	char			*sender;	/* NULL: no MAIL yet */
	char			**rcpts;
	size_t			 nrcpt;
	int			 body;		/* SMTP_BODY_* */

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
	char			 inbuf[SMTPD_INBUF];
	char			 outbuf[SMTPD_OUTBUF];
};

/* smtpd.c */
void	smtpd_exit_soon(void);

/* listener.c */
void	listener_add(int fd, uint32_t flags, const char *addr);
void	listener_close_all(void);

/* session.c */
void	session_accept(int fd, const struct sockaddr *, unsigned slen);
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

/* command.c */
void	command_line(struct session *, const char *line, size_t len);
void	command_stats(struct session *, char *buf, size_t len);
void	command_data_ok(struct session *);

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
int	spool_commit(struct session *);
void	spool_rollback(struct session *);
void	spool_detach(struct session *);
void	spool_flush(void);

#endif
