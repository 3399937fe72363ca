/* Tests engineio/http/proxy.c: the trusted-proxy list and X-Forwarded-For. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_internal.h"

static int trusted(const http_proxy_net *nets, size_t n, const char *ip)
{
	uint8_t a[16];

	if (inet_pton(AF_INET, ip, a) == 1)
		return http__proxy_match(nets, n, AF_INET, a);
	assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
	return http__proxy_match(nets, n, AF_INET6, a);
}

static void test_parse(void **state)
{
	http_proxy_net nets[4];
	size_t n;

	(void)state;
	assert_int_equal(http__proxy_parse("127.0.0.1", nets, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(nets[0].bits, 32);
	assert_int_equal(http__proxy_parse(" 10.0.0.0/8 ,::1,fd00::/8,", nets, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nets[0].bits, 8);
	assert_int_equal(nets[1].bits, 128);
	assert_int_equal(nets[2].family, AF_INET6);
	assert_int_equal(http__proxy_parse("", nets, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(http__proxy_parse(NULL, nets, 4, &n), 0);
	assert_int_equal(n, 0);
	/* Refused: not an address, a bad prefix, too many. */
	const char *bad[] = {"localhost", "10.0.0.0/33", "::/129",      "10.0.0.0/",
	                     "1.2.3.4/x", "1.2.3",       "1.2.3.4/8/8", "1,2,3,4,5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http__proxy_parse(bad[i], nets, 4, &n), BASE_EINVAL);
}

static void test_match(void **state)
{
	http_proxy_net nets[8];
	size_t n;

	(void)state;
	assert_int_equal(
	    http__proxy_parse("127.0.0.1,10.0.0.0/8,192.168.4.0/22,fd00::/8", nets, 8, &n), 0);
	assert_true(trusted(nets, n, "127.0.0.1"));
	assert_false(trusted(nets, n, "127.0.0.2"));
	assert_true(trusted(nets, n, "10.255.1.2"));
	assert_false(trusted(nets, n, "11.0.0.1"));
	assert_true(trusted(nets, n, "192.168.7.255"));
	assert_false(trusted(nets, n, "192.168.8.0"));
	assert_true(trusted(nets, n, "fd12::1"));
	assert_false(trusted(nets, n, "fe80::1"));
	assert_false(trusted(nets, n, "::1"));
	/* /0 trusts everyone of its family. */
	assert_int_equal(http__proxy_parse("0.0.0.0/0", nets, 8, &n), 0);
	assert_true(trusted(nets, n, "8.8.8.8"));
	assert_false(trusted(nets, n, "::1"));
}

static const char *client(const char *list, const char *const *values, size_t nv)
{
	static char out[48];
	http_proxy_net nets[8];
	http_header h[4];
	size_t n;

	assert_int_equal(http__proxy_parse(list, nets, 8, &n), 0);
	for (size_t i = 0; i < nv; i++) {
		h[i].name = (base_slice){i % 2 ? "x-forwarded-for" : "X-Forwarded-For", 15};
		h[i].value = (base_slice){values[i], strlen(values[i])};
	}
	strcpy(out, "127.0.0.1"); /* the peer */
	http__forwarded_client(nets, n, h, nv, out, sizeof(out));
	return out;
}

static void test_forwarded(void **state)
{
	(void)state;
	const char *one[] = {"203.0.113.7"};
	assert_string_equal(client("127.0.0.1", one, 1), "203.0.113.7");
	const char *spoof[] = {"1.1.1.1, 2.2.2.2,203.0.113.7"};
	assert_string_equal(client("127.0.0.1", spoof, 1), "203.0.113.7");
	const char *chain[] = {"198.51.100.9, 10.0.0.5", "10.0.0.6"};
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", chain, 2), "198.51.100.9");
	const char *all_trusted[] = {"10.0.0.5"};
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", all_trusted, 1), "10.0.0.5");
	const char *garbage[] = {"x, 10.0.0.5"};
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", garbage, 1), "10.0.0.5");
	const char *empty_entry[] = {"198.51.100.9, , 10.0.0.5"};
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", empty_entry, 1), "10.0.0.5");
	const char *garbage_first[] = {"not an address"};
	assert_string_equal(client("127.0.0.1", garbage_first, 1), "127.0.0.1");
	const char *ports[] = {"[2001:db8::7]:443, 198.51.100.9:5555"};
	assert_string_equal(client("127.0.0.1", ports, 1), "198.51.100.9");
	const char *v6[] = {"[2001:db8::7]:443, 10.0.0.1"};
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", v6, 1), "2001:db8::7");
	const char *blank[] = {""};
	assert_string_equal(client("127.0.0.1", blank, 1), "127.0.0.1");
	const char *huge[] = {"1111111111111111111111111111111111111111111111111111111111111111"};
	assert_string_equal(client("127.0.0.1", huge, 1), "127.0.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_forwarded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
