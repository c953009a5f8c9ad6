//! The Mersenne Twister MT19937 (Matsumoto & Nishimura 1998), seeded and
//! read the way CPython's `random.Random(seed)` does, so that the bootstrap
//! weights of [`super::HoeffdingAdaptiveTree`] with `seed=S` are the very
//! draws River's `HoeffdingAdaptiveTreeClassifier(seed=S)` makes. That turns
//! a statistical comparison with River into an exact one.

use serde::{Deserialize, Serialize};

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER: u32 = 0x8000_0000;
const LOWER: u32 = 0x7fff_ffff;

/// MT19937 state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PyRandom {
    state: Vec<u32>,
    index: usize,
}

impl PyRandom {
    /// Seeded as `random.Random(seed)` for a non-negative integer seed: the
    /// seed's 32-bit words, least significant first, go to `init_by_array`.
    pub fn new(seed: u64) -> Self {
        let key: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut r = PyRandom {
            state: vec![0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        let mt = &mut self.state;
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        for k in 0..N {
            let y = (mt[k] & UPPER) | (mt[(k + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N || self.state.len() != N {
            if self.state.len() != N {
                // A corrupt snapshot: restart from a fixed seed, never panic.
                *self = PyRandom::new(0);
            }
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Uniform in `[0, 1)` with 53 random bits (`random.random()`).
    pub fn random(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Poisson draw by Knuth's product of uniforms, as River's
    /// `utils.random.poisson`.
    pub fn poisson(&mut self, rate: f64) -> u32 {
        let l = (-rate).exp();
        let mut k = 0u32;
        let mut p = 1.0;
        while p > l && k < 10_000 {
            k += 1;
            p *= self.random();
        }
        k.saturating_sub(1)
    }

    pub fn heap_bytes(&self) -> usize {
        crate::classifier::vec_bytes(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cpython_random() {
        // random.Random(42).random(), random.Random(0).random() in CPython.
        assert_eq!(PyRandom::new(42).random(), 0.639_426_798_457_883_7);
        assert_eq!(PyRandom::new(0).random(), 0.844_421_851_525_048_1);
        assert_eq!(
            PyRandom::new((1 << 40) + 5).random(),
            0.504_380_297_041_844_3
        );
        // [poisson(1, random.Random(7)) for _ in range(20)] with River's poisson.
        let mut r = PyRandom::new(7);
        let draws: Vec<u32> = (0..20).map(|_| r.poisson(1.0)).collect();
        assert_eq!(
            draws,
            [0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 2, 2, 1, 0, 0, 0, 1, 2, 1]
        );
        let mut r = PyRandom::new(1);
        let mean: f64 = (0..20_000).map(|_| f64::from(r.poisson(1.0))).sum::<f64>() / 20_000.0;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
    }
}
