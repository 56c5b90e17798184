/* fma518's C kernels: per-frame spectrogram statistics (frame_stats) or |X|² alone (power),
 * the CQT's half-band
 * halving (halve) and octave products (cqt_octave), and zero-crossing counts.
 *
 * Why C: eager torch/numpy make one pass over the whole spectrogram per operation
 * (|X|², sqrt, scaling, centroid, bandwidth, rolloff, peaks, band sorts), sort every
 * contrast band, and run the CQT as matrix products that copy every overlapping frame;
 * that was five sixths of the extractor's time beside the FFT (bench/RESULTS.md). Here
 * each frame's bins are read once from the FFT output and every statistic is made from an
 * L1-resident copy of |X|; the CQT reads the signal where it lies.
 *
 * Called through ctypes (`native.py`), which releases the GIL; the module itself only
 * exists so that the build and the import system find the library.
 *
 * Numerics follow `spectral.py`'s definitions: the FFT was taken of frames windowed by
 * Hann × LIFT, so |X|² is formed in range and scaled back exactly by powers of two.
 * Compiled with -ffp-contract=off (pyproject.toml) so that re·re + im·im rounds as two
 * products and a sum; only cqt_octave allows fused multiply-adds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* AVX2 copies of the hot functions where GCC can dispatch at load time (ifunc). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif
#define INLINE static inline __attribute__((always_inline))

#define LANES 16        /* independent accumulators: vectorisable without reassociation */
#define ROLLOFF_BLOCK 32 /* bins per block of the rolloff's first step */
#define MAX_BINS 4096    /* bins per frame the kernel's stack buffers hold */
#define MAX_COUNT 128    /* values per band mean (`frame_stats` refuses more) */

typedef int32_t i32;

INLINE float as_float(i32 bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Eight int32 or float lanes: one AVX2 register (two SSE ones in the default build). */
typedef float fvec8 __attribute__((vector_size(8 * sizeof(float))));
typedef i32 ivec8 __attribute__((vector_size(8 * sizeof(i32))));
typedef float fvec8_unaligned __attribute__((vector_size(8 * sizeof(float)), aligned(4)));

/* Every lane v (a broadcast; GCC 12 assembles a {v, v, ...} literal lane by lane). */
INLINE fvec8 splat8(float v) {
#if defined(__clang__) || __GNUC__ >= 12
    fvec8 first = {v};
    return __builtin_shufflevector(first, first, 0, 0, 0, 0, 0, 0, 0, 0);
#else
    return (fvec8){v, v, v, v, v, v, v, v};
#endif
}

/* Σ of a vector's lanes, as a tree of shuffles (a chain of scalar adds is 8 latencies). */
INLINE float hsum8(fvec8 v) {
#if defined(__clang__) || __GNUC__ >= 12
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
    return v[0];
#else
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
#endif
}

/* Σ of LANES partial sums. */
INLINE float reduce_lanes(const float *acc) {
    fvec8 a, b;
    memcpy(&a, acc, sizeof a);
    memcpy(&b, acc + 8, sizeof b);
    return hsum8(a + b);
}

/* Σ a[i] in LANES partial sums. */
INLINE float lane_sum(const float *a, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j];
    for (int j = 0; i + j < n; j++) acc[j] += a[i + j];
    return reduce_lanes(acc);
}

/* Σ a[i] · b[i] in LANES partial sums. */
INLINE float lane_dot(const float *a, const float *b, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++) acc[j] += a[i + j] * b[i + j];
    return reduce_lanes(acc);
}

/* Σ w[i] (f[i] - centre)², the bandwidth's spread: all terms positive, no cancellation. */
INLINE float lane_spread(const float *w, const float *f, float centre, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = f[i + j] - centre;
            acc[j] += d * d * w[i + j];
        }
    for (int j = 0; i + j < n; j++) {
        float d = f[i + j] - centre;
        acc[j] += d * d * w[i + j];
    }
    return reduce_lanes(acc);
}

INLINE ivec8 load8(const i32 *x) {
    ivec8 v;
    memcpy(&v, x, sizeof v);
    return v;
}

INLINE ivec8 max8(ivec8 a, ivec8 b) {
    ivec8 more = a > b;
    return (a & more) | (b & ~more);
}

/* Whether any lane of a comparison's mask is set: folded in registers (lane extracts
 * one by one cost as much as the scan they guard). */
INLINE int any8(ivec8 mask) {
#if defined(__clang__) || __GNUC__ >= 12
    mask |= __builtin_shufflevector(mask, mask, 4, 5, 6, 7, 0, 1, 2, 3);
    mask |= __builtin_shufflevector(mask, mask, 2, 3, 0, 1, 6, 7, 4, 5);
    mask |= __builtin_shufflevector(mask, mask, 1, 0, 3, 2, 5, 4, 7, 6);
    return mask[0] != 0;
#else
    i32 any = 0;
    for (int j = 0; j < 8; j++) any |= mask[j];
    return any != 0;
#endif
}

/* A lower bound on the k-th largest of a band from its LANES strided maxima (`lane`,
 * unused lanes INT32_MIN): the largest lane maximum with k of them at or above it. */
INLINE i32 lower_bound(const i32 *lane, int k) {
    ivec8 low = load8(lane), high = load8(lane + 8), above_low = {0}, above_high = {0};
    for (int a = 0; a < LANES; a++) { /* how many lane maxima are >= each one */
        ivec8 value = (ivec8){0} + lane[a];
        above_low -= value >= low;
        above_high -= value >= high;
    }
    i32 t = INT32_MIN;
    for (int b = 0; b < LANES; b++) {
        i32 above = b < 8 ? above_low[b] : above_high[b - 8];
        i32 c = above >= k ? lane[b] : INT32_MIN;
        t = c > t ? c : t;
    }
    return t;
}

/* Sum of the k largest of `count` >= k candidate keys (buf is reordered), as floats
 * after multiplying the keys back by `sign`. */
INLINE float top_sum(i32 *buf, int64_t count, int k, i32 sign) {
    if (count > 4 * k + LANES) { /* many ties at the bound (e.g. silence): a sorted k-buffer */
        i32 top[MAX_COUNT];
        for (int j = 0; j < k; j++) top[j] = buf[j];
        for (int j = 1; j < k; j++)
            for (int q = j; q > 0 && top[q - 1] > top[q]; q--) {
                i32 swap = top[q];
                top[q] = top[q - 1];
                top[q - 1] = swap;
            }
        for (int64_t r = k; r < count; r++) {
            i32 v = buf[r];
            if (v <= top[0]) continue;
            int q = 0;
            while (q + 1 < k && top[q + 1] < v) {
                top[q] = top[q + 1];
                q++;
            }
            top[q] = v;
        }
        memcpy(buf, top, (size_t)k * sizeof *buf);
        count = k;
    }
    for (int64_t r = count; r > k; r--) { /* drop the smallest surplus candidates */
        int64_t low = 0;
        for (int64_t q = 1; q < r; q++) low = buf[q] < buf[low] ? q : low;
        buf[low] = buf[r - 1];
    }
    float sum = 0.0f;
    for (int j = 0; j < k; j++) sum += as_float(sign * buf[j]);
    return sum;
}

/* Means of the k largest and of the k smallest of x[0..n), non-negative floats read as
 * their bit patterns (which order as the floats do): spectral contrast's peak and valley.
 *
 * Lower bounds on the k-th largest value and on the k-th largest negated value come from
 * LANES strided maxima and minima (`lower_bound`). Values beyond them are few (k plus a
 * handful), are collected behind a block test that is almost always false, and the
 * surplus is dropped. Sorting the band instead (numpy's SIMD sort) cost several times as
 * much (bench/RESULTS.md). */
INLINE void band_means(const i32 *x, int64_t n, int k, float *peak, float *valley,
                       i32 *high, i32 *low) {
    i32 most[LANES], least[LANES];
    for (int j = 0; j < LANES; j++) {
        most[j] = j < n ? x[j] : INT32_MIN;
        least[j] = j < n ? -x[j] : INT32_MIN;
    }
    ivec8 most_a = load8(most), most_b = load8(most + 8);
    ivec8 least_a = load8(least), least_b = load8(least + 8);
    int64_t m = LANES;
    for (; m + LANES <= n; m += LANES) {
        ivec8 a = load8(x + m), b = load8(x + m + 8);
        most_a = max8(a, most_a);
        most_b = max8(b, most_b);
        least_a = max8(-a, least_a);
        least_b = max8(-b, least_b);
    }
    memcpy(most, &most_a, sizeof most_a);
    memcpy(most + 8, &most_b, sizeof most_b);
    memcpy(least, &least_a, sizeof least_a);
    memcpy(least + 8, &least_b, sizeof least_b);
    for (int j = 0; m + j < n; j++) {
        i32 v = x[m + j];
        most[j] = v > most[j] ? v : most[j];
        least[j] = -v > least[j] ? -v : least[j];
    }
    const i32 t_high = lower_bound(most, k), t_low = -lower_bound(least, k);
    const ivec8 bound_high = (ivec8){0} + t_high, bound_low = (ivec8){0} + t_low;
    int64_t n_high = 0, n_low = 0;
    for (m = 0; m + 8 <= n; m += 8) {
        ivec8 v = load8(x + m);
        if (!any8((v >= bound_high) | (v <= bound_low))) continue;
        for (int j = 0; j < 8; j++) {
            i32 value = x[m + j];
            high[n_high] = value;
            n_high += value >= t_high;
            low[n_low] = -value;
            n_low += value <= t_low;
        }
    }
    for (; m < n; m++) {
        i32 value = x[m];
        high[n_high] = value;
        n_high += value >= t_high;
        low[n_low] = -value;
        n_low += value <= t_low;
    }
    *peak = top_sum(high, n_high, k, 1) / (float)k;
    *valley = top_sum(low, n_low, k, -1) / (float)k;
}

/* First bin where the running sum of mag reaches 0.85 of its total: running sums of
 * ROLLOFF_BLOCK-bin blocks find the block, a running sum within it finds the bin. */
INLINE int64_t rolloff_bin(const float *mag, int64_t n, float roll_percent) {
    float running[MAX_BINS / ROLLOFF_BLOCK + 1];
    int64_t blocks = (n + ROLLOFF_BLOCK - 1) / ROLLOFF_BLOCK;
    float total = 0.0f;
    for (int64_t b = 0; b < blocks; b++) {
        int64_t start = b * ROLLOFF_BLOCK;
        int64_t width = n - start < ROLLOFF_BLOCK ? n - start : ROLLOFF_BLOCK;
        total += lane_sum(mag + start, width);
        running[b] = total;
    }
    float threshold = roll_percent * total;
    int64_t block = 0;
    while (block < blocks - 1 && running[block] < threshold) block++;
    float sum = block > 0 ? running[block - 1] : 0.0f;
    int64_t bin = block * ROLLOFF_BLOCK;
    int64_t last = bin + ROLLOFF_BLOCK < n ? bin + ROLLOFF_BLOCK : n;
    for (; bin < last - 1; bin++) {
        sum += mag[bin];
        if (sum >= threshold) break;
    }
    return bin;
}

/* Frame statistics of an STFT chunk.
 *
 * spectra: (rows, bins, 2) re/im of the FFT of frames windowed by Hann × lift.
 * power:   (rows, bins) out, |X|² / lift².
 * stats:   (rows, 4) out: rmse, centroid, bandwidth, rolloff (Hz, from `freqs`).
 * peak, valley: (rows, n_bands) out, means of the top and bottom `count` |X| of each
 *          band; bands (n_bands, 3): first bin, end bin, count.
 * Peaks (piptrack's candidates, lo <= bin < hi, above both neighbours, not below the
 * upper one, above threshold × the frame's maximum) are appended to peak_row (first_row
 * + row), peak_bin and peak_values (below, here, above, frame maximum): at most
 * rows × ((hi - lo) / 2 + 1).
 * Returns the number of peaks, or -1 when `bins` or a band's count is beyond the kernel's
 * buffers (MAX_BINS, MAX_COUNT).
 */
HOT int64_t frame_stats(const float *spectra, int64_t rows, int64_t first_row, int64_t bins,
                        const float *freqs, float lift, const int64_t *bands, int64_t n_bands,
                        int64_t lo, int64_t hi, float threshold, float *power, float *stats,
                        float *peak, float *valley, i32 *peak_row, i32 *peak_bin,
                        float *peak_values) {
    if (bins > MAX_BINS) return -1;
    for (int64_t b = 0; b < n_bands; b++)
        if (bands[3 * b + 2] < 1 || bands[3 * b + 2] > MAX_COUNT) return -1;
    float mag[MAX_BINS];
    i32 high[MAX_BINS], low[MAX_BINS];
    const float to_power = 1.0f / (lift * lift), to_mag = 1.0f / lift;
    int64_t found = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = spectra + 2 * r * bins;
        float *p = power + r * bins;
        for (int64_t i = 0; i < bins; i++) {
            float re = x[2 * i] * x[2 * i], im = x[2 * i + 1] * x[2 * i + 1];
            float lifted = re + im;
            p[i] = lifted * to_power;
            mag[i] = sqrtf(lifted) * to_mag;
        }
        float *s = stats + 4 * r;
        s[0] = sqrtf(lane_sum(p, bins) / (float)bins);
        float total = lane_sum(mag, bins);
        float scale = total < FLT_MIN ? 1.0f : total;
        float centroid = lane_dot(mag, freqs, bins) / scale;
        s[1] = centroid;
        s[2] = sqrtf(lane_spread(mag, freqs, centroid, bins) / scale);
        s[3] = freqs[rolloff_bin(mag, bins, 0.85f)];

        const i32 *bits = (const i32 *)mag;
        for (int64_t b = 0; b < n_bands; b++) {
            int64_t start = bands[3 * b], n = bands[3 * b + 1] - start;
            int k = (int)bands[3 * b + 2];
            band_means(bits + start, n, k, peak + r * n_bands + b, valley + r * n_bands + b,
                       high, low);
        }

        i32 top_bits = 0;
        for (int64_t i = 0; i < bins; i++) top_bits = bits[i] > top_bits ? bits[i] : top_bits;
        float top = as_float(top_bits), gate = threshold * top;
        const fvec8 gates = splat8(gate);
        for (int64_t i = lo; i < hi; i += 8) {
            ivec8 hit = {0};
            if (i + 8 <= hi) {
                fvec8 here, below, above;
                memcpy(&here, mag + i, sizeof here);
                memcpy(&below, mag + i - 1, sizeof below);
                memcpy(&above, mag + i + 1, sizeof above);
                hit = (here > gates) & (here > below) & (here >= above);
            } else {
                for (int j = 0; j < 8; j++) {
                    int64_t b = i + j < hi ? i + j : hi - 1;
                    hit[j] = i + j < hi && mag[b] > gate && mag[b] > mag[b - 1]
                             && mag[b] >= mag[b + 1] ? -1 : 0;
                }
            }
            if (!any8(hit)) continue;
            for (int j = 0; j < 8; j++) {
                if (!hit[j]) continue;
                int64_t b = i + j;
                peak_row[found] = (i32)(first_row + r);
                peak_bin[found] = (i32)b;
                float *v = peak_values + 4 * found;
                v[0] = mag[b - 1];
                v[1] = mag[b];
                v[2] = mag[b + 1];
                v[3] = top;
                found++;
            }
        }
    }
    return found;
}

/* |X|² alone of n bins of FFT output (re, im interleaved), scaled back by `to_power`: the
 * same products and sum as frame_stats' power (no FMA: -ffp-contract=off), in one pass
 * where torch made four (`frame_stats.power_spectrum`). */
HOT void power(const float *spectra, int64_t n, float to_power, float *out) {
    for (int64_t i = 0; i < n; i++) {
        float re = spectra[2 * i] * spectra[2 * i], im = spectra[2 * i + 1] * spectra[2 * i + 1];
        out[i] = (re + im) * to_power;
    }
}

#define HALVING_BLOCK 2048 /* outputs per step of `halve`: its inputs stay in L1 */
#define HALVING_TAPS 64    /* odd taps `halve`'s scratch has room for (native.py says so) */

/* Half-band low-pass and decimation by two of x[0..n) (zero outside) into
 * out[0..(n + 1) / 2): out[m] = centre x[2m] + Σ_j taps[j] (x[2m - 2j - 1] + x[2m + 2j + 1]).
 *
 * A half-band filter's other even taps are zero, so only the odd ones are multiplied
 * (`cqt.halfband_kernel`: 10 of its 39 taps, with the centre). Each block's odd samples are
 * copied into a contiguous zero-padded scratch first, so the sums over taps run on
 * contiguous lanes. Returns the number of outputs, or -1 beyond HALVING_TAPS taps. */
HOT int64_t halve(const float *x, int64_t n, float *out, const float *taps, int64_t n_taps,
                  float centre) {
    float odd[HALVING_BLOCK + 2 * HALVING_TAPS];
    if (n_taps > HALVING_TAPS) return -1;
    int64_t n_out = (n + 1) / 2;
    for (int64_t first = 0; first < n_out; first += HALVING_BLOCK) {
        int64_t count = n_out - first < HALVING_BLOCK ? n_out - first : HALVING_BLOCK;
        /* odd[q] = x[2 (first + q - n_taps) + 1] for q in [0, count + 2 n_taps) */
        int64_t span = count + 2 * n_taps, start = 2 * (first - n_taps) + 1;
        if (start >= 0 && start + 2 * (span - 1) < n) {
            const float *from = x + start;
            for (int64_t q = 0; q < span; q++) odd[q] = from[2 * q];
        } else {
            for (int64_t q = 0; q < span; q++) {
                int64_t at = start + 2 * q;
                odd[q] = at >= 0 && at < n ? x[at] : 0.0f;
            }
        }
        float *y = out + first;
        for (int64_t m = 0; m < count; m++) y[m] = centre * x[2 * (first + m)];
        for (int64_t j = 0; j < n_taps; j++) {
            const float tap = taps[j];
            const float *before = odd + n_taps - j - 1, *after = odd + n_taps + j;
            for (int64_t m = 0; m < count; m++) y[m] += tap * (before[m] + after[m]);
        }
    }
    return n_out;
}

/* librosa.zero_crossing_rate's counts of `frames` centred, edge-padded frames of x[0..n):
 * the pairs (p, p + 1) inside frame t's samples [t hop - half, t hop - half + length),
 * whose signs differ, a value counting as negative below -threshold. Edge padding repeats
 * the end samples, which adds no crossing.
 *
 * Frames are whole blocks of gcd(length, hop) samples from -half, so the pairs are counted
 * once per block (`blocks`: scratch of ((frames - 1) hop + length) / block entries) and each
 * frame sums its blocks, less its last pair, which reaches past it. Returns 0, or -1 when
 * `block` does not divide both length and hop. */
HOT int64_t zero_crossings(const float *x, int64_t n, int64_t length, int64_t hop,
                           int64_t block, int64_t frames, float threshold, i32 *blocks,
                           i32 *counts) {
    if (block < 1 || length % block || hop % block) return -1;
    const int64_t half = length / 2, n_blocks = ((frames - 1) * hop + length) / block;
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t first = b * block - half, last = first + block;
        first = first < 0 ? 0 : first;
        last = last > n - 1 ? n - 1 : last;
        i32 count = 0;
        for (int64_t q = first; q < last; q++)
            count += (x[q] < -threshold) != (x[q + 1] < -threshold);
        blocks[b] = count;
    }
    const int64_t per_frame = length / block, step = hop / block;
    i32 window = 0;
    for (int64_t b = 0; b < per_frame; b++) window += blocks[b];
    for (int64_t t = 0; t < frames; t++) {
        int64_t end = t * hop - half + length - 1; /* the frame's last sample */
        i32 outside = end >= 0 && end + 1 < n /* pair (end, end + 1) reaches past it */
                          ? (x[end] < -threshold) != (x[end + 1] < -threshold)
                          : 0;
        counts[t] = window - outside;
        if (t + 1 < frames)
            for (int64_t b = t * step; b < (t + 1) * step; b++)
                window += blocks[b + per_frame] - blocks[b];
    }
    return 0;
}

#define CQT_BINS 12         /* bins per octave `cqt_octave` takes: re and im, 3 vectors */
#define CQT_FRAMES 4        /* frames per step: 12 accumulators + 3 kernel rows = 16 ymm */

/* Sample j of x[0..n) reflect-padded without repeating the edge (numpy's "reflect"),
 * reflecting again where the padding reaches past the other end. */
INLINE float reflected(const float *x, int64_t n, int64_t j) {
    if (n == 1) return x[0];
    const int64_t period = 2 * (n - 1);
    int64_t fold = j % period;
    fold = fold < 0 ? fold + period : fold;
    return x[fold < n ? fold : period - fold];
}

/* Adds one CQT octave's magnitudes to out (frames, CQT_BINS): frame t is the signal's
 * samples [t hop - n_fft / 2, t hop + n_fft / 2), reflect-padded at the ends, times
 * kernel (n_fft, 2 CQT_BINS: real parts, then imaginary); then sqrt(re² + im²) × scale.
 *
 * The frames overlap n_fft / hop times in the lower octaves: a matrix product copies
 * (packs) every frame first, which moves more bytes than it computes on, with only 24
 * kernel columns (bench/RESULTS.md). Here each signal sample is broadcast against the
 * kernel row that meets it, CQT_FRAMES frames at a time, with the kernel in L1 and the
 * accumulators in registers; frames that reach past an end are copied out reflected.
 * Contracting a·b + c into one FMA is allowed here, unlike elsewhere in this file. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("fma", "default")))
__attribute__((optimize("fp-contract=fast")))
#endif
int64_t cqt_octave(const float *signal, int64_t n, int64_t n_frames, int64_t hop,
                   const float *kernel, int64_t n_fft, int64_t bins, float scale, float *out) {
    if (bins != CQT_BINS || n < 1 || n_fft > MAX_BINS) return -1;
    const int64_t half = n_fft / 2;
    float edge[CQT_FRAMES][MAX_BINS];
    for (int64_t t = 0; t < n_frames; t += CQT_FRAMES) {
        const int64_t count = n_frames - t < CQT_FRAMES ? n_frames - t : CQT_FRAMES;
        const float *frame[CQT_FRAMES];
        for (int f = 0; f < CQT_FRAMES; f++) {
            /* past the last frame, frame t again: computed, then discarded */
            const int64_t first = (t + (f < count ? f : 0)) * hop - half;
            if (first >= 0 && first + n_fft <= n) {
                frame[f] = signal + first;
            } else {
                for (int64_t k = 0; k < n_fft; k++) edge[f][k] = reflected(signal, n, first + k);
                frame[f] = edge[f];
            }
        }
        fvec8 acc[CQT_FRAMES][3] = {{{0}}};
        for (int64_t k = 0; k < n_fft; k++) {
            const fvec8_unaligned *row = (const fvec8_unaligned *)(kernel + k * 2 * CQT_BINS);
            const fvec8 row0 = row[0], row1 = row[1], row2 = row[2];
            for (int f = 0; f < CQT_FRAMES; f++) {
                const fvec8 sample = splat8(frame[f][k]);
                acc[f][0] += sample * row0;
                acc[f][1] += sample * row1;
                acc[f][2] += sample * row2;
            }
        }
        for (int f = 0; f < count; f++) {
            float re_im[3 * 8];
            memcpy(re_im, acc[f], sizeof re_im);
            float *o = out + (t + f) * CQT_BINS;
            for (int c = 0; c < CQT_BINS; c++) {
                float re = re_im[c], im = re_im[CQT_BINS + c];
                o[c] += sqrtf(re * re + im * im) * scale;
            }
        }
    }
    return 0;
}

/* Mean and second, third and fourth central moments, in float64, of each of `features`
 * contiguous series of n values (x: (features, n)) into out (features, 4): a pass for the
 * mean, one for the moments. NaN anywhere in a series makes its four NaN. In numpy the
 * same took a float64 copy and four passes over it. */
HOT void moments(const float *x, int64_t features, int64_t n, double *out) {
    for (int64_t f = 0; f < features; f++) {
        const float *series = x + f * n;
        double partial[4] = {0};
        for (int64_t i = 0; i < n; i++) partial[i % 4] += series[i];
        const double mean = ((partial[0] + partial[1]) + (partial[2] + partial[3])) / (double)n;
        double m2 = 0.0, m3 = 0.0, m4 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double d = (double)series[i] - mean, d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        double *o = out + 4 * f;
        o[0] = mean;
        o[1] = m2 / (double)n;
        o[2] = m3 / (double)n;
        o[3] = m4 / (double)n;
    }
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_native",
    .m_doc = "fma518's C kernels (called through ctypes, see native.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
