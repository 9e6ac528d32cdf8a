/*
 * mtactl: the administration client (mtactl.c: arguments and the
 * request; mtactl_print.c: the answers as aligned tables).
 */
#ifndef MTAD_MTACTL_H
#define MTAD_MTACTL_H

#include <stddef.h>

struct json_object;

/* Print the answer of command cmd for humans; -1 if it is unreadable. */
int	 print_answer(const char *cmd, struct json_object *);

/* An aligned table: add rows of ncol strings, then print it. */
struct table;
struct table	*table_new(size_t ncol, const char *const *head,
		    const char *right);
void		 table_row(struct table *, const char *const *cells);
void		 table_print(struct table *);

#endif
