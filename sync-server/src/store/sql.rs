//! The seam between the store's logic and a database engine: a statement
//! with `?` placeholders, arguments as [`Value`]s, rows back as values.
//!
//! Everything above this seam (documents, projections and rollups,
//! accounts, kiosks, reports) is written once, in SQL that SQLite and
//! PostgreSQL both accept (`ON CONFLICT … DO UPDATE`, `RETURNING`,
//! `IS NOT DISTINCT FROM`, `CAST(… AS BIGINT)`), so both engines give the
//! same figures by construction; where the dialects really differ the code
//! asks [`Sql::dialect`]. An engine implements three methods and its DDL.
//!
//! Conventions the portable SQL relies on:
//! - integers are 64-bit everywhere (PostgreSQL columns are `BIGINT`, flags
//!   included: `conflict = 1` reads the same on both);
//! - aggregates that PostgreSQL widens (`sum` → `numeric`) are cast back
//!   with `CAST(… AS BIGINT)`;
//! - months and days are computed in Rust where the store writes them;
//!   the one report that groups by calendar month on the fly asks the
//!   dialect for its expression (`reports::month_expr`).

use super::StoreError;

/// Which SQL the connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One argument or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u8> for Value {
    fn from(v: u8) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u64> for Value {
    /// Saturates: no count or cursor of ours comes near `i64::MAX`.
    fn from(v: u64) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl From<&Vec<u8>> for Value {
    fn from(v: &Vec<u8>) -> Value {
        Value::Blob(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// `args![a, b, c]`: a statement's arguments, each converted with `Value::from`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::store::sql::Value] };
    ($($a:expr),+ $(,)?) => { &[$($crate::store::sql::Value::from($a)),+] as &[$crate::store::sql::Value] };
}

/// A result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as `T`; a missing column or a value of another type is
    /// corruption (the schema promised it).
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt { what: "query result".into(), reason: format!("no column {i}") })?;
        T::from_value(v).ok_or_else(|| StoreError::Corrupt {
            what: "query result".into(),
            reason: format!("column {i} is {}, not {}", v.kind(), std::any::type_name::<T>()),
        })
    }
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// Conversion of a column value into a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(r) => Some(*r),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A connection or transaction of an engine. Reads run on a read-only
/// connection (a write there fails), writes inside one transaction that
/// [`super::Store::write`] commits or rolls back.
pub trait Sql {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError>;

    /// Runs several statements without arguments (migrations' DDL).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Runs a query and returns every row.
    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError>;

    /// Runs a query and hands each row to `each` as it arrives, without
    /// holding the result in memory (a city's year of journeys).
    fn query_each(
        &mut self,
        sql: &str,
        args: &[Value],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }
}

/// The first column of the first row, if there is a row.
pub fn scalar<T: FromValue>(db: &mut dyn Sql, sql: &str, args: &[Value]) -> Result<Option<T>, StoreError> {
    db.query_opt(sql, args)?.map(|r| r.get(0)).transpose()
}

/// Rows gathered into multi-row `INSERT`s, one statement per few hundred
/// rows: one round trip each on PostgreSQL instead of one per row (a
/// rebuild of a city's rollups writes millions). `head` ends in `VALUES `,
/// `row` is one row's `(?, …)`; call [`RowBatch::flush`] at the end.
pub struct RowBatch {
    head: &'static str,
    row: &'static str,
    args: Vec<Value>,
    rows: usize,
}

impl RowBatch {
    /// Rows per statement: well under SQLite's 32,766 and PostgreSQL's
    /// 65,535 parameters for the widest rows we write (16 columns).
    const ROWS: usize = 400;

    pub fn new(head: &'static str, row: &'static str) -> RowBatch {
        RowBatch { head, row, args: Vec::new(), rows: 0 }
    }

    pub fn push(&mut self, db: &mut dyn Sql, row: impl IntoIterator<Item = Value>) -> Result<(), StoreError> {
        self.args.extend(row);
        self.rows += 1;
        if self.rows == RowBatch::ROWS {
            self.flush(db)?;
        }
        Ok(())
    }

    pub fn flush(&mut self, db: &mut dyn Sql) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = format!("{}{}", self.head, vec![self.row; self.rows].join(", "));
        db.execute(&sql, &self.args)?;
        self.args.clear();
        self.rows = 0;
        Ok(())
    }
}

/// Rewrites `?` placeholders as `$1, $2, …` (PostgreSQL). Our statements
/// never put a `?` inside a string literal.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn a_row_converts_or_says_what_it_held() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert_eq!(row.get::<Option<i64>>(1).unwrap(), None);
        assert_eq!(row.get::<Option<String>>(2).unwrap().as_deref(), Some("x"));
        let err = row.get::<i64>(2).unwrap_err().to_string();
        assert!(err.contains("column 2 is text"), "{err}");
        assert!(row.get::<i64>(7).is_err());
    }
}
