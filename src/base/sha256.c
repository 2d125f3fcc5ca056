/* SHA-256 (FIPS 180-4), used to identify model files.
 *
 * A portable implementation of the compression function, plus one that uses
 * the x86 SHA extensions when the CPU has them (several times faster, which
 * matters for models of hundreds of megabytes). */
#include "base/base.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define FG_SHA256_HAVE_SHANI 1
#include <immintrin.h>
#endif

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t rotate_right(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Processes n_blocks consecutive 64-byte blocks. */
static void compress_portable(uint32_t state[8], const uint8_t *data, size_t n_blocks)
{
    for (size_t block = 0; block < n_blocks; block++, data += 64) {
        uint32_t w[64];
        for (int t = 0; t < 16; t++)
            w[t] = load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = rotate_right(w[t - 15], 7) ^ rotate_right(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = rotate_right(w[t - 2], 17) ^ rotate_right(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t big_sigma1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
            uint32_t choose = (e & f) ^ (~e & g);
            uint32_t t1 = h + big_sigma1 + choose + round_constants[t] + w[t];
            uint32_t big_sigma0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
            uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = big_sigma0 + majority;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

#ifdef FG_SHA256_HAVE_SHANI
/* Four rounds on the (ABEF, CDGH) register pair with message words msg. */
#define SHA256_FOUR_ROUNDS(msg_words, k_index)                                                   \
    do {                                                                                         \
        __m128i wk = _mm_add_epi32((msg_words), _mm_loadu_si128((const __m128i *)&round_constants[k_index])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);                                            \
        wk = _mm_shuffle_epi32(wk, 0x0E);                                                        \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);                                            \
    } while (0)

__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t state[8], const uint8_t *data,
                                                                        size_t n_blocks)
{
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* state words a..h -> the ABEF / CDGH layout the instructions use */
    __m128i abcd = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i efgh = _mm_loadu_si128((const __m128i *)&state[4]);
    __m128i badc = _mm_shuffle_epi32(abcd, 0xB1); /* b a d c */
    __m128i fehg = _mm_shuffle_epi32(efgh, 0x1B); /* h g f e */
    __m128i abef = _mm_alignr_epi8(badc, fehg, 8);  /* f e b a (lanes 0..3) */
    __m128i cdgh = _mm_blend_epi16(fehg, badc, 0xF0); /* h g d c */

    for (size_t block = 0; block < n_blocks; block++, data += 64) {
        __m128i saved_abef = abef, saved_cdgh = cdgh;
        __m128i m[4];
        for (int i = 0; i < 4; i++)
            m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), byte_swap);
        for (int group = 0; group < 16; group++) {
            __m128i current = m[group & 3];
            SHA256_FOUR_ROUNDS(current, group * 4);
            if (group < 12) {
                /* schedule words for group + 4 into m[group & 3] */
                __m128i next = _mm_sha256msg1_epu32(m[group & 3], m[(group + 1) & 3]);
                next = _mm_add_epi32(next, _mm_alignr_epi8(m[(group + 3) & 3], m[(group + 2) & 3], 4));
                m[group & 3] = _mm_sha256msg2_epu32(next, m[(group + 3) & 3]);
            }
        }
        abef = _mm_add_epi32(abef, saved_abef);
        cdgh = _mm_add_epi32(cdgh, saved_cdgh);
    }

    /* back to a..h */
    uint32_t abef_words[4], cdgh_words[4];
    _mm_storeu_si128((__m128i *)abef_words, abef);
    _mm_storeu_si128((__m128i *)cdgh_words, cdgh);
    /* lanes: abef_words = {f, e, b, a}, cdgh_words = {h, g, d, c} */
    state[0] = abef_words[3];
    state[1] = abef_words[2];
    state[2] = cdgh_words[3];
    state[3] = cdgh_words[2];
    state[4] = abef_words[1];
    state[5] = abef_words[0];
    state[6] = cdgh_words[1];
    state[7] = cdgh_words[0];
}
#endif

static void compress(uint32_t state[8], const uint8_t *data, size_t n_blocks)
{
#ifdef FG_SHA256_HAVE_SHANI
    __builtin_cpu_init(); /* idempotent and cheap; no shared state to race on */
    if (__builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1")) {
        compress_shani(state, data, n_blocks);
        return;
    }
#endif
    compress_portable(state, data, n_blocks);
}

void fg_sha256_hex(const void *data, size_t size, char out[65])
{
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *bytes = data;
    size_t full_blocks = size / 64;
    if (full_blocks)
        compress(state, bytes, full_blocks);

    /* padding: 0x80, zeros, then the message length in bits (big-endian) */
    uint8_t tail[128];
    size_t rest = size - full_blocks * 64;
    memset(tail, 0, sizeof tail);
    if (rest)
        memcpy(tail, bytes + full_blocks * 64, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bit_length = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bit_length >> (8 * i));
    compress(state, tail, tail_len / 64);

    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(state[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = hex[byte >> 4];
            out[8 * i + 2 * j + 1] = hex[byte & 15];
        }
    out[64] = 0;
}
