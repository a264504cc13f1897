//! One run: configuration, measurements at the requested times, and a resumable
//! `Simulation` that both the one-shot `simulate` and live streaming use (so the
//! two give identical values by construction).

use crate::error::{check, Error, Result};
use crate::flow::{DeviationFlow, Spectrum};
use crate::linalg::{self, Lanczos};
use crate::model::{Model, MAX_PREPARED};
use crate::ode::{Method, OdeSystem, Options, Solver, Stats, ROSENBROCK_MAX_DIM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Optional measurements (output, gap, residuals and losses are always computed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metrics {
    pub weight_change: bool,
    pub jacobian_drift: bool,
    pub lip_dh_path: bool,
    pub kernel_drift: bool,
}

pub const METRIC_NAMES: [&str; 8] = [
    "gap",
    "residual",
    "loss",
    "output",
    "weight_change",
    "jacobian_drift",
    "lip_dh_path",
    "kernel_drift",
];

impl Metrics {
    pub const ALL: Metrics = Metrics { weight_change: true, jacobian_drift: true, lip_dh_path: true, kernel_drift: true };
    pub const GAP_ONLY: Metrics =
        Metrics { weight_change: false, jacobian_drift: false, lip_dh_path: false, kernel_drift: false };

    /// Whether a measurement needs the model's deviation state (ΔJ), beyond e and r.
    fn needs_model_state(&self) -> bool {
        self.jacobian_drift || self.lip_dh_path || self.kernel_drift
    }

    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Metrics> {
        let mut m = Metrics::GAP_ONLY;
        for name in names {
            match name.as_ref() {
                "gap" | "residual" | "loss" | "output" => {}
                "weight_change" => m.weight_change = true,
                "jacobian_drift" => m.jacobian_drift = true,
                "lip_dh_path" => m.lip_dh_path = true,
                "kernel_drift" => m.kernel_drift = true,
                other => {
                    return Err(Error::invalid(
                        "metrics",
                        format!("unknown metric {other:?}; accepted: {}", METRIC_NAMES.join(", ")),
                    ))
                }
            }
        }
        Ok(m)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut v = vec!["gap", "residual", "loss", "output"];
        let flags = [
            (self.weight_change, "weight_change"),
            (self.jacobian_drift, "jacobian_drift"),
            (self.lip_dh_path, "lip_dh_path"),
            (self.kernel_drift, "kernel_drift"),
        ];
        v.extend(flags.iter().filter(|f| f.0).map(|f| f.1));
        v
    }
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub alpha: f64,
    pub t_end: f64,
    pub times: Vec<f64>,
    pub method: Method,
    pub options: Options,
    pub metrics: Metrics,
}

impl RunConfig {
    /// Validates every argument; errors name the parameter and the accepted range.
    pub fn new(
        alpha: f64,
        t_end: f64,
        times: Vec<f64>,
        method: &str,
        rtol: f64,
        atol: f64,
        max_steps: u64,
        metrics: Metrics,
    ) -> Result<RunConfig> {
        check::positive("alpha", alpha)?;
        check::positive("T", t_end)?;
        let method = Method::parse(method).ok_or_else(|| {
            Error::invalid("method", format!("unknown method {method:?}; accepted: dop853, dopri5, rodas4"))
        })?;
        if !(rtol.is_finite() && rtol > 0.0 && rtol < 1.0) {
            return Err(Error::invalid("rtol", format!("must be a number in (0, 1) (got {rtol})")));
        }
        if !(atol.is_finite() && atol > 0.0) {
            // s(0) = 0, so a purely relative tolerance could never accept a first step
            return Err(Error::invalid("atol", format!("must be a positive finite number (got {atol})")));
        }
        if max_steps == 0 {
            return Err(Error::invalid("max_steps", "must be at least 1 (got 0)"));
        }
        check_times(&times, t_end)?;
        let options = Options { rtol, atol, max_steps, ..Options::default() };
        Ok(RunConfig { alpha, t_end, times, method, options, metrics })
    }

    /// Checks what depends on the model: Rodas4 forms the p x p Jacobian.
    pub fn check_model(&self, p: usize) -> Result<()> {
        if self.method == Method::Rodas4 && p > ROSENBROCK_MAX_DIM {
            return Err(Error::invalid(
                "method",
                format!(
                    "rodas4 takes at most {ROSENBROCK_MAX_DIM} parameters (this model has p = {p}; \
                     it forms the full Jacobian by finite differences): use dop853"
                ),
            ));
        }
        Ok(())
    }
}

/// Requested times: non-empty, finite, non-decreasing, within [0, T].
pub fn check_times(times: &[f64], t_end: f64) -> Result<()> {
    if times.is_empty() {
        return Err(Error::invalid("times", "must contain at least one time"));
    }
    if times.len() > 1_000_000 {
        return Err(Error::invalid("times", format!("at most 1000000 times (got {})", times.len())));
    }
    check::finite("times", times)?;
    if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::invalid(
            "times",
            format!("must be sorted in increasing order (times[{}] = {} > times[{}] = {})", i, times[i], i + 1, times[i + 1]),
        ));
    }
    if times[0] < 0.0 || times[times.len() - 1] > t_end {
        return Err(Error::invalid(
            "times",
            format!("must lie within [0, T] = [0, {t_end}] (got [{}, {}])", times[0], times[times.len() - 1]),
        ));
    }
    Ok(())
}

/// Measurements at the requested times; entries past `len` (and metrics not
/// requested) are NaN.
#[derive(Clone, Debug)]
pub struct Measurements {
    pub n: usize,
    pub len: usize,
    pub times: Vec<f64>,
    /// k x n row-major
    pub output: Vec<f64>,
    pub output_lin: Vec<f64>,
    pub gap: Vec<f64>,
    pub residual: Vec<f64>,
    pub residual_lin: Vec<f64>,
    pub loss: Vec<f64>,
    pub loss_lin: Vec<f64>,
    pub weight_change: Vec<f64>,
    pub weight_change_lin: Vec<f64>,
    pub kernel_drift: Vec<f64>,
    pub jacobian_drift: Vec<f64>,
    pub lip_dh_path: Vec<f64>,
}

impl Measurements {
    fn new(times: &[f64], n: usize) -> Measurements {
        let k = times.len();
        let nan = |len: usize| vec![f64::NAN; len];
        Measurements {
            n,
            len: 0,
            times: times.to_vec(),
            output: nan(k * n),
            output_lin: nan(k * n),
            gap: nan(k),
            residual: nan(k),
            residual_lin: nan(k),
            loss: nan(k),
            loss_lin: nan(k),
            weight_change: nan(k),
            weight_change_lin: nan(k),
            kernel_drift: nan(k),
            jacobian_drift: nan(k),
            lip_dh_path: nan(k),
        }
    }

    /// The named per-time series (all but the outputs).
    pub fn series(&self) -> [(&'static str, &Vec<f64>); 11] {
        [
            ("gap", &self.gap),
            ("residual", &self.residual),
            ("residual_lin", &self.residual_lin),
            ("loss", &self.loss),
            ("loss_lin", &self.loss_lin),
            ("weight_change", &self.weight_change),
            ("weight_change_lin", &self.weight_change_lin),
            ("kernel_drift", &self.kernel_drift),
            ("jacobian_drift", &self.jacobian_drift),
            ("lip_dh_path", &self.lip_dh_path),
            ("times", &self.times),
        ]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Running,
    Done,
    Failed(String),
    Cancelled,
}

impl Status {
    pub fn describe(&self) -> String {
        match self {
            Status::Running => "running".into(),
            Status::Done => "ok".into(),
            Status::Failed(why) => format!("failed: {why}"),
            Status::Cancelled => "cancelled".into(),
        }
    }
}

/// Scalars of a run that do not depend on time.
#[derive(Clone, Copy, Debug)]
pub struct RunScalars {
    pub alpha: f64,
    pub t_end: f64,
    pub r0: f64,
    /// radius of the ball the flows cannot leave by time T (Prop 3.1): sqrt(T R0)/α
    pub rho: f64,
    pub lip_dh: f64,
    pub lip_h: f64,
    pub kappa: f64,
}

#[derive(Clone, Debug)]
pub struct RunResult {
    /// the integrator and the rtol it used (rtol is raised to 100 eps at least)
    pub method: Method,
    pub rtol: f64,
    pub scalars: RunScalars,
    pub measurements: Measurements,
    pub stats: Stats,
    pub status: Status,
    pub elapsed: Duration,
}

/// A resumable run: integrate, and measure at each requested time as it is passed.
pub struct Simulation<M: Model> {
    cfg: RunConfig,
    flow: DeviationFlow<M>,
    solver: Solver,
    started: bool,
    next: usize,
    /// requested times before this index have had their linear part announced
    announced: usize,
    meas: Measurements,
    status: Status,
    scalars: RunScalars,
    elapsed: Duration,
    // buffers for the measurements
    s_buf: Vec<f64>,
    g1: Vec<f64>,
    g2: Vec<f64>,
    nbuf: Vec<f64>,
    lanczos: Lanczos,
    lip_path_max: f64,
}

const LANCZOS_ITER: usize = 80;
const LANCZOS_TOL: f64 = 1e-10;

impl<M: Model> Simulation<M> {
    pub fn new(model: Arc<M>, spectrum: Arc<Spectrum>, cfg: RunConfig) -> Simulation<M> {
        let (n, p) = (model.n(), model.p());
        let flow = DeviationFlow::new(model.clone(), spectrum, cfg.alpha);
        let r0 = flow.r0_loss();
        let rho = (cfg.t_end * r0).sqrt() / cfg.alpha;
        let lip_dh = model.lip_dh(rho);
        let scalars = RunScalars {
            alpha: cfg.alpha,
            t_end: cfg.t_end,
            r0,
            rho,
            lip_dh,
            lip_h: model.lip_h(rho),
            kappa: cfg.t_end * lip_dh * r0.sqrt() / cfg.alpha,
        };
        // The state s scales with R0 (scaling y* by c scales s by c²), so atol is
        // taken relative to 2 R0 = ||r0||²: the accuracy does not depend on the
        // units of the data.
        let atol_scale = if r0 > 0.0 && r0.is_finite() { 2.0 * r0 } else { 1.0 };
        let options = Options { atol: cfg.options.atol * atol_scale, ..cfg.options };
        Simulation {
            solver: Solver::new(cfg.method, p, options),
            meas: Measurements::new(&cfg.times, n),
            cfg,
            flow,
            started: false,
            next: 0,
            announced: 0,
            status: Status::Running,
            scalars,
            elapsed: Duration::ZERO,
            s_buf: vec![0.0; p],
            g1: vec![0.0; p],
            g2: vec![0.0; p],
            nbuf: vec![0.0; n],
            lanczos: Lanczos::new(n, LANCZOS_ITER),
            lip_path_max: 0.0,
        }
    }

    pub fn status(&self) -> &Status {
        &self.status
    }
    pub fn n_done(&self) -> usize {
        self.next
    }
    pub fn n_total(&self) -> usize {
        self.cfg.times.len()
    }
    pub fn measurements(&self) -> &Measurements {
        &self.meas
    }
    pub fn scalars(&self) -> RunScalars {
        self.scalars
    }
    /// Current time of the integrator.
    pub fn t(&self) -> f64 {
        if self.started {
            self.solver.t()
        } else {
            0.0
        }
    }

    /// Advances until `max_points` more requested times are measured, the deadline
    /// passes, `cancel` is set, the run ends or the integration fails. Returns the
    /// number of points added. A failure or cancellation is kept in `status()`
    /// together with everything measured so far.
    pub fn advance(&mut self, max_points: usize, deadline: Option<Instant>, cancel: Option<&AtomicBool>) -> usize {
        let start = Instant::now();
        let first = self.next;
        let k = self.cfg.times.len();
        let t_last = self.cfg.times[k - 1];
        while self.status == Status::Running && self.next < k && self.next - first < max_points {
            let t = self.cfg.times[self.next];
            if !self.started {
                if t == 0.0 {
                    // s(0) = 0: no integration needed for points at the initial time.
                    self.s_buf.fill(0.0);
                    self.record(t);
                    continue;
                }
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    // a run of a cancelled batch that has not started: evaluate nothing
                    self.status = Status::Cancelled;
                    break;
                }
                let zeros = vec![0.0; self.flow.model.p()];
                if let Err(e) = self.solver.init(&mut self.flow, 0.0, &zeros, t_last) {
                    self.status = Status::Failed(e.to_string());
                    break;
                }
                self.started = true;
                continue;
            }
            // Checked between points too: one step can cover hundreds of requested
            // times, and with the kernel metrics a point costs as much as a step.
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                self.status = Status::Cancelled;
                break;
            }
            let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
            if t <= self.solver.t() {
                // at least one point per call, so that a caller looping on short deadlines progresses
                if past_deadline && self.next > first {
                    break;
                }
                self.solver.prepare_dense(&mut self.flow);
                if self.next >= self.announced {
                    self.announce_points();
                }
                self.solver.interpolate(t, &mut self.s_buf);
                self.record(t);
                continue;
            }
            if past_deadline {
                break;
            }
            if !self.cfg.method.interpolates_outputs() {
                self.solver.stop_at(t);
            }
            if let Err(e) = self.solver.step(&mut self.flow) {
                self.status = Status::Failed(e.to_string());
            }
        }
        if self.status == Status::Running && self.next == k {
            self.status = Status::Done;
        }
        self.elapsed += start.elapsed();
        self.next - first
    }

    /// Announces the requested times this step covers (at most MAX_PREPARED), so
    /// that their linear parts come from one batched product. Keyed on the
    /// times' indices, so that chunked calls of `advance` batch them alike.
    fn announce_points(&mut self) {
        let rest = &self.cfg.times[self.next..];
        let covered = rest.partition_point(|&t| t <= self.solver.t()).min(MAX_PREPARED);
        self.flow.upcoming_times(&rest[..covered]);
        self.announced = self.next + covered;
    }

    /// Runs to the end (or failure / cancellation).
    pub fn run_to_end(&mut self, cancel: Option<&AtomicBool>) {
        self.advance(usize::MAX, None, cancel);
    }

    pub fn result(&self) -> RunResult {
        RunResult {
            method: self.cfg.method,
            rtol: self.solver.options().rtol,
            scalars: self.scalars,
            measurements: self.meas.clone(),
            stats: if self.started { self.solver.stats() } else { Stats::default() },
            status: self.status.clone(),
            elapsed: self.elapsed,
        }
    }

    /// Measures every quantity at time t from the state in `s_buf`.
    fn record(&mut self, t: f64) {
        let i = self.next;
        let f = &mut self.flow;
        if self.cfg.metrics.needs_model_state() {
            f.evaluate(t, &self.s_buf);
        } else {
            f.evaluate_outputs(t, &self.s_buf);
        }
        if f.e.iter().chain(&f.r).any(|v| !v.is_finite()) {
            self.status = Status::Failed(format!("non-finite state at t = {t:e}"));
            return;
        }
        let n = self.meas.n;
        let y = f.model.y_star();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for j in 0..n {
            // output = α h(w) = y* - r; output_lin = y* - rbar
            self.meas.output[i * n + j] = y[j] - f.r[j];
            self.meas.output_lin[i * n + j] = y[j] - f.rbar[j];
        }
        let (res, res_lin) = (norm(&f.r), norm(&f.rbar));
        self.meas.gap[i] = norm(&f.e);
        self.meas.residual[i] = res;
        self.meas.residual_lin[i] = res_lin;
        self.meas.loss[i] = 0.5 * res * res;
        self.meas.loss_lin[i] = 0.5 * res_lin * res_lin;
        let metrics = self.cfg.metrics;
        // ||w - w0||, a pass over all p parameters: only for the metrics that use it
        if metrics.weight_change || metrics.lip_dh_path {
            self.meas.weight_change[i] = norm(&f.d);
            self.meas.weight_change_lin[i] = norm(&f.dbar);
        }
        if metrics.jacobian_drift || metrics.lip_dh_path {
            let (model, ws, g1) = (&*f.model, &mut f.ws, &mut self.g1);
            // ||ΔJ||² = λmax(ΔJ ΔJ^T), an n x n PSD operator.
            let lam = self.lanczos.norm(LANCZOS_TOL, |x, out| {
                model.djt_mul(ws, x, g1);
                model.dj_mul(ws, g1, out);
            });
            let jd = lam.max(0.0).sqrt();
            if metrics.jacobian_drift {
                self.meas.jacobian_drift[i] = jd;
            }
            if metrics.lip_dh_path {
                let wc = self.meas.weight_change[i];
                if wc > 0.0 {
                    self.lip_path_max = self.lip_path_max.max(jd / wc);
                }
                self.meas.lip_dh_path[i] = self.lip_path_max;
            }
        }
        if metrics.kernel_drift {
            self.meas.kernel_drift[i] = match f.model.kernel_drift_matrix(&mut f.ws) {
                Some(dk) => linalg::sym_op_norm(&dk, n),
                None => {
                    // K_t - K0 = ΔJ J_t^T + J0 ΔJ^T applied matrix-free.
                    let (model, ws, g1, g2, nb) = (&*f.model, &mut f.ws, &mut self.g1, &mut self.g2, &mut self.nbuf);
                    self.lanczos.norm(LANCZOS_TOL, |x, out| {
                        model.djt_mul(ws, x, g1);
                        model.j0t_mul(ws, x, g2);
                        g2.iter_mut().zip(g1.iter()).for_each(|(a, b)| *a += b);
                        model.dj_mul(ws, g2, out);
                        model.j0_mul(ws, g1, nb);
                        out.iter_mut().zip(nb.iter()).for_each(|(a, b)| *a += b);
                    })
                }
            };
        }
        self.next += 1;
        self.meas.len = self.next;
    }
}

/// Runs one model to the end.
pub fn simulate<M: Model>(model: Arc<M>, cfg: RunConfig) -> Result<RunResult> {
    let spectrum = Arc::new(Spectrum::of(&*model)?);
    let mut sim = Simulation::new(model, spectrum, cfg);
    sim.run_to_end(None);
    Ok(sim.result())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::{Converse, Linear, Quadratic, TwoLayer};
    use crate::rng::Rng;

    fn cfg(alpha: f64, t_end: f64, times: Vec<f64>, metrics: Metrics) -> RunConfig {
        RunConfig::new(alpha, t_end, times, "dop853", 1e-10, 1e-14, 1_000_000, metrics).unwrap()
    }

    fn geomspace(a: f64, b: f64, k: usize) -> Vec<f64> {
        (0..k).map(|i| a * (b / a).powf(i as f64 / (k - 1) as f64)).collect()
    }

    /// A centred tanh net of width `mw` on n random points in R^d.
    fn tanh_net(n: usize, d: usize, mw: usize, data_seed: u64, init_seed: u64) -> Arc<TwoLayer> {
        let mut rng = Rng::new(data_seed);
        let x = rng.normal_vec(n * d, 0.5);
        let y = rng.normal_vec(n, 1.0);
        Arc::new(TwoLayer::new(x, n, d, y, mw, Activation::Tanh, init_seed, None, true).unwrap())
    }

    fn last_gap(r: &RunResult) -> f64 {
        r.measurements.gap[r.measurements.len - 1]
    }

    #[test]
    fn linear_model_has_zero_gap() {
        let m = Arc::new(Linear::new(12, 5, 1).unwrap());
        let r = simulate(m, cfg(3.0, 50.0, geomspace(0.1, 50.0, 8), Metrics::ALL)).unwrap();
        assert_eq!(r.status, Status::Done);
        assert!(r.measurements.gap.iter().all(|&g| g == 0.0), "{:?}", r.measurements.gap);
        assert!(r.measurements.kernel_drift.iter().all(|&g| g == 0.0));
    }

    #[test]
    fn converse_gap_depends_only_on_kappa() {
        // THEORY.md 4.1: gap(T)/sqrt(R0) is a function of the signed kappa alone.
        let kappa = 0.7;
        let mut vals = Vec::new();
        for &(alpha, t_end, r0) in &[(1.0, 1.0, 1.0), (50.0, 3.0, 0.2), (1e5, 40.0, 7.0)] {
            let lip = kappa * alpha / (t_end * f64::sqrt(r0));
            let m = Arc::new(Converse::new(t_end, r0, lip, 1).unwrap());
            let r = simulate(m, cfg(alpha, t_end, vec![t_end], Metrics::GAP_ONLY)).unwrap();
            assert!((r.scalars.kappa - kappa).abs() < 1e-12);
            vals.push(last_gap(&r) / r0.sqrt());
        }
        for v in &vals[1..] {
            assert!((v - vals[0]).abs() < 1e-8 * vals[0], "{vals:?}");
        }
    }

    #[test]
    fn converse_small_kappa_slope_is_4_over_e2() {
        // gap(T) = (4/e²) kappa sqrt(R0) + O(kappa²): at kappa = 1e-6 the O(kappa)
        // relative correction is ~1e-6.
        let m = Arc::new(Converse::new(2.0, 0.5, 1e-6 * 10.0 / (2.0 * 0.5f64.sqrt()), 1).unwrap());
        let r = simulate(m, cfg(10.0, 2.0, vec![2.0], Metrics::GAP_ONLY)).unwrap();
        let slope = last_gap(&r) / (r.scalars.kappa * r.scalars.r0.sqrt());
        let expected = 4.0 / std::f64::consts::E.powi(2);
        assert!((slope - expected).abs() < 1e-5, "{slope} vs {expected}");
    }

    #[test]
    fn twolayer_gap_scales_like_one_over_alpha_to_full_precision() {
        // alpha * gap(T) has a finite limit as alpha -> ∞ with an O(1/alpha)
        // correction: between alpha = 1e6 and 1e8 it may change by ~1e-6 relative
        // only if the formulation keeps the gap's relative accuracy (a direct
        // integration of w would be off by orders of magnitude at alpha = 1e8).
        let m = tanh_net(6, 3, 16, 5, 0);
        let scaled: Vec<f64> = [1e4, 1e6, 1e8]
            .iter()
            .map(|&a| {
                let r = simulate(m.clone(), cfg(a, 10.0, vec![10.0], Metrics::GAP_ONLY)).unwrap();
                assert_eq!(r.status, Status::Done);
                a * last_gap(&r)
            })
            .collect();
        assert!((scaled[1] - scaled[2]).abs() < 1e-5 * scaled[2], "{scaled:?}");
        assert!((scaled[0] - scaled[2]).abs() < 1e-2 * scaled[2], "{scaled:?}");
    }

    #[test]
    fn quadratic_respects_theorem_1_2() {
        for seed in 0..5 {
            let m = Arc::new(Quadratic::new(8, 3, 2.0, seed).unwrap());
            let r = simulate(m, cfg(2.0, 5.0, geomspace(0.05, 5.0, 10), Metrics::ALL)).unwrap();
            let s = r.scalars;
            for (i, &t) in r.measurements.times.iter().enumerate() {
                let kappa = t * s.lip_dh * s.r0.sqrt() / s.alpha;
                let bound = (6.0 * kappa * s.r0.sqrt()).min((8.0 * s.r0).sqrt());
                assert!(r.measurements.gap[i] <= bound, "seed {seed} t {t}");
                assert!(r.measurements.lip_dh_path[i] <= s.lip_dh * (1.0 + 1e-9));
            }
        }
    }

    #[test]
    fn chunks_equal_one_shot_and_failures_keep_partial_results() {
        let m = Arc::new(Quadratic::new(6, 2, 1.0, 3).unwrap());
        let times = geomspace(0.01, 20.0, 12);
        let full = simulate(m.clone(), cfg(1.5, 20.0, times.clone(), Metrics::ALL)).unwrap();
        let spectrum = Arc::new(Spectrum::of(&*m).unwrap());
        let mut sim = Simulation::new(m.clone(), spectrum.clone(), cfg(1.5, 20.0, times.clone(), Metrics::ALL));
        while sim.advance(5, None, None) > 0 {}
        let chunked = sim.result();
        assert_eq!(chunked.measurements.gap, full.measurements.gap);
        assert_eq!(chunked.measurements.kernel_drift, full.measurements.kernel_drift);
        // max_steps = 3 fails early but keeps the points reached
        let c = RunConfig::new(1.5, 20.0, times, "dop853", 1e-10, 1e-14, 3, Metrics::ALL).unwrap();
        let mut sim = Simulation::new(m, spectrum, c);
        sim.run_to_end(None);
        let r = sim.result();
        assert!(matches!(r.status, Status::Failed(ref s) if s.contains("max")), "{:?}", r.status);
        assert!(r.measurements.len < 12);
        assert_eq!(r.measurements.gap[..r.measurements.len], full.measurements.gap[..r.measurements.len]);
    }

    #[test]
    fn measurements_without_model_state_match_the_full_evaluation() {
        // Gap-only points take the fused forward pass with their linear parts
        // batched per step; with ΔJ metrics they take evaluate. The same values
        // up to rounding (measured: 6e-16 relative), and chunked calls batch
        // them alike (bit-identical).
        let m = tanh_net(7, 3, 40, 11, 2);
        let times = geomspace(1e-3, 30.0, 60);
        let cfg = |metrics| RunConfig::new(2.0, 30.0, times.clone(), "dop853", 1e-8, 1e-12, 100_000, metrics).unwrap();
        let state = Metrics { jacobian_drift: true, ..Metrics::GAP_ONLY };
        let (fast, full) = (simulate(m.clone(), cfg(Metrics::GAP_ONLY)).unwrap(), simulate(m.clone(), cfg(state)).unwrap());
        assert!(fast.stats.naccept < 30, "steps should cover several points: {:?}", fast.stats);
        let (a, b) = (&fast.measurements, &full.measurements);
        for (u, v) in a.gap.iter().chain(&a.output).zip(b.gap.iter().chain(&b.output)) {
            assert!((u - v).abs() <= 1e-13 * v.abs().max(1e-3), "{u} vs {v}");
        }
        let mut sim = Simulation::new(m.clone(), Arc::new(Spectrum::of(&*m).unwrap()), cfg(Metrics::GAP_ONLY));
        while sim.advance(1, None, None) > 0 {}
        assert_eq!(sim.result().measurements.gap, a.gap);
    }

    #[test]
    fn deadline_and_cancel_are_checked_between_the_points_of_one_step() {
        let m = Arc::new(Quadratic::new(6, 2, 1.0, 3).unwrap());
        let spectrum = Arc::new(Spectrum::of(&*m).unwrap());
        // 40 times in [1e-4, 1e-2]: the first step covers several of them
        let mut sim = Simulation::new(m, spectrum, cfg(1.5, 20.0, geomspace(1e-4, 1e-2, 40), Metrics::ALL));
        assert_eq!(sim.advance(1, None, None), 1);
        assert!(sim.t() >= sim.cfg.times[3], "the first step ends at {}", sim.t());
        // a deadline already passed: one more point, not the rest of the step's
        assert_eq!(sim.advance(usize::MAX, Some(Instant::now()), None), 1);
        let nfev = sim.result().stats.nfev;
        assert_eq!(sim.advance(usize::MAX, None, Some(&AtomicBool::new(true))), 0);
        let r = sim.result();
        assert_eq!((r.status, r.measurements.len, r.stats.nfev), (Status::Cancelled, 2, nfev));
    }

    #[test]
    fn a_cancelled_run_that_has_not_started_evaluates_nothing() {
        let m = Arc::new(Quadratic::new(6, 2, 1.0, 3).unwrap());
        let spectrum = Arc::new(Spectrum::of(&*m).unwrap());
        let mut sim = Simulation::new(m, spectrum, cfg(1.5, 20.0, geomspace(0.01, 20.0, 12), Metrics::ALL));
        sim.advance(usize::MAX, None, Some(&AtomicBool::new(true)));
        let r = sim.result();
        assert_eq!(r.status, Status::Cancelled);
        assert_eq!((r.stats.nfev, r.measurements.len), (0, 0));
    }

    #[test]
    fn right_hand_side_does_not_allocate() {
        use crate::ode::tests::alloc_counter;
        use crate::ode::OdeSystem;
        fn check<M: Model>(model: M) {
            let model = Arc::new(model);
            let spectrum = Arc::new(Spectrum::of(&*model).unwrap());
            let mut flow = DeviationFlow::new(model.clone(), spectrum, 3.0);
            let p = model.p();
            let s: Vec<f64> = (0..p).map(|k| 1e-3 * (k % 7) as f64).collect();
            let mut ds = vec![0.0; p];
            flow.rhs(0.5, &s, &mut ds); // warm-up: lazily initialised caches may allocate once
            let before = alloc_counter::count();
            for i in 0..20 {
                flow.rhs(0.5 + i as f64, &s, &mut ds);
            }
            assert_eq!(alloc_counter::count(), before, "{} allocates in its right-hand side", model.family());
        }
        let mut rng = Rng::new(1);
        let (n, d) = (40, 5);
        let x = rng.normal_vec(n * d, 0.4);
        let y = rng.normal_vec(n, 1.0);
        check(TwoLayer::new(x.clone(), n, d, y.clone(), 9000, Activation::Tanh, 0, None, true).unwrap());
        check(TwoLayer::new(x, n, d, y, 30, Activation::Erf, 0, None, false).unwrap());
        check(Quadratic::new(12, 4, 1.0, 0).unwrap());
        check(Linear::new(12, 4, 0).unwrap());
        check(Converse::new(1.0, 0.5, 1.0, 1).unwrap());
    }

    #[test]
    fn bad_configs_name_the_parameter() {
        let e = |r: Result<RunConfig>| r.unwrap_err().to_string();
        let mk = |a: f64, t: f64, times: Vec<f64>, rtol: f64, atol: f64| {
            RunConfig::new(a, t, times, "dop853", rtol, atol, 10, Metrics::ALL)
        };
        assert!(e(mk(0.0, 1.0, vec![1.0], 1e-8, 1e-12)).starts_with("alpha:"));
        assert!(e(mk(1.0, -1.0, vec![1.0], 1e-8, 1e-12)).starts_with("T:"));
        assert!(e(mk(1.0, 1.0, vec![0.5, 0.2], 1e-8, 1e-12)).contains("sorted"));
        assert!(e(mk(1.0, 1.0, vec![0.5, 2.0], 1e-8, 1e-12)).contains("[0, T]"));
        assert!(e(mk(1.0, 1.0, vec![f64::NAN], 1e-8, 1e-12)).starts_with("times:"));
        assert!(e(mk(1.0, 1.0, vec![1.0], -1e-8, 1e-12)).starts_with("rtol:"));
        assert!(e(mk(1.0, 1.0, vec![1.0], 1e-8, -1.0)).starts_with("atol:"));
        assert!(e(mk(1.0, 1.0, vec![1.0], 1e-8, 0.0)).starts_with("atol:"));
        assert!(e(RunConfig::new(1.0, 1.0, vec![1.0], "euler", 1e-8, 1e-12, 10, Metrics::ALL)).starts_with("method:"));
        assert!(Metrics::parse(&["gap", "nope"]).unwrap_err().to_string().contains("accepted"));
    }
}
