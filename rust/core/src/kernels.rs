//! Small element-wise loops of the hot path, compiled for several instruction
//! sets (chosen at run time) so that they vectorise on any x86-64 or aarch64.
//! Short vectors skip the run-time dispatch, whose cost would dominate them.

/// Below this length the plain loops run (the dispatch costs more than SIMD saves).
const SHORT: usize = 32;

/// Dot product; 8 independent accumulators for long vectors (a fixed order for
/// each length, so results never depend on the thread count).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < SHORT {
        return a.iter().zip(b).map(|(x, y)| x * y).sum();
    }
    dot_simd(a, b)
}

/// Σ a b c.
pub fn dot3(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    if a.len() < SHORT {
        return a.iter().zip(b).zip(c).map(|((x, y), z)| x * y * z).sum();
    }
    dot3_simd(a, b, c)
}

/// max |x| (0 for an empty slice).
pub fn max_abs(x: &[f64]) -> f64 {
    if x.len() < SHORT {
        return x.iter().fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
    }
    max_abs_simd(x)
}

/// out += a x + b y
pub fn axpby_add(out: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    if out.len() < SHORT {
        out.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (u, v))| *o += a * u + b * v);
        return;
    }
    axpby_add_simd(out, a, x, b, y)
}

/// out = a x
pub fn scale_into(out: &mut [f64], a: f64, x: &[f64]) {
    if out.len() < SHORT {
        out.iter_mut().zip(x).for_each(|(o, u)| *o = a * u);
        return;
    }
    scale_into_simd(out, a, x)
}

/// out += a x
pub fn axpy(out: &mut [f64], a: f64, x: &[f64]) {
    if out.len() < SHORT {
        out.iter_mut().zip(x).for_each(|(o, u)| *o += a * u);
        return;
    }
    axpy_simd(out, a, x)
}

/// The two-layer net's ΔB row (times sqrt n): out = a0 e1 + δa (s1 + e1).
pub fn db_row(out: &mut [f64], a0: &[f64], da: &[f64], s1: &[f64], e1: &[f64]) {
    db_row_simd(out, a0, da, s1, e1)
}

/// The two-layer net's pullback coefficients of one row:
/// c = a0 s1 e + (a0 e1 + δa (s1 + e1)) r.
pub fn pullback_row(c: &mut [f64], a0: &[f64], s1: &[f64], e: f64, da: &[f64], e1: &[f64], r: f64) {
    pullback_row_simd(c, a0, s1, e, da, e1, r)
}

use multiversion::multiversion;

/// Dot product with 8 independent accumulators (fixed summation order, so the
/// result does not depend on the machine's thread count).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn dot_simd(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Σ a b c with 8 independent accumulators (fixed order).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn dot3_simd(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut acc = [0.0f64; 8];
    let chunks = n / 8;
    for ch in 0..chunks {
        for l in 0..8 {
            let i = ch * 8 + l;
            acc[l] += a[i] * b[i] * c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in chunks * 8..n {
        s += a[i] * b[i] * c[i];
    }
    s
}

/// max |x| (0 for an empty slice; NaN entries are skipped).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn max_abs_simd(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let a = c[l].abs();
            acc[l] = if a > acc[l] { a } else { acc[l] };
        }
    }
    let mut m = acc.iter().fold(0.0f64, |m, &a| if a > m { a } else { m });
    for &v in rest {
        if v.abs() > m {
            m = v.abs();
        }
    }
    m
}

/// out += a x + b y
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn axpby_add_simd(out: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    let n = out.len();
    let (x, y) = (&x[..n], &y[..n]);
    for i in 0..n {
        out[i] += a * x[i] + b * y[i];
    }
}

/// out = a x
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn scale_into_simd(out: &mut [f64], a: f64, x: &[f64]) {
    let n = out.len();
    let x = &x[..n];
    for i in 0..n {
        out[i] = a * x[i];
    }
}

/// out += a x
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn axpy_simd(out: &mut [f64], a: f64, x: &[f64]) {
    let n = out.len();
    let x = &x[..n];
    for i in 0..n {
        out[i] += a * x[i];
    }
}

/// The two-layer net's ΔB row (times sqrt n): out = a0 e1 + δa (s1 + e1).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn db_row_simd(out: &mut [f64], a0: &[f64], da: &[f64], s1: &[f64], e1: &[f64]) {
    let n = out.len();
    let (a0, da, s1, e1) = (&a0[..n], &da[..n], &s1[..n], &e1[..n]);
    for i in 0..n {
        out[i] = a0[i] * e1[i] + da[i] * (s1[i] + e1[i]);
    }
}

/// The two-layer net's pullback coefficients of one row:
/// c = a0 s1 e + (a0 e1 + δa (s1 + e1)) r.
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn pullback_row_simd(c: &mut [f64], a0: &[f64], s1: &[f64], e: f64, da: &[f64], e1: &[f64], r: f64) {
    let n = c.len();
    let (a0, da, s1, e1) = (&a0[..n], &da[..n], &s1[..n], &e1[..n]);
    for i in 0..n {
        c[i] = a0[i] * s1[i] * e + (a0[i] * e1[i] + da[i] * (s1[i] + e1[i])) * r;
    }
}

/// The two-layer net's per-row sums of the fused right-hand side:
/// (Σ a0 d2 + δa d1, Σ s0 s_a, Σ a0 s1 y2) — Rem, and the two parts of J0 s.
#[allow(clippy::too_many_arguments)]
pub fn row_sums(a0: &[f64], d2: &[f64], da: &[f64], d1: &[f64], s0: &[f64], sa: &[f64], s1: &[f64], y2: &[f64]) -> [f64; 3] {
    row_sums_simd(a0, d2, da, d1, s0, sa, s1, y2)
}

#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
#[allow(clippy::too_many_arguments)]
fn row_sums_simd(a0: &[f64], d2: &[f64], da: &[f64], d1: &[f64], s0: &[f64], sa: &[f64], s1: &[f64], y2: &[f64]) -> [f64; 3] {
    let n = a0.len();
    let (d2, da, d1, s0, sa, s1, y2) = (&d2[..n], &da[..n], &d1[..n], &s0[..n], &sa[..n], &s1[..n], &y2[..n]);
    let (mut r, mut ja, mut ju) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    let chunks = n / 8;
    for ch in 0..chunks {
        let o = ch * 8;
        let (a, b, c, d) = (&a0[o..o + 8], &d2[o..o + 8], &da[o..o + 8], &d1[o..o + 8]);
        let (e, f, g, h) = (&s0[o..o + 8], &sa[o..o + 8], &s1[o..o + 8], &y2[o..o + 8]);
        for l in 0..8 {
            r[l] += a[l] * b[l] + c[l] * d[l];
        }
        for l in 0..8 {
            ja[l] += e[l] * f[l];
        }
        for l in 0..8 {
            ju[l] += a[l] * g[l] * h[l];
        }
    }
    let fold = |a: [f64; 8]| ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    let mut out = [fold(r), fold(ja), fold(ju)];
    for i in chunks * 8..n {
        out[0] += a0[i] * d2[i] + da[i] * d1[i];
        out[1] += s0[i] * sa[i];
        out[2] += a0[i] * s1[i] * y2[i];
    }
    out
}

/// The two-layer net's per-row update of the fused right-hand side: the a-part
/// ga += s0 e_a + d1 r_a and the pullback coefficients c = a0 s1 e + (a0 e1 + δa (s1 + e1)) r.
#[allow(clippy::too_many_arguments)]
pub fn row_update(ga: &mut [f64], s0: &[f64], d1: &[f64], ea: f64, ra: f64, c: &mut [f64], a0: &[f64], s1: &[f64], e1: &[f64], da: &[f64], e: f64, r: f64) {
    row_update_simd(ga, s0, d1, ea, ra, c, a0, s1, e1, da, e, r)
}

#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
#[allow(clippy::too_many_arguments)]
fn row_update_simd(ga: &mut [f64], s0: &[f64], d1: &[f64], ea: f64, ra: f64, c: &mut [f64], a0: &[f64], s1: &[f64], e1: &[f64], da: &[f64], e: f64, r: f64) {
    let n = ga.len();
    let (s0, d1, c, a0, s1, e1, da) = (&s0[..n], &d1[..n], &mut c[..n], &a0[..n], &s1[..n], &e1[..n], &da[..n]);
    for i in 0..n {
        ga[i] += s0[i] * ea + d1[i] * ra;
        c[i] = a0[i] * s1[i] * e + (a0[i] * e1[i] + da[i] * (s1[i] + e1[i])) * r;
    }
}

/// The two-layer net's row of J0^T q: the a-part oa += s0 qa and the
/// coefficients c = a0 s1 qs of the U-part, in one pass over the row.
#[allow(clippy::too_many_arguments)]
pub fn j0t_row(oa: &mut [f64], s0: &[f64], qa: f64, c: &mut [f64], a0: &[f64], s1: &[f64], qs: f64) {
    j0t_row_simd(oa, s0, qa, c, a0, s1, qs)
}

#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn j0t_row_simd(oa: &mut [f64], s0: &[f64], qa: f64, c: &mut [f64], a0: &[f64], s1: &[f64], qs: f64) {
    let n = oa.len();
    let (s0, c, a0, s1) = (&s0[..n], &mut c[..n], &a0[..n], &s1[..n]);
    for i in 0..n {
        oa[i] += s0[i] * qa;
        c[i] = a0[i] * s1[i] * qs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_loops() {
        let x: Vec<f64> = (0..37).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = (0..37).map(|i| (i as f64 * 0.11).cos()).collect();
        let plain: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((dot(&x, &y) - plain).abs() < 1e-14);
        let plain3: f64 = (0..37).map(|i| x[i] * y[i] * x[i]).sum();
        assert!((dot3(&x, &y, &x) - plain3).abs() < 1e-14);
        let mut out = y.clone();
        axpby_add(&mut out, 2.0, &x, -1.0, &y);
        assert!(out.iter().zip(&x).all(|(o, a)| (o - 2.0 * a).abs() < 1e-15));
        let mut c = vec![0.0; 37];
        pullback_row(&mut c, &x, &y, 2.0, &x, &y, 3.0);
        for i in 0..37 {
            let want = x[i] * y[i] * 2.0 + (x[i] * y[i] + x[i] * (y[i] + y[i])) * 3.0;
            assert!((c[i] - want).abs() < 1e-14);
        }
    }
}
