/*
 * The one list of messages exchanged between mtad processes.
 *
 * Bump PROTO_VERSION whenever a payload below changes: the master sends it in
 * MSG_SETUP_DONE and a child built from other sources refuses to run.
 *
 * Each entry: X(name, senders, receivers) where senders/receivers are masks
 * of PROC_* bits.  A receiver checks every incoming type against this matrix
 * (chan.c) before its handler runs; a type from the wrong sender is fatal.
 * Payloads are built and read with the typed helpers of chan.h; the layout
 * of each payload is written beside its entry, in order.
 */
#ifndef MTAD_PROTO_H
#define MTAD_PROTO_H

#define PROTO_VERSION	5

enum proc_type {
	PROC_MASTER = 0,
	PROC_SMTPD,
	PROC_QMGR,
	PROC_SMTP,
	PROC_RESOLVER,
	PROC_CONTROL,		/* an mtactl client on the control socket */
	PROC_COUNT
};

#define P_MASTER	(1u << PROC_MASTER)
#define P_SMTPD		(1u << PROC_SMTPD)
#define P_QMGR		(1u << PROC_QMGR)
#define P_SMTP		(1u << PROC_SMTP)
#define P_RESOLVER	(1u << PROC_RESOLVER)
#define P_CONTROL	(1u << PROC_CONTROL)
#define P_CHILDREN	(P_SMTPD | P_QMGR | P_SMTP | P_RESOLVER)

#define MSG_LIST(X)							\
	/* --- setup, master <-> every child --------------------------- */ \
	/* str config text (libconfig syntax, the receiver's slice) */	\
	X(MSG_SETUP_CONF,	P_MASTER,	P_CHILDREN)			\
	/* peerid = peer instance; u32 peer proc; fd = channel */		\
	X(MSG_SETUP_PEER,	P_MASTER,	P_CHILDREN)			\
	/* u32 flags (LISTENER_*); str local address "ip:port"; fd */	\
	X(MSG_SETUP_LISTENER,	P_MASTER,	P_SMTPD)			\
	/* u32 PROTO_VERSION; u32 this child's instance number */		\
	X(MSG_SETUP_DONE,	P_MASTER,	P_CHILDREN)			\
	/* empty: the child has dropped privileges and runs */		\
	X(MSG_SETUP_READY,	P_CHILDREN,	P_MASTER)			\
	/* str config text: re-read settings that can change live */	\
	X(MSG_CONF_RELOAD,	P_MASTER,	P_CHILDREN)			\
	/* --- control, mtactl <-> master ------------------------------ */ \
	/* str command; u32 flags (CTL_F_*); str argument ("" if none);	\
	 * u32 limit (0: CTL_LIMIT_DEFAULT); u32 offset */		\
	X(MSG_CTL_REQUEST,	P_CONTROL,	P_MASTER)			\
	/* u32 status (0 ok, 1 refused/failed); str JSON or reason */	\
	X(MSG_CTL_REPLY,	P_MASTER,	P_CONTROL)			\
	/* --- control, master <-> children (for mtactl) --------------- */ \
	/* peerid = request id; str command; str argument; u32 flags;	\
	 * u32 limit; u32 offset (as in MSG_CTL_REQUEST) */		\
	X(MSG_CTL_QMGR_REQUEST,	P_MASTER,	P_QMGR)				\
	/* peerid = request id; u32 status (0 ok, 1 failed);		\
	 * str JSON answer, or the reason of the failure */		\
	X(MSG_CTL_QMGR_REPLY,	P_QMGR,		P_MASTER)			\
	/* peerid = request id; empty: report the counters (counter.h) */ \
	X(MSG_CTL_STATS,	P_MASTER,	P_CHILDREN)			\
	/* peerid = request id; u32 n (COUNTER_COUNT); n x u64 value */	\
	X(MSG_CTL_STATS_REPLY,	P_CHILDREN,	P_MASTER)			\
	/* --- spool, smtpd <-> qmgr ----------------------------------- */ \
	/* peerid = request id; empty */					\
	X(MSG_QMGR_CREATE,	P_SMTPD,	P_QMGR)				\
	/* peerid; str msgid; fd = spool file opened for writing */	\
	X(MSG_QMGR_CREATE_OK,	P_QMGR,		P_SMTPD)			\
	/* peerid; u32 smtp code (451/452); str text */			\
	X(MSG_QMGR_CREATE_FAIL,	P_QMGR,		P_SMTPD)			\
	/* peerid; str msgid; str sender; str helo; str client addr;	\
	 * str local addr (PROXY: the header's destination);		\
	 * str bind addr (the socket's own local address: the source	\
	 * address for delivery); u64 size; str properties JSON ("{}");	\
	 * u32 nrcpt; nrcpt x (str recipient; str NOTIFY ("" = not	\
	 * given, else "NEVER" or e.g. "SUCCESS,FAILURE,DELAY");		\
	 * str ORCPT ("" or "addr-type;address", xtext decoded)).	\
	 * RET and ENVID travel in the properties: "dsn": {"ret":	\
	 * "FULL"|"HDRS", "envid": "..." (xtext decoded)} */		\
	X(MSG_QMGR_COMMIT,	P_SMTPD,	P_QMGR)				\
	/* peerid; str msgid: durable, smtpd may answer 250 */		\
	X(MSG_QMGR_COMMIT_OK,	P_QMGR,		P_SMTPD)			\
	/* peerid; u32 smtp code (451/452/554); str text */		\
	X(MSG_QMGR_COMMIT_FAIL,	P_QMGR,		P_SMTPD)			\
	/* peerid; str msgid: the transaction was abandoned */		\
	X(MSG_QMGR_ROLLBACK,	P_SMTPD,	P_QMGR)				\
	/* --- delivery, qmgr <-> smtp --------------------------------- */ \
	/* peerid = job id; str msgid; str queue key; str sender;	\
	 * str source addr ("" = any); str properties JSON; u64 size;	\
	 * u64 data offset; u64 data length (the message's bytes in the	\
	 * file); u32 nrcpt; nrcpt x (u32 rcpt index, str recipient);	\
	 * fd = spool file, read-only, positioned anywhere */		\
	X(MSG_SMTP_DELIVER,	P_QMGR,		P_SMTP)				\
	/* peerid = job id; u32 nrcpt; nrcpt x (u32 rcpt index,		\
	 * u32 RCPT_* status, u32 smtp code (0 if none), str dsn "4.4.1",	\
	 * str text, str relay "host[ip]:port" or "none", str stage	\
	 * where the outcome was decided: "connect", "ehlo", "starttls",	\
	 * "auth", "mailfrom", "rcptto", "data" or "") */		\
	X(MSG_SMTP_RESULT,	P_SMTP,		P_QMGR)				\
	/* --- DNS, smtp/qmgr <-> resolver ------------------------------ */ \
	/* peerid = query id; u32 qtype (RES_T_*); str name */		\
	X(MSG_RES_QUERY,	P_SMTP | P_QMGR, P_RESOLVER)			\
	/* peerid; u32 RES_* status; u32 ttl; u32 n;			\
	 * n x (u32 preference (0 for A/AAAA), str host or address) */	\
	X(MSG_RES_ANSWER,	P_RESOLVER,	P_SMTP | P_QMGR)

enum msg_type {
	MSG_NONE = 0,
#define MSG_ENUM(name, from, to) name,
	MSG_LIST(MSG_ENUM)
#undef MSG_ENUM
	MSG_TYPE_COUNT
};

/* MSG_CTL_REQUEST flags */
#define CTL_F_JSON		0x1	/* the client prints JSON */
#define CTL_F_BOUNCE		0x2	/* remove: return it to the sender */
#define CTL_LIMIT_DEFAULT	1000	/* rows of list, queue, show */
#define CTL_LIMIT_MAX		100000

/* MSG_SETUP_LISTENER flags */
#define LISTENER_TLS		0x1	/* implicit TLS (smtp-secure-port) */

/* MSG_SMTP_RESULT recipient status */
#define RCPT_DELIVERED		0
#define RCPT_DEFERRED		1
#define RCPT_FAILED		2

/* MSG_RES_QUERY types (DNS RR type numbers) */
#define RES_T_A			1
#define RES_T_MX		15
#define RES_T_AAAA		28

/* MSG_RES_ANSWER status */
#define RES_OK			0
#define RES_NXDOMAIN		1	/* permanent: the name does not exist */
#define RES_NODATA		2	/* the name exists, no record of the type */
#define RES_TEMPFAIL		3	/* SERVFAIL, timeout, no server */

const char	*proc_name(int proc);
const char	*msg_name(int type);
/* Non-zero when a message of this type may go from proc "from" to "to". */
int		 msg_allowed(int type, int from, int to);

#endif
