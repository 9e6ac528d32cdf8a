/*
 * Fuzz target: the x-mq header filter (common/mq_headers.h) between the
 * DATA framer and the spool file.
 *
 * Input: byte 0 holds the options (MQH_F_STRIP, MQH_F_UTF8) and a chunk
 * size; the rest is the message.  It is filtered twice, once raw (any
 * octets: only "no crash, same result in any chunking" is asked) and
 * once as the framer delivers an accepted message (every line end CRLF),
 * where the properties are checked:
 *
 *  - whole and chunked feeding give the same output, properties,
 *    envelope, Received: count and warnings;
 *  - without MQH_F_STRIP the output is the input, octet for octet;
 *  - with it, no line of the output's header section starts with
 *    "x-mq-" (any case), and everything from the first empty line on
 *    (the body) is passed through untouched;
 *  - the properties are a JSON object that qmgr accepts
 *    (envelope_properties_normalize) and reads (msgprops_parse);
 *  - the warnings are printable text within their bound.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <json.h>

#include "envelope.h"
#include "fuzz.h"
#include "mq_headers.h"
#include "msgprops.h"
#include "xmalloc.h"

struct out {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

struct result {
	struct out	 out;
	char		*props;
	char		*envelope;
	unsigned	 nreceived;
	char		 warn[MQH_WARN_MAX];
};

static void
emit(void *arg, const char *buf, size_t len)
{
	struct out	*o = arg;

	if (o->len + len > o->cap) {
		o->cap = (o->len + len) * 2;
		o->p = xreallocarray(o->p, o->cap, 1);
	}
	memcpy(o->p + o->len, buf, len);
	o->len += len;
}

static void
filter(const char *in, size_t len, int opts, size_t chunk, struct result *r)
{
	struct mq_headers	 h;
	struct json_object	*o;
	size_t			 off, n;

	memset(r, 0, sizeof(*r));
	mq_headers_init(&h, opts, emit, &r->out);
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		mq_headers_feed(&h, in + off, n);
	}
	mq_headers_end(&h);
	o = mq_headers_props(&h);
	FUZZ_CHECK(o != NULL && json_object_is_type(o, json_type_object));
	r->props = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	r->envelope = h.envelope != NULL ? xstrdup(h.envelope) : NULL;
	r->nreceived = h.nreceived;
	FUZZ_CHECK(memchr(h.warn, '\0', sizeof(h.warn)) != NULL);
	memcpy(r->warn, h.warn, sizeof(r->warn));
	mq_headers_clear(&h);
}

static void
result_free(struct result *r)
{
	free(r->out.p);
	free(r->props);
	free(r->envelope);
}

static void
same(const struct result *a, const struct result *b)
{
	FUZZ_CHECK(a->out.len == b->out.len &&
	    (a->out.len == 0 || memcmp(a->out.p, b->out.p, a->out.len) == 0));
	FUZZ_CHECK(strcmp(a->props, b->props) == 0);
	FUZZ_CHECK((a->envelope == NULL) == (b->envelope == NULL));
	FUZZ_CHECK(a->envelope == NULL ||
	    strcmp(a->envelope, b->envelope) == 0);
	FUZZ_CHECK(a->nreceived == b->nreceived);
	FUZZ_CHECK(strcmp(a->warn, b->warn) == 0);
}

/* Where the body starts: just after the first empty line, or len. */
static size_t
body_start(const char *p, size_t len)
{
	size_t	 i;

	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	for (i = 0; i + 3 < len; i++)
		if (memcmp(p + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	return len;
}

/* Everything from the first empty line on passes untouched. */
static int
body_untouched(const char *in, size_t len, const struct result *r)
{
	size_t	 ib = body_start(in, len), ob;

	ob = body_start(r->out.p, r->out.len);
	return len - ib == r->out.len - ob &&
	    (len == ib || memcmp(in + ib, r->out.p + ob, len - ib) == 0);
}

/* The checks on a message with CRLF line ends only. */
static void
check_clean(const char *in, size_t len, int opts, const struct result *r)
{
	struct msgprops	 mp;
	char		*norm, *warnings;
	size_t		 ob, i;

	if (!(opts & MQH_F_STRIP)) {
		FUZZ_CHECK(r->out.len == len &&
		    (len == 0 || memcmp(r->out.p, in, len) == 0));
		FUZZ_CHECK(strcmp(r->props, "{}") == 0);
	} else {
		ob = body_start(r->out.p, r->out.len);
		for (i = 0; i < ob; i++)
			if (i == 0 || r->out.p[i - 1] == '\n')
				FUZZ_CHECK(ob - i < 5 ||
				    strncasecmp(r->out.p + i, "x-mq-", 5) != 0);
		FUZZ_CHECK(body_untouched(in, len, r));
	}
	FUZZ_CHECK(envelope_properties_normalize(r->props, &norm) == 0);
	free(norm);
	FUZZ_CHECK(msgprops_parse(r->props, &mp, &warnings) == 0);
	free(warnings);
	msgprops_clear(&mp);
	for (i = 0; r->warn[i] != '\0'; i++)
		FUZZ_CHECK(isprint((unsigned char)r->warn[i]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result	 whole, part;
	const char	*in;
	char		*clean;
	size_t		 len, chunk, i, o;
	int		 opts;

	if (size < 1 || size > 65536)
		return 0;
	opts = data[0] & (MQH_F_STRIP | MQH_F_UTF8);
	chunk = (size_t)(data[0] >> 2) + 1;
	in = (const char *)data + 1;
	len = size - 1;

	filter(in, len, opts, len + 1, &whole);
	filter(in, len, opts, chunk, &part);
	same(&whole, &part);
	result_free(&whole);
	result_free(&part);

	/* As the framer hands it over: a lone CR or LF becomes CRLF. */
	clean = xmalloc(2 * len + 1);
	for (i = o = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
			clean[o++] = '\r';
			clean[o++] = '\n';
			i++;
		} else if (in[i] == '\r' || in[i] == '\n') {
			clean[o++] = '\r';
			clean[o++] = '\n';
		} else
			clean[o++] = in[i];
	}
	filter(clean, o, opts, len + 1, &whole);
	filter(clean, o, opts, chunk, &part);
	same(&whole, &part);
	check_clean(clean, o, opts, &whole);
	result_free(&whole);
	result_free(&part);
	free(clean);
	return 0;
}
