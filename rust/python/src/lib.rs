//! Thin PyO3 bindings of ntk-core: convert arguments, release the GIL while
//! computing, turn core errors into ValueError and panics into RuntimeError.
//! No science here — see the ntk-core crate.

use ntk_core::activation::Activation;
use ntk_core::batch::{self, AnySimulation, Control, Job};
use ntk_core::dispatch;
use ntk_core::flow::Spectrum;
use ntk_core::model::{AnyModel, Converse, Linear, Model as _, Quadratic, TwoLayer};
use ntk_core::run::{Metrics, RunConfig, RunResult, Status};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

fn value_error(e: ntk_core::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs `f` without the GIL; a panic inside becomes a RuntimeError instead of
/// unwinding into the interpreter.
fn compute<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f))).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        PyRuntimeError::new_err(format!("internal error in the ntk_tui core: {msg}"))
    })
}

fn vec1(arr: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    arr.as_array().iter().copied().collect()
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
        let s = Arc::new(compute(py, move || batch::spectrum_of(&m))?);
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
    #[getter]
    fn w0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, dispatch!(&*self.inner, m => m.w0()))
    }
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
    fn h<'py>(&self, py: Python<'py>, w: PyReadonlyArray1<'py, f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let w = vec1(&w);
        self.check_w(&w)?;
        let inner = self.inner.clone();
        let out = compute(py, move || dispatch!(&*inner, m => m.h(&w)))?;
        Ok(PyArray1::from_vec(py, out))
    }
    /// The Jacobian J(w) = Dh(w), an n x p matrix.
    fn jacobian<'py>(&self, py: Python<'py>, w: PyReadonlyArray1<'py, f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let w = vec1(&w);
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

#[pyclass(extends = Model, frozen, name = "Converse", module = "ntk_tui._core")]
struct ConverseModel;

#[pymethods]
impl ConverseModel {
    #[new]
    #[pyo3(signature = (T, R0, lip_dh, sign = 1))]
    #[allow(non_snake_case)]
    fn new(T: f64, R0: f64, lip_dh: f64, sign: i32) -> PyResult<PyClassInitializer<Self>> {
        let m = Converse::new(T, R0, lip_dh, sign).map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::Converse(Arc::new(m)))).add_subclass(ConverseModel))
    }
}

#[pyclass(extends = Model, frozen, name = "TwoLayer", module = "ntk_tui._core")]
struct TwoLayerModel;

#[pymethods]
impl TwoLayerModel {
    #[new]
    #[pyo3(signature = (X, y, m, activation = "tanh", seed = 0, w0 = None, centered = true))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        X: PyReadonlyArray2<'_, f64>,
        y: PyReadonlyArray1<'_, f64>,
        m: usize,
        activation: &str,
        seed: u64,
        w0: Option<PyReadonlyArray1<'_, f64>>,
        centered: bool,
    ) -> PyResult<PyClassInitializer<Self>> {
        let x = X.as_array();
        let (n, d) = x.dim();
        let xv: Vec<f64> = x.iter().copied().collect(); // row-major, whatever the input layout
        let yv = vec1(&y);
        let w0v = w0.as_ref().map(vec1);
        let act = Activation::parse(activation).map_err(value_error)?;
        let net = compute(py, move || TwoLayer::new(xv, n, d, yv, m, act, seed, w0v, centered))?
            .map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::TwoLayer(Arc::new(net)))).add_subclass(TwoLayerModel))
    }
}

#[pyclass(extends = Model, frozen, name = "Quadratic", module = "ntk_tui._core")]
struct QuadraticModel;

#[pymethods]
impl QuadraticModel {
    #[new]
    #[pyo3(signature = (p, n, lip_dh = 1.0, seed = 0))]
    fn new(py: Python<'_>, p: usize, n: usize, lip_dh: f64, seed: u64) -> PyResult<PyClassInitializer<Self>> {
        let m = compute(py, move || Quadratic::new(p, n, lip_dh, seed))?.map_err(value_error)?;
        Ok(PyClassInitializer::from(Model::wrap(AnyModel::Quadratic(Arc::new(m)))).add_subclass(QuadraticModel))
    }
}

#[pyclass(extends = Model, frozen, name = "Linear", module = "ntk_tui._core")]
struct LinearModel;

#[pymethods]
impl LinearModel {
    #[new]
    #[pyo3(signature = (p, n, seed = 0))]
    fn new(py: Python<'_>, p: usize, n: usize, seed: u64) -> PyResult<PyClassInitializer<Self>> {
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
    d.set_item("stats", stats)?;
    d.set_item("status", r.status.describe())?;
    d.set_item("metrics", metrics.names())?;
    Ok(d)
}

/// Runs one model to the end; returns the result dict (check its "status").
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
    let r = compute(py, move || {
        let mut sim = AnySimulation::new(&inner, spectrum, cfg);
        sim.advance(usize::MAX, None, None);
        sim.result()
    })?;
    result_dict(py, &r, metrics)
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
            let deadline = max_seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
            let mut sim = sim.lock().unwrap();
            let first = sim.n_done();
            let added = sim.advance(max_points.unwrap_or(usize::MAX), deadline, None);
            (first, added)
        })
    }

    /// True once the run has ended (finished, failed or cancelled).
    #[getter]
    fn done(&self) -> bool {
        self.sim.lock().unwrap().status() != Status::Running
    }
    #[getter]
    fn n_done(&self) -> usize {
        self.sim.lock().unwrap().n_done()
    }
    #[getter]
    fn n_total(&self) -> usize {
        self.sim.lock().unwrap().n_total()
    }
    /// Current time of the integrator.
    #[getter]
    fn t(&self) -> f64 {
        self.sim.lock().unwrap().t()
    }
    #[getter]
    fn status(&self) -> String {
        self.sim.lock().unwrap().status().describe()
    }
    /// Result dict of what has been measured so far.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.sim.lock().unwrap().result();
        result_dict(py, &r, self.metrics)
    }
}

/// A batch running on a background thread.
#[pyclass(module = "ntk_tui._core")]
struct BatchJob {
    control: Arc<Control>,
    rx: Mutex<Option<mpsc::Receiver<Vec<RunResult>>>>,
    results: Mutex<Option<Vec<RunResult>>>,
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
    #[getter]
    fn cancelled(&self) -> bool {
        self.control.cancel.load(Ordering::Relaxed)
    }
    /// Waits up to `timeout` seconds (forever if None) with the GIL released; True when finished.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.results.lock().unwrap().is_some() {
            return Ok(true);
        }
        // Take the receiver out while waiting without the GIL (it is Send, not Sync).
        let Some(rx) = self.rx.lock().unwrap().take() else {
            return Ok(self.results.lock().unwrap().is_some());
        };
        let (rx, got) = py.detach(move || {
            let got = match timeout {
                None => rx.recv().ok(),
                Some(t) => rx.recv_timeout(Duration::from_secs_f64(t.max(0.0))).ok(),
            };
            (rx, got)
        });
        match got {
            Some(r) => {
                *self.results.lock().unwrap() = Some(r);
                Ok(true)
            }
            None => {
                *self.rx.lock().unwrap() = Some(rx);
                Ok(false)
            }
        }
    }
    #[getter]
    fn done(&self, py: Python<'_>) -> PyResult<bool> {
        self.wait(py, Some(0.0))
    }
    /// The result dicts in job order (waits for the end).
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.wait(py, None)?;
        let guard = self.results.lock().unwrap();
        let results = guard.as_ref().ok_or_else(|| PyRuntimeError::new_err("batch thread ended without results"))?;
        results.iter().map(|r| result_dict(py, r, self.metrics)).collect()
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
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads: must be at least 1 (or None for all cores)"));
    }
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
    let (tx, rx) = mpsc::channel();
    let ctl = control.clone();
    std::thread::Builder::new()
        .name("ntk-batch".into())
        .spawn(move || {
            let results = catch_unwind(AssertUnwindSafe(|| batch::run_batch(&models, &core_jobs, threads, &ctl)));
            if let Ok(r) = results {
                let _ = tx.send(r);
            }
        })
        .map_err(|e| PyRuntimeError::new_err(format!("could not start the batch thread: {e}")))?;
    Ok(BatchJob { control, rx: Mutex::new(Some(rx)), results: Mutex::new(None), metrics: metrics_used })
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
    compute(py, move || ntk_core::linalg::lemma_3_3(&av, &bv, rows, cols, t))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METRICS", ntk_core::run::METRIC_NAMES.to_vec())?;
    m.add("ACTIVATIONS", ntk_core::activation::NAMES.to_vec())?;
    m.add("DEFAULT_RTOL", ntk_core::DEFAULT_RTOL)?;
    m.add("DEFAULT_ATOL", ntk_core::DEFAULT_ATOL)?;
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
