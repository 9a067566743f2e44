/*
 * xalloc: allocation that never returns NULL. Allocation failure is a bug
 * class error (STYLE.md "Errors"): abort loudly rather than limp on.
 */
#ifndef SG_LIB_XALLOC_H
#define SG_LIB_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* Wipes n bytes at p with explicit_bzero, then frees. p may be NULL. */
void xfree_secret(void *p, size_t n);
/* Wipes and frees a NUL-terminated secret string. s may be NULL. */
void xfree_secret_str(char *s);

#endif
