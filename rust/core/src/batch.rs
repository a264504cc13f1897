//! Many runs at once: every (model, α) job in parallel with rayon (serial inside
//! a run), with shared progress/cancellation and per-run status.

use crate::dispatch;
use crate::error::{Error, Result};
use crate::flow::Spectrum;
use crate::model::AnyModel;
use crate::run::{RunConfig, RunResult, Simulation, Status};
use rayon::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Progress and cancellation shared between a running batch and its observers.
#[derive(Debug, Default)]
pub struct Control {
    pub done: AtomicUsize,
    pub total: AtomicUsize,
    pub cancel: AtomicBool,
}

/// One run of a batch: model index and its configuration.
#[derive(Clone, Debug)]
pub struct Job {
    pub model: usize,
    pub cfg: RunConfig,
}

/// A simulation of any model family (for the bindings' streaming object).
pub enum AnySimulation {
    Converse(Simulation<crate::model::Converse>),
    TwoLayer(Simulation<crate::model::TwoLayer>),
    Quadratic(Simulation<crate::model::Quadratic>),
    Linear(Simulation<crate::model::Linear>),
}

macro_rules! sim_dispatch {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            AnySimulation::Converse($x) => $body,
            AnySimulation::TwoLayer($x) => $body,
            AnySimulation::Quadratic($x) => $body,
            AnySimulation::Linear($x) => $body,
        }
    };
}

impl AnySimulation {
    pub fn new(model: &AnyModel, spectrum: Arc<Spectrum>, cfg: RunConfig) -> AnySimulation {
        match model {
            AnyModel::Converse(m) => AnySimulation::Converse(Simulation::new(m.clone(), spectrum, cfg)),
            AnyModel::TwoLayer(m) => AnySimulation::TwoLayer(Simulation::new(m.clone(), spectrum, cfg)),
            AnyModel::Quadratic(m) => AnySimulation::Quadratic(Simulation::new(m.clone(), spectrum, cfg)),
            AnyModel::Linear(m) => AnySimulation::Linear(Simulation::new(m.clone(), spectrum, cfg)),
        }
    }
    pub fn advance(&mut self, max_points: usize, deadline: Option<Instant>, cancel: Option<&AtomicBool>) -> usize {
        sim_dispatch!(self, s => s.advance(max_points, deadline, cancel))
    }
    pub fn result(&self) -> RunResult {
        sim_dispatch!(self, s => s.result())
    }
    pub fn status(&self) -> Status {
        sim_dispatch!(self, s => s.status().clone())
    }
    pub fn n_done(&self) -> usize {
        sim_dispatch!(self, s => s.n_done())
    }
    pub fn n_total(&self) -> usize {
        sim_dispatch!(self, s => s.n_total())
    }
    pub fn t(&self) -> f64 {
        sim_dispatch!(self, s => s.t())
    }
    pub fn measurements_len(&self) -> usize {
        sim_dispatch!(self, s => s.measurements().len)
    }
}

pub fn spectrum_of(model: &AnyModel) -> Result<Spectrum> {
    dispatch!(model, m => Spectrum::of(m))
}

/// Most threads a batch may ask for: far beyond any machine's cores, well below
/// what the operating system refuses.
pub const MAX_THREADS: usize = 1024;

pub fn check_threads(threads: Option<usize>) -> Result<()> {
    match threads {
        Some(t) if t == 0 || t > MAX_THREADS => Err(Error::invalid(
            "threads",
            format!("must be an integer in 1..={MAX_THREADS}, or None for one per core (got {t})"),
        )),
        _ => Ok(()),
    }
}

/// Runs every job; results come back in job order, independent of the thread
/// count (each run is serial and deterministic). A panicking or failing run, or
/// one whose model has no usable K0, is reported in its slot; cancelled or
/// never-started runs have status Cancelled.
///
/// Workers take jobs in their order from a shared counter, so the runs in flight
/// at any moment are neighbours: the α values of one model, which then share
/// that model's arrays in the caches.
pub fn run_batch(
    models: &[Arc<AnyModel>],
    jobs: &[Job],
    threads: Option<usize>,
    control: &Control,
) -> Result<Vec<RunResult>> {
    check_threads(threads)?;
    control.total.store(jobs.len(), Ordering::Relaxed);
    let work = || {
        let spectra: Vec<std::result::Result<Arc<Spectrum>, String>> = models
            .par_iter()
            .map(|m| match catch_unwind(AssertUnwindSafe(|| spectrum_of(m))) {
                Ok(Ok(s)) => Ok(Arc::new(s)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(format!("internal error: {}", panic_message(&panic))),
            })
            .collect();
        let slots: Vec<Mutex<Option<RunResult>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = rayon::current_num_threads().min(jobs.len());
        (0..workers).into_par_iter().for_each(|_| loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(k) else { break };
            let res = match &spectra[job.model] {
                Ok(spectrum) => catch_unwind(AssertUnwindSafe(|| {
                    let mut sim = AnySimulation::new(&models[job.model], spectrum.clone(), job.cfg.clone());
                    sim.advance(usize::MAX, None, Some(&control.cancel));
                    sim.result()
                }))
                .map_err(|panic| format!("internal error: {}", panic_message(&panic))),
                Err(why) => Err(why.clone()),
            };
            control.done.fetch_add(1, Ordering::Relaxed);
            let res = res.unwrap_or_else(|why| failed_result(job, &models[job.model], why));
            *slots[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(res);
        });
        slots.into_iter().map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every job ran")).collect()
    };
    match threads {
        Some(t) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t.min(jobs.len().max(1)))
                .build()
                .map_err(|e| Error::invalid("threads", format!("could not start {t} threads ({e})")))?;
            Ok(pool.install(work))
        }
        None => Ok(work()),
    }
}

/// The text of a caught panic.
pub fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// An empty result for a run that could not run or panicked, so the batch still returns.
fn failed_result(job: &Job, model: &AnyModel, why: String) -> RunResult {
    let spectrum = Arc::new(Spectrum { n: model.n(), lambda: vec![0.0; model.n()], vectors: identity(model.n()) });
    let sim = AnySimulation::new(model, spectrum, job.cfg.clone());
    let mut r = sim.result();
    r.status = Status::Failed(why);
    r
}

fn identity(n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    v
}
