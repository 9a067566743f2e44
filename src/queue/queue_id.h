/*
 * queue_id: queue ids. An id is QUEUE_ID_LEN characters of lower-case
 * Crockford base32 (digits, then letters without i, l, o, u), so it is safe
 * as a file name and sorts by arrival time:
 *
 *   11 characters  microseconds since the epoch (55 bits)
 *    3 characters  a per-process counter (15 bits, atomic)
 *    4 characters  a per-process random value (20 bits)
 *
 * Two ids made by one process differ unless 32768 ids are made within one
 * microsecond; ids of different processes differ by the random part, and
 * the spool opens files with O_EXCL, retrying with a new id on a clash.
 */
#ifndef SG_QUEUE_QUEUE_ID_H
#define SG_QUEUE_QUEUE_ID_H

#include <stdbool.h>
#include <stddef.h>

#define QUEUE_ID_LEN 18
#define QUEUE_ID_MAX 32 /* room for an id and its NUL */

/* Writes a new id (NUL-terminated) to id_r. Thread-safe. */
void queue_id_new(char id_r[QUEUE_ID_MAX]);
/* True if s (NUL-terminated) has the shape of an id: a string that can be
 * used as a file name in the spool without escaping its folder. */
bool queue_id_is_valid(const char *s);

#endif
