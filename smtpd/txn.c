/*
 * txn: the mail transaction of a session, from MAIL to the end of DATA:
 * the sender with its RET/ENVID and SMTPUTF8, and the recipients with
 * their NOTIFY/ORCPT (RFC 3461, RFC 6531).  session_txn_reset() clears it.
 *
 * Everything here ends up in one MSG_QMGR_COMMIT, whose payload is
 * bounded (MSG_MAX_PAYLOAD): the recipients' share is counted as they
 * come, and a RCPT that would not fit is refused like one over
 * smtp-max-recipients.  The properties (x-mq-* headers, bounded by
 * mq_headers.h) have their own reserve.
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "chan.h"
#include "dsn.h"
#include "xmalloc.h"
#include "smtpd.h"

/* Room kept for the rest of the COMMIT: ids, sender, helo, properties. */
#define TXN_RESERVE		(512u * 1024)
#define TXN_RCPT_BUDGET		(MSG_MAX_PAYLOAD - TXN_RESERVE)
/* A string's cost in a payload beyond its octets: tag, length, NUL. */
#define TXN_STR_OVERHEAD	16

/* MAIL accepted: the sender and what its parameters said. */
void
txn_set_sender(struct session *s, const char *addr,
    const struct smtp_mail_params *mp)
{
	s->sender = xstrdup(addr);
	s->body = mp->body;
	s->smtputf8 = mp->smtputf8;
	s->dsn_ret = mp->ret;
	free(s->dsn_envid);
	s->dsn_envid = mp->envid[0] != '\0' ? xstrdup(mp->envid) : NULL;
}

/* Add a recipient; -1 when the COMMIT could not carry one more. */
int
txn_add_rcpt(struct session *s, const char *addr,
    const struct smtp_rcpt_params *rp)
{
	struct smtpd_rcpt	*r;
	size_t			 cost;

	cost = strlen(addr) + strlen(rp->orcpt) + DSN_NOTIFY_TEXT_MAX +
	    3 * TXN_STR_OVERHEAD;
	if (s->rcpt_bytes + cost > TXN_RCPT_BUDGET)
		return -1;
	if (s->nrcpt == s->rcpt_cap) {
		/* doubling: 10,000 RCPTs must not cost 10,000 copies */
		s->rcpt_cap = s->rcpt_cap == 0 ? 8 : s->rcpt_cap * 2;
		s->rcpts = xreallocarray(s->rcpts, s->rcpt_cap,
		    sizeof(*s->rcpts));
	}
	r = &s->rcpts[s->nrcpt++];
	r->addr = xstrdup(addr);
	r->orcpt = xstrdup(rp->orcpt);
	r->notify = rp->notify;
	s->rcpt_bytes += cost;
	return 0;
}

/* Forget the transaction (session_txn_reset). */
void
txn_clear(struct session *s)
{
	size_t	i;

	free(s->sender);
	s->sender = NULL;
	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i].addr);
		free(s->rcpts[i].orcpt);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->rcpt_cap = 0;
	s->rcpt_bytes = 0;
	s->body = SMTP_BODY_UNSET;
	s->smtputf8 = 0;
	s->dsn_ret = 0;
	free(s->dsn_envid);
	s->dsn_envid = NULL;
}

/*
 * The properties text: what the x-mq-* headers set (props), with RET and
 * ENVID from MAIL in "dsn" (the SMTP parameters win over x-mq-dsn-*).
 */
char *
txn_properties(struct session *s, struct json_object *props)
{
	struct json_object	*dsn;
	char			*text;

	if (s->dsn_ret != 0 || s->dsn_envid != NULL) {
		if (!json_object_object_get_ex(props, "dsn", &dsn) ||
		    !json_object_is_type(dsn, json_type_object)) {
			dsn = json_object_new_object();
			json_object_object_add(props, "dsn", dsn);
		}
		if (s->dsn_ret != 0)
			json_object_object_add(dsn, "ret",
			    json_object_new_string(s->dsn_ret == DSN_RET_FULL ?
			    "FULL" : "HDRS"));
		if (s->dsn_envid != NULL)
			json_object_object_add(dsn, "envid",
			    json_object_new_string(s->dsn_envid));
	}
	text = xstrdup(json_object_to_json_string_ext(props,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(props);
	return text;
}
