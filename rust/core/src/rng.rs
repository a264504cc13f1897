//! Seeded, platform-independent random numbers (ChaCha8) for model construction.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// `len` draws of N(0, scale²).
    pub fn normal_vec(&mut self, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| scale * self.0.sample::<f64, _>(StandardNormal)).collect()
    }

    /// `len` draws of Unif[-half_width, half_width].
    pub fn uniform_vec(&mut self, len: usize, half_width: f64) -> Vec<f64> {
        (0..len).map(|_| half_width * (2.0 * self.0.random::<f64>() - 1.0)).collect()
    }
}
