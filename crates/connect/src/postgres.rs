//! PostgreSQL source and sink connectors on tokio-postgres, configured like Confluent's JDBC
//! connectors.
//!
//! **Source** (`PostgresSource`): `connection.url` (`jdbc:postgresql://host:port/db` or a
//! libpq string `host=... port=...`), `connection.user`, `connection.password`,
//! `table.whitelist`, `mode` = `bulk` | `incrementing` | `timestamp` |
//! `timestamp+incrementing`, `incrementing.column.name`, `timestamp.column.name`,
//! `poll.interval.ms`, `batch.max.rows`, `topic.prefix` (one topic per table:
//! `<prefix><table>`). Rows become structs; the source partition is `{"table": <name>}`, the
//! offset `{"incrementing": <id>}` and/or `{"timestamp_us": <µs since the epoch>}`.
//! Timestamp modes read only rows older than the database's `now()`, so rows committed later
//! with an earlier timestamp can be missed, as with the JDBC connector.
//!
//! **Sink** (`PostgresSink`): `connection.*`, `topics`, `table.name.format` (`${topic}`),
//! `insert.mode` = `insert` | `upsert`, `pk.mode` = `none` | `record_key` | `record_value`,
//! `pk.fields`, `auto.create`, `batch.size`. Values must be structs (or schemaless maps);
//! upserts use `INSERT ... ON CONFLICT (pk) DO UPDATE`.

use crate::config::{ConfigDef, ConfigType, Importance, Props, PropsExt, Validator};
use crate::connector::{Connector, SinkTask, SourceTask, SourceTaskContext};
use crate::converter::infer_schema;
use crate::data::{
    ConnectRecord, Field, Schema, SchemaType, SinkRecord, SourceRecord, Struct, Value,
    TIMESTAMP_LOGICAL,
};
use crate::error::{ConnectError, Result};
use futures::future::BoxFuture;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

fn connection_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            "connection.url",
            ConfigType::String,
            None,
            Importance::High,
            "JDBC URL (jdbc:postgresql://host:port/db) or libpq connection string.",
        )
        .with_validator(Validator::NonEmpty)
        .in_group("Database")
        .define(
            "connection.user",
            ConfigType::String,
            Some(""),
            Importance::High,
            "Database user.",
        )
        .in_group("Database")
        .define(
            "connection.password",
            ConfigType::Password,
            Some(""),
            Importance::High,
            "Database password.",
        )
        .in_group("Database")
}

fn source_def() -> ConfigDef {
    connection_def()
        .define(
            "table.whitelist",
            ConfigType::List,
            None,
            Importance::High,
            "Tables to copy.",
        )
        .with_validator(Validator::NonEmpty)
        .define(
            "mode",
            ConfigType::String,
            Some("bulk"),
            Importance::High,
            "bulk, incrementing, timestamp or timestamp+incrementing.",
        )
        .with_validator(Validator::OneOf(vec![
            "bulk",
            "incrementing",
            "timestamp",
            "timestamp+incrementing",
        ]))
        .define(
            "incrementing.column.name",
            ConfigType::String,
            Some(""),
            Importance::Medium,
            "Strictly increasing column (incrementing modes).",
        )
        .define(
            "timestamp.column.name",
            ConfigType::String,
            Some(""),
            Importance::Medium,
            "Timestamp column (timestamp modes).",
        )
        .define(
            "poll.interval.ms",
            ConfigType::Int,
            Some("5000"),
            Importance::High,
            "How often to poll each table.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: i64::from(i32::MAX),
        })
        .define(
            "batch.max.rows",
            ConfigType::Int,
            Some("100"),
            Importance::Low,
            "Rows per poll and table.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: i64::from(i32::MAX),
        })
        .define(
            "topic.prefix",
            ConfigType::String,
            None,
            Importance::High,
            "Prefix of the per-table topic names.",
        )
}

fn sink_def() -> ConfigDef {
    connection_def()
        .define(
            "table.name.format",
            ConfigType::String,
            Some("${topic}"),
            Importance::Medium,
            "Destination table; ${topic} is replaced by the topic.",
        )
        .define(
            "insert.mode",
            ConfigType::String,
            Some("insert"),
            Importance::High,
            "insert or upsert.",
        )
        .with_validator(Validator::OneOf(vec!["insert", "upsert"]))
        .define(
            "pk.mode",
            ConfigType::String,
            Some("none"),
            Importance::High,
            "none, record_key or record_value.",
        )
        .with_validator(Validator::OneOf(vec!["none", "record_key", "record_value"]))
        .define(
            "pk.fields",
            ConfigType::List,
            Some(""),
            Importance::Medium,
            "Primary key fields.",
        )
        .define(
            "auto.create",
            ConfigType::Boolean,
            Some("false"),
            Importance::Medium,
            "Create the table from the record schema when missing.",
        )
        .define(
            "batch.size",
            ConfigType::Int,
            Some("3000"),
            Importance::Medium,
            "Records per transaction.",
        )
        .with_validator(Validator::Range {
            min: 1,
            max: i64::from(i32::MAX),
        })
}

/// Turns `jdbc:postgresql://host:port/db?user=x` (or a libpq string) into a tokio-postgres
/// config string.
pub fn connection_string(props: &Props) -> Result<String> {
    let url = props.required("connection.url")?.trim();
    let mut out = if let Some(rest) = url
        .strip_prefix("jdbc:postgresql://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .or_else(|| url.strip_prefix("postgres://"))
    {
        let (hostpart, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        if host.is_empty() {
            return Err(ConnectError::config(
                "connection.url",
                format!("no host in {url}"),
            ));
        }
        let mut s = format!("host={host} port={port}");
        if !db.is_empty() {
            s.push_str(&format!(" dbname={db}"));
        }
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            if let Some((k, v)) = kv.split_once('=') {
                s.push_str(&format!(" {k}={v}"));
            }
        }
        s
    } else if url.contains('=') {
        url.to_string()
    } else {
        return Err(ConnectError::config(
            "connection.url",
            format!("'{url}' is neither jdbc:postgresql://host:port/db nor a key=value connection string"),
        ));
    };
    for (key, pg) in [
        ("connection.user", "user"),
        ("connection.password", "password"),
    ] {
        if let Some(v) = props.get(key).filter(|v| !v.is_empty()) {
            out.push_str(&format!(
                " {pg}='{}'",
                v.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok(out)
}

async fn connect(props: &Props) -> Result<Client> {
    let conn = connection_string(props)?;
    let (client, connection) = tokio_postgres::connect(&conn, NoTls)
        .await
        .map_err(|e| ConnectError::External(format!("cannot connect to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

fn pg_err(e: tokio_postgres::Error) -> ConnectError {
    let detail = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => format!(": {} ({})", db.message(), db.code().code()),
        (None, Some(src)) => format!(": {src}"),
        (None, None) => String::new(),
    };
    ConnectError::External(format!("PostgreSQL: {e}{detail}"))
}

/// Quotes an identifier (`schema.table` is split and both parts quoted).
fn quote(ident: &str) -> String {
    ident
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// `PostgresSource`: copies tables to topics.
#[derive(Debug, Default)]
pub struct PostgresSourceConnector {
    props: Props,
}

impl Connector for PostgresSourceConnector {
    fn config_def(&self) -> ConfigDef {
        source_def()
    }

    fn start(&mut self, props: &Props) -> Result<()> {
        source_def().check(props)?;
        connection_string(props)?;
        let mode = props.string_or("mode", "bulk");
        if mode.contains("incrementing")
            && props.string_or("incrementing.column.name", "").is_empty()
        {
            return Err(ConnectError::config(
                "incrementing.column.name",
                format!("mode {mode} needs incrementing.column.name"),
            ));
        }
        if mode.contains("timestamp") && props.string_or("timestamp.column.name", "").is_empty() {
            return Err(ConnectError::config(
                "timestamp.column.name",
                format!("mode {mode} needs timestamp.column.name"),
            ));
        }
        self.props = props.clone();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        let tables = self.props.list("table.whitelist");
        let n = max_tasks.clamp(1, tables.len().max(1));
        let mut groups: Vec<Vec<String>> = vec![Vec::new(); n];
        for (i, t) in tables.into_iter().enumerate() {
            groups[i % n].push(t);
        }
        Ok(groups
            .into_iter()
            .map(|g| {
                let mut p = self.props.clone();
                p.insert("tables".into(), g.join(","));
                p
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

#[derive(Debug)]
struct TableState {
    table: String,
    incrementing: Option<i64>,
    timestamp_us: Option<i64>,
    next_poll: std::time::Instant,
}

/// Reads new rows of its tables.
#[derive(Default)]
pub struct PostgresSourceTask {
    client: Option<Client>,
    props: Props,
    mode: Option<Mode>,
    tables: Vec<TableState>,
    inc_col: String,
    ts_col: String,
    prefix: String,
    interval: Duration,
    batch: i64,
}

impl std::fmt::Debug for PostgresSourceTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresSourceTask({:?})", self.tables)
    }
}

/// Reads a column of a row as a Connect value with its schema.
fn column_value(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<(Schema, Value)> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> Result<Option<T>> {
        row.try_get::<_, Option<T>>(i).map_err(pg_err)
    }
    let (schema, value) = match *ty {
        Type::BOOL => (
            Schema::of(SchemaType::Boolean),
            get::<bool>(row, i)?.map(Value::Boolean),
        ),
        Type::INT2 => (
            Schema::of(SchemaType::Int16),
            get::<i16>(row, i)?.map(Value::Int16),
        ),
        Type::INT4 => (
            Schema::of(SchemaType::Int32),
            get::<i32>(row, i)?.map(Value::Int32),
        ),
        Type::INT8 => (
            Schema::of(SchemaType::Int64),
            get::<i64>(row, i)?.map(Value::Int64),
        ),
        Type::FLOAT4 => (
            Schema::of(SchemaType::Float32),
            get::<f32>(row, i)?.map(Value::Float32),
        ),
        Type::FLOAT8 => (
            Schema::of(SchemaType::Float64),
            get::<f64>(row, i)?.map(Value::Float64),
        ),
        Type::BYTEA => (
            Schema::of(SchemaType::Bytes),
            get::<Vec<u8>>(row, i)?.map(Value::Bytes),
        ),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => (
            Schema::of(SchemaType::Int64).named(TIMESTAMP_LOGICAL),
            get::<SystemTime>(row, i)?.map(|t| Value::Int64(system_time_ms(t))),
        ),
        _ => (
            Schema::of(SchemaType::String),
            get::<String>(row, i)?.map(Value::String),
        ),
    };
    Ok((schema.optional(), value.unwrap_or(Value::Null)))
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn native(ty: &Type) -> bool {
    bindable(ty)
}

impl PostgresSourceTask {
    async fn poll_table(&mut self, idx: usize) -> Result<Vec<SourceRecord>> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| ConnectError::Unavailable("source task not started".into()))?;
        let mode = self.mode.unwrap_or(Mode::Bulk);
        let state = &self.tables[idx];
        let table = quote(&state.table);
        // Column list: types tokio-postgres reads natively stay, others are read as text.
        let probe = client
            .prepare(&format!("SELECT * FROM {table} WHERE false"))
            .await
            .map_err(pg_err)?;
        let select: Vec<String> = probe
            .columns()
            .iter()
            .map(|c| {
                if native(c.type_()) {
                    quote(c.name())
                } else {
                    format!("{}::text AS {}", quote(c.name()), quote(c.name()))
                }
            })
            .collect();
        let inc = quote(&self.inc_col);
        let ts_us = format!(
            "(extract(epoch from {}) * 1000000)::bigint",
            quote(&self.ts_col)
        );
        let ts = quote(&self.ts_col);
        let last_inc = state.incrementing.unwrap_or(-1);
        let last_ts = state.timestamp_us.unwrap_or(i64::MIN);
        let (where_sql, order, params): (String, String, Vec<i64>) = match mode {
            Mode::Bulk => (String::new(), String::new(), vec![]),
            Mode::Incrementing => (format!("WHERE {inc} > $1::bigint"), format!("ORDER BY {inc} ASC"), vec![last_inc]),
            Mode::Timestamp => (
                format!("WHERE {ts_us} > $1::bigint AND {ts} < now()"),
                format!("ORDER BY {ts} ASC"),
                vec![last_ts],
            ),
            Mode::TimestampIncrementing => (
                format!("WHERE {ts} < now() AND (({ts_us} = $1::bigint AND {inc} > $2::bigint) OR {ts_us} > $1::bigint)"),
                format!("ORDER BY {ts} ASC, {inc} ASC"),
                vec![last_ts, last_inc],
            ),
        };
        let limit = if mode == Mode::Bulk {
            String::new()
        } else {
            format!("LIMIT {}", self.batch)
        };
        let extra = match mode {
            Mode::Timestamp | Mode::TimestampIncrementing => format!(", {ts_us} AS __fjord_ts_us"),
            _ => String::new(),
        };
        let sql = format!(
            "SELECT {}{extra} FROM {table} {where_sql} {order} {limit}",
            select.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&sql, &refs).await.map_err(pg_err)?;
        let topic = format!("{}{}", self.prefix, state.table);
        let mut out = Vec::with_capacity(rows.len());
        let ncols = select.len();
        let state = &mut self.tables[idx];
        for row in rows {
            let mut schema = Schema::of(SchemaType::Struct).named(state.table.clone());
            let mut value = Struct::new();
            for (i, col) in row.columns().iter().enumerate().take(ncols) {
                let (s, v) = column_value(&row, i, col.type_())?;
                schema.fields.push(Field {
                    name: col.name().to_string(),
                    schema: s,
                });
                value.put(col.name(), v);
            }
            let mut offset = serde_json::Map::new();
            if matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing) {
                let v = match value.get(&self.inc_col) {
                    Some(Value::Int16(v)) => i64::from(*v),
                    Some(Value::Int32(v)) => i64::from(*v),
                    Some(Value::Int64(v)) => *v,
                    other => {
                        return Err(ConnectError::config(
                            "incrementing.column.name",
                            format!(
                                "column {} must be an integer, found {other:?}",
                                self.inc_col
                            ),
                        ))
                    }
                };
                state.incrementing = Some(v);
                offset.insert("incrementing".into(), v.into());
            }
            if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing) {
                let us: i64 = row.try_get("__fjord_ts_us").map_err(pg_err)?;
                state.timestamp_us = Some(us);
                offset.insert("timestamp_us".into(), us.into());
            }
            let mut record = ConnectRecord::new(topic.clone(), Value::Struct(value));
            record.value_schema = Some(schema);
            out.push(SourceRecord {
                source_partition: json!({"table": state.table}),
                source_offset: serde_json::Value::Object(offset),
                record,
            });
        }
        Ok(out)
    }
}

impl SourceTask for PostgresSourceTask {
    fn start(&mut self, props: Props, ctx: SourceTaskContext) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.mode = Some(match props.string_or("mode", "bulk") {
                "incrementing" => Mode::Incrementing,
                "timestamp" => Mode::Timestamp,
                "timestamp+incrementing" => Mode::TimestampIncrementing,
                "bulk" => Mode::Bulk,
                other => {
                    return Err(ConnectError::config(
                        "mode",
                        format!("unknown mode {other}"),
                    ))
                }
            });
            self.inc_col = props.string_or("incrementing.column.name", "").to_string();
            self.ts_col = props.string_or("timestamp.column.name", "").to_string();
            self.prefix = props.required("topic.prefix")?.to_string();
            self.interval = Duration::from_millis(
                props
                    .i64_or("poll.interval.ms", 5000)?
                    .max(1)
                    .unsigned_abs(),
            );
            self.batch = props.i64_or("batch.max.rows", 100)?.max(1);
            let now = std::time::Instant::now();
            let tables = if props.contains_key("tables") {
                props.list("tables")
            } else {
                props.list("table.whitelist")
            };
            self.tables = tables
                .into_iter()
                .map(|table| {
                    let offset = ctx.offsets.offset(&json!({"table": table}));
                    TableState {
                        incrementing: offset
                            .as_ref()
                            .and_then(|o| o.get("incrementing")?.as_i64()),
                        timestamp_us: offset
                            .as_ref()
                            .and_then(|o| o.get("timestamp_us")?.as_i64()),
                        table,
                        next_poll: now,
                    }
                })
                .collect();
            self.client = Some(connect(&props).await?);
            self.props = props;
            Ok(())
        })
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Vec<SourceRecord>>> {
        Box::pin(async move {
            let Some(next) = self.tables.iter().map(|t| t.next_poll).min() else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                return Ok(Vec::new());
            };
            tokio::time::sleep_until(next.into()).await;
            let now = std::time::Instant::now();
            let mut out = Vec::new();
            for i in 0..self.tables.len() {
                if self.tables[i].next_poll <= now {
                    let records = self.poll_table(i).await?;
                    // A full batch means more rows are waiting: poll again at once.
                    let full = self.mode != Some(Mode::Bulk) && records.len() as i64 >= self.batch;
                    self.tables[i].next_poll = if full { now } else { now + self.interval };
                    out.extend(records);
                }
            }
            Ok(out)
        })
    }
}

/// `PostgresSink`: writes records to tables.
#[derive(Debug, Default)]
pub struct PostgresSinkConnector {
    props: Props,
}

impl Connector for PostgresSinkConnector {
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }

    fn start(&mut self, props: &Props) -> Result<()> {
        sink_def().check(props)?;
        connection_string(props)?;
        if props.string_or("insert.mode", "insert") == "upsert"
            && props.string_or("pk.mode", "none") == "none"
        {
            return Err(ConnectError::config(
                "pk.mode",
                "insert.mode=upsert needs pk.mode record_key or record_value",
            ));
        }
        self.props = props.clone();
        Ok(())
    }

    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Props>> {
        Ok(vec![self.props.clone(); max_tasks.max(1)])
    }
}

/// Writes records with INSERT or upserts.
#[derive(Default)]
pub struct PostgresSinkTask {
    client: Option<Client>,
    props: Props,
    created: std::collections::HashSet<String>,
}

impl std::fmt::Debug for PostgresSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresSinkTask")
    }
}

fn sql_type(s: &Schema) -> &'static str {
    if s.name.as_deref() == Some(TIMESTAMP_LOGICAL) {
        return "TIMESTAMPTZ";
    }
    match s.ty {
        SchemaType::Int8 | SchemaType::Int16 => "SMALLINT",
        SchemaType::Int32 => "INTEGER",
        SchemaType::Int64 => "BIGINT",
        SchemaType::Float32 => "REAL",
        SchemaType::Float64 => "DOUBLE PRECISION",
        SchemaType::Boolean => "BOOLEAN",
        SchemaType::Bytes => "BYTEA",
        _ => "TEXT",
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int8(x) => Some(i64::from(*x)),
        Value::Int16(x) => Some(i64::from(*x)),
        Value::Int32(x) => Some(i64::from(*x)),
        Value::Int64(x) => Some(*x),
        Value::Float32(x) => Some(*x as i64),
        Value::Float64(x) => Some(*x as i64),
        Value::String(s) => s.parse().ok(),
        Value::Boolean(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float32(x) => Some(f64::from(*x)),
        Value::Float64(x) => Some(*x),
        Value::String(s) => s.parse().ok(),
        other => as_i64(other).map(|i| i as f64),
    }
}

/// Whether [`param`] binds this type directly (otherwise the value goes as text).
fn bindable(ty: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::BYTEA,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
    ]
    .contains(ty)
}

/// A parameter of the SQL type the server expects.
fn param(v: &Value, ty: &Type, column: &str) -> Result<Box<dyn ToSql + Sync + Send>> {
    let bad = || {
        ConnectError::External(format!(
            "cannot write {v:?} to column {column} of type {ty}"
        ))
    };
    let null = v.is_null();
    Ok(match *ty {
        Type::BOOL => Box::new(if null {
            None
        } else {
            Some(match v {
                Value::Boolean(b) => *b,
                other => as_i64(other).ok_or_else(bad)? != 0,
            })
        }),
        Type::INT2 => Box::new(if null {
            None
        } else {
            Some(i16::try_from(as_i64(v).ok_or_else(bad)?).map_err(|_| bad())?)
        }),
        Type::INT4 => Box::new(if null {
            None
        } else {
            Some(i32::try_from(as_i64(v).ok_or_else(bad)?).map_err(|_| bad())?)
        }),
        Type::INT8 => Box::new(if null {
            None
        } else {
            Some(as_i64(v).ok_or_else(bad)?)
        }),
        Type::FLOAT4 => Box::new(if null {
            None
        } else {
            Some(as_f64(v).ok_or_else(bad)? as f32)
        }),
        Type::FLOAT8 => Box::new(if null {
            None
        } else {
            Some(as_f64(v).ok_or_else(bad)?)
        }),
        Type::BYTEA => Box::new(match v {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            other => Some(other.to_text().into_bytes()),
        }),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Box::new(if null {
            None
        } else {
            let ms = as_i64(v).ok_or_else(bad)?;
            Some(if ms >= 0 {
                UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
            } else {
                UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
            })
        }),
        _ => Box::new(if null { None } else { Some(v.to_text()) }),
    })
}

impl PostgresSinkTask {
    async fn write(&mut self, records: &[SinkRecord]) -> Result<()> {
        let upsert = self.props.string_or("insert.mode", "insert") == "upsert";
        let pk_mode = self.props.string_or("pk.mode", "none").to_string();
        let pk_fields = self.props.list("pk.fields");
        let auto_create = self.props.bool_or("auto.create", false)?;
        let format = self
            .props
            .string_or("table.name.format", "${topic}")
            .to_string();
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| ConnectError::Unavailable("sink task not started".into()))?;
        let tx = client.transaction().await.map_err(pg_err)?;
        for r in records {
            let rec = &r.record;
            if rec.value.is_null() {
                continue; // tombstones are not deletes here
            }
            // Columns: the value's fields, plus key fields for pk.mode=record_key.
            let mut cols: Vec<(String, Value, Schema)> = Vec::new();
            let value_schema = rec
                .value_schema
                .clone()
                .or_else(|| infer_schema(&rec.value));
            let fields_of =
                |v: &Value, s: Option<&Schema>| -> Result<Vec<(String, Value, Schema)>> {
                    match v {
                        Value::Struct(st) => Ok(st
                            .fields
                            .iter()
                            .map(|(n, v)| {
                                let fs = s
                                    .and_then(|s| s.field(n))
                                    .map(|f| f.schema.clone())
                                    .or_else(|| infer_schema(v))
                                    .unwrap_or(Schema::of(SchemaType::String));
                                (n.clone(), v.clone(), fs)
                            })
                            .collect()),
                        Value::Map(m) => Ok(m
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.clone(),
                                    v.clone(),
                                    infer_schema(v).unwrap_or(Schema::of(SchemaType::String)),
                                )
                            })
                            .collect()),
                        other => Err(ConnectError::External(format!(
                            "PostgresSink needs struct (or map) values, got {other:?} from {}",
                            rec.topic
                        ))),
                    }
                };
            if pk_mode == "record_key" {
                match &rec.key {
                    Value::Struct(_) | Value::Map(_) => {
                        let key_schema = rec.key_schema.clone().or_else(|| infer_schema(&rec.key));
                        for (n, v, s) in fields_of(&rec.key, key_schema.as_ref())? {
                            if pk_fields.is_empty() || pk_fields.contains(&n) {
                                cols.push((n, v, s));
                            }
                        }
                    }
                    Value::Null => {
                        return Err(ConnectError::External(format!(
                            "pk.mode=record_key but a record of {} has no key",
                            rec.topic
                        )))
                    }
                    primitive => {
                        let name = pk_fields.first().cloned().ok_or_else(|| {
                            ConnectError::config(
                                "pk.fields",
                                "a primitive record key needs one pk.fields name",
                            )
                        })?;
                        let s = rec
                            .key_schema
                            .clone()
                            .or_else(|| infer_schema(primitive))
                            .unwrap_or(Schema::of(SchemaType::String));
                        cols.push((name, primitive.clone(), s));
                    }
                }
            }
            for (n, v, s) in fields_of(&rec.value, value_schema.as_ref())? {
                if !cols.iter().any(|(c, _, _)| *c == n) {
                    cols.push((n, v, s));
                }
            }
            let pk: Vec<String> = match pk_mode.as_str() {
                "record_key" => cols
                    .iter()
                    .take_while(|_| true)
                    .filter(|(n, _, _)| pk_fields.is_empty() || pk_fields.contains(n))
                    .map(|(n, _, _)| n.clone())
                    .collect::<Vec<_>>(),
                "record_value" => pk_fields.clone(),
                _ => Vec::new(),
            };
            let pk = if pk_mode == "record_key" && pk_fields.is_empty() {
                match &rec.key {
                    Value::Struct(s) => s.fields.iter().map(|(n, _)| n.clone()).collect(),
                    Value::Map(m) => m.keys().cloned().collect(),
                    _ => pk,
                }
            } else {
                pk
            };
            let table = format.replace("${topic}", &rec.topic);
            if auto_create && !self.created.contains(&table) {
                let mut ddl: Vec<String> = cols
                    .iter()
                    .map(|(n, _, s)| {
                        let not_null = if pk.contains(n) { " NOT NULL" } else { "" };
                        format!("{} {}{not_null}", quote(n), sql_type(s))
                    })
                    .collect();
                if !pk.is_empty() {
                    ddl.push(format!(
                        "PRIMARY KEY ({})",
                        pk.iter().map(|p| quote(p)).collect::<Vec<_>>().join(", ")
                    ));
                }
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} ({})",
                    quote(&table),
                    ddl.join(", ")
                ))
                .await
                .map_err(pg_err)?;
                self.created.insert(table.clone());
            }
            let names: Vec<String> = cols.iter().map(|(n, _, _)| quote(n)).collect();
            let build = |placeholders: &[String]| {
                let mut sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote(&table),
                    names.join(", "),
                    placeholders.join(", ")
                );
                if upsert {
                    let updates: Vec<String> = cols
                        .iter()
                        .filter(|(n, _, _)| !pk.contains(n))
                        .map(|(n, _, _)| format!("{0} = EXCLUDED.{0}", quote(n)))
                        .collect();
                    let target = pk.iter().map(|p| quote(p)).collect::<Vec<_>>().join(", ");
                    if updates.is_empty() {
                        sql.push_str(&format!(" ON CONFLICT ({target}) DO NOTHING"));
                    } else {
                        sql.push_str(&format!(
                            " ON CONFLICT ({target}) DO UPDATE SET {}",
                            updates.join(", ")
                        ));
                    }
                }
                sql
            };
            let plain: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
            let mut stmt = tx.prepare(&build(&plain)).await.map_err(pg_err)?;
            // Columns of types without a binary encoding here (numeric, json, uuid, ...) get
            // their value as text, cast by the server.
            if stmt.params().iter().any(|t| !bindable(t)) {
                let cast: Vec<String> = stmt
                    .params()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        if bindable(t) {
                            format!("${}", i + 1)
                        } else {
                            format!(
                                "CAST(${}::text AS {}.{})",
                                i + 1,
                                quote(t.schema()),
                                quote(t.name())
                            )
                        }
                    })
                    .collect();
                stmt = tx.prepare(&build(&cast)).await.map_err(pg_err)?;
            }
            let params: Vec<Box<dyn ToSql + Sync + Send>> = cols
                .iter()
                .zip(stmt.params())
                .map(|((n, v, _), ty)| param(v, ty, n))
                .collect::<Result<_>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&stmt, &refs).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }
}

impl SinkTask for PostgresSinkTask {
    fn start(&mut self, props: Props) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.client = Some(connect(&props).await?);
            self.props = props;
            Ok(())
        })
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let batch =
                usize::try_from(self.props.i64_or("batch.size", 3000)?.max(1)).unwrap_or(3000);
            for chunk in records.chunks(batch) {
                self.write(chunk).await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        // Every put commits its transactions before returning.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls_become_libpq_strings() {
        let mut p = Props::new();
        p.insert(
            "connection.url".into(),
            "jdbc:postgresql://127.0.0.1:5544/shop?sslmode=disable".into(),
        );
        p.insert("connection.user".into(), "fjord".into());
        assert_eq!(
            connection_string(&p).unwrap(),
            "host=127.0.0.1 port=5544 dbname=shop sslmode=disable user='fjord'"
        );
        p.insert("connection.url".into(), "nonsense".into());
        assert!(connection_string(&p)
            .unwrap_err()
            .to_string()
            .contains("connection.url"));
    }

    #[test]
    fn connector_validation_and_task_split() {
        let mut c = PostgresSourceConnector::default();
        let mut p = Props::new();
        p.insert("connection.url".into(), "jdbc:postgresql://h:1/db".into());
        p.insert("table.whitelist".into(), "a,b,c".into());
        p.insert("topic.prefix".into(), "pg-".into());
        p.insert("mode".into(), "incrementing".into());
        assert!(c
            .start(&p)
            .unwrap_err()
            .to_string()
            .contains("incrementing.column.name"));
        p.insert("incrementing.column.name".into(), "id".into());
        c.start(&p).unwrap();
        let tasks = c.task_configs(2).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0]["tables"], "a,c");
        assert_eq!(tasks[1]["tables"], "b");
        let mut s = PostgresSinkConnector::default();
        p.insert("insert.mode".into(), "upsert".into());
        assert!(s.start(&p).unwrap_err().to_string().contains("pk.mode"));
        assert_eq!(quote("public.t\"x"), "\"public\".\"t\"\"x\"");
    }
}
