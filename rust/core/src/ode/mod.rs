//! Adaptive explicit Runge–Kutta integrators with dense output.
//!
//! A faithful port of SciPy's `scipy/integrate/_ivp/rk.py` (`RK45` =
//! Dormand–Prince 5(4), `DOP853` = Dormand–Prince 8(5,3)) together with
//! `select_initial_step` and the RMS error norm of `common.py`. Same
//! coefficients, same error estimators, same step-size controller, same
//! clipping at the end point: on the same problem and tolerances the solver
//! takes the same steps as `scipy.integrate.solve_ivp` (same `nfev`, accepted
//! and rejected steps, up to floating-point ties).
//!
//! Both methods run through one implementation ([`Solver`]) parameterised by a
//! Butcher tableau (`tableau.rs`). All work arrays are allocated in [`Solver::new`];
//! `init`, `step`, `prepare_dense` and `interpolate` never allocate.
//!
//! Dense output is lazy, as in SciPy, where `solver.dense_output()` is only
//! called for the steps that contain a requested time: after each accepted
//! step, call [`Solver::prepare_dense`] (once or more, it is idempotent)
//! before [`Solver::interpolate`]. For DOP853 this evaluates the three extra
//! stages of the interpolant and counts them in `nfev`, exactly where SciPy
//! counts them. (`interpolate` takes `&self` and has no access to the right-hand
//! side, hence the separate call; `interpolate` panics if it was skipped.)
//!
//! To reproduce the `nfev` of `solve_ivp(..., t_eval=ts)`: call
//! `prepare_dense` in exactly the steps in which SciPy builds a dense output,
//! i.e. the steps whose interval `(t_prev, t]` (for the first step
//! `[t0, t1]`) contains an element of `ts`.

mod rosenbrock;
mod tableau;

pub use rosenbrock::MAX_DIM as ROSENBROCK_MAX_DIM;

use std::fmt;

use tableau::{DenseScheme, ErrorEstimator, Tableau};

/// Step-size controller constants of `rk.py`.
const SAFETY: f64 = 0.9;
/// Minimum allowed decrease in a step size.
const MIN_FACTOR: f64 = 0.2;
/// Maximum allowed increase in a step size.
const MAX_FACTOR: f64 = 10.0;

/// The right-hand side of `y' = f(t, y)`.
pub trait OdeSystem {
    fn dim(&self) -> usize;
    /// dy = f(t, y). Must not allocate. May fill dy with non-finite values (the solver detects it).
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]);
    /// The times of the evaluations that follow (the stages of one attempt, or
    /// the extra stages of a dense output), so that work depending on t alone
    /// can be done for all of them at once. A hint: `rhs` must not rely on it.
    fn upcoming_times(&mut self, _ts: &[f64]) {}
    /// The fastest time scale of the solution, when the system knows it. Used
    /// for the first step when y0 or f(t0, y0) is zero, where SciPy's estimate
    /// has nothing to scale by and falls back to an absolute 1e-4.
    fn time_scale(&self) -> Option<f64> {
        None
    }
}

/// Most stages of one attempt (DOP853: 11 stages and the FSAL evaluation).
const MAX_STAGE_TIMES: usize = 12;

/// Integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Dormand–Prince 8(5,3) with 7th-order dense output (SciPy `DOP853`).
    Dop853,
    /// Dormand–Prince 5(4) with 4th-order dense output (SciPy `RK45`).
    Dopri5,
    /// Rodas4, a stiffly accurate Rosenbrock method of order 4 (for stiff
    /// systems of at most `ROSENBROCK_MAX_DIM` unknowns).
    Rodas4,
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Dop853 => "dop853",
            Method::Dopri5 => "dopri5",
            Method::Rodas4 => "rodas4",
        }
    }

    /// Accepts the names of [`Method::name`] and SciPy's names (`"DOP853"`,
    /// `"RK45"`), case-insensitively.
    pub fn parse(s: &str) -> Option<Method> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("dop853") {
            Some(Method::Dop853)
        } else if s.eq_ignore_ascii_case("dopri5") || s.eq_ignore_ascii_case("rk45") {
            Some(Method::Dopri5)
        } else if s.eq_ignore_ascii_case("rodas4") || s.eq_ignore_ascii_case("rodas") {
            Some(Method::Rodas4)
        } else {
            None
        }
    }

    /// Whether outputs may come from the dense output; Rodas4's is one order below
    /// its steps and loses accuracy on stiff components, so its runs land on them.
    pub fn interpolates_outputs(&self) -> bool {
        *self != Method::Rodas4
    }

    /// Order of the propagated solution (8, 5 or 4).
    pub fn order(&self) -> usize {
        self.tableau().order
    }

    fn tableau(&self) -> &'static Tableau {
        match self {
            Method::Dop853 => &tableau::DOP853,
            Method::Dopri5 => &tableau::RK45,
            Method::Rodas4 => &rosenbrock::SHAPE,
        }
    }
}

/// Tolerances and limits (scalar `rtol`/`atol` as in SciPy).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub rtol: f64,
    pub atol: f64,
    /// Maximum number of attempted (accepted + rejected) steps since `init`.
    pub max_steps: u64,
    /// First step size; `None` lets `select_initial_step` choose.
    pub first_step: Option<f64>,
    /// Upper bound on the step size.
    pub max_step: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rtol: 1e-8,
            atol: 1e-12,
            max_steps: 1_000_000,
            first_step: None,
            max_step: f64::INFINITY,
        }
    }
}

/// Work counters, as SciPy counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Right-hand side evaluations (including `select_initial_step`'s and the
    /// DOP853 dense-output stages).
    pub nfev: u64,
    pub naccept: u64,
    pub nreject: u64,
}

/// Why the integration cannot go on from `t` (the last accepted point).
#[derive(Clone, Debug, PartialEq)]
pub enum StepError {
    StepSizeUnderflow { t: f64, h: f64 },
    MaxSteps { t: f64, max_steps: u64 },
    NonFinite { t: f64 },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StepError::StepSizeUnderflow { t, h } => write!(
                f,
                "step size underflow at t = {t:e} (h = {h:e}): the problem is too stiff or singular for the tolerances"
            ),
            StepError::MaxSteps { t, max_steps } => write!(
                f,
                "maximum number of steps ({max_steps}) reached at t = {t:e}: raise max_steps or loosen the tolerances"
            ),
            StepError::NonFinite { t } => write!(
                f,
                "non-finite value (NaN or infinity) in the solution or the right-hand side at t = {t:e}"
            ),
        }
    }
}

impl std::error::Error for StepError {}

/// Adaptive Runge–Kutta solver (one instance integrates one trajectory at a
/// time; `init` restarts it).
pub struct Solver {
    method: Method,
    tab: &'static Tableau,
    n: usize,
    opts: Options,

    initialized: bool,
    t: f64,
    t_prev: f64,
    t_end: f64,
    /// Steps also end exactly here when it lies ahead (see [`Solver::stop_at`]).
    t_stop: f64,
    /// Step size proposed for the next step (SciPy's `h_abs`).
    h_abs: f64,
    /// Last accepted step `t - t_prev` (SciPy's `h_previous`).
    h_prev: f64,

    y: Vec<f64>,
    y_old: Vec<f64>,
    /// f(t, y): first stage of the next step (FSAL).
    f: Vec<f64>,
    /// Candidate solution of the current attempt.
    y_new: Vec<f64>,
    /// Stage arguments, then error-estimate scratch.
    work: Vec<f64>,
    /// Second error-estimate scratch (DOP853's 3rd-order estimate).
    work2: Vec<f64>,
    /// Stages, `tab.k_rows` rows of length `n`; row `n_stages` is f(t_new, y_new).
    k: Vec<f64>,
    /// Dense-output coefficients (`Q^T` for RK45, `F` for DOP853), row-major.
    dense: Vec<f64>,
    /// Whether `dense` describes the last accepted step.
    dense_ready: bool,
    /// Jacobian and LU work of Rodas4 (None for the explicit methods).
    rosenbrock: Option<Box<rosenbrock::Work>>,

    stats: Stats,
}

impl Solver {
    /// Allocates every work array. Panics on invalid options (negative or
    /// non-finite tolerances, non-positive `max_step` or `first_step`).
    pub fn new(method: Method, dim: usize, opts: Options) -> Solver {
        assert!(
            opts.rtol.is_finite() && opts.rtol >= 0.0,
            "ode::Options: rtol must be finite and >= 0"
        );
        assert!(
            opts.atol.is_finite() && opts.atol >= 0.0,
            "ode::Options: atol must be finite and >= 0"
        );
        assert!(opts.max_step > 0.0, "ode::Options: max_step must be > 0");
        if let Some(h) = opts.first_step {
            assert!(
                h.is_finite() && h > 0.0,
                "ode::Options: first_step must be finite and > 0"
            );
        }
        // SciPy's validate_tol: rtol below 100 eps is raised to 100 eps.
        let opts = Options {
            rtol: opts.rtol.max(100.0 * f64::EPSILON),
            ..opts
        };
        let tab = method.tableau();
        Solver {
            method,
            tab,
            n: dim,
            opts,
            initialized: false,
            t: 0.0,
            t_prev: 0.0,
            t_end: 0.0,
            t_stop: f64::INFINITY,
            h_abs: 0.0,
            h_prev: 0.0,
            y: vec![0.0; dim],
            y_old: vec![0.0; dim],
            f: vec![0.0; dim],
            y_new: vec![0.0; dim],
            work: vec![0.0; dim],
            work2: vec![0.0; dim],
            k: vec![0.0; tab.k_rows * dim],
            dense: vec![0.0; tab.dense_rows * dim],
            dense_ready: false,
            rosenbrock: (method == Method::Rodas4).then(|| Box::new(rosenbrock::Work::new(dim))),
            stats: Stats::default(),
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn dim(&self) -> usize {
        self.n
    }

    /// The options in force (`rtol` after SciPy's floor of 100 eps).
    pub fn options(&self) -> Options {
        self.opts
    }

    /// Start at (t0, y0), integrating towards t_end > t0 (forward only). Evaluates f(t0,y0) and picks the first step.
    pub fn init<S: OdeSystem>(
        &mut self,
        sys: &mut S,
        t0: f64,
        y0: &[f64],
        t_end: f64,
    ) -> Result<(), StepError> {
        assert_eq!(
            y0.len(),
            self.n,
            "ode::Solver::init: y0 has the wrong length"
        );
        assert_eq!(
            sys.dim(),
            self.n,
            "ode::Solver::init: system dimension differs from the solver's"
        );
        assert!(
            t0.is_finite() && t_end.is_finite(),
            "ode::Solver::init: t0 and t_end must be finite"
        );
        assert!(
            t_end >= t0,
            "ode::Solver::init: only forward integration (t_end >= t0) is supported"
        );

        self.initialized = false;
        self.t = t0;
        self.t_prev = t0;
        self.t_end = t_end;
        self.t_stop = f64::INFINITY;
        self.h_prev = 0.0;
        self.stats = Stats::default();
        // A zero-length interval [t0, t0] interpolates as the constant y0.
        self.dense_ready = true;
        self.y.copy_from_slice(y0);
        self.y_old.copy_from_slice(y0);
        if !all_finite(&self.y) {
            return Err(StepError::NonFinite { t: t0 });
        }

        sys.rhs(t0, &self.y, &mut self.f);
        self.stats.nfev += 1;
        if !all_finite(&self.f) {
            return Err(StepError::NonFinite { t: t0 });
        }

        self.h_abs = match self.opts.first_step {
            None => self.select_initial_step(sys),
            Some(h) => h,
        };
        self.initialized = true;
        Ok(())
    }

    /// SciPy's `select_initial_step` (Hairer, Nørsett & Wanner, II.4), with
    /// the error estimator's order. One extra rhs evaluation, counted. When y0
    /// or f(t0, y0) vanishes and the system gives its time scale, that scale
    /// sets the step instead (no evaluation).
    fn select_initial_step<S: OdeSystem>(&mut self, sys: &mut S) -> f64 {
        if self.n == 0 {
            return f64::INFINITY;
        }
        let interval_length = (self.t_end - self.t).abs();
        if interval_length == 0.0 {
            return 0.0;
        }
        let (rtol, atol) = (self.opts.rtol, self.opts.atol);
        let order = self.tab.error_estimator_order as f64;

        let mut d0 = 0.0;
        let mut d1 = 0.0;
        for (&y, &f) in self.y.iter().zip(&self.f) {
            let scale = atol + y.abs() * rtol;
            d0 += (y / scale) * (y / scale);
            d1 += (f / scale) * (f / scale);
        }
        let d0 = rms(d0, self.n);
        let d1 = rms(d1, self.n);
        let no_scale = d0 < 1e-5 || d1 < 1e-5;
        if let Some(tau) = sys.time_scale().filter(|&tau| no_scale && tau > 0.0 && tau.is_finite()) {
            // A local error of about rtol relative for a component varying on the
            // scale tau: (h/tau)^(order+1) = rtol. The error control corrects it.
            let h = tau * rtol.powf(1.0 / (order + 1.0));
            return py_min(py_min(h, interval_length), self.opts.max_step);
        }
        let h0 = if no_scale {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        // Do not evaluate f beyond t_end.
        let h0 = py_min(h0, interval_length);

        for ((y1, &y), &f) in self.work.iter_mut().zip(&self.y).zip(&self.f) {
            *y1 = y + h0 * f;
        }
        let f1 = &mut self.k[..self.n];
        sys.rhs(self.t + h0, &self.work, f1);
        self.stats.nfev += 1;

        let mut d2 = 0.0;
        for ((&y, &f0), &f1) in self.y.iter().zip(&self.f).zip(f1.iter()) {
            let scale = atol + y.abs() * rtol;
            let q = (f1 - f0) / scale;
            d2 += q * q;
        }
        let d2 = rms(d2, self.n) / h0;

        let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
            py_max(1e-6, h0 * 1e-3)
        } else {
            (0.01 / py_max(d1, d2)).powf(1.0 / (order + 1.0))
        };
        py_min(
            py_min(py_min(100.0 * h0, h1), interval_length),
            self.opts.max_step,
        )
    }

    /// Take one accepted step (rejected attempts are retried inside, counted in stats). Never steps past t_end.
    /// After it returns Ok, dense output is valid on [t_prev(), t()] (after [`Solver::prepare_dense`]).
    ///
    /// A no-op once [`Solver::finished`]. On error the solver stays at the
    /// last accepted point.
    pub fn step<S: OdeSystem>(&mut self, sys: &mut S) -> Result<(), StepError> {
        assert!(
            self.initialized,
            "ode::Solver::step called before a successful init"
        );
        if self.finished() {
            return Ok(());
        }
        if self.n == 0 {
            // SciPy's corner case: nothing to integrate, jump to the end.
            self.t_prev = self.t;
            self.t = self.t_end;
            self.dense_ready = true;
            return Ok(());
        }

        let t = self.t;
        let min_step = 10.0 * (next_up(t) - t).abs();
        let mut h_abs = if self.h_abs > self.opts.max_step {
            self.opts.max_step
        } else if self.h_abs < min_step {
            min_step
        } else {
            self.h_abs
        };
        let exponent = -1.0 / (self.tab.error_estimator_order as f64 + 1.0);
        let mut rejected = false;
        // Whether the last rejection was caused by NaN/inf rather than by a large error.
        let mut non_finite = false;

        loop {
            if h_abs < min_step {
                self.h_abs = h_abs;
                return Err(if non_finite {
                    StepError::NonFinite { t }
                } else {
                    StepError::StepSizeUnderflow { t, h: h_abs }
                });
            }
            if self.stats.naccept + self.stats.nreject >= self.opts.max_steps {
                self.h_abs = h_abs;
                return Err(StepError::MaxSteps {
                    t,
                    max_steps: self.opts.max_steps,
                });
            }

            let t_limit = if self.t_stop > t { self.t_stop.min(self.t_end) } else { self.t_end };
            let t_new = if t + h_abs > t_limit { t_limit } else { t + h_abs };
            let h = t_new - t;
            h_abs = h.abs();

            let error_norm = if self.rosenbrock.is_some() {
                self.rosenbrock_attempt(sys, h)
            } else {
                self.rk_attempt(sys, h);
                self.error_norm(h)
            };
            let ns = self.tab.n_stages;
            // SciPy rejects such attempts too (a NaN/inf error norm is never < 1,
            // and max(MIN_FACTOR, nan) is MIN_FACTOR); we just say why if h underflows.
            let finite = error_norm.is_finite()
                && all_finite(&self.y_new)
                && all_finite(&self.k[ns * self.n..(ns + 1) * self.n]);

            if finite && error_norm < 1.0 {
                let mut factor = if error_norm == 0.0 {
                    MAX_FACTOR
                } else {
                    py_min(MAX_FACTOR, SAFETY * error_norm.powf(exponent))
                };
                // No growth right after a rejection.
                if rejected {
                    factor = py_min(1.0, factor);
                }
                h_abs *= factor;
                self.accept(t_new, h, h_abs);
                return Ok(());
            }

            let factor = if finite {
                py_max(MIN_FACTOR, SAFETY * error_norm.powf(exponent))
            } else {
                MIN_FACTOR
            };
            h_abs *= factor;
            rejected = true;
            non_finite = !finite;
            self.stats.nreject += 1;
        }
    }

    /// One Runge–Kutta attempt of size `h` from (t, y) (`rk_step` of rk.py):
    /// fills the stages `k[0..=n_stages]` and `y_new`.
    fn rk_attempt<S: OdeSystem>(&mut self, sys: &mut S, h: f64) {
        let n = self.n;
        let tab = self.tab;
        let t = self.t;
        self.k[..n].copy_from_slice(&self.f);
        let mut ts = [0.0; MAX_STAGE_TIMES];
        for s in 1..tab.n_stages {
            ts[s - 1] = t + tab.c[s] * h;
        }
        ts[tab.n_stages - 1] = t + h;
        sys.upcoming_times(&ts[..tab.n_stages]);
        for s in 1..tab.n_stages {
            stage_argument(&self.k, n, tab.a[s], h, &self.y, &mut self.work);
            sys.rhs(
                t + tab.c[s] * h,
                &self.work,
                &mut self.k[s * n..(s + 1) * n],
            );
            self.stats.nfev += 1;
        }
        // y_new = y + h * K^T B, then the FSAL evaluation f(t + h, y_new).
        combine(&self.k, n, tab.b, &mut self.y_new);
        for (yn, &y) in self.y_new.iter_mut().zip(&self.y) {
            *yn = y + h * *yn;
        }
        let ns = tab.n_stages;
        sys.rhs(t + h, &self.y_new, &mut self.k[ns * n..(ns + 1) * n]);
        self.stats.nfev += 1;
    }

    /// One Rodas4 attempt (see `rosenbrock.rs`); returns the RMS norm of the
    /// error estimate k_6 scaled by `atol + max(|y|, |y_new|) * rtol`.
    fn rosenbrock_attempt<S: OdeSystem>(&mut self, sys: &mut S, h: f64) -> f64 {
        let work = self.rosenbrock.as_mut().expect("Rodas4 work arrays");
        let (y, f) = (&self.y, &self.f);
        self.stats.nfev += rosenbrock::attempt(work, sys, self.t, h, y, f, &mut self.k, &mut self.y_new, &mut self.work);
        let n = self.n;
        scaled_rms(&self.k[5 * n..6 * n], 1.0, &self.y, &self.y_new, self.opts)
    }

    /// SciPy's `_estimate_error_norm` with
    /// `scale = atol + max(|y|, |y_new|) * rtol`.
    fn error_norm(&mut self, h: f64) -> f64 {
        let n = self.n;
        let (rtol, atol) = (self.opts.rtol, self.opts.atol);
        let scale = |y: f64, yn: f64| atol + y.abs().max(yn.abs()) * rtol;
        match self.tab.error {
            ErrorEstimator::Embedded(e) => {
                // norm(h * K^T E / scale), RMS.
                combine(&self.k, n, e, &mut self.work);
                scaled_rms(&self.work, h, &self.y, &self.y_new, self.opts)
            }
            ErrorEstimator::Dop853 { e5, e3 } => {
                // |h| * |err5|^2 / sqrt((|err5|^2 + 0.01 |err3|^2) * n), both scaled.
                combine(&self.k, n, e5, &mut self.work);
                combine(&self.k, n, e3, &mut self.work2);
                let (mut s5, mut s3) = (0.0, 0.0);
                for (((&e5, &e3), &y), &yn) in self
                    .work
                    .iter()
                    .zip(&self.work2)
                    .zip(&self.y)
                    .zip(&self.y_new)
                {
                    let sc = scale(y, yn);
                    let (q5, q3) = (e5 / sc, e3 / sc);
                    s5 += q5 * q5;
                    s3 += q3 * q3;
                }
                // SciPy squares np.linalg.norm (= sqrt of the sum): keep its rounding.
                let err5_norm_2 = s5.sqrt().powi(2);
                let err3_norm_2 = s3.sqrt().powi(2);
                if err5_norm_2 == 0.0 && err3_norm_2 == 0.0 {
                    return 0.0;
                }
                let denom = err5_norm_2 + 0.01 * err3_norm_2;
                h.abs() * err5_norm_2 / (denom * n as f64).sqrt()
            }
        }
    }

    /// Moves to the accepted point (t_new, y_new); the FSAL stage becomes `f`.
    fn accept(&mut self, t_new: f64, h: f64, h_abs_next: f64) {
        let n = self.n;
        let ns = self.tab.n_stages;
        std::mem::swap(&mut self.y_old, &mut self.y);
        std::mem::swap(&mut self.y, &mut self.y_new);
        self.f.copy_from_slice(&self.k[ns * n..(ns + 1) * n]);
        self.t_prev = self.t;
        self.t = t_new;
        self.h_prev = h;
        self.h_abs = h_abs_next;
        self.dense_ready = false;
        self.stats.naccept += 1;
        if let Some(w) = self.rosenbrock.as_mut() {
            w.invalidate();
        }
    }

    /// Builds the dense output of the last accepted step (SciPy's
    /// `_dense_output_impl`). For DOP853 this evaluates 3 extra stages, counted
    /// in `nfev`; for DOPRI5 it costs no evaluation. Idempotent until the next
    /// step. Must be called before [`Solver::interpolate`].
    pub fn prepare_dense<S: OdeSystem>(&mut self, sys: &mut S) {
        assert!(
            self.initialized,
            "ode::Solver::prepare_dense called before a successful init"
        );
        if self.dense_ready {
            return;
        }
        let n = self.n;
        let h = self.h_prev;
        if self.rosenbrock.is_some() {
            for (r, coeffs) in rosenbrock::H.iter().enumerate() {
                combine(&self.k, n, coeffs, &mut self.dense[r * n..(r + 1) * n]);
            }
            self.dense_ready = true;
            return;
        }
        match self.tab.dense {
            DenseScheme::Polynomial { p } => {
                // Q = K^T P, stored transposed: row r is sum_j P[j][r] K_j.
                let mut col = [0.0; 16];
                for r in 0..4 {
                    for (c, pj) in col.iter_mut().zip(p) {
                        *c = pj[r];
                    }
                    combine(
                        &self.k,
                        n,
                        &col[..p.len()],
                        &mut self.dense[r * n..(r + 1) * n],
                    );
                }
            }
            DenseScheme::Dop853 {
                c_extra,
                a_extra,
                d,
            } => {
                let s0 = self.tab.n_stages + 1;
                let mut ts = [0.0; MAX_STAGE_TIMES];
                for (t, &c) in ts.iter_mut().zip(c_extra) {
                    *t = self.t_prev + c * h;
                }
                sys.upcoming_times(&ts[..c_extra.len()]);
                for (i, (&c, &a)) in c_extra.iter().zip(a_extra).enumerate() {
                    let s = s0 + i;
                    stage_argument(&self.k, n, a, h, &self.y_old, &mut self.work);
                    sys.rhs(
                        self.t_prev + c * h,
                        &self.work,
                        &mut self.k[s * n..(s + 1) * n],
                    );
                    self.stats.nfev += 1;
                }
                let (f0, rest) = self.dense.split_at_mut(n);
                let (f1, rest) = rest.split_at_mut(n);
                let (f2, rest) = rest.split_at_mut(n);
                let f_old = &self.k[..n];
                for i in 0..n {
                    let delta_y = self.y[i] - self.y_old[i];
                    f0[i] = delta_y;
                    f1[i] = h * f_old[i] - delta_y;
                    f2[i] = 2.0 * delta_y - h * (self.f[i] + f_old[i]);
                }
                // F[3:] = h * D K.
                for (r, dr) in d.iter().enumerate() {
                    let row = &mut rest[r * n..(r + 1) * n];
                    combine(&self.k, n, dr, row);
                    for v in row.iter_mut() {
                        *v *= h;
                    }
                }
            }
        }
        self.dense_ready = true;
    }

    /// Dense output at t in [t_prev(), t()] written into out (no allocation). Exact endpoint values at t_prev/t.
    ///
    /// Panics if [`Solver::prepare_dense`] was not called since the last step
    /// (unless the interval is empty, e.g. right after `init`). Outside the
    /// interval the polynomial is extrapolated (inaccurate).
    pub fn interpolate(&self, t: f64, out: &mut [f64]) {
        assert_eq!(
            out.len(),
            self.n,
            "ode::Solver::interpolate: out has the wrong length"
        );
        if self.t == self.t_prev {
            out.copy_from_slice(&self.y);
            return;
        }
        // Also at the end points, so that a caller that forgets prepare_dense
        // finds out at once (and its nfev stays comparable with SciPy's).
        assert!(
            self.dense_ready,
            "ode::Solver::interpolate: call prepare_dense(sys) after step() first"
        );
        if t == self.t {
            out.copy_from_slice(&self.y);
            return;
        }
        if t == self.t_prev {
            out.copy_from_slice(&self.y_old);
            return;
        }
        let n = self.n;
        let h = self.t - self.t_prev;
        let x = (t - self.t_prev) / h;
        if self.rosenbrock.is_some() {
            let (d0, d1) = self.dense.split_at(n);
            for i in 0..n {
                out[i] = (1.0 - x) * self.y_old[i] + x * (self.y[i] + (1.0 - x) * (d0[i] + x * d1[i]));
            }
            return;
        }
        match self.tab.dense {
            DenseScheme::Polynomial { .. } => {
                // y_old + h * Q [x, x^2, x^3, x^4] (RkDenseOutput; powers by cumprod).
                let p = [x, x * x, x * x * x, x * x * x * x];
                let (q0, rest) = self.dense.split_at(n);
                let (q1, rest) = rest.split_at(n);
                let (q2, q3) = rest.split_at(n);
                let rows = q0.iter().zip(q1).zip(q2).zip(q3);
                for ((o, &y_old), (((&a, &b), &c), &d)) in out.iter_mut().zip(&self.y_old).zip(rows)
                {
                    *o = h * (a * p[0] + b * p[1] + c * p[2] + d * p[3]) + y_old;
                }
            }
            DenseScheme::Dop853 { .. } => {
                // Dop853DenseOutput: starting from the last row F[6], add a row
                // and multiply by x and 1 - x in turn; then add y_old.
                for (j, r) in (0..self.tab.dense_rows).rev().enumerate() {
                    let w = if j % 2 == 0 { x } else { 1.0 - x };
                    let f = &self.dense[r * n..(r + 1) * n];
                    if j == 0 {
                        for (o, &fv) in out.iter_mut().zip(f) {
                            *o = fv * w;
                        }
                    } else {
                        for (o, &fv) in out.iter_mut().zip(f) {
                            *o = (*o + fv) * w;
                        }
                    }
                }
                for (o, &y_old) in out.iter_mut().zip(&self.y_old) {
                    *o += y_old;
                }
            }
        }
    }

    /// Makes the steps end exactly at `t` if they would cross it (for outputs
    /// that must not rely on the dense output, e.g. Rodas4's, which is one
    /// order lower than its steps and loses accuracy on stiff components).
    pub fn stop_at(&mut self, t: f64) {
        self.t_stop = t;
    }

    pub fn t(&self) -> f64 {
        self.t
    }

    pub fn t_prev(&self) -> f64 {
        self.t_prev
    }

    pub fn y(&self) -> &[f64] {
        &self.y
    }

    pub fn t_end(&self) -> f64 {
        self.t_end
    }

    /// `t() == t_end()`.
    pub fn finished(&self) -> bool {
        self.t == self.t_end
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Test helper: one step of exactly `h` with the same tableau, accepted
    /// whatever its error (no control, no clipping at `t_end`).
    #[cfg(test)]
    pub(crate) fn step_fixed<S: OdeSystem>(&mut self, sys: &mut S, h: f64) {
        assert!(self.initialized);
        let t_new = self.t + h;
        if self.rosenbrock.is_some() {
            self.rosenbrock_attempt(sys, h);
        } else {
            self.rk_attempt(sys, h);
        }
        let h = t_new - self.t;
        self.accept(t_new, h, self.h_abs);
    }
}

/// Vectors are combined block by block: a block of the result stays in the L1
/// cache while every stage adds into it, so each stage vector is read once per
/// combination instead of once per term (large models are memory-bound here).
const BLOCK: usize = 1024;

/// `out = sum_j coeffs[j] * K_j`, in increasing `j`, skipping the zero
/// coefficients (adding `0 * K_j` changes no finite sum; non-finite stages are
/// detected separately).
fn combine(k: &[f64], n: usize, coeffs: &[f64], out: &mut [f64]) {
    for start in (0..n).step_by(BLOCK) {
        let r = start..(start + BLOCK).min(n);
        combine_block(k, n, coeffs, r.clone(), &mut out[r]);
    }
}

/// [`combine`] on the entries `r` of the vectors.
fn combine_block(k: &[f64], n: usize, coeffs: &[f64], r: std::ops::Range<usize>, out: &mut [f64]) {
    let mut first = true;
    for (j, &a) in coeffs.iter().enumerate() {
        if a == 0.0 {
            continue;
        }
        let row = &k[j * n + r.start..j * n + r.end];
        if first {
            crate::kernels::scale_into(out, a, row);
            first = false;
        } else {
            crate::kernels::axpy(out, a, row);
        }
    }
    if first {
        out.fill(0.0);
    }
}

/// Stage argument `y + (K[:s]^T a) * h` as rk.py forms it.
fn stage_argument(k: &[f64], n: usize, a: &[f64], h: f64, y: &[f64], out: &mut [f64]) {
    for start in (0..n).step_by(BLOCK) {
        let r = start..(start + BLOCK).min(n);
        let o = &mut out[r.clone()];
        combine_block(k, n, a, r.clone(), o);
        for (o, &yi) in o.iter_mut().zip(&y[r]) {
            *o = yi + *o * h;
        }
    }
}

/// RMS norm of `err * factor / scale`, `scale = atol + max(|y|, |y_new|) * rtol`.
fn scaled_rms(err: &[f64], factor: f64, y: &[f64], y_new: &[f64], opts: Options) -> f64 {
    let mut sum = 0.0;
    for ((&e, &y), &yn) in err.iter().zip(y).zip(y_new) {
        let q = e * factor / (opts.atol + y.abs().max(yn.abs()) * opts.rtol);
        sum += q * q;
    }
    rms(sum, err.len())
}

/// RMS norm from a sum of squares (`common.norm`: `||x|| / sqrt(n)`).
fn rms(sum_sq: f64, n: usize) -> f64 {
    sum_sq.sqrt() / (n as f64).sqrt()
}

fn all_finite(x: &[f64]) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Python's `min(a, b)` (returns `a` unless `b < a`), kept for NaN parity.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's `max(a, b)` (returns `a` unless `b > a`).
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// `np.nextafter(t, inf)` (f64::next_up needs a newer Rust than our MSRV).
fn next_up(t: f64) -> f64 {
    if t.is_nan() || t == f64::INFINITY {
        t
    } else if t == 0.0 {
        f64::from_bits(1)
    } else if t > 0.0 {
        f64::from_bits(t.to_bits() + 1)
    } else {
        f64::from_bits(t.to_bits() - 1)
    }
}

#[cfg(test)]
pub(crate) mod tests;
