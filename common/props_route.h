/*
 * Per-message routing settings from the message properties (DESIGN
 * section 7), read by the smtp worker:
 *
 *   "security": "none" | "opportunistic" | "required"
 *		the outbound TLS policy for this message (tls_policy.h),
 *		over the route's and smtp-tls-policy; x-mq-security sets it
 *   "ips": ["192.0.2.10", "2001:db8::10"]  (or one string)
 *		the source addresses to send from, instead of the local
 *		address the message came in on; x-mq-ip sets it
 *
 * A value of the wrong type is ignored and flagged (the caller logs it),
 * as msgprops.h does for the queue's settings: the message is then sent
 * as if it were absent.  "ips" is taken whole or not at all: every entry
 * must be an IP address, "0.0.0.0" and "::" meaning "any".
 */
#ifndef MTAD_PROPS_ROUTE_H
#define MTAD_PROPS_ROUTE_H

#include <stddef.h>

#define PROPS_IPS_MAX	16		/* as x-mq-ip (MQH_IPS_MAX) */
#define PROPS_IP_LEN	64		/* octets of one entry as given */

struct props_route {
	int	 security;		/* TLS_POLICY_*, UNSET when absent */
	int	 security_bad;		/* given, but not a policy name */
	char	 ips[PROPS_IPS_MAX][PROPS_IP_LEN];
	size_t	 nips;
	int	 ips_bad;		/* given, but not a list of addresses */
};

/* Fill r from the properties text; anything but an object sets nothing. */
void	props_route(const char *props, struct props_route *r);

#endif
