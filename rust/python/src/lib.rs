//! Thin PyO3 bindings of ntk-core: convert arguments, release the GIL while
//! computing, turn core errors into ValueError and panics into RuntimeError.
//! No science here — see the ntk-core crate.

use ntk_core::activation::Activation;
use ntk_core::batch::{self, AnySimulation, Control, Job};
use ntk_core::dispatch;
use ntk_core::flow::Spectrum;
use ntk_core::model::{AnyModel, Converse, Linear, Model as _, Quadratic, TwoLayer};
use ntk_core::run::{Metrics, RunConfig, RunResult, Status};
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

fn value_error(e: ntk_core::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs `f` without the GIL; a panic inside becomes a RuntimeError instead of
/// unwinding into the interpreter.
fn compute<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|p| PyRuntimeError::new_err(format!("internal error in the ntk_tui core: {}", batch::panic_message(&p))))
}


fn vec1(arr: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    arr.as_array().iter().copied().collect()
}

/// A float64 array with `ndim` dimensions from anything `numpy.asarray` takes
/// (lists, other dtypes, any memory layout), copied in row-major order with its
/// shape. Errors name `param`.
fn float_array(py: Python<'_>, param: &str, obj: &Bound<'_, PyAny>, ndim: usize) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float64")?;
    let arr = py
        .import("numpy")?
        .call_method("asarray", (obj,), Some(&kwargs))
        .map_err(|e| PyTypeError::new_err(format!("{param}: must be an array of real numbers ({})", e.value(py))))?;
    let arr = arr.cast_into::<PyArrayDyn<f64>>().map_err(|_| PyTypeError::new_err(format!("{param}: must be an array of real numbers")))?;
    if arr.ndim() != ndim {
        let dims: Vec<String> = arr.shape().iter().map(|k| k.to_string()).collect();
        let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        return Err(PyValueError::new_err(format!("{param}: must be a {ndim}-D array (got shape {shape})")));
    }
    let shape = arr.shape().to_vec();
    let data = arr.readonly().as_array().iter().copied().collect();
    Ok((data, shape))
}

/// A non-negative integer; errors name `param` instead of a bare OverflowError.
fn count(param: &str, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{param}: must be an integer (got a bool)")));
    }
    obj.extract::<u64>().map_err(|_| {
        let shown = obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
        PyValueError::new_err(format!("{param}: must be a whole number in 0..=2**64-1 (got {shown})"))
    })
}

fn size(param: &str, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    usize::try_from(count(param, obj)?).map_err(|_| PyValueError::new_err(format!("{param}: too large for this machine")))
}

// Argument converters (`from_py_with`), one per parameter name so errors name it.
fn arg_m(o: &Bound<'_, PyAny>) -> PyResult<usize> {
    size("m", o)
}
fn arg_n(o: &Bound<'_, PyAny>) -> PyResult<usize> {
    size("n", o)
}
fn arg_p(o: &Bound<'_, PyAny>) -> PyResult<usize> {
    size("p", o)
}
fn arg_seed(o: &Bound<'_, PyAny>) -> PyResult<u64> {
    count("seed", o)
}
fn arg_x(o: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, Vec<usize>)> {
    float_array(o.py(), "X", o, 2)
}
fn arg_y(o: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    Ok(float_array(o.py(), "y", o, 1)?.0)
}
fn arg_w(o: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    Ok(float_array(o.py(), "w", o, 1)?.0)
}
fn arg_w0(o: &Bound<'_, PyAny>) -> PyResult<Option<Vec<f64>>> {
    if o.is_none() {
        return Ok(None);
    }
    Ok(Some(float_array(o.py(), "w0", o, 1)?.0))
}
/// Only the conversion; the core checks the value (1 or -1).
fn arg_sign(o: &Bound<'_, PyAny>) -> PyResult<i32> {
    match o.extract::<i32>() {
        Ok(v) if !o.is_instance_of::<pyo3::types::PyBool>() => Ok(v),
        _ => Err(PyValueError::new_err(format!("sign: must be 1 or -1 (got {})", o.repr()?))),
    }
}
fn arg_centered(o: &Bound<'_, PyAny>) -> PyResult<bool> {
    o.extract::<bool>().map_err(|_| PyTypeError::new_err("centered: must be True or False"))
}

/// Common base of the model families: evaluation, constants and parameters.
#[pyclass(subclass, frozen, module = "ntk_tui._core")]
struct Model {
    inner: Arc<AnyModel>,
    spectrum: Mutex<Option<Arc<Spectrum>>>,
}

impl Model {
    fn wrap(m: AnyModel) -> Model {
        Model { inner: Arc::new(m), spectrum: Mutex::new(None) }
    }

    /// K0's eigendecomposition, computed once per model.
    fn spectrum(&self, py: Python<'_>) -> PyResult<Arc<Spectrum>> {
        if let Some(s) = self.spectrum.lock().unwrap().as_ref() {
            return Ok(s.clone());
        }
        let m = self.inner.clone();
        let s = Arc::new(compute(py, move || batch::spectrum_of(&m))?.map_err(value_error)?);
        *self.spectrum.lock().unwrap() = Some(s.clone());
        Ok(s)
    }

    fn check_w(&self, w: &[f64]) -> PyResult<()> {
        let p = self.inner.p();
        if w.len() != p {
            return Err(PyValueError::new_err(format!("w: must have p = {p} entries (got {})", w.len())));
        }
        ntk_core::error::check::finite("w", w).map_err(value_error)
    }
}

#[pymethods]
impl Model {
    /// Model family name.
    #[getter]
    fn family(&self) -> &'static str {
        self.inner.family()
    }
    /// Number of outputs n.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }
    /// Number of parameters p.
    #[getter]
    fn p(&self) -> usize {
        self.inner.p()
    }
    /// The initial weights w0 (p entries).
    #[getter]
    fn w0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, dispatch!(&*self.inner, m => m.w0()))
    }
    /// The targets y* the outputs are trained towards (n entries).
    #[getter]
    fn y_star<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, dispatch!(&*self.inner, m => m.y_star()))
    }
    /// "exact" or "upper_bound".
    #[getter]
    fn lip_dh_kind(&self) -> &'static str {
        dispatch!(&*self.inner, m => m.lip_dh_kind().name())
    }
    /// Lip(Dh) on the ball of radius rho around w0 (exact or an upper bound).
    fn lip_dh_bound(&self, rho: f64) -> PyResult<f64> {
        ntk_core::error::check::non_negative("rho", rho).map_err(value_error)?;
        Ok(dispatch!(&*self.inner, m => m.lip_dh(rho)))
    }
    /// Lip(h) on the ball of radius rho around w0 (exact or an upper bound; may be inf).
    fn lip_h_bound(&self, rho: f64) -> PyResult<f64> {
        ntk_core::error::check::non_negative("rho", rho).map_err(value_error)?;
        Ok(dispatch!(&*self.inner, m => m.lip_h(rho)))
    }
    /// R0 = ||y* - alpha h(w0)||² / 2.
    fn r0(&self, alpha: f64) -> PyResult<f64> {
        ntk_core::error::check::positive("alpha", alpha).map_err(value_error)?;
        let (y, h0) = dispatch!(&*self.inner, m => (m.y_star(), m.h0()));
        Ok(0.5 * y.iter().zip(h0).map(|(y, h)| (y - alpha * h).powi(2)).sum::<f64>())
    }
    /// h(w), an n-vector.
    fn h<'py>(&self, py: Python<'py>, #[pyo3(from_py_with = arg_w)] w: Vec<f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.check_w(&w)?;
        let inner = self.inner.clone();
        let out = compute(py, move || dispatch!(&*inner, m => m.h(&w)))?;
        Ok(PyArray1::from_vec(py, out))
    }
    /// The Jacobian J(w) = Dh(w), an n x p matrix.
    fn jacobian<'py>(&self, py: Python<'py>, #[pyo3(from_py_with = arg_w)] w: Vec<f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.check_w(&w)?;
        let (n, p) = (self.inner.n(), self.inner.p());
        if n.saturating_mul(p) > 200_000_000 {
            return Err(PyValueError::new_err(format!("jacobian: n*p = {} is too large to form densely", n * p)));
        }
        let inner = self.inner.clone();
        let out = compute(py, move || dispatch!(&*inner, m => m.jacobian(&w)))?;
        Ok(PyArray1::from_vec(py, out).reshape([n, p])?)
    }
    /// The initial kernel K0 = J0 J0^T (n x n).
    fn kernel0<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let n = self.inner.n();
        let inner = self.inner.clone();
        let out = compute(py, move || dispatch!(&*inner, m => m.kernel0()))?;
        Ok(PyArray1::from_vec(py, out).reshape([n, n])?)
    }
    /// The constructor's scalar parameters (JSON-able), enough to rebuild the model
    /// together with its data.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("family", self.inner.family())?;
        match &*self.inner {
            AnyModel::Converse(c) => {
                d.set_item("T", c.t_horizon)?;
                d.set_item("R0", c.r0)?;
                d.set_item("lip_dh", c.lip_dh)?;
                d.set_item("sign", c.sign as i32)?;
            }
            AnyModel::TwoLayer(t) => {
                d.set_item("n", t.n)?;
                d.set_item("d", t.d)?;
                d.set_item("m", t.m)?;
                d.set_item("activation", t.activation.name())?;
                d.set_item("seed", t.seed)?;
                d.set_item("centered", t.centered)?;
            }
            AnyModel::Quadratic(q) => {
                d.set_item("p", q.p)?;
                d.set_item("n", q.n)?;
                d.set_item("lip_dh", q.lip)?;
                d.set_item("seed", q.seed)?;
            }
            AnyModel::Linear(l) => {
                d.set_item("p", l.p)?;
                d.set_item("n", l.n)?;
                d.set_item("seed", l.seed)?;
            }
        }
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!("<{} model: n={}, p={}>", self.inner.family(), self.inner.n(), self.inner.p())
    }
}

/// Theorem 1.3's model h(w) = w/sqrt(T) + (sign lip_dh / 2) w², w0 = 0, y* = sqrt(2 R0).
#[pyclass(extends = Model, frozen, name = "Converse", module = "ntk_tui._core")]
struct ConverseModel;

#[pymethods]
impl ConverseModel {
    #[new]
    #[pyo3(signature = (T, R0, lip_dh, sign = 1))]
    #[allow(non_snake_case)]
    fn new(T: f64, R0: f64, lip_dh: f64, #[pyo3(from_py_with = arg_sign)] sign: i32) -> PyResult<PyClassInitializer<Self>> {
        let m = Converse::new(T, R0, lip_dh, sign).map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::Converse(Arc::new(m)))).add_subclass(ConverseModel))
    }
}

/// The mean-field two-layer network of seed eq. (8)-(10) on data (X, y).
#[pyclass(extends = Model, frozen, name = "TwoLayer", module = "ntk_tui._core")]
struct TwoLayerModel;

#[pymethods]
impl TwoLayerModel {
    #[new]
    #[pyo3(signature = (X, y, m, activation = "tanh", seed = 0, w0 = None, centered = true))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = arg_x)] X: (Vec<f64>, Vec<usize>),
        #[pyo3(from_py_with = arg_y)] y: Vec<f64>,
        #[pyo3(from_py_with = arg_m)] m: usize,
        activation: &str,
        #[pyo3(from_py_with = arg_seed)] seed: u64,
        #[pyo3(from_py_with = arg_w0)] w0: Option<Vec<f64>>,
        #[pyo3(from_py_with = arg_centered)] centered: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let (xv, shape) = X;
        let (n, d) = (shape[0], shape[1]);
        let (yv, w0v) = (y, w0);
        let act = Activation::parse(activation).map_err(value_error)?;
        let net = compute(py, move || TwoLayer::new(xv, n, d, yv, m, act, seed, w0v, centered))?
            .map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::TwoLayer(Arc::new(net)))).add_subclass(TwoLayerModel))
    }
}

/// h(w) = J w + Q[w, w]/2 with ||Q|| = lip_dh exactly.
#[pyclass(extends = Model, frozen, name = "Quadratic", module = "ntk_tui._core")]
struct QuadraticModel;

#[pymethods]
impl QuadraticModel {
    #[new]
    #[pyo3(signature = (p, n, lip_dh = 1.0, seed = 0))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = arg_p)] p: usize,
        #[pyo3(from_py_with = arg_n)] n: usize,
        lip_dh: f64,
        #[pyo3(from_py_with = arg_seed)] seed: u64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = compute(py, move || Quadratic::new(p, n, lip_dh, seed))?.map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::Quadratic(Arc::new(m)))).add_subclass(QuadraticModel))
    }
}

/// h(w) = J w (gap exactly 0).
#[pyclass(extends = Model, frozen, name = "Linear", module = "ntk_tui._core")]
struct LinearModel;

#[pymethods]
impl LinearModel {
    #[new]
    #[pyo3(signature = (p, n, seed = 0))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = arg_p)] p: usize,
        #[pyo3(from_py_with = arg_n)] n: usize,
        #[pyo3(from_py_with = arg_seed)] seed: u64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = compute(py, move || Linear::new(p, n, seed))?.map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::Linear(Arc::new(m)))).add_subclass(LinearModel))
    }
}

#[allow(clippy::too_many_arguments)]
fn make_config(
    alpha: f64,
    t_end: f64,
    times: &PyReadonlyArray1<'_, f64>,
    rtol: f64,
    atol: f64,
    method: &str,
    max_steps: u64,
    metrics: Option<Vec<String>>,
) -> PyResult<RunConfig> {
    let metrics = match metrics {
        None => Metrics::ALL,
        Some(names) => Metrics::parse(&names).map_err(value_error)?,
    };
    RunConfig::new(alpha, t_end, vec1(times), method, rtol, atol, max_steps, metrics).map_err(value_error)
}

/// The model of a run configured by `cfg` (checked against it) and its spectrum.
fn run_model(py: Python<'_>, model: &Bound<'_, Model>, cfg: &RunConfig) -> PyResult<(Arc<AnyModel>, Arc<Spectrum>)> {
    let m = model.get();
    cfg.check_model(m.inner.p()).map_err(value_error)?;
    Ok((m.inner.clone(), m.spectrum(py)?))
}

/// A run's measurements and scalars as a dict of numpy arrays (truncated to the
/// points reached).
fn result_dict<'py>(py: Python<'py>, r: &RunResult, metrics: Metrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let m = &r.measurements;
    let k = m.len;
    for (name, v) in m.series() {
        d.set_item(name, PyArray1::from_slice(py, &v[..k]))?;
    }
    for (name, v) in [("output", &m.output), ("output_lin", &m.output_lin)] {
        d.set_item(name, PyArray1::from_slice(py, &v[..k * m.n]).reshape([k, m.n])?)?;
    }
    d.set_item("requested_times", PyArray1::from_slice(py, &m.times))?;
    let s = r.scalars;
    for (name, v) in [
        ("alpha", s.alpha),
        ("T", s.t_end),
        ("R0", s.r0),
        ("rho", s.rho),
        ("lip_dh", s.lip_dh),
        ("lip_h", s.lip_h),
        ("kappa", s.kappa),
    ] {
        d.set_item(name, v)?;
    }
    let stats = PyDict::new(py);
    stats.set_item("nfev", r.stats.nfev)?;
    stats.set_item("naccept", r.stats.naccept)?;
    stats.set_item("nreject", r.stats.nreject)?;
    stats.set_item("elapsed_s", r.elapsed.as_secs_f64())?;
    stats.set_item("method", r.method.name())?;
    stats.set_item("rtol", r.rtol)?;
    d.set_item("stats", stats)?;
    d.set_item("status", r.status.describe())?;
    d.set_item("metrics", metrics.names())?;
    Ok(d)
}

/// Runs one model to the end; returns the result dict (check its "status").
/// Computes in slices of 100 ms without the GIL and checks for signals in
/// between, so Ctrl-C interrupts a long run.
#[pyfunction]
#[pyo3(signature = (model, alpha, T, times, rtol, atol, method, max_steps, metrics = None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn simulate<'py>(
    py: Python<'py>,
    model: &Bound<'py, Model>,
    alpha: f64,
    T: f64,
    times: PyReadonlyArray1<'py, f64>,
    rtol: f64,
    atol: f64,
    method: &str,
    max_steps: u64,
    metrics: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = make_config(alpha, T, &times, rtol, atol, method, max_steps, metrics)?;
    let (inner, spectrum) = run_model(py, model, &cfg)?;
    let metrics = cfg.metrics;
    let mut sim = AnySimulation::new(&inner, spectrum, cfg);
    loop {
        let running = compute(py, || {
            sim.advance(usize::MAX, Some(Instant::now() + SLICE), None);
            sim.status() == Status::Running
        })?;
        if !running {
            break;
        }
        py.check_signals()?;
    }
    result_dict(py, &sim.result(), metrics)
}

/// How long compute runs between checks for Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

/// `now + seconds`, or None (no deadline) when that is beyond any clock.
fn deadline_after(seconds: f64) -> Option<Instant> {
    Duration::try_from_secs_f64(seconds).ok().and_then(|d| Instant::now().checked_add(d))
}

/// A run advanced piece by piece (for live display).
#[pyclass(module = "ntk_tui._core")]
struct Simulation {
    sim: Arc<Mutex<AnySimulation>>,
    metrics: Metrics,
}

#[pymethods]
impl Simulation {
    #[new]
    #[pyo3(signature = (model, alpha, T, times, rtol, atol, method, max_steps, metrics = None))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: &Bound<'_, Model>,
        alpha: f64,
        T: f64,
        times: PyReadonlyArray1<'_, f64>,
        rtol: f64,
        atol: f64,
        method: &str,
        max_steps: u64,
        metrics: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let cfg = make_config(alpha, T, &times, rtol, atol, method, max_steps, metrics)?;
        let (inner, spectrum) = run_model(py, model, &cfg)?;
        let metrics = cfg.metrics;
        let sim = AnySimulation::new(&inner, spectrum, cfg);
        Ok(Simulation { sim: Arc::new(Mutex::new(sim)), metrics })
    }

    /// Advances by at most max_points requested times and/or max_seconds of
    /// compute (GIL released); returns (first, count) of the new points.
    #[pyo3(signature = (max_points = None, max_seconds = None))]
    fn advance(&self, py: Python<'_>, max_points: Option<usize>, max_seconds: Option<f64>) -> PyResult<(usize, usize)> {
        if let Some(s) = max_seconds {
            if !(s.is_finite() && s >= 0.0) {
                return Err(PyValueError::new_err(format!("max_seconds: must be a finite number >= 0 (got {s})")));
            }
        }
        let sim = self.sim.clone();
        compute(py, move || {
            let deadline = max_seconds.and_then(deadline_after);
            let mut sim = lock(&sim);
            let first = sim.n_done();
            let added = sim.advance(max_points.unwrap_or(usize::MAX), deadline, None);
            (first, added)
        })
    }

    /// True once the run has ended (finished, failed or cancelled).
    #[getter]
    fn done(&self, py: Python<'_>) -> bool {
        self.read(py, |s| s.status() != Status::Running)
    }
    /// Requested times measured so far.
    #[getter]
    fn n_done(&self, py: Python<'_>) -> usize {
        self.read(py, |s| s.n_done())
    }
    /// Requested times in all.
    #[getter]
    fn n_total(&self, py: Python<'_>) -> usize {
        self.read(py, |s| s.n_total())
    }
    /// Current time of the integrator.
    #[getter]
    fn t(&self, py: Python<'_>) -> f64 {
        self.read(py, |s| s.t())
    }
    /// "running", "ok", "failed: <why>" or "cancelled".
    #[getter]
    fn status(&self, py: Python<'_>) -> String {
        self.read(py, |s| s.status().describe())
    }
    /// Result dict of what has been measured so far.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.read(py, |s| s.result());
        result_dict(py, &r, self.metrics)
    }
}

impl Simulation {
    /// Reads the run; waits for an `advance` running in another thread without
    /// holding the GIL, so other Python threads keep going meanwhile.
    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&AnySimulation) -> T + Send) -> T {
        py.detach(|| f(&lock(&self.sim)))
    }
}

/// Locks a mutex even if a panic poisoned it (the data is only ever replaced whole).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a batch thread has come to.
enum Outcome {
    Running,
    Done(Vec<RunResult>),
    /// the batch thread failed as a whole (e.g. its thread pool could not start)
    Failed(String),
}

/// The outcome of a batch thread, which any number of threads may wait for.
struct Shared {
    outcome: Mutex<Outcome>,
    changed: Condvar,
}

/// A batch running on a background thread.
#[pyclass(module = "ntk_tui._core", frozen)]
struct BatchJob {
    control: Arc<Control>,
    shared: Arc<Shared>,
    metrics: Metrics,
}

#[pymethods]
impl BatchJob {
    /// (runs finished, total runs)
    #[getter]
    fn progress(&self) -> (usize, usize) {
        (self.control.done.load(Ordering::Relaxed), self.control.total.load(Ordering::Relaxed))
    }
    /// Asks the batch to stop: running runs stop at their next step, finished runs are kept.
    fn cancel(&self) {
        self.control.cancel.store(true, Ordering::Relaxed);
    }
    /// True once cancel() was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.control.cancel.load(Ordering::Relaxed)
    }
    /// Waits up to `timeout` seconds (forever if None or inf) with the GIL
    /// released; True when finished. Any number of threads may wait at once.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if let Some(t) = timeout {
            if t.is_nan() || t < 0.0 {
                return Err(PyValueError::new_err(format!("timeout: must be a number >= 0, inf or None (got {t})")));
            }
        }
        let deadline = timeout.and_then(deadline_after);
        let shared = self.shared.clone();
        Ok(py.detach(move || {
            let mut outcome = lock(&shared.outcome);
            while matches!(*outcome, Outcome::Running) {
                outcome = match deadline {
                    None => shared.changed.wait(outcome).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return false;
                        }
                        shared.changed.wait_timeout(outcome, left).unwrap_or_else(|e| e.into_inner()).0
                    }
                };
            }
            true
        }))
    }
    /// True once the batch has ended.
    #[getter]
    fn done(&self) -> bool {
        !matches!(*lock(&self.shared.outcome), Outcome::Running)
    }
    /// The result dicts in job order (waits for the end).
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.with_results(py, |results| results.iter().map(|r| result_dict(py, r, self.metrics)).collect())
    }
    /// One series of every run, runs x requested times, NaN where a run did not
    /// get (waits for the end).
    fn series<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.with_results(py, |results| {
            let k = results.first().map_or(0, |r| r.measurements.times.len());
            let mut out = vec![f64::NAN; results.len() * k];
            for (row, r) in out.chunks_exact_mut(k.max(1)).zip(results) {
                let m = &r.measurements;
                let Some((_, v)) = m.series().into_iter().find(|(n, _)| *n == name) else {
                    let names: Vec<_> = m.series().iter().map(|(n, _)| *n).collect();
                    return Err(PyValueError::new_err(format!("name: unknown series '{name}'; accepted: {}", names.join(", "))));
                };
                row[..m.len].copy_from_slice(&v[..m.len]);
            }
            Ok(PyArray1::from_vec(py, out).reshape([results.len(), k])?)
        })
    }
    /// The status of every run ("ok", "failed: ...", "cancelled"), in job order.
    fn statuses(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with_results(py, |results| Ok(results.iter().map(|r| r.status.describe()).collect()))
    }
}

impl BatchJob {
    /// Waits for the end, then hands the results to `f`.
    fn with_results<T>(&self, py: Python<'_>, f: impl FnOnce(&[RunResult]) -> PyResult<T>) -> PyResult<T> {
        self.wait(py, None)?;
        match &*lock(&self.shared.outcome) {
            Outcome::Done(results) => f(results),
            Outcome::Failed(why) => Err(PyRuntimeError::new_err(format!("the batch failed: {why}"))),
            Outcome::Running => unreachable!("wait(None) returns once the batch has ended"),
        }
    }
}

/// Starts a batch of runs on a background thread. `jobs` is a list of
/// (model index, alpha); every run shares T, times and the options.
#[pyfunction]
#[pyo3(signature = (models, jobs, T, times, rtol, atol, method, max_steps, metrics = None, threads = None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn start_batch(
    models: Vec<Bound<'_, Model>>,
    jobs: Vec<(usize, f64)>,
    T: f64,
    times: PyReadonlyArray1<'_, f64>,
    rtol: f64,
    atol: f64,
    method: &str,
    max_steps: u64,
    metrics: Option<Vec<String>>,
    threads: Option<usize>,
) -> PyResult<BatchJob> {
    batch::check_threads(threads).map_err(value_error)?;
    let mut core_jobs = Vec::with_capacity(jobs.len());
    let mut metrics_used = Metrics::ALL;
    for (i, &(model, alpha)) in jobs.iter().enumerate() {
        if model >= models.len() {
            return Err(PyValueError::new_err(format!("jobs[{i}]: model index {model} out of range")));
        }
        let cfg = make_config(alpha, T, &times, rtol, atol, method, max_steps, metrics.clone())?;
        cfg.check_model(models[model].get().inner.p()).map_err(value_error)?;
        metrics_used = cfg.metrics;
        core_jobs.push(Job { model, cfg });
    }
    let models: Vec<Arc<AnyModel>> = models.iter().map(|m| m.get().inner.clone()).collect();
    let control = Arc::new(Control::default());
    control.total.store(core_jobs.len(), Ordering::Relaxed);
    let shared = Arc::new(Shared { outcome: Mutex::new(Outcome::Running), changed: Condvar::new() });
    let (ctl, out) = (control.clone(), shared.clone());
    std::thread::Builder::new()
        .name("ntk-batch".into())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| batch::run_batch(&models, &core_jobs, threads, &ctl)));
            *lock(&out.outcome) = match result {
                Ok(Ok(r)) => Outcome::Done(r),
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
                Err(panic) => Outcome::Failed(format!("internal error: {}", batch::panic_message(&panic))),
            };
            out.changed.notify_all();
        })
        .map_err(|e| PyRuntimeError::new_err(format!("could not start the batch thread: {e}")))?;
    Ok(BatchJob { control, shared, metrics: metrics_used })
}

/// Both sides of Lemma 3.3: (||exp(-(A+B)^T(A+B) t) - exp(-A^T A t)||_op, 2 sqrt(t) ||B||_op).
#[pyfunction]
#[allow(non_snake_case)]
fn lemma_3_3(py: Python<'_>, A: PyReadonlyArray2<'_, f64>, B: PyReadonlyArray2<'_, f64>, t: f64) -> PyResult<(f64, f64)> {
    let (a, b) = (A.as_array(), B.as_array());
    if a.dim() != b.dim() {
        return Err(PyValueError::new_err(format!("B: must have the shape of A {:?} (got {:?})", a.dim(), b.dim())));
    }
    let (rows, cols) = a.dim();
    if rows == 0 || cols == 0 || cols > 4096 {
        return Err(PyValueError::new_err(format!("A: needs 1..4096 columns and at least one row (got {rows} x {cols})")));
    }
    ntk_core::error::check::non_negative("t", t).map_err(value_error)?;
    let av: Vec<f64> = a.iter().copied().collect();
    let bv: Vec<f64> = b.iter().copied().collect();
    ntk_core::error::check::finite("A", &av).map_err(value_error)?;
    ntk_core::error::check::finite("B", &bv).map_err(value_error)?;
    compute(py, move || ntk_core::linalg::lemma_3_3(&av, &bv, rows, cols, t))?.map_err(value_error)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METRICS", ntk_core::run::METRIC_NAMES.to_vec())?;
    m.add("ACTIVATIONS", ntk_core::activation::NAMES.to_vec())?;
    m.add("DEFAULT_RTOL", ntk_core::DEFAULT_RTOL)?;
    m.add("DEFAULT_ATOL", ntk_core::DEFAULT_ATOL)?;
    m.add("MAX_THREADS", batch::MAX_THREADS)?;
    m.add_class::<Model>()?;
    m.add_class::<ConverseModel>()?;
    m.add_class::<TwoLayerModel>()?;
    m.add_class::<QuadraticModel>()?;
    m.add_class::<LinearModel>()?;
    m.add_class::<Simulation>()?;
    m.add_class::<BatchJob>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(start_batch, m)?)?;
    m.add_function(wrap_pyfunction!(lemma_3_3, m)?)?;
    Ok(())
}
