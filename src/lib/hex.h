/*
 * hex: the value of one hexadecimal digit. Pure.
 */
#ifndef SG_LIB_HEX_H
#define SG_LIB_HEX_H

#include <stdbool.h>

/* 0..15 for '0'-'9' and 'a'-'f' (and 'A'-'F' when upper is true), else -1:
 * formats that write lower case only stay strict. */
int hex_digit(char c, bool upper);

#endif
