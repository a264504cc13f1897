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
    Arch::new().dispatch(Dot(a, b))
}

/// Σ a b c.
pub fn dot3(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    if a.len() < SHORT {
        return a.iter().zip(b).zip(c).map(|((x, y), z)| x * y * z).sum();
    }
    Arch::new().dispatch(Dot3(a, b, c))
}

/// max |x| (0 for an empty slice).
pub fn max_abs(x: &[f64]) -> f64 {
    if x.len() < SHORT {
        return x.iter().fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
    }
    Arch::new().dispatch(MaxAbs(x))
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

/// out = a (x + b y)
pub fn scaled_sum(out: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    if out.len() < SHORT {
        out.iter_mut().zip(x.iter().zip(y)).for_each(|(o, (u, v))| *o = a * (u + b * v));
        return;
    }
    scaled_sum_simd(out, a, x, b, y)
}

/// x *= a
pub fn scale(x: &mut [f64], a: f64) {
    x.iter_mut().for_each(|v| *v *= a);
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
use pulp::{Arch, Simd, WithSimd};

// Reductions are vectorised by hand with pulp (faer's SIMD layer): the compiler
// does not vectorise sums kept in several accumulators. Each sum runs in a fixed
// order for a given length and machine, so results never depend on the thread count.

/// Lane-wise sums of `K` terms over vectors 0..nv, in two interleaved sets of
/// accumulators (hiding the add latency), then reduced across lanes. A macro,
/// not a function taking a closure: the body must be inlined where the target
/// features are enabled.
macro_rules! lane_sums {
    ($simd:expr, $nv:expr, $k:literal, |$i:ident, $acc:ident| $body:block) => {{
        let simd = $simd;
        let mut acc0 = [simd.splat_f64s(0.0); $k];
        let mut acc1 = acc0;
        let mut i = 0;
        while i + 1 < $nv {
            {
                let ($i, $acc) = (i, &mut acc0);
                $body
            }
            {
                let ($i, $acc) = (i + 1, &mut acc1);
                $body
            }
            i += 2;
        }
        if i < $nv {
            let ($i, $acc) = (i, &mut acc0);
            $body
        }
        let out: [f64; $k] = std::array::from_fn(|k| simd.reduce_sum_f64s(simd.add_f64s(acc0[k], acc1[k])));
        out
    }};
}

struct Dot<'a>(&'a [f64], &'a [f64]);

impl WithSimd for Dot<'_> {
    type Output = f64;
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let n = self.0.len().min(self.1.len());
        let (ah, at) = S::as_simd_f64s(&self.0[..n]);
        let (bh, bt) = S::as_simd_f64s(&self.1[..n]);
        let [s] = lane_sums!(simd, ah.len(), 1, |i, acc| { acc[0] = simd.mul_add_f64s(ah[i], bh[i], acc[0]) });
        s + at.iter().zip(bt).map(|(x, y)| x * y).sum::<f64>()
    }
}

struct Dot3<'a>(&'a [f64], &'a [f64], &'a [f64]);

impl WithSimd for Dot3<'_> {
    type Output = f64;
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let n = self.0.len().min(self.1.len()).min(self.2.len());
        let (ah, at) = S::as_simd_f64s(&self.0[..n]);
        let (bh, bt) = S::as_simd_f64s(&self.1[..n]);
        let (ch, ct) = S::as_simd_f64s(&self.2[..n]);
        let [s] = lane_sums!(simd, ah.len(), 1, |i, acc| { acc[0] = simd.mul_add_f64s(simd.mul_f64s(ah[i], bh[i]), ch[i], acc[0]) });
        s + at.iter().zip(bt).zip(ct).map(|((x, y), z)| x * y * z).sum::<f64>()
    }
}

struct MaxAbs<'a>(&'a [f64]);

impl WithSimd for MaxAbs<'_> {
    type Output = f64;
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let (h, t) = S::as_simd_f64s(self.0);
        let mut acc = simd.splat_f64s(0.0);
        for &v in h {
            acc = simd.max_f64s(acc, simd.abs_f64s(v));
        }
        t.iter().fold(simd.reduce_max_f64s(acc), |m, v| if v.abs() > m { v.abs() } else { m })
    }
}

/// The arguments of `row_sums`: a0, d2, da, d1, s0, sa.
struct RowSums<'a>([&'a [f64]; 6]);

impl WithSimd for RowSums<'_> {
    type Output = [f64; 2];
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> [f64; 2] {
        let n = self.0.iter().map(|x| x.len()).min().unwrap_or(0);
        let v: [(&[S::f64s], &[f64]); 6] = std::array::from_fn(|k| S::as_simd_f64s(&self.0[k][..n]));
        let [a0, d2, da, d1, s0, sa] = v.map(|x| x.0);
        let mut out = lane_sums!(simd, a0.len(), 2, |i, acc| {
            acc[0] = simd.mul_add_f64s(a0[i], d2[i], simd.mul_add_f64s(da[i], d1[i], acc[0]));
            acc[1] = simd.mul_add_f64s(s0[i], sa[i], acc[1]);
        });
        let [a0, d2, da, d1, s0, sa] = v.map(|x| x.1);
        for i in 0..a0.len() {
            out[0] += a0[i] * d2[i] + da[i] * d1[i];
            out[1] += s0[i] * sa[i];
        }
        out
    }
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

/// out = a (x + b y)
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn scaled_sum_simd(out: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    let n = out.len();
    let (x, y) = (&x[..n], &y[..n]);
    for i in 0..n {
        out[i] = a * (x[i] + b * y[i]);
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
/// (Σ a0 d2 + δa d1, Σ s0 s_a) — Rem, and the a-part of J0 s.
pub fn row_sums(a0: &[f64], d2: &[f64], da: &[f64], d1: &[f64], s0: &[f64], sa: &[f64]) -> [f64; 2] {
    Arch::new().dispatch(RowSums([a0, d2, da, d1, s0, sa]))
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
        let mut out = vec![0.0; 37];
        scaled_sum(&mut out, 2.0, &x, 3.0, &y);
        assert!(out.iter().zip(x.iter().zip(&y)).all(|(o, (a, b))| (o - 2.0 * (a + 3.0 * b)).abs() < 1e-14));
        let mut out = y.clone();
        axpby_add(&mut out, 2.0, &x, -1.0, &y);
        assert!(out.iter().zip(&x).all(|(o, a)| (o - 2.0 * a).abs() < 1e-15));
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        assert_eq!(max_abs(&neg), x.iter().fold(0.0f64, |m, v| m.max(v.abs())));
        let sums = row_sums(&x, &y, &y, &x, &x, &x);
        let want = (0..37).fold([0.0; 2], |s, i| [s[0] + x[i] * y[i] + y[i] * x[i], s[1] + x[i] * x[i]]);
        assert!(sums.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-13), "{sums:?} {want:?}");
        let mut c = vec![0.0; 37];
        pullback_row(&mut c, &x, &y, 2.0, &x, &y, 3.0);
        for i in 0..37 {
            let want = x[i] * y[i] * 2.0 + (x[i] * y[i] + x[i] * (y[i] + y[i])) * 3.0;
            assert!((c[i] - want).abs() < 1e-14);
        }
    }
}
