/*
 * Outbound TLS policy names and precedence.  See tls_policy.h.
 */
#include <stddef.h>
#include <strings.h>

#include "tls_policy.h"

static const char *tls_policy_names[] = {
	[TLS_POLICY_UNSET] = "unset",
	[TLS_POLICY_NONE] = "none",
	[TLS_POLICY_OPPORTUNISTIC] = "opportunistic",
	[TLS_POLICY_REQUIRED] = "required",
};

int
tls_policy_parse(const char *s)
{
	int	 i;

	if (s == NULL)
		return -1;
	for (i = TLS_POLICY_NONE; i <= TLS_POLICY_REQUIRED; i++)
		if (strcasecmp(s, tls_policy_names[i]) == 0)
			return i;
	return -1;
}

const char *
tls_policy_name(int p)
{
	if (p < TLS_POLICY_UNSET || p > TLS_POLICY_REQUIRED)
		return "?";
	return tls_policy_names[p];
}

int
tls_policy_pick(int msg, int route, int global)
{
	if (msg != TLS_POLICY_UNSET)
		return msg;
	if (route != TLS_POLICY_UNSET)
		return route;
	return global != TLS_POLICY_UNSET ? global :
	    TLS_POLICY_OPPORTUNISTIC;
}
