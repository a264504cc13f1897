//! The two-layer mean-field network of seed eq. (8)-(10) (THEORY.md 4.2):
//! f_w(x) = (1/sqrt m) Σ_i a_i σ(sqrt(m) <x, u_i>), h(w) = [f_w(x_j)]_j / sqrt(n),
//! w = [a (m), U (m x d, row-major)], y* = y / sqrt(n); centred: h(w) - h(w0).
//!
//! The Jacobian has the structure J v = A v_a + rowsum(B ∘ (X V_U^T)) with the
//! n x m coefficient matrices A = σ(Z)/sqrt(mn), B = a σ'(Z)/sqrt(n); products
//! with J, J^T and ΔJ are two (n x d)·(d x m) matrix products plus element-wise
//! work, and the Taylor remainders come from `Activation::delta`.

use super::{LipKind, Model, MAX_OUTPUTS, MAX_PARAMS, MAX_PREPARED};
use crate::activation::{Activation, Bases, RowDelta, SumWeights};
use crate::kernels::{self, dot};
use crate::error::{check, Error, Result};
use crate::rng::Rng;
use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};

/// Most f64s a run's `j0t_prepare` buffers may take (128 MiB): wider models
/// compute J0^T q one right-hand side at a time.
const PREPARED_BUDGET: usize = 1 << 24;

#[derive(Clone, Debug)]
pub struct TwoLayer {
    pub n: usize,
    pub d: usize,
    pub m: usize,
    pub activation: Activation,
    pub centered: bool,
    pub seed: u64,
    /// n x d row-major
    x: Vec<f64>,
    y_star: Vec<f64>,
    w0: Vec<f64>,
    /// per unit (j, i), row-major n x m: activation values at the initial pre-activations
    base: Bases,
    /// uncentred h(w0); what `h` subtracts when centred
    h0_raw: Vec<f64>,
    h0: Vec<f64>,
    /// X X^T
    gram: Vec<f64>,
    /// max_j ||x_j||
    x_max_norm: f64,
    sqrt_m: f64,
    inv_sqrt_n: f64,
    inv_sqrt_mn: f64,
}

pub struct TwoLayerWork {
    /// n x m product buffer (X V^T)
    y: Vec<f64>,
    /// n x m coefficient buffer for transposed products
    c: Vec<f64>,
    /// D1 = σ(z) - σ(z0) at the deviation set last (n x m)
    d1: Vec<f64>,
    /// E1 = σ'(z) - σ'(z0) at the deviation set last (n x m)
    e1: Vec<f64>,
    /// δa of the deviation set last
    da: Vec<f64>,
    /// one row (m) of scratch
    row: Vec<f64>,
    /// fused path: sqrt(m) δU (m x d)
    du: Vec<f64>,
    /// fused path: a0 ∘ S_U / sqrt(n) (m x d)
    a0_su: Vec<f64>,
    /// fused path: a block of the moves sqrt(m) X δU^T (rows x m)
    yb: Vec<f64>,
    /// a block of pullback coefficients (rows x m)
    cb: Vec<f64>,
    /// q ∘ X (n x d) for J0^T q; in the fused path S1 (a0 ∘ S_U) / sqrt(n)
    qx: Vec<f64>,
    /// S1^T (q ∘ X) (m x d) column-major for J0^T q
    s1t_qx: Vec<f64>,
    /// `j0t_prepare`: [q_i ∘ X / sqrt(n)]_i (n x kd), S1^T times it (m x kd
    /// column-major) and S0^T Q^T / sqrt(mn) (m x k column-major); empty when
    /// they would exceed `PREPARED_BUDGET`
    many_qx: Vec<f64>,
    many_u: Vec<f64>,
    many_a: Vec<f64>,
    /// fused path: one row of D1 and E1
    d1_row: Vec<f64>,
    e1_row: Vec<f64>,
}

impl TwoLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        x: Vec<f64>,
        n: usize,
        d: usize,
        y: Vec<f64>,
        m: usize,
        activation: Activation,
        seed: u64,
        w0: Option<Vec<f64>>,
        centered: bool,
    ) -> Result<TwoLayer> {
        check::count("X rows (n)", n, MAX_OUTPUTS)?;
        check::count("X columns (d)", d, 100_000)?;
        check::count("m", m, MAX_PARAMS)?;
        check::len("X", x.len(), n * d, "n*d")?;
        check::len("y", y.len(), n, "n (the rows of X)")?;
        check::finite("X", &x)?;
        check::finite("y", &y)?;
        let p = m.checked_mul(d + 1).filter(|&p| p <= MAX_PARAMS).ok_or_else(|| {
            Error::invalid("m", format!("m*(d+1) parameters must be at most {MAX_PARAMS} (got m={m}, d={d})"))
        })?;
        if n.saturating_mul(m) > MAX_PARAMS {
            return Err(Error::invalid(
                "m",
                format!("n*m must be at most {MAX_PARAMS} (working memory of a run); got n={n}, m={m}"),
            ));
        }
        let w0 = match w0 {
            Some(w) => {
                check::len("w0", w.len(), p, "m*(d+1)")?;
                check::finite("w0", &w)?;
                w
            }
            None => {
                // seed eq. (9): every entry i.i.d. Unif[-1/sqrt m, 1/sqrt m]; a first, then U.
                Rng::new(seed).uniform_vec(p, 1.0 / (m as f64).sqrt())
            }
        };
        let sqrt_m = (m as f64).sqrt();
        let inv_sqrt_n = 1.0 / (n as f64).sqrt();
        let mut net = TwoLayer {
            n,
            d,
            m,
            activation,
            centered,
            seed,
            y_star: y.iter().map(|v| v * inv_sqrt_n).collect(),
            gram: crate::model::dense::gram(&x, n, d),
            x_max_norm: (0..n)
                .map(|j| x[j * d..(j + 1) * d].iter().map(|v| v * v).sum::<f64>().sqrt())
                .fold(0.0, f64::max),
            x,
            base: Bases::default(),
            h0_raw: vec![0.0; n],
            h0: vec![0.0; n],
            w0,
            sqrt_m,
            inv_sqrt_n,
            inv_sqrt_mn: inv_sqrt_n / sqrt_m,
        };
        let z0 = net.preactivations(&net.w0);
        net.base = Bases::new(activation, &z0);
        net.h0_raw = net.raw_output(&net.w0);
        if !centered {
            net.h0 = net.h0_raw.clone();
        }
        Ok(net)
    }

    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// Z = sqrt(m) X U^T (n x m) for the weights w.
    fn preactivations(&self, w: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; self.n * self.m];
        self.x_times_t(&w[self.m..], &mut z, self.sqrt_m);
        z
    }

    /// out (n x m) = scale · X V^T for V (m x d) row-major.
    fn x_times_t(&self, v: &[f64], out: &mut [f64], scale: f64) {
        let (n, m, d) = (self.n, self.m, self.d);
        matmul(
            MatMut::from_row_major_slice_mut(out, n, m),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.x, n, d),
            MatRef::from_row_major_slice(v, m, d).transpose(),
            scale,
            Par::Seq,
        );
    }

    /// out (m x d) = C^T X for C (n x m) row-major.
    fn ct_times_x(&self, c: &[f64], out: &mut [f64]) {
        let (n, m, d) = (self.n, self.m, self.d);
        matmul(
            MatMut::from_row_major_slice_mut(out, m, d),
            Accum::Replace,
            MatRef::from_row_major_slice(c, n, m).transpose(),
            MatRef::from_row_major_slice(&self.x, n, d),
            1.0,
            Par::Seq,
        );
    }

    /// Row blocks of about 256k units: large enough that the matrix products pack
    /// their operands rarely, small enough that a block stays in the outer caches.
    fn blocks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let b = self.block_rows();
        (0..self.n).step_by(b).map(move |j| j..(j + b).min(self.n))
    }

    fn block_rows(&self) -> usize {
        (262_144 / self.m).clamp(1, self.n)
    }

    /// out (m x d) (+)= C_rows^T X_rows for a block C (rows x m) row-major.
    fn ct_times_x_rows(&self, c: &[f64], rows: std::ops::Range<usize>, out: &mut [f64], add: bool) {
        let (m, d, b) = (self.m, self.d, rows.len());
        matmul(
            MatMut::from_row_major_slice_mut(out, m, d),
            if add { Accum::Add } else { Accum::Replace },
            MatRef::from_row_major_slice(&c[..b * m], b, m).transpose(),
            MatRef::from_row_major_slice(&self.x[rows.start * d..rows.end * d], b, d),
            1.0,
            Par::Seq,
        );
    }

    fn raw_output(&self, w: &[f64]) -> Vec<f64> {
        let z = self.preactivations(w);
        (0..self.n)
            .map(|j| {
                let row = &z[j * self.m..(j + 1) * self.m];
                row.iter().zip(&w[..self.m]).map(|(&z, a)| a * self.activation.value(z)).sum::<f64>()
                    * self.inv_sqrt_mn
            })
            .collect()
    }

    /// out = (coef^T q) / sqrt(mn) for an n x m coefficient matrix (the a-part of J^T q).
    fn a_part_t(&self, coef: &[f64], q: &[f64], out: &mut [f64]) {
        let m = self.m;
        out.fill(0.0);
        for (j, &qj) in q.iter().enumerate() {
            kernels::axpy(out, qj * self.inv_sqrt_mn, &coef[j * m..(j + 1) * m]);
        }
    }

    /// ΔB row j (times sqrt n) into `out`: a0 E1 + δa σ'(z).
    fn db_row(&self, ws_e1: &[f64], da: &[f64], j: usize, out: &mut [f64]) {
        let r = j * self.m..(j + 1) * self.m;
        kernels::db_row(out, &self.w0[..self.m], da, &self.base.s1[r.clone()], &ws_e1[r]);
    }

    /// The products of J0^T q for the k columns q_i of `qs` (n x k column-major):
    /// a_cols = S0^T Q / sqrt(mn) (m x k) and u_cols = S1^T [q_i ∘ X / sqrt(n)]_i
    /// (m x kd), both column-major, with `qx` (n x kd) as scratch. They read the
    /// stored activations once and write nothing of size n x m; u_cols is
    /// column-major because with the m x d result row-major the product runs 2.4
    /// times slower (its long dimension m would be the output's inner one).
    fn s_t_products(&self, qs: &[f64], qx: &mut [f64], a_cols: &mut [f64], u_cols: &mut [f64]) {
        let (n, m, d, k) = (self.n, self.m, self.d, qs.len() / self.n);
        for (j, row) in qx.chunks_exact_mut(k * d).enumerate() {
            for (i, block) in row.chunks_exact_mut(d).enumerate() {
                kernels::scale_into(block, qs[i * n + j] * self.inv_sqrt_n, &self.x[j * d..(j + 1) * d]);
            }
        }
        let s0 = MatRef::from_row_major_slice(&self.base.s0, n, m);
        let s1 = MatRef::from_row_major_slice(&self.base.s1, n, m);
        let q = MatRef::from_column_major_slice(qs, n, k);
        matmul(MatMut::from_column_major_slice_mut(a_cols, m, k), Accum::Replace, s0.transpose(), q, self.inv_sqrt_mn, Par::Seq);
        let qx = MatRef::from_row_major_slice(qx, n, k * d);
        matmul(MatMut::from_column_major_slice_mut(u_cols, m, k * d), Accum::Replace, s1.transpose(), qx, 1.0, Par::Seq);
    }

    /// The U part of J0^T q, a0 ∘ P (m x d row-major), from P column-major.
    fn scale_u_part(&self, p_cols: &[f64], ou: &mut [f64]) {
        let (m, d) = (self.m, self.d);
        for (k, col) in p_cols.chunks_exact(m).enumerate() {
            for ((row, &a), &v) in ou.chunks_exact_mut(d).zip(&self.w0[..m]).zip(col) {
                row[k] = a * v;
            }
        }
    }

    /// Upper bound of sup_i |a_i| on the ball of radius rho.
    fn a_sup(&self, rho: f64) -> f64 {
        self.w0[..self.m].iter().fold(0.0f64, |s, a| s.max(a.abs())) + rho
    }
}

impl Model for TwoLayer {
    type Work = TwoLayerWork;

    fn family(&self) -> &'static str {
        "twolayer"
    }
    fn n(&self) -> usize {
        self.n
    }
    fn p(&self) -> usize {
        self.m * (self.d + 1)
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
        LipKind::UpperBound
    }
    fn lip_dh(&self, rho: f64) -> f64 {
        // THEORY.md 4.2: Lip(Dh) <= ||σ'|| K + ||σ''|| sqrt(m) A K².
        let (_, s1, s2) = self.activation.sup_norms();
        let k = self.x_max_norm;
        s1 * k + s2 * self.sqrt_m * self.a_sup(rho) * k * k
    }
    fn lip_h(&self, rho: f64) -> f64 {
        // THEORY.md 4.2: Lip(h) <= sqrt(||σ||² + ||σ'||² K² ||a||²), ||a|| <= ||a0|| + rho.
        let (mut s0, s1, _) = self.activation.sup_norms();
        let k = self.x_max_norm;
        if s0.is_infinite() {
            // softplus is unbounded; on the ball |z| <= sqrt(m) K (max|u_i| + rho) and
            // softplus(z) <= ln 2 + |z|.
            let u = &self.w0[self.m..];
            let umax = (0..self.m)
                .map(|i| u[i * self.d..(i + 1) * self.d].iter().map(|v| v * v).sum::<f64>().sqrt())
                .fold(0.0, f64::max);
            s0 = std::f64::consts::LN_2 + self.sqrt_m * k * (umax + rho);
        }
        let a_norm = self.w0[..self.m].iter().map(|a| a * a).sum::<f64>().sqrt() + rho;
        (s0 * s0 + s1 * s1 * k * k * a_norm * a_norm).sqrt()
    }

    fn h(&self, w: &[f64]) -> Vec<f64> {
        let mut out = self.raw_output(w);
        if self.centered {
            out.iter_mut().zip(&self.h0_raw).for_each(|(o, h)| *o -= h);
        }
        out
    }

    fn jacobian(&self, w: &[f64]) -> Vec<f64> {
        let (n, m, d, p) = (self.n, self.m, self.d, self.p());
        let z = self.preactivations(w);
        let mut jac = vec![0.0; n * p];
        for j in 0..n {
            for i in 0..m {
                let zz = z[j * m + i];
                jac[j * p + i] = self.activation.value(zz) * self.inv_sqrt_mn;
                let c = w[i] * self.activation.deriv(zz) * self.inv_sqrt_n;
                for k in 0..d {
                    jac[j * p + m + i * d + k] = c * self.x[j * d + k];
                }
            }
        }
        jac
    }

    fn kernel0(&self) -> Vec<f64> {
        // K0 = A A^T + (B B^T) ∘ X X^T, from the n x m coefficient matrices.
        let (n, m) = (self.n, self.m);
        let a: Vec<f64> = self.base.s0.iter().map(|s0| s0 * self.inv_sqrt_mn).collect();
        let b: Vec<f64> = self.base.s1.iter().enumerate().map(|(k, s1)| self.w0[k % m] * s1 * self.inv_sqrt_n).collect();
        let mut k = sym_product(&a, &a, n, m);
        let kb = sym_product(&b, &b, n, m);
        k.iter_mut().zip(kb.iter().zip(&self.gram)).for_each(|(k, (b, g))| *k += b * g);
        k
    }

    fn work(&self) -> TwoLayerWork {
        let nm = self.n * self.m;
        let batched = MAX_PREPARED * (self.m + self.n) * (self.d + 1) <= PREPARED_BUDGET;
        TwoLayerWork {
            y: vec![0.0; nm],
            c: vec![0.0; nm],
            d1: vec![0.0; nm],
            e1: vec![0.0; nm],
            da: vec![0.0; self.m],
            row: vec![0.0; self.m],
            du: vec![0.0; self.m * self.d],
            a0_su: vec![0.0; self.m * self.d],
            yb: vec![0.0; self.block_rows() * self.m],
            cb: vec![0.0; self.block_rows() * self.m],
            qx: vec![0.0; self.n * self.d],
            s1t_qx: vec![0.0; self.m * self.d],
            many_qx: vec![0.0; if batched { self.n * MAX_PREPARED * self.d } else { 0 }],
            many_u: vec![0.0; if batched { self.m * MAX_PREPARED * self.d } else { 0 }],
            many_a: vec![0.0; if batched { self.m * MAX_PREPARED } else { 0 }],
            d1_row: vec![0.0; self.m],
            e1_row: vec![0.0; self.m],
        }
    }

    fn j0_mul(&self, ws: &mut TwoLayerWork, v: &[f64], out: &mut [f64]) {
        let m = self.m;
        self.x_times_t(&v[m..], &mut ws.y, 1.0);
        for (j, o) in out.iter_mut().enumerate() {
            let r = j * m..(j + 1) * m;
            *o = dot(&self.base.s0[r.clone()], &v[..m]) * self.inv_sqrt_mn
                + kernels::dot3(&self.w0[..m], &self.base.s1[r.clone()], &ws.y[r]) * self.inv_sqrt_n;
        }
    }

    fn j0t_mul(&self, ws: &mut TwoLayerWork, q: &[f64], out: &mut [f64]) {
        let (oa, ou) = out.split_at_mut(self.m);
        self.s_t_products(q, &mut ws.qx, oa, &mut ws.s1t_qx);
        self.scale_u_part(&ws.s1t_qx, ou);
    }

    fn j0t_prepare(&self, ws: &mut TwoLayerWork, qs: &[f64]) -> bool {
        let (n, m, d, k) = (self.n, self.m, self.d, qs.len() / self.n);
        if ws.many_a.is_empty() || k > MAX_PREPARED {
            return false;
        }
        // S0 and S1 are read once for all k right-hand sides, and the products
        // are k times wider (1.6x faster for W2's shapes)
        self.s_t_products(qs, &mut ws.many_qx[..n * k * d], &mut ws.many_a[..m * k], &mut ws.many_u[..m * k * d]);
        true
    }

    fn j0t_prepared(&self, ws: &mut TwoLayerWork, i: usize, out: &mut [f64]) {
        let (m, d) = (self.m, self.d);
        let (oa, ou) = out.split_at_mut(m);
        oa.copy_from_slice(&ws.many_a[i * m..(i + 1) * m]);
        self.scale_u_part(&ws.many_u[i * m * d..(i + 1) * m * d], ou);
    }

    fn set_deviation(&self, ws: &mut TwoLayerWork, dev: &[f64], rem: &mut [f64]) {
        let m = self.m;
        ws.da.copy_from_slice(&dev[..m]);
        // b = sqrt(m) <x_j, δu_i>: the move of every pre-activation.
        self.x_times_t(&dev[m..], &mut ws.y, self.sqrt_m);
        for (j, r) in rem.iter_mut().enumerate() {
            let range = j * m..(j + 1) * m;
            let d1 = &mut ws.d1[range.clone()];
            let out = RowDelta { d1, d2: &mut ws.row, e1: &mut ws.e1[range.clone()] };
            self.activation.delta_row(&self.base, range.clone(), &ws.y[range.clone()], out);
            // a σ(z) - a0 σ(z0) - a0 σ'(z0) b - δa σ(z0) = a0 D2 + δa D1
            *r = (dot(&self.w0[..m], &ws.row) + dot(&ws.da, &ws.d1[range])) * self.inv_sqrt_mn;
        }
    }

    fn pullback(&self, ws: &mut TwoLayerWork, e: &[f64], r: &[f64], out: &mut [f64]) {
        let m = self.m;
        let (oa, ou) = out.split_at_mut(m);
        oa.fill(0.0);
        for j in 0..self.n {
            let rg = j * m..(j + 1) * m;
            kernels::axpby_add(oa, e[j] * self.inv_sqrt_mn, &self.base.s0[rg.clone()], r[j] * self.inv_sqrt_mn, &ws.d1[rg.clone()]);
            let (s1, e1) = (&self.base.s1[rg.clone()], &ws.e1[rg.clone()]);
            let (ej, rj) = (e[j] * self.inv_sqrt_n, r[j] * self.inv_sqrt_n);
            kernels::pullback_row(&mut ws.c[rg], &self.w0[..m], s1, ej, &ws.da, e1, rj);
        }
        self.ct_times_x(&ws.c, ou);
    }

    fn dj_mul(&self, ws: &mut TwoLayerWork, v: &[f64], out: &mut [f64]) {
        let m = self.m;
        self.x_times_t(&v[m..], &mut ws.y, 1.0);
        for (j, o) in out.iter_mut().enumerate() {
            let r = j * m..(j + 1) * m;
            self.db_row(&ws.e1, &ws.da, j, &mut ws.row);
            *o = dot(&ws.d1[r.clone()], &v[..m]) * self.inv_sqrt_mn + dot(&ws.row, &ws.y[r]) * self.inv_sqrt_n;
        }
    }

    fn djt_mul(&self, ws: &mut TwoLayerWork, q: &[f64], out: &mut [f64]) {
        let m = self.m;
        let (oa, ou) = out.split_at_mut(m);
        self.a_part_t(&ws.d1, q, oa);
        for (j, &qj) in q.iter().enumerate() {
            self.db_row(&ws.e1, &ws.da, j, &mut ws.row);
            kernels::scale_into(&mut ws.c[j * m..(j + 1) * m], qj * self.inv_sqrt_n, &ws.row);
        }
        self.ct_times_x(&ws.c, ou);
    }

    fn fused_rhs(&self, ws: &mut TwoLayerWork, io: super::FusedIo<'_>) -> bool {
        let (m, d) = (self.m, self.d);
        let super::FusedIo { dbar, s, rbar, alpha, e, r, ds } = io;
        // the deviation d = dbar + s/α², written only where it is used: δa, and
        // sqrt(m) δU, whose product with X gives the pre-activation moves
        let inv_a2 = 1.0 / (alpha * alpha);
        let a0 = &self.w0[..m];
        kernels::scaled_sum(&mut ws.da, 1.0, &dbar[..m], inv_a2, &s[..m]);
        kernels::scaled_sum(&mut ws.du, self.sqrt_m, &dbar[m..], inv_a2, &s[m..]);
        // the U part of J0 s, x_j . (S1 (a0 ∘ S_U))_j / sqrt(n): one product with
        // inner dimension m instead of an n x m product and a weighted row sum
        for ((row, su), &a) in ws.a0_su.chunks_exact_mut(d).zip(s[m..].chunks_exact(d)).zip(a0) {
            kernels::scale_into(row, a * self.inv_sqrt_n, su);
        }
        matmul(
            MatMut::from_row_major_slice_mut(&mut ws.qx, self.n, d),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.base.s1, self.n, m),
            MatRef::from_row_major_slice(&ws.a0_su, m, d),
            1.0,
            Par::Seq,
        );
        let mut grad = ds.map(|ds| ds.split_at_mut(m));
        if let Some((ga, _)) = &mut grad {
            ga.fill(0.0);
        }
        for (bi, rows) in self.blocks().enumerate() {
            let nb = rows.len();
            matmul(
                MatMut::from_row_major_slice_mut(&mut ws.yb[..nb * m], nb, m),
                Accum::Replace,
                MatRef::from_row_major_slice(&self.x[rows.start * d..rows.end * d], nb, d),
                MatRef::from_row_major_slice(&ws.du, m, d).transpose(),
                1.0,
                Par::Seq,
            );
            for j in rows.clone() {
                let (lj, rg) = (j - rows.start, j * m..(j + 1) * m);
                let yb = &ws.yb[lj * m..(lj + 1) * m];
                let out = RowDelta { d1: &mut ws.d1_row, d2: &mut ws.row, e1: &mut ws.e1_row };
                let (s0, s1) = (&self.base.s0[rg.clone()], &self.base.s1[rg.clone()]);
                let w = SumWeights { a0, da: &ws.da, s0, sa: &s[..m] };
                let [rem, j0s_a] = self.activation.delta_row_sums(&self.base, rg, yb, out, w);
                let j0s_u = dot(&self.x[j * d..(j + 1) * d], &ws.qx[j * d..(j + 1) * d]);
                let (rem, j0s) = (rem * self.inv_sqrt_mn, j0s_a * self.inv_sqrt_mn + j0s_u);
                e[j] = -(j0s / alpha + alpha * rem);
                r[j] = rbar[j] + e[j];
                let Some((ga, _)) = &mut grad else { continue };
                // ds = α (J0^T e + ΔJ^T r): α goes into the row's coefficients
                let c = &mut ws.cb[lj * m..(lj + 1) * m];
                let (ea, ra) = (alpha * e[j] * self.inv_sqrt_mn, alpha * r[j] * self.inv_sqrt_mn);
                let (ej, rj) = (alpha * e[j] * self.inv_sqrt_n, alpha * r[j] * self.inv_sqrt_n);
                kernels::row_update(ga, s0, &ws.d1_row, ea, ra, c, a0, s1, &ws.e1_row, &ws.da, ej, rj);
            }
            if let Some((_, gu)) = &mut grad {
                self.ct_times_x_rows(&ws.cb, rows, gu, bi > 0);
            }
        }
        true
    }

    fn kernel_drift_matrix(&self, ws: &mut TwoLayerWork) -> Option<Vec<f64>> {
        let (n, m) = (self.n, self.m);
        // Forming K_t - K0 costs 4 n² m flops; a Lanczos iteration costs ~8 n m (d+1)
        // per step and needs tens of steps, so forming wins unless n >> 60 (d+1).
        if n > 60 * (self.d + 1) {
            return None;
        }
        // ΔA A0^T + A0 ΔA^T + ΔA ΔA^T = M + M^T with M = ΔA (A0 + ΔA/2)^T; same for B.
        let mut dk = vec![0.0; n * n];
        for part in 0..2 {
            for j in 0..n {
                let rg = j * m..(j + 1) * m;
                if part == 1 {
                    self.db_row(&ws.e1, &ws.da, j, &mut ws.row);
                }
                for (i, k) in rg.enumerate() {
                    let (delta, init) = if part == 0 {
                        (ws.d1[k] * self.inv_sqrt_mn, self.base.s0[k] * self.inv_sqrt_mn)
                    } else {
                        (ws.row[i] * self.inv_sqrt_n, self.w0[i] * self.base.s1[k] * self.inv_sqrt_n)
                    };
                    ws.y[k] = delta;
                    ws.c[k] = init + 0.5 * delta;
                }
            }
            let mut prod = vec![0.0; n * n];
            matmul(
                MatMut::from_row_major_slice_mut(&mut prod, n, n),
                Accum::Replace,
                MatRef::from_row_major_slice(&ws.y, n, m),
                MatRef::from_row_major_slice(&ws.c, n, m).transpose(),
                1.0,
                Par::Seq,
            );
            for a in 0..n {
                for b in 0..n {
                    let s = prod[a * n + b] + prod[b * n + a];
                    dk[a * n + b] += if part == 0 { s } else { s * self.gram[a * n + b] };
                }
            }
        }
        Some(dk)
    }
}

/// A B^T (n x n) for A, B (n x m) row-major.
fn sym_product(a: &[f64], b: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    matmul(
        MatMut::from_row_major_slice_mut(&mut out, n, n),
        Accum::Replace,
        MatRef::from_row_major_slice(a, n, m),
        MatRef::from_row_major_slice(b, n, m).transpose(),
        1.0,
        Par::Seq,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing;

    fn net(act: Activation, centered: bool) -> TwoLayer {
        let (n, d, m) = (5, 3, 7);
        let mut rng = Rng::new(2);
        let x = rng.normal_vec(n * d, 0.6);
        let y = rng.normal_vec(n, 1.0);
        TwoLayer::new(x, n, d, y, m, act, 4, None, centered).unwrap()
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Erf, Activation::Softplus] {
            let m = net(act, true);
            let w: Vec<f64> = m.w0().iter().map(|v| v * 1.3 + 0.05).collect();
            let err = testing::jacobian_fd_error(&m, &w);
            assert!(err < 1e-7, "{act:?}: {err}");
        }
    }

    #[test]
    fn prepared_products_equal_j0t_mul() {
        let m = net(Activation::Tanh, true);
        let (n, p) = (m.n(), m.p());
        let mut ws = m.work();
        for k in [1, 5, MAX_PREPARED] {
            let qs: Vec<f64> = (0..k * n).map(|i| ((i * 17 % 11) as f64 - 5.0) * 0.3).collect();
            assert!(m.j0t_prepare(&mut ws, &qs), "k = {k}");
            let (mut batched, mut single) = (vec![0.0; p], vec![0.0; p]);
            for i in 0..k {
                m.j0t_prepared(&mut ws, i, &mut batched);
                m.j0t_mul(&mut ws, &qs[i * n..(i + 1) * n], &mut single);
                let scale = single.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                for (a, b) in batched.iter().zip(&single) {
                    assert!((a - b).abs() <= 1e-14 * scale, "k = {k}, i = {i}: {a} vs {b}");
                }
            }
        }
        assert!(!m.j0t_prepare(&mut ws, &vec![0.0; (MAX_PREPARED + 1) * n]), "more than MAX_PREPARED");
    }

    #[test]
    fn deviation_ops_match_direct_evaluation() {
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Erf, Activation::Softplus] {
            for centered in [true, false] {
                let m = net(act, centered);
                let dev: Vec<f64> = (0..m.p()).map(|k| 0.3 * ((k * 13 % 7) as f64 / 7.0 - 0.5)).collect();
                testing::check_deviation_ops(&m, &dev, 1e-9);
            }
        }
    }

    #[test]
    fn fused_rhs_equals_the_separate_operations() {
        use crate::model::FusedIo;
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Erf] {
            // wide enough for several row blocks
            let (n, d, mw) = (9, 3, 5000);
            let mut rng = Rng::new(8);
            let x = rng.normal_vec(n * d, 0.6);
            let y = rng.normal_vec(n, 1.0);
            let m = TwoLayer::new(x, n, d, y, mw, act, 1, None, true).unwrap();
            let p = m.p();
            for scale in [1e-6, 0.3] {
                let dbar: Vec<f64> = (0..p).map(|k| scale * ((k * 13 % 7) as f64 / 7.0 - 0.5) / 70.0).collect();
                let s: Vec<f64> = (0..p).map(|k| ((k * 5 % 3) as f64 - 1.0) * 0.01).collect();
                let rbar: Vec<f64> = (0..n).map(|j| 0.1 * j as f64).collect();
                let alpha = 7.0;
                let dev: Vec<f64> = dbar.iter().zip(&s).map(|(db, si)| db + si / (alpha * alpha)).collect();
                let mut ws = m.work();
                let (mut rem, mut j0s, mut grad) = (vec![0.0; n], vec![0.0; n], vec![0.0; p]);
                m.set_deviation(&mut ws, &dev, &mut rem);
                m.j0_mul(&mut ws, &s, &mut j0s);
                let e: Vec<f64> = (0..n).map(|j| -(j0s[j] / alpha + alpha * rem[j])).collect();
                let r: Vec<f64> = (0..n).map(|j| rbar[j] + e[j]).collect();
                m.pullback(&mut ws, &e, &r, &mut grad);
                grad.iter_mut().for_each(|g| *g *= alpha);
                let (mut ef, mut rf, mut gf) = (vec![0.0; n], vec![0.0; n], vec![0.0; p]);
                let io = FusedIo { dbar: &dbar, s: &s, rbar: &rbar, alpha, e: &mut ef, r: &mut rf, ds: Some(&mut gf) };
                assert!(m.fused_rhs(&mut m.work(), io));
                let close = |a: &[f64], b: &[f64]| {
                    let sc = b.iter().fold(0.0f64, |x, y| x.max(y.abs()));
                    a.iter().zip(b).all(|(u, v)| (u - v).abs() <= 1e-12 * sc)
                };
                assert!(close(&ef, &e) && close(&rf, &r) && close(&gf, &grad), "{act:?} {scale}");
                // without ds (a measurement): the same e and r
                let (mut eo, mut ro) = (vec![0.0; n], vec![0.0; n]);
                let io = FusedIo { dbar: &dbar, s: &s, rbar: &rbar, alpha, e: &mut eo, r: &mut ro, ds: None };
                assert!(m.fused_rhs(&mut m.work(), io));
                assert_eq!((eo, ro), (ef, rf), "{act:?} {scale}");
            }
        }
    }

    #[test]
    fn remainder_is_accurate_for_tiny_deviations() {
        // Rem(s d) / s² must approach (1/2) D²h[d, d] as s -> 0 with no loss of digits:
        // compare s = 1e-9 with s = 1e-4 (their ratio differs by O(s) = 1e-4).
        let m = net(Activation::Tanh, true);
        let dev: Vec<f64> = (0..m.p()).map(|k| (k * 13 % 7) as f64 / 7.0 - 0.5).collect();
        let mut ws = m.work();
        let mut r1 = vec![0.0; m.n()];
        let mut r2 = vec![0.0; m.n()];
        let scaled = |s: f64| dev.iter().map(|v| v * s).collect::<Vec<_>>();
        m.set_deviation(&mut ws, &scaled(1e-9), &mut r1);
        m.set_deviation(&mut ws, &scaled(1e-4), &mut r2);
        for j in 0..m.n() {
            let (a, b) = (r1[j] / 1e-18, r2[j] / 1e-8);
            assert!((a - b).abs() < 1e-3 * b.abs().max(1e-3), "{a} vs {b}");
        }
    }

    #[test]
    fn centred_output_vanishes_at_w0_and_r0_is_data_only() {
        let m = net(Activation::Tanh, true);
        assert!(m.h(m.w0()).iter().all(|v| v.abs() < 1e-15));
        let u = net(Activation::Tanh, false);
        assert!(u.h(u.w0()).iter().any(|v| v.abs() > 1e-6));
    }

    #[test]
    fn bad_inputs_name_the_parameter() {
        let err = |r: Result<TwoLayer>| r.unwrap_err().to_string();
        let x = vec![0.1; 6];
        let y = vec![0.0; 3];
        assert!(err(TwoLayer::new(x.clone(), 3, 2, y.clone(), 0, Activation::Tanh, 0, None, true)).starts_with("m:"));
        assert!(err(TwoLayer::new(x.clone(), 3, 2, vec![0.0; 2], 4, Activation::Tanh, 0, None, true)).starts_with("y:"));
        let mut xn = x.clone();
        xn[2] = f64::NAN;
        assert!(err(TwoLayer::new(xn, 3, 2, y.clone(), 4, Activation::Tanh, 0, None, true)).starts_with("X:"));
        assert!(err(TwoLayer::new(x.clone(), 3, 2, y.clone(), 4, Activation::Tanh, 0, Some(vec![0.0; 5]), true))
            .starts_with("w0:"));
        assert!(err(TwoLayer::new(x, 3, 2, y, 10_000_000_000, Activation::Tanh, 0, None, true)).starts_with("m:"));
    }
}
