/*
 * Outbound TLS policy levels (smtp-tls-policy, the "security" member of
 * a route, the "security" message property):
 *
 *	none		never STARTTLS, even when offered
 *	opportunistic	STARTTLS when offered; plaintext when it is not,
 *			or when the handshake fails and the hop has no
 *			credentials (the default)
 *	required	STARTTLS or nothing: a server that does not offer
 *			it, refuses it or fails the handshake gets no mail
 *			(deferred, 4.7.4)
 *
 * Names are compared without case.  0 is "not set", so that a level
 * given at a finer grain (message, then route) can be told from none.
 */
#ifndef MTAD_TLS_POLICY_H
#define MTAD_TLS_POLICY_H

#define TLS_POLICY_UNSET		0
#define TLS_POLICY_NONE			1
#define TLS_POLICY_OPPORTUNISTIC	2
#define TLS_POLICY_REQUIRED		3

/* The level of a name, or -1 when it names none. */
int		 tls_policy_parse(const char *);
/* The name of a level ("unset" for 0). */
const char	*tls_policy_name(int);
/* The level in force: the first one set of msg, route, global. */
int		 tls_policy_pick(int msg, int route, int global);

#endif
