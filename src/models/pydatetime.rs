//! dbt's `modules.datetime`: the parts of Python's `datetime` module dbt
//! projects use in templates, on chrono.
//!
//! `modules.datetime.datetime` and `modules.datetime.date` construct values
//! (`datetime(2024, 1, 31, 12)`, `date(2024, 1, 31)`) and have `now()`,
//! `utcnow()`, `today()`, `strptime(text, format)` and `fromisoformat(text)`;
//! a value has `year` ... `microsecond`, `strftime(format)`, `isoformat()`,
//! `date()`, `weekday()`, `isoweekday()` and `replace(day=1, ...)`, and prints
//! as Python's `str()` does. `timedelta` and date arithmetic (`d - timedelta(days=1)`)
//! are not supported: use SQL date arithmetic (`dbt.dateadd`) instead.

use std::fmt;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value};
use minijinja::{ErrorKind, State};

fn error(message: String) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, message)
}

/// A Python `datetime` or `date` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PyDateTime {
    value: NaiveDateTime,
    /// A `date` (no time of day).
    date_only: bool,
}

/// Python's `%f` is microseconds; chrono's is nanoseconds.
fn strftime(value: &NaiveDateTime, format: &str) -> Result<String, minijinja::Error> {
    use std::fmt::Write;
    let format = format.replace("%f", "%6f");
    let items: Vec<Item<'_>> = StrftimeItems::new(&format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(error(format!(
            "modules.datetime: bad strftime format '{format}'"
        )));
    }
    let mut out = String::new();
    write!(out, "{}", value.format_with_items(items.into_iter()))
        .map_err(|_| error(format!("modules.datetime: cannot format with '{format}'")))?;
    Ok(out)
}

impl PyDateTime {
    fn value_of(value: NaiveDateTime, date_only: bool) -> Value {
        Value::from_object(Self { value, date_only })
    }

    fn micros(&self) -> u32 {
        self.value.nanosecond() / 1000
    }

    fn iso(&self, sep: &str) -> String {
        let mut out = self.value.format("%Y-%m-%d").to_string();
        if !self.date_only {
            out.push_str(sep);
            out.push_str(&self.value.format("%H:%M:%S").to_string());
            if self.micros() != 0 {
                out.push_str(&format!(".{:06}", self.micros()));
            }
        }
        out
    }
}

impl fmt::Display for PyDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(" "))
    }
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = &self.value;
        Some(Value::from(match key.as_str()? {
            "year" => i64::from(v.year()),
            "month" => i64::from(v.month()),
            "day" => i64::from(v.day()),
            "hour" if !self.date_only => i64::from(v.hour()),
            "minute" if !self.date_only => i64::from(v.minute()),
            "second" if !self.date_only => i64::from(v.second()),
            "microsecond" if !self.date_only => i64::from(self.micros()),
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let v = self.value;
        match (method, args) {
            ("strftime", [format]) => Ok(Value::from(strftime(&v, &format.to_string())?)),
            ("isoformat", []) => Ok(Value::from(self.iso("T"))),
            ("date", []) => Ok(Self::value_of(v.date().and_time(NaiveTime::MIN), true)),
            ("weekday", []) => Ok(Value::from(v.weekday().num_days_from_monday())),
            ("isoweekday", []) => Ok(Value::from(v.weekday().number_from_monday())),
            ("replace", [kwargs]) => {
                let kwargs = Kwargs::try_from(kwargs.clone())?;
                let part = |k: &str, now: u32| -> Result<u32, minijinja::Error> {
                    Ok(kwargs.get::<Option<u32>>(k)?.unwrap_or(now))
                };
                let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(v.year());
                let date =
                    NaiveDate::from_ymd_opt(year, part("month", v.month())?, part("day", v.day())?);
                let time = NaiveTime::from_hms_micro_opt(
                    part("hour", v.hour())?,
                    part("minute", v.minute())?,
                    part("second", v.second())?,
                    part("microsecond", self.micros())?,
                );
                kwargs.assert_all_used()?;
                match (date, time) {
                    (Some(d), Some(t)) => Ok(Self::value_of(d.and_time(t), self.date_only)),
                    _ => Err(error(
                        "modules.datetime: replace() gives no valid date".into(),
                    )),
                }
            }
            _ => Err(error(format!(
                "modules.datetime: lakeq does not support {method}() with {} arguments on a {} \
                 (strftime, isoformat, date, weekday, isoweekday, replace)",
                args.len(),
                if self.date_only { "date" } else { "datetime" }
            ))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// `modules.datetime.datetime` or `modules.datetime.date`: a constructor with class methods.
#[derive(Debug, Clone, Copy)]
struct PyClass {
    date_only: bool,
}

impl PyClass {
    fn name(&self) -> &'static str {
        if self.date_only { "date" } else { "datetime" }
    }

    fn parse(&self, text: &str, format: Option<&str>) -> Result<Value, minijinja::Error> {
        let bad = || {
            error(format!(
                "modules.datetime.{}: cannot read '{text}'{}",
                self.name(),
                format.map(|f| format!(" as '{f}'")).unwrap_or_default()
            ))
        };
        let value = match format {
            Some(f) => {
                let f = f.replace("%f", "%6f");
                NaiveDateTime::parse_from_str(text, &f)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(text, &f).map(|d| d.and_time(NaiveTime::MIN))
                    })
                    .map_err(|_| bad())?
            }
            None => NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                .or_else(|_| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
                })
                .map_err(|_| bad())?,
        };
        Ok(PyDateTime::value_of(value, self.date_only))
    }
}

impl fmt::Display for PyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class 'datetime.{}'>", self.name())
    }
}

impl Object for PyClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let mut parts = Vec::new();
        for a in args {
            parts.push(u32::try_from(a.clone()).map_err(|_| {
                error(format!(
                    "modules.datetime.{}(): arguments are numbers",
                    self.name()
                ))
            })?);
        }
        let at = |i: usize, default: u32| parts.get(i).copied().unwrap_or(default);
        let max = if self.date_only { 3 } else { 7 };
        if parts.len() < 3 || parts.len() > max {
            return Err(error(format!(
                "modules.datetime.{}() takes year, month, day{}",
                self.name(),
                if self.date_only {
                    ""
                } else {
                    " [, hour, minute, second, microsecond]"
                }
            )));
        }
        let date = i32::try_from(at(0, 1))
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, at(1, 1), at(2, 1)));
        let time = NaiveTime::from_hms_micro_opt(at(3, 0), at(4, 0), at(5, 0), at(6, 0));
        match (date, time) {
            (Some(d), Some(t)) => Ok(PyDateTime::value_of(d.and_time(t), self.date_only)),
            _ => Err(error(format!(
                "modules.datetime.{}(): not a valid date",
                self.name()
            ))),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        let now = chrono::Local::now().naive_local();
        match (method, args) {
            ("now", []) => Ok(PyDateTime::value_of(now, false)),
            ("utcnow", []) => Ok(PyDateTime::value_of(chrono::Utc::now().naive_utc(), false)),
            ("today", []) => Ok(PyDateTime::value_of(
                if self.date_only {
                    now.date().and_time(NaiveTime::MIN)
                } else {
                    now
                },
                self.date_only,
            )),
            ("strptime", [text, format]) if !self.date_only => {
                self.parse(&text.to_string(), Some(&format.to_string()))
            }
            ("fromisoformat", [text]) => self.parse(&text.to_string(), None),
            _ => Err(error(format!(
                "modules.datetime.{}.{method}() with {} arguments is not supported by lakeq \
                 (now, utcnow, today, strptime, fromisoformat)",
                self.name(),
                args.len()
            ))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// The `modules.datetime` value.
pub fn module() -> Value {
    Value::from(std::collections::BTreeMap::from([
        ("datetime", Value::from_object(PyClass { date_only: false })),
        ("date", Value::from_object(PyClass { date_only: true })),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> Result<String, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.add_global("datetime", module());
        env.render_str(template, ())
    }

    #[test]
    fn values_print_and_format_as_in_python() {
        assert_eq!(
            render(
                "{% set d = datetime.datetime(2024, 3, 9, 7, 5, 0, 250) %}{{ d }}|{{ d.isoformat() }}|\
                 {{ d.strftime('%Y%m%d %H:%M:%S.%f') }}|{{ d.date() }}|{{ d.year }}|{{ d.weekday() }}|\
                 {{ d.replace(day=1, hour=0) }}"
            )
            .expect("render"),
            "2024-03-09 07:05:00.000250|2024-03-09T07:05:00.000250|20240309 07:05:00.000250|\
             2024-03-09|2024|5|2024-03-01 00:05:00.000250"
        );
        assert_eq!(
            render(
                "{{ datetime.date(2024, 2, 29) }} {{ datetime.datetime.strptime('2024-01-31', '%Y-%m-%d') }} \
                 {{ datetime.date.fromisoformat('2024-01-31').isoformat() }}"
            )
            .expect("render"),
            "2024-02-29 2024-01-31 00:00:00 2024-01-31"
        );
        let today = render("{{ datetime.date.today() }}").expect("today");
        assert_eq!(today.len(), 10, "{today}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for t in [
            "{{ datetime.date(2024, 2, 30) }}",
            "{{ datetime.datetime(2024) }}",
            "{{ datetime.datetime.strptime('x', '%Y') }}",
            "{{ datetime.datetime(2024, 1, 1).strftime('%Q %') }}",
            "{{ datetime.datetime.now().timestamp() }}",
            "{{ datetime.date(2024, 1, 1).replace(day=40) }}",
        ] {
            assert!(render(t).is_err(), "{t}");
        }
    }
}
