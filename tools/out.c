/* SPDX-License-Identifier: MIT */
/* out.c: terminal-safe text and a JSON writer (see out.h). */
#include "out.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t out_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t c;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

void out_text(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	if (!s) {
		fputc('-', f);
		return;
	}
	n = strlen(s);
	while (n) {
		uint32_t cp;
		size_t len = out_utf8(p, n, &cp);

		if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
			fprintf(f, "\\x%02x", *p);
			len = 1;
		} else if (cp == '\\') {
			fputs("\\\\", f);
		} else {
			fwrite(p, 1, len, f);
		}
		p += len;
		n -= len;
	}
}

/* --- JSON --------------------------------------------------------------- */

void json_init(struct json *j, FILE *f)
{
	*j = (struct json){ .f = f };
}

/* @s as a JSON string, quotes included. */
static void put_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	fputc('"', f);
	while (n) {
		uint32_t cp;
		size_t len = out_utf8(p, n, &cp);

		if (len == 0) {
			fputs("\\ufffd", f);
			len = 1;
		} else if (cp == '"' || cp == '\\') {
			fprintf(f, "\\%c", (char)cp);
		} else if (cp < 0x20 || cp == 0x7f) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else {
			fwrite(p, 1, len, f);
		}
		p += len;
		n -= len;
	}
	fputc('"', f);
}

/* The separator and the key of the next member. */
static void json_member(struct json *j, const char *key)
{
	if (j->depth > 0 && j->more[j->depth - 1])
		fputc(',', j->f);
	if (j->depth > 0)
		j->more[j->depth - 1] = true;
	if (key) {
		put_str(j->f, key);
		fputc(':', j->f);
	}
}

void json_open(struct json *j, const char *key, char bracket)
{
	if (j->depth == JSON_DEPTH)
		abort(); /* deeper than any document of ours */
	json_member(j, key);
	fputc(bracket, j->f);
	j->more[j->depth++] = false;
}

void json_close(struct json *j, char bracket)
{
	if (j->depth == 0)
		abort();
	j->depth--;
	fputc(bracket, j->f);
}

void json_str(struct json *j, const char *key, const char *s)
{
	if (!s) {
		json_null(j, key);
		return;
	}
	json_member(j, key);
	put_str(j->f, s);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_member(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	json_member(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void json_real(struct json *j, const char *key, double v)
{
	if (!isfinite(v)) {
		json_null(j, key);
		return;
	}
	json_member(j, key);
	fprintf(j->f, "%.15g", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	json_member(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	json_member(j, key);
	fputs("null", j->f);
}
