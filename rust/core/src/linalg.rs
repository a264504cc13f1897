//! Dense linear algebra helpers (faer) and a Lanczos estimate of the spectral norm.

use crate::error::{Error, Result};
use faer::{Mat, MatRef, Side};

/// Symmetric eigendecomposition of an n x n row-major matrix: (eigenvalues ascending,
/// eigenvectors as the columns of a row-major n x n matrix). Errors name `param`
/// when the matrix is not finite (overflow upstream) or the iteration fails.
pub fn sym_eig(a: &[f64], n: usize, param: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    if let Some(i) = a.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            param,
            format!("is not finite (entry {i} is {}): the inputs are too large for double precision", a[i]),
        ));
    }
    let m = MatRef::from_row_major_slice(a, n, n);
    let evd = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::invalid(param, format!("its eigendecomposition did not converge ({e:?})")))?;
    let s = evd.S();
    let u = evd.U();
    let lambda: Vec<f64> = (0..n).map(|k| s[k]).collect();
    let mut vecs = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            vecs[i * n + k] = u[(i, k)];
        }
    }
    Ok((lambda, vecs))
}

/// Eigenvalues (ascending) of a symmetric n x n row-major matrix.
pub fn sym_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    MatRef::from_row_major_slice(a, n, n)
        .self_adjoint_eigenvalues(Side::Lower)
        .expect("symmetric eigenvalue iteration failed to converge")
}

/// max |eigenvalue| of a symmetric matrix = its spectral norm.
pub fn sym_op_norm(a: &[f64], n: usize) -> f64 {
    sym_eigenvalues(a, n).iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Spectral norm of a general rows x cols row-major matrix, via the smaller Gram matrix.
pub fn op_norm_dense(a: &[f64], rows: usize, cols: usize) -> f64 {
    let m = MatRef::from_row_major_slice(a, rows, cols);
    let g: Mat<f64> = if rows <= cols { &m * m.transpose() } else { m.transpose() * &m };
    let k = g.nrows();
    let mut flat = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            flat[i * k + j] = g[(i, j)];
        }
    }
    sym_op_norm(&flat, k).max(0.0).sqrt()
}

/// A random orthogonal k x k matrix (row-major), from the QR factorisation of a
/// Gaussian matrix with the signs fixed so that the distribution is Haar.
pub fn random_orthogonal(k: usize, rng: &mut crate::rng::Rng) -> Vec<f64> {
    let g = rng.normal_vec(k * k, 1.0);
    let m = MatRef::from_row_major_slice(&g, k, k);
    let qr = m.qr();
    let q = qr.compute_Q();
    let r = qr.R();
    let mut out = vec![0.0; k * k];
    for j in 0..k {
        let s = if r[(j, j)] < 0.0 { -1.0 } else { 1.0 };
        for i in 0..k {
            out[i * k + j] = s * q[(i, j)];
        }
    }
    out
}

/// Scratch space for `lanczos_norm`: the Krylov basis is kept for full
/// reorthogonalisation (at most `max_iter` vectors of length n).
pub struct Lanczos {
    n: usize,
    basis: Vec<f64>,
    w: Vec<f64>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
}

impl Lanczos {
    pub fn new(n: usize, max_iter: usize) -> Lanczos {
        let k = max_iter.min(n).max(1);
        Lanczos { n, basis: vec![0.0; k * n], w: vec![0.0; n], alpha: vec![0.0; k], beta: vec![0.0; k] }
    }

    /// Spectral norm (max |eigenvalue|) of the symmetric operator `apply` on R^n,
    /// by Lanczos with full reorthogonalisation. Exact (to rounding) when the
    /// iteration reaches n; otherwise stops when the extreme Ritz values agree to `tol`.
    pub fn norm(&mut self, tol: f64, mut apply: impl FnMut(&[f64], &mut [f64])) -> f64 {
        let n = self.n;
        let kmax = self.alpha.len();
        // Deterministic start vector with all components nonzero.
        let mut nrm = 0.0;
        for i in 0..n {
            let v = 1.0 + ((i as f64) * 0.618_033_988_749_895).fract();
            self.basis[i] = v;
            nrm += v * v;
        }
        let nrm = nrm.sqrt();
        self.basis[..n].iter_mut().for_each(|v| *v /= nrm);
        let mut prev = f64::NAN;
        let mut k = 0;
        loop {
            let (done, rest) = self.basis.split_at_mut((k + 1) * n);
            let q = &done[k * n..];
            apply(q, &mut self.w);
            let a: f64 = self.w.iter().zip(q).map(|(x, y)| x * y).sum();
            self.alpha[k] = a;
            // full reorthogonalisation against every basis vector (twice for stability)
            for _ in 0..2 {
                for j in 0..=k {
                    let qj = &done[j * n..(j + 1) * n];
                    let c: f64 = self.w.iter().zip(qj).map(|(x, y)| x * y).sum();
                    self.w.iter_mut().zip(qj).for_each(|(x, y)| *x -= c * y);
                }
            }
            let b = self.w.iter().map(|x| x * x).sum::<f64>().sqrt();
            let est = tridiag_norm(&self.alpha[..=k], &self.beta[..k]);
            let scale = est.max(1e-300);
            k += 1;
            let converged = (est - prev).abs() <= tol * scale;
            if k == kmax || b <= 1e-14 * scale || converged {
                return est;
            }
            prev = est;
            self.beta[k - 1] = b;
            rest[..n].iter_mut().zip(&self.w).for_each(|(x, y)| *x = y / b);
        }
    }
}

/// max |eigenvalue| of the symmetric tridiagonal matrix (diag a, off-diag b).
fn tridiag_norm(a: &[f64], b: &[f64]) -> f64 {
    let k = a.len();
    let mut t = vec![0.0; k * k];
    for i in 0..k {
        t[i * k + i] = a[i];
        if i + 1 < k {
            t[i * k + i + 1] = b[i];
            t[(i + 1) * k + i] = b[i];
        }
    }
    sym_op_norm(&t, k)
}

/// Both sides of Lemma 3.3 for A (n x p) and B (n x p), row-major:
/// (||exp(-(A+B)^T(A+B) t) - exp(-A^T A t)||_op, 2 sqrt(t) ||B||_op).
/// The matrix exponentials come from symmetric eigendecompositions.
pub fn lemma_3_3(a: &[f64], b: &[f64], rows: usize, cols: usize, t: f64) -> Result<(f64, f64)> {
    let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x + y).collect();
    let e0 = expm_neg_gram(a, rows, cols, t, "A^T A")?;
    let e1 = expm_neg_gram(&ab, rows, cols, t, "(A+B)^T (A+B)")?;
    let diff: Vec<f64> = e1.iter().zip(&e0).map(|(x, y)| x - y).collect();
    Ok((sym_op_norm(&diff, cols), 2.0 * t.sqrt() * op_norm_dense(b, rows, cols)))
}

/// exp(-M^T M t) (cols x cols) for M (rows x cols); `name` names M^T M in errors.
fn expm_neg_gram(m: &[f64], rows: usize, cols: usize, t: f64, name: &str) -> Result<Vec<f64>> {
    let mr = MatRef::from_row_major_slice(m, rows, cols);
    let g: Mat<f64> = mr.transpose() * mr;
    let mut flat = vec![0.0; cols * cols];
    for i in 0..cols {
        for j in 0..cols {
            flat[i * cols + j] = g[(i, j)];
        }
    }
    let (lambda, v) = sym_eig(&flat, cols, name)?;
    let mut out = vec![0.0; cols * cols];
    for i in 0..cols {
        for j in 0..cols {
            let mut s = 0.0;
            for k in 0..cols {
                s += v[i * cols + k] * (-lambda[k].max(0.0) * t).exp() * v[j * cols + k];
            }
            out[i * cols + j] = s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn lanczos_matches_dense_norm() {
        let mut rng = Rng::new(1);
        for &n in &[1usize, 5, 40, 120] {
            let g = rng.normal_vec(n * n, 1.0);
            let sym: Vec<f64> = (0..n * n).map(|i| g[i] + g[(i % n) * n + i / n]).collect();
            let exact = sym_op_norm(&sym, n);
            let mut l = Lanczos::new(n, 60);
            let est = l.norm(1e-13, |x, y| crate::model::dense::mat_vec(&sym, n, n, x, y));
            assert!((est - exact).abs() < 1e-8 * exact, "n={n}: {est} vs {exact}");
        }
    }

    #[test]
    fn random_orthogonal_is_orthogonal() {
        let mut rng = Rng::new(7);
        let q = random_orthogonal(9, &mut rng);
        for i in 0..9 {
            for j in 0..9 {
                let d: f64 = (0..9).map(|k| q[i * 9 + k] * q[j * 9 + k]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn lemma_3_3_holds_and_is_exact_for_b_zero() {
        let mut rng = Rng::new(3);
        for trial in 0..20 {
            let (r, c) = (3 + trial % 4, 2 + trial % 5);
            let a = rng.normal_vec(r * c, 1.0);
            let b = rng.normal_vec(r * c, 0.3);
            let (lhs, rhs) = lemma_3_3(&a, &b, r, c, 0.7).unwrap();
            assert!(lhs <= rhs, "{lhs} > {rhs}");
            let (lhs0, rhs0) = lemma_3_3(&a, &vec![0.0; r * c], r, c, 0.7).unwrap();
            assert!(lhs0 < 1e-14 && rhs0 == 0.0);
        }
    }

    #[test]
    fn overflowing_gram_matrices_are_errors_not_panics() {
        let (big, one) = (vec![1e200; 6], vec![1.0; 6]);
        let e = lemma_3_3(&big, &one, 3, 2, 1.0).unwrap_err().to_string();
        assert!(e.starts_with("A^T A: is not finite"), "{e}");
        let e = lemma_3_3(&one, &big, 3, 2, 1.0).unwrap_err().to_string();
        assert!(e.starts_with("(A+B)^T (A+B): is not finite"), "{e}");
    }
}
