/*
 * Interned strings (intern.h): a chained hash table of entries that each
 * carry their text, so that one allocation holds a string, its hash and
 * its reference count.  The table doubles when it holds more strings than
 * it has buckets and halves when it holds fewer than a quarter, so that a
 * queue that grew to 100,000 distinct addresses does not keep its buckets
 * after it drained.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"
#include "xmalloc.h"

#define INTERN_MIN_BUCKETS	64
#define INTERN_REFS_STUCK	UINT32_MAX	/* never freed again */

struct intern_entry {
	struct intern_entry	*next;
	uint32_t		 hash;
	uint32_t		 refs;
	char			 s[];
};

static struct intern_entry	**buckets;
static size_t			  nbuckets;
static size_t			  count;
static uint64_t			  seed;

/*
 * FNV-1a from a random start with a final mix, as qmgr's tables: the
 * texts come from clients, who could otherwise choose ones that share a
 * chain.
 */
static uint32_t
intern_hash(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint64_t		 h = seed;

	while (*p != '\0') {
		h ^= *p++;
		h *= UINT64_C(1099511628211);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32_t)h;
}

/* Move every entry into n buckets (a power of two). */
static void
intern_resize(size_t n)
{
	struct intern_entry	**nb, *e, *next;
	size_t			  i;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < nbuckets; i++) {
		for (e = buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(buckets);
	buckets = nb;
	nbuckets = n;
}

/* The entry of s's text, made on first use; one more reference. */
char *
intern_str(const char *s)
{
	struct intern_entry	*e;
	uint32_t		 h;
	size_t			 len;

	if (buckets == NULL) {
		while (seed == 0)
			arc4random_buf(&seed, sizeof(seed));
		intern_resize(INTERN_MIN_BUCKETS);
	}
	h = intern_hash(s);
	for (e = buckets[h & (nbuckets - 1)]; e != NULL; e = e->next) {
		if (e->hash == h && strcmp(e->s, s) == 0) {
			if (e->refs != INTERN_REFS_STUCK)
				e->refs++;
			return e->s;
		}
	}
	len = strlen(s);
	e = xmalloc(sizeof(*e) + len + 1);
	memcpy(e->s, s, len + 1);
	e->hash = h;
	e->refs = 1;
	e->next = buckets[h & (nbuckets - 1)];
	buckets[h & (nbuckets - 1)] = e;
	if (++count > nbuckets)
		intern_resize(nbuckets * 2);
	return e->s;
}

/* The link that points at s's entry, or NULL when s is not the table's. */
static struct intern_entry **
intern_find(const char *s)
{
	struct intern_entry	**ep;

	if (buckets == NULL)
		return NULL;
	/* Identity, not text: a plain copy of an interned text is not it. */
	for (ep = &buckets[intern_hash(s) & (nbuckets - 1)]; *ep != NULL;
	    ep = &(*ep)->next)
		if ((*ep)->s == s)
			return ep;
	return NULL;
}

/* One reference less, the entry freed with the last; a plain s freed. */
void
intern_release(char *s)
{
	struct intern_entry	**ep, *e;

	if (s == NULL)
		return;
	if ((ep = intern_find(s)) == NULL) {
		free(s);
		return;
	}
	e = *ep;
	if (e->refs == INTERN_REFS_STUCK || --e->refs > 0)
		return;
	*ep = e->next;
	free(e);
	if (--count < nbuckets / 4 && nbuckets > INTERN_MIN_BUCKETS)
		intern_resize(nbuckets / 2);
}

int
intern_owns(const char *s)
{
	return s != NULL && intern_find(s) != NULL;
}

size_t
intern_count(void)
{
	return count;
}
