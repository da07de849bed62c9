/* C helpers of the frame scanner (parsec_fast._scan): JSON lexing primitives that never read
 * outside [p, end) and that accept exactly what orjson accepts (or less: anything refused here
 * sends the frame to the orjson path, which decides).
 *
 * Every function takes the current position and the end of the buffer, and returns the position
 * after what it consumed, or NULL when the input is not understood.
 */
#ifndef PARSEC_FAST_SCAN_C_H
#define PARSEC_FAST_SCAN_C_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <locale.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <xlocale.h>
#endif

typedef unsigned char pf_u8;

/* ------------------------------------------------------------------------------------------ */
/* strtod that ignores the process locale (LC_NUMERIC could make ',' the decimal point).       */

#if defined(_WIN32)
static _locale_t pf_c_locale = NULL;
static int pf_scan_init(void) {
    if (!pf_c_locale) pf_c_locale = _create_locale(LC_NUMERIC, "C");
    return pf_c_locale != NULL;
}
static double pf_strtod(const char *s, char **e) { return _strtod_l(s, e, pf_c_locale); }
#else
static locale_t pf_c_locale = (locale_t)0;
static int pf_scan_init(void) {
    if (!pf_c_locale) pf_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    return pf_c_locale != (locale_t)0;
}
static double pf_strtod(const char *s, char **e) { return strtod_l(s, e, pf_c_locale); }
#endif

/* ------------------------------------------------------------------------------------------ */
/* Whitespace: exactly JSON's four characters.                                                 */

static inline const pf_u8 *pf_ws(const pf_u8 *p, const pf_u8 *end) {
    if (p < end && *p > ' ') return p;   /* compact JSON: the usual case */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Strings.                                                                                    */

/* Byte classes inside a string: 0 plain ASCII, 1 '"', 2 '\\', 3 control (invalid), 4 non-ASCII. */
static const pf_u8 pf_str_class[256] = {
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,2,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
};

#if defined(__SSE2__)
#include <emmintrin.h>
#define PF_SSE2 1
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && \
      __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PF_SWAR 1
#endif

/* Advance p over plain string bytes (not '"', '\\', control or non-ASCII), reading only
 * inside [p, end). Vectorised: the bytes between quotes are usually ASCII text. */
static inline const pf_u8 *pf_plain_run(const pf_u8 *p, const pf_u8 *end) {
#if defined(PF_SSE2)
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches non-ASCII */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)),
                                 _mm_cmplt_epi8(x, sp));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#elif defined(PF_SWAR)
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t x, a, b;
        memcpy(&x, p, 8);
        a = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        /* per term the lowest flagged byte is exact (borrows only propagate upwards) */
        uint64_t m = (((a - ones) & ~a) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & highs;
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && pf_str_class[*p] == 0) p++;
    return p;
}

/* One UTF-8 sequence starting at a byte >= 0x80 (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF). Returns the position after it, or NULL. */
static inline const pf_u8 *pf_utf8_seq(const pf_u8 *p, const pf_u8 *end) {
    pf_u8 c = p[0];
    pf_u8 lo = 0x80, hi = 0xBF;
    int n;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else return NULL;
    if (end - p <= n) return NULL;
    if (p[1] < lo || p[1] > hi) return NULL;
    for (int i = 2; i <= n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return NULL;
    return p + n + 1;
}

static inline int pf_hex4(const pf_u8 *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        pf_u8 c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = (v << 4) | d;
    }
    *out = v;
    return 1;
}

/* A string whose opening quote is at p. Validates UTF-8 and escapes as orjson does (a high
 * surrogate escape must be followed by a low one; a lone low surrogate is an error).
 * Sets *s and *len to the raw bytes between the quotes, *esc to whether an escape occurred. */
static inline const pf_u8 *pf_string(const pf_u8 *p, const pf_u8 *end,
                                     const pf_u8 **s, size_t *len, int *esc) {
    const pf_u8 *start = ++p;
    int had_esc = 0;
    for (;;) {
        p = pf_plain_run(p, end);
        if (p >= end) return NULL;
        switch (pf_str_class[*p]) {
        case 1:
            *s = start; *len = (size_t)(p - start); *esc = had_esc;
            return p + 1;
        case 2: {
            had_esc = 1;
            if (end - p < 2) return NULL;
            pf_u8 e = p[1];
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                e == 'r' || e == 't') { p += 2; break; }
            if (e != 'u') return NULL;
            unsigned u;
            if (end - p < 6 || !pf_hex4(p + 2, &u)) return NULL;
            p += 6;
            if (u >= 0xDC00 && u <= 0xDFFF) return NULL;          /* lone low surrogate */
            if (u >= 0xD800 && u <= 0xDBFF) {                      /* needs a low one next */
                unsigned l;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !pf_hex4(p + 2, &l)) return NULL;
                if (l < 0xDC00 || l > 0xDFFF) return NULL;
                p += 6;
            }
            break;
        }
        case 4:
            p = pf_utf8_seq(p, end);
            if (!p) return NULL;
            break;
        default:   /* control character */
            return NULL;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers.                                                                                    */

enum { PF_NUM_SKIP = 0, PF_NUM_DOUBLE = 1, PF_NUM_INT64 = 2 };

static const double pf_p10d[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static const uint64_t pf_p10u[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

#define PF_NUM_MAXLEN 95      /* longest number handed to strtod; longer ones fall back */
#define PF_EXP_CAP 100000000  /* saturate absurd exponents (value is 0 or inf long before) */

#define PF_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* A JSON number at p (grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), in one of
 * three modes:
 *   PF_NUM_SKIP   accept iff orjson accepts it (orjson rejects numbers that overflow a double);
 *   PF_NUM_DOUBLE *d = the double orjson's value gives: for an integer token, float(int)
 *                 (refused outside int64); otherwise the correctly rounded double;
 *   PF_NUM_INT64  *i = the integer; only integer tokens that fit int64.
 * Returns the position after the number, or NULL (not understood: the caller falls back). */
static inline const pf_u8 *pf_number(const pf_u8 *p, const pf_u8 *end, int mode,
                                     double *d, int64_t *i) {
    const pf_u8 *start = p;
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;

    /* 1. the token's extent and parts */
    const pf_u8 *ib = p, *ie, *fb = NULL, *fe = NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { p++; while (p < end && PF_DIGIT(*p)) p++; }
    else return NULL;
    ie = p;
    if (p < end && *p == '.') {
        fb = ++p;
        while (p < end && PF_DIGIT(*p)) p++;
        fe = p;
        if (fe == fb) return NULL;
    }
    int64_t ex = 0;
    int has_exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        has_exp = 1;
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) { eneg = (*p == '-'); p++; }
        if (p >= end || !PF_DIGIT(*p)) return NULL;
        while (p < end && PF_DIGIT(*p)) {
            if (ex < PF_EXP_CAP) ex = ex * 10 + (*p - '0');
            p++;
        }
        if (eneg) ex = -ex;
    }
    int64_t int_len = ie - ib;

    /* 2. integer tokens: orjson gives an int in [-2^63, 2^64), a double beyond */
    if (!fb && !has_exp) {
        if (mode == PF_NUM_SKIP)
            return int_len <= 308 ? p : NULL;   /* 309+ digits may overflow: let orjson say */
        if (int_len > 19) return NULL;
        uint64_t mag = 0;                       /* < 10^19 < 2^64 */
        for (const pf_u8 *q = ib; q < ie; q++) mag = mag * 10 + (*q - '0');
        if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX) return NULL;
        int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;   /* -0 is int 0 */
        if (mode == PF_NUM_INT64) *i = v;
        else *d = (double)v;    /* correctly rounded, like float(int) */
        return p;
    }
    if (mode == PF_NUM_INT64) return NULL;

    /* 3. floats: significant digits = integer part + fraction without leading zeros */
    int int_zero = (*ib == '0');
    const pf_u8 *fs = fb;                       /* first significant fraction digit */
    if (int_zero) {
        if (fb) while (fs < fe && *fs == '0') fs++;
        if (!fb || fs == fe) {                  /* every digit is 0 */
            if (mode == PF_NUM_DOUBLE) *d = neg ? -0.0 : 0.0;
            return p;
        }
    }
    int64_t frac_len = fb ? fe - fb : 0;
    /* the value is below 10^order */
    int64_t order = (int_zero ? -(fs - fb) : int_len) + ex;
    if (mode == PF_NUM_SKIP) {
        if (order <= 308) return p;
        /* may overflow: the exact conversion below decides */
    } else {
        int64_t nd = (int_zero ? 0 : int_len) + (fb ? fe - fs : 0);
        if (nd <= 19) {
            uint64_t sig = 0;
            if (!int_zero) for (const pf_u8 *q = ib; q < ie; q++) sig = sig * 10 + (*q - '0');
            if (fb) for (const pf_u8 *q = fs; q < fe; q++) sig = sig * 10 + (*q - '0');
            int64_t e10 = ex - frac_len;
            while (nd > 15 && sig % 10 == 0) { sig /= 10; nd--; e10++; }
            if (nd <= 15) {
                /* Exact fast path: sig < 10^15 < 2^53 is exact, so is 10^k for k <= 22, and
                 * one IEEE multiplication or division is correctly rounded. */
                if (e10 > 22 && e10 <= 22 + 15 - nd) {
                    sig *= pf_p10u[e10 - 22];   /* still < 10^15: exact */
                    e10 = 22;
                }
                if (e10 >= 0 && e10 <= 22) {
                    double v = (double)sig * pf_p10d[e10];
                    *d = neg ? -v : v;
                    return p;
                }
                if (e10 < 0 && e10 >= -22) {
                    double v = (double)sig / pf_p10d[-e10];
                    *d = neg ? -v : v;
                    return p;
                }
            }
        }
    }

    /* 4. slow path: glibc strtod is correctly rounded, including subnormals */
    size_t L = (size_t)(p - start);
    if (L > PF_NUM_MAXLEN || !pf_c_locale) return NULL;
    char tmp[PF_NUM_MAXLEN + 1];
    memcpy(tmp, start, L);
    tmp[L] = 0;
    char *e = NULL;
    double v = pf_strtod(tmp, &e);
    if (e != tmp + L) return NULL;
    if (isinf(v) || isnan(v)) return NULL;    /* orjson: "number is infinity" */
    if (mode == PF_NUM_DOUBLE) *d = v;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Skipping any JSON value (validated like orjson, iteratively, nesting depth <= 64).          */

#define PF_MAX_DEPTH 64

static inline const pf_u8 *pf_literal(const pf_u8 *p, const pf_u8 *end, const char *lit, size_t n) {
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0) return NULL;
    return p + n;
}

/* A scalar (string, number, literal). p points at its first byte (p < end). */
static inline const pf_u8 *pf_skip_scalar(const pf_u8 *p, const pf_u8 *end) {
    const pf_u8 *s; size_t len; int esc;
    switch (*p) {
    case '"': return pf_string(p, end, &s, &len, &esc);
    case 't': return pf_literal(p, end, "true", 4);
    case 'f': return pf_literal(p, end, "false", 5);
    case 'n': return pf_literal(p, end, "null", 4);
    default: return pf_number(p, end, PF_NUM_SKIP, NULL, NULL);
    }
}

/* Any value; p points at its first byte (whitespace already skipped). */
static const pf_u8 *pf_skip_value(const pf_u8 *p, const pf_u8 *end) {
    if (p >= end) return NULL;
    if (*p != '{' && *p != '[') return pf_skip_scalar(p, end);

    uint64_t is_obj = 0;   /* bit k: container at depth k+1 is an object */
    int depth = 0;
    const pf_u8 *s; size_t len; int esc;

    /* open the container at p */
open:
    if (depth >= PF_MAX_DEPTH) return NULL;
    if (*p == '{') is_obj |= (1ULL << depth); else is_obj &= ~(1ULL << depth);
    depth++;
    p = pf_ws(p + 1, end);
    if (p >= end) return NULL;
    if (*p == ((is_obj >> (depth - 1)) & 1 ? '}' : ']')) { p++; goto close; }
    /* first member / element */
member:
    if ((is_obj >> (depth - 1)) & 1) {
        if (*p != '"') return NULL;
        p = pf_string(p, end, &s, &len, &esc);
        if (!p) return NULL;
        p = pf_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = pf_ws(p + 1, end);
        if (p >= end) return NULL;
    }
    if (*p == '{' || *p == '[') goto open;
    p = pf_skip_scalar(p, end);
    if (!p) return NULL;
after:
    p = pf_ws(p, end);
    if (p >= end) return NULL;
    if (*p == ',') {
        p = pf_ws(p + 1, end);
        if (p >= end) return NULL;
        goto member;
    }
    if (*p != ((is_obj >> (depth - 1)) & 1 ? '}' : ']')) return NULL;
    p++;
close:
    depth--;
    if (depth == 0) return p;
    goto after;
}

#endif
