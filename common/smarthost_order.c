/*
 * Ordering the smarthosts list for one delivery: weighted random draws
 * without replacement within each class (healthy primaries, healthy
 * backups, down primaries, down backups).  See smarthost_order.h.
 */
#include <stddef.h>

#include "smarthost_order.h"

/* The class of a candidate: the order in which classes are tried. */
static int
smarthost_class(const struct smarthost_cand *c)
{
	return (c->down ? 2 : 0) + (c->backup ? 1 : 0);
}

static uint32_t
smarthost_weight(const struct smarthost_cand *c)
{
	return (uint32_t)(c->weight > 0 ? c->weight : 1);
}

/* Append the candidates of one class to order, drawn by weight. */
static size_t
smarthost_draw(const struct smarthost_cand *c, size_t n, int class,
    size_t *order, size_t o, smarthost_rnd rnd)
{
	size_t		 pool[SMARTHOST_MAX], np = 0, i;
	uint32_t	 total = 0, r;

	for (i = 0; i < n; i++)
		if (smarthost_class(&c[i]) == class) {
			pool[np++] = i;
			total += smarthost_weight(&c[i]);
		}
	while (np > 0) {
		r = rnd(total);
		for (i = 0; i + 1 < np; i++) {
			if (r < smarthost_weight(&c[pool[i]]))
				break;
			r -= smarthost_weight(&c[pool[i]]);
		}
		order[o++] = pool[i];
		total -= smarthost_weight(&c[pool[i]]);
		pool[i] = pool[--np];
	}
	return o;
}

size_t
smarthost_order(const struct smarthost_cand *c, size_t n, size_t *order,
    smarthost_rnd rnd)
{
	size_t	 o = 0;
	int	 class;

	if (n > SMARTHOST_MAX)
		n = SMARTHOST_MAX;
	for (class = 0; class < 4; class++)
		o = smarthost_draw(c, n, class, order, o, rnd);
	return o;
}
