//! Batch windows and the daily/weekly rhythm of activity, in microseconds
//! since the Unix epoch (UTC wall-clock, as the landing timestamps are).

use super::rng::{Cumulative, Rng};

/// One hour in microseconds.
pub(crate) const HOUR_MICROS: i64 = 3_600_000_000;
/// One day in microseconds.
pub(crate) const DAY_MICROS: i64 = 24 * HOUR_MICROS;
/// Length of a batch window in days.
pub(crate) const WINDOW_DAYS: i64 = 30;
/// 2026-01-01T00:00:00 UTC in microseconds since the epoch (20454 days).
pub(crate) const EPOCH_2026_MICROS: i64 = 20_454 * DAY_MICROS;

/// The window of batch `batch` (1-based): `[start, end)` in microseconds,
/// starting at 2026-01-01T00:00:00 + 30·(batch−1) days.
pub(crate) fn batch_window(batch: u32) -> (i64, i64) {
    let start = EPOCH_2026_MICROS + (i64::from(batch) - 1) * WINDOW_DAYS * DAY_MICROS;
    (start, start + WINDOW_DAYS * DAY_MICROS)
}

/// Relative activity by local hour of day: quiet at night, busy in office hours
/// with a dip at lunch and a long evening tail.
const HOUR_WEIGHTS: [u64; 24] = [
    3, 2, 1, 1, 1, 2, 5, 10, 18, 24, 26, 25, 19, 23, 25, 24, 21, 16, 13, 12, 11, 9, 7, 5,
];
/// Relative activity by weekday (Monday first): weekends are quieter.
const WEEKDAY_WEIGHTS: [u64; 7] = [11, 12, 12, 12, 10, 5, 4];

/// Weighted choice of (local) day and hour inside one batch window.
#[derive(Debug, Clone)]
pub(crate) struct Rhythm {
    start: i64,
    end: i64,
    days: Cumulative,
    hours: Cumulative,
}

impl Rhythm {
    /// The rhythm of batch `batch`'s window.
    pub(crate) fn new(batch: u32) -> Self {
        let (start, end) = batch_window(batch);
        let first_day = start.div_euclid(DAY_MICROS);
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let first_weekday = (first_day + 3).rem_euclid(7) as usize;
        let days = Cumulative::new(
            WEEKDAY_WEIGHTS
                .iter()
                .copied()
                .cycle()
                .skip(first_weekday)
                .take(WINDOW_DAYS as usize),
        );
        Self {
            start,
            end,
            days,
            hours: Cumulative::new(HOUR_WEIGHTS),
        }
    }

    /// Window start (inclusive).
    pub(crate) fn start(&self) -> i64 {
        self.start
    }

    /// Window end (exclusive).
    pub(crate) fn end(&self) -> i64 {
        self.end
    }

    /// A time inside the window that follows the daily rhythm of a user living
    /// at `utc_offset_hours` (local times are wrapped around the window).
    pub(crate) fn sample(&self, rng: &mut Rng, utc_offset_hours: i64) -> i64 {
        let day = self.days.sample(rng).unwrap_or(0) as i64;
        let hour = self.hours.sample(rng).unwrap_or(12) as i64;
        let within = rng.below(HOUR_MICROS as u64) as i64;
        let local = day * DAY_MICROS + hour * HOUR_MICROS + within;
        let len = self.end - self.start;
        self.start + (local - utc_offset_hours * HOUR_MICROS).rem_euclid(len)
    }

    /// Like [`Rhythm::sample`] but not before `not_before` (a sign-up time);
    /// always inside the window provided `not_before < end`.
    pub(crate) fn sample_after(
        &self,
        rng: &mut Rng,
        utc_offset_hours: i64,
        not_before: i64,
    ) -> i64 {
        if not_before <= self.start {
            return self.sample(rng, utc_offset_hours);
        }
        for _ in 0..4 {
            let t = self.sample(rng, utc_offset_hours);
            if t >= not_before {
                return t;
            }
        }
        self.uniform_after(rng, not_before)
    }

    /// A uniformly distributed time in `[max(start, not_before), end)`.
    pub(crate) fn uniform_after(&self, rng: &mut Rng, not_before: i64) -> i64 {
        let from = not_before.clamp(self.start, self.end - 1);
        from + rng.below((self.end - from) as u64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_window_starts_2026_01_01() {
        let expected = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros());
        assert_eq!(Some(EPOCH_2026_MICROS), expected);
        assert_eq!(batch_window(2).0, EPOCH_2026_MICROS + 30 * DAY_MICROS);
    }

    #[test]
    fn samples_stay_inside_the_window() {
        let rhythm = Rhythm::new(3);
        let mut rng = Rng::new(9);
        for offset in [-8, 0, 10] {
            for _ in 0..2_000 {
                let t = rhythm.sample(&mut rng, offset);
                assert!(t >= rhythm.start() && t < rhythm.end());
                let late = rhythm.end() - HOUR_MICROS;
                let t = rhythm.sample_after(&mut rng, offset, late);
                assert!(t >= late && t < rhythm.end());
            }
        }
    }
}
