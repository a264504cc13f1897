//! The converse model of Theorem 1.3 (seed Appendix B; THEORY.md 4.1):
//! h(w) = a w + (b/2) w², a = 1/sqrt(T), b = sign Lip(Dh), w0 = 0, y* = sqrt(2 R0).

use super::{FusedIo, LipKind, Model};
use crate::error::{check, Error, Result};

#[derive(Clone, Debug)]
pub struct Converse {
    pub t_horizon: f64,
    pub r0: f64,
    pub lip_dh: f64,
    pub sign: f64,
    a: f64,
    b: f64,
    w0: [f64; 1],
    y_star: [f64; 1],
    h0: [f64; 1],
}

impl Converse {
    pub fn new(t_horizon: f64, r0: f64, lip_dh: f64, sign: i32) -> Result<Converse> {
        check::positive("T", t_horizon)?;
        check::positive("R0", r0)?;
        check::non_negative("lip_dh", lip_dh)?;
        let sign = match sign {
            1 => 1.0,
            -1 => -1.0,
            s => return Err(Error::invalid("sign", format!("must be 1 or -1 (got {s})"))),
        };
        Ok(Converse {
            t_horizon,
            r0,
            lip_dh,
            sign,
            a: 1.0 / t_horizon.sqrt(),
            b: sign * lip_dh,
            w0: [0.0],
            y_star: [(2.0 * r0).sqrt()],
            h0: [0.0],
        })
    }
}

/// The deviation d of the last `set_deviation`.
pub struct ConverseWork {
    d: f64,
}

impl Model for Converse {
    type Work = ConverseWork;

    fn family(&self) -> &'static str {
        "converse"
    }
    fn n(&self) -> usize {
        1
    }
    fn p(&self) -> usize {
        1
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
        self.lip_dh
    }
    fn lip_h(&self, rho: f64) -> f64 {
        // |h'(w)| = |a + b w| <= a + |b| rho on the ball.
        self.a + self.lip_dh * rho
    }
    fn h(&self, w: &[f64]) -> Vec<f64> {
        vec![self.a * w[0] + 0.5 * self.b * w[0] * w[0]]
    }
    fn jacobian(&self, w: &[f64]) -> Vec<f64> {
        vec![self.a + self.b * w[0]]
    }
    fn kernel0(&self) -> Vec<f64> {
        vec![self.a * self.a]
    }
    fn work(&self) -> ConverseWork {
        ConverseWork { d: 0.0 }
    }
    fn j0_mul(&self, _ws: &mut ConverseWork, v: &[f64], out: &mut [f64]) {
        out[0] = self.a * v[0];
    }
    fn j0t_mul(&self, _ws: &mut ConverseWork, q: &[f64], out: &mut [f64]) {
        out[0] = self.a * q[0];
    }
    fn set_deviation(&self, ws: &mut ConverseWork, d: &[f64], rem: &mut [f64]) {
        ws.d = d[0];
        rem[0] = 0.5 * self.b * d[0] * d[0];
    }
    fn pullback(&self, ws: &mut ConverseWork, e: &[f64], r: &[f64], out: &mut [f64]) {
        out[0] = self.a * e[0] + self.b * ws.d * r[0];
    }
    /// The flow's generic sequence (deviation, remainder, J0 s, pullback) in
    /// scalars, with the same operations in the same order: a Converse run is
    /// a few flops per evaluation, so the generic path's calls and slices were
    /// most of its cost.
    fn fused_rhs(&self, ws: &mut ConverseWork, io: FusedIo<'_>) -> bool {
        let a = io.alpha;
        let s = io.s[0];
        let d = io.dbar[0] + 1.0 / (a * a) * s;
        ws.d = d;
        let rem = 0.5 * self.b * d * d;
        let e = -(self.a * s / a + a * rem);
        let r = io.rbar[0] + e;
        io.e[0] = e;
        io.r[0] = r;
        if let Some(ds) = io.ds {
            ds[0] = a * (self.a * e + self.b * d * r);
        }
        true
    }
    fn dj_mul(&self, ws: &mut ConverseWork, x: &[f64], out: &mut [f64]) {
        out[0] = self.b * ws.d * x[0];
    }
    fn djt_mul(&self, ws: &mut ConverseWork, y: &[f64], out: &mut [f64]) {
        out[0] = self.b * ws.d * y[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing;

    #[test]
    fn jacobian_and_deviation_ops() {
        let m = Converse::new(10.0, 0.5, 2.0, -1).unwrap();
        assert!(testing::jacobian_fd_error(&m, &[0.3]) < 1e-8);
        testing::check_deviation_ops(&m, &[0.2], 1e-12);
    }

    /// Same operations in the same order: the fused right-hand side equals the
    /// flow's generic sequence bit for bit.
    #[test]
    fn fused_rhs_equals_the_separate_operations() {
        for (sign, alpha, dbar, s, rbar) in [(1, 1.0, 0.3, -0.2, 1.1), (-1, 37.0, 1e-3, 2.5, 0.4), (1, 1e-3, 7.0, 1e-9, -0.1)] {
            let m = Converse::new(3.0, 0.5, 2.5, sign).unwrap();
            let mut ws = m.work();
            let (mut rem, mut j0s, mut grad) = ([0.0], [0.0], [0.0]);
            let dev = [dbar + 1.0 / (alpha * alpha) * s];
            m.set_deviation(&mut ws, &dev, &mut rem);
            m.j0_mul(&mut ws, &[s], &mut j0s);
            let e = -(j0s[0] / alpha + alpha * rem[0]);
            let r = rbar + e;
            m.pullback(&mut ws, &[e], &[r], &mut grad);
            let (mut ef, mut rf, mut ds) = ([0.0], [0.0], [0.0]);
            let io = FusedIo { dbar: &[dbar], s: &[s], rbar: &[rbar], alpha, e: &mut ef, r: &mut rf, ds: Some(&mut ds) };
            assert!(m.fused_rhs(&mut m.work(), io));
            assert_eq!((ef[0], rf[0], ds[0]), (e, r, alpha * grad[0]), "sign {sign} alpha {alpha}");
        }
    }

    #[test]
    fn bad_inputs() {
        assert!(Converse::new(0.0, 1.0, 1.0, 1).unwrap_err().to_string().starts_with("T:"));
        assert!(Converse::new(1.0, f64::NAN, 1.0, 1).unwrap_err().to_string().starts_with("R0:"));
        assert!(Converse::new(1.0, 1.0, 1.0, 2).unwrap_err().to_string().starts_with("sign:"));
    }
}
