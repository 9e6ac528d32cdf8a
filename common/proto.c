/* Names and the sender/receiver matrix generated from MSG_LIST. */
#include "proto.h"

static const struct {
	const char	*name;
	unsigned	 from;
	unsigned	 to;
} msg_table[MSG_TYPE_COUNT] = {
	[MSG_NONE] = { "MSG_NONE", 0, 0 },
#define MSG_ROW(name, from, to) [name] = { #name, from, to },
	MSG_LIST(MSG_ROW)
#undef MSG_ROW
};

static const char *proc_names[PROC_COUNT] = {
	"master", "smtpd", "qmgr", "smtp", "resolver", "control"
};

const char *
proc_name(int proc)
{
	if (proc < 0 || proc >= PROC_COUNT)
		return "unknown";
	return proc_names[proc];
}

const char *
msg_name(int type)
{
	if (type <= MSG_NONE || type >= MSG_TYPE_COUNT)
		return "MSG_UNKNOWN";
	return msg_table[type].name;
}

int
msg_allowed(int type, int from, int to)
{
	if (type <= MSG_NONE || type >= MSG_TYPE_COUNT)
		return 0;
	if (from < 0 || from >= PROC_COUNT || to < 0 || to >= PROC_COUNT)
		return 0;
	return (msg_table[type].from & (1u << from)) &&
	    (msg_table[type].to & (1u << to));
}
