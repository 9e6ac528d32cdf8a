/* Strict parsing of outside JSON: see json_strict.h. */
#include <ctype.h>
#include <limits.h>
#include <math.h>

#include <json.h>

#include "json_strict.h"

#define JSON_MAX_DEPTH	32

/* Refuse non-finite numbers; make the others print canonically. */
static int
json_normalize(struct json_object *o)
{
	struct json_object	*v;
	double			 d;
	size_t			 i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		d = json_object_get_double(o);
		if (!isfinite(d))
			return -1;
		json_object_set_double(o, d);	/* drops the text as written */
		return 0;
	case json_type_object:
		{
			json_object_object_foreach(o, key, val) {
				(void)key;
				if (val != NULL && json_normalize(val) == -1)
					return -1;
			}
		}
		return 0;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			v = json_object_array_get_idx(o, i);
			if (v != NULL && json_normalize(v) == -1)
				return -1;
		}
		return 0;
	default:
		return 0;
	}
}

struct json_object *
json_parse_object(const char *text, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj;
	size_t			 end;

	if (text == NULL || len > INT_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(JSON_MAX_DEPTH)) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj != NULL) {
		end = json_tokener_get_parse_end(tok);
		while (end < len && isspace((unsigned char)text[end]))
			end++;
		if (end != len || json_tokener_get_error(tok) !=
		    json_tokener_success ||
		    !json_object_is_type(obj, json_type_object) ||
		    json_normalize(obj) == -1) {
			json_object_put(obj);
			obj = NULL;
		}
	}
	json_tokener_free(tok);
	return obj;
}
