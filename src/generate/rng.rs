//! Deterministic randomness for the generator: a keyed hash, a small PRNG and
//! the derivation of UUID-looking row ids.
//!
//! Hand-written rather than taken from `rand`: the landing contract promises
//! byte-identical files for the same `(seed, batch)`, forever. `rand`'s `StdRng`
//! is documented as not portable across `rand` versions, and a portable stream
//! (`rand_chacha`) would be an extra dependency for ~60 lines of well-known code
//! (SplitMix64 for hashing and seeding, xoshiro256++ for the stream). Everything
//! the generator derives from these numbers is integer arithmetic, so the output
//! does not depend on the platform's floating-point library either.

use uuid::Uuid;

/// The SplitMix64 increment (2^64 / golden ratio).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijective 64-bit mixer.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash a sequence of words into one well-mixed key (order-sensitive).
pub(crate) fn hash_key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x6a09_e667_f3bc_c909, |h, &p| {
        mix64(h ^ mix64(p.wrapping_add(GOLDEN)))
    })
}

/// Map a key to `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for
/// the ranges used here and, more importantly, fixed).
pub(crate) fn key_below(key: u64, n: u64) -> u64 {
    ((u128::from(key) * u128::from(n)) >> 64) as u64
}

/// xoshiro256++: small, fast, and with a fixed, documented output stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from a key (expanded with SplitMix64, as the
    /// xoshiro authors recommend; the state can never be all zero in practice).
    pub(crate) fn new(key: u64) -> Self {
        let mut sm = key;
        let mut next = || {
            sm = sm.wrapping_add(GOLDEN);
            mix64(sm)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// A generator for the key made of `parts` (see [`hash_key`]).
    pub(crate) fn keyed(parts: &[u64]) -> Self {
        Self::new(hash_key(parts))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
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

    /// A number in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        key_below(self.next_u64(), n)
    }

    /// True with probability `permille / 1000`.
    pub(crate) fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    /// `weights` must not be empty or sum to zero (all tables here are constants).
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            let w = u64::from(w);
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// A uniformly chosen element of a non-empty array.
    pub(crate) fn pick<'a, T, const N: usize>(&mut self, items: &'a [T; N]) -> &'a T {
        nth_or_last(items, self.below(N as u64) as usize)
    }

    /// A uniformly chosen element of a slice; `None` when it is empty.
    pub(crate) fn pick_from<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }

    /// An element of a non-empty array, chosen with probability proportional to
    /// its weight in `weights` (see [`Rng::weighted`]).
    pub(crate) fn choose<'a, T, const N: usize>(
        &mut self,
        items: &'a [T; N],
        weights: &[u32; N],
    ) -> &'a T {
        nth_or_last(items, self.weighted(weights))
    }
}

/// `items[i]`, or the last item for an `i` past the end.
// Cannot panic: `N > 0` is checked at compile time and the index is clamped to `N - 1`.
#[allow(clippy::indexing_slicing)]
fn nth_or_last<T, const N: usize>(items: &[T; N], i: usize) -> &T {
    const { assert!(N > 0, "a choice among no items") };
    &items[i.min(N - 1)]
}

/// A cumulative weight table for fast weighted choice over many items
/// (binary search), all in integers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cumulative {
    ends: Vec<u64>,
}

impl Cumulative {
    /// Build from per-item weights.
    pub(crate) fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0u64;
        let ends = weights
            .into_iter()
            .map(|w| {
                total = total.saturating_add(w);
                total
            })
            .collect();
        Self { ends }
    }

    /// Sum of all weights.
    pub(crate) fn total(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// An index chosen proportionally to its weight; `None` when the total is 0.
    pub(crate) fn sample(&self, rng: &mut Rng) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let r = rng.below(total);
        Some(self.ends.partition_point(|&end| end <= r))
    }
}

/// A bijection on 62-bit numbers (xorshift and odd multiplications modulo 2^62).
fn permute62(x: u64) -> u64 {
    const MASK: u64 = (1 << 62) - 1;
    let mut z = x & MASK;
    z ^= z >> 31;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9) & MASK;
    z ^= z >> 29;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb) & MASK;
    z ^ (z >> 32)
}

/// The id of row `row` of table `table_tag` (0..4) in batch `batch`: a
/// version-4-looking UUID whose lower 62 bits are a bijection of
/// `(batch, table, row)`, so ids never repeat within a landing zone (batch
/// numbers never repeat there), whatever the seeds of the runs that wrote it.
/// The upper half is keyed by the seed, so different seeds give different ids.
/// Requires `batch < 2^20` and `row < 2^32`.
pub(crate) fn row_uuid(seed: u64, table_tag: u64, batch: u64, row: u64) -> Uuid {
    let x = (batch << 34) | ((table_tag & 3) << 32) | (row & 0xffff_ffff);
    let lo = (0b10 << 62) | permute62(x);
    let hi = (mix64(x ^ mix64(seed ^ GOLDEN)) & !0xf000) | 0x4000;
    Uuid::from_u64_pair(hi, lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_fixed() {
        // Pinned values: changing them changes every landing file ever written.
        // (Computed independently from the reference SplitMix64 / xoshiro256++.)
        let mut rng = Rng::new(42);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xd076_4d4f_4476_689f,
                0x519e_4174_576f_3791,
                0xfbe0_7cfb_0c24_ed8c
            ]
        );
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
    }

    #[test]
    fn row_ids_are_unique_and_look_like_v4() {
        let mut seen = std::collections::HashSet::new();
        for batch in [1u64, 2, 999_999] {
            for table in 0..4 {
                for row in 0..2_000 {
                    let id = row_uuid(7, table, batch, row);
                    assert_eq!(id.get_version_num(), 4);
                    assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
                    assert!(seen.insert(id));
                }
            }
        }
        assert_ne!(row_uuid(1, 0, 1, 0), row_uuid(2, 0, 1, 0));
    }

    #[test]
    fn cumulative_respects_weights() {
        let c = Cumulative::new([0, 5, 0, 5]);
        let mut rng = Rng::new(1);
        for _ in 0..1_000 {
            let i = c.sample(&mut rng);
            assert!(matches!(i, Some(1) | Some(3)), "{i:?}");
        }
        assert_eq!(Cumulative::new([0, 0]).sample(&mut rng), None);
    }
}
