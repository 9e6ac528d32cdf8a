/*
 * A per-message smarthost from the message properties (DESIGN section 7):
 *
 *   "smarthost": { "hostname": "relay.example.net", "port": 587,
 *                  "username": "user", "password": "secret" }
 *
 * hostname is required; port is a number or a numeric string, 25 when
 * absent; without a username (or with an empty one) no AUTH is tried.
 * The rules for hostname and port are those of envelope_smarthost_key(),
 * which names the message's queue; this file adds the credentials, which
 * only the smtp worker may see.
 */
#ifndef MTAD_PROPS_SMARTHOST_H
#define MTAD_PROPS_SMARTHOST_H

#define PROPS_HOST_MAX		255	/* octets of a hostname */

struct json_object;

struct props_smarthost {
	char	*hostname;	/* lowercased */
	int	 port;
	char	*username;	/* NULL: no AUTH */
	char	*password;	/* NULL when no username; "" when absent */
};

/*
 * Fill sh from the properties JSON object text.  1: a smarthost is named;
 * 0: none (no object, no or a bad hostname or port, as for the queue key);
 * -1: one is named but its username or password is not a string or is
 * longer than SMTP_AUTH_CRED_MAX.  sh is filled only when 1 is returned.
 */
int	props_smarthost(const char *props, struct props_smarthost *sh);
/* A port as a number or a numeric string, 25 when absent (NULL); -1 bad. */
int	props_smarthost_port(struct json_object *);
/* Why a "smarthost" property value cannot be used, or NULL when fine. */
const char	*props_smarthost_check(struct json_object *sh);
/* Free what props_smarthost() filled in, wiping the password. */
void	props_smarthost_clear(struct props_smarthost *sh);

#endif
