//! The linear model h(w) = J w (THEORY.md 4.4): its flow equals its linearization,
//! so the gap must be exactly zero — a sanity family.

use super::{dense, LipKind, Model};
use crate::error::{check, Result};
use crate::model::{MAX_OUTPUTS, MAX_PARAMS};
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct Linear {
    pub p: usize,
    pub n: usize,
    pub seed: u64,
    /// n x p row-major, entries N(0, 1/p).
    j: Vec<f64>,
    w0: Vec<f64>,
    y_star: Vec<f64>,
    h0: Vec<f64>,
    j_norm: f64,
}

impl Linear {
    pub fn new(p: usize, n: usize, seed: u64) -> Result<Linear> {
        check::count("p", p, MAX_PARAMS)?;
        check::count("n", n, MAX_OUTPUTS)?;
        check::count("n*p", n * p, MAX_PARAMS)?;
        let mut rng = Rng::new(seed);
        let j = rng.normal_vec(n * p, 1.0 / (p as f64).sqrt());
        let y_star = rng.normal_vec(n, 1.0 / (n as f64).sqrt());
        let j_norm = crate::linalg::op_norm_dense(&j, n, p);
        Ok(Linear { p, n, seed, j, w0: vec![0.0; p], y_star, h0: vec![0.0; n], j_norm })
    }
}

impl Model for Linear {
    type Work = ();

    fn family(&self) -> &'static str {
        "linear"
    }
    fn n(&self) -> usize {
        self.n
    }
    fn p(&self) -> usize {
        self.p
    }
    fn w0(&self) -> &[f64] {
        &self.w0
    }
    fn y_star(&self) -> &[f64] {
        &self.y_star
    }
    fn h0(&self) -> &[f64] {
        &self.h0
    }
    fn lip_dh_kind(&self) -> LipKind {
        LipKind::Exact
    }
    fn lip_dh(&self, _rho: f64) -> f64 {
        0.0
    }
    fn lip_h(&self, _rho: f64) -> f64 {
        self.j_norm
    }
    fn h(&self, w: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        dense::mat_vec(&self.j, self.n, self.p, w, &mut out);
        out
    }
    fn jacobian(&self, _w: &[f64]) -> Vec<f64> {
        self.j.clone()
    }
    fn kernel0(&self) -> Vec<f64> {
        dense::gram(&self.j, self.n, self.p)
    }
    fn work(&self) {}
    fn j0_mul(&self, _ws: &mut (), v: &[f64], out: &mut [f64]) {
        dense::mat_vec(&self.j, self.n, self.p, v, out);
    }
    fn j0t_mul(&self, _ws: &mut (), q: &[f64], out: &mut [f64]) {
        dense::mat_t_vec(&self.j, self.n, self.p, q, out);
    }
    fn set_deviation(&self, _ws: &mut (), _d: &[f64], rem: &mut [f64]) {
        rem.fill(0.0);
    }
    fn pullback(&self, _ws: &mut (), e: &[f64], _r: &[f64], out: &mut [f64]) {
        dense::mat_t_vec(&self.j, self.n, self.p, e, out);
    }
    fn dj_mul(&self, _ws: &mut (), _x: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn djt_mul(&self, _ws: &mut (), _y: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing;

    #[test]
    fn jacobian_and_deviation_ops() {
        let m = Linear::new(7, 4, 3).unwrap();
        let w: Vec<f64> = (0..7).map(|k| 0.1 * k as f64).collect();
        assert!(testing::jacobian_fd_error(&m, &w) < 1e-8);
        testing::check_deviation_ops(&m, &w, 1e-12);
    }

    #[test]
    fn absurd_sizes_rejected() {
        assert!(Linear::new(0, 3, 0).unwrap_err().to_string().starts_with("p:"));
        assert!(Linear::new(100_000, 100_000, 0).is_err());
    }
}
