//! The simulated user base: who the users are (fixed per `(seed, user_id)`)
//! and how their plan and activity evolve from batch to batch.
//!
//! A user's profile (name, email, country, sign-up time, activity level) is a
//! function of `(seed, user_id)` only, so it is the same in every batch and
//! does not change when `--users` does. Plan and `is_active` follow a Markov
//! walk with one step per batch whose randomness is keyed by
//! `(seed, user_id, batch)`: the state at batch `b` is a pure function of
//! `(seed, user_id, b)`, computed incrementally when many batches are written.

use super::rng::{Rng, hash_key, key_below};
use super::time::{HOUR_MICROS, batch_window};

/// Tags that keep the random streams of different purposes apart.
pub(crate) mod tag {
    pub(crate) const PROFILE: u64 = 1;
    pub(crate) const PLAN_STEP: u64 = 2;
    pub(crate) const ACTIVE_STEP: u64 = 3;
}

/// A subscription plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Plan {
    Free,
    Starter,
    Pro,
    Enterprise,
}

impl Plan {
    /// The plan's name as written to the landing files.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Monthly list price in cents.
    pub(crate) fn price_cents(self) -> i128 {
        match self {
            Plan::Free => 0,
            Plan::Starter => 2_900,
            Plan::Pro => 9_900,
            Plan::Enterprise => 49_900,
        }
    }

    /// Whether the plan is paid (invoices are only issued for paid plans).
    pub(crate) fn is_paying(self) -> bool {
        self != Plan::Free
    }

    /// One batch's plan transition, driven by a number in `0..1000`:
    /// upgrades are several times more likely than downgrades.
    fn step(self, r: u64) -> Plan {
        match (self, r) {
            (Plan::Free, 0..60) => Plan::Starter,
            (Plan::Free, 60..70) => Plan::Pro,
            (Plan::Starter, 0..40) => Plan::Pro,
            (Plan::Starter, 40..52) => Plan::Free,
            (Plan::Pro, 0..22) => Plan::Enterprise,
            (Plan::Pro, 22..34) => Plan::Starter,
            (Plan::Enterprise, 0..10) => Plan::Pro,
            (p, _) => p,
        }
    }
}

/// Countries (ISO 3166-1 alpha-2), their weight (US by far the most common)
/// and the UTC offsets (hours) their users live in.
const COUNTRIES: [(&str, u32, &[i64]); 24] = [
    ("US", 340, &[-5, -6, -7, -8]),
    ("GB", 80, &[0]),
    ("DE", 70, &[1]),
    ("IN", 70, &[5]),
    ("BR", 60, &[-3]),
    ("FR", 50, &[1]),
    ("CA", 50, &[-5, -8]),
    ("ES", 40, &[1]),
    ("AU", 30, &[10, 8]),
    ("NL", 30, &[1]),
    ("JP", 30, &[9]),
    ("MX", 30, &[-6]),
    ("IT", 30, &[1]),
    ("SE", 20, &[1]),
    ("PL", 20, &[1]),
    ("PT", 15, &[0]),
    ("IE", 10, &[0]),
    ("NG", 10, &[1]),
    ("ZA", 10, &[2]),
    ("SG", 10, &[8]),
    ("KR", 10, &[9]),
    ("AR", 10, &[-3]),
    ("CH", 10, &[1]),
    ("BE", 10, &[1]),
];

const FIRST_NAMES: [&str; 50] = [
    "Ana", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Amara",
    "Hiroshi", "Yuki", "Priya", "Arjun", "Chloe", "Lena", "Jonas", "Elif", "Omar", "Fatima",
    "Diego", "Camila", "Wei", "Mei", "Ivan", "Olga", "Pierre", "Claire", "Giulia", "Marco", "Sven",
    "Freya", "Kofi", "Zanele", "Aisha", "David", "Sarah", "James", "Grace", "Daniel", "Nora",
    "Samuel", "Laura", "Thomas", "Julia", "Min-jun", "Seo-yeon", "Tariq", "Ines",
];

const LAST_NAMES: [&str; 50] = [
    "Silva",
    "Smith",
    "Johnson",
    "Garcia",
    "Muller",
    "Schmidt",
    "Rossi",
    "Bianchi",
    "Dubois",
    "Martin",
    "Tanaka",
    "Sato",
    "Patel",
    "Sharma",
    "Kim",
    "Lee",
    "Chen",
    "Wang",
    "Nguyen",
    "Kowalski",
    "Novak",
    "Jensen",
    "Larsen",
    "Okafor",
    "Mensah",
    "Dlamini",
    "Haddad",
    "Khan",
    "Costa",
    "Santos",
    "Fernandez",
    "Lopez",
    "Brown",
    "Wilson",
    "Taylor",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "O'Brien",
];

/// E-mail domains and their weights (consumer mail plus company domains).
const DOMAINS: [(&str, u32); 13] = [
    ("gmail.com", 300),
    ("outlook.com", 100),
    ("yahoo.com", 70),
    ("hotmail.com", 50),
    ("icloud.com", 50),
    ("proton.me", 20),
    ("example.com", 60),
    ("acme.io", 50),
    ("globex.com", 40),
    ("initech.com", 40),
    ("umbrella.co", 30),
    ("hooli.com", 30),
    ("soylent.org", 20),
];

/// Initial plan shares (free, starter, pro, enterprise), permille.
const INITIAL_PLAN: [u32; 4] = [500, 250, 180, 70];
/// The devices events come from.
pub(crate) const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];
/// Preferred device shares (desktop, mobile, tablet), permille.
const DEVICE_PREFERENCE: [u32; 3] = [620, 320, 60];

/// Share of users whose e-mail is messy (mixed case, stray spaces), permille.
pub(crate) const MESSY_EMAIL_PERMILLE: u64 = 50;

/// Everything about a user that does not change between batches.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) user_id: i64,
    pub(crate) full_name: String,
    /// As written to the landing files (messy for about 5% of users).
    pub(crate) email: String,
    pub(crate) country: &'static str,
    /// The user's UTC offset in hours (drives the daily rhythm of their activity).
    pub(crate) utc_offset_hours: i64,
    /// Microseconds since the epoch.
    pub(crate) signup_at: i64,
    pub(crate) initial_plan: Plan,
    /// Heavy-tailed activity weight: a few power users are very active.
    pub(crate) activity: u64,
    /// The preferred device (desktop, mobile or tablet).
    pub(crate) device: &'static str,
}

impl Profile {
    fn new(seed: u64, user_id: i64) -> Self {
        let mut rng = Rng::keyed(&[seed, tag::PROFILE, user_id as u64]);
        let first = *rng.pick(&FIRST_NAMES);
        let last = *rng.pick(&LAST_NAMES);
        let full_name = format!("{first} {last}");
        let (country, _, offsets) = *rng.choose(&COUNTRIES, &country_weights());
        // Every country lists at least one offset.
        let utc_offset_hours = rng.pick_from(offsets).copied().unwrap_or(0);
        let email = make_email(&mut rng, first, last);
        let signup_at = signup_time(&mut rng);
        let initial_plan = *rng.choose(
            &[Plan::Free, Plan::Starter, Plan::Pro, Plan::Enterprise],
            &INITIAL_PLAN,
        );
        // Pareto-like (alpha = 1) weight, in integers: 2^50 / (u + 2^17) with u
        // uniform in 0..2^24. The top 1% of users get ~17% of the weight, the
        // top 10% about half of it.
        let u = rng.below(1 << 24);
        let activity = (1u64 << 50) / (u + (1 << 17));
        let device = *rng.choose(&DEVICES, &DEVICE_PREFERENCE);
        Self {
            user_id,
            full_name,
            email,
            country,
            utc_offset_hours,
            signup_at,
            initial_plan,
            activity,
            device,
        }
    }
}

fn country_weights() -> [u32; COUNTRIES.len()] {
    COUNTRIES.map(|(_, weight, _)| weight)
}

/// A lower-case address built from the name; about 5% come out messy (mixed
/// case always, plus a leading and/or trailing space most of the time).
fn make_email(rng: &mut Rng, first: &str, last: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    };
    let (f, l) = (clean(first), clean(last));
    let local = match rng.below(5) {
        0 => format!("{f}.{l}"),
        1 => format!("{f}{l}"),
        2 => format!("{}{l}", f.chars().take(1).collect::<String>()),
        3 => format!("{f}.{l}{}", rng.below(100)),
        _ => format!("{f}_{l}"),
    };
    let (domain, _) = *rng.choose(&DOMAINS, &DOMAINS.map(|(_, w)| w));
    let address = format!("{local}@{domain}");
    if !rng.chance(MESSY_EMAIL_PERMILLE) {
        return address.to_ascii_lowercase();
    }
    // Messy: "Ana.Silva@Example.com", "ANA.SILVA@GMAIL.COM", with stray spaces.
    let mut messy = if rng.chance(150) {
        address.to_ascii_uppercase()
    } else {
        let mut out = String::with_capacity(address.len());
        let mut start_of_word = true;
        for c in address.chars() {
            out.push(if start_of_word {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            start_of_word = matches!(c, '.' | '_' | '@');
        }
        out
    };
    match rng.below(4) {
        0 => messy.insert(0, ' '),
        1 => messy.push(' '),
        2 => {
            messy.insert(0, ' ');
            messy.push_str("  ");
        }
        _ => {}
    }
    messy
}

/// Sign-up time: mostly in the three years before the first batch (growing:
/// later months more likely), about 4% inside the first batch's window.
fn signup_time(rng: &mut Rng) -> i64 {
    let (first_start, first_end) = batch_window(1);
    let history_start = first_start - 3 * 365 * 24 * HOUR_MICROS;
    if rng.chance(40) {
        first_start + rng.below((first_end - first_start) as u64) as i64
    } else {
        let span = (first_start - history_start) as u64;
        // Max of two uniforms: a linearly increasing density.
        let t = rng.below(span).max(rng.below(span));
        history_start + t as i64
    }
}

/// The population of one run: profiles of users `1..=n`.
#[derive(Debug, Clone)]
pub(crate) struct Population {
    seed: u64,
    pub(crate) profiles: Vec<Profile>,
}

/// Users' plans and activity flags at one batch, and their plans one batch earlier.
#[derive(Debug, Clone)]
pub(crate) struct BatchState {
    pub(crate) batch: u32,
    pub(crate) plan: Vec<Plan>,
    pub(crate) previous_plan: Vec<Plan>,
    pub(crate) active: Vec<bool>,
}

impl Population {
    /// Profiles of users `1..=users`.
    pub(crate) fn new(seed: u64, users: u32) -> Self {
        let profiles = (1..=i64::from(users))
            .map(|id| Profile::new(seed, id))
            .collect();
        Self { seed, profiles }
    }

    /// Batch states for `first..=last` (in order). The walk starts at the
    /// initial state (batch 0) and takes one step per batch, so the cost is
    /// `users × last` however the batches are split into runs.
    pub(crate) fn states(&self, first: u32, last: u32) -> Vec<BatchState> {
        let mut plan: Vec<Plan> = self.profiles.iter().map(|p| p.initial_plan).collect();
        let mut active: Vec<bool> = self
            .profiles
            .iter()
            .map(|p| {
                key_below(
                    hash_key(&[self.seed, tag::ACTIVE_STEP, p.user_id as u64]),
                    1000,
                ) < 900
            })
            .collect();
        let mut out = Vec::with_capacity(last.saturating_sub(first) as usize + 1);
        for batch in 1..=last {
            let previous_plan = plan.clone();
            let users = self.profiles.iter().zip(plan.iter_mut().zip(&mut active));
            for (profile, (user_plan, user_active)) in users {
                let id = profile.user_id as u64;
                let b = u64::from(batch);
                let r = key_below(hash_key(&[self.seed, tag::PLAN_STEP, id, b]), 1000);
                *user_plan = user_plan.step(r);
                let r = key_below(hash_key(&[self.seed, tag::ACTIVE_STEP, id, b]), 1000);
                // Churn: paying users churn less; inactive users come back sometimes.
                *user_active = match (*user_active, user_plan.is_paying()) {
                    (true, true) => r >= 20,
                    (true, false) => r >= 50,
                    (false, _) => r < 200,
                };
            }
            if batch >= first {
                out.push(BatchState {
                    batch,
                    plan: plan.clone(),
                    previous_plan,
                    active: active.clone(),
                });
            }
        }
        out
    }
}
