/*
 * Reading the per-message smarthost, with its credentials, out of the
 * message properties.  See props_smarthost.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_strict.h"
#include "props_smarthost.h"
#include "smtp_auth.h"
#include "xmalloc.h"

int
props_smarthost_port(struct json_object *v)
{
	const char	*s;
	char		*end;
	long		 n;

	if (v == NULL)
		return 25;
	if (json_object_is_type(v, json_type_int))
		n = (long)json_object_get_int64(v);
	else if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		errno = 0;
		n = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0)
			return -1;
	} else
		return -1;
	return (n >= 1 && n <= 65535) ? (int)n : -1;
}

/*
 * An optional credential member: 0 with *out NULL when absent or null,
 * 0 with a copy when a string short enough, -1 otherwise.
 */
static int
props_cred(struct json_object *sh, const char *name, char **out)
{
	struct json_object	*v;

	*out = NULL;
	if (!json_object_object_get_ex(sh, name, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) > SMTP_AUTH_CRED_MAX)
		return -1;
	*out = xstrdup(json_object_get_string(v));
	return 0;
}

const char *
props_smarthost_check(struct json_object *sh)
{
	struct json_object	*host, *port, *v;
	static const char	*creds[] = { "username", "password" };
	size_t			 i;

	if (!json_object_is_type(sh, json_type_object))
		return "smarthost is not an object";
	if (!json_object_object_get_ex(sh, "hostname", &host) ||
	    !json_object_is_type(host, json_type_string) ||
	    json_object_get_string_len(host) == 0)
		return "smarthost has no hostname";
	if (json_object_get_string_len(host) > PROPS_HOST_MAX)
		return "smarthost hostname is too long";
	if (!json_object_object_get_ex(sh, "port", &port))
		port = NULL;
	if (props_smarthost_port(port) == -1)
		return "smarthost port is not a port number";
	for (i = 0; i < sizeof(creds) / sizeof(creds[0]); i++)
		if (json_object_object_get_ex(sh, creds[i], &v) && v != NULL &&
		    (!json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > SMTP_AUTH_CRED_MAX))
			return "smarthost credentials are not short strings";
	return NULL;
}

int
props_smarthost(const char *props, struct props_smarthost *out)
{
	struct json_object	*o, *sh, *host, *port;
	struct props_smarthost	 r;
	char			*p;
	int			 ret = 0;

	memset(&r, 0, sizeof(r));
	if (props == NULL ||
	    (o = json_parse_object(props, strlen(props))) == NULL)
		return 0;
	if (!json_object_object_get_ex(o, "smarthost", &sh) ||
	    !json_object_is_type(sh, json_type_object) ||
	    !json_object_object_get_ex(sh, "hostname", &host) ||
	    !json_object_is_type(host, json_type_string) ||
	    json_object_get_string_len(host) == 0 ||
	    json_object_get_string_len(host) > PROPS_HOST_MAX)
		goto done;
	if (!json_object_object_get_ex(sh, "port", &port))
		port = NULL;
	if ((r.port = props_smarthost_port(port)) == -1)
		goto done;
	ret = -1;
	if (props_cred(sh, "username", &r.username) == -1 ||
	    props_cred(sh, "password", &r.password) == -1)
		goto done;
	if (r.username != NULL && r.username[0] == '\0') {
		free(r.username);
		r.username = NULL;
	}
	if (r.username == NULL && r.password != NULL) {
		xfreestr(r.password);
		r.password = NULL;
	} else if (r.username != NULL && r.password == NULL)
		r.password = xstrdup("");
	r.hostname = xstrdup(json_object_get_string(host));
	for (p = r.hostname; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	*out = r;
	memset(&r, 0, sizeof(r));
	ret = 1;
done:
	props_smarthost_clear(&r);
	json_object_put(o);
	return ret;
}

void
props_smarthost_clear(struct props_smarthost *sh)
{
	free(sh->hostname);
	free(sh->username);
	if (sh->password != NULL)
		xfreestr(sh->password);
	memset(sh, 0, sizeof(*sh));
}
