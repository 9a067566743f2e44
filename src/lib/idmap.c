/*
 * idmap: open-addressing hash map uint64 -> pointer. Load factor <= 1/2.
 */
#include "lib/idmap.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

static size_t
idmap_slot(uint64_t id, size_t cap)
{
	/* splitmix64 finaliser: ids are sequential, spread them */
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return (size_t)id & (cap - 1);
}

void
idmap_init(struct idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void
idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static void
idmap_grow(struct idmap *m)
{
	struct idmap n;

	n.cap = m->cap ? m->cap * 2 : 64;
	n.count = 0;
	n.keys = xcalloc(n.cap, sizeof(*n.keys));
	n.vals = xcalloc(n.cap, sizeof(*n.vals));
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] != 0)
			idmap_put(&n, m->keys[i], m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	*m = n;
}

void
idmap_put(struct idmap *m, uint64_t id, void *val)
{
	size_t i;

	if ((m->count + 1) * 2 > m->cap)
		idmap_grow(m);
	for (i = idmap_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == id) {
			m->vals[i] = val;
			return;
		}
		if (m->keys[i] == 0) {
			m->keys[i] = id;
			m->vals[i] = val;
			m->count++;
			return;
		}
	}
}

void *
idmap_get(const struct idmap *m, uint64_t id)
{
	if (m->cap == 0 || id == 0)
		return NULL;
	for (size_t i = idmap_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == id)
			return m->vals[i];
		if (m->keys[i] == 0)
			return NULL;
	}
}

void
idmap_del(struct idmap *m, uint64_t id)
{
	size_t i, j, k;

	if (m->cap == 0 || id == 0)
		return;
	for (i = idmap_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == 0)
			return;
		if (m->keys[i] == id)
			break;
	}
	/* backward-shift deletion keeps probe sequences intact */
	for (j = (i + 1) & (m->cap - 1); m->keys[j] != 0; j = (j + 1) & (m->cap - 1)) {
		k = idmap_slot(m->keys[j], m->cap);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->vals[i] = NULL;
	m->count--;
}
