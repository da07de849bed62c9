/* C helpers of the frame scanner (parsec_fast._scan): JSON lexing primitives that never read
 * outside [p, end) and that accept exactly what orjson accepts (or less: anything refused here
 * sends the frame to the orjson path, which decides).
 *
 * Every function takes the current position and the end of the buffer, and returns the position
 * after what it consumed, or NULL when the input is not understood.
 */
#ifndef PARSEC_FAST_SCAN_C_H
#define PARSEC_FAST_SCAN_C_H

#if defined(__GNUC__) || defined(__clang__)
#define PF_NOINLINE __attribute__((noinline))
#define PF_HOT static inline __attribute__((always_inline))
#define PF_LIKELY(x) __builtin_expect(!!(x), 1)
#define PF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PF_NOINLINE
#define PF_HOT static inline
#define PF_LIKELY(x) (x)
#define PF_UNLIKELY(x) (x)
#endif

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

/* Unaligned loads (one mov each); comparing them with the same load of a literal makes the
 * test independent of byte order, and gcc/clang fold the literal's load to a constant. */
static inline uint64_t pf_ld8(const void *s) { uint64_t v; memcpy(&v, s, 8); return v; }
static inline uint32_t pf_ld4(const void *s) { uint32_t v; memcpy(&v, s, 4); return v; }
static inline uint16_t pf_ld2(const void *s) { uint16_t v; memcpy(&v, s, 2); return v; }

/* ------------------------------------------------------------------------------------------ */
/* Whitespace: exactly JSON's four characters.                                                 */

static inline const pf_u8 *pf_ws(const pf_u8 *p, const pf_u8 *end) {
    if (p < end && *p > ' ') return p;   /* compact JSON: the usual case */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* The byte c, after optional whitespace: returns the position after it, or NULL. */
static PF_NOINLINE const pf_u8 *pf_expect_slow(const pf_u8 *p, const pf_u8 *end, pf_u8 c) {
    p = pf_ws(p, end);
    return (p < end && *p == c) ? p + 1 : NULL;
}

PF_HOT const pf_u8 *pf_expect(const pf_u8 *p, const pf_u8 *end, pf_u8 c) {
    if (PF_LIKELY(p < end && *p == c)) return p + 1;     /* compact JSON */
    return pf_expect_slow(p, end, c);
}

/* After a key: whitespace, ':', whitespace; returns the value's first byte (p < end) or NULL. */
static PF_NOINLINE const pf_u8 *pf_colon(const pf_u8 *p, const pf_u8 *end) {
    p = pf_expect(p, end, ':');
    if (!p) return NULL;
    p = pf_ws(p, end);
    return p < end ? p : NULL;
}

/* After a member or element: when a ',' follows, returns the next one's first byte, which
 * must be `next` ('"' for a key, '{' or '[' for an array item); otherwise returns the
 * position of the `close` byte (the caller tells the two apart by that byte); NULL for
 * anything else. All positions returned are < end. */
static PF_NOINLINE const pf_u8 *pf_sep_slow(const pf_u8 *p, const pf_u8 *end, pf_u8 next,
                                            pf_u8 close) {
    p = pf_ws(p, end);
    if (p >= end) return NULL;
    if (*p == close) return p;
    if (*p != ',') return NULL;
    p = pf_ws(p + 1, end);
    return (p < end && *p == next) ? p : NULL;
}

PF_HOT const pf_u8 *pf_sep(const pf_u8 *p, const pf_u8 *end, pf_u8 next, pf_u8 close) {
    /* compact JSON: ',' then `next`, as one 16-bit compare (byte-order independent: the
     * same load of both sides), or the close byte itself */
    const pf_u8 want[2] = {',', next};
    if (PF_LIKELY(end - p >= 2 && pf_ld2(p) == pf_ld2(want))) return p + 1;
    if (p < end && *p == close) return p;
    return pf_sep_slow(p, end, next, close);
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

/* The general case of a string, out of line: start is the first byte of the string's body,
 * p a position in it up to which every byte is plain. Validates UTF-8 and escapes as orjson
 * does (a high surrogate escape must be followed by a low one; a lone low surrogate is an
 * error). */
static PF_NOINLINE const pf_u8 *pf_string_slow(const pf_u8 *start, const pf_u8 *p,
                                               const pf_u8 *end, const pf_u8 **s, size_t *len,
                                               int *esc) {
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

#if defined(PF_SSE2)
/* Bit i set when p[i] is '"', '\\', a control character or >= 0x80 (reads p[0:16]).
 * Two compares instead of three: x ^ 0x02 maps '"' (0x22) to 0x20 and keeps 0x00-0x1F in
 * place and bytes >= 0x80 negative, while no other byte lands below 0x21 ('!' -> 0x23,
 * ' ' -> 0x22, '#' -> 0x21), so one signed "< 0x21" finds '"', controls and non-ASCII. */
static inline unsigned pf_special16(const pf_u8 *p) {
    const __m128i x = _mm_loadu_si128((const __m128i *)p);
    const __m128i qc = _mm_cmpgt_epi8(_mm_set1_epi8(0x21), _mm_xor_si128(x, _mm_set1_epi8(0x02)));
    const __m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(qc, bs));
}
#endif

/* A string whose opening quote is at p. Sets *s and *len to the raw bytes between the quotes,
 * *esc to whether an escape occurred. The common case (plain ASCII up to the closing quote,
 * 16 bytes readable) is one vector compare per 16 bytes, inline; anything else continues in
 * pf_string_slow. Non-ASCII needs no separate pass: the compare that finds the quote also
 * stops at bytes >= 0x80, and only then does UTF-8 validation run. */
PF_HOT const pf_u8 *pf_string(const pf_u8 *p, const pf_u8 *end,
                              const pf_u8 **s, size_t *len, int *esc) {
    const pf_u8 *start = p + 1, *q = start;
#if defined(PF_SSE2)
    while (PF_LIKELY(end - q >= 16)) {
        unsigned m = pf_special16(q);
        if (m) {
            q += __builtin_ctz(m);          /* inside the block: q < end */
            if (PF_LIKELY(*q == '"')) {
                *s = start; *len = (size_t)(q - start); *esc = 0;
                return q + 1;
            }
            break;
        }
        q += 16;
    }
#endif
    return pf_string_slow(start, q, end, s, len, esc);
}

/* A string the caller uses as raw bytes (no unescaping): NULL when it has an escape. */
static inline const pf_u8 *pf_rawstr(const pf_u8 *p, const pf_u8 *end,
                                     const pf_u8 **s, size_t *len) {
    int esc;
    p = pf_string(p, end, s, len, &esc);
    return (p && !esc) ? p : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Keys the scanner reads, as small dense indexes (the caller switches on them) whose bits
 * PF_KBIT(i) track duplicates and per-type relevance in masks. Keys of a "changes" item and
 * top-level keys share the space; each level masks out the other's. */

enum {
    PF_KI_UNKNOWN = 0, PF_KI_TYPE, PF_KI_PARSEC_ID, PF_KI_OUTCOME, PF_KI_SEQ, PF_KI_CHANGES,
    PF_KI_BIDS, PF_KI_ASKS, PF_KI_BOOK_STATE, PF_KI_FEED_STATE, PF_KI_STALE, PF_KI_EXCHANGE_TS,
    PF_KI_INGEST_TS, PF_KI_SIDE, PF_KI_PRICE, PF_KI_SIZE
};
/* bit of a key index in "seen" / "wanted" masks (PF_KI_UNKNOWN's bit is in no mask) */
#define PF_KBIT(ki) (1u << (ki))

#define PF_W8(s, off, lit) (pf_ld8((s) + (off)) == pf_ld8(lit))
#define PF_W4(s, off, lit) (pf_ld4((s) + (off)) == pf_ld4(lit))

/* The PF_KI_* index of the key s[0:len], or 0 (PF_KI_UNKNOWN). Reads only s[0:len]
 * (overlapping loads). */
static inline unsigned pf_key_id(const pf_u8 *s, size_t len) {
    switch (len) {
    case 4: {
        uint32_t w = pf_ld4(s);
        if (w == pf_ld4("type")) return PF_KI_TYPE;
        if (w == pf_ld4("side")) return PF_KI_SIDE;
        if (w == pf_ld4("size")) return PF_KI_SIZE;
        if (w == pf_ld4("bids")) return PF_KI_BIDS;
        if (w == pf_ld4("asks")) return PF_KI_ASKS;
        return 0;
    }
    case 5:
        return (PF_W4(s, 0, "pric") && s[4] == 'e') ? PF_KI_PRICE : 0;
    case 7:   /* bytes 0-3 and 3-6 */
        if (PF_W4(s, 0, "chan") && PF_W4(s, 3, "nges")) return PF_KI_CHANGES;
        if (PF_W4(s, 0, "outc") && PF_W4(s, 3, "come")) return PF_KI_OUTCOME;
        return 0;
    case 9:
        return (PF_W8(s, 0, "parsec_i") && s[8] == 'd') ? PF_KI_PARSEC_ID : 0;
    case 10:  /* bytes 0-7 and 2-9 */
        if (PF_W8(s, 2, "rver_seq") && PF_W8(s, 0, "server_s")) return PF_KI_SEQ;
        if (PF_W8(s, 2, "ed_state") && PF_W8(s, 0, "feed_sta")) return PF_KI_FEED_STATE;
        if (PF_W8(s, 2, "ok_state") && PF_W8(s, 0, "book_sta")) return PF_KI_BOOK_STATE;
        return 0;
    case 12:
        return (PF_W8(s, 0, "ingest_t") && PF_W4(s, 8, "s_ms")) ? PF_KI_INGEST_TS : 0;
    case 14:  /* bytes 0-7 and 6-13 */
        if (PF_W8(s, 0, "exchange") && PF_W8(s, 6, "ge_ts_ms")) return PF_KI_EXCHANGE_TS;
        if (PF_W8(s, 0, "stale_af") && PF_W8(s, 6, "after_ms")) return PF_KI_STALE;
        return 0;
    default:
        return 0;
    }
}

/* s[0:n] == lit[0:m] for a string literal lit: with m and lit constant after inlining, a length
 * test and two overlapping word compares (4 <= m <= 16), no memcmp call. */
static inline int pf_eq(const pf_u8 *s, size_t n, const char *lit, size_t m) {
    if (n != m) return 0;
    if (m >= 8 && m <= 16)
        return pf_ld8(s) == pf_ld8(lit) && pf_ld8(s + m - 8) == pf_ld8(lit + m - 8);
    if (m >= 4 && m < 8)
        return pf_ld4(s) == pf_ld4(lit) && pf_ld4(s + m - 4) == pf_ld4(lit + m - 4);
    return memcmp(s, lit, m) == 0;
}

/* A key whose opening quote is at p: returns the position after its closing quote and sets
 * *id to its PF_KI_* index (0 for a key the scanner does not read). NULL for an escaped key
 * (it could spell a key we need: the caller falls back) or invalid text. */
static inline const pf_u8 *pf_key(const pf_u8 *p, const pf_u8 *end, unsigned *id) {
    const pf_u8 *s;
    size_t len;
    p = pf_rawstr(p, end, &s, &len);
    if (p) *id = pf_key_id(s, len);
    return p;
}

/* A member's key and colon, in general: returns the value's first byte (p < end) or NULL. */
static PF_NOINLINE const pf_u8 *pf_member_slow(const pf_u8 *p, const pf_u8 *end, unsigned *id) {
    p = pf_key(p, end, id);
    return p ? pf_colon(p, end) : NULL;
}

#if defined(PF_SSE2)
/* The keys of the protocol's book frames as 16-byte patterns: the key's text then '":'. One
 * vector compare of the bytes after the opening quote against the pattern proves the whole
 * key (no escape can hide in it: the pattern has none) and the colon right after it, where
 * the general path costs a string scan, a length switch, word compares and a colon check.
 * Keys the scanner skips but frames carry (exchange, token_id...) are here too, with id 0. */
typedef struct { char pat[16]; unsigned n; unsigned id; } pf_keypat;
#define PF_KP(lit, kid) { lit "\":", (unsigned)sizeof(lit) + 1, kid }   /* n = len + 2 <= 16 */
static const pf_keypat pf_keypats[] = {
    PF_KP("type", PF_KI_TYPE),                    /*  0 */
    PF_KP("token_id", 0),                         /*  1 */
    PF_KP("tick_size", 0),                        /*  2 */
    PF_KP("title", 0),                            /*  3 */
    PF_KP("parsec_id", PF_KI_PARSEC_ID),          /*  4 */
    PF_KP("price", PF_KI_PRICE),                  /*  5 */
    PF_KP("outcome", PF_KI_OUTCOME),              /*  6 */
    PF_KP("server_seq", PF_KI_SEQ),               /*  7 */
    PF_KP("stale_after_ms", PF_KI_STALE),         /*  8 */
    PF_KP("side", PF_KI_SIDE),                    /*  9 */
    PF_KP("size", PF_KI_SIZE),                    /* 10 */
    PF_KP("changes", PF_KI_CHANGES),              /* 11 */
    PF_KP("bids", PF_KI_BIDS),                    /* 12 */
    PF_KP("book_state", PF_KI_BOOK_STATE),        /* 13 */
    PF_KP("asks", PF_KI_ASKS),                    /* 14 */
    PF_KP("feed_state", PF_KI_FEED_STATE),        /* 15 */
    PF_KP("exchange", 0),                         /* 16 */
    PF_KP("exchange_ts_ms", PF_KI_EXCHANGE_TS),   /* 17 */
    PF_KP("ingest_ts_ms", PF_KI_INGEST_TS),       /* 18 */
    PF_KP("market_id", 0),                        /* 19 */
    PF_KP("min_order_size", 0),                   /* 20 */
    PF_KP("kind", 0),                             /* 21 */
};
#undef PF_KP

static inline int pf_keypat_match(__m128i x, const pf_keypat *k) {
    unsigned eq = (unsigned)_mm_movemask_epi8(
        _mm_cmpeq_epi8(x, _mm_loadu_si128((const __m128i *)k->pat)));
    unsigned want = (1u << k->n) - 1;
    return (eq & want) == want;
}
#endif

/* A member's key and colon (p at the key's opening quote): returns the value's first byte
 * (p < end) and sets *id (PF_KI_* index, 0 for a key the scanner skips), or NULL when the key is
 * escaped (it could spell a key we need) or the text invalid. Known keys written compactly
 * take one compare chosen by the key's first letter; everything else the general path. */
PF_HOT const pf_u8 *pf_member(const pf_u8 *p, const pf_u8 *end, unsigned *id) {
#if defined(PF_SSE2)
    const pf_u8 *s = p + 1;
    if (PF_LIKELY(end - s > 16)) {       /* 16 bytes to compare and the value's first byte */
        const __m128i x = _mm_loadu_si128((const __m128i *)s);
        const pf_keypat *k;
#define PF_TRY(i) if (pf_keypat_match(x, k = &pf_keypats[i])) goto hit
        switch (s[0]) {
        case 't': PF_TRY(0); PF_TRY(1); PF_TRY(2); PF_TRY(3); break;
        case 'p': if (s[1] == 'r') { PF_TRY(5); } else { PF_TRY(4); } break;
        case 'o': PF_TRY(6); break;
        case 's':   /* four keys: the third letter tells them apart */
            switch (s[2]) {
            case 'r': PF_TRY(7); break;
            case 'a': PF_TRY(8); break;
            case 'd': PF_TRY(9); break;
            case 'z': PF_TRY(10); break;
            default: break;
            }
            break;
        case 'c': PF_TRY(11); break;
        case 'b': if (s[1] == 'o') { PF_TRY(13); } else { PF_TRY(12); } break;
        case 'a': PF_TRY(14); break;
        case 'f': PF_TRY(15); break;
        case 'e': PF_TRY(17); PF_TRY(16); break;
        case 'i': PF_TRY(18); break;
        case 'm': PF_TRY(19); PF_TRY(20); break;
        case 'k': PF_TRY(21); break;
        default: break;
        }
#undef PF_TRY
        goto miss;
    hit:
        s += k->n;                       /* after the colon; s < end */
        if (PF_UNLIKELY(*s <= ' ')) {    /* whitespace before the value */
            s = pf_ws(s, end);
            if (s >= end) return NULL;
        }
        *id = k->id;
        return s;
    }
miss:
#endif
    return pf_member_slow(p, end, id);
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
static PF_NOINLINE const pf_u8 *pf_number(const pf_u8 *p, const pf_u8 *end, int mode,
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

/* Fast paths for the numbers frames actually carry. Each handles the common spellings in one
 * pass and hands everything else (exponents, long mantissas, 19+ digit integers) to pf_number,
 * which decides from the token's start; they accept exactly what pf_number accepts and give
 * the same value (the tests compare both against orjson). */

/* Decimal digits from q: accumulates them into *v (wrapping beyond 19 digits: callers check
 * the count) and returns the position after them.
 * Where 8 bytes are readable, no bounds test per digit: long runs (13-digit millisecond
 * timestamps) go 8 digits at a time on little-endian targets (SWAR: one test that the word is
 * all digits, three multiplications to convert it), tried only when q[7] is a digit, so short
 * runs (prices, sizes, sequence numbers) pay one byte test; then an unrolled byte loop. */
PF_HOT const pf_u8 *pf_digits(const pf_u8 *q, const pf_u8 *end, uint64_t *v) {
    uint64_t x = *v;
    if (PF_LIKELY(end - q >= 8)) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (PF_DIGIT(q[7])) {
            do {
                uint64_t w = pf_ld8(q);
                /* all 8 bytes in '0'..'9': high nibbles all 3, and adding 6 carries out of none */
                if (((w & 0xF0F0F0F0F0F0F0F0ULL) |
                     (((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4))
                    != 0x3333333333333333ULL)
                    break;
                w -= 0x3030303030303030ULL;               /* digit values, first digit lowest */
                w = w * 10 + (w >> 8);                    /* pairs */
                w = (((w & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
                     (((w >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
                x = x * 100000000ULL + (uint32_t)w;
                q += 8;
            } while (end - q >= 8);
            if (end - q < 8) goto tail;
        }
#endif
        unsigned d;
#define PF_DIGIT_AT(k) d = (unsigned)q[k] - '0'; if (d > 9) { q += k; goto done; } x = x * 10 + d
        PF_DIGIT_AT(0); PF_DIGIT_AT(1); PF_DIGIT_AT(2); PF_DIGIT_AT(3);
        PF_DIGIT_AT(4); PF_DIGIT_AT(5); PF_DIGIT_AT(6); PF_DIGIT_AT(7);
#undef PF_DIGIT_AT
        q += 8;      /* 8 digits and maybe more: the byte loop goes on */
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
tail:
#endif
    while (q < end && PF_DIGIT(*q)) { x = x * 10 + (uint64_t)(*q - '0'); q++; }
done:
    *v = x;
    return q;
}

/* The integer part of a number at p ('-'? then '0' or [1-9][0-9]*): sets *neg, *mag and *nd
 * (its digit count) and returns the position after it, or NULL when there is no digit. */
PF_HOT const pf_u8 *pf_int_part(const pf_u8 *p, const pf_u8 *end, int *neg,
                                uint64_t *mag, int64_t *nd) {
    *neg = 0;
    if (p < end && *p == '-') { *neg = 1; p++; }
    if (p >= end || !PF_DIGIT(*p)) return NULL;
    const pf_u8 *b = p;
    *mag = 0;
    if (*p == '0') p++;                  /* no leading zeros: "01" ends after the 0 */
    else p = pf_digits(p, end, mag);
    *nd = p - b;
    return p;
}

#define PF_IS_FRAC_OR_EXP(c) ((c) == '.' || ((c) | 0x20) == 'e')

/* An int64 JSON integer (PF_NUM_INT64 semantics). */
PF_HOT const pf_u8 *pf_int64(const pf_u8 *p, const pf_u8 *end, int64_t *out) {
    int neg; uint64_t mag; int64_t nd;
    const pf_u8 *q = pf_int_part(p, end, &neg, &mag, &nd);
    if (PF_UNLIKELY(!q)) return NULL;
    if (q < end && PF_IS_FRAC_OR_EXP(*q)) return NULL;       /* not an integer token */
    if (PF_UNLIKELY(nd > 18)) return pf_number(p, end, PF_NUM_INT64, NULL, out);
    *out = neg ? -(int64_t)mag : (int64_t)mag;               /* < 10^18: no overflow; -0 is 0 */
    return q;
}

/* A number read as the double orjson's value gives (PF_NUM_DOUBLE semantics). Fast path:
 * integers of <= 18 digits (float(int), correctly rounded by the conversion) and decimals
 * without exponent of <= 19 digits in all whose digits form a mantissa <= 2^53: mantissa and
 * 10^k (k <= 19 <= 22) are exact doubles, so one IEEE division is correctly rounded
 * (Clinger's fast path); pf_number gives the same double, the tests check both. */
PF_HOT const pf_u8 *pf_double(const pf_u8 *p, const pf_u8 *end, double *d) {
    int neg; uint64_t sig; int64_t nd;
    const pf_u8 *q = pf_int_part(p, end, &neg, &sig, &nd);
    if (PF_UNLIKELY(!q)) return NULL;
    if (q < end && *q == '.') {
        const pf_u8 *f = ++q;
        q = pf_digits(q, end, &sig);
        int64_t nf = q - f;
        if (nf == 0) return NULL;                            /* "1." */
        if (PF_LIKELY(nd + nf <= 19 && sig <= (1ULL << 53) &&   /* so nf <= 19 too */
                      !(q < end && (*q | 0x20) == 'e'))) {
            double v = (double)sig / pf_p10d[nf];
            *d = neg ? -v : v;                               /* "-0.0" is -0.0 */
            return q;
        }
        return pf_number(p, end, PF_NUM_DOUBLE, d, NULL);
    }
    if (PF_UNLIKELY((q < end && (*q | 0x20) == 'e') || nd > 18))
        return pf_number(p, end, PF_NUM_DOUBLE, d, NULL);
    *d = (double)(neg ? -(int64_t)sig : (int64_t)sig);       /* "-0" is int 0: +0.0 */
    return q;
}

/* A number orjson accepts, value unused (PF_NUM_SKIP semantics): plain integers and decimals
 * up to 300 integer digits cannot overflow a double, so only exponents go to pf_number. */
static inline const pf_u8 *pf_skip_number(const pf_u8 *p, const pf_u8 *end) {
    int neg; uint64_t ign; int64_t nd;
    const pf_u8 *q = pf_int_part(p, end, &neg, &ign, &nd);
    if (PF_UNLIKELY(!q)) return NULL;
    if (q < end && *q == '.') {
        const pf_u8 *f = ++q;
        while (q < end && PF_DIGIT(*q)) q++;
        if (q == f) return NULL;
    }
    if (PF_UNLIKELY((q < end && (*q | 0x20) == 'e') || nd > 300))
        return pf_number(p, end, PF_NUM_SKIP, NULL, NULL);
    return q;
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
    default: return pf_skip_number(p, end);
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

/* ------------------------------------------------------------------------------------------ */
/* A change item in the protocol's own spelling.                                               */

enum { PF_CHANGE_BID = 1, PF_CHANGE_ASK = 2 };

/* An item of "changes" written exactly as {"side":"bid","price":N,"size":N} (or "ask"): compact,
 * keys in the protocol's order, as servers write them. Sets *side (PF_CHANGE_*), *price, *size
 * (read by pf_double, as the general member loop reads them) and returns the position after the
 * '}'; NULL when the item is written any other way, valid or not: the caller then reads it with
 * the general member loop, which decides. The fixed bytes prove the keys (no escape, no
 * duplicate) and the punctuation, so each item costs three word compares and two numbers instead
 * of three key lookups. */
PF_HOT const pf_u8 *pf_change_compact(const pf_u8 *p, const pf_u8 *end, int *side,
                                      double *price, double *size) {
    if (PF_UNLIKELY(end - p < 33)) return NULL;         /* {"side":"bid","price":0,"size":0} */
    if (pf_ld8(p) != pf_ld8("{\"side\":")) return NULL;
    uint64_t w = pf_ld8(p + 8);                          /* "bid","p */
    if (w == pf_ld8("\"bid\",\"p")) *side = PF_CHANGE_BID;
    else if (w == pf_ld8("\"ask\",\"p")) *side = PF_CHANGE_ASK;
    else return NULL;
    if (pf_ld4(p + 16) != pf_ld4("rice") || pf_ld2(p + 20) != pf_ld2("\":")) return NULL;
    p = pf_double(p + 22, end, price);
    if (!p || end - p < 9 || pf_ld8(p) != pf_ld8(",\"size\":")) return NULL;
    p = pf_double(p + 8, end, size);
    if (!p || p >= end || *p != '}') return NULL;
    return p + 1;
}

#endif
