/*
 * strdist: optimal string alignment distance of two short words (see
 * strdist.h). The table lives on the stack: both words are bounded.
 */
#include "lib/strdist.h"

static char
strdist_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t
strdist_osa(const char *a, size_t na, const char *b, size_t nb)
{
	size_t d[STRDIST_WORD_MAX + 1][STRDIST_WORD_MAX + 1];

	if (na > STRDIST_WORD_MAX || nb > STRDIST_WORD_MAX)
		return (size_t)-1;
	for (size_t i = 0; i <= na; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= nb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= na; i++) {
		for (size_t j = 1; j <= nb; j++) {
			char x = strdist_lower(a[i - 1]), y = strdist_lower(b[j - 1]);
			size_t v = d[i - 1][j - 1] + (x == y ? 0 : 1);

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && x == strdist_lower(b[j - 2]) &&
			    strdist_lower(a[i - 2]) == y && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[na][nb];
}
