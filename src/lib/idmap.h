/*
 * idmap: a map from non-zero 64-bit ids to pointers (open addressing,
 * linear probing, backward-shift deletion). Not thread-safe: each loop
 * thread owns its own, which is how async answers keyed by session id find
 * their session, or find it gone.
 */
#ifndef SG_LIB_IDMAP_H
#define SG_LIB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint64_t *keys; /* 0 = empty slot */
	void **vals;
	size_t cap; /* power of two */
	size_t count;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
void idmap_put(struct idmap *m, uint64_t id, void *val);
void *idmap_get(const struct idmap *m, uint64_t id);
void idmap_del(struct idmap *m, uint64_t id);

#endif
