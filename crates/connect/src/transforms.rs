//! Single message transforms (SMTs) and predicates, configured with Kafka Connect's keys:
//!
//! ```text
//! transforms=route,mask
//! transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter
//! transforms.route.regex=(.*)-raw
//! transforms.route.replacement=$1
//! transforms.mask.type=MaskField$Value
//! transforms.mask.fields=ssn
//! transforms.mask.predicate=isCustomers
//! predicates=isCustomers
//! predicates.isCustomers.type=TopicNameMatches
//! predicates.isCustomers.pattern=customers.*
//! ```
//!
//! Class names may be given in full (`org.apache.kafka.connect.transforms.InsertField$Value`)
//! or short (`InsertField$Value`).

use crate::config::{Props, PropsExt};
use crate::converter::infer_schema;
use crate::data::{ConnectRecord, Field, Schema, SchemaType, Struct, Value};
use crate::error::{ConnectError, Result};
use regex::Regex;
use std::collections::BTreeMap;

/// Which part of a record a transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key (`$Key`).
    Key,
    /// The value (`$Value`).
    Value,
}

/// A single message transform.
pub trait Transformation: Send + Sync {
    /// Transforms one record; `None` drops it. `offset` is the Kafka offset for sink records.
    fn apply(&self, record: ConnectRecord, offset: Option<i64>) -> Result<Option<ConnectRecord>>;
}

/// A condition on records that decides whether a transform applies.
pub trait Predicate: Send + Sync {
    /// Whether the record matches.
    fn test(&self, record: &ConnectRecord) -> bool;
}

struct TopicNameMatches(Regex);
impl Predicate for TopicNameMatches {
    fn test(&self, r: &ConnectRecord) -> bool {
        self.0.is_match(&r.topic)
    }
}
struct HasHeaderKey(String);
impl Predicate for HasHeaderKey {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.headers.iter().any(|h| h.key == self.0)
    }
}
struct RecordIsTombstone;
impl Predicate for RecordIsTombstone {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.value.is_null()
    }
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

fn full_match(key: &str, pattern: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| ConnectError::config(key, format!("invalid regex {pattern}: {e}")))
}

fn sub_props(props: &Props, prefix: &str) -> Props {
    props
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|r| (r.to_string(), v.clone())))
        .collect()
}

/// Builds a predicate from its class and settings (`pattern`, `name`).
pub fn predicate(alias: &str, class: &str, cfg: &Props) -> Result<Box<dyn Predicate>> {
    let key = |k: &str| format!("predicates.{alias}.{k}");
    Ok(match short(class) {
        "TopicNameMatches" => {
            let p = cfg.required("pattern").map_err(|_| {
                ConnectError::config(key("pattern"), "Missing required configuration")
            })?;
            Box::new(TopicNameMatches(full_match(&key("pattern"), p)?))
        }
        "HasHeaderKey" => Box::new(HasHeaderKey(
            cfg.required("name")
                .map_err(|_| ConnectError::config(key("name"), "Missing required configuration"))?
                .to_string(),
        )),
        "RecordIsTombstone" => Box::new(RecordIsTombstone),
        other => {
            return Err(ConnectError::config(
                key("type"),
                format!("unknown predicate {other} (known: TopicNameMatches, HasHeaderKey, RecordIsTombstone)"),
            ))
        }
    })
}

/// Builds one transform from its class and its `transforms.<alias>.`-stripped settings.
pub fn transformation(alias: &str, class: &str, cfg: &Props) -> Result<Box<dyn Transformation>> {
    let key = |k: &str| format!("transforms.{alias}.{k}");
    let required = |k: &str| -> Result<String> {
        cfg.required(k)
            .map(str::to_string)
            .map_err(|_| ConnectError::config(key(k), "Missing required configuration"))
    };
    let name = short(class);
    let (base, part) = match name.split_once('$') {
        Some((b, "Key")) => (b, Some(Part::Key)),
        Some((b, "Value")) => (b, Some(Part::Value)),
        Some((b, _)) => (b, None),
        None => (name, None),
    };
    let need_part = || {
        part.ok_or_else(|| {
            ConnectError::config(key("type"), format!("{name} needs a $Key or $Value suffix"))
        })
    };
    Ok(match base {
        "InsertField" => Box::new(InsertField {
            part: need_part()?,
            topic: cfg.get("topic.field").map(|s| field_spec(s)),
            partition: cfg.get("partition.field").map(|s| field_spec(s)),
            offset: cfg.get("offset.field").map(|s| field_spec(s)),
            timestamp: cfg.get("timestamp.field").map(|s| field_spec(s)),
            static_field: cfg
                .get("static.field")
                .map(|s| (field_spec(s), cfg.string_or("static.value", "").to_string())),
        }),
        "ReplaceField" => {
            let pick = |a: &str, b: &str| {
                let l = cfg.list(a);
                if l.is_empty() {
                    cfg.list(b)
                } else {
                    l
                }
            };
            let mut renames = BTreeMap::new();
            for r in cfg.list("renames") {
                let (from, to) = r.split_once(':').ok_or_else(|| {
                    ConnectError::config(key("renames"), format!("'{r}' is not old:new"))
                })?;
                renames.insert(from.to_string(), to.to_string());
            }
            Box::new(ReplaceField {
                part: need_part()?,
                include: pick("include", "whitelist"),
                exclude: pick("exclude", "blacklist"),
                renames,
            })
        }
        "MaskField" => {
            let fields = cfg.list("fields");
            if fields.is_empty() {
                return Err(ConnectError::config(key("fields"), "Missing required configuration"));
            }
            Box::new(MaskField {
                part: need_part()?,
                fields,
                replacement: cfg.get("replacement").cloned(),
            })
        }
        "ValueToKey" => {
            let fields = cfg.list("fields");
            if fields.is_empty() {
                return Err(ConnectError::config(key("fields"), "Missing required configuration"));
            }
            Box::new(ValueToKey { fields })
        }
        "ExtractField" => Box::new(ExtractField {
            part: need_part()?,
            field: required("field")?,
        }),
        "TimestampRouter" => Box::new(TimestampRouter {
            topic_format: cfg.string_or("topic.format", "${topic}-${timestamp}").to_string(),
            timestamp_format: cfg.string_or("timestamp.format", "yyyyMMdd").to_string(),
        }),
        "RegexRouter" => Box::new(RegexRouter {
            regex: full_match(&key("regex"), &required("regex")?)?,
            replacement: required("replacement")?,
        }),
        "Filter" => Box::new(Filter),
        other => {
            return Err(ConnectError::config(
                key("type"),
                format!("Class {other} could not be found (known: InsertField, ReplaceField, MaskField, ValueToKey, ExtractField, TimestampRouter, RegexRouter, Filter)"),
            ))
        }
    })
}

struct Step {
    transform: Box<dyn Transformation>,
    predicate: Option<(std::sync::Arc<dyn Predicate>, bool)>,
}

/// The transforms of one connector, applied in order.
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Step>,
}

impl std::fmt::Debug for TransformChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TransformChain({} steps)", self.steps.len())
    }
}

impl TransformChain {
    /// Builds the chain from a connector's `transforms` and `predicates` settings.
    pub fn from_config(props: &Props) -> Result<TransformChain> {
        let mut predicates: BTreeMap<String, std::sync::Arc<dyn Predicate>> = BTreeMap::new();
        for alias in props.list("predicates") {
            let cfg = sub_props(props, &format!("predicates.{alias}."));
            let class = cfg.required("type").map_err(|_| {
                ConnectError::config(
                    format!("predicates.{alias}.type"),
                    "Missing required configuration",
                )
            })?;
            predicates.insert(alias.clone(), predicate(&alias, class, &cfg)?.into());
        }
        let mut steps = Vec::new();
        for alias in props.list("transforms") {
            let cfg = sub_props(props, &format!("transforms.{alias}."));
            let class = cfg.required("type").map_err(|_| {
                ConnectError::config(
                    format!("transforms.{alias}.type"),
                    "Missing required configuration",
                )
            })?;
            let transform = transformation(&alias, class, &cfg)?;
            let predicate = match cfg.get("predicate") {
                None => None,
                Some(p) => Some((
                    predicates.get(p).cloned().ok_or_else(|| {
                        ConnectError::config(
                            format!("transforms.{alias}.predicate"),
                            format!("predicate {p} is not listed in predicates"),
                        )
                    })?,
                    cfg.bool_or("negate", false).map_err(|_| {
                        ConnectError::config(format!("transforms.{alias}.negate"), "not a boolean")
                    })?,
                )),
            };
            steps.push(Step {
                transform,
                predicate,
            });
        }
        Ok(TransformChain { steps })
    }

    /// Applies every transform; `None` when one dropped the record.
    pub fn apply(
        &self,
        mut record: ConnectRecord,
        offset: Option<i64>,
    ) -> Result<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((p, negate)) = &step.predicate {
                if p.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record, offset)? {
                Some(r) => record = r,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }

    /// Number of transforms.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no transforms.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

fn parts_mut(r: &mut ConnectRecord, part: Part) -> (&mut Option<Schema>, &mut Value) {
    match part {
        Part::Key => (&mut r.key_schema, &mut r.key),
        Part::Value => (&mut r.value_schema, &mut r.value),
    }
}

/// `name`, `name!` (required) or `name?` (optional): the name.
fn field_spec(s: &str) -> String {
    s.trim().trim_end_matches(['!', '?']).to_string()
}

struct InsertField {
    part: Part,
    topic: Option<String>,
    partition: Option<String>,
    offset: Option<String>,
    timestamp: Option<String>,
    static_field: Option<(String, String)>,
}

fn insert(
    schema: &mut Option<Schema>,
    value: &mut Value,
    name: &str,
    v: Value,
    fs: Schema,
) -> Result<()> {
    match value {
        Value::Struct(s) => {
            s.put(name, v);
            if let Some(sch) = schema {
                if sch.field(name).is_none() {
                    sch.fields.push(Field {
                        name: name.to_string(),
                        schema: fs.optional(),
                    });
                }
            }
            Ok(())
        }
        Value::Map(m) => {
            m.insert(name.to_string(), v);
            Ok(())
        }
        other => Err(ConnectError::Transform(format!(
            "Only Struct objects supported (or maps when schemaless), found {other:?}"
        ))),
    }
}

impl Transformation for InsertField {
    fn apply(&self, mut r: ConnectRecord, offset: Option<i64>) -> Result<Option<ConnectRecord>> {
        let topic = r.topic.clone();
        let partition = r.kafka_partition;
        let timestamp = r.timestamp;
        let (schema, value) = parts_mut(&mut r, self.part);
        if value.is_null() {
            return Ok(Some(r));
        }
        let i64s = || Schema::of(SchemaType::Int64);
        if let Some(f) = &self.topic {
            insert(
                schema,
                value,
                f,
                Value::String(topic),
                Schema::of(SchemaType::String),
            )?;
        }
        if let Some(f) = &self.partition {
            let v = partition.map(Value::Int32).unwrap_or(Value::Null);
            insert(schema, value, f, v, Schema::of(SchemaType::Int32))?;
        }
        if let Some(f) = &self.offset {
            let v = offset.map(Value::Int64).unwrap_or(Value::Null);
            insert(schema, value, f, v, i64s())?;
        }
        if let Some(f) = &self.timestamp {
            let v = timestamp.map(Value::Int64).unwrap_or(Value::Null);
            insert(
                schema,
                value,
                f,
                v,
                i64s().named(crate::data::TIMESTAMP_LOGICAL),
            )?;
        }
        if let Some((f, v)) = &self.static_field {
            insert(
                schema,
                value,
                f,
                Value::String(v.clone()),
                Schema::of(SchemaType::String),
            )?;
        }
        Ok(Some(r))
    }
}

struct ReplaceField {
    part: Part,
    include: Vec<String>,
    exclude: Vec<String>,
    renames: BTreeMap<String, String>,
}

impl ReplaceField {
    fn keep(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }
    fn renamed(&self, name: &str) -> String {
        self.renames
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }
}

impl Transformation for ReplaceField {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        let (schema, value) = parts_mut(&mut r, self.part);
        match value {
            Value::Struct(s) => {
                s.fields = std::mem::take(&mut s.fields)
                    .into_iter()
                    .filter(|(n, _)| self.keep(n))
                    .map(|(n, v)| (self.renamed(&n), v))
                    .collect();
                if let Some(sch) = schema {
                    sch.fields = std::mem::take(&mut sch.fields)
                        .into_iter()
                        .filter(|f| self.keep(&f.name))
                        .map(|f| Field {
                            name: self.renamed(&f.name),
                            schema: f.schema,
                        })
                        .collect();
                }
            }
            Value::Map(m) => {
                *m = std::mem::take(m)
                    .into_iter()
                    .filter(|(n, _)| self.keep(n))
                    .map(|(n, v)| (self.renamed(&n), v))
                    .collect();
            }
            Value::Null => {}
            other => {
                return Err(ConnectError::Transform(format!(
                    "ReplaceField needs a struct or map, found {other:?}"
                )))
            }
        }
        Ok(Some(r))
    }
}

struct MaskField {
    part: Part,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    fn mask(&self, v: &Value) -> Result<Value> {
        if let Some(rep) = &self.replacement {
            let bad =
                || ConnectError::Transform(format!("cannot mask {v:?} with replacement {rep}"));
            return Ok(match v {
                Value::String(_) => Value::String(rep.clone()),
                Value::Int8(_) => Value::Int8(rep.parse().map_err(|_| bad())?),
                Value::Int16(_) => Value::Int16(rep.parse().map_err(|_| bad())?),
                Value::Int32(_) => Value::Int32(rep.parse().map_err(|_| bad())?),
                Value::Int64(_) => Value::Int64(rep.parse().map_err(|_| bad())?),
                Value::Float32(_) => Value::Float32(rep.parse().map_err(|_| bad())?),
                Value::Float64(_) => Value::Float64(rep.parse().map_err(|_| bad())?),
                Value::Boolean(_) => Value::Boolean(rep.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            });
        }
        Ok(match v {
            Value::Null => Value::Null,
            Value::Boolean(_) => Value::Boolean(false),
            Value::Int8(_) => Value::Int8(0),
            Value::Int16(_) => Value::Int16(0),
            Value::Int32(_) => Value::Int32(0),
            Value::Int64(_) => Value::Int64(0),
            Value::Float32(_) => Value::Float32(0.0),
            Value::Float64(_) => Value::Float64(0.0),
            Value::String(_) => Value::String(String::new()),
            Value::Bytes(_) => Value::Bytes(Vec::new()),
            Value::Array(_) => Value::Array(Vec::new()),
            Value::Map(_) => Value::Map(BTreeMap::new()),
            Value::Struct(_) => {
                return Err(ConnectError::Transform("cannot mask a struct field".into()))
            }
        })
    }
}

impl Transformation for MaskField {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        let (_, value) = parts_mut(&mut r, self.part);
        match value {
            Value::Struct(s) => {
                for (n, v) in s.fields.iter_mut() {
                    if self.fields.contains(n) {
                        *v = self.mask(v)?;
                    }
                }
            }
            Value::Map(m) => {
                for (n, v) in m.iter_mut() {
                    if self.fields.contains(n) {
                        *v = self.mask(v)?;
                    }
                }
            }
            _ => {}
        }
        Ok(Some(r))
    }
}

struct ValueToKey {
    fields: Vec<String>,
}

impl Transformation for ValueToKey {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        match &r.value {
            Value::Struct(s) => {
                let mut key = Struct::new();
                let mut ks = Schema::of(SchemaType::Struct);
                for f in &self.fields {
                    let v = s.get(f).ok_or_else(|| {
                        ConnectError::Transform(format!("ValueToKey: field {f} not in the value"))
                    })?;
                    key.put(f.clone(), v.clone());
                    let fs = r
                        .value_schema
                        .as_ref()
                        .and_then(|vs| vs.field(f))
                        .map(|x| x.schema.clone())
                        .or_else(|| infer_schema(v))
                        .unwrap_or(Schema::of(SchemaType::String).optional());
                    ks.fields.push(Field {
                        name: f.clone(),
                        schema: fs,
                    });
                }
                r.key = Value::Struct(key);
                r.key_schema = r.value_schema.as_ref().map(|_| ks);
            }
            Value::Map(m) => {
                let mut key = BTreeMap::new();
                for f in &self.fields {
                    key.insert(f.clone(), m.get(f).cloned().unwrap_or(Value::Null));
                }
                r.key = Value::Map(key);
                r.key_schema = None;
            }
            Value::Null => {}
            other => {
                return Err(ConnectError::Transform(format!(
                    "ValueToKey needs a struct or map value, found {other:?}"
                )))
            }
        }
        Ok(Some(r))
    }
}

struct ExtractField {
    part: Part,
    field: String,
}

impl Transformation for ExtractField {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        let (schema, value) = parts_mut(&mut r, self.part);
        let extracted = value.get(&self.field).cloned().unwrap_or(Value::Null);
        if let Some(s) = schema.as_ref() {
            if s.ty == SchemaType::Struct {
                *schema = s.field(&self.field).map(|f| f.schema.clone());
            }
        }
        *value = extracted;
        Ok(Some(r))
    }
}

/// Formats `ms` (UTC) with the `yyyy`, `MM`, `dd`, `HH`, `mm`, `ss` fields of Java's
/// `SimpleDateFormat`; other letters are copied.
pub fn format_timestamp(ms: i64, pattern: &str) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let field = match c {
            'y' => Some(year),
            'M' => Some(month),
            'd' => Some(day),
            'H' => Some(rem / 3600),
            'm' => Some(rem % 3600 / 60),
            's' => Some(rem % 60),
            _ => None,
        };
        match field {
            Some(v) => out.push_str(&format!("{v:0n$}")),
            None => out.extend(std::iter::repeat_n(c, n)),
        }
        i += n;
    }
    out
}

struct TimestampRouter {
    topic_format: String,
    timestamp_format: String,
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        let ts = r.timestamp.ok_or_else(|| {
            ConnectError::Transform(format!("Timestamp missing on record: topic {}", r.topic))
        })?;
        r.topic = self.topic_format.replace("${topic}", &r.topic).replace(
            "${timestamp}",
            &format_timestamp(ts, &self.timestamp_format),
        );
        Ok(Some(r))
    }
}

struct RegexRouter {
    regex: Regex,
    replacement: String,
}

impl Transformation for RegexRouter {
    fn apply(&self, mut r: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        if self.regex.is_match(&r.topic) {
            r.topic = self
                .regex
                .replace(&r.topic, self.replacement.as_str())
                .into_owned();
        }
        Ok(Some(r))
    }
}

struct Filter;

impl Transformation for Filter {
    fn apply(&self, _: ConnectRecord, _: Option<i64>) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;
    use fjord_client::Header;

    fn chain(text: &str) -> TransformChain {
        TransformChain::from_config(&parse_properties(text)).unwrap()
    }

    fn user() -> ConnectRecord {
        let schema = Schema::structure(vec![
            ("id", Schema::of(SchemaType::Int32)),
            ("name", Schema::of(SchemaType::String)),
            ("ssn", Schema::of(SchemaType::String)),
        ]);
        ConnectRecord {
            topic: "users-raw".into(),
            kafka_partition: Some(2),
            value_schema: Some(schema),
            value: Value::Struct(
                Struct::new()
                    .with("id", Value::Int32(7))
                    .with("name", "ann".into())
                    .with("ssn", "123".into()),
            ),
            timestamp: Some(1_700_000_000_000),
            ..Default::default()
        }
    }

    #[test]
    fn insert_field_with_full_class_name_updates_value_and_schema() {
        let c = chain(
            "transforms=ins\ntransforms.ins.type=org.apache.kafka.connect.transforms.InsertField$Value\n\
             transforms.ins.topic.field=t\ntransforms.ins.offset.field=o!\n\
             transforms.ins.static.field=src\ntransforms.ins.static.value=pg\n",
        );
        let r = c.apply(user(), Some(42)).unwrap().unwrap();
        assert_eq!(r.value.get("t"), Some(&Value::from("users-raw")));
        assert_eq!(r.value.get("o"), Some(&Value::Int64(42)));
        assert_eq!(r.value.get("src"), Some(&Value::from("pg")));
        let schema = r.value_schema.unwrap();
        assert_eq!(schema.field("o").unwrap().schema.ty, SchemaType::Int64);
        assert_eq!(schema.fields.len(), 6);
    }

    #[test]
    fn insert_field_on_schemaless_maps() {
        let c = chain(
            "transforms=i\ntransforms.i.type=InsertField$Value\ntransforms.i.partition.field=p\n",
        );
        let mut r = ConnectRecord::new("t", Value::Map(BTreeMap::new()));
        r.kafka_partition = Some(3);
        let r = c.apply(r, None).unwrap().unwrap();
        assert_eq!(r.value.get("p"), Some(&Value::Int32(3)));
        let err = c
            .apply(ConnectRecord::new("t", "x".into()), None)
            .unwrap_err();
        assert!(err.to_string().contains("Only Struct"));
    }

    #[test]
    fn replace_field_include_exclude_rename() {
        let c = chain(
            "transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.exclude=ssn\n\
             transforms.r.renames=name:full_name\n",
        );
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.value.get("ssn"), None);
        assert_eq!(r.value.get("full_name"), Some(&Value::from("ann")));
        assert_eq!(r.value_schema.as_ref().unwrap().fields[1].name, "full_name");
        let c =
            chain("transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.include=id\n");
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(
            r.value,
            Value::Struct(Struct::new().with("id", Value::Int32(7)))
        );
        assert_eq!(r.value_schema.unwrap().fields.len(), 1);
    }

    #[test]
    fn mask_field_defaults_and_replacement() {
        let c =
            chain("transforms=m\ntransforms.m.type=MaskField$Value\ntransforms.m.fields=ssn,id\n");
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.value.get("ssn"), Some(&Value::from("")));
        assert_eq!(r.value.get("id"), Some(&Value::Int32(0)));
        let c = chain(
            "transforms=m\ntransforms.m.type=MaskField$Value\ntransforms.m.fields=ssn\ntransforms.m.replacement=***\n",
        );
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.value.get("ssn"), Some(&Value::from("***")));
        assert_eq!(r.value.get("name"), Some(&Value::from("ann")));
    }

    #[test]
    fn value_to_key_then_extract_field() {
        let c = chain(
            "transforms=v,e\ntransforms.v.type=ValueToKey\ntransforms.v.fields=id\n\
             transforms.e.type=org.apache.kafka.connect.transforms.ExtractField$Key\ntransforms.e.field=id\n",
        );
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.key, Value::Int32(7));
        assert_eq!(r.key_schema.unwrap().ty, SchemaType::Int32);
        let c =
            chain("transforms=e\ntransforms.e.type=ExtractField$Value\ntransforms.e.field=name\n");
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.value, Value::from("ann"));
        assert_eq!(r.value_schema.unwrap().ty, SchemaType::String);
    }

    #[test]
    fn routers() {
        let c = chain(
            "transforms=re,ts\ntransforms.re.type=RegexRouter\ntransforms.re.regex=(.*)-raw\n\
             transforms.re.replacement=$1\ntransforms.ts.type=TimestampRouter\n\
             transforms.ts.timestamp.format=yyyy-MM-dd HH:mm\n",
        );
        let r = c.apply(user(), None).unwrap().unwrap();
        assert_eq!(r.topic, "users-2023-11-14 22:13");
        // RegexRouter needs a full match, as Java's Matcher.matches().
        let c = chain("transforms=re\ntransforms.re.type=RegexRouter\ntransforms.re.regex=raw\ntransforms.re.replacement=x\n");
        assert_eq!(c.apply(user(), None).unwrap().unwrap().topic, "users-raw");
        assert_eq!(format_timestamp(0, "yyyyMMdd"), "19700101");
        assert_eq!(format_timestamp(951_782_400_000, "yyyyMMdd"), "20000229");
    }

    #[test]
    fn filter_with_predicates_and_negate() {
        let c = chain(
            "transforms=drop\ntransforms.drop.type=org.apache.kafka.connect.transforms.Filter\n\
             transforms.drop.predicate=isUsers\npredicates=isUsers\n\
             predicates.isUsers.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches\n\
             predicates.isUsers.pattern=users.*\n",
        );
        assert!(c.apply(user(), None).unwrap().is_none());
        assert!(c
            .apply(ConnectRecord::new("orders", Value::Null), None)
            .unwrap()
            .is_some());
        let c = chain(
            "transforms=drop\ntransforms.drop.type=Filter\ntransforms.drop.predicate=h\n\
             transforms.drop.negate=true\npredicates=h\npredicates.h.type=HasHeaderKey\npredicates.h.name=keep\n",
        );
        let mut kept = user();
        kept.headers.push(Header::new("keep", "1"));
        assert!(c.apply(kept, None).unwrap().is_some());
        assert!(c.apply(user(), None).unwrap().is_none());
        let c = chain(
            "transforms=drop\ntransforms.drop.type=Filter\ntransforms.drop.predicate=t\n\
             predicates=t\npredicates.t.type=RecordIsTombstone\n",
        );
        assert!(c
            .apply(ConnectRecord::new("x", Value::Null), None)
            .unwrap()
            .is_none());
        assert!(c.apply(user(), None).unwrap().is_some());
    }

    #[test]
    fn bad_configs_name_the_key() {
        let err = TransformChain::from_config(&parse_properties(
            "transforms=x\ntransforms.x.type=Nope\n",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("transforms.x.type"), "{err}");
        let err = TransformChain::from_config(&parse_properties(
            "transforms=x\ntransforms.x.type=RegexRouter\ntransforms.x.regex=(\ntransforms.x.replacement=a\n",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("transforms.x.regex"), "{err}");
        let err = TransformChain::from_config(&parse_properties(
            "transforms=x\ntransforms.x.type=Filter\ntransforms.x.predicate=p\n",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("transforms.x.predicate"), "{err}");
    }
}
