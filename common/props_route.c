/*
 * Reading "security" and "ips" out of the message properties.  See
 * props_route.h.
 */
#include <string.h>

#include <json-c/json.h>

#include "hostport.h"
#include "json_strict.h"
#include "props_route.h"
#include "tls_policy.h"

/* One "ips" entry: an IP address as a string; 0 when it is taken. */
static int
props_route_ip(struct props_route *r, struct json_object *v)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const char		*s;

	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) >= PROPS_IP_LEN ||
	    r->nips >= PROPS_IPS_MAX)
		return -1;
	s = json_object_get_string(v);
	if (hostport_ip(s, 0, &ss, &len) == -1)
		return -1;
	memcpy(r->ips[r->nips++], s, strlen(s) + 1);
	return 0;
}

/* "ips": one address or a list of them, all good or none taken. */
static void
props_route_ips(struct props_route *r, struct json_object *v)
{
	size_t	 i, n;

	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (props_route_ip(r,
			    json_object_array_get_idx(v, i)) == -1)
				break;
		if (i == n)
			return;
	} else if (props_route_ip(r, v) == 0)
		return;
	r->nips = 0;
	r->ips_bad = 1;
}

void
props_route(const char *props, struct props_route *r)
{
	struct json_object	*o, *v;
	int			 p;

	memset(r, 0, sizeof(*r));
	if (props == NULL ||
	    (o = json_parse_object(props, strlen(props))) == NULL)
		return;
	if (json_object_object_get_ex(o, "security", &v) && v != NULL) {
		if (json_object_is_type(v, json_type_string) &&
		    (p = tls_policy_parse(json_object_get_string(v))) != -1)
			r->security = p;
		else
			r->security_bad = 1;
	}
	if (json_object_object_get_ex(o, "ips", &v) && v != NULL)
		props_route_ips(r, v);
	json_object_put(o);
}
