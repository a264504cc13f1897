//! Small element-wise loops of the hot path, compiled for several instruction
//! sets (chosen at run time) so that they vectorise on any x86-64 or aarch64.

use multiversion::multiversion;

/// Dot product with 8 independent accumulators (fixed summation order, so the
/// result does not depend on the machine's thread count).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
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

/// out += a x + b y
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn axpby_add(out: &mut [f64], a: f64, x: &[f64], b: f64, y: &[f64]) {
    let n = out.len();
    let (x, y) = (&x[..n], &y[..n]);
    for i in 0..n {
        out[i] += a * x[i] + b * y[i];
    }
}

/// out = a x
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn scale_into(out: &mut [f64], a: f64, x: &[f64]) {
    let n = out.len();
    let x = &x[..n];
    for i in 0..n {
        out[i] = a * x[i];
    }
}

/// out += a x
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn axpy(out: &mut [f64], a: f64, x: &[f64]) {
    let n = out.len();
    let x = &x[..n];
    for i in 0..n {
        out[i] += a * x[i];
    }
}

/// The two-layer net's ΔB row (times sqrt n): out = a0 e1 + δa (s1 + e1).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn db_row(out: &mut [f64], a0: &[f64], da: &[f64], s1: &[f64], e1: &[f64]) {
    let n = out.len();
    let (a0, da, s1, e1) = (&a0[..n], &da[..n], &s1[..n], &e1[..n]);
    for i in 0..n {
        out[i] = a0[i] * e1[i] + da[i] * (s1[i] + e1[i]);
    }
}

/// The two-layer net's pullback coefficients of one row:
/// c = b0 e + (a0 e1 + δa (s1 + e1)) r.
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
#[allow(clippy::too_many_arguments)]
pub fn pullback_row(c: &mut [f64], b0: &[f64], e: f64, a0: &[f64], da: &[f64], s1: &[f64], e1: &[f64], r: f64) {
    let n = c.len();
    let (b0, a0, da, s1, e1) = (&b0[..n], &a0[..n], &da[..n], &s1[..n], &e1[..n]);
    for i in 0..n {
        c[i] = b0[i] * e + (a0[i] * e1[i] + da[i] * (s1[i] + e1[i])) * r;
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
        let mut out = y.clone();
        axpby_add(&mut out, 2.0, &x, -1.0, &y);
        assert!(out.iter().zip(&x).all(|(o, a)| (o - 2.0 * a).abs() < 1e-15));
        let mut c = vec![0.0; 37];
        pullback_row(&mut c, &x, 2.0, &y, &x, &y, &x, 3.0);
        for i in 0..37 {
            let want = x[i] * 2.0 + (y[i] * x[i] + x[i] * (y[i] + x[i])) * 3.0;
            assert!((c[i] - want).abs() < 1e-14);
        }
    }
}
