/*
 * Address strings (common/hostport.c), as used by resolver-nameservers:
 * "ip", "ip:port", "[v6]:port", bare IPv6, and what is refused.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostport.h"

/* Parse s and check the family, address text and port. */
static void
ok(const char *s, int family, const char *ip, int port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 buf[HOSTPORT_IPSTRLEN];

	assert_int_equal(hostport_parse(s, 53, &ss, &len), 0);
	assert_int_equal(ss.ss_family, family);
	assert_int_equal(len, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	assert_string_equal(hostport_ntop((struct sockaddr *)&ss, buf,
	    sizeof(buf)), ip);
	assert_int_equal(hostport_port((struct sockaddr *)&ss), port);
}

static void
bad(const char *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	assert_int_equal(hostport_parse(s, 53, &ss, &len), -1);
}

static void
test_good(void **state)
{
	ok("127.0.0.1", AF_INET, "127.0.0.1", 53);
	ok("127.0.0.1:5353", AF_INET, "127.0.0.1", 5353);
	ok("[::1]:5353", AF_INET6, "::1", 5353);
	ok("[::1]", AF_INET6, "::1", 53);
	ok("::1", AF_INET6, "::1", 53);
	ok("2001:db8::53", AF_INET6, "2001:db8::53", 53);
	ok("[127.0.0.1]:54", AF_INET, "127.0.0.1", 54);
}

static void
test_bad(void **state)
{
	bad("");
	bad("localhost");
	bad("localhost:53");
	bad("127.0.0.1:");
	bad("127.0.0.1:0");
	bad("127.0.0.1:65536");
	bad("127.0.0.1:5x");
	bad("127.0.0.1:-1");
	bad("[::1");
	bad("[::1]x");
	bad("[::1]:");
	bad("1.2.3");
	bad("256.1.1.1");
	bad("[localhost]:53");
}

static void
test_ip_literal(void **state)
{
	struct sockaddr_storage	 ss, ss2;
	socklen_t		 len;

	assert_int_equal(hostport_ip("192.0.2.1", 25, &ss, &len), 0);
	assert_int_equal(hostport_port((struct sockaddr *)&ss), 25);
	assert_int_equal(hostport_ip("[2001:db8::1]", 587, &ss2, &len), 0);
	assert_int_equal(ss2.ss_family, AF_INET6);
	assert_false(hostport_equal((struct sockaddr *)&ss,
	    (struct sockaddr *)&ss2));
	assert_int_equal(hostport_ip("relay.example", 25, &ss, &len), -1);
	assert_int_equal(hostport_ip("0.0.0.0", 0, &ss, &len), 0);
	assert_true(hostport_is_any((struct sockaddr *)&ss));
	assert_int_equal(hostport_ip("::", 0, &ss, &len), 0);
	assert_true(hostport_is_any((struct sockaddr *)&ss));
	assert_false(hostport_is_any((struct sockaddr *)&ss2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_ip_literal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
