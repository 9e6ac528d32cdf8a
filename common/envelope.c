/*
 * Envelope <-> JSON (format in envelope.h), with json-c.  Reading checks
 * every field's type, because a file that fails here is moved aside by
 * qmgr rather than trusted; unknown keys are ignored so that a newer
 * writer's additions do not make an older reader reject the file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "dsn.h"
#include "envelope.h"
#include "intern.h"
#include "json_strict.h"
#include "props_smarthost.h"
#include "xmalloc.h"

#define ENV_JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | \
			    JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * Bounds of what an envelope file may say: times up to year 9999 and an
 * attempt count far from wrapping, so that qmgr's arithmetic on them
 * (received + max-delivery-time, attempts + 1) cannot overflow.
 */
#define ENV_TIME_MAX		INT64_C(253402300799)
#define ENV_ATTEMPTS_MAX	INT32_MAX

static const char *state_names[] = {
	[ENV_RCPT_QUEUED] = "queued",
	[ENV_RCPT_DEFERRED] = "deferred",
	[ENV_RCPT_DELIVERED] = "delivered",
	[ENV_RCPT_FAILED] = "failed",
};

void
envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof(*env));
}

/*
 * Every string but the addresses, plain or shared alike: intern_release
 * frees a plain one.
 */
static void
clear_strings(struct envelope *env)
{
	size_t	 i;

	for (i = 0; i < env->nrcpt; i++) {
		intern_release(env->rcpts[i].last);
		intern_release(env->rcpts[i].orcpt);
		intern_release(env->rcpts[i].relay);
	}
	intern_release(env->sender);
	intern_release(env->client);
	intern_release(env->local_ip);
	intern_release(env->bind_ip);
	intern_release(env->helo);
	intern_release(env->properties);
}

void
envelope_clear(struct envelope *env)
{
	size_t	 i;

	for (i = 0; i < env->nrcpt; i++)
		intern_release(env->rcpts[i].address);
	clear_strings(env);
	free(env->rcpts);
	envelope_init(env);
}

void
envelope_clear_keep_rcpts(struct envelope *env)
{
	clear_strings(env);
	envelope_init(env);
}

/* *s becomes the shared copy of its text. */
static void
share(char **s)
{
	char	*shared;

	if (*s == NULL || intern_owns(*s))
		return;
	shared = intern_str(*s);
	free(*s);
	*s = shared;
}

void
envelope_share(struct envelope *env)
{
	size_t	 i;

	for (i = 0; i < env->nrcpt; i++) {
		share(&env->rcpts[i].last);
		share(&env->rcpts[i].orcpt);
		share(&env->rcpts[i].relay);
	}
	share(&env->sender);
	share(&env->client);
	share(&env->local_ip);
	share(&env->bind_ip);
	share(&env->helo);
	share(&env->properties);
}

void
envelope_set(char **field, const char *value)
{
	char	*shared;

	/* First the new one: value may be the old string's own text. */
	shared = intern_str(value);
	intern_release(*field);
	*field = shared;
}

void
envelope_add_rcpt(struct envelope *env, const char *address, int64_t next)
{
	struct envelope_rcpt	*r;

	env->rcpts = xreallocarray(env->rcpts, env->nrcpt + 1,
	    sizeof(*env->rcpts));
	r = &env->rcpts[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->state = ENV_RCPT_QUEUED;
	r->next = next;
	r->last = xstrdup("");
	r->orcpt = xstrdup("");
	r->relay = xstrdup("");
}

const char *
envelope_state_name(int state)
{
	if (state < 0 || state > ENV_RCPT_FAILED)
		return "unknown";
	return state_names[state];
}

int
envelope_state_from_name(const char *name)
{
	int	 i;

	for (i = 0; i <= ENV_RCPT_FAILED; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

/*
 * Parse text that must be one JSON object; NULL otherwise.  Most messages
 * have no properties: "{}" skips the parser, which costs two locale
 * objects per call (json-c), a few times per message.
 */
static struct json_object *
parse_object(const char *text, size_t len)
{
	if (len == 2 && memcmp(text, "{}", 2) == 0)
		return json_object_new_object();
	return json_parse_object(text, len);
}

int
envelope_properties_normalize(const char *text, char **out)
{
	struct json_object	*obj;

	if ((obj = parse_object(text, strlen(text))) == NULL)
		return -1;
	*out = xstrdup(json_object_to_json_string_ext(obj, ENV_JSON_FLAGS));
	json_object_put(obj);
	return 0;
}

static void
add_str(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key,
	    json_object_new_string(value != NULL ? value : ""));
}

static void
add_int(struct json_object *o, const char *key, int64_t value)
{
	json_object_object_add(o, key, json_object_new_int64(value));
}

char *
envelope_to_json(const struct envelope *env, char **cause)
{
	struct json_object	*o, *props, *rcpts, *r;
	const struct envelope_rcpt *er;
	char			*text, notify[DSN_NOTIFY_TEXT_MAX];
	size_t			 i;

	props = parse_object(env->properties != NULL ? env->properties : "{}",
	    env->properties != NULL ? strlen(env->properties) : 2);
	if (props == NULL) {
		xasprintf(cause, "%s: properties are not a JSON object",
		    env->id);
		return NULL;
	}
	o = json_object_new_object();
	add_str(o, "id", env->id);
	add_str(o, "envelope", env->sender);
	add_int(o, "received", env->received);
	add_str(o, "client", env->client);
	add_str(o, "local-ip", env->local_ip);
	if (env->bind_ip != NULL)
		add_str(o, "bind-ip", env->bind_ip);
	add_str(o, "helo", env->helo);
	add_int(o, "size", (int64_t)env->size);
	json_object_object_add(o, "properties", props);
	rcpts = json_object_new_array();
	for (i = 0; i < env->nrcpt; i++) {
		er = &env->rcpts[i];
		r = json_object_new_object();
		add_str(r, "address", er->address);
		add_str(r, "state", envelope_state_name(er->state));
		add_int(r, "attempts", er->attempts);
		add_int(r, "next", er->next);
		add_str(r, "last", er->last);
		add_str(r, "notify", dsn_notify_format(er->notify, notify));
		add_str(r, "orcpt", er->orcpt);
		add_str(r, "status", er->status);
		add_int(r, "code", er->code);
		add_str(r, "relay", er->relay);
		json_object_object_add(r, "warned",
		    json_object_new_boolean(er->warned));
		if (er->held)
			json_object_object_add(r, "held",
			    json_object_new_boolean(1));
		json_object_array_add(rcpts, r);
	}
	json_object_object_add(o, "recipients", rcpts);
	text = xstrdup(json_object_to_json_string_ext(o, ENV_JSON_FLAGS));
	json_object_put(o);
	return text;
}

/* A string member; NULL (with *cause) when missing or of another type. */
static const char *
get_str(struct json_object *o, const char *key, char **cause)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string)) {
		xasprintf(cause, "\"%s\" missing or not a string", key);
		return NULL;
	}
	return json_object_get_string(v);
}

/* An integer member within [min, max]; -1 with *cause otherwise. */
static int
get_int(struct json_object *o, const char *key, int64_t min, int64_t max,
    int64_t *out, char **cause)
{
	struct json_object	*v;
	int64_t			 n;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int)) {
		xasprintf(cause, "\"%s\" missing or not an integer", key);
		return -1;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max) {
		xasprintf(cause, "\"%s\" out of range", key);
		return -1;
	}
	*out = n;
	return 0;
}

/* An optional string member: "" when missing; -1 if of another type. */
static int
get_opt_str(struct json_object *o, const char *key, const char **out,
    char **cause)
{
	struct json_object	*v;

	*out = "";
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		xasprintf(cause, "\"%s\" not a string", key);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

/* The optional members of a recipient (format in envelope.h). */
static int
read_rcpt_dsn(struct envelope_rcpt *er, struct json_object *r, char **cause)
{
	struct json_object	*v;
	const char		*notify, *orcpt, *status, *relay;
	int64_t			 code = 0;
	int			 flags;

	if (get_opt_str(r, "notify", &notify, cause) == -1 ||
	    get_opt_str(r, "orcpt", &orcpt, cause) == -1 ||
	    get_opt_str(r, "status", &status, cause) == -1 ||
	    get_opt_str(r, "relay", &relay, cause) == -1)
		return -1;
	if (json_object_object_get_ex(r, "code", &v) &&
	    get_int(r, "code", 0, 999, &code, cause) == -1)
		return -1;
	if (*notify != '\0') {
		if ((flags = dsn_notify_parse(notify)) == -1) {
			xasprintf(cause, "bad \"notify\"");
			return -1;
		}
		er->notify = (int8_t)flags;
	}
	if (strlen(status) >= sizeof(er->status)) {
		xasprintf(cause, "\"status\" too long");
		return -1;
	}
	if (json_object_object_get_ex(r, "warned", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			xasprintf(cause, "\"warned\" not a boolean");
			return -1;
		}
		er->warned = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(r, "held", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			xasprintf(cause, "\"held\" not a boolean");
			return -1;
		}
		er->held = json_object_get_boolean(v);
	}
	free(er->orcpt);
	er->orcpt = xstrdup(orcpt);
	free(er->relay);
	er->relay = xstrdup(relay);
	memcpy(er->status, status, strlen(status) + 1);
	er->code = (uint32_t)code;
	return 0;
}

/* One element of "recipients". */
static int
read_rcpt(struct envelope *env, struct json_object *r, char **cause)
{
	struct envelope_rcpt	*er;
	const char		*addr, *state, *last;
	int64_t			 attempts, next;
	int			 st;

	if (!json_object_is_type(r, json_type_object)) {
		xasprintf(cause, "a recipient is not an object");
		return -1;
	}
	if ((addr = get_str(r, "address", cause)) == NULL ||
	    (state = get_str(r, "state", cause)) == NULL ||
	    (last = get_str(r, "last", cause)) == NULL ||
	    get_int(r, "attempts", 0, ENV_ATTEMPTS_MAX, &attempts, cause) ==
	    -1 || get_int(r, "next", 0, ENV_TIME_MAX, &next, cause) == -1)
		return -1;
	if ((st = envelope_state_from_name(state)) == -1) {
		xasprintf(cause, "unknown recipient state \"%s\"", state);
		return -1;
	}
	envelope_add_rcpt(env, addr, next);
	er = &env->rcpts[env->nrcpt - 1];
	er->state = st;
	er->attempts = (uint32_t)attempts;
	free(er->last);
	er->last = xstrdup(last);
	return read_rcpt_dsn(er, r, cause);
}

/* Every member of the top-level object. */
static int
read_envelope(struct envelope *env, struct json_object *o, char **cause)
{
	struct json_object	*v;
	const char		*s;
	int64_t			 n;
	size_t			 i, len;

	if ((s = get_str(o, "id", cause)) == NULL)
		return -1;
	if (!msgid_valid(s)) {
		xasprintf(cause, "\"id\" is not a queue id");
		return -1;
	}
	memcpy(env->id, s, MSGID_SIZE);
	if ((s = get_str(o, "envelope", cause)) == NULL)
		return -1;
	env->sender = xstrdup(s);
	if ((s = get_str(o, "client", cause)) == NULL)
		return -1;
	env->client = xstrdup(s);
	if ((s = get_str(o, "local-ip", cause)) == NULL)
		return -1;
	env->local_ip = xstrdup(s);
	if (json_object_object_get_ex(o, "bind-ip", NULL)) {
		if ((s = get_str(o, "bind-ip", cause)) == NULL)
			return -1;
		env->bind_ip = xstrdup(s);
	}
	if ((s = get_str(o, "helo", cause)) == NULL)
		return -1;
	env->helo = xstrdup(s);
	if (get_int(o, "received", 0, ENV_TIME_MAX, &env->received, cause) ==
	    -1)
		return -1;
	if (get_int(o, "size", 0, INT64_MAX, &n, cause) == -1)
		return -1;
	env->size = (uint64_t)n;

	if (!json_object_object_get_ex(o, "properties", &v) ||
	    !json_object_is_type(v, json_type_object)) {
		xasprintf(cause, "\"properties\" missing or not an object");
		return -1;
	}
	env->properties = xstrdup(json_object_to_json_string_ext(v,
	    ENV_JSON_FLAGS));

	if (!json_object_object_get_ex(o, "recipients", &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    (len = json_object_array_length(v)) == 0) {
		xasprintf(cause, "\"recipients\" missing, empty or not an array");
		return -1;
	}
	for (i = 0; i < len; i++)
		if (read_rcpt(env, json_object_array_get_idx(v, i), cause) == -1)
			return -1;
	return 0;
}

int
envelope_from_json(struct envelope *env, const char *text, size_t len,
    char **cause)
{
	struct json_object	*o;
	int			 rv;

	envelope_init(env);
	if ((o = parse_object(text, len)) == NULL) {
		xasprintf(cause, "not a JSON object");
		return -1;
	}
	rv = read_envelope(env, o, cause);
	json_object_put(o);
	if (rv == -1)
		envelope_clear(env);
	return rv;
}

int
envelope_retry_delay(const int *retries, size_t nretries, uint32_t attempts)
{
	size_t	 i;

	if (nretries == 0)
		return ENV_RETRY_DEFAULT;
	/* The last interval repeats for every later attempt. */
	i = attempts > 0 ? attempts - 1 : 0;
	if (i > nretries - 1)
		i = nretries - 1;
	/* Never 0: a retry due at once could spin on a persistent error. */
	return retries[i] > 0 ? retries[i] : 1;
}

int64_t
envelope_retry_next(const int *retries, size_t nretries, uint32_t attempts,
    int64_t now, int64_t expire)
{
	int64_t	 next;

	next = now + envelope_retry_delay(retries, nretries, attempts);
	if (next > expire)
		next = expire > now ? expire : now + 1;
	return next;
}

char *
envelope_domain(const char *address)
{
	const char	*at;
	char		*d, *p;

	if ((at = strrchr(address, '@')) == NULL)
		return xstrdup("");
	d = xstrdup(at + 1);
	for (p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

char *
envelope_addr_host(const char *addr)
{
	const char	*c, *end;

	if (addr[0] == '[' && (end = strchr(addr, ']')) != NULL)
		return xstrndup(addr + 1, (size_t)(end - addr - 1));
	/* Exactly one colon: IPv4 with a port.  More: a bare IPv6 address. */
	if ((c = strchr(addr, ':')) != NULL && strchr(c + 1, ':') == NULL)
		return xstrndup(addr, (size_t)(c - addr));
	return xstrdup(addr);
}

char *
envelope_smarthost_key(const char *properties)
{
	struct json_object	*o, *sh, *host, *port;
	char			*key = NULL, *h, *p;
	int			 n;

	if (properties == NULL ||
	    (o = parse_object(properties, strlen(properties))) == NULL)
		return NULL;
	if (json_object_object_get_ex(o, "smarthost", &sh) &&
	    json_object_is_type(sh, json_type_object) &&
	    json_object_object_get_ex(sh, "hostname", &host) &&
	    json_object_is_type(host, json_type_string) &&
	    json_object_get_string_len(host) > 0 &&
	    json_object_get_string_len(host) <= PROPS_HOST_MAX) {
		if (!json_object_object_get_ex(sh, "port", &port))
			port = NULL;
		if ((n = props_smarthost_port(port)) != -1) {
			h = xstrdup(json_object_get_string(host));
			for (p = h; *p != '\0'; p++)
				*p = (char)tolower((unsigned char)*p);
			xasprintf(&key, "(smarthost) %s:%d", h, n);
			free(h);
		}
	}
	json_object_put(o);
	return key;
}
