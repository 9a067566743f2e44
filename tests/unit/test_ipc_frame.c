/* Unit tests for net/ipc_frame (the codec between smtpgate's processes)
 * and net/ipc_sock: a table of headers (good, short, bad type, too long),
 * every frame fed as each of its prefixes (byte by byte) as well as whole,
 * the field reader's bounds, the writer's overflow, and frames and a
 * descriptor over a real socketpair, including a datagram that is not a
 * frame. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/ipc_frame.h"
#include "net/ipc_sock.h"

struct hdr_case {
	const char *name;
	unsigned char bytes[24];
	size_t len;
	enum ipc_parse want;
	uint32_t type;
	uint64_t id;
	size_t plen;
};

static const struct hdr_case hdr_cases[] = {
    {"empty payload", {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, 16, IPC_PARSE_OK, 1, 7, 0},
    {"payload of 4", {0, 0, 0, 9, 0, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 'a', 'b', 'c', 'd'}, 20,
        IPC_PARSE_OK, 9, 0x0102030405060708ULL, 4},
    {"header only, payload missing", {0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 'a'}, 17,
        IPC_PARSE_MORE, 0, 0, 0},
    {"type 0", {0, 0, 0, 0}, 4, IPC_PARSE_BAD, 0, 0, 0},
    {"type above the maximum", {0, 0, 1, 0}, 4, IPC_PARSE_BAD, 0, 0, 0},
    {"type 255 is the last", {0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16, IPC_PARSE_OK,
        255, 0, 0},
    {"payload longer than 64 KiB - 16", {0, 0, 0, 1, 0, 0, 0xff, 0xf1}, 8, IPC_PARSE_BAD, 0, 0, 0},
    {"huge length", {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, 8, IPC_PARSE_BAD, 0, 0, 0},
    {"three bytes say nothing yet", {0, 0, 0}, 3, IPC_PARSE_MORE, 0, 0, 0},
};

static void
test_headers(void **state)
{
	for (size_t i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		struct ipc_frame f;
		enum ipc_parse r = ipc_frame_parse(c->bytes, c->len, &f);

		if (r != c->want)
			fail_msg("%s: got %d, want %d", c->name, (int)r, (int)c->want);
		if (r != IPC_PARSE_OK)
			continue;
		assert_int_equal(f.type, c->type);
		assert_true(f.id == c->id);
		assert_int_equal(f.len, c->plen);
		assert_ptr_equal(f.payload, c->bytes + IPC_FRAME_HDR);
	}
}

/* A prefix of a good frame is MORE, never BAD: the same bytes fed one at a
 * time reach OK only with the last byte. */
static void
test_byte_by_byte(void **state)
{
	static struct ipc_out o;
	struct ipc_frame f;

	ipc_out_begin(&o, 3, 42);
	ipc_put_u32(&o, 7);
	ipc_put_str(&o, "alice@example.test");
	ipc_put_bytes(&o, "\0\1\2", 3);
	assert_int_equal(ipc_out_end(&o), 0);
	for (size_t n = 0; n < o.len; n++)
		assert_int_equal(ipc_frame_parse(o.buf, n, &f), IPC_PARSE_MORE);
	assert_int_equal(ipc_frame_parse(o.buf, o.len, &f), IPC_PARSE_OK);
	assert_int_equal(f.type, 3);
	assert_true(f.id == 42);
	assert_int_equal(IPC_FRAME_HDR + f.len, o.len);
	/* bytes after the frame belong to the next one */
	assert_int_equal(ipc_frame_parse(o.buf, o.len, &f), IPC_PARSE_OK);
}

static void
test_fields(void **state)
{
	static struct ipc_out o;
	struct ipc_frame f;
	struct ipc_reader r;
	uint32_t v;
	char s[32];
	const unsigned char *d;
	size_t dl;

	ipc_out_begin(&o, 1, 1);
	ipc_put_u32(&o, 0xdeadbeef);
	ipc_put_str(&o, "bob");
	ipc_put_str(&o, NULL);
	ipc_put_bytes(&o, "a\0b", 3);
	assert_int_equal(ipc_out_end(&o), 0);
	assert_int_equal(ipc_frame_parse(o.buf, o.len, &f), IPC_PARSE_OK);

	ipc_reader_init(&r, &f);
	assert_int_equal(ipc_get_u32(&r, &v), 0);
	assert_true(v == 0xdeadbeef);
	assert_int_equal(ipc_get_str(&r, s, sizeof(s) - 1), 0);
	assert_string_equal(s, "bob");
	assert_int_equal(ipc_get_str(&r, s, sizeof(s) - 1), 0);
	assert_string_equal(s, "");
	assert_false(ipc_reader_done(&r));
	/* a string field may not hold a NUL */
	assert_int_equal(ipc_get_str(&r, s, sizeof(s) - 1), -1);
	assert_false(ipc_reader_done(&r));

	ipc_reader_init(&r, &f);
	assert_int_equal(ipc_get_u32(&r, &v), 0);
	/* longer than the reader's limit: bad, and it stays bad */
	assert_int_equal(ipc_get_str(&r, s, 2), -1);
	assert_int_equal(ipc_get_u32(&r, &v), -1);

	ipc_reader_init(&r, &f);
	assert_int_equal(ipc_get_u32(&r, &v), 0);
	assert_int_equal(ipc_get_bytes(&r, 100, &d, &dl), 0);
	assert_int_equal(ipc_get_bytes(&r, 100, &d, &dl), 0);
	assert_int_equal(dl, 0);
	assert_int_equal(ipc_get_bytes(&r, 100, &d, &dl), 0);
	assert_memory_equal(d, "a\0b", 3);
	assert_true(ipc_reader_done(&r));
	/* past the end */
	assert_int_equal(ipc_get_u32(&r, &v), -1);
	assert_false(ipc_reader_done(&r));
}

/* A length field that claims more than the payload holds. */
static void
test_field_past_end(void **state)
{
	unsigned char b[] = {0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 'x', 'y'};
	struct ipc_frame f;
	struct ipc_reader r;
	const unsigned char *d;
	size_t dl;

	assert_int_equal(ipc_frame_parse(b, sizeof(b), &f), IPC_PARSE_OK);
	ipc_reader_init(&r, &f);
	assert_int_equal(ipc_get_bytes(&r, 100, &d, &dl), -1);
	assert_false(ipc_reader_done(&r));
}

static void
test_overflow(void **state)
{
	static struct ipc_out o;
	static char big[IPC_FRAME_MAX];

	memset(big, 'a', sizeof(big));
	ipc_out_begin(&o, 1, 1);
	ipc_put_bytes(&o, big, IPC_PAYLOAD_MAX - 4); /* exactly fills it */
	assert_int_equal(ipc_out_end(&o), 0);
	assert_int_equal(o.len, IPC_FRAME_MAX);

	ipc_out_begin(&o, 1, 1);
	ipc_put_bytes(&o, big, IPC_PAYLOAD_MAX - 3);
	assert_int_equal(ipc_out_end(&o), -1);

	ipc_out_begin(&o, 1, 1);
	ipc_put_bytes(&o, big, IPC_PAYLOAD_MAX - 4);
	ipc_put_u32(&o, 1);
	assert_int_equal(ipc_out_end(&o), -1);
}

static void
test_socketpair(void **state)
{
	static struct ipc_out o;
	static unsigned char buf[IPC_FRAME_MAX];
	struct ipc_frame f;
	struct ipc_reader r;
	char s[16];
	int sv[2], pass[2], got;

	assert_int_equal(ipc_sock_pair(sv), 0);
	assert_int_equal(pipe(pass), 0);
	ipc_out_begin(&o, 5, 77);
	ipc_put_str(&o, "hello");
	assert_int_equal(ipc_out_end(&o), 0);
	assert_int_equal(ipc_sock_send(sv[0], &o, pass[1]), 0);
	assert_int_equal(ipc_sock_recv(sv[1], buf, &f, &got), 1);
	assert_int_equal(f.type, 5);
	assert_true(f.id == 77);
	ipc_reader_init(&r, &f);
	assert_int_equal(ipc_get_str(&r, s, sizeof(s) - 1), 0);
	assert_string_equal(s, "hello");
	assert_true(ipc_reader_done(&r));
	/* the descriptor works: a byte written to it comes out of the pipe */
	assert_true(got >= 0);
	assert_int_equal(write(got, "z", 1), 1);
	assert_int_equal(read(pass[0], s, 1), 1);
	assert_int_equal(s[0], 'z');
	assert_true((fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
	close(got);

	/* a datagram that is not a frame, then a frame cut short */
	assert_int_equal(send(sv[0], "garbage!", 8, 0), 8);
	errno = 0;
	assert_int_equal(ipc_sock_recv(sv[1], buf, &f, NULL), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(send(sv[0], o.buf, o.len - 1, 0), (ssize_t)o.len - 1);
	assert_int_equal(ipc_sock_recv(sv[1], buf, &f, NULL), -1);
	assert_int_equal(errno, EBADMSG);
	/* end of file */
	close(sv[0]);
	assert_int_equal(ipc_sock_recv(sv[1], buf, &f, NULL), 0);
	close(sv[1]);
	close(pass[0]);
	close(pass[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_byte_by_byte),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_field_past_end),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_socketpair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
