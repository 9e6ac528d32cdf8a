/*
 * One strict reading of JSON from outside (message properties, outbox
 * messages, envelopes): exactly one object, nothing after it but white
 * space, numbers finite.  json-c prints a parsed double as it was written
 * ("1.", "1.50"), which is not always JSON; every double is re-set so that
 * what mtad publishes again is canonical JSON.
 */
#ifndef MTAD_JSON_STRICT_H
#define MTAD_JSON_STRICT_H

#include <stddef.h>

struct json_object;

/* The object, or NULL when text is not exactly one acceptable object. */
struct json_object	*json_parse_object(const char *text, size_t len);

#endif
