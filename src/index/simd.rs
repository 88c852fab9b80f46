//! Dot products for the exact vector index.
//!
//! A scan over every row is limited by memory traffic, not arithmetic, so it reads each
//! row as one byte per dimension (`quantise_row`) against a 16-bit copy of the query
//! (`QuantisedQuery`) and gets an estimate with a proven error bound; only the rows whose
//! bound reaches the best ones are then scored in full precision (`dot`). On x86-64 with
//! AVX2 (checked once per call, so one binary runs on any x86-64) both loops use 256-bit
//! instructions.

/// The largest code of a row component.
const ROW_CODE_MAX: f32 = 127.0;

/// Quantises a unit-length row to one signed byte per component, appended to `codes`,
/// and returns its scale: component `i` is `scale * codes[i]`, within `scale / 2`.
pub fn quantise_row(row: &[f32], codes: &mut Vec<i8>) -> f32 {
    let largest = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if largest == 0.0 || !largest.is_finite() {
        codes.extend(std::iter::repeat_n(0, row.len()));
        return 0.0;
    }
    let scale = largest / ROW_CODE_MAX;
    codes.extend(row.iter().map(|x| (x / scale).round() as i8));
    scale
}

/// A query as 16-bit integers, with what turns an integer dot product with a row's codes
/// into a cosine estimate and its error bound.
#[derive(Debug)]
pub struct QuantisedQuery {
    pub codes: Vec<i16>,
    scale: f32,
    /// A row of scale `s` has `|estimate - exact| <= s * slack`.
    slack: f32,
}

impl QuantisedQuery {
    pub fn new(query: &[f32]) -> Self {
        let dims = query.len().max(1) as f32;
        // The integer sum must fit an i32: |sum| <= 127 * code_max * dims.
        let code_max = (i32::MAX as f32 / (ROW_CODE_MAX * dims))
            .min(f32::from(i16::MAX))
            .floor();
        let largest = query.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if largest > 0.0 && largest.is_finite() {
            largest / code_max
        } else {
            0.0
        };
        let codes = query
            .iter()
            .map(|x| {
                if scale > 0.0 {
                    (x / scale).round() as i16
                } else {
                    0
                }
            })
            .collect();
        // exact - estimate = Σ q_i·f_i + s·Σ e_i·r_i, where f_i (|f_i| <= s/2) is the row's
        // rounding, e_i (|e_i| <= scale/2) the query's and |r_i| <= 127 the row's codes.
        let l1: f32 = query.iter().map(|x| x.abs()).sum();
        let slack = l1 / 2.0 + scale / 2.0 * ROW_CODE_MAX * dims;
        Self {
            codes,
            scale,
            // Rounds up what float arithmetic may have rounded down in the sums above.
            slack: slack * (1.0 + 1e-4),
        }
    }

    /// The cosine estimate of a row of `row_scale` whose integer dot product is `sum`, and
    /// the most it can be off by (plus the float rounding of the estimate itself).
    pub fn estimate(&self, sum: i32, row_scale: f32) -> (f32, f32) {
        (
            sum as f32 * row_scale * self.scale,
            row_scale * self.slack + 1e-6,
        )
    }
}

/// `sums[i]` = the integer dot product of row `i` of `codes` (rows of `query.len()` codes,
/// back to back) with `query`. Exact, so both code paths give the same answer.
pub fn code_dot_each_row(codes: &[i8], query: &[i16], sums: &mut [i32]) {
    debug_assert_eq!(codes.len(), query.len() * sums.len());
    if query.is_empty() {
        sums.fill(0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to support the feature the function enables.
        unsafe { avx2::code_dot_each_row(codes, query, sums) };
        return;
    }
    for (row, sum) in codes.chunks_exact(query.len()).zip(sums.iter_mut()) {
        *sum = code_dot(row, query);
    }
}

fn code_dot(row: &[i8], query: &[i16]) -> i32 {
    row.iter()
        .zip(query)
        .map(|(&r, &q)| i32::from(r) * i32::from(q))
        .sum()
}

/// The dot product of a row's codes with a query in full precision (times the row's scale,
/// the cosine with the row as held). Only for the few rows a scan scores exactly.
pub fn code_dot_f32(codes: &[i8], query: &[f32]) -> f32 {
    codes
        .iter()
        .zip(query)
        .map(|(&c, &q)| f32::from(c) * q)
        .sum()
}

/// The dot product of two vectors, in full precision.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU was just found to support both features the function enables.
        return unsafe { avx2::dot(a, b) };
    }
    portable_dot(a, b)
}

/// Eight independent sums, so the compiler can keep them in one SIMD register instead of
/// waiting on each addition in turn.
fn portable_dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The vector scaled to length 1 (as it is when its length is 0 or not finite).
pub fn normalised(vector: &[f32]) -> Vec<f32> {
    let norm = portable_dot(vector, vector).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return vector.to_vec();
    }
    vector.iter().map(|x| x / norm).collect()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm_add_epi32, _mm_loadu_si128, _mm_storeu_si128, _mm256_add_epi32,
        _mm256_add_ps, _mm256_castsi256_si128, _mm256_cvtepi8_epi16, _mm256_extracti128_si256,
        _mm256_fmadd_ps, _mm256_hadd_epi32, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_madd_epi16,
        _mm256_setzero_ps, _mm256_setzero_si256, _mm256_storeu_ps, _mm256_storeu_si256,
    };

    /// Four rows at a time: each step loads sixteen query components once for all four,
    /// and the four sums are gathered with three horizontal additions instead of a store
    /// and eight scalar additions per row.
    #[target_feature(enable = "avx2")]
    pub fn code_dot_each_row(codes: &[i8], query: &[i16], sums: &mut [i32]) {
        let dims = query.len();
        let simd_len = dims - dims % 16;
        let quads = codes.chunks_exact(4 * dims).zip(sums.chunks_exact_mut(4));
        for (rows, out) in quads {
            let mut acc: [__m256i; 4] = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i < simd_len {
                // SAFETY: `i + 16 <= simd_len <= dims`: sixteen i16 of `query`, and sixteen
                // bytes of each of the four rows of `rows` (four rows of `dims` bytes).
                unsafe {
                    let q = _mm256_loadu_si256(query.as_ptr().add(i).cast());
                    for (row, sum) in acc.iter_mut().enumerate() {
                        let r = _mm_loadu_si128(rows.as_ptr().add(row * dims + i).cast());
                        *sum =
                            _mm256_add_epi32(*sum, _mm256_madd_epi16(_mm256_cvtepi8_epi16(r), q));
                    }
                }
                i += 16;
            }
            // Lanes [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, ...], then [a0..3, b0..3, c0..3,
            // d0..3 | a4..7, ...]; the two halves added give the four rows' sums.
            let pairs = _mm256_hadd_epi32(
                _mm256_hadd_epi32(acc[0], acc[1]),
                _mm256_hadd_epi32(acc[2], acc[3]),
            );
            let quad = _mm_add_epi32(
                _mm256_castsi256_si128(pairs),
                _mm256_extracti128_si256::<1>(pairs),
            );
            let mut lanes = [0i32; 4];
            // SAFETY: `lanes` holds exactly four i32.
            unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast(), quad) };
            for (row, (sum, lane)) in out.iter_mut().zip(lanes).enumerate() {
                let tail = &rows[row * dims + simd_len..(row + 1) * dims];
                *sum = lane.wrapping_add(super::code_dot(tail, &query[simd_len..]));
            }
        }
        let done = sums.len() / 4 * 4;
        let rest = codes[done * dims..].chunks_exact(dims);
        for (row, sum) in rest.zip(&mut sums[done..]) {
            *sum = code_dot(row, query);
        }
    }

    /// Sixteen components a step: bytes widened to 16 bits, multiplied with the query and
    /// added in pairs into eight 32-bit sums (`vpmaddwd`).
    #[target_feature(enable = "avx2")]
    fn code_dot(row: &[i8], query: &[i16]) -> i32 {
        let len = row.len().min(query.len());
        let mut acc: __m256i = _mm256_setzero_si256();
        let mut i = 0;
        while i + 16 <= len {
            // SAFETY: `i + 16 <= len`: sixteen bytes of `row` and sixteen i16 of `query`.
            let (r, q) = unsafe {
                (
                    _mm_loadu_si128(row.as_ptr().add(i).cast()),
                    _mm256_loadu_si256(query.as_ptr().add(i).cast()),
                )
            };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(r), q));
            i += 16;
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` holds exactly eight i32.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
        lanes.iter().sum::<i32>() + super::code_dot(&row[i..len], &query[i..len])
    }

    /// Four accumulators of eight lanes: 32 products per step, without one addition
    /// waiting on the one before.
    #[target_feature(enable = "avx2,fma")]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let len = a.len().min(b.len());
        let (a, b) = (&a[..len], &b[..len]);
        let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= len {
            for (lane, sum) in acc.iter_mut().enumerate() {
                let at = i + lane * 8;
                // SAFETY: `at + 8 <= len`, so both eight-float loads stay inside the slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(a.as_ptr().add(at)),
                        _mm256_loadu_ps(b.as_ptr().add(at)),
                    )
                };
                *sum = _mm256_fmadd_ps(x, y, *sum);
            }
            i += 32;
        }
        while i + 8 <= len {
            // SAFETY: `i + 8 <= len`.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                )
            };
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds exactly eight floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        let tail: f32 = a[i..].iter().zip(&b[i..]).map(|(x, y)| x * y).sum();
        lanes.iter().sum::<f32>() + tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Deterministic unit vectors with components of mixed sign and size.
    fn unit_rows(count: usize, dims: usize, seed: u32) -> Vec<Vec<f32>> {
        (0..count)
            .map(|n| {
                let v: Vec<f32> = (0..dims)
                    .map(|d| (((n * 131 + d * 29) as u32 ^ seed) as f32 * 0.618).sin())
                    .collect();
                normalised(&v)
            })
            .collect()
    }

    /// Every length class: below eight, between the SIMD steps, with tails.
    #[test]
    fn dot_matches_the_plain_sum_at_every_length() {
        for dims in [1, 3, 8, 13, 32, 45, 384, 385] {
            let a: Vec<f32> = (0..dims).map(|n| ((n * 7) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..dims).map(|n| (n as f32 * 0.37).cos()).collect();
            let expected = plain_dot(&a, &b);
            for got in [dot(&a, &b), portable_dot(&a, &b)] {
                assert!(
                    (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                    "dims {dims}: {got} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn code_sums_are_exact_on_every_path() {
        for dims in [1, 15, 16, 17, 384, 385, 3072] {
            // Two groups of four rows and three left over.
            let rows = unit_rows(11, dims, 7);
            let mut codes = Vec::new();
            for row in &rows {
                quantise_row(row, &mut codes);
            }
            let query = QuantisedQuery::new(&unit_rows(1, dims, 99)[0]);
            let mut sums = vec![i32::MIN; rows.len()];
            code_dot_each_row(&codes, &query.codes, &mut sums);
            for (row, sum) in codes.chunks_exact(dims).zip(&sums) {
                assert_eq!(*sum, code_dot(row, &query.codes), "dims {dims}");
            }
        }
    }

    /// The bound holds for every row, so rescoring the rows it keeps is exact.
    #[test]
    fn estimates_stay_within_their_bound() {
        for dims in [3, 64, 384, 1536] {
            let rows = unit_rows(200, dims, 3);
            let mut codes = Vec::new();
            let scales: Vec<f32> = rows.iter().map(|r| quantise_row(r, &mut codes)).collect();
            for query in unit_rows(5, dims, 11) {
                let quantised = QuantisedQuery::new(&query);
                let mut sums = vec![0; rows.len()];
                code_dot_each_row(&codes, &quantised.codes, &mut sums);
                for ((row, sum), scale) in rows.iter().zip(&sums).zip(&scales) {
                    let (estimate, bound) = quantised.estimate(*sum, *scale);
                    let exact = plain_dot(row, &query);
                    assert!((estimate - exact).abs() <= bound, "dims {dims}");
                    // and the estimate is useful: a few hundredths at most
                    assert!(bound < 0.05, "dims {dims}: bound {bound}");
                }
            }
        }
    }

    #[test]
    fn zero_vectors_quantise_to_zero() {
        let mut codes = Vec::new();
        assert_eq!(quantise_row(&[0.0, 0.0, 0.0], &mut codes), 0.0);
        assert_eq!(codes, vec![0, 0, 0]);
        let query = QuantisedQuery::new(&[0.0, 0.0, 0.0]);
        assert_eq!(query.codes, vec![0, 0, 0]);
        assert_eq!(query.estimate(0, 0.0).0, 0.0);
    }

    #[test]
    fn normalised_has_unit_length_and_leaves_zero_alone() {
        let unit = normalised(&[3.0, 4.0]);
        assert!((unit[0] - 0.6).abs() < 1e-6 && (unit[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
