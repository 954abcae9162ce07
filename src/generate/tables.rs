//! The four landing tables: their Arrow schemas (exactly as the data-model
//! contract states them) and the row generators for one batch.
//!
//! Each table of each batch draws from its own random stream, keyed by
//! `(seed, table, batch)`, so tables and batches can be built in any order and
//! on any thread. Rows are sorted by their timestamp (ties by user and
//! generation order) before ids are assigned, so files are time-ordered.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::DataFusionError;

use super::population::{BatchState, DEVICES, Plan, Population, Profile};
use super::rng::{Cumulative, Rng, row_uuid};
use super::time::Rhythm;
use crate::error::Result;

/// One of the four landing tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LandingTable {
    /// `users`: one row per user, current state as of the batch.
    Users,
    /// `events`: product activity.
    Events,
    /// `invoices`: billing of paying users.
    Invoices,
    /// `support_tickets`: support requests.
    SupportTickets,
}

impl LandingTable {
    /// All tables, in contract order.
    pub const ALL: [LandingTable; 4] = [
        LandingTable::Users,
        LandingTable::Events,
        LandingTable::Invoices,
        LandingTable::SupportTickets,
    ];

    /// The table's name, which is also its folder under the landing root.
    pub fn name(self) -> &'static str {
        match self {
            LandingTable::Users => "users",
            LandingTable::Events => "events",
            LandingTable::Invoices => "invoices",
            LandingTable::SupportTickets => "support_tickets",
        }
    }

    /// Stream tag of the table (also part of every row id).
    fn tag(self) -> u64 {
        match self {
            LandingTable::Users => 0,
            LandingTable::Events => 1,
            LandingTable::Invoices => 2,
            LandingTable::SupportTickets => 3,
        }
    }

    /// The table's Arrow schema, exactly as the landing contract states it:
    /// ids and `user_id` not null, everything else nullable; timestamps
    /// `Timestamp(Microsecond, None)`; `amount` `Decimal128(12, 2)`.
    pub fn schema(self) -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, None);
        let fields = match self {
            LandingTable::Users => vec![
                Field::new("user_id", DataType::Int64, false),
                Field::new("email", DataType::Utf8, true),
                Field::new("full_name", DataType::Utf8, true),
                Field::new("country", DataType::Utf8, true),
                Field::new("plan", DataType::Utf8, true),
                Field::new("signup_at", ts(), true),
                Field::new("is_active", DataType::Boolean, true),
                Field::new("updated_at", ts(), true),
            ],
            LandingTable::Events => vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("user_id", DataType::Int64, false),
                Field::new("event_type", DataType::Utf8, true),
                Field::new("event_at", ts(), true),
                Field::new("page", DataType::Utf8, true),
                Field::new("feature", DataType::Utf8, true),
                Field::new("device", DataType::Utf8, true),
            ],
            LandingTable::Invoices => vec![
                Field::new("invoice_id", DataType::Utf8, false),
                Field::new("user_id", DataType::Int64, false),
                Field::new("issued_at", ts(), true),
                Field::new("amount", DataType::Decimal128(12, 2), true),
                Field::new("currency", DataType::Utf8, true),
                Field::new("plan", DataType::Utf8, true),
                Field::new("status", DataType::Utf8, true),
            ],
            LandingTable::SupportTickets => vec![
                Field::new("ticket_id", DataType::Utf8, false),
                Field::new("user_id", DataType::Int64, false),
                Field::new("created_at", ts(), true),
                Field::new("resolved_at", ts(), true),
                Field::new("priority", DataType::Utf8, true),
                Field::new("category", DataType::Utf8, true),
                Field::new("status", DataType::Utf8, true),
                Field::new("satisfaction_score", DataType::Int32, true),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// Rows per table in one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchSizes {
    /// Users (all of them, every batch): ids `1..=users`.
    pub users: u32,
    /// Events per batch.
    pub events: u32,
    /// Invoices per batch (fewer when no user is on a paid plan).
    pub invoices: u32,
    /// Support tickets per batch.
    pub tickets: u32,
}

impl Default for BatchSizes {
    /// The contract's defaults: 2,000 users, 50,000 events, 5,000 invoices, 1,500 tickets.
    fn default() -> Self {
        Self {
            users: 2_000,
            events: 50_000,
            invoices: 5_000,
            tickets: 1_500,
        }
    }
}

/// Everything a table generator needs for one batch.
pub(crate) struct BatchContext<'a> {
    pub(crate) seed: u64,
    pub(crate) sizes: BatchSizes,
    pub(crate) population: &'a Population,
    pub(crate) state: &'a BatchState,
}

impl BatchContext<'_> {
    fn rng(&self, table: LandingTable) -> Rng {
        Rng::keyed(&[self.seed, 0x7ab1e, table.tag(), u64::from(self.state.batch)])
    }

    fn ids(&self, table: LandingTable, n: usize) -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(n, n * 36);
        let mut buf = [0u8; 36];
        for row in 0..n as u64 {
            let id = row_uuid(self.seed, table.tag(), u64::from(self.state.batch), row);
            builder.append_value(id.hyphenated().encode_lower(&mut buf));
        }
        Arc::new(builder.finish())
    }

    /// Build one table of this batch.
    pub(crate) fn build(&self, table: LandingTable) -> Result<RecordBatch> {
        let columns = match table {
            LandingTable::Users => self.users(),
            LandingTable::Events => self.events(),
            LandingTable::Invoices => self.invoices()?,
            LandingTable::SupportTickets => self.tickets(),
        };
        RecordBatch::try_new(table.schema(), columns).map_err(|e| DataFusionError::from(e).into())
    }

    fn users(&self) -> Vec<ArrayRef> {
        let profiles = &self.population.profiles;
        let state = self.state;
        let as_of = Rhythm::new(state.batch).end();
        let n = profiles.len();
        vec![
            Arc::new(Int64Array::from_iter_values(
                profiles.iter().map(|p| p.user_id),
            )),
            Arc::new(StringArray::from_iter_values(
                profiles.iter().map(|p| &p.email),
            )),
            Arc::new(StringArray::from_iter_values(
                profiles.iter().map(|p| &p.full_name),
            )),
            Arc::new(StringArray::from_iter_values(
                profiles.iter().map(|p| p.country),
            )),
            Arc::new(StringArray::from_iter_values(
                state.plan.iter().map(|p| p.name()),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                profiles.iter().map(|p| p.signup_at),
            )),
            Arc::new(BooleanArray::from(state.active.clone())),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                std::iter::repeat_n(as_of, n),
            )),
        ]
    }

    fn events(&self) -> Vec<ArrayRef> {
        const ACTIVITY: [(&str, u32); 3] =
            [("page_view", 560), ("login", 150), ("feature_used", 290)];
        const PAGES: [(&str, u32); 10] = [
            ("/dashboard", 300),
            ("/", 110),
            ("/reports", 140),
            ("/projects", 130),
            ("/docs", 90),
            ("/settings", 60),
            ("/pricing", 60),
            ("/integrations", 50),
            ("/billing", 40),
            ("/changelog", 20),
        ];
        const FEATURES: [(&str, u32); 8] = [
            ("report_builder", 250),
            ("dashboard_share", 180),
            ("export_csv", 170),
            ("alerts", 130),
            ("api_key_create", 80),
            ("bulk_import", 70),
            ("custom_fields", 70),
            ("sso_login", 50),
        ];

        struct Event {
            at: i64,
            user: usize,
            user_id: i64,
            seq: u32,
            kind: &'static str,
            page: Option<&'static str>,
            feature: Option<&'static str>,
            device: &'static str,
        }

        let total = self.sizes.events as usize;
        let profiles = &self.population.profiles;
        let state = self.state;
        let rhythm = Rhythm::new(state.batch);
        let mut rng = self.rng(LandingTable::Events);
        let mut events: Vec<Event> = Vec::with_capacity(total);
        let device_of = |rng: &mut Rng, profile: &Profile| {
            if rng.chance(800) {
                profile.device
            } else {
                *rng.pick(&DEVICES)
            }
        };

        // Lifecycle events first: sign-ups inside the window, plan changes.
        let plans = state.previous_plan.iter().zip(&state.plan);
        for (i, (p, (&before, &now))) in profiles.iter().zip(plans).enumerate() {
            if events.len() >= total {
                break;
            }
            if (rhythm.start()..rhythm.end()).contains(&p.signup_at) {
                let device = device_of(&mut rng, p);
                events.push(Event {
                    at: p.signup_at,
                    user: i,
                    user_id: p.user_id,
                    seq: events.len() as u32,
                    kind: "signup",
                    page: None,
                    feature: None,
                    device,
                });
            }
            if before != now && events.len() < total {
                let at = rhythm.sample_after(&mut rng, p.utc_offset_hours, p.signup_at);
                let device = device_of(&mut rng, p);
                events.push(Event {
                    at,
                    user: i,
                    user_id: p.user_id,
                    seq: events.len() as u32,
                    kind: if now > before { "upgrade" } else { "downgrade" },
                    page: None,
                    feature: None,
                    device,
                });
            }
        }

        // Activity: skewed to power users; paying users are busier, inactive
        // users are rarely seen.
        let users = profiles.iter().zip(&state.plan).zip(&state.active);
        let weights = Cumulative::new(users.map(|((p, plan), &active)| {
            let plan_factor = match plan {
                Plan::Free => 2,
                Plan::Starter => 3,
                Plan::Pro => 4,
                Plan::Enterprise => 5,
            };
            let w = p.activity * plan_factor;
            if active { w } else { w / 20 }
        }));
        let activity_weights = ACTIVITY.map(|(_, w)| w);
        let page_weights = PAGES.map(|(_, w)| w);
        let feature_weights = FEATURES.map(|(_, w)| w);
        while events.len() < total {
            let Some((user, p)) = weights
                .sample(&mut rng)
                .and_then(|user| Some((user, profiles.get(user)?)))
            else {
                break;
            };
            let (kind, _) = *rng.choose(&ACTIVITY, &activity_weights);
            let (page, feature) = match kind {
                "page_view" => (Some(rng.choose(&PAGES, &page_weights).0), None),
                "feature_used" => (None, Some(rng.choose(&FEATURES, &feature_weights).0)),
                _ => (None, None),
            };
            let at = rhythm.sample_after(&mut rng, p.utc_offset_hours, p.signup_at);
            let device = device_of(&mut rng, p);
            events.push(Event {
                at,
                user,
                user_id: p.user_id,
                seq: events.len() as u32,
                kind,
                page,
                feature,
                device,
            });
        }

        events.sort_unstable_by_key(|e| (e.at, e.user, e.seq));
        vec![
            self.ids(LandingTable::Events, events.len()),
            Arc::new(Int64Array::from_iter_values(
                events.iter().map(|e| e.user_id),
            )),
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.kind))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                events.iter().map(|e| e.at),
            )),
            Arc::new(events.iter().map(|e| e.page).collect::<StringArray>()),
            Arc::new(events.iter().map(|e| e.feature).collect::<StringArray>()),
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| e.device),
            )),
        ]
    }

    fn invoices(&self) -> Result<Vec<ArrayRef>> {
        const STATUS: [(&str, u32); 4] =
            [("paid", 870), ("open", 70), ("void", 35), ("refunded", 25)];

        struct Invoice {
            at: i64,
            user: usize,
            user_id: i64,
            seq: u32,
            cents: i128,
            plan: Plan,
            status: &'static str,
        }

        let profiles = &self.population.profiles;
        let state = self.state;
        let rhythm = Rhythm::new(state.batch);
        let mut rng = self.rng(LandingTable::Invoices);
        // Paying users only; bigger plans get more invoices (seats, add-ons).
        let weights = Cumulative::new(state.plan.iter().map(|plan| match plan {
            Plan::Free => 0,
            Plan::Starter => 2,
            Plan::Pro => 3,
            Plan::Enterprise => 6,
        }));
        let status_weights = STATUS.map(|(_, w)| w);
        let mut invoices = Vec::with_capacity(self.sizes.invoices as usize);
        for seq in 0..self.sizes.invoices {
            let Some((user, p, &plan)) = weights
                .sample(&mut rng)
                .and_then(|user| Some((user, profiles.get(user)?, state.plan.get(user)?)))
            else {
                break;
            };
            // List price ±10% (proration, taxes, add-ons), in cents.
            let cents = plan.price_cents() * i128::from(900 + rng.below(201)) / 1000;
            invoices.push(Invoice {
                at: rhythm.uniform_after(&mut rng, p.signup_at),
                user,
                user_id: p.user_id,
                seq,
                cents,
                plan,
                status: rng.choose(&STATUS, &status_weights).0,
            });
        }
        invoices.sort_unstable_by_key(|v| (v.at, v.user, v.seq));
        let amounts = Decimal128Array::from_iter_values(invoices.iter().map(|v| v.cents))
            .with_precision_and_scale(12, 2)
            .map_err(DataFusionError::from)?;
        Ok(vec![
            self.ids(LandingTable::Invoices, invoices.len()),
            Arc::new(Int64Array::from_iter_values(
                invoices.iter().map(|v| v.user_id),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                invoices.iter().map(|v| v.at),
            )),
            Arc::new(amounts),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                "USD",
                invoices.len(),
            ))),
            Arc::new(StringArray::from_iter_values(
                invoices.iter().map(|v| v.plan.name()),
            )),
            Arc::new(StringArray::from_iter_values(
                invoices.iter().map(|v| v.status),
            )),
        ])
    }

    fn tickets(&self) -> Vec<ArrayRef> {
        /// Priority, its weight, and its resolution-time bucket weights (see `DURATION`).
        const PRIORITY: [(&str, u32, [u32; 5]); 4] = [
            ("low", 350, [5, 15, 35, 30, 15]),
            ("medium", 400, [10, 25, 35, 20, 10]),
            ("high", 180, [25, 35, 25, 10, 5]),
            ("urgent", 70, [45, 35, 15, 4, 1]),
        ];
        const CATEGORY: [(&str, u32); 5] = [
            ("billing", 200),
            ("bug", 300),
            ("how_to", 250),
            ("account", 150),
            ("feature_request", 100),
        ];
        /// Status before the as-of check, and its weight.
        const STATUS: [(&str, u32); 4] = [
            ("open", 80),
            ("pending", 100),
            ("resolved", 550),
            ("closed", 270),
        ];
        /// Resolution time buckets in minutes `[from, to)`, with the weights of
        /// satisfaction 1..=5 for a resolution that took that long.
        const DURATION: [(u64, u64, [u32; 5]); 5] = [
            (5, 60, [2, 3, 10, 35, 50]),
            (60, 240, [3, 5, 12, 40, 40]),
            (240, 1_440, [5, 7, 18, 40, 30]),
            (1_440, 4_320, [10, 12, 25, 33, 20]),
            (4_320, 14_400, [18, 20, 27, 22, 13]),
        ];

        struct Ticket {
            at: i64,
            user: usize,
            user_id: i64,
            seq: u32,
            resolved_at: Option<i64>,
            priority: &'static str,
            category: &'static str,
            status: &'static str,
            satisfaction: Option<i32>,
        }

        let profiles = &self.population.profiles;
        let state = self.state;
        let rhythm = Rhythm::new(state.batch);
        let mut rng = self.rng(LandingTable::SupportTickets);
        // Busier users and paying customers open more tickets.
        let weights = Cumulative::new(profiles.iter().zip(&state.plan).map(|(p, plan)| {
            let plan_factor = if plan.is_paying() { 3 } else { 2 };
            p.activity.isqrt() * plan_factor
        }));
        let priority_weights = PRIORITY.map(|(_, w, _)| w);
        let category_weights = CATEGORY.map(|(_, w)| w);
        let status_weights = STATUS.map(|(_, w)| w);
        let mut tickets = Vec::with_capacity(self.sizes.tickets as usize);
        for seq in 0..self.sizes.tickets {
            let Some((user, p)) = weights
                .sample(&mut rng)
                .and_then(|user| Some((user, profiles.get(user)?)))
            else {
                break;
            };
            let at = rhythm.sample_after(&mut rng, p.utc_offset_hours, p.signup_at);
            let (priority, _, duration_weights) = *rng.choose(&PRIORITY, &priority_weights);
            let (category, _) = *rng.choose(&CATEGORY, &category_weights);
            let (mut status, _) = *rng.choose(&STATUS, &status_weights);
            let mut resolved_at = None;
            let mut satisfaction = None;
            if matches!(status, "resolved" | "closed") {
                let (from, to, satisfaction_weights) = *rng.choose(&DURATION, &duration_weights);
                let minutes = from + rng.below(to - from);
                let seconds = minutes * 60 + rng.below(60);
                let done = at + seconds as i64 * 1_000_000 + rng.below(1_000_000) as i64;
                if done < rhythm.end() {
                    resolved_at = Some(done);
                    if rng.chance(600) {
                        satisfaction = Some(rng.weighted(&satisfaction_weights) as i32 + 1);
                    }
                } else {
                    // Not resolved by the batch's as-of time: still in the queue.
                    status = if rng.chance(500) { "pending" } else { "open" };
                }
            }
            tickets.push(Ticket {
                at,
                user,
                user_id: p.user_id,
                seq,
                resolved_at,
                priority,
                category,
                status,
                satisfaction,
            });
        }
        tickets.sort_unstable_by_key(|t| (t.at, t.user, t.seq));
        vec![
            self.ids(LandingTable::SupportTickets, tickets.len()),
            Arc::new(Int64Array::from_iter_values(
                tickets.iter().map(|t| t.user_id),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                tickets.iter().map(|t| t.at),
            )),
            Arc::new(
                tickets
                    .iter()
                    .map(|t| t.resolved_at)
                    .collect::<TimestampMicrosecondArray>(),
            ),
            Arc::new(StringArray::from_iter_values(
                tickets.iter().map(|t| t.priority),
            )),
            Arc::new(StringArray::from_iter_values(
                tickets.iter().map(|t| t.category),
            )),
            Arc::new(StringArray::from_iter_values(
                tickets.iter().map(|t| t.status),
            )),
            Arc::new(
                tickets
                    .iter()
                    .map(|t| t.satisfaction)
                    .collect::<Int32Array>(),
            ),
        ]
    }
}
