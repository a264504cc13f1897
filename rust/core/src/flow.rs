//! The two flows of one run, formulated so that the integration error controls
//! the error of the *gap* itself.
//!
//! The linearized flow (seed eq. 3) has a closed form from one symmetric
//! eigendecomposition K0 = V diag(λ) V^T (THEORY.md section 2):
//!   rbar(t) = V e^{-λt} c,   wbar(t) - w0 = (1/α) J0^T V φ(t) c,   c = V^T r0.
//! The nonlinear flow (seed eq. 1) is integrated as its deviation from that
//! trajectory, s = α² (w - wbar). With d = w - w0 = dbar + s/α²:
//!   e = r - rbar = -(J0 s)/α - α Rem(d),      Rem(d) = h(w0+d) - h(w0) - J0 d,
//!   ds/dt = α (J0^T e + ΔJ(d)^T r),           ΔJ(d) = J(w0+d) - J0.
//! Every term is O(1/α) at large α and is computed without cancellation by
//! the model, so the gap ||e|| keeps the relative accuracy of the integrator
//! at any α (integrating w and subtracting outputs loses it from α ~ 1e4 on).
//! The state s is O(1) both for α -> 0 and α -> ∞, so one rtol/atol fits all α.

use crate::error::{Error, Result};
use crate::linalg;
use crate::model::{FusedIo, Model, MAX_PREPARED};
use crate::ode::OdeSystem;
use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
use std::sync::Arc;

/// Eigendecomposition of K0 = J0 J0^T, shared by all runs of one model.
#[derive(Clone, Debug)]
pub struct Spectrum {
    pub n: usize,
    /// eigenvalues, clamped at 0 (K0 is PSD; tiny negatives are rounding)
    pub lambda: Vec<f64>,
    /// eigenvectors as columns, n x n row-major
    pub vectors: Vec<f64>,
}

impl Spectrum {
    /// Fails (naming the model) when K0 overflows, e.g. for huge initial weights.
    pub fn of<M: Model>(model: &M) -> Result<Spectrum> {
        let n = model.n();
        let (mut lambda, vectors) = linalg::sym_eig(&model.kernel0(), n, "model")
            .map_err(|e| Error::invalid("model", format!("the initial kernel K0 = J0 J0^T {}", e.message())))?;
        lambda.iter_mut().for_each(|l| *l = l.max(0.0));
        Ok(Spectrum { n, lambda, vectors })
    }
}

/// Closed-form linearized flow for one (model, α).
pub struct LinearFlow {
    spectrum: Arc<Spectrum>,
    /// c = V^T r0
    c: Vec<f64>,
    /// [e^{-λt_i} c]_i and [φ(t_i) c]_i as the columns of an n x 2k matrix (k <= MAX_PREPARED)
    coef: Vec<f64>,
}

impl LinearFlow {
    pub fn new(spectrum: Arc<Spectrum>, r0: &[f64]) -> LinearFlow {
        let n = spectrum.n;
        let mut c = vec![0.0; n];
        crate::model::dense::mat_t_vec(&spectrum.vectors, n, n, r0, &mut c);
        LinearFlow { spectrum, c, coef: vec![0.0; 2 * MAX_PREPARED * n] }
    }

    /// [rbar(t_1) .. rbar(t_k), u(t_1) .. u(t_k)] as the columns of `out` (n x 2k
    /// column-major), from one product with V; k <= MAX_PREPARED. u(t) = V φ(t) c,
    /// so that wbar(t) - w0 = J0^T u(t) / α.
    pub fn eval_many(&mut self, ts: &[f64], out: &mut [f64]) {
        let sp = &*self.spectrum;
        let (n, k) = (sp.n, ts.len());
        let out = &mut out[..2 * k * n];
        if n <= 16 {
            // tiny systems (the Converse model): plain loops, column by column of V,
            // beat the product's call overhead, and libm's latency beats the polynomial
            out.fill(0.0);
            let (rbars, us) = out.split_at_mut(k * n);
            for ((&t, rbar), u) in ts.iter().zip(rbars.chunks_exact_mut(n)).zip(us.chunks_exact_mut(n)) {
                for (j, (&lambda, &c)) in sp.lambda.iter().zip(&self.c).enumerate() {
                    let (decay, phi) = decay_and_phi(lambda, t, true);
                    let (dc, pc) = (decay * c, phi * c);
                    for ((rb, uu), v) in rbar.iter_mut().zip(u.iter_mut()).zip(sp.vectors[j..].iter().step_by(n)) {
                        *rb += v * dc;
                        *uu += v * pc;
                    }
                }
            }
            return;
        }
        let coef = &mut self.coef[..2 * k * n];
        let (decay_c, phi_c) = coef.split_at_mut(k * n);
        for (i, &t) in ts.iter().enumerate() {
            let (decay_i, phi_i) = (&mut decay_c[i * n..(i + 1) * n], &mut phi_c[i * n..(i + 1) * n]);
            for j in 0..n {
                let (decay, phi) = decay_and_phi(sp.lambda[j], t, false);
                decay_i[j] = decay * self.c[j];
                phi_i[j] = phi * self.c[j];
            }
        }
        matmul(
            MatMut::from_column_major_slice_mut(out, n, 2 * k),
            Accum::Replace,
            MatRef::from_row_major_slice(&sp.vectors, n, n),
            MatRef::from_column_major_slice(coef, n, 2 * k),
            1.0,
            Par::Seq,
        );
    }
}

/// (e^{-λt}, φ(t) = (1 - e^{-λt})/λ) from one transcendental: expm1 while
/// λt < 1 (φ exact for small λt), exp beyond (where 1 - e^{-λt} >= 1 - 1/e).
/// `libm`: libm's expm1 instead of `expm1_neg`.
#[inline]
fn decay_and_phi(lambda: f64, t: f64, libm: bool) -> (f64, f64) {
    let x = lambda * t;
    if x < 1.0 {
        let em = if libm { (-x).exp_m1() } else { expm1_neg(x) };
        (1.0 + em, if lambda > 0.0 { -em / lambda } else { t })
    } else {
        let e = (-x).exp();
        (e, (1.0 - e) / lambda)
    }
}

/// e^{-x} - 1 for 0 <= x < 1 from its Taylor polynomial of degree 17
/// (truncation below 2.5e-16 relative; the terms alternate and shrink, so
/// Horner's rounding stays within a few ulps). libm's expm1 took a tenth of
/// a small model's run, called for every eigenvalue at every stage.
#[inline]
fn expm1_neg(x: f64) -> f64 {
    // 1/(j+1)! for j = 0..=16
    const C: [f64; 17] = {
        let mut c = [1.0; 17];
        let mut j = 1;
        while j < 17 {
            c[j] = c[j - 1] / (j + 1) as f64;
            j += 1;
        }
        c
    };
    let y = -x;
    let mut p = C[16];
    for &cj in C[..16].iter().rev() {
        p = p * y + cj;
    }
    p * y
}

/// The ODE for s = α² (w - wbar) plus every buffer a step needs (no allocation
/// in `rhs`). After `evaluate(t, s)` the public fields hold that point's state
/// (after `evaluate_outputs`, all but rem and j0s).
pub struct DeviationFlow<M: Model> {
    pub model: Arc<M>,
    pub alpha: f64,
    pub linear: LinearFlow,
    pub ws: M::Work,
    /// r0 = y* - α h(w0)
    pub r0: Vec<f64>,
    pub rbar: Vec<f64>,
    /// wbar - w0
    pub dbar: Vec<f64>,
    /// w - w0
    pub d: Vec<f64>,
    pub rem: Vec<f64>,
    pub j0s: Vec<f64>,
    /// e = r - rbar (its norm is the gap)
    pub e: Vec<f64>,
    /// r = y* - α h(w)
    pub r: Vec<f64>,
    pub grad: Vec<f64>,
    /// The time rbar, u and dbar were last computed for (steps evaluate several
    /// stages at the same time).
    linear_t: f64,
    /// The times of the last `prepare` (k of them), [rbar(t_i)]_i then [u(t_i)/α]_i
    /// (n each), and whether the model has prepared their J0^T u in one batch.
    prepared_t: Vec<f64>,
    prepared: Vec<f64>,
    model_prepared: bool,
}

impl<M: Model> DeviationFlow<M> {
    pub fn new(model: Arc<M>, spectrum: Arc<Spectrum>, alpha: f64) -> DeviationFlow<M> {
        let (n, p) = (model.n(), model.p());
        let r0: Vec<f64> = model.y_star().iter().zip(model.h0()).map(|(y, h)| y - alpha * h).collect();
        DeviationFlow {
            linear: LinearFlow::new(spectrum, &r0),
            ws: model.work(),
            model,
            alpha,
            r0,
            rbar: vec![0.0; n],
            dbar: vec![0.0; p],
            d: vec![0.0; p],
            rem: vec![0.0; n],
            j0s: vec![0.0; n],
            e: vec![0.0; n],
            r: vec![0.0; n],
            grad: vec![0.0; p],
            linear_t: f64::NAN,
            prepared_t: Vec::with_capacity(MAX_PREPARED),
            prepared: vec![0.0; 2 * MAX_PREPARED * n],
            model_prepared: false,
        }
    }

    /// R0 = ||r0||² / 2.
    pub fn r0_loss(&self) -> f64 {
        0.5 * self.r0.iter().map(|v| v * v).sum::<f64>()
    }

    /// Fills rbar and dbar at t: from the announced times, or on its own for a
    /// time the integrator did not announce (Rosenbrock stages, measurements).
    fn linear_part(&mut self, t: f64) {
        if t == self.linear_t {
            return;
        }
        let i = match self.prepared_t.iter().position(|&p| p == t) {
            Some(i) => i,
            None => {
                self.prepare(&[t]);
                0
            }
        };
        let (n, k) = (self.rbar.len(), self.prepared_t.len());
        self.rbar.copy_from_slice(&self.prepared[i * n..(i + 1) * n]);
        if self.model_prepared {
            self.model.j0t_prepared(&mut self.ws, i, &mut self.dbar);
        } else {
            let u = &self.prepared[(k + i) * n..(k + i + 1) * n];
            self.model.j0t_mul(&mut self.ws, u, &mut self.dbar);
        }
        self.linear_t = t;
    }

    /// rbar and u/α at the times `ts` (at most MAX_PREPARED), and J0^T (u/α) from
    /// one batched product where the model has one. The scaling by 1/α is on
    /// the n-vectors, not the p-vectors.
    fn prepare(&mut self, ts: &[f64]) {
        let (n, k) = (self.rbar.len(), ts.len());
        let prepared = &mut self.prepared[..2 * k * n];
        self.linear.eval_many(ts, prepared);
        let a = self.alpha;
        let us = &mut prepared[k * n..];
        us.iter_mut().for_each(|v| *v /= a);
        self.model_prepared = self.model.j0t_prepare(&mut self.ws, us);
        self.prepared_t.clear();
        self.prepared_t.extend_from_slice(ts);
    }

    /// d = dbar + s/α².
    fn deviation(&mut self, s: &[f64]) {
        crate::kernels::scaled_sum(&mut self.d, 1.0, &self.dbar, 1.0 / (self.alpha * self.alpha), s);
    }

    /// Fills rbar, dbar, d, rem, e, r at (t, s) and sets the model's deviation.
    pub fn evaluate(&mut self, t: f64, s: &[f64]) {
        self.linear_part(t);
        self.deviation(s);
        self.nonlinear_part(s);
    }

    /// Fills rbar, dbar, d, e, r at (t, s) for a measurement that needs no more
    /// of the model's state: by the model's fused pass without its backward half
    /// where it has one (which leaves the deviation of dj_mul/djt_mul unset).
    pub fn evaluate_outputs(&mut self, t: f64, s: &[f64]) {
        self.linear_part(t);
        self.deviation(s);
        let io = FusedIo { dbar: &self.dbar, s, rbar: &self.rbar, alpha: self.alpha, e: &mut self.e, r: &mut self.r, ds: None };
        if !self.model.fused_rhs(&mut self.ws, io) {
            self.nonlinear_part(s);
        }
    }

    /// The rest of `evaluate`, once `linear_part` is done.
    fn nonlinear_part(&mut self, s: &[f64]) {
        let a = self.alpha;
        let m = &*self.model;
        m.set_deviation(&mut self.ws, &self.d, &mut self.rem);
        m.j0_mul(&mut self.ws, s, &mut self.j0s);
        for j in 0..self.e.len() {
            self.e[j] = -(self.j0s[j] / a + a * self.rem[j]);
            self.r[j] = self.rbar[j] + self.e[j];
        }
    }
}

impl<M: Model> OdeSystem for DeviationFlow<M> {
    fn dim(&self) -> usize {
        self.model.p()
    }

    /// Prepares the linear part at all the announced times (see `prepare`).
    fn upcoming_times(&mut self, ts: &[f64]) {
        if ts.len() <= MAX_PREPARED {
            self.prepare(ts);
        }
    }

    /// 1/λmax(K0): at t = 0 both s and ds/dt vanish, and the deviation starts
    /// on the time scale of the fastest mode of the linear flow that drives it.
    fn time_scale(&self) -> Option<f64> {
        let lmax = self.linear.spectrum.lambda.iter().fold(0.0f64, |m, &l| m.max(l));
        (lmax > 0.0).then(|| 1.0 / lmax)
    }

    fn rhs(&mut self, t: f64, s: &[f64], ds: &mut [f64]) {
        self.linear_part(t);
        let io = FusedIo {
            dbar: &self.dbar,
            s,
            rbar: &self.rbar,
            alpha: self.alpha,
            e: &mut self.e,
            r: &mut self.r,
            ds: Some(&mut *ds),
        };
        if !self.model.fused_rhs(&mut self.ws, io) {
            self.deviation(s);
            self.nonlinear_part(s);
            self.model.pullback(&mut self.ws, &self.e, &self.r, &mut self.grad);
            for (o, g) in ds.iter_mut().zip(&self.grad) {
                *o = self.alpha * g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::TwoLayer;
    use crate::rng::Rng;

    /// The right-hand side at announced times (batched linear part) equals the
    /// one computed time by time; so does an announcement the model cannot batch.
    #[test]
    fn announced_times_do_not_change_the_rhs() {
        let (n, d, m) = (6, 3, 9);
        let mut rng = Rng::new(3);
        let net = TwoLayer::new(rng.normal_vec(n * d, 0.5), n, d, rng.normal_vec(n, 1.0), m, Activation::Tanh, 1, None, true);
        let net = Arc::new(net.unwrap());
        let spectrum = Arc::new(Spectrum::of(&*net).unwrap());
        let s: Vec<f64> = rng.normal_vec(net.p(), 0.2);
        let ts = [0.3, 1.7, 2.5];
        let (mut plain, mut announced) = (vec![0.0; net.p()], vec![0.0; net.p()]);
        let mut flow = DeviationFlow::new(net.clone(), spectrum.clone(), 7.0);
        for announce in [&ts[..], &[0.0; MAX_PREPARED + 1][..]] {
            let mut batched = DeviationFlow::new(net.clone(), spectrum.clone(), 7.0);
            batched.upcoming_times(announce);
            for &t in &ts {
                flow.rhs(t, &s, &mut plain);
                batched.rhs(t, &s, &mut announced);
                let scale = plain.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                for (a, b) in announced.iter().zip(&plain) {
                    assert!((a - b).abs() <= 1e-13 * scale, "t = {t}: {a} vs {b}");
                }
            }
        }
    }

    /// eval_many (one product for k times) against the closed form summed
    /// directly, for the plain-loop (n <= 16) and the product path.
    #[test]
    fn eval_many_matches_the_closed_form() {
        let mut rng = Rng::new(5);
        for n in [6, 40] {
            let lambda: Vec<f64> = rng.normal_vec(n, 1.0).iter().map(|v| v.abs()).collect();
            let vectors = rng.normal_vec(n * n, 1.0);
            let r0 = rng.normal_vec(n, 1.0);
            let spectrum = Arc::new(Spectrum { n, lambda: lambda.clone(), vectors: vectors.clone() });
            let mut flow = LinearFlow::new(spectrum, &r0);
            let ts = [0.0, 1e-3, 0.4, 2.0, 9.0];
            let k = ts.len();
            let mut out = vec![0.0; 2 * k * n];
            flow.eval_many(&ts, &mut out);
            let c: Vec<f64> = (0..n).map(|j| (0..n).map(|i| vectors[i * n + j] * r0[i]).sum()).collect();
            for (i, &t) in ts.iter().enumerate() {
                for r in 0..n {
                    let row = &vectors[r * n..(r + 1) * n];
                    let rbar: f64 = (0..n).map(|j| row[j] * (-lambda[j] * t).exp() * c[j]).sum();
                    let u: f64 = (0..n).map(|j| row[j] * -(-lambda[j] * t).exp_m1() / lambda[j] * c[j]).sum();
                    let scale: f64 = (0..n).map(|j| (row[j] * c[j]).abs()).sum::<f64>() * t.max(1.0);
                    assert!((out[i * n + r] - rbar).abs() <= 1e-14 * scale, "n {n} t {t}: rbar");
                    assert!((out[(k + i) * n + r] - u).abs() <= 1e-14 * scale, "n {n} t {t}: u");
                }
            }
        }
    }

    #[test]
    fn expm1_polynomial_matches_libm() {
        for i in 0..10_000 {
            let x = i as f64 / 10_000.0 + 1e-9 * (i % 7) as f64;
            let (a, b) = (expm1_neg(x), (-x).exp_m1());
            assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "x = {x}: {a} vs {b}");
        }
        assert_eq!(expm1_neg(0.0), 0.0);
    }

    #[test]
    fn decay_and_phi_match_direct_formulas() {
        for (&l, libm) in [0.0, 1e-12, 1e-3, 0.7, 3.0, 50.0].iter().flat_map(|l| [(l, false), (l, true)]) {
            for &t in &[0.0, 1e-6, 0.3, 1.0, 7.0, 1e3] {
                let (e, phi) = decay_and_phi(l, t, libm);
                let e_ref = (-l * t).exp();
                let phi_ref = if l > 0.0 { -(-l * t).exp_m1() / l } else { t };
                assert!((e - e_ref).abs() <= 1e-15 * e_ref.max(1e-300) + 1e-16, "{l} {t} {libm}");
                assert!((phi - phi_ref).abs() <= 1e-14 * phi_ref.abs() + 1e-300, "{l} {t} {libm}");
            }
        }
    }
}
