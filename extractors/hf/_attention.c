/* Multi-head attention in bfloat16 for CPUs with AVX-512 BF16 (AMD Zen 4, Intel Cooper
 * Lake and later): softmax(Q Kᵀ · scale) V for one head of one window at a time, head size
 * 64, no mask.
 *
 * Why C: torch's CPU attention kernel runs no faster in bfloat16 than in float32 on such
 * a CPU (145 GFLOP/s at AST's 1,214 tokens; a bare bfloat16 `bmm` of Q Kᵀ reaches 127 to
 * 152), while its matrix products run bfloat16 at ~420 GFLOP/s. Its small blocks go
 * through a general GEMM call each, and a head size of 64 leaves each call little work.
 * Here both products are `vdpbf16ps` (two bfloat16 products per float32 lane, 32 per
 * instruction) on tiles held in registers: a tile of 6 query rows × 64 keys for Q Kᵀ, and
 * 6 rows × the 64 output columns for P V. A head's packed K and V (2 × 152 KiB at 1,214
 * tokens) stay in L2 while every query row streams past them.
 *
 * Numerics, as torch's bfloat16 flash kernel: products accumulate in float32; the
 * softmax is computed in float32 from the whole row of scores (no running rescale: a
 * row of scores is 4.9 KiB at 1,214 tokens); its exponentials are rounded to bfloat16
 * for P V, and the row sum (taken before rounding) divides the float32 output, which is
 * rounded to bfloat16 once.
 *
 * Called through ctypes (`cpu_attention.py`), which releases the GIL: the caller's
 * threads each take a range of the (window, head) items. The module itself only exists
 * so that the build and the import system find the library.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIM 64          /* the head size the kernel takes (the caller falls back otherwise) */
#define PAIRS (DIM / 2) /* bfloat16 pairs per row: one vdpbf16ps step each */
#define LANES 16        /* float32 lanes of a zmm register */
#define ROWS 6          /* query rows per tile */
#define KEY_BLOCKS 4    /* blocks of 16 keys per Q Kᵀ tile: 6 × 4 accumulators */
#define OUT_BLOCKS (DIM / LANES) /* output columns per P V tile: 6 × 4 accumulators */

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))
#define INLINE static inline __attribute__((always_inline))

/* The 32 bits of a bfloat16 pair, as vdpbf16ps broadcasts them. */
INLINE uint32_t pair_at(const uint16_t *p) {
    uint32_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

/* K of one head in vdpbf16ps order: per block of 16 keys and per pair of dimensions, the
 * 16 keys' pairs side by side (one zmm). Keys past `tokens` are zero. */
static void pack_keys(const uint16_t *k, int64_t stride, int64_t tokens, int64_t blocks,
                      uint32_t *packed) {
    for (int64_t b = 0; b < blocks; b++)
        for (int lane = 0; lane < LANES; lane++) {
            int64_t t = b * LANES + lane;
            uint32_t *dst = packed + b * PAIRS * LANES + lane;
            for (int p = 0; p < PAIRS; p++)
                dst[p * LANES] = t < tokens ? pair_at(k + t * stride + 2 * p) : 0;
        }
}

/* V of one head in vdpbf16ps order: per pair of keys, each dimension's two values side by
 * side (64 pairs, four zmm). Keys past `tokens` are zero. */
static void pack_values(const uint16_t *v, int64_t stride, int64_t tokens, int64_t pairs,
                        uint32_t *packed) {
    for (int64_t j = 0; j < pairs; j++) {
        const uint16_t *even = v + 2 * j * stride, *odd = even + stride;
        int has_even = 2 * j < tokens, has_odd = 2 * j + 1 < tokens;
        uint32_t *dst = packed + j * DIM;
        for (int d = 0; d < DIM; d++)
            dst[d] = (has_even ? even[d] : 0u) | (has_odd ? (uint32_t)odd[d] << 16 : 0u);
    }
}

/* Scores of ROWS query rows against `nb` blocks of 16 keys, into `scores` (row stride
 * `stride` floats). `nb` is a constant where it is inlined, so the tile stays in registers. */
AVX512_BF16 INLINE void score_tile(const uint16_t *const rows[ROWS], const uint32_t *keys,
                                   float *scores, int64_t stride, const int nb) {
    __m512 acc[ROWS][KEY_BLOCKS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < nb; c++) acc[r][c] = _mm512_setzero_ps();
    for (int p = 0; p < PAIRS; p++) {
        __m512bh key[KEY_BLOCKS];
        for (int c = 0; c < nb; c++)
            key[c] = (__m512bh)_mm512_loadu_si512(keys + (c * PAIRS + p) * LANES);
        for (int r = 0; r < ROWS; r++) {
            __m512bh query = (__m512bh)_mm512_set1_epi32((int)pair_at(rows[r] + 2 * p));
            for (int c = 0; c < nb; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], query, key[c]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < nb; c++) _mm512_storeu_ps(scores + r * stride + c * LANES, acc[r][c]);
}

/* 2^x for x <= 0: x = n + f with |f| <= 1/2, 2^f by its degree-6 Taylor polynomial
 * (relative error < 2e-7, far below bfloat16's 4e-3), scaled by 2^n exactly. */
AVX512_BF16 INLINE __m512 exp2_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.540353e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.333355e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550411e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* The lanes of block b of a row of `tokens` that hold a token (all 16 but in the last). */
INLINE __mmask16 tokens_in_block(int64_t tokens, int64_t b) {
    int64_t left = tokens - b * LANES;
    return left >= LANES ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* One row's softmax numerators exp(scale · (s - max)) rounded to bfloat16 into `weights`
 * (zero past `tokens`, up to `blocks` × 16); returns their float32 sum. */
AVX512_BF16 static float softmax_row(const float *scores, int64_t tokens, int64_t blocks,
                                     float log2e_scale, uint16_t *weights) {
    __m512 top = _mm512_set1_ps(-__builtin_inff());
    for (int64_t b = 0; b < blocks; b++)
        top = _mm512_max_ps(top, _mm512_mask_loadu_ps(top, tokens_in_block(tokens, b),
                                                       scores + b * LANES));
    __m512 shift = _mm512_set1_ps(-_mm512_reduce_max_ps(top) * log2e_scale);
    __m512 factor = _mm512_set1_ps(log2e_scale), total = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        __mmask16 valid = tokens_in_block(tokens, b);
        __m512 s = _mm512_maskz_loadu_ps(valid, scores + b * LANES);
        __m512 e = _mm512_maskz_mov_ps(valid, exp2_nonpositive(_mm512_fmadd_ps(s, factor, shift)));
        total = _mm512_add_ps(total, e);
        _mm256_storeu_si256((__m256i *)(weights + b * LANES), (__m256i)_mm512_cvtneps_pbh(e));
    }
    return _mm512_reduce_add_ps(total);
}

/* ROWS output rows: the weights' rows (stride `stride` bfloat16) times the packed values,
 * each divided by its row sum and rounded to bfloat16 into `out[r]` (NULL: not stored). */
AVX512_BF16 static void weighted_values(const uint16_t *weights, int64_t stride,
                                        const uint32_t *values, int64_t pairs,
                                        const float sums[ROWS], uint16_t *const out[ROWS]) {
    __m512 acc[ROWS][OUT_BLOCKS];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < OUT_BLOCKS; c++) acc[r][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < pairs; j++) {
        __m512bh value[OUT_BLOCKS];
        for (int c = 0; c < OUT_BLOCKS; c++)
            value[c] = (__m512bh)_mm512_loadu_si512(values + j * DIM + c * LANES);
        for (int r = 0; r < ROWS; r++) {
            __m512bh weight = (__m512bh)_mm512_set1_epi32((int)pair_at(weights + r * stride + 2 * j));
            for (int c = 0; c < OUT_BLOCKS; c++)
                acc[r][c] = _mm512_dpbf16_ps(acc[r][c], weight, value[c]);
        }
    }
    for (int r = 0; r < ROWS; r++) {
        if (!out[r]) continue;
        __m512 inverse = _mm512_set1_ps(1.0f / sums[r]);
        for (int c = 0; c < OUT_BLOCKS; c++)
            _mm256_storeu_si256((__m256i *)(out[r] + c * LANES),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(acc[r][c], inverse)));
    }
}

/* One head of one window: queries (tokens_q rows of stride q_stride), keys and values
 * (tokens_k rows), output rows of stride out_stride; scratch as `head_scratch` sizes it. */
AVX512_BF16 static void attend_head(const uint16_t *q, int64_t q_stride, int64_t tokens_q,
                                    const uint16_t *k, int64_t k_stride, const uint16_t *v,
                                    int64_t v_stride, int64_t tokens_k, uint16_t *out,
                                    int64_t out_stride, float log2e_scale, void *scratch) {
    int64_t blocks = (tokens_k + LANES - 1) / LANES, width = blocks * LANES, pairs = width / 2;
    uint32_t *keys = scratch, *values = keys + blocks * PAIRS * LANES;
    float *scores = (float *)(values + pairs * DIM);
    uint16_t *weights = (uint16_t *)(scores + ROWS * width);
    pack_keys(k, k_stride, tokens_k, blocks, keys);
    pack_values(v, v_stride, tokens_k, pairs, values);
    for (int64_t first = 0; first < tokens_q; first += ROWS) {
        const uint16_t *rows[ROWS];
        uint16_t *out_rows[ROWS];
        float sums[ROWS];
        for (int r = 0; r < ROWS; r++) {
            int64_t t = first + r < tokens_q ? first + r : tokens_q - 1; /* tail: repeat the last */
            rows[r] = q + t * q_stride;
            out_rows[r] = first + r < tokens_q ? out + t * out_stride : NULL;
        }
        int64_t b = 0;
        for (; b + KEY_BLOCKS <= blocks; b += KEY_BLOCKS)
            score_tile(rows, keys + b * PAIRS * LANES, scores + b * LANES, width, KEY_BLOCKS);
        switch (blocks - b) {
        case 3: score_tile(rows, keys + b * PAIRS * LANES, scores + b * LANES, width, 3); break;
        case 2: score_tile(rows, keys + b * PAIRS * LANES, scores + b * LANES, width, 2); break;
        case 1: score_tile(rows, keys + b * PAIRS * LANES, scores + b * LANES, width, 1); break;
        default: break;
        }
        for (int r = 0; r < ROWS; r++)
            sums[r] = softmax_row(scores + r * width, tokens_k, blocks, log2e_scale,
                                  weights + r * width);
        weighted_values(weights, width, values, pairs, sums, out_rows);
    }
}

/* Bytes of scratch one head of `tokens_k` keys needs (packed K and V, a tile's scores and
 * weights). */
static int64_t head_scratch(int64_t tokens_k) {
    int64_t width = (tokens_k + LANES - 1) / LANES * LANES;
    return width * DIM * 2 * (int64_t)sizeof(uint16_t) + ROWS * width * (int64_t)sizeof(float) +
           ROWS * width * (int64_t)sizeof(uint16_t);
}

static int cpu_has_avx512_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
}
#endif

/* 1 when this CPU runs the kernel (AVX-512 BF16), else 0: the caller falls back. */
int64_t attention_supported(void) {
#if defined(__GNUC__) && defined(__x86_64__)
    return cpu_has_avx512_bf16();
#else
    return 0;
#endif
}

/* Heads `first` to `last` - 1 of the flattened (window, head) items: item i is window
 * i / heads, head i % heads. Strides are in elements: per window, per head, per token;
 * each row's 64 values are contiguous. Returns 0, or -1 when scratch cannot be had or
 * the CPU lacks AVX-512 BF16. */
int64_t attention_bf16(const uint16_t *q, const int64_t *q_strides, int64_t tokens_q,
                       const uint16_t *k, const int64_t *k_strides, const uint16_t *v,
                       const int64_t *v_strides, int64_t tokens_k, uint16_t *out,
                       const int64_t *out_strides, int64_t heads, float scale, int64_t first,
                       int64_t last) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (!cpu_has_avx512_bf16() || tokens_q < 1 || tokens_k < 1) return -1;
    int64_t bytes = (head_scratch(tokens_k) + 63) / 64 * 64;
    void *scratch = aligned_alloc(64, (size_t)bytes);
    if (!scratch) return -1;
    const float log2e = 1.4426950408889634f;
    for (int64_t i = first; i < last; i++) {
        int64_t w = i / heads, h = i % heads;
        attend_head(q + w * q_strides[0] + h * q_strides[1], q_strides[2], tokens_q,
                    k + w * k_strides[0] + h * k_strides[1], k_strides[2],
                    v + w * v_strides[0] + h * v_strides[1], v_strides[2], tokens_k,
                    out + w * out_strides[0] + h * out_strides[1], out_strides[2],
                    scale * log2e, scratch);
    }
    free(scratch);
    return 0;
#else
    (void)q; (void)q_strides; (void)tokens_q; (void)k; (void)k_strides; (void)v;
    (void)v_strides; (void)tokens_k; (void)out; (void)out_strides; (void)heads; (void)scale;
    (void)first; (void)last;
    return -1;
#endif
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_attention",
    .m_doc = "bfloat16 attention for AVX-512 BF16 CPUs (called through ctypes, see "
             "cpu_attention.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__attention(void) { return PyModule_Create(&module); }
