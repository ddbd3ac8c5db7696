/* SPDX-License-Identifier: MIT */
/*
 * out.h: printing text that other processes wrote.  `evshm ps` shows names
 * and commands taken from other processes' memory: they may hold invalid
 * UTF-8, or control characters that would drive the terminal.  Both
 * printers here escape what is not plainly printable, so a hostile name
 * can neither break the JSON nor move the cursor.
 */
#ifndef EVSHM_TOOL_OUT_H
#define EVSHM_TOOL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The length (1 to 4) of the UTF-8 character at @s (@n bytes readable)
 * and its code point in *@cp; 0 if the bytes are not valid UTF-8
 * (truncated, overlong, a surrogate, above U+10FFFF). */
size_t out_utf8(const unsigned char *s, size_t n, uint32_t *cp);

/* Write the NUL-terminated @s for a terminal: printable characters as
 * they are, a backslash as "\\", control characters (C0, DEL, C1) and
 * invalid bytes as "\xNN".  NULL writes "-". */
void out_text(FILE *f, const char *s);

/* --- a JSON writer ------------------------------------------------------ */

#define JSON_DEPTH 8

/*
 * Compact JSON, written as it goes: open a container, add members, close
 * it.  @key names the member inside an object and is NULL inside an array
 * (and for the outermost value).  Strings are escaped; bytes that are not
 * valid UTF-8 become U+FFFD.  Numbers that are not finite are written as
 * null.  Nesting deeper than JSON_DEPTH is a bug of the caller (abort).
 */
struct json {
	FILE *f;
	unsigned depth;
	bool more[JSON_DEPTH]; /* the open container has a member already */
};

void json_init(struct json *j, FILE *f);
void json_open(struct json *j, const char *key, char bracket); /* '{', '[' */
void json_close(struct json *j, char bracket);                 /* '}', ']' */
void json_str(struct json *j, const char *key, const char *s); /* NULL: null */
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_real(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);

#endif
