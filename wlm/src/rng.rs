//! A small seeded random number generator whose whole state is four `u64`s (for exact resume).

use rand::RngCore;

/// xoshiro256++ seeded through splitmix64.
///
/// Its state is four `u64`s that a checkpoint stores, so a resumed run draws exactly the
/// numbers an uninterrupted one would. Implements [`rand::RngCore`], so every `rand`
/// helper (ranges, index sampling) works with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainRng {
    state: [u64; 4],
}

impl TrainRng {
    /// A generator seeded from `seed` (any value, including 0).
    pub fn seed_from(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    /// The full state, for a checkpoint.
    pub fn state(&self) -> [u64; 4] {
        self.state
    }

    /// Restores a state written by [`TrainRng::state`]. An all-zero state (which xoshiro
    /// cannot leave) is replaced by the seed-0 state.
    pub fn from_state(state: [u64; 4]) -> Self {
        if state == [0; 4] {
            return Self::seed_from(0);
        }
        Self { state }
    }
}

impl RngCore for TrainRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn restored_state_continues_the_same_stream() {
        let mut a = TrainRng::seed_from(7);
        for _ in 0..10 {
            a.next_u64();
        }
        let mut b = TrainRng::from_state(a.state());
        let xs: Vec<u64> = (0..20).map(|_| a.random_range(0..1000)).collect();
        let ys: Vec<u64> = (0..20).map(|_| b.random_range(0..1000)).collect();
        assert_eq!(xs, ys);
    }

    #[test]
    fn different_seeds_give_different_streams() {
        let mut a = TrainRng::seed_from(1);
        let mut b = TrainRng::seed_from(2);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
