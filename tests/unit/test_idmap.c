/* Unit tests for lib/idmap, checked against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lib/idmap.h"

#define N 5000

static void
test_against_model(void **state)
{
	static void *model[N + 1];
	struct idmap m;
	uint64_t x = 88172645463325252ULL;

	idmap_init(&m);
	for (int step = 0; step < 200000; step++) {
		uint64_t id;

		/* xorshift64: deterministic pseudo-random operations */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		id = x % N + 1;
		switch (x >> 60 & 3) {
		case 0:
		case 1:
			model[id] = (void *)(uintptr_t)(id * 2 + 1);
			idmap_put(&m, id, model[id]);
			break;
		case 2:
			model[id] = NULL;
			idmap_del(&m, id);
			break;
		default:
			assert_ptr_equal(idmap_get(&m, id), model[id]);
		}
	}
	size_t count = 0;
	for (uint64_t id = 1; id <= N; id++) {
		assert_ptr_equal(idmap_get(&m, id), model[id]);
		count += model[id] != NULL;
	}
	assert_int_equal(m.count, count);
	assert_null(idmap_get(&m, 0));
	idmap_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
