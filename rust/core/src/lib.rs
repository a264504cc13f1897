//! ntk-core: gradient flow of a model and of its linearization (the NTK
//! approximation), for single runs and whole batches. Pure Rust; the Python
//! bindings live in a separate crate.

pub mod activation;
pub mod batch;
pub mod error;
pub mod flow;
pub mod kernels;
pub mod linalg;
pub mod model;
pub mod ode;
pub mod rng;
pub mod run;

pub use error::{Error, Result};

/// Default integration tolerances (state s = α² (w - wbar), see `flow`).
pub const DEFAULT_RTOL: f64 = 1e-7;
pub const DEFAULT_ATOL: f64 = 1e-12;
