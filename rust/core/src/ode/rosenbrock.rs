//! Rodas4 (Hairer & Wanner, "Solving ODEs II", IV.7; coefficients of their
//! `rodas.f`, METH = 1): a stiffly accurate, L-stable Rosenbrock method of
//! order 4 with an embedded order-3 solution and a 3rd-order dense output.
//!
//! Each stage solves `(I/(hγ) - J) k_i = f(t + c_i h, u_i) + h d_i ∂f/∂t +
//! Σ_j (C_ij / h) k_j`, with `u_i = y + Σ_j A_ij k_j`; `y_new = u_6 + k_6` and
//! `k_6` is the error estimate. `J = ∂f/∂y` and `∂f/∂t` come from finite
//! differences (dim + 1 evaluations per step), so the method suits stiff
//! systems of modest dimension; the matrix is factored by faer's LU.

// Hairer's literals carry 16 significant digits; they are kept verbatim.
#![allow(clippy::excessive_precision)]

use super::tableau::{DenseScheme, ErrorEstimator, Tableau};
use super::OdeSystem;
use crate::kernels::axpy;
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::perm::PermRef;
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::{MatMut, MatRef, Par};

/// Largest system Rodas4 accepts: the Jacobian costs `dim` evaluations and an
/// LU of `dim³/3` flops per step.
pub const MAX_DIM: usize = 200;

const GAMMA: f64 = 0.25;
/// Stage times.
pub(crate) const C: [f64; 6] = [0.0, 0.386, 0.21, 0.63, 1.0, 1.0];
/// Weights of h ∂f/∂t in each stage (zero in the last two).
const D: [f64; 6] = [0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0];
/// Stage arguments: u_i = y + Σ_j A[i][j] k_j (stage 6 adds k_5 to stage 5's).
const A: [&[f64]; 6] = [
    &[],
    &[1.544000000000000],
    &[0.9466785280815826, 0.2557011698983284],
    &[3.314825187068521, 2.896124015972201, 0.9986419139977817],
    &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950],
    &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0],
];
/// y_new = y + Σ_j B[j] k_j.
const B: [f64; 6] = [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0, 1.0];
/// Stage couplings: C[i][j] / h multiplies k_j in stage i.
const CC: [&[f64]; 6] = [
    &[],
    &[-5.668800000000000],
    &[-2.430093356833875, -0.2063599157091915],
    &[-0.1073529058151375, -9.594562251023355, -20.47028614809616],
    &[7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160],
    &[8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054],
];
/// Dense output: y(t + θh) = (1-θ) y + θ (y_new + (1-θ)(H[0]·k + θ H[1]·k)).
pub(crate) const H: [[f64; 6]; 2] = [
    [10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823, 1.025137723295662, 0.0],
    [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386, -6.594389125716872, 0.0],
];

/// The shape of the method for the shared solver: 6 stage increments plus the
/// FSAL evaluation f(t + h, y_new) in `k`, two dense-output rows. Its Runge–Kutta
/// coefficients are unused (the stepping is in this file).
pub(crate) static SHAPE: Tableau = Tableau {
    order: 4,
    error_estimator_order: 3,
    n_stages: 6,
    c: &C,
    a: &A,
    b: &B,
    error: ErrorEstimator::Embedded(&[]),
    dense: DenseScheme::Polynomial { p: &[] },
    k_rows: 7,
    dense_rows: 2,
};

/// Work arrays of the Rosenbrock steps (allocated once).
pub(crate) struct Work {
    n: usize,
    /// J = ∂f/∂y at the start of the step, column-major.
    jac: Vec<f64>,
    /// ∂f/∂t at the start of the step.
    fx: Vec<f64>,
    /// Whether `jac` and `fx` belong to the current (t, y).
    fresh: bool,
    /// LU factors of I/(hγ) - J, column-major, and the row permutation.
    lu: Vec<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    mem: MemBuffer,
    /// A perturbed state and its right-hand side (finite differences).
    y_pert: Vec<f64>,
    f_pert: Vec<f64>,
}

impl Work {
    pub fn new(n: usize) -> Work {
        let req = StackReq::any_of(&[
            factor::lu_in_place_scratch::<usize, f64>(n, n, Par::Seq, Default::default()),
            solve::solve_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
        ]);
        Work {
            n,
            jac: vec![0.0; n * n],
            fx: vec![0.0; n],
            fresh: false,
            lu: vec![0.0; n * n],
            perm: vec![0; n],
            perm_inv: vec![0; n],
            mem: MemBuffer::new(req),
            y_pert: vec![0.0; n],
            f_pert: vec![0.0; n],
        }
    }

    /// The Jacobian changes with (t, y): recompute it at the next attempt.
    pub fn invalidate(&mut self) {
        self.fresh = false;
    }

    /// J and ∂f/∂t at (t, y) by forward differences (Hairer's increments
    /// sqrt(eps · max(1e-5, |y_j|)) in y, `dt = time_increment(t)` in t);
    /// returns the evaluations used.
    fn differentiate<S: OdeSystem>(&mut self, sys: &mut S, t: f64, dt: f64, y: &[f64], f: &[f64]) -> u64 {
        let n = self.n;
        self.y_pert.copy_from_slice(y);
        for (j, col) in self.jac.chunks_exact_mut(n).enumerate() {
            let delta = (f64::EPSILON * y[j].abs().max(1e-5)).sqrt();
            self.y_pert[j] = y[j] + delta;
            let delta = self.y_pert[j] - y[j];
            sys.rhs(t, &self.y_pert, &mut self.f_pert);
            self.y_pert[j] = y[j];
            forward_difference(col, &self.f_pert, f, delta);
        }
        sys.rhs(t + dt, y, &mut self.f_pert);
        forward_difference(&mut self.fx, &self.f_pert, f, dt);
        self.fresh = true;
        n as u64 + 1
    }

    fn factor(&mut self, h: f64) {
        let n = self.n;
        let diag = 1.0 / (h * GAMMA);
        for (e, j) in self.lu.iter_mut().zip(&self.jac) {
            *e = -j;
        }
        for i in 0..n {
            self.lu[i * n + i] += diag;
        }
        if n == 1 {
            return;
        }
        factor::lu_in_place(
            MatMut::from_column_major_slice_mut(&mut self.lu, n, n),
            &mut self.perm,
            &mut self.perm_inv,
            Par::Seq,
            MemStack::new(&mut self.mem),
            Default::default(),
        );
    }

    #[inline]
    fn solve(&mut self, x: &mut [f64]) {
        if self.n == 1 {
            // A scalar system is one division (faer's general path costs far more).
            x[0] /= self.lu[0];
        } else {
            self.solve_general(x);
        }
    }

    fn solve_general(&mut self, x: &mut [f64]) {
        let n = self.n;
        let lu = MatRef::from_column_major_slice(&self.lu, n, n);
        // L (unit lower) and U share the in-place factors.
        let perm = PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let rhs = MatMut::from_column_major_slice_mut(x, n, 1);
        solve::solve_in_place(lu, lu, perm, rhs, Par::Seq, MemStack::new(&mut self.mem));
    }
}

/// The step of the forward difference in t (exactly representable as t + dt - t).
fn time_increment(t: f64) -> f64 {
    let dt = (f64::EPSILON * t.abs().max(1e-5)).sqrt();
    (t + dt) - t
}

/// out = (f_pert - f) / delta
fn forward_difference(out: &mut [f64], f_pert: &[f64], f: &[f64], delta: f64) {
    for ((o, fp), f) in out.iter_mut().zip(f_pert).zip(f) {
        *o = (fp - f) / delta;
    }
}

/// One Rodas4 attempt of size `h` from (t, y) with f = f(t, y): fills the
/// increments `k[0..6]`, `y_new` and the FSAL evaluation `k[6] = f(t + h, y_new)`.
/// `u` is scratch. Returns the evaluations used.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attempt<S: OdeSystem>(
    w: &mut Work,
    sys: &mut S,
    t: f64,
    h: f64,
    y: &[f64],
    f: &[f64],
    k: &mut [f64],
    y_new: &mut [f64],
    u: &mut [f64],
) -> u64 {
    let n = w.n;
    let mut nfev = 0;
    // the time derivative's evaluation (when the Jacobian is due), then the
    // stages' (the last two and the FSAL evaluation share t + h)
    let dt = time_increment(t);
    let times = [t + dt, t + C[1] * h, t + C[2] * h, t + C[3] * h, t + h];
    sys.upcoming_times(if w.fresh { &times[1..] } else { &times });
    if !w.fresh {
        nfev += w.differentiate(sys, t, dt, y, f);
    }
    w.factor(h);
    for s in 0..6 {
        let (done, rest) = k.split_at_mut(s * n);
        let ks = &mut rest[..n];
        if s == 0 {
            ks.copy_from_slice(f);
        } else {
            u.copy_from_slice(y);
            for (j, &a) in A[s].iter().enumerate() {
                axpy(u, a, &done[j * n..(j + 1) * n]);
            }
            sys.rhs(t + C[s] * h, u, ks);
            nfev += 1;
            for (j, &c) in CC[s].iter().enumerate() {
                axpy(ks, c / h, &done[j * n..(j + 1) * n]);
            }
        }
        if D[s] != 0.0 {
            axpy(ks, h * D[s], &w.fx);
        }
        w.solve(ks);
    }
    y_new.copy_from_slice(y);
    for (j, &b) in B.iter().enumerate() {
        axpy(y_new, b, &k[j * n..(j + 1) * n]);
    }
    sys.rhs(t + h, y_new, &mut k[6 * n..7 * n]);
    nfev + 1
}
