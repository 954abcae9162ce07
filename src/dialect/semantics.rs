//! DuckDB's arithmetic where DataFusion's differs, as an [`ExprPlanner`] that
//! DataFusion's SQL planner consults for every binary operator.
//!
//! | SQL | DuckDB | DataFusion alone | lakeq |
//! |---|---|---|---|
//! | `7 / 2` (integers or decimals) | `3.5` (DOUBLE) | `3` | `3.5` |
//! | `7 // 2`, `-7 // 2` | `3`, `-3` (truncating) | `3`, `-3` | same |
//! | `7.5 // 2` (a float operand) | `3.75` | `3` | `3.75` |
//! | `1 // 0`, `5 % 0` (integers) | NULL | error | NULL |
//! | `DATE '2024-01-01' + INTERVAL 1 HOUR` | `2024-01-01 01:00:00` (TIMESTAMP) | `2024-01-01` (DATE) | TIMESTAMP |
//! | `CAST(2.5 AS INT)`, `CAST(-2.5 AS INT)` | `3`, `-3` (rounds half away from zero) | `2`, `-2` | `3`, `-3` |
//! | `1.5` (a literal) | DECIMAL(2,1) | DOUBLE | DECIMAL (`sql_parser.parse_float_as_decimal`) |

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, Result as DFResult};
use datafusion::functions::expr_fn::nullif;
use datafusion::logical_expr::expr::BinaryExpr;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, Operator, cast, lit};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// DuckDB's `s[1]` on an unnamed struct (`list_zip`'s tuples, whose fields are
/// named `1`, `2`, ...): the field at that position. Consulted before
/// DataFusion's own planner, which reads every `x[i]` as a list element.
#[derive(Debug, Default)]
pub struct DuckDbStructIndex;

impl ExprPlanner for DuckDbStructIndex {
    fn plan_field_access(
        &self,
        expr: datafusion::logical_expr::planner::RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> DFResult<PlannerResult<datafusion::logical_expr::planner::RawFieldAccessExpr>> {
        use datafusion::common::ScalarValue;
        use datafusion::logical_expr::GetFieldAccess;
        let GetFieldAccess::ListIndex { key } = &expr.field_access else {
            return Ok(PlannerResult::Original(expr));
        };
        let Ok(DataType::Struct(fields)) = expr.expr.get_type(schema) else {
            return Ok(PlannerResult::Original(expr));
        };
        let index = match key.as_ref() {
            Expr::Literal(v, _) => match v {
                ScalarValue::Int64(Some(i)) => Some(*i),
                ScalarValue::Int32(Some(i)) => Some(i64::from(*i)),
                _ => None,
            },
            _ => None,
        };
        let unnamed = fields
            .iter()
            .enumerate()
            .all(|(i, f)| f.name() == &(i + 1).to_string());
        match index {
            Some(i) if unnamed && i >= 1 && usize::try_from(i).is_ok_and(|i| i <= fields.len()) => {
                let datafusion::logical_expr::planner::RawFieldAccessExpr { expr, .. } = expr;
                Ok(PlannerResult::Planned(
                    datafusion::functions::core::expr_fn::get_field(expr, i.to_string()),
                ))
            }
            _ => datafusion::common::plan_err!(
                "an integer index into a struct reads a field of an unnamed struct (such as \
                 list_zip's) by its position, 1 to {}; use a field name for a named struct",
                fields.len()
            ),
        }
    }
}

/// DuckDB's `/`, `//` and `%`.
#[derive(Debug, Default)]
pub struct DuckDbArithmetic;

fn is_exact_numeric(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        )
}

fn is_numeric(t: &DataType) -> bool {
    is_exact_numeric(t) || t.is_floating() || matches!(t, DataType::Null)
}

fn binary(left: Expr, op: Operator, right: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
}

/// `x` with a zero divisor turned into NULL (DuckDB's integer `//` and `%`).
fn nonzero(divisor: Expr, t: &DataType) -> Expr {
    match datafusion::common::ScalarValue::new_zero(t) {
        Ok(zero) => nullif(divisor, lit(zero)),
        Err(_) => divisor,
    }
}

/// `'infinity'` / `'-infinity'` as a value of a timestamp or date type, as DuckDB
/// reads the text (Arrow's parser refuses it): the largest value and its negation.
fn infinity_of(text: &Expr, t: &DataType) -> Option<Expr> {
    use datafusion::arrow::datatypes::TimeUnit;
    use datafusion::common::ScalarValue;
    let Expr::Literal(
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)),
        _,
    ) = text
    else {
        return None;
    };
    let negative = match s.trim().to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => false,
        "-infinity" => true,
        _ => return None,
    };
    let big = if negative { -i64::MAX } else { i64::MAX };
    let value = match t {
        DataType::Timestamp(unit, tz) => {
            let tz = tz.clone();
            match unit {
                TimeUnit::Second => ScalarValue::TimestampSecond(Some(big), tz),
                TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(big), tz),
                TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(big), tz),
                TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(big), tz),
            }
        }
        DataType::Date32 => ScalarValue::Date32(Some(if negative { -i32::MAX } else { i32::MAX })),
        _ => return None,
    };
    Some(lit(value))
}

impl ExprPlanner for DuckDbArithmetic {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DFResult<PlannerResult<RawBinaryExpr>> {
        if matches!(
            expr.op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
        ) && let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema))
        {
            if let Some(right) = infinity_of(&expr.right, &lt) {
                return Ok(PlannerResult::Original(RawBinaryExpr { right, ..expr }));
            }
            if let Some(left) = infinity_of(&expr.left, &rt) {
                return Ok(PlannerResult::Original(RawBinaryExpr { left, ..expr }));
            }
        }
        if matches!(expr.op, BinaryOperator::Plus | BinaryOperator::Minus)
            && let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema))
        {
            // DuckDB: DATE ± INTERVAL is a TIMESTAMP (DataFusion keeps a DATE and drops
            // the time of day).
            let timestamp =
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None);
            let is_date = |t: &DataType| matches!(t, DataType::Date32 | DataType::Date64);
            let is_interval = |t: &DataType| matches!(t, DataType::Interval(_));
            if is_date(&lt) && is_interval(&rt) {
                let RawBinaryExpr { op, left, right } = expr;
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    op,
                    left: cast(left, timestamp),
                    right,
                }));
            }
            // DATE ± integer days (DataFusion goes through a nanosecond interval,
            // which overflows past 106,751 days).
            let date_int = is_date(&lt) && rt.is_integer();
            let int_date =
                lt.is_integer() && is_date(&rt) && matches!(expr.op, BinaryOperator::Plus);
            if date_int || int_date {
                let RawBinaryExpr { op, left, right } = expr;
                let (date, days) = if date_int {
                    (left, right)
                } else {
                    (right, left)
                };
                let df_op = if matches!(op, BinaryOperator::Minus) {
                    Operator::Minus
                } else {
                    Operator::Plus
                };
                return Ok(PlannerResult::Planned(cast(
                    binary(
                        cast(cast(date, DataType::Date32), DataType::Int64),
                        df_op,
                        cast(days, DataType::Int64),
                    ),
                    DataType::Date32,
                )));
            }
            if is_interval(&lt) && is_date(&rt) && matches!(expr.op, BinaryOperator::Plus) {
                let RawBinaryExpr { op, left, right } = expr;
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    op,
                    left,
                    right: cast(right, timestamp),
                }));
            }
        }
        if let Some(op) = checked_op(&expr.op)
            && let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema))
            && lt.is_integer()
            && rt.is_integer()
        {
            // DuckDB raises an error on integer overflow; Arrow's kernels DataFusion
            // uses wrap around. The checked kernels in a UDF keep DuckDB's answer (an
            // error) instead of a wrong number.
            let df_op = match op {
                CheckedOp::Add => Operator::Plus,
                CheckedOp::Sub => Operator::Minus,
                CheckedOp::Mul => Operator::Multiply,
            };
            let (lc, rc) = datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer::new(
                &lt, &df_op, &rt,
            )
            .get_input_types()?;
            if !(lc.is_integer() && lc == rc) {
                // Mixed signedness widens to a DECIMAL, whose arithmetic checks itself.
                return Ok(PlannerResult::Original(expr));
            }
            let RawBinaryExpr { left, right, .. } = expr;
            let udf = datafusion::logical_expr::ScalarUDF::from(CheckedArithmetic::new(op));
            return Ok(PlannerResult::Planned(
                udf.call(vec![cast(left, lc), cast(right, rc)]),
            ));
        }
        let divide = matches!(expr.op, BinaryOperator::Divide);
        let int_divide = matches!(
            expr.op,
            BinaryOperator::DuckIntegerDivide | BinaryOperator::MyIntegerDivide
        );
        let modulo = matches!(expr.op, BinaryOperator::Modulo);
        if !(divide || int_divide || modulo) {
            return Ok(PlannerResult::Original(expr));
        }
        let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        if !is_numeric(&lt) || !is_numeric(&rt) {
            return Ok(PlannerResult::Original(expr));
        }
        let both_exact = is_exact_numeric(&lt) && is_exact_numeric(&rt);
        let RawBinaryExpr { op, left, right } = expr;
        if divide || (int_divide && !(lt.is_integer() && rt.is_integer())) {
            // DuckDB's `/` is floating-point division, and so is `//` unless both
            // operands are integers.
            if both_exact || int_divide {
                return Ok(PlannerResult::Planned(binary(
                    cast(left, DataType::Float64),
                    Operator::Divide,
                    cast(right, DataType::Float64),
                )));
            }
            return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
        }
        if int_divide {
            return Ok(PlannerResult::Planned(binary(
                left,
                Operator::Divide,
                nonzero(right, &rt),
            )));
        }
        // `%`: a zero divisor gives NULL for exact types (floats give NaN in both).
        if both_exact {
            return Ok(PlannerResult::Planned(binary(
                left,
                Operator::Modulo,
                nonzero(right, &rt),
            )));
        }
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

/// An integer operator evaluated with overflow checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CheckedOp {
    Add,
    Sub,
    Mul,
}

fn checked_op(op: &BinaryOperator) -> Option<CheckedOp> {
    match op {
        BinaryOperator::Plus => Some(CheckedOp::Add),
        BinaryOperator::Minus => Some(CheckedOp::Sub),
        BinaryOperator::Multiply => Some(CheckedOp::Mul),
        _ => None,
    }
}

/// The checked integer arithmetic functions the planner puts in place of `+`,
/// `-` and `*` on integers of one type (`lakeq_checked_add`, `_sub`, `_mul`).
/// They are not in a session's function registry (the planner makes them);
/// a process that runs plans made elsewhere (a `lakeq worker`) registers them.
pub fn checked_arithmetic_functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    [CheckedOp::Add, CheckedOp::Sub, CheckedOp::Mul]
        .into_iter()
        .map(|op| datafusion::logical_expr::ScalarUDF::from(CheckedArithmetic::new(op)))
        .collect()
}

/// `a + b`, `a - b`, `a * b` on integers of one type, failing on overflow as
/// DuckDB does ("Overflow in addition of INT64 ..."). Shown as the operator in
/// column names.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedArithmetic {
    op: CheckedOp,
    signature: datafusion::logical_expr::Signature,
}

impl CheckedArithmetic {
    fn new(op: CheckedOp) -> Self {
        Self {
            op,
            signature: datafusion::logical_expr::Signature::any(
                2,
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }

    fn symbol(&self) -> &'static str {
        match self.op {
            CheckedOp::Add => "+",
            CheckedOp::Sub => "-",
            CheckedOp::Mul => "*",
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for CheckedArithmetic {
    fn name(&self) -> &str {
        match self.op {
            CheckedOp::Add => "lakeq_checked_add",
            CheckedOp::Sub => "lakeq_checked_sub",
            CheckedOp::Mul => "lakeq_checked_mul",
        }
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Int64))
    }

    fn schema_name(&self, args: &[Expr]) -> DFResult<String> {
        let [a, b] = args else {
            return Ok(self.name().to_string());
        };
        Ok(format!(
            "{} {} {}",
            a.schema_name(),
            self.symbol(),
            b.schema_name()
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DFResult<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::compute::kernels::numeric;
        use datafusion::logical_expr::ColumnarValue;
        let [a, b] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{} takes two arguments", self.name());
        };
        let scalar = matches!((a, b), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let (la, lb) = (a.to_array(args.number_rows)?, b.to_array(args.number_rows)?);
        let result = match self.op {
            CheckedOp::Add => numeric::add(&la, &lb),
            CheckedOp::Sub => numeric::sub(&la, &lb),
            CheckedOp::Mul => numeric::mul(&la, &lb),
        }
        .map_err(|e| {
            datafusion::error::DataFusionError::Execution(format!(
                "integer overflow in {} ({e}); DuckDB refuses it too — cast to a wider type \
                 (BIGINT, HUGEINT as DECIMAL(38,0)) first",
                self.symbol()
            ))
        })?;
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        })
    }
}

/// `sum` of integers without silent overflow: DuckDB sums integers into a
/// HUGEINT and never wraps; DataFusion's `sum` of BIGINT wraps around. This
/// analyzer rule sums integers as `DECIMAL(38,0)` and casts the total back to
/// the type DataFusion gives it, which fails on overflow (a BIGINT total beyond
/// ±9.2·10¹⁸ is an error, not a wrong number). Window `sum`s are not changed.
#[derive(Debug, Default)]
pub struct CheckedIntegerSums;

impl datafusion::optimizer::AnalyzerRule for CheckedIntegerSums {
    fn name(&self) -> &str {
        "lakeq_checked_integer_sums"
    }

    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &datafusion::config::ConfigOptions,
    ) -> DFResult<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TransformedResult};
        plan.transform_up_with_subqueries(|node| {
            let datafusion::logical_expr::LogicalPlan::Aggregate(agg) = &node else {
                return Ok(Transformed::no(node));
            };
            checked_sums(agg).map(|rewritten| match rewritten {
                Some(plan) => Transformed::yes(plan),
                None => Transformed::no(node),
            })
        })
        .data()
    }
}

/// An aggregate's integer `sum`s rewritten (see [`CheckedIntegerSums`]), with a
/// projection restoring its output schema; `None` when it has none.
fn checked_sums(
    agg: &datafusion::logical_expr::Aggregate,
) -> DFResult<Option<datafusion::logical_expr::LogicalPlan>> {
    use datafusion::logical_expr::expr::AggregateFunction;
    use datafusion::logical_expr::{Aggregate, LogicalPlan, Projection};
    let wide = DataType::Decimal128(38, 0);
    let input_schema = agg.input.schema();
    let mut changed = false;
    let mut aggr_expr = Vec::with_capacity(agg.aggr_expr.len());
    for e in &agg.aggr_expr {
        let (inner, name) = match e {
            Expr::Alias(a) => (a.expr.as_ref(), a.name.clone()),
            other => (other, other.schema_name().to_string()),
        };
        let integer_sum = match inner {
            Expr::AggregateFunction(f) if f.func.name() == "sum" => {
                match f.params.args.as_slice() {
                    [arg] if arg.get_type(input_schema).is_ok_and(|t| t.is_integer()) => {
                        Some((f, arg))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let rewritten = integer_sum.map(|(f, arg)| {
            let mut params = f.params.clone();
            params.args = vec![cast(arg.clone(), wide.clone())];
            Expr::AggregateFunction(AggregateFunction {
                func: std::sync::Arc::clone(&f.func),
                params,
            })
        });
        match rewritten {
            Some(r) => {
                changed = true;
                aggr_expr.push(r.alias(name));
            }
            None => aggr_expr.push(e.clone()),
        }
    }
    if !changed {
        return Ok(None);
    }
    let new_agg = Aggregate::try_new(
        std::sync::Arc::clone(&agg.input),
        agg.group_expr.clone(),
        aggr_expr,
    )?;
    let restored: Vec<Expr> = agg
        .schema
        .iter()
        .zip(new_agg.schema.iter())
        .map(|((qualifier, want), (new_qualifier, got))| {
            let column = Expr::Column(datafusion::common::Column::from((new_qualifier, got)));
            if want.data_type() == got.data_type() {
                column
            } else {
                let e = cast(column, want.data_type().clone());
                match qualifier {
                    Some(q) => e.alias_qualified(Some(q.clone()), want.name()),
                    None => e.alias(want.name()),
                }
            }
        })
        .collect();
    Ok(Some(LogicalPlan::Projection(Projection::try_new(
        restored,
        std::sync::Arc::new(LogicalPlan::Aggregate(new_agg)),
    )?)))
}

/// DuckLake `geometry` columns reach lakeq as WKT text (see
/// `crate::spec::geometry`); DuckDB orders and compares geometries by their
/// binary form, and parses text literals into geometries before comparing.
/// Ordering, comparing or taking `min`/`max` of a geometry column as text would
/// give different answers, so this analyzer rule refuses those plans. Casting
/// the column to VARCHAR (`g::VARCHAR`) orders by the text, as in DuckDB.
#[derive(Debug, Default)]
pub struct GeometryComparisons;

impl datafusion::optimizer::AnalyzerRule for GeometryComparisons {
    fn name(&self) -> &str {
        "lakeq_geometry_comparisons"
    }

    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &datafusion::config::ConfigOptions,
    ) -> DFResult<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::LogicalPlan;
        plan.apply_with_subqueries(|node| {
            let inputs = node.inputs();
            let schema = match inputs.as_slice() {
                [input] => input.schema(),
                _ => node.schema(),
            };
            if let LogicalPlan::Sort(sort) = node {
                for e in &sort.expr {
                    refuse_geometry(&e.expr, schema, "ORDER BY")?;
                }
            }
            node.apply_expressions(|e| {
                e.apply(|inner| {
                    check_geometry_use(inner, schema)?;
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }
}

fn check_geometry_use(e: &Expr, schema: &datafusion::common::DFSchema) -> DFResult<()> {
    use datafusion::logical_expr::Operator;
    match e {
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) =>
        {
            refuse_geometry(&b.left, schema, "comparing")?;
            refuse_geometry(&b.right, schema, "comparing")
        }
        Expr::Between(b) => {
            refuse_geometry(&b.expr, schema, "comparing")?;
            refuse_geometry(&b.low, schema, "comparing")?;
            refuse_geometry(&b.high, schema, "comparing")
        }
        Expr::InList(l) => {
            refuse_geometry(&l.expr, schema, "comparing")?;
            l.list
                .iter()
                .try_for_each(|x| refuse_geometry(x, schema, "comparing"))
        }
        Expr::AggregateFunction(f) => {
            if matches!(f.func.name(), "min" | "max" | "arg_min" | "arg_max") {
                for a in &f.params.args {
                    refuse_geometry(a, schema, f.func.name())?;
                }
            }
            for s in &f.params.order_by {
                refuse_geometry(&s.expr, schema, "ORDER BY")?;
            }
            Ok(())
        }
        Expr::WindowFunction(w) => {
            for s in &w.params.order_by {
                refuse_geometry(&s.expr, schema, "ORDER BY")?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An error when `e` is a geometry column (possibly aliased).
fn refuse_geometry(e: &Expr, schema: &datafusion::common::DFSchema, what: &str) -> DFResult<()> {
    let column = match e {
        Expr::Column(c) => c,
        Expr::Alias(a) => return refuse_geometry(&a.expr, schema, what),
        _ => return Ok(()),
    };
    let Ok(field) = datafusion::common::ExprSchema::field_from_column(schema, column) else {
        return Ok(());
    };
    if crate::catalog::is_geometry(field) {
        return Err(datafusion::error::DataFusionError::NotImplemented(format!(
            "{what} GEOMETRY column '{}': lakeq reads geometries as WKT text, which orders and \
             compares differently from DuckDB's geometry values; cast it to VARCHAR \
             ({}::VARCHAR) to work on the text",
            column.name, column.name
        )));
    }
    Ok(())
}
