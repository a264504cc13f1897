use super::*;

// ---------------------------------------------------------------------------
// Test problems
// ---------------------------------------------------------------------------

/// y' = -y, y = y0 e^{-t}.
struct Decay;
impl OdeSystem for Decay {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = -y[0];
    }
}

/// x' = v, v' = -x; from (1, 0): (cos t, -sin t).
struct Oscillator;
impl OdeSystem for Oscillator {
    fn dim(&self) -> usize {
        2
    }
    fn rhs(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = y[1];
        dy[1] = -y[0];
    }
}

/// y' = y^2; from y(0) = 1: 1 / (1 - t), blowing up at t = 1.
struct Riccati;
impl OdeSystem for Riccati {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = y[0] * y[0];
    }
}

/// Lotka–Volterra (a, b, c, d) = (1.5, 1, 3, 1), the scipy docs example.
struct LotkaVolterra;
impl OdeSystem for LotkaVolterra {
    fn dim(&self) -> usize {
        2
    }
    fn rhs(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = 1.5 * y[0] - y[0] * y[1];
        dy[1] = -3.0 * y[1] + y[0] * y[1];
    }
}

/// y' = -y, but NaN once t > t_bad.
struct NanAfter {
    t_bad: f64,
}
impl OdeSystem for NanAfter {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = if t > self.t_bad { f64::NAN } else { -y[0] };
    }
}

/// Counts the rhs evaluations of the wrapped system.
struct Counting<S> {
    inner: S,
    calls: u64,
}
impl<S: OdeSystem> OdeSystem for Counting<S> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.calls += 1;
        self.inner.rhs(t, y, dy);
    }
}

fn oscillator_exact(t: f64) -> [f64; 2] {
    [t.cos(), -t.sin()]
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

const METHODS: [Method; 2] = [Method::Dop853, Method::Dopri5];

/// Integrates to `t_end`, returning the solver (panics on a step error).
fn solve<S: OdeSystem>(
    method: Method,
    sys: &mut S,
    y0: &[f64],
    t_end: f64,
    opts: Options,
) -> Solver {
    let mut s = Solver::new(method, y0.len(), opts);
    s.init(sys, 0.0, y0, t_end).unwrap();
    while !s.finished() {
        s.step(sys).unwrap();
    }
    s
}

fn tol(rtol: f64, atol: f64) -> Options {
    Options {
        rtol,
        atol,
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------
// Order of accuracy with fixed steps
// ---------------------------------------------------------------------------

/// Global error at `t_end` after `steps` fixed steps.
fn fixed_step_error<S: OdeSystem>(
    method: Method,
    sys: &mut S,
    y0: &[f64],
    t_end: f64,
    steps: usize,
    exact: &[f64],
) -> f64 {
    let mut s = Solver::new(method, y0.len(), Options::default());
    s.init(sys, 0.0, y0, t_end).unwrap();
    let h = t_end / steps as f64;
    for _ in 0..steps {
        s.step_fixed(sys, h);
    }
    assert!((s.t() - t_end).abs() < 1e-12);
    max_abs_diff(s.y(), exact)
}

/// Observed orders from the errors with `steps`, `2 steps` and `4 steps`:
/// the two pairwise orders `log2(e(h) / e(h/2))` and their Richardson
/// extrapolation `2 p2 - p1`, which removes the first correction term
/// `e = C h^p (1 + D h)` (needed for DOPRI5 on y' = y^2, whose leading error
/// constant is unusually small next to the following one).
fn observed_orders<S: OdeSystem>(
    method: Method,
    sys: &mut S,
    y0: &[f64],
    t_end: f64,
    steps: usize,
    exact: &[f64],
) -> (f64, f64, f64) {
    let e: Vec<f64> = (0..3)
        .map(|i| fixed_step_error(method, sys, y0, t_end, steps << i, exact))
        .collect();
    let p1 = (e[0] / e[1]).log2();
    let p2 = (e[1] / e[2]).log2();
    let p = 2.0 * p2 - p1;
    println!(
        "{:>7} N={steps}/{}/{}: errors {:.3e} {:.3e} {:.3e}; orders {p1:.3} {p2:.3}; extrapolated {p:.3}",
        method.name(),
        2 * steps,
        4 * steps,
        e[0],
        e[1],
        e[2]
    );
    (p1, p2, p)
}

/// Asserts the extrapolated order (and, more loosely, the raw finest pair).
fn check_order(method: Method, (_, p2, p): (f64, f64, f64)) {
    let order = method.order() as f64;
    assert!(
        (p - order).abs() < 0.3,
        "{}: extrapolated order {p}, expected {order}",
        method.name()
    );
    assert!(
        (p2 - order).abs() < 0.5,
        "{}: observed order {p2}, expected {order}",
        method.name()
    );
}

/// Coarsest step count per method, chosen so that the finest error stays far
/// above roundoff (DOP853's error falls by 256 per halving).
fn order_steps(method: Method, dop853: usize, dopri5: usize) -> usize {
    match method {
        Method::Dop853 => dop853,
        Method::Dopri5 | Method::Rodas4 => dopri5,
    }
}

#[test]
fn fixed_step_order_decay() {
    for m in METHODS {
        let t_end = 4.0;
        let orders = observed_orders(
            m,
            &mut Decay,
            &[1.0],
            t_end,
            order_steps(m, 4, 16),
            &[(-t_end).exp()],
        );
        check_order(m, orders);
    }
}

#[test]
fn fixed_step_order_oscillator() {
    for m in METHODS {
        let t_end = 10.0;
        let steps = order_steps(m, 8, 32);
        let orders = observed_orders(
            m,
            &mut Oscillator,
            &[1.0, 0.0],
            t_end,
            steps,
            &oscillator_exact(t_end),
        );
        check_order(m, orders);
    }
}

#[test]
fn fixed_step_order_riccati() {
    for m in METHODS {
        let orders = observed_orders(m, &mut Riccati, &[1.0], 0.5, order_steps(m, 2, 32), &[2.0]);
        check_order(m, orders);
    }
}

// ---------------------------------------------------------------------------
// Adaptive integration
// ---------------------------------------------------------------------------

#[test]
fn adaptive_oscillator_accuracy() {
    for m in METHODS {
        let s = solve(m, &mut Oscillator, &[1.0, 0.0], 20.0, tol(1e-10, 1e-12));
        assert_eq!(s.t(), 20.0);
        let err = max_abs_diff(s.y(), &oscillator_exact(20.0));
        println!("{:>7}: error at t=20 {err:.3e}, {:?}", m.name(), s.stats());
        assert!(err < 1e-8, "{}: error {err}", m.name());
    }
}

#[test]
fn adaptive_error_decreases_with_rtol() {
    for m in METHODS {
        let mut prev = f64::INFINITY;
        let mut prev_nfev = 0;
        for rtol in [1e-4, 1e-6, 1e-8, 1e-10] {
            let s = solve(
                m,
                &mut Oscillator,
                &[1.0, 0.0],
                20.0,
                tol(rtol, rtol * 1e-2),
            );
            let err = max_abs_diff(s.y(), &oscillator_exact(20.0));
            println!(
                "{:>7}: rtol {rtol:.0e} error {err:.3e} nfev {}",
                m.name(),
                s.stats().nfev
            );
            assert!(
                err < prev / 5.0,
                "{}: rtol {rtol}: error {err} vs {prev}",
                m.name()
            );
            // Roughly proportional to the tolerance (global error may exceed the local one).
            assert!(err < 1e3 * rtol, "{}: rtol {rtol}: error {err}", m.name());
            assert!(s.stats().nfev > prev_nfev);
            prev = err;
            prev_nfev = s.stats().nfev;
        }
    }
}

#[test]
fn max_step_is_respected_and_end_is_hit_exactly() {
    for m in METHODS {
        let opts = Options {
            max_step: 0.1,
            ..tol(1e-6, 1e-9)
        };
        let mut s = Solver::new(m, 2, opts);
        s.init(&mut Oscillator, 0.0, &[1.0, 0.0], 2.05).unwrap();
        let mut steps = 0;
        while !s.finished() {
            s.step(&mut Oscillator).unwrap();
            steps += 1;
            assert!(s.t() - s.t_prev() <= 0.1 * (1.0 + 1e-15));
            assert!(s.t() <= 2.05);
        }
        assert_eq!(s.t(), 2.05);
        assert!(steps >= 21);
        // Further steps are no-ops.
        let before = s.stats();
        s.step(&mut Oscillator).unwrap();
        assert_eq!(s.stats(), before);
        assert_eq!(s.t(), 2.05);
    }
}

#[test]
fn tiny_rtol_is_floored_like_scipy() {
    let s = Solver::new(Method::Dop853, 1, tol(0.0, 1e-12));
    assert_eq!(s.options().rtol, 100.0 * f64::EPSILON);
}

/// y' = (t/τ²) e^{-t/τ} from y(0) = 0: y = 1 - (1 + t/τ) e^{-t/τ}. Both y0 and
/// f(0, y0) vanish, like the deviation flow's state at t = 0.
struct SlowStart {
    tau: f64,
    hint: bool,
}
impl OdeSystem for SlowStart {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&mut self, t: f64, _y: &[f64], dy: &mut [f64]) {
        dy[0] = t / (self.tau * self.tau) * (-t / self.tau).exp();
    }
    fn time_scale(&self) -> Option<f64> {
        self.hint.then_some(self.tau)
    }
}

#[test]
fn time_scale_sets_the_first_step_when_y0_and_f0_vanish() {
    let (tau, t_end, rtol): (f64, f64, f64) = (50.0, 1000.0, 1e-7);
    let exact = 1.0 - (1.0 + t_end / tau) * (-t_end / tau).exp();
    let mut nfev = [0; 2];
    for (k, hint) in [false, true].into_iter().enumerate() {
        let mut sys = SlowStart { tau, hint };
        let mut s = Solver::new(Method::Dop853, 1, tol(rtol, 1e-12));
        s.init(&mut sys, 0.0, &[0.0], t_end).unwrap();
        s.step(&mut sys).unwrap();
        // SciPy's estimate starts at 100 x 1e-6 here; the hint at tau rtol^(1/8)
        let first = if hint { tau * rtol.powf(1.0 / 8.0) } else { 1e-4 };
        assert!((s.t() - first).abs() < 1e-12 * first, "hint {hint}: first step {}", s.t());
        while !s.finished() {
            s.step(&mut sys).unwrap();
        }
        assert!((s.y()[0] - exact).abs() < 10.0 * rtol * exact, "hint {hint}: {} vs {exact}", s.y()[0]);
        nfev[k] = s.stats().nfev;
    }
    assert!(nfev[1] < nfev[0], "the hint saves the ramp from 1e-4: {nfev:?}");
}

#[test]
fn degenerate_problems_like_scipy() {
    // Empty interval: finished at once, one evaluation, y0 returned.
    let mut s = Solver::new(Method::Dop853, 1, Options::default());
    s.init(&mut Decay, 1.0, &[3.0], 1.0).unwrap();
    assert!(s.finished());
    s.step(&mut Decay).unwrap();
    let mut out = [0.0];
    s.interpolate(1.0, &mut out);
    assert_eq!((out[0], s.stats().nfev), (3.0, 1));

    // Zero-dimensional system: one step to the end, no work.
    struct Empty;
    impl OdeSystem for Empty {
        fn dim(&self) -> usize {
            0
        }
        fn rhs(&mut self, _t: f64, _y: &[f64], _dy: &mut [f64]) {}
    }
    let mut s = Solver::new(Method::Dopri5, 0, Options::default());
    s.init(&mut Empty, 0.0, &[], 5.0).unwrap();
    s.step(&mut Empty).unwrap();
    assert!(s.finished() && s.t_prev() == 0.0);
    s.interpolate(2.5, &mut []);
    assert_eq!(
        s.stats(),
        Stats {
            nfev: 1,
            naccept: 0,
            nreject: 0
        }
    );
}

#[test]
fn method_names() {
    for m in METHODS {
        assert_eq!(Method::parse(m.name()), Some(m));
    }
    assert_eq!(Method::parse("RK45"), Some(Method::Dopri5));
    assert_eq!(Method::parse("DOP853"), Some(Method::Dop853));
    assert_eq!(Method::parse("rk23"), None);
    assert_eq!(Method::parse("Rodas"), Some(Method::Rodas4));
    assert_eq!(Method::parse(Method::Rodas4.name()), Some(Method::Rodas4));
    assert_eq!((Method::Dop853.order(), Method::Dopri5.order(), Method::Rodas4.order()), (8, 5, 4));
}

// ---------------------------------------------------------------------------
// Dense output
// ---------------------------------------------------------------------------

/// Largest interpolation error of a single fixed step of size `h` from the
/// exact initial value (the local error of the interpolant).
fn dense_local_error(method: Method, h: f64) -> f64 {
    let mut s = Solver::new(method, 2, Options::default());
    s.init(&mut Oscillator, 0.0, &[1.0, 0.0], 100.0).unwrap();
    s.step_fixed(&mut Oscillator, h);
    s.prepare_dense(&mut Oscillator);
    let mut out = [0.0; 2];
    let mut err: f64 = 0.0;
    for theta in [0.1, 0.3, 0.5, 0.7, 0.9] {
        s.interpolate(theta * h, &mut out);
        err = err.max(max_abs_diff(&out, &oscillator_exact(theta * h)));
    }
    err
}

#[test]
fn dense_output_order() {
    // Interpolant of order q has local error O(h^(q+1)): q = 7 for DOP853,
    // q = 4 for DOPRI5's quartic.
    for (m, q, h) in [(Method::Dop853, 7.0, 1.0), (Method::Dopri5, 4.0, 0.25)] {
        let e: Vec<f64> = (0..3)
            .map(|i| dense_local_error(m, h / f64::from(1 << i)))
            .collect();
        let p1 = (e[0] / e[1]).log2();
        let p2 = (e[1] / e[2]).log2();
        println!(
            "{:>7}: dense local errors {:.3e} {:.3e} {:.3e}; orders {p1:.3} {p2:.3} (expected {})",
            m.name(),
            e[0],
            e[1],
            e[2],
            q + 1.0
        );
        assert!(
            (p1 - (q + 1.0)).abs() < 0.3 && (p2 - (q + 1.0)).abs() < 0.3,
            "{}",
            m.name()
        );
    }
}

#[test]
fn dense_output_inside_adaptive_steps() {
    for m in METHODS {
        let mut sys = Oscillator;
        let mut s = Solver::new(m, 2, tol(1e-10, 1e-12));
        s.init(&mut sys, 0.0, &[1.0, 0.0], 20.0).unwrap();
        let mut out = [0.0; 2];
        let (mut err_dense, mut err_nodes): (f64, f64) = (0.0, 0.0);
        let mut points = 0;
        while !s.finished() {
            s.step(&mut sys).unwrap();
            s.prepare_dense(&mut sys);
            let (a, b) = (s.t_prev(), s.t());
            for i in 1..10 {
                let t = a + (b - a) * f64::from(i) / 10.0;
                s.interpolate(t, &mut out);
                err_dense = err_dense.max(max_abs_diff(&out, &oscillator_exact(t)));
                points += 1;
            }
            err_nodes = err_nodes.max(max_abs_diff(s.y(), &oscillator_exact(b)));
        }
        println!(
            "{:>7}: {points} dense points, max error {err_dense:.3e} (at nodes {err_nodes:.3e})",
            m.name()
        );
        assert!(err_dense < 1e-8, "{}: {err_dense}", m.name());
        // The interpolant adds little to the global error already there.
        assert!(
            err_dense < 10.0 * err_nodes,
            "{}: {err_dense} vs {err_nodes}",
            m.name()
        );
    }
}

#[test]
fn dense_output_exact_at_endpoints() {
    for m in METHODS {
        let mut sys = LotkaVolterra;
        let mut s = Solver::new(m, 2, tol(1e-6, 1e-9));
        s.init(&mut sys, 0.0, &[10.0, 5.0], 15.0).unwrap();
        let mut out = [0.0; 2];
        // Right after init the interval is [t0, t0].
        s.interpolate(0.0, &mut out);
        assert_eq!(out, [10.0, 5.0]);
        let mut prev_y = [10.0, 5.0];
        while !s.finished() {
            s.step(&mut sys).unwrap();
            s.prepare_dense(&mut sys);
            s.interpolate(s.t_prev(), &mut out);
            assert_eq!(out, prev_y);
            s.interpolate(s.t(), &mut out);
            assert_eq!(out, s.y());
            // Continuity just inside the ends.
            let h = s.t() - s.t_prev();
            s.interpolate(s.t_prev() + 1e-9 * h, &mut out);
            assert!(max_abs_diff(&out, &prev_y) < 1e-6);
            s.interpolate(s.t() - 1e-9 * h, &mut out);
            assert!(max_abs_diff(&out, s.y()) < 1e-6);
            prev_y.copy_from_slice(s.y());
        }
    }
}

#[test]
#[should_panic(expected = "prepare_dense")]
fn interpolate_without_prepare_panics() {
    let mut s = Solver::new(Method::Dop853, 1, Options::default());
    s.init(&mut Decay, 0.0, &[1.0], 1.0).unwrap();
    s.step(&mut Decay).unwrap();
    let mut out = [0.0];
    s.interpolate(0.5 * s.t(), &mut out);
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

#[test]
fn max_steps_error() {
    for m in METHODS {
        let opts = Options {
            max_steps: 10,
            ..tol(1e-10, 1e-12)
        };
        let mut s = Solver::new(m, 2, opts);
        s.init(&mut Oscillator, 0.0, &[1.0, 0.0], 1000.0).unwrap();
        let err = loop {
            if let Err(e) = s.step(&mut Oscillator) {
                break e;
            }
        };
        let t = s.t();
        assert!(t > 0.0 && t < 1000.0);
        assert_eq!(err, StepError::MaxSteps { t, max_steps: 10 });
        let st = s.stats();
        assert_eq!(st.naccept + st.nreject, 10);
        assert!(
            err.to_string().contains("maximum number of steps (10)"),
            "{err}"
        );
    }
}

#[test]
fn step_size_underflow_at_blow_up() {
    for m in METHODS {
        let mut s = Solver::new(m, 1, tol(1e-8, 1e-12));
        s.init(&mut Riccati, 0.0, &[1.0], 2.0).unwrap();
        let err = loop {
            if let Err(e) = s.step(&mut Riccati) {
                break e;
            }
        };
        println!("{:>7}: {err} ({:?})", m.name(), s.stats());
        match err {
            StepError::StepSizeUnderflow { t, h } => {
                assert_eq!(t, s.t());
                // Like SciPy, the numerical solution may creep a hair past the pole.
                assert!((t - 1.0).abs() < 1e-6, "t = {t}");
                assert!(h > 0.0 && h < 10.0 * 2.0 * f64::EPSILON, "h = {h}");
            }
            other => panic!("{}: expected StepSizeUnderflow, got {other:?}", m.name()),
        }
        assert!(err.to_string().starts_with("step size underflow at t = "));
    }
}

#[test]
fn non_finite_rhs_is_reported() {
    for m in METHODS {
        let mut sys = NanAfter { t_bad: 0.5 };
        let mut s = Solver::new(m, 1, tol(1e-8, 1e-12));
        s.init(&mut sys, 0.0, &[1.0], 2.0).unwrap();
        let err = loop {
            if let Err(e) = s.step(&mut sys) {
                break e;
            }
        };
        println!("{:>7}: {err} ({:?})", m.name(), s.stats());
        match err {
            StepError::NonFinite { t } => assert!(t <= 0.5 && t > 0.49, "t = {t}"),
            other => panic!("{}: expected NonFinite, got {other:?}", m.name()),
        }
        // The solution itself stays finite and accurate up to there.
        assert!((s.y()[0] - (-s.t()).exp()).abs() < 1e-7);
    }
}

#[test]
fn non_finite_at_init_is_reported() {
    for m in METHODS {
        let mut s = Solver::new(m, 1, Options::default());
        assert_eq!(
            s.init(&mut Decay, 0.0, &[f64::NAN], 1.0),
            Err(StepError::NonFinite { t: 0.0 })
        );
        let mut sys = NanAfter { t_bad: -1.0 };
        assert_eq!(
            s.init(&mut sys, 0.0, &[1.0], 1.0),
            Err(StepError::NonFinite { t: 0.0 })
        );
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

#[test]
fn stats_are_consistent() {
    for m in METHODS {
        let tab = m.tableau();
        let extra = (tab.k_rows - tab.n_stages - 1) as u64; // 3 for DOP853, 0 for DOPRI5
        for (first_step, dense_every) in [(None, 0), (Some(1.0), 0), (None, 3), (Some(0.5), 1)] {
            let mut sys = Counting {
                inner: LotkaVolterra,
                calls: 0,
            };
            let opts = Options {
                first_step,
                ..tol(1e-7, 1e-10)
            };
            let mut s = Solver::new(m, 2, opts);
            s.init(&mut sys, 0.0, &[10.0, 5.0], 15.0).unwrap();
            let mut dense_steps = 0;
            while !s.finished() {
                s.step(&mut sys).unwrap();
                if dense_every > 0 && s.stats().naccept % dense_every == 0 {
                    s.prepare_dense(&mut sys);
                    s.prepare_dense(&mut sys); // idempotent: counted once
                    dense_steps += 1;
                }
            }
            let st = s.stats();
            let init = if first_step.is_some() { 1 } else { 2 };
            println!(
                "{:>7} first_step {first_step:?} dense every {dense_every}: {st:?}",
                m.name()
            );
            assert_eq!(st.nfev, sys.calls);
            assert_eq!(
                st.nfev,
                init + tab.n_stages as u64 * (st.naccept + st.nreject) + extra * dense_steps
            );
            if first_step == Some(1.0) {
                assert!(st.nreject > 0, "a first step of 1.0 must be rejected");
            }
        }
    }
}

/// SciPy 1.17.1's results for the same problems (printed by
/// /tmp/scipy_steps_check.py: `DOP853`/`RK45` stepped to the end, and
/// `solve_ivp(..., t_eval=linspace(0, T, 11))` for `nfev_t_eval` and `y_end`).
struct ScipyCase {
    name: &'static str,
    method: Method,
    t_end: f64,
    rtol: f64,
    atol: f64,
    nfev: u64,
    naccept: u64,
    nreject: u64,
    nfev_t_eval: u64,
    y_end: [f64; 2],
}

const SCIPY_CASES: [ScipyCase; 4] = [
    ScipyCase {
        name: "oscillator",
        method: Method::Dop853,
        t_end: 20.0,
        rtol: 1e-8,
        atol: 1e-10,
        nfev: 446,
        naccept: 37,
        nreject: 0,
        nfev_t_eval: 479,
        y_end: [0.4080820739172566, -0.9129452419728431],
    },
    ScipyCase {
        name: "oscillator",
        method: Method::Dopri5,
        t_end: 20.0,
        rtol: 1e-8,
        atol: 1e-10,
        nfev: 1604,
        naccept: 249,
        nreject: 18,
        nfev_t_eval: 1604,
        y_end: [0.4080820480179887, -0.9129452293078281],
    },
    ScipyCase {
        name: "lotka_volterra",
        method: Method::Dop853,
        t_end: 15.0,
        rtol: 1e-6,
        atol: 1e-9,
        nfev: 1082,
        naccept: 72,
        nreject: 18,
        nfev_t_eval: 1115,
        y_end: [0.7137514439210779, 0.07540779055648714],
    },
    ScipyCase {
        name: "lotka_volterra",
        method: Method::Dopri5,
        t_end: 15.0,
        rtol: 1e-6,
        atol: 1e-9,
        nfev: 1394,
        naccept: 204,
        nreject: 28,
        nfev_t_eval: 1394,
        y_end: [0.7137350135355517, 0.0754090083262978],
    },
];

/// Integrates like `solve_ivp(..., t_eval=linspace(0, T, 11))`: dense output is
/// built in the steps that contain a requested time (SciPy's searchsorted
/// with side='right': a time equal to the step end belongs to that step).
/// Returns the stats and the value at the last requested time.
fn solve_with_t_eval<S: OdeSystem>(
    m: Method,
    sys: &mut S,
    y0: &[f64],
    t_end: f64,
    opts: Options,
) -> (Stats, Vec<f64>) {
    let ts: Vec<f64> = (0..=10)
        .map(|i| {
            if i == 10 {
                t_end
            } else {
                f64::from(i) * (t_end / 10.0)
            }
        })
        .collect();
    let mut s = Solver::new(m, y0.len(), opts);
    s.init(sys, 0.0, y0, t_end).unwrap();
    let mut next = 0;
    let mut out = vec![0.0; y0.len()];
    while !s.finished() {
        s.step(sys).unwrap();
        while next < ts.len() && ts[next] <= s.t() {
            s.prepare_dense(sys);
            s.interpolate(ts[next], &mut out);
            next += 1;
        }
    }
    assert_eq!(next, ts.len());
    (s.stats(), out)
}

#[test]
fn scipy_step_counts() {
    for c in &SCIPY_CASES {
        let (m, opts) = (c.method, tol(c.rtol, c.atol));
        let ((st, y_end), (st_eval, y_eval)) = match c.name {
            "oscillator" => {
                let s = solve(m, &mut Oscillator, &[1.0, 0.0], c.t_end, opts);
                let y = s.y().to_vec();
                (
                    (s.stats(), y),
                    solve_with_t_eval(m, &mut Oscillator, &[1.0, 0.0], c.t_end, opts),
                )
            }
            _ => {
                let s = solve(m, &mut LotkaVolterra, &[10.0, 5.0], c.t_end, opts);
                let y = s.y().to_vec();
                (
                    (s.stats(), y),
                    solve_with_t_eval(m, &mut LotkaVolterra, &[10.0, 5.0], c.t_end, opts),
                )
            }
        };
        println!(
            "{:15} {}: rtol={:e} atol={:e} nfev={} naccept={} nreject={} nfev_t_eval11={} y_end={:?}\n\
             {:15} scipy:  nfev={} naccept={} nreject={} nfev_t_eval11={} y_end={:?}",
            c.name,
            m.name(),
            c.rtol,
            c.atol,
            st.nfev,
            st.naccept,
            st.nreject,
            st_eval.nfev,
            y_end,
            "",
            c.nfev,
            c.naccept,
            c.nreject,
            c.nfev_t_eval,
            c.y_end
        );
        assert_eq!(
            (st.nfev, st.naccept, st.nreject),
            (c.nfev, c.naccept, c.nreject),
            "{} {}",
            c.name,
            m.name()
        );
        assert_eq!(
            st_eval.nfev,
            c.nfev_t_eval,
            "{} {} with t_eval",
            c.name,
            m.name()
        );
        // Same steps, so the same numbers up to summation-order rounding.
        assert_eq!(y_eval, y_end);
        for (a, b) in y_end.iter().zip(&c.y_end) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{} {}: {a} vs scipy {b}",
                c.name,
                m.name()
            );
        }
    }
}

#[test]
fn scipy_blow_up_counts() {
    // SciPy 1.17.1 on y' = y^2, y(0) = 1, t_bound = 2, rtol 1e-8, atol 1e-12:
    // fails with "Required step size is less than spacing between numbers".
    for (m, nfev, naccept, nreject) in [
        (Method::Dop853, 3590, 150, 149),
        (Method::Dopri5, 3002, 499, 1),
    ] {
        let mut s = Solver::new(m, 1, tol(1e-8, 1e-12));
        s.init(&mut Riccati, 0.0, &[1.0], 2.0).unwrap();
        let err = loop {
            if let Err(e) = s.step(&mut Riccati) {
                break e;
            }
        };
        let st = s.stats();
        println!("riccati_blowup {}: {err}; {st:?} (scipy: nfev={nfev} naccept={naccept} nreject={nreject})", m.name());
        assert!(matches!(err, StepError::StepSizeUnderflow { .. }));
        assert_eq!(
            (st.nfev, st.naccept, st.nreject),
            (nfev, naccept, nreject),
            "{}",
            m.name()
        );
    }
}

// ---------------------------------------------------------------------------
// No allocation in init / step / prepare_dense / interpolate
// ---------------------------------------------------------------------------

pub(crate) mod alloc_counter {
    //! Counts the allocations of the current thread (tests run in parallel).
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn bump() {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    pub fn count() -> u64 {
        ALLOCATIONS.with(|c| c.get())
    }

    pub struct CountingAllocator;

    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: CountingAllocator = CountingAllocator;
}

#[test]
fn no_allocation_while_integrating() {
    // The counter sees allocations of this thread.
    let c0 = alloc_counter::count();
    drop(std::hint::black_box(vec![0.0_f64; 8]));
    assert!(alloc_counter::count() > c0);

    for m in [Method::Dop853, Method::Dopri5, Method::Rodas4] {
        let mut sys = LotkaVolterra;
        let mut s = Solver::new(m, 2, tol(1e-8, 1e-10));
        let mut failing = Solver::new(m, 1, tol(1e-8, 1e-12));
        let mut out = [0.0; 2];
        let before = alloc_counter::count();
        s.init(&mut sys, 0.0, &[10.0, 5.0], 15.0).unwrap();
        while !s.finished() {
            s.step(&mut sys).unwrap();
            s.prepare_dense(&mut sys);
            s.interpolate(0.5 * (s.t_prev() + s.t()), &mut out);
        }
        // A failing run too (rejections, error path).
        failing.init(&mut Riccati, 0.0, &[1.0], 2.0).unwrap();
        while failing.step(&mut Riccati).is_ok() {}
        assert_eq!(
            alloc_counter::count(),
            before,
            "{}: allocation while integrating",
            m.name()
        );
    }
}

#[test]
fn solver_can_move_between_threads() {
    // Batches run one solver per rayon task.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Solver>();
}

// ---------------------------------------------------------------------------
// Rodas4 (stiff problems)
// ---------------------------------------------------------------------------

/// Prothero–Robinson: y' = -λ (y - sin t) + cos t, exact y = sin t from y(0) = 0.
/// Stiff for large λ, and non-autonomous (exercises the ∂f/∂t terms).
struct ProtheroRobinson(f64);
impl OdeSystem for ProtheroRobinson {
    fn dim(&self) -> usize {
        1
    }
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = -self.0 * (y[0] - t.sin()) + t.cos();
    }
}

#[test]
fn rodas4_fixed_step_order() {
    let m = Method::Rodas4;
    check_order(m, observed_orders(m, &mut Decay, &[1.0], 4.0, 16, &[(-4.0f64).exp()]));
    check_order(m, observed_orders(m, &mut Oscillator, &[1.0, 0.0], 10.0, 64, &oscillator_exact(10.0)));
    check_order(m, observed_orders(m, &mut Riccati, &[1.0], 0.5, 16, &[2.0]));
    // Non-autonomous, with y(0) off the slow manifold so the solution is not sin t alone:
    // y = sin t + e^{-λt}.
    let l = 2.0;
    let t_end: f64 = 3.0;
    let exact = t_end.sin() + (-l * t_end).exp();
    check_order(m, observed_orders(m, &mut ProtheroRobinson(l), &[1.0], t_end, 16, &[exact]));
}

#[test]
fn rodas4_dense_output_order() {
    // Rodas4's continuous extension has order 3: local error O(h^4).
    let e: Vec<f64> = (0..3).map(|i| dense_local_error(Method::Rodas4, 0.5 / f64::from(1 << i))).collect();
    let (p1, p2) = ((e[0] / e[1]).log2(), (e[1] / e[2]).log2());
    println!("rodas4: dense local errors {e:?}; orders {p1:.3} {p2:.3} (expected 4)");
    assert!((p1 - 4.0).abs() < 0.4 && (p2 - 4.0).abs() < 0.4, "{p1} {p2}");
}

#[test]
fn rodas4_takes_few_steps_on_a_stiff_problem() {
    // λ = 1e6 on [0, 10]: an explicit method needs ~λ·T/3 steps for stability;
    // Rodas4 follows the smooth solution sin t.
    let mut sys = ProtheroRobinson(1e6);
    let s = solve(Method::Rodas4, &mut sys, &[0.0], 10.0, tol(1e-8, 1e-10));
    let st = s.stats();
    println!("rodas4 on Prothero-Robinson(1e6): {st:?}, error {:.2e}", (s.y()[0] - 10f64.sin()).abs());
    assert!(st.naccept < 500, "{st:?}");
    assert!((s.y()[0] - 10f64.sin()).abs() < 1e-7);
    // Landing on requested times with stop_at keeps the step accuracy there.
    let mut s = Solver::new(Method::Rodas4, 1, tol(1e-8, 1e-10));
    s.init(&mut sys, 0.0, &[0.0], 10.0).unwrap();
    for k in 1..=20 {
        let t = 0.5 * k as f64;
        s.stop_at(t);
        while s.t() < t {
            s.step(&mut sys).unwrap();
        }
        assert_eq!(s.t(), t);
        assert!((s.y()[0] - t.sin()).abs() < 1e-7, "t = {t}: {}", s.y()[0] - t.sin());
    }
}
