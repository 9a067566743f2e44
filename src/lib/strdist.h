/*
 * strdist: how far apart two short words are, to tell a typo of a keyword
 * ("v=spf2", "v=DMRC1") from an unrelated word. Optimal string alignment
 * distance (Damerau-Levenshtein without repeated edits of a substring):
 * one insertion, deletion, substitution or swap of neighbours costs 1.
 * ASCII case is ignored. Pure, no allocation.
 */
#ifndef SG_LIB_STRDIST_H
#define SG_LIB_STRDIST_H

#include <stddef.h>

#define STRDIST_WORD_MAX 32 /* longer words are never near anything */

/* The distance of a[0..na) and b[0..nb), or (size_t)-1 when either is
 * longer than STRDIST_WORD_MAX. */
size_t strdist_osa(const char *a, size_t na, const char *b, size_t nb);

#endif
