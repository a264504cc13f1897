//! Random quadratic model (THEORY.md 4.3): h(w) = J w + (1/2) Q[w, w], w0 = 0,
//! with Lip(Dh) = ||Q|| known exactly by construction.
//!
//! Q[u, v] = c P q(O u, O v) with P (n x n) and O (p x p) random orthogonal and
//! q_j(x, y) = x_Bj^T A_j y_Bj for k = min(n, p) disjoint coordinate blocks B_j,
//! each A_j symmetric with ||A_j|| = 1. Then ||q(x, y)||² = Σ_j (x_Bj^T A_j y_Bj)²
//! <= Σ_j |x_Bj|² |y_Bj|² <= |x|² |y|², with equality at the top eigenvector of
//! A_0 placed in block 0 — so ||Q|| = c exactly.

use super::{dense, LipKind, Model};
use crate::error::{check, Result};
use crate::linalg;
use crate::rng::Rng;

/// Orthogonal rotations are dense p x p; keep them to a few hundred MB.
pub const MAX_QUADRATIC_P: usize = 4096;

#[derive(Clone, Debug)]
pub struct Quadratic {
    pub p: usize,
    pub n: usize,
    pub lip: f64,
    pub seed: u64,
    j: Vec<f64>,
    /// P, n x n row-major
    pm: Vec<f64>,
    /// O, p x p row-major
    om: Vec<f64>,
    /// block boundaries in rotated coordinates (k + 1 entries)
    bounds: Vec<usize>,
    /// the A_j, each |B_j| x |B_j| row-major, concatenated
    blocks: Vec<f64>,
    block_off: Vec<usize>,
    w0: Vec<f64>,
    y_star: Vec<f64>,
    h0: Vec<f64>,
    j_norm: f64,
}

pub struct QuadraticWork {
    /// x = O d
    x: Vec<f64>,
    /// ax: per block A_j x_Bj (p, rotated coordinates)
    ax: Vec<f64>,
    tmp_p: Vec<f64>,
    tmp_p2: Vec<f64>,
    tmp_n: Vec<f64>,
}

impl Quadratic {
    pub fn new(p: usize, n: usize, lip: f64, seed: u64) -> Result<Quadratic> {
        check::count("p", p, MAX_QUADRATIC_P)?;
        check::count("n", n, super::MAX_OUTPUTS)?;
        check::count("n*p", n * p, super::MAX_PARAMS)?;
        check::non_negative("lip_dh", lip)?;
        let mut rng = Rng::new(seed);
        let j = rng.normal_vec(n * p, 1.0 / (p as f64).sqrt());
        let y_star = rng.normal_vec(n, 1.0 / (n as f64).sqrt());
        let pm = linalg::random_orthogonal(n, &mut rng);
        let om = linalg::random_orthogonal(p, &mut rng);
        let k = n.min(p);
        let bounds: Vec<usize> = (0..=k).map(|i| i * p / k).collect();
        let mut blocks = Vec::new();
        let mut block_off = Vec::with_capacity(k + 1);
        for b in 0..k {
            block_off.push(blocks.len());
            let s = bounds[b + 1] - bounds[b];
            let g = rng.normal_vec(s * s, 1.0);
            let mut a: Vec<f64> = (0..s * s).map(|i| g[i] + g[(i % s) * s + i / s]).collect();
            let norm = linalg::sym_op_norm(&a, s);
            a.iter_mut().for_each(|x| *x /= norm);
            blocks.extend(a);
        }
        block_off.push(blocks.len());
        let j_norm = linalg::op_norm_dense(&j, n, p);
        Ok(Quadratic {
            p,
            n,
            lip,
            seed,
            j,
            pm,
            om,
            bounds,
            blocks,
            block_off,
            w0: vec![0.0; p],
            y_star,
            h0: vec![0.0; n],
            j_norm,
        })
    }

    fn block(&self, b: usize) -> (&[f64], usize, usize) {
        let (lo, hi) = (self.bounds[b], self.bounds[b + 1]);
        (&self.blocks[self.block_off[b]..self.block_off[b + 1]], lo, hi - lo)
    }

    /// ax = blockwise A_j x (rotated coordinates).
    fn apply_blocks(&self, x: &[f64], ax: &mut [f64]) {
        for b in 0..self.bounds.len() - 1 {
            let (a, lo, s) = self.block(b);
            dense::mat_vec(a, s, s, &x[lo..lo + s], &mut ax[lo..lo + s]);
        }
    }

    /// out (n) = c P [ <y_Bj, ax_Bj> ]_j : Q[d, v] for x = O d, y = O v.
    fn contract(&self, ax: &[f64], y: &[f64], tmp_n: &mut [f64], out: &mut [f64]) {
        tmp_n.fill(0.0);
        for b in 0..self.bounds.len() - 1 {
            let (lo, hi) = (self.bounds[b], self.bounds[b + 1]);
            tmp_n[b] = self.lip * dense::dot(&ax[lo..hi], &y[lo..hi]);
        }
        dense::mat_vec(&self.pm, self.n, self.n, tmp_n, out);
    }

    /// out (p) = ΔJ^T y = c O^T [ (P^T y)_j ax_Bj ].
    fn contract_t(&self, ax: &[f64], y: &[f64], ws_n: &mut [f64], ws_p: &mut [f64], out: &mut [f64]) {
        dense::mat_t_vec(&self.pm, self.n, self.n, y, ws_n);
        ws_p.fill(0.0);
        for b in 0..self.bounds.len() - 1 {
            let (lo, hi) = (self.bounds[b], self.bounds[b + 1]);
            for k in lo..hi {
                ws_p[k] = self.lip * ws_n[b] * ax[k];
            }
        }
        dense::mat_t_vec(&self.om, self.p, self.p, ws_p, out);
    }
}

impl Model for Quadratic {
    type Work = QuadraticWork;

    fn family(&self) -> &'static str {
        "quadratic"
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
        self.lip
    }
    fn lip_h(&self, rho: f64) -> f64 {
        // ||J + Q[w, .]|| <= ||J|| + ||Q|| |w| on the ball (an upper bound)
        self.j_norm + self.lip * rho
    }
    fn h(&self, w: &[f64]) -> Vec<f64> {
        let mut ws = self.work();
        let mut out = vec![0.0; self.n];
        self.set_deviation(&mut ws, w, &mut out);
        let mut jw = vec![0.0; self.n];
        dense::mat_vec(&self.j, self.n, self.p, w, &mut jw);
        out.iter_mut().zip(&jw).for_each(|(o, a)| *o += a);
        out
    }
    fn jacobian(&self, w: &[f64]) -> Vec<f64> {
        let mut ws = self.work();
        let mut rem = vec![0.0; self.n];
        self.set_deviation(&mut ws, w, &mut rem);
        let mut jac = self.j.clone();
        let mut e = vec![0.0; self.p];
        let mut col = vec![0.0; self.n];
        for k in 0..self.p {
            e.fill(0.0);
            e[k] = 1.0;
            self.dj_mul(&mut ws, &e, &mut col);
            for i in 0..self.n {
                jac[i * self.p + k] += col[i];
            }
        }
        jac
    }
    fn kernel0(&self) -> Vec<f64> {
        dense::gram(&self.j, self.n, self.p)
    }
    fn work(&self) -> QuadraticWork {
        QuadraticWork {
            x: vec![0.0; self.p],
            ax: vec![0.0; self.p],
            tmp_p: vec![0.0; self.p],
            tmp_p2: vec![0.0; self.p],
            tmp_n: vec![0.0; self.n],
        }
    }
    fn j0_mul(&self, _ws: &mut QuadraticWork, v: &[f64], out: &mut [f64]) {
        dense::mat_vec(&self.j, self.n, self.p, v, out);
    }
    fn j0t_mul(&self, _ws: &mut QuadraticWork, q: &[f64], out: &mut [f64]) {
        dense::mat_t_vec(&self.j, self.n, self.p, q, out);
    }
    fn set_deviation(&self, ws: &mut QuadraticWork, d: &[f64], rem: &mut [f64]) {
        // Rem(d) = (1/2) Q[d, d] exactly: no cancellation anywhere.
        dense::mat_vec(&self.om, self.p, self.p, d, &mut ws.x);
        self.apply_blocks(&ws.x, &mut ws.ax);
        self.contract(&ws.ax, &ws.x, &mut ws.tmp_n, rem);
        rem.iter_mut().for_each(|r| *r *= 0.5);
    }
    fn pullback(&self, ws: &mut QuadraticWork, e: &[f64], r: &[f64], out: &mut [f64]) {
        self.djt_mul(ws, r, out);
        dense::mat_t_vec(&self.j, self.n, self.p, e, &mut ws.tmp_p);
        out.iter_mut().zip(&ws.tmp_p).for_each(|(o, a)| *o += a);
    }
    fn dj_mul(&self, ws: &mut QuadraticWork, x: &[f64], out: &mut [f64]) {
        dense::mat_vec(&self.om, self.p, self.p, x, &mut ws.tmp_p);
        self.contract(&ws.ax, &ws.tmp_p, &mut ws.tmp_n, out);
    }
    fn djt_mul(&self, ws: &mut QuadraticWork, y: &[f64], out: &mut [f64]) {
        self.contract_t(&ws.ax, y, &mut ws.tmp_n, &mut ws.tmp_p2, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing;

    #[test]
    fn jacobian_and_deviation_ops() {
        for &(p, n) in &[(9usize, 4usize), (3, 5), (6, 6)] {
            let m = Quadratic::new(p, n, 1.7, 11).unwrap();
            let w: Vec<f64> = (0..p).map(|k| 0.2 * (k as f64 - 2.0)).collect();
            assert!(testing::jacobian_fd_error(&m, &w) < 1e-8);
            testing::check_deviation_ops(&m, &w, 1e-10);
        }
    }

    #[test]
    fn lip_dh_is_the_operator_norm_of_q() {
        // ||ΔJ(d)||_op / |d| <= lip for random d, and the supremum is reached:
        // the max over many random directions comes close to lip.
        let m = Quadratic::new(6, 3, 2.5, 5).unwrap();
        let mut ws = m.work();
        let mut rng = Rng::new(9);
        let mut best: f64 = 0.0;
        let mut rem = vec![0.0; 3];
        for _ in 0..4000 {
            let d = rng.normal_vec(6, 1.0);
            let nd = dense::dot(&d, &d).sqrt();
            m.set_deviation(&mut ws, &d, &mut rem);
            let mut dj = vec![0.0; 3 * 6];
            let mut col = vec![0.0; 3];
            for k in 0..6 {
                let mut e = vec![0.0; 6];
                e[k] = 1.0;
                m.dj_mul(&mut ws, &e, &mut col);
                for i in 0..3 {
                    dj[i * 6 + k] = col[i];
                }
            }
            let ratio = linalg::op_norm_dense(&dj, 3, 6) / nd;
            assert!(ratio <= 2.5 * (1.0 + 1e-12));
            best = best.max(ratio);
        }
        assert!(best > 0.8 * 2.5, "sup not approached: {best}");
    }
}
