/*
 * The wait heap: every recipient that is due later, ordered by its due
 * time (env.rcpts[idx].next), earliest at the root.  A binary min-heap in a
 * growing array; each recipient remembers its index so that it can be
 * removed from the middle (mtactl, a reload that changes queue keys, an
 * early release of a queue's no-reply deferrals) in O(log n).
 */
#include <stdlib.h>

#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

static struct qmgr_rcpt	**heap;
static size_t		  heap_len;
static size_t		  heap_cap;

static int64_t
due(const struct qmgr_rcpt *r)
{
	return r->msg->env.rcpts[r->idx].next;
}

static void
place(size_t i, struct qmgr_rcpt *r)
{
	heap[i] = r;
	r->heap_idx = i;
}

static void
sift_up(size_t i)
{
	struct qmgr_rcpt	*r = heap[i];
	size_t			 parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (due(heap[parent]) <= due(r))
			break;
		place(i, heap[parent]);
		i = parent;
	}
	place(i, r);
}

static void
sift_down(size_t i)
{
	struct qmgr_rcpt	*r = heap[i];
	size_t			 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= heap_len)
			break;
		if (c + 1 < heap_len && due(heap[c + 1]) < due(heap[c]))
			c++;
		if (due(r) <= due(heap[c]))
			break;
		place(i, heap[c]);
		i = c;
	}
	place(i, r);
}

void
qmgr_heap_push(struct qmgr_rcpt *r)
{
	if (heap_len == heap_cap) {
		heap_cap = heap_cap == 0 ? 1024 : heap_cap * 2;
		heap = xreallocarray(heap, heap_cap, sizeof(*heap));
	}
	place(heap_len++, r);
	sift_up(heap_len - 1);
}

void
qmgr_heap_remove(struct qmgr_rcpt *r)
{
	size_t			 i = r->heap_idx;
	struct qmgr_rcpt	*last;

	if (i >= heap_len || heap[i] != r)
		log_panic("%s: recipient not in the heap", __func__);
	last = heap[--heap_len];
	if (i == heap_len)
		return;
	place(i, last);
	/* The moved element may belong above or below its new slot. */
	if (i > 0 && due(heap[(i - 1) / 2]) > due(last))
		sift_up(i);
	else
		sift_down(i);
}

struct qmgr_rcpt *
qmgr_heap_top(void)
{
	return heap_len > 0 ? heap[0] : NULL;
}

/* The recipient at index i, in no order; NULL past the end. */
struct qmgr_rcpt *
qmgr_heap_at(size_t i)
{
	return i < heap_len ? heap[i] : NULL;
}
