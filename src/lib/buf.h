/*
 * buf: the one bounded, growable byte buffer. Every buffer gets a hard limit
 * when it is created; appends past the limit fail instead of growing. Storage
 * grows on demand and can be shrunk back when idle (memory per idle session).
 *
 * The bytes live in b->data[0 .. b->len); data is always NUL-terminated one
 * past len for convenience, but may itself contain NUL. Pointers into data
 * stay valid until the next call that modifies the buffer.
 */
#ifndef SG_LIB_BUF_H
#define SG_LIB_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
	bool secret; /* wipe storage on free, shrink and realloc */
};

void buf_init(struct buf *b, size_t max);
/* Marks the buffer as holding secrets: every release of storage wipes it. */
void buf_set_secret(struct buf *b);
void buf_free(struct buf *b);
/* Empties the buffer (wiping if secret); keeps the storage. */
void buf_reset(struct buf *b);
/* Releases the storage when the buffer is empty (idle sessions). */
void buf_shrink(struct buf *b);

int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_append_str(struct buf *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Returns a malloc'd NUL-terminated copy of the content. */
char *buf_strdup(const struct buf *b);

#endif
