//! Smooth activations and their *increments* computed without cancellation.
//!
//! The deviation formulation of the flow (see `flow.rs`) needs, for a unit with
//! pre-activation `z0` moved by a small `b`:
//!   D1 = σ(z0+b) - σ(z0),
//!   D2 = σ(z0+b) - σ(z0) - σ'(z0) b   (second-order Taylor remainder),
//!   E1 = σ'(z0+b) - σ'(z0),
//! each to full *relative* precision even when `b` is 1e-10. Subtracting the
//! rounded values directly would lose everything at large alpha, so each
//! activation uses an addition formula (tanh, sigmoid), log1p/expm1 (softplus)
//! or a Taylor series (erf) for small `b`, and direct differences for large `b`.

use crate::error::{Error, Result};
use pulp::{Arch, Simd, WithSimd};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Sigmoid,
    Erf,
    Softplus,
}

/// Below this |b| the series/addition-formula branches are used.
const SMALL: f64 = 0.5;

/// Per-unit quantities at the initial pre-activation, precomputed once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Base {
    pub z0: f64,
    /// σ(z0)
    pub s0: f64,
    /// σ'(z0)
    pub s1: f64,
    /// tanh(z0) for tanh, tanh(z0/2) for sigmoid/softplus, unused for erf
    pub t: f64,
    /// sech²(z0) for tanh, sech²(z0/2) for sigmoid/softplus
    pub sech2: f64,
}

/// Increments of one unit (see module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Delta {
    pub d1: f64,
    pub d2: f64,
    pub e1: f64,
}

pub const NAMES: [&str; 4] = ["tanh", "sigmoid", "erf", "softplus"];

impl Activation {
    pub fn parse(name: &str) -> Result<Activation> {
        match name.to_ascii_lowercase().as_str() {
            "tanh" => Ok(Activation::Tanh),
            "sigmoid" | "logistic" => Ok(Activation::Sigmoid),
            "erf" => Ok(Activation::Erf),
            "softplus" => Ok(Activation::Softplus),
            "relu" => Err(Error::invalid(
                "activation",
                "relu is not accepted: its derivative jumps at 0, so Lip(Dh) is infinite and \
                 Theorem 1.2 says nothing (Lemma 2.1 needs bounded sigma', sigma'', sigma'''); \
                 use softplus for a smooth ReLU-like unit. Accepted: tanh, sigmoid, erf, softplus",
            )),
            other => Err(Error::invalid(
                "activation",
                format!("unknown activation {other:?}; accepted: tanh, sigmoid, erf, softplus"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Erf => "erf",
            Activation::Softplus => "softplus",
        }
    }

    /// σ(z)
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => sigmoid(z),
            Activation::Erf => libm::erf(z),
            Activation::Softplus => softplus(z),
        }
    }

    /// σ'(z)
    pub fn deriv(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => sech2(z),
            Activation::Sigmoid => 0.25 * sech2(0.5 * z),
            Activation::Erf => FRAC_2_SQRT_PI * (-z * z).exp(),
            Activation::Softplus => sigmoid(z),
        }
    }

    /// (sup|σ|, sup|σ'|, sup|σ''|) over the real line; sup|σ| is infinite for softplus.
    pub fn sup_norms(self) -> (f64, f64, f64) {
        let sqrt3 = 3f64.sqrt();
        match self {
            Activation::Tanh => (1.0, 1.0, 4.0 / (3.0 * sqrt3)),
            Activation::Sigmoid => (1.0, 0.25, 1.0 / (6.0 * sqrt3)),
            Activation::Erf => (
                1.0,
                FRAC_2_SQRT_PI,
                2.0 * 2f64.sqrt() / (std::f64::consts::PI * std::f64::consts::E).sqrt(),
            ),
            Activation::Softplus => (f64::INFINITY, 1.0, 0.25),
        }
    }

    pub fn base(self, z0: f64) -> Base {
        let (t, sech2_) = match self {
            Activation::Tanh => (z0.tanh(), sech2(z0)),
            Activation::Sigmoid | Activation::Softplus => ((0.5 * z0).tanh(), sech2(0.5 * z0)),
            Activation::Erf => (0.0, 0.0),
        };
        Base { z0, s0: self.value(z0), s1: self.deriv(z0), t, sech2: sech2_ }
    }

    /// Increments D1, D2, E1 of a unit at `base` moved by `b`.
    #[inline]
    pub fn delta(self, base: &Base, b: f64) -> Delta {
        match self {
            Activation::Tanh => tanh_delta(base.z0, base.t, base.sech2, b),
            Activation::Sigmoid => {
                // σ(x) = (1 + tanh(x/2)) / 2
                let d = tanh_delta(0.5 * base.z0, base.t, base.sech2, 0.5 * b);
                Delta { d1: 0.5 * d.d1, d2: 0.5 * d.d2, e1: 0.25 * d.e1 }
            }
            Activation::Softplus => softplus_delta(base, b),
            Activation::Erf => erf_delta(base, b),
        }
    }
}


/// Initial values of many units, one array per quantity (so loops vectorise).
/// For tanh, t = σ and sech² = σ', so those arrays are not stored twice (the
/// hot loops are limited by memory traffic on wide networks).
#[derive(Clone, Debug, Default)]
pub struct Bases {
    pub z0: Vec<f64>,
    pub s0: Vec<f64>,
    pub s1: Vec<f64>,
    /// empty when equal to s0 / s1 (tanh)
    t: Vec<f64>,
    sech2: Vec<f64>,
}

impl Bases {
    pub fn new(act: Activation, z0: &[f64]) -> Bases {
        let mut b = Bases::default();
        let shared = act == Activation::Tanh;
        for &z in z0 {
            let x = act.base(z);
            b.z0.push(x.z0);
            b.s0.push(x.s0);
            b.s1.push(x.s1);
            if !shared {
                b.t.push(x.t);
                b.sech2.push(x.sech2);
            }
        }
        b
    }

    /// tanh (of z0 or z0/2) at every unit.
    pub fn t(&self) -> &[f64] {
        if self.t.is_empty() {
            &self.s0
        } else {
            &self.t
        }
    }

    /// sech² (of z0 or z0/2) at every unit.
    pub fn sech2(&self) -> &[f64] {
        if self.sech2.is_empty() {
            &self.s1
        } else {
            &self.sech2
        }
    }

    #[inline]
    pub fn get(&self, k: usize) -> Base {
        Base { z0: self.z0[k], s0: self.s0[k], s1: self.s1[k], t: self.t()[k], sech2: self.sech2()[k] }
    }
}

/// Output of `Activation::delta_row` for one row of units.
pub struct RowDelta<'a> {
    pub d1: &'a mut [f64],
    pub d2: &'a mut [f64],
    pub e1: &'a mut [f64],
}

/// Weights of the two sums the two-layer network's right-hand side takes from
/// a row's increments, Σ (a0 D2 + δa D1) and Σ s0 s_a (see `delta_row_sums`).
#[derive(Clone, Copy)]
pub struct SumWeights<'a> {
    pub a0: &'a [f64],
    pub da: &'a [f64],
    pub s0: &'a [f64],
    pub sa: &'a [f64],
}

impl Activation {
    /// Increments of the units `range` of `bases` moved by `b` (one entry per unit).
    /// tanh and sigmoid take a branch-free, vectorised path (same formulas as
    /// `delta`, with a vectorisable exp); erf and softplus go unit by unit.
    pub fn delta_row(self, bases: &Bases, range: std::ops::Range<usize>, b: &[f64], out: RowDelta<'_>) {
        self.row_increments(bases, range, b, out, None);
    }

    /// `delta_row`, and the row sums [Σ (a0 D2 + δa D1), Σ s0 s_a] of `w`,
    /// equal to the bit to `kernels::row_sums` on `delta_row`'s output. Rows of
    /// small moves compute both in one pass, so the increments are not read
    /// back; `out.d2` is scratch (D2 goes into the first sum and may not be kept).
    pub fn delta_row_sums(self, bases: &Bases, range: std::ops::Range<usize>, b: &[f64], out: RowDelta<'_>, w: SumWeights<'_>) -> [f64; 2] {
        self.row_increments(bases, range, b, out, Some(w))
    }

    fn row_increments(self, bases: &Bases, range: std::ops::Range<usize>, b: &[f64], out: RowDelta<'_>, w: Option<SumWeights<'_>>) -> [f64; 2] {
        let (z0, t, s) = (&bases.z0[range.clone()], &bases.t()[range.clone()], &bases.sech2()[range.clone()]);
        let row_sums = |d1: &[f64], d2: &[f64]| w.map_or([0.0; 2], |w| crate::kernels::row_sums(w.a0, d2, w.da, d1, w.s0, w.sa));
        match self {
            Activation::Tanh | Activation::Sigmoid => {
                let half = if self == Activation::Sigmoid { 0.5 } else { 1.0 };
                // Rows whose moves are all small skip the branches they do not need
                // (the common lazy regime needs neither exp). Tiny moves need fewer
                // series terms: the first omitted one, 3 |c_{K+1}| x^{2K} relative,
                // stays below 1e-17 with K = 3 for |x| < 1e-3 and K = 4 for |x| < 1e-2.
                let xmax = half * crate::kernels::max_abs(b);
                let row = RowDelta { d1: &mut *out.d1, d2: &mut *out.d2, e1: &mut *out.e1 };
                let mut sums = match xmax {
                    x if x < 1e-3 => series_row::<3>(t, s, b, half, row, w),
                    x if x < 1e-2 => series_row::<4>(t, s, b, half, row, w),
                    x if x < 0.1 => series_row::<7>(t, s, b, half, row, w),
                    x => {
                        if x < PADE_MAX {
                            tanh_row::<false>(z0, t, s, b, half, row);
                        } else {
                            tanh_row::<true>(z0, t, s, b, half, row);
                        }
                        row_sums(out.d1, out.d2)
                    }
                };
                if self == Activation::Sigmoid {
                    crate::kernels::scale(out.d1, 0.5);
                    crate::kernels::scale(out.d2, 0.5);
                    crate::kernels::scale(out.e1, 0.25);
                    // the first sum is linear in D1 and D2 (scaling by 1/2 is exact)
                    sums[0] *= 0.5;
                }
                sums
            }
            _ => {
                for (i, k) in range.enumerate() {
                    let d = self.delta(&bases.get(k), b[i]);
                    out.d1[i] = d.d1;
                    out.d2[i] = d.d2;
                    out.e1[i] = d.e1;
                }
                row_sums(out.d1, out.d2)
            }
        }
    }
}

/// Rows whose moves x = b h are all below 0.1: `K` terms of the series of
/// tanh x - x in the addition formula (see `tanh_row`), and the row sums of `w`
/// if given, in one pass of explicit SIMD (the compiler vectorises no sums).
fn series_row<const K: usize>(t: &[f64], s: &[f64], b: &[f64], half: f64, out: RowDelta<'_>, w: Option<SumWeights<'_>>) -> [f64; 2] {
    let arch = Arch::new();
    match w {
        // tanh: x = b (no multiplication by h), and s0 is t (not loaded twice)
        Some(w) if half == 1.0 && std::ptr::eq(w.s0, t) => arch.dispatch(SeriesRow::<K, true, true> { t, s, b, half, out, w }),
        Some(w) => arch.dispatch(SeriesRow::<K, true, false> { t, s, b, half, out, w }),
        None => {
            let w = SumWeights { a0: &[], da: &[], s0: &[], sa: &[] };
            arch.dispatch(SeriesRow::<K, false, false> { t, s, b, half, out, w })
        }
    }
}

struct SeriesRow<'a, const K: usize, const SUMS: bool, const TANH: bool> {
    t: &'a [f64],
    s: &'a [f64],
    b: &'a [f64],
    half: f64,
    out: RowDelta<'a>,
    w: SumWeights<'a>,
}

/// tanh x - x from its first `K` terms, as `tanh_minus_id_series_n` (same
/// operations, so the same results), on a vector of moves.
#[inline(always)]
fn tanh_minus_id_series_simd<S: Simd, const K: usize>(simd: S, x: S::f64s) -> S::f64s {
    let c = TANH_SERIES;
    let x2 = simd.mul_f64s(x, x);
    let (mut acc, horner_terms) = if K == 7 {
        let high = simd.mul_add_f64s(simd.splat_f64s(c[6]), x2, simd.splat_f64s(c[5]));
        let low = simd.mul_add_f64s(simd.splat_f64s(c[4]), x2, simd.splat_f64s(c[3]));
        (simd.mul_add_f64s(high, simd.mul_f64s(x2, x2), low), 3)
    } else {
        (simd.splat_f64s(0.0), K)
    };
    for j in (0..horner_terms).rev() {
        acc = simd.mul_add_f64s(acc, x2, simd.splat_f64s(c[j]));
    }
    simd.mul_f64s(simd.mul_f64s(acc, x2), x)
}

/// D1, D2, E1 of a vector of units (t = tanh, s = sech² at z0) moved by x < 0.1:
/// the addition formula of `tanh_row` with tanh x = x + (tanh x - x) from the
/// series (N = x + M, P = 1).
#[inline(always)]
fn series_unit<S: Simd, const K: usize>(simd: S, x: S::f64s, t: S::f64s, s: S::f64s) -> [S::f64s; 3] {
    let series = tanh_minus_id_series_simd::<S, K>(simd, x);
    let num = simd.add_f64s(x, series);
    let q = simd.div_f64s(simd.splat_f64s(1.0), simd.mul_add_f64s(t, num, simd.splat_f64s(1.0)));
    let d1 = simd.mul_f64s(simd.mul_f64s(s, num), q);
    let xt = simd.neg_f64s(simd.mul_f64s(x, t));
    let d2 = simd.mul_f64s(simd.mul_f64s(s, simd.mul_add_f64s(xt, num, series)), q);
    let e1 = simd.mul_f64s(simd.neg_f64s(d1), simd.mul_add_f64s(simd.splat_f64s(2.0), t, d1));
    [d1, d2, e1]
}

impl<const K: usize, const SUMS: bool, const TANH: bool> WithSimd for SeriesRow<'_, K, SUMS, TANH> {
    type Output = [f64; 2];
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> [f64; 2] {
        let SeriesRow { t, s, b, half, out, w } = self;
        let n = b.len();
        let (th, tt) = S::as_simd_f64s(&t[..n]);
        let (sh, st) = S::as_simd_f64s(&s[..n]);
        let (bh, bt) = S::as_simd_f64s(b);
        let (d1h, d1t) = S::as_mut_simd_f64s(&mut out.d1[..n]);
        let (d2h, d2t) = S::as_mut_simd_f64s(&mut out.d2[..n]);
        let (e1h, e1t) = S::as_mut_simd_f64s(&mut out.e1[..n]);
        let w = if SUMS { SumWeights { a0: &w.a0[..n], da: &w.da[..n], s0: &w.s0[..n], sa: &w.sa[..n] } } else { w };
        let ((a0h, a0t), (dah, dat)) = (S::as_simd_f64s(w.a0), S::as_simd_f64s(w.da));
        let ((s0h, s0t), (sah, sat)) = (S::as_simd_f64s(w.s0), S::as_simd_f64s(w.sa));
        let hv = simd.splat_f64s(half);
        let zero = simd.splat_f64s(0.0);
        // Two sets of accumulators on alternate vectors, in the order of
        // kernels::row_sums (both give the same sums to the bit). A macro, not a
        // closure: the body must be inlined where the target features are enabled.
        let (mut acc0, mut acc1) = ([zero; 2], [zero; 2]);
        macro_rules! unit {
            ($i:expr, $acc:ident) => {{
                let i = $i;
                let x = if TANH { bh[i] } else { simd.mul_f64s(bh[i], hv) };
                let [d1, d2, e1] = series_unit::<S, K>(simd, x, th[i], sh[i]);
                (d1h[i], e1h[i]) = (d1, e1);
                if SUMS {
                    $acc[0] = simd.mul_add_f64s(a0h[i], d2, simd.mul_add_f64s(dah[i], d1, $acc[0]));
                    $acc[1] = simd.mul_add_f64s(if TANH { th[i] } else { s0h[i] }, sah[i], $acc[1]);
                } else {
                    d2h[i] = d2;
                }
            }};
        }
        let mut i = 0;
        while i + 1 < bh.len() {
            unit!(i, acc0);
            unit!(i + 1, acc1);
            i += 2;
        }
        if i < bh.len() {
            unit!(i, acc0);
        }
        let mut sums = [0.0; 2];
        if SUMS {
            sums[0] = simd.reduce_sum_f64s(simd.add_f64s(acc0[0], acc1[0]));
            sums[1] = simd.reduce_sum_f64s(simd.add_f64s(acc0[1], acc1[1]));
        }
        // the last units, fewer than a vector, zero-padded into one
        let k = bt.len();
        if k > 0 {
            let lanes = std::mem::size_of::<S::f64s>() / 8;
            let mut pad = [[0.0; 8]; 3];
            for (p, v) in pad.iter_mut().zip([bt, tt, st]) {
                p[..k].copy_from_slice(v);
            }
            let x = S::as_simd_f64s(&pad[0][..lanes]).0[0];
            let (tv, sv) = (S::as_simd_f64s(&pad[1][..lanes]).0[0], S::as_simd_f64s(&pad[2][..lanes]).0[0]);
            let d = series_unit::<S, K>(simd, simd.mul_f64s(x, hv), tv, sv);
            let mut o = [[0.0; 8]; 3];
            for (oj, dj) in o.iter_mut().zip(d) {
                S::as_mut_simd_f64s(&mut oj[..lanes]).0[0] = dj;
            }
            d1t.copy_from_slice(&o[0][..k]);
            d2t.copy_from_slice(&o[1][..k]);
            e1t.copy_from_slice(&o[2][..k]);
            if SUMS {
                // as kernels::row_sums adds its last units
                for j in 0..k {
                    sums[0] += a0t[j] * o[1][j] + dat[j] * o[0][j];
                    sums[1] += s0t[j] * sat[j];
                }
            }
        }
        sums
    }
}

/// tanh increments of units at z0*h (t = tanh, s = sech² there) moved by b*h,
/// h = `half` (1 for tanh; 1/2 for sigmoid(x) = (1 + tanh(x/2))/2, whose
/// increments the caller scales by 1/2, 1/2, 1/4), for rows with a move of 0.1
/// or more (`series_row` takes the others). Every branch a row needs is
/// computed and one is selected per unit, so the loop has no branches; each unit
/// takes one division, and an exponential only in rows with a move of
/// `PADE_MAX` or more (`DIRECT`: the rational form of tanh x below `PADE_MAX`,
/// direct differences above; otherwise every |x| < `PADE_MAX`, rational form only).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn tanh_row<const DIRECT: bool>(z0: &[f64], t: &[f64], s: &[f64], b: &[f64], half: f64, out: RowDelta<'_>) {
    #[multiversion::target::target_cfg(any(target_feature = "fma", target_arch = "aarch64"))]
    const FMA: bool = true;
    #[multiversion::target::target_cfg(not(any(target_feature = "fma", target_arch = "aarch64")))]
    const FMA: bool = false;
    let n = b.len();
    let (z0, t, s, b) = (&z0[..n], &t[..n], &s[..n], &b[..n]);
    let (d1o, d2o, e1o) = (&mut out.d1[..n], &mut out.d2[..n], &mut out.e1[..n]);
    for i in 0..n {
        let x = b[i] * half;
        let small = x.abs() < PADE_MAX;
        // Addition formula tanh(z0+x) - tanh(z0) = s tb / (1 + t tb) with
        // tb = tanh x = N/P and M = P (tanh x - x), from the rational form
        // (clamped: its value is not used for larger moves).
        let (num, p, m) = tanh_rational::<FMA>(x.clamp(-PADE_MAX, PADE_MAX));
        // the one division: by P + t N (>= (1 - tanh PADE_MAX) P: see PADE_MAX), or
        // by 1 + e for large moves, e = exp(-2|z|) of the new pre-activation z
        let z = madd::<FMA>(z0[i], half, x);
        let e = if DIRECT { exp_neg::<FMA>(-2.0 * z.abs()) } else { 0.0 };
        let den = if DIRECT && !small { 1.0 + e } else { madd::<FMA>(t[i], num, p) };
        let q = 1.0 / den;
        let mut d1 = s[i] * num * q;
        let mut d2 = s[i] * madd::<FMA>(-x * t[i], num, m) * q;
        let mut e1 = -d1 * madd::<FMA>(2.0, t[i], d1);
        if DIRECT {
            // large moves: direct differences, tanh z = ±(1 - e) q, sech² z = 4 e q²
            let tz = if z < 0.0 { e - 1.0 } else { 1.0 - e } * q;
            let d1b = tz - t[i];
            d2 = if small { d2 } else { madd::<FMA>(-s[i], x, d1b) };
            e1 = if small { e1 } else { madd::<FMA>(4.0 * e * q, q, -s[i]) };
            d1 = if small { d1 } else { d1b };
        }
        d1o[i] = d1;
        d2o[i] = d2;
        e1o[i] = e1;
    }
}

/// Below this |x| the row path takes tanh x from its rational form. Up to 2 the
/// addition formula's denominator loses at most a factor 1 - tanh 2 = 1/28 to
/// cancellation, no more than the direct difference tanh z - tanh z0 loses in the
/// same case (saturated units moving towards the other side).
const PADE_MAX: f64 = 2.0;

/// (N, P, M) with tanh x = N / P and M = P (tanh x - x) = N - x P, for |x| <= 2,
/// with no exponential: N = x n(x²) and P = p(x²) are the numerator and the
/// denominator of the 11th convergent of Lambert's continued fraction
/// tanh x = x / (1 + x²/(3 + x²/(5 + ...))), scaled to p(0) = 1, and M = x³ q(x²)
/// with q = (n - p) / x². All the coefficients of n and p are positive and all
/// those of q negative, so nothing cancels; the truncation error is below 2e-18
/// relative for |x| <= 2 (and smaller below), for tanh x and tanh x - x alike.
#[inline(always)]
fn tanh_rational<const FMA: bool>(x: f64) -> (f64, f64, f64) {
    const N: [f64; 6] = [1.0, 10.0 / 69.0, 4.0 / 805.0, 8.0 / 137_655.0, 1.0 / 4_212_243.0, 2.0 / 8_108_567_775.0];
    const P: [f64; 7] = [
        1.0,
        11.0 / 23.0,
        5.0 / 161.0,
        4.0 / 6555.0,
        2.0 / 468_027.0,
        1.0 / 105_306_075.0,
        1.0 / 316_234_143_225.0,
    ];
    const Q: [f64; 6] = [
        -1.0 / 3.0,
        -3.0 / 115.0,
        -4.0 / 7245.0,
        -1.0 / 247_779.0,
        -1.0 / 108_114_237.0,
        -1.0 / 316_234_143_225.0,
    ];
    let y = x * x;
    let n = horner::<FMA>(N[5], &N[..5], y);
    let p = horner::<FMA>(P[6], &P[..6], y);
    let q = horner::<FMA>(Q[5], &Q[..5], y);
    (x * n, p, x * y * q)
}

/// a b + c, fused where the target has FMA (a compile-time choice per target).
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// exp(x) for x <= 0, to about 1 ulp, written to vectorise: Cody–Waite
/// reduction x = k ln2 + r, a degree-13 Taylor polynomial on |r| <= ln2/2
/// (truncation < 1e-17 relative), and 2^k assembled from bits. Below -708 it
/// returns exp(-708) instead of a subnormal, far below anything it is added to.
#[inline(always)]
fn exp_neg<const FMA: bool>(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.max(-708.0);
    let kk = x * std::f64::consts::LOG2_E + SHIFT;
    let k = kk - SHIFT;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, x));
    // Taylor coefficients 1/j!, j = 0..13 (j! is exact in f64, so each is correctly rounded)
    const C: [f64; 14] = {
        let (mut c, mut f, mut j) = ([1.0; 14], 1.0, 1);
        while j < 14 {
            f *= j as f64;
            c[j] = 1.0 / f;
            j += 1;
        }
        c
    };
    // Estrin's scheme above r³ (pairs, then pairs of pairs with r², r⁴, r⁸) and
    // Horner's below: the dependency chain is 7 multiply-adds deep instead of 13,
    // which is what bounds the vectorised row loop (its iterations are too long
    // for the processor to overlap many), and the leading terms keep Horner's rounding.
    let r2 = r * r;
    let r4 = r2 * r2;
    let pair = |j: usize| madd::<FMA>(C[j + 1], r, C[j]);
    let (p0, p1, p2) = (madd::<FMA>(pair(5), r2, pair(3)), madd::<FMA>(pair(9), r2, pair(7)), madd::<FMA>(C[13], r2, pair(11)));
    let high = madd::<FMA>(p2, r4 * r4, madd::<FMA>(p1, r4, p0));
    let p = horner::<FMA>(high, &C[..3], r);
    // the low bits of kk hold k; (k + 1023) << 52 is 2^k
    let two_k = f64::from_bits(kk.to_bits().wrapping_add(1023) << 52);
    p * two_k
}

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// sech²(z) without overflow.
pub fn sech2(z: f64) -> f64 {
    let e = (-2.0 * z.abs()).exp();
    4.0 * e / ((1.0 + e) * (1.0 + e))
}

/// Taylor coefficients of tanh beyond the linear term (odd powers 3..15); the
/// first omitted term of the full series is < 1e-17 relative for |b| < 0.1.
const TANH_SERIES: [f64; 7] = [
    -1.0 / 3.0,
    2.0 / 15.0,
    -17.0 / 315.0,
    62.0 / 2835.0,
    -1382.0 / 155925.0,
    21844.0 / 6081075.0,
    -929569.0 / 638512875.0,
];

/// tanh(b) - b for |b| < 0.1 by its Taylor series (a polynomial, so cheap and
/// free of the cancellation a direct subtraction would suffer).
#[inline(always)]
fn tanh_minus_id_series(b: f64) -> f64 {
    tanh_minus_id_series_n::<7, false>(b)
}

/// The series with its first `K` terms (odd powers 3..2K+1).
#[inline(always)]
fn tanh_minus_id_series_n<const K: usize, const FMA: bool>(b: f64) -> f64 {
    const C: [f64; 7] = TANH_SERIES;
    let b2 = b * b;
    let acc = if K == 7 {
        // Estrin's scheme for the top four terms (a shorter dependency chain, see exp_neg)
        let high = madd::<FMA>(madd::<FMA>(C[6], b2, C[5]), b2 * b2, madd::<FMA>(C[4], b2, C[3]));
        horner::<FMA>(high, &C[..3], b2)
    } else {
        horner::<FMA>(0.0, &C[..K], b2)
    };
    acc * b2 * b
}

/// acc x^N + Σ c_j x^j (N = c.len()) by Horner's scheme.
#[inline(always)]
fn horner<const FMA: bool>(mut acc: f64, c: &[f64], x: f64) -> f64 {
    for &cj in c.iter().rev() {
        acc = madd::<FMA>(acc, x, cj);
    }
    acc
}

/// expm1(b) - b, accurate for small b.
fn expm1_minus_id(b: f64) -> f64 {
    if b.abs() >= 0.1 {
        return b.exp_m1() - b;
    }
    // b²/2! + b³/3! + ... + b^14/14!
    let mut acc = 0.0;
    let mut k = 14.0;
    while k >= 2.0 {
        acc = (acc + 1.0) * b / k;
        k -= 1.0;
    }
    acc * b
}

/// log1p(u) - u, accurate for small u.
fn log1p_minus_id(u: f64) -> f64 {
    if u.abs() >= 0.05 {
        return u.ln_1p() - u;
    }
    // -u²/2 + u³/3 - ... ; 13 terms leave < 1e-17 relative for |u| < 0.05.
    let mut acc = 0.0;
    for k in (2..=14).rev() {
        let c = if k % 2 == 0 { -1.0 } else { 1.0 } / k as f64;
        acc = acc * u + c;
    }
    acc * u * u
}

/// tanh at z0 (t = tanh z0, s = sech² z0) moved by b.
#[inline]
fn tanh_delta(z0: f64, t: f64, s: f64, b: f64) -> Delta {
    if b.abs() < SMALL {
        // tanh(z0+b) - tanh(z0) = s tanh(b) / (1 + t tanh(b)); the denominator is
        // >= 1 - tanh(0.5) here, so nothing cancels.
        // For small b, tanh(b) comes from its series too (no libm call on the hot path).
        let (tb, tmx) = if b.abs() < 0.1 {
            let tmx = tanh_minus_id_series(b);
            (b + tmx, tmx)
        } else {
            let tb = b.tanh();
            (tb, tb - b)
        };
        let den = 1.0 + t * tb;
        let d1 = s * tb / den;
        let d2 = s * (tmx - b * t * tb) / den;
        Delta { d1, d2, e1: -d1 * (2.0 * t + d1) }
    } else {
        let z = z0 + b;
        let d1 = z.tanh() - t;
        Delta { d1, d2: d1 - s * b, e1: sech2(z) - s }
    }
}

fn softplus_delta(base: &Base, b: f64) -> Delta {
    // σ' = sigmoid, whose increment is the sigmoid case of tanh_delta.
    let e1 = 0.5 * tanh_delta(0.5 * base.z0, base.t, base.sech2, 0.5 * b).d1;
    if b.abs() < SMALL {
        // softplus(z0+b) - softplus(z0) = log1p(sigmoid(z0) expm1(b)), exactly.
        let u = base.s1 * b.exp_m1();
        let d1 = u.ln_1p();
        let d2 = log1p_minus_id(u) + base.s1 * expm1_minus_id(b);
        Delta { d1, d2, e1 }
    } else {
        let d1 = softplus(base.z0 + b) - base.s0;
        Delta { d1, d2: d1 - base.s1 * b, e1 }
    }
}

fn erf_delta(base: &Base, b: f64) -> Delta {
    let z0 = base.z0;
    // erf'(z0+b) - erf'(z0) = erf'(z0) expm1(-(2 z0 b + b²)), exactly.
    // (When the exponent is large the derivatives differ by more than a factor e,
    // so the direct difference is accurate and avoids 0 * inf.)
    let x = -(2.0 * z0 + b) * b;
    let e1 = if x < 0.5 { base.s1 * x.exp_m1() } else { Activation::Erf.deriv(z0 + b) - base.s1 };
    if b.abs() < 0.1 && (z0 * b).abs() < 0.5 {
        // Taylor series: erf^(k)(z0) = erf'(z0) (-1)^(k-1) H_{k-1}(z0), Hermite H.
        // Terms shrink at least like (2|z0 b| + |b|)^k / k!, so 16 terms suffice.
        let (mut h_prev, mut h) = (1.0, 2.0 * z0); // H_0, H_1
        let mut term = b; // b^k / k! accumulated as we go, starting at k = 1
        let mut d2 = 0.0;
        for k in 2..=18 {
            term *= b / k as f64;
            // coefficient for derivative order k uses H_{k-1}
            let sign = if (k - 1) % 2 == 0 { 1.0 } else { -1.0 };
            d2 += sign * h * term;
            let h_next = 2.0 * z0 * h - 2.0 * (k - 1) as f64 * h_prev;
            h_prev = h;
            h = h_next;
        }
        d2 *= base.s1;
        Delta { d1: base.s1 * b + d2, d2, e1 }
    } else {
        let z = z0 + b;
        // Use erfc on the tails so that differences of numbers near ±1 keep their digits.
        let d1 = if z0 > 0.0 && z > 0.0 {
            libm::erfc(z0) - libm::erfc(z)
        } else if z0 < 0.0 && z < 0.0 {
            libm::erfc(-z) - libm::erfc(-z0)
        } else {
            libm::erf(z) - libm::erf(z0)
        };
        Delta { d1, d2: d1 - base.s1 * b, e1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 4] =
        [Activation::Tanh, Activation::Sigmoid, Activation::Erf, Activation::Softplus];

    /// σ'' and σ''' by central differences of the analytic σ' (only used to build
    /// the Taylor reference for tiny b, where 1e-6 relative accuracy is plenty).
    fn d2_d3(act: Activation, z: f64) -> (f64, f64) {
        let h = 1e-4;
        let f = |x: f64| act.deriv(x);
        let s2 = (f(z + h) - f(z - h)) / (2.0 * h);
        let s3 = (f(z + h) - 2.0 * f(z) + f(z - h)) / (h * h);
        (s2, s3)
    }

    #[test]
    fn tiny_increments_match_taylor() {
        // For b = 1e-7 the increments are pure Taylor: D2 = σ'' b²/2 (+ O(b³)).
        // A direct subtraction would give D2 with no correct digit at all.
        for act in ALL {
            for &z0 in &[-2.3, -0.4, 0.0, 0.7, 1.9] {
                let base = act.base(z0);
                let b = 1e-7;
                let d = act.delta(&base, b);
                let (s2, s3) = d2_d3(act, z0);
                let d2_ref = s2 * b * b / 2.0 + s3 * b * b * b / 6.0;
                let e1_ref = s2 * b + s3 * b * b / 2.0;
                if s2.abs() > 1e-3 {
                    assert!(((d.d2 - d2_ref) / d2_ref).abs() < 1e-5, "{act:?} z0={z0}: {} vs {d2_ref}", d.d2);
                    assert!(((d.e1 - e1_ref) / e1_ref).abs() < 1e-5, "{act:?} z0={z0}");
                }
                let d1_ref = base.s1 * b + d2_ref;
                assert!(((d.d1 - d1_ref) / d1_ref).abs() < 1e-12, "{act:?} z0={z0}");
            }
        }
    }

    #[test]
    fn branches_agree_with_direct_differences_at_moderate_b() {
        // At |b| ~ 0.05..3 direct subtraction is accurate to ~1e-13 relative, so
        // both branches of every activation are checked against it.
        for act in ALL {
            for &z0 in &[-3.0, -0.5, 0.0, 0.3, 2.5] {
                for &b in &[-2.5, -0.7, -0.3, -0.05, 0.05, 0.2, 0.45, 0.55, 1.5] {
                    let base = act.base(z0);
                    let d = act.delta(&base, b);
                    let d1 = act.value(z0 + b) - act.value(z0);
                    let d2 = d1 - act.deriv(z0) * b;
                    let e1 = act.deriv(z0 + b) - act.deriv(z0);
                    let scale = b.abs();
                    assert!((d.d1 - d1).abs() < 1e-12 * scale, "{act:?} d1 z0={z0} b={b}");
                    assert!((d.d2 - d2).abs() < 1e-12 * scale, "{act:?} d2 z0={z0} b={b}: {} vs {d2}", d.d2);
                    assert!((d.e1 - e1).abs() < 1e-12 * scale, "{act:?} e1 z0={z0} b={b}");
                }
            }
        }
    }

    #[test]
    fn continuity_across_branch_threshold() {
        for act in ALL {
            let base = act.base(0.8);
            let lo = act.delta(&base, SMALL * (1.0 - 1e-12));
            let hi = act.delta(&base, SMALL);
            assert!((lo.d2 - hi.d2).abs() < 1e-12, "{act:?}");
        }
    }

    #[test]
    fn saturated_units_stay_finite() {
        let cases = [(30.0, -29.0), (-40.0, 39.0), (800.0, 1.0), (-800.0, -0.3)];
        for act in ALL {
            for &(z0, b) in &cases {
                let d = act.delta(&act.base(z0), b);
                assert!(d.d1.is_finite() && d.d2.is_finite() && d.e1.is_finite(), "{act:?} {z0} {b}");
            }
            // the vectorised row path, on a row (long enough for full vectors) of the cases
            let z0: Vec<f64> = (0..32).map(|i| cases[i % 4].0).collect();
            let b: Vec<f64> = (0..32).map(|i| cases[i % 4].1).collect();
            let bases = Bases::new(act, &z0);
            let (mut d1, mut d2, mut e1) = ([0.0; 32], [0.0; 32], [0.0; 32]);
            act.delta_row(&bases, 0..32, &b, RowDelta { d1: &mut d1, d2: &mut d2, e1: &mut e1 });
            assert!(d1.iter().chain(&d2).chain(&e1).all(|v| v.is_finite()), "{act:?} row");
        }
    }

    #[test]
    fn truncated_tanh_series_keep_full_precision_below_their_bounds() {
        for (k, bound) in [(3, 1e-3), (4, 1e-2)] {
            for x in [bound, 0.7 * bound, 0.1 * bound, -bound] {
                let full = tanh_minus_id_series(x);
                let short = if k == 3 { tanh_minus_id_series_n::<3, false>(x) } else { tanh_minus_id_series_n::<4, false>(x) };
                assert!(((short - full) / full).abs() < 2e-16, "K = {k}, x = {x}: {short} vs {full}");
            }
        }
    }

    #[test]
    fn rational_tanh_keeps_full_precision() {
        // tanh x - x against its series below 0.1, where the series is exact to 1e-17
        for x in [1e-9, 1e-4, 3e-3, 0.05, 0.099, -0.07] {
            let (_, p, m) = tanh_rational::<false>(x);
            let series = tanh_minus_id_series(x);
            assert!((m / p - series).abs() <= 4e-16 * series.abs(), "x = {x}: {} vs {series}", m / p);
        }
        // tanh x against libm up to PADE_MAX, and tanh x - x against the direct
        // difference, which is accurate to a few ulps of x there
        for i in 1..=200 {
            let x = PADE_MAX * i as f64 / 200.0;
            for x in [x, -x] {
                let (num, p, m) = tanh_rational::<false>(x);
                assert!((num / p - x.tanh()).abs() <= 4e-16 * x.tanh().abs(), "x = {x}");
                assert!((m / p - (x.tanh() - x)).abs() <= 4e-16 * x.abs(), "x = {x}");
            }
        }
    }

    #[test]
    fn helper_series_match_direct() {
        for &x in &[0.09, 0.04, 0.01] {
            let rel = |a: f64, b: f64| ((a - b) / b).abs();
            assert!(rel(tanh_minus_id_series(x), x.tanh() - x) < 1e-12);
            assert!(rel(expm1_minus_id(x), x.exp_m1() - x) < 1e-13);
            assert!(rel(log1p_minus_id(x), x.ln_1p() - x) < 1e-13);
        }
    }

    #[test]
    fn vectorised_rows_equal_unit_by_unit() {
        for act in ALL {
            let z0: Vec<f64> = (0..37).map(|i| (i as f64 - 18.0) * 0.17).collect();
            let bases = Bases::new(act, &z0);
            // every row variant: 3, 4 and 7 series terms, the rational form, and
            // rows with moves beyond PADE_MAX (direct differences there)
            for scale in [1e-9, 1e-5, 5e-3, 0.05, 0.3, 3.0, 10.0] {
                let b: Vec<f64> = (0..37).map(|i| scale * ((i * 7 % 11) as f64 / 11.0 - 0.5)).collect();
                let (mut d1, mut d2, mut e1) = (vec![0.0; 37], vec![0.0; 37], vec![0.0; 37]);
                act.delta_row(&bases, 0..37, &b, RowDelta { d1: &mut d1, d2: &mut d2, e1: &mut e1 });
                for i in 0..37 {
                    let d = act.delta(&bases.get(i), b[i]);
                    // the vectorised exp differs from libm's by an ulp or two, which
                    // the cancellation in tanh(b) - b amplifies by at most 3/b² <= 300
                    let close = |x: f64, y: f64| (x - y).abs() <= 1e-13 * y.abs() + 1e-300;
                    assert!(close(d1[i], d.d1) && close(d2[i], d.d2) && close(e1[i], d.e1), "{act:?} {scale} {i}");
                }
            }
        }
    }

    /// The vectorised series on `x` (whole vectors only).
    struct SeriesProbe<'a, const K: usize>(&'a [f64], &'a mut [f64]);

    impl<const K: usize> WithSimd for SeriesProbe<'_, K> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let (xh, _) = S::as_simd_f64s(self.0);
            let (oh, _) = S::as_mut_simd_f64s(self.1);
            for (o, &x) in oh.iter_mut().zip(xh) {
                *o = tanh_minus_id_series_simd::<S, K>(simd, x);
            }
        }
    }

    #[test]
    fn vectorised_series_equal_the_scalar_ones_to_the_bit() {
        let x: Vec<f64> = (0..4096).map(|i| 0.1 * ((i as f64 * 0.618).fract() * 2.0 - 1.0)).collect();
        let mut got = vec![0.0; x.len()];
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        Arch::new().dispatch(SeriesProbe::<3>(&x, &mut got));
        assert_eq!(bits(&got), bits(&x.iter().map(|&x| tanh_minus_id_series_n::<3, true>(x)).collect::<Vec<_>>()));
        Arch::new().dispatch(SeriesProbe::<4>(&x, &mut got));
        assert_eq!(bits(&got), bits(&x.iter().map(|&x| tanh_minus_id_series_n::<4, true>(x)).collect::<Vec<_>>()));
        Arch::new().dispatch(SeriesProbe::<7>(&x, &mut got));
        assert_eq!(bits(&got), bits(&x.iter().map(|&x| tanh_minus_id_series_n::<7, true>(x)).collect::<Vec<_>>()));
    }

    #[test]
    fn row_sums_in_the_increments_pass_equal_the_separate_sums() {
        // lengths with and without a partial last vector, and with an odd number
        // of whole ones; moves in every row class (one pass below 0.1, two above)
        for act in ALL {
            for len in [3, 12, 37, 256] {
                let z0: Vec<f64> = (0..len).map(|i| (i as f64 * 0.618).fract() * 6.0 - 3.0).collect();
                let bases = Bases::new(act, &z0);
                let wt = |k: f64| -> Vec<f64> { (0..len).map(|i| (i as f64 * k).sin()).collect() };
                let (a0, da, sa) = (wt(0.3), wt(0.7), wt(0.9));
                let s0_copy = bases.s0.clone();
                for scale in [1e-9, 1e-5, 5e-3, 0.05, 0.3, 3.0] {
                    let b: Vec<f64> = (0..len).map(|i| scale * ((i * 7 % 11) as f64 / 11.0 - 0.5)).collect();
                    let (mut d1, mut d2, mut e1) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
                    act.delta_row(&bases, 0..len, &b, RowDelta { d1: &mut d1, d2: &mut d2, e1: &mut e1 });
                    let want = crate::kernels::row_sums(&a0, &d2, &da, &d1, &bases.s0, &sa);
                    // s0 as the bases' own array (tanh: the same as t) and as a copy
                    for s0 in [&bases.s0, &s0_copy] {
                        let (mut f1, mut f2, mut g1) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
                        let w = SumWeights { a0: &a0, da: &da, s0, sa: &sa };
                        let got = act.delta_row_sums(&bases, 0..len, &b, RowDelta { d1: &mut f1, d2: &mut f2, e1: &mut g1 }, w);
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "{act:?} {len} {scale}");
                        assert_eq!((bits(&f1), bits(&g1)), (bits(&d1), bits(&e1)), "{act:?} {len} {scale}");
                    }
                }
            }
        }
    }

    #[test]
    fn vectorised_exp_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -700.0 * i as f64 / 200_000.0;
            let (a, b) = (exp_neg::<false>(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 4e-16, "{worst}");
    }

    #[test]
    fn relu_and_unknown_rejected() {
        let e = Activation::parse("relu").unwrap_err().to_string();
        assert!(e.contains("activation") && e.contains("Lip(Dh)"));
        let e = Activation::parse("gelu").unwrap_err().to_string();
        assert!(e.contains("accepted: tanh, sigmoid, erf, softplus"));
    }

    #[test]
    fn sup_norms_match_a_grid_search() {
        for act in ALL {
            let (_, s1, s2) = act.sup_norms();
            let mut m1: f64 = 0.0;
            let mut m2: f64 = 0.0;
            for i in -40000..=40000 {
                let z = i as f64 * 1e-3;
                m1 = m1.max(act.deriv(z).abs());
                m2 = m2.max(d2_d3(act, z).0.abs());
            }
            assert!((m1 - s1).abs() < 1e-6 * s1 && m1 <= s1 * (1.0 + 1e-12), "{act:?}");
            assert!((m2 - s2).abs() < 1e-5 * s2, "{act:?} {m2} {s2}");
        }
    }
}
