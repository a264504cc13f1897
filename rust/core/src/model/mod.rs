//! Model families: h, its Jacobian at w0 as a linear operator, and the Taylor
//! remainders the deviation flow needs.
//!
//! Every model describes `h: R^p -> R^n` around `w0`. Besides evaluating `h` and
//! `J = Dh` anywhere (for users and tests), a model implements the operations of
//! the deviation flow at a deviation `d = w - w0`, each computed without
//! cancellation so that it keeps full relative precision when `d` is tiny:
//! `Rem(d) = h(w0+d) - h(w0) - J0 d` and products with `ΔJ(d) = J(w0+d) - J0`.

use std::sync::Arc;

mod converse;
mod linear;
mod quadratic;
mod twolayer;

pub use converse::Converse;
pub use linear::Linear;
pub use quadratic::Quadratic;
pub use twolayer::TwoLayer;

/// Largest number of parameters (and n·m for the two-layer net) a model may have:
/// beyond this the working memory of one run exceeds several GiB.
pub const MAX_PARAMS: usize = 50_000_000;
/// Largest number of outputs: the closed-form linear flow needs an n x n eigendecomposition.
pub const MAX_OUTPUTS: usize = 20_000;
/// Most products `Model::j0t_prepare` computes at once (the stage times of one
/// DOP853 attempt).
pub const MAX_PREPARED: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LipKind {
    /// The reported Lip(Dh) is the exact constant.
    Exact,
    /// The reported Lip(Dh) is an upper bound (valid on the stated ball).
    UpperBound,
}

impl LipKind {
    pub fn name(self) -> &'static str {
        match self {
            LipKind::Exact => "exact",
            LipKind::UpperBound => "upper_bound",
        }
    }
}

pub trait Model: Send + Sync {
    /// Scratch space for one run (allocated once, reused at every step).
    type Work: Send;

    fn family(&self) -> &'static str;
    fn n(&self) -> usize;
    fn p(&self) -> usize;
    fn w0(&self) -> &[f64];
    fn y_star(&self) -> &[f64];
    /// h(w0) (zero for centred models).
    fn h0(&self) -> &[f64];
    fn lip_dh_kind(&self) -> LipKind;
    /// Lip(Dh) on the ball of radius `rho` around w0 (exact, or an upper bound).
    fn lip_dh(&self, rho: f64) -> f64;
    /// Lip(h) on the ball of radius `rho` around w0 (exact or an upper bound; may be inf).
    fn lip_h(&self, rho: f64) -> f64;

    /// h(w) at any w.
    fn h(&self, w: &[f64]) -> Vec<f64>;
    /// J(w), n x p row-major.
    fn jacobian(&self, w: &[f64]) -> Vec<f64>;
    /// K0 = J0 J0^T, n x n row-major.
    fn kernel0(&self) -> Vec<f64>;

    fn work(&self) -> Self::Work;
    /// out = J0 v (n).
    fn j0_mul(&self, ws: &mut Self::Work, v: &[f64], out: &mut [f64]);
    /// out = J0^T q (p).
    fn j0t_mul(&self, ws: &mut Self::Work, q: &[f64], out: &mut [f64]);
    /// Computes J0^T q_i for the rows q_i of `qs` (at most `MAX_PREPARED` rows of n)
    /// in one pass over the model, for `j0t_prepared` to hand out. Returns false
    /// when the model has no such batched form; the caller then uses `j0t_mul`.
    fn j0t_prepare(&self, _ws: &mut Self::Work, _qs: &[f64]) -> bool {
        false
    }
    /// out = J0^T q_i for row i of the last successful `j0t_prepare`.
    fn j0t_prepared(&self, _ws: &mut Self::Work, _i: usize, _out: &mut [f64]) {
        unreachable!("j0t_prepared is only called after j0t_prepare returned true")
    }
    /// Sets the deviation d = w - w0 used by the calls below, and writes
    /// rem = h(w0+d) - h(w0) - J0 d.
    fn set_deviation(&self, ws: &mut Self::Work, d: &[f64], rem: &mut [f64]);
    /// out = J0^T e + ΔJ(d)^T r at the deviation set last.
    fn pullback(&self, ws: &mut Self::Work, e: &[f64], r: &[f64], out: &mut [f64]);
    /// out = ΔJ(d) x (n) at the deviation set last.
    fn dj_mul(&self, ws: &mut Self::Work, x: &[f64], out: &mut [f64]);
    /// out = ΔJ(d)^T y (p) at the deviation set last.
    fn djt_mul(&self, ws: &mut Self::Work, y: &[f64], out: &mut [f64]);
    /// Optional fused right-hand side of the deviation flow (see `flow.rs`): from
    /// dbar, s and rbar (so d = w - w0 = dbar + s/α²), writes
    /// e = r - rbar = -(J0 s)/α - α Rem(d), r and, unless `io.ds` is None (a
    /// measurement, which needs e and r alone), ds/dt = α (J0^T e + ΔJ(d)^T r)
    /// in one pass over the model. Returns false when the model has none (the flow
    /// then calls set_deviation, j0_mul, pullback). Does not set the deviation
    /// used by dj_mul/djt_mul.
    fn fused_rhs(&self, _ws: &mut Self::Work, _io: FusedIo<'_>) -> bool {
        false
    }
    /// K_t - K0 as a dense n x n matrix when the model can form it more cheaply than
    /// a Lanczos iteration (None: use the matrix-free path).
    fn kernel_drift_matrix(&self, _ws: &mut Self::Work) -> Option<Vec<f64>> {
        None
    }
}

/// Arguments of `Model::fused_rhs`.
pub struct FusedIo<'a> {
    /// wbar - w0
    pub dbar: &'a [f64],
    pub s: &'a [f64],
    pub rbar: &'a [f64],
    pub alpha: f64,
    pub e: &'a mut [f64],
    pub r: &'a mut [f64],
    /// ds/dt, or None to compute e and r only
    pub ds: Option<&'a mut [f64]>,
}

/// Any model family, for batches and the bindings (static dispatch through
/// `dispatch!`). Shared, never copied: the runs of one model read the same
/// arrays, so concurrent runs of a sweep share them in cache.
#[derive(Clone, Debug)]
pub enum AnyModel {
    Converse(Arc<Converse>),
    TwoLayer(Arc<TwoLayer>),
    Quadratic(Arc<Quadratic>),
    Linear(Arc<Linear>),
}

/// Runs `$body` with `$m: &M` bound to the concrete model inside a `&AnyModel`.
#[macro_export]
macro_rules! dispatch {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::model::AnyModel::Converse($m) => {
                let $m = &**$m;
                $body
            }
            $crate::model::AnyModel::TwoLayer($m) => {
                let $m = &**$m;
                $body
            }
            $crate::model::AnyModel::Quadratic($m) => {
                let $m = &**$m;
                $body
            }
            $crate::model::AnyModel::Linear($m) => {
                let $m = &**$m;
                $body
            }
        }
    };
}

impl AnyModel {
    pub fn family(&self) -> &'static str {
        dispatch!(self, m => m.family())
    }
    pub fn n(&self) -> usize {
        dispatch!(self, m => m.n())
    }
    pub fn p(&self) -> usize {
        dispatch!(self, m => m.p())
    }
}

/// Dense helpers shared by the models with an explicit Jacobian matrix.
pub(crate) mod dense {
    /// out = A x with A (rows x cols) row-major.
    pub fn mat_vec(a: &[f64], rows: usize, cols: usize, x: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate().take(rows) {
            *o = dot(&a[i * cols..(i + 1) * cols], x);
        }
    }

    /// out = A^T y with A (rows x cols) row-major.
    pub fn mat_t_vec(a: &[f64], rows: usize, cols: usize, y: &[f64], out: &mut [f64]) {
        out[..cols].fill(0.0);
        for i in 0..rows {
            let yi = y[i];
            for (o, aij) in out.iter_mut().zip(&a[i * cols..(i + 1) * cols]) {
                *o += aij * yi;
            }
        }
    }

    /// A A^T (rows x rows) for A (rows x cols) row-major.
    pub fn gram(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut k = vec![0.0; rows * rows];
        for i in 0..rows {
            for j in 0..=i {
                let v = dot(&a[i * cols..(i + 1) * cols], &a[j * cols..(j + 1) * cols]);
                k[i * rows + j] = v;
                k[j * rows + i] = v;
            }
        }
        k
    }

    pub use crate::kernels::dot;
}

#[cfg(test)]
pub(crate) mod testing {
    //! Finite-difference checks shared by the model tests.
    use super::Model;

    /// Max relative error of J(w) against central differences of h at w.
    pub fn jacobian_fd_error<M: Model>(m: &M, w: &[f64]) -> f64 {
        let (n, p) = (m.n(), m.p());
        let jac = m.jacobian(w);
        let mut worst: f64 = 0.0;
        let scale = jac.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-300);
        for k in 0..p {
            let h = 1e-6 * (1.0 + w[k].abs());
            let mut wp = w.to_vec();
            let mut wm = w.to_vec();
            wp[k] += h;
            wm[k] -= h;
            let (fp, fm) = (m.h(&wp), m.h(&wm));
            for j in 0..n {
                let fd = (fp[j] - fm[j]) / (2.0 * h);
                worst = worst.max((fd - jac[j * p + k]).abs() / scale);
            }
        }
        worst
    }

    /// Checks the deviation operations against h and J evaluated directly at a
    /// moderate deviation (where direct subtraction is accurate enough).
    pub fn check_deviation_ops<M: Model>(m: &M, d: &[f64], tol: f64) {
        let (n, p) = (m.n(), m.p());
        let w0 = m.w0().to_vec();
        let w: Vec<f64> = w0.iter().zip(d).map(|(a, b)| a + b).collect();
        let (h0, h1) = (m.h(&w0), m.h(&w));
        let (j0, j1) = (m.jacobian(&w0), m.jacobian(&w));
        let mut ws = m.work();
        let mut rem = vec![0.0; n];
        m.set_deviation(&mut ws, d, &mut rem);
        let mut j0d = vec![0.0; n];
        super::dense::mat_vec(&j0, n, p, d, &mut j0d);
        let rel = |a: f64, b: f64, s: f64| (a - b).abs() / s.max(1e-300);
        for j in 0..n {
            let direct = h1[j] - h0[j] - j0d[j];
            let s = h1[j].abs().max(h0[j].abs()).max(1.0) * 1e-12 + direct.abs();
            assert!(rel(rem[j], direct, s) < tol, "rem[{j}] {} vs {direct}", rem[j]);
        }
        // pullback with e, r
        let e: Vec<f64> = (0..n).map(|j| 0.3 + 0.1 * j as f64).collect();
        let r: Vec<f64> = (0..n).map(|j| 1.0 - 0.2 * j as f64).collect();
        let mut out = vec![0.0; p];
        m.pullback(&mut ws, &e, &r, &mut out);
        let mut a = vec![0.0; p];
        let mut b = vec![0.0; p];
        let mut c = vec![0.0; p];
        super::dense::mat_t_vec(&j0, n, p, &e, &mut a);
        super::dense::mat_t_vec(&j1, n, p, &r, &mut b);
        super::dense::mat_t_vec(&j0, n, p, &r, &mut c);
        let s = out.iter().fold(0.0f64, |x, y| x.max(y.abs()));
        for k in 0..p {
            let direct = a[k] + b[k] - c[k];
            assert!(rel(out[k], direct, s) < tol, "pullback[{k}] {} vs {direct}", out[k]);
        }
        // dj_mul, djt_mul, j0_mul, j0t_mul
        let x: Vec<f64> = (0..p).map(|k| ((k * 7 % 5) as f64 - 2.0) * 0.1).collect();
        let mut dj = vec![0.0; n];
        m.dj_mul(&mut ws, &x, &mut dj);
        let mut j1x = vec![0.0; n];
        let mut j0x = vec![0.0; n];
        super::dense::mat_vec(&j1, n, p, &x, &mut j1x);
        super::dense::mat_vec(&j0, n, p, &x, &mut j0x);
        let mut j0x_op = vec![0.0; n];
        m.j0_mul(&mut ws, &x, &mut j0x_op);
        for j in 0..n {
            let s = j1x[j].abs().max(1e-3);
            assert!(rel(dj[j], j1x[j] - j0x[j], s) < tol, "dj[{j}]");
            assert!(rel(j0x_op[j], j0x[j], s) < 1e-12, "j0_mul[{j}]");
        }
        let mut djt = vec![0.0; p];
        m.djt_mul(&mut ws, &r, &mut djt);
        let mut j0t = vec![0.0; p];
        m.j0t_mul(&mut ws, &r, &mut j0t);
        for k in 0..p {
            let s = b[k].abs().max(1e-3);
            assert!(rel(djt[k], b[k] - c[k], s) < tol, "djt[{k}]");
            assert!(rel(j0t[k], c[k], s) < 1e-12, "j0t_mul[{k}]");
        }
        // kernel0
        let k0 = m.kernel0();
        let k0_dense = super::dense::gram(&j0, n, p);
        for (a, b) in k0.iter().zip(&k0_dense) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
        }
        if let Some(dk) = m.kernel_drift_matrix(&mut ws) {
            let k1 = super::dense::gram(&j1, n, p);
            for i in 0..n * n {
                assert!((dk[i] - (k1[i] - k0_dense[i])).abs() < tol * (1.0 + k1[i].abs()), "dK[{i}]");
            }
        }
    }
}
