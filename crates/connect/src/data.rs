//! Kafka Connect's data model: schemas, values (with structs), records.

use fjord_client::Header;
use serde_json::Map as JsonMap;
use std::collections::BTreeMap;

/// The type of a [`Schema`], named as Kafka Connect's `Schema.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// 8-bit integer.
    Int8,
    /// 16-bit integer.
    Int16,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Boolean,
    /// UTF-8 string.
    String,
    /// Bytes.
    Bytes,
    /// Array of one item schema.
    Array,
    /// Map from key schema to value schema.
    Map,
    /// Struct with named fields.
    Struct,
}

impl SchemaType {
    /// The lower-case name used in the JSON schema envelope.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// Parses a JSON envelope type name.
    pub fn parse(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Field schema.
    pub schema: Schema,
}

/// A Kafka Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Type.
    pub ty: SchemaType,
    /// Whether null is allowed.
    pub optional: bool,
    /// Logical name (e.g. `org.apache.kafka.connect.data.Timestamp`).
    pub name: Option<String>,
    /// Version.
    pub version: Option<i32>,
    /// Documentation.
    pub doc: Option<String>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Map key schema.
    pub key_schema: Option<Box<Schema>>,
    /// Array item or map value schema.
    pub value_schema: Option<Box<Schema>>,
}

/// The logical name of timestamps (int64 milliseconds since the epoch).
pub const TIMESTAMP_LOGICAL: &str = "org.apache.kafka.connect.data.Timestamp";

impl Schema {
    /// A required schema of a primitive type.
    pub fn of(ty: SchemaType) -> Schema {
        Schema {
            ty,
            optional: false,
            name: None,
            version: None,
            doc: None,
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }

    /// The same schema, optional.
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    /// The same schema with a logical name.
    pub fn named(mut self, name: impl Into<String>) -> Schema {
        self.name = Some(name.into());
        self
    }

    /// A struct schema with these fields.
    pub fn structure(fields: Vec<(&str, Schema)>) -> Schema {
        let mut s = Schema::of(SchemaType::Struct);
        s.fields = fields
            .into_iter()
            .map(|(n, schema)| Field {
                name: n.to_string(),
                schema,
            })
            .collect();
        s
    }

    /// An array schema.
    pub fn array(items: Schema) -> Schema {
        let mut s = Schema::of(SchemaType::Array);
        s.value_schema = Some(Box::new(items));
        s
    }

    /// A map schema.
    pub fn map(key: Schema, value: Schema) -> Schema {
        let mut s = Schema::of(SchemaType::Map);
        s.key_schema = Some(Box::new(key));
        s.value_schema = Some(Box::new(value));
        s
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The schema as Kafka Connect's JSON converter writes it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = JsonMap::new();
        m.insert("type".into(), self.ty.name().into());
        if self.ty == SchemaType::Struct {
            let fields: Vec<serde_json::Value> = self
                .fields
                .iter()
                .map(|f| {
                    let mut j = f.schema.to_json();
                    if let Some(o) = j.as_object_mut() {
                        o.insert("field".into(), f.name.clone().into());
                    }
                    j
                })
                .collect();
            m.insert("fields".into(), fields.into());
        }
        if let Some(k) = &self.key_schema {
            m.insert("keys".into(), k.to_json());
        }
        if let Some(v) = &self.value_schema {
            let key = if self.ty == SchemaType::Array {
                "items"
            } else {
                "values"
            };
            m.insert(key.into(), v.to_json());
        }
        m.insert("optional".into(), self.optional.into());
        if let Some(n) = &self.name {
            m.insert("name".into(), n.clone().into());
        }
        if let Some(v) = self.version {
            m.insert("version".into(), v.into());
        }
        if let Some(d) = &self.doc {
            m.insert("doc".into(), d.clone().into());
        }
        serde_json::Value::Object(m)
    }

    /// Reads a schema from Kafka Connect's JSON form.
    pub fn from_json(j: &serde_json::Value) -> Result<Schema, String> {
        let o = j.as_object().ok_or("schema must be a JSON object")?;
        let ty_name = o
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or("schema has no \"type\"")?;
        let ty = SchemaType::parse(ty_name).ok_or(format!("unknown schema type {ty_name}"))?;
        let mut s = Schema::of(ty);
        s.optional = o.get("optional").and_then(|v| v.as_bool()).unwrap_or(false);
        s.name = o.get("name").and_then(|v| v.as_str()).map(str::to_string);
        s.version = o
            .get("version")
            .and_then(|v| v.as_i64())
            .and_then(|v| i32::try_from(v).ok());
        s.doc = o.get("doc").and_then(|v| v.as_str()).map(str::to_string);
        match ty {
            SchemaType::Struct => {
                for f in o
                    .get("fields")
                    .and_then(|f| f.as_array())
                    .ok_or("struct schema has no \"fields\" array")?
                {
                    let name = f
                        .get("field")
                        .and_then(|n| n.as_str())
                        .ok_or("struct field has no \"field\" name")?;
                    s.fields.push(Field {
                        name: name.to_string(),
                        schema: Schema::from_json(f)?,
                    });
                }
            }
            SchemaType::Array => {
                let items = o.get("items").ok_or("array schema has no \"items\"")?;
                s.value_schema = Some(Box::new(Schema::from_json(items)?));
            }
            SchemaType::Map => {
                let k = o.get("keys").ok_or("map schema has no \"keys\"")?;
                let v = o.get("values").ok_or("map schema has no \"values\"")?;
                s.key_schema = Some(Box::new(Schema::from_json(k)?));
                s.value_schema = Some(Box::new(Schema::from_json(v)?));
            }
            _ => {}
        }
        Ok(s)
    }
}

/// A Kafka Connect value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Null.
    #[default]
    Null,
    /// Boolean.
    Boolean(bool),
    /// int8.
    Int8(i8),
    /// int16.
    Int16(i16),
    /// int32.
    Int32(i32),
    /// int64 (also timestamps).
    Int64(i64),
    /// float.
    Float32(f32),
    /// double.
    Float64(f64),
    /// string.
    String(String),
    /// bytes.
    Bytes(Vec<u8>),
    /// array.
    Array(Vec<Value>),
    /// map; schemaless JSON objects become maps with string keys.
    Map(BTreeMap<String, Value>),
    /// struct: field values in schema order.
    Struct(Struct),
}

/// A struct value: named fields in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct {
    /// `(field name, value)` pairs in schema order.
    pub fields: Vec<(String, Value)>,
}

impl Struct {
    /// An empty struct.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a field (builder style).
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.put(name, value);
        self
    }

    /// Adds or replaces a field.
    pub fn put(&mut self, name: impl Into<String>, value: Value) {
        let name = name.into();
        if let Some(slot) = self.fields.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int64(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int32(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}

impl Value {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A field of a struct or a key of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(s) => s.get(name),
            Value::Map(m) => m.get(name),
            _ => None,
        }
    }

    /// The value as JSON (no schema): bytes as base64, structs as objects.
    pub fn to_json(&self) -> serde_json::Value {
        use base64::Engine;
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Boolean(b) => (*b).into(),
            Value::Int8(v) => (*v).into(),
            Value::Int16(v) => (*v).into(),
            Value::Int32(v) => (*v).into(),
            Value::Int64(v) => (*v).into(),
            Value::Float32(v) => serde_json::Number::from_f64(f64::from(*v))
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Float64(v) => serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => s.clone().into(),
            Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
            Value::Array(a) => a.iter().map(Value::to_json).collect(),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Struct(s) => serde_json::Value::Object(
                s.fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A schemaless value from JSON: integers become int64, other numbers double, objects maps.
    pub fn from_json_schemaless(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int64(i),
                None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => {
                Value::Array(a.iter().map(Value::from_json_schemaless).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json_schemaless(v)))
                    .collect(),
            ),
        }
    }

    /// A value from JSON following `schema`.
    pub fn from_json_with_schema(j: &serde_json::Value, schema: &Schema) -> Result<Value, String> {
        use base64::Engine;
        if j.is_null() {
            return if schema.optional {
                Ok(Value::Null)
            } else {
                Err(format!(
                    "JSON value is null but the {} schema is not optional",
                    schema.ty.name()
                ))
            };
        }
        let int = |j: &serde_json::Value| {
            j.as_i64()
                .ok_or_else(|| format!("expected an integer for {}, got {j}", schema.ty.name()))
        };
        let out_of_range = |_| format!("integer out of range for {}", schema.ty.name());
        Ok(match schema.ty {
            SchemaType::Int8 => Value::Int8(i8::try_from(int(j)?).map_err(out_of_range)?),
            SchemaType::Int16 => Value::Int16(i16::try_from(int(j)?).map_err(out_of_range)?),
            SchemaType::Int32 => Value::Int32(i32::try_from(int(j)?).map_err(out_of_range)?),
            SchemaType::Int64 => Value::Int64(int(j)?),
            SchemaType::Float32 => {
                Value::Float32(j.as_f64().ok_or(format!("expected a number, got {j}"))? as f32)
            }
            SchemaType::Float64 => {
                Value::Float64(j.as_f64().ok_or(format!("expected a number, got {j}"))?)
            }
            SchemaType::Boolean => {
                Value::Boolean(j.as_bool().ok_or(format!("expected a boolean, got {j}"))?)
            }
            SchemaType::String => Value::String(
                j.as_str()
                    .ok_or(format!("expected a string, got {j}"))?
                    .to_string(),
            ),
            SchemaType::Bytes => Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(j.as_str().ok_or(format!("expected base64 text, got {j}"))?)
                    .map_err(|e| format!("invalid base64 bytes: {e}"))?,
            ),
            SchemaType::Array => {
                let items = schema
                    .value_schema
                    .as_deref()
                    .ok_or("array schema without items")?;
                Value::Array(
                    j.as_array()
                        .ok_or(format!("expected an array, got {j}"))?
                        .iter()
                        .map(|v| Value::from_json_with_schema(v, items))
                        .collect::<Result<_, _>>()?,
                )
            }
            SchemaType::Map => {
                let values = schema
                    .value_schema
                    .as_deref()
                    .ok_or("map schema without values")?;
                let o = j
                    .as_object()
                    .ok_or(format!("expected an object, got {j}"))?;
                Value::Map(
                    o.iter()
                        .map(|(k, v)| Ok((k.clone(), Value::from_json_with_schema(v, values)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
            SchemaType::Struct => {
                let o = j
                    .as_object()
                    .ok_or(format!("expected an object, got {j}"))?;
                let mut s = Struct::new();
                for f in &schema.fields {
                    let v = o.get(&f.name).unwrap_or(&serde_json::Value::Null);
                    s.put(
                        f.name.clone(),
                        Value::from_json_with_schema(v, &f.schema)
                            .map_err(|e| format!("field {}: {e}", f.name))?,
                    );
                }
                Value::Struct(s)
            }
        })
    }

    /// A short text form: strings as they are, everything else as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => other.to_json().to_string(),
        }
    }
}

/// A record on its way between a connector and Kafka.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the producer choose.
    pub kafka_partition: Option<i32>,
    /// Key schema (`None`: schemaless).
    pub key_schema: Option<Schema>,
    /// Key.
    pub key: Value,
    /// Value schema (`None`: schemaless).
    pub value_schema: Option<Schema>,
    /// Value (`Null`: tombstone).
    pub value: Value,
    /// Timestamp in ms since the epoch.
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<Header>,
}

impl ConnectRecord {
    /// A schemaless record for `topic` with this value.
    pub fn new(topic: impl Into<String>, value: Value) -> Self {
        ConnectRecord {
            topic: topic.into(),
            value,
            ..Default::default()
        }
    }
}

/// A record produced by a source task, with where it came from in the external system.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Identifies the source partition (e.g. `{"filename": "/x"}`); offsets are per partition.
    pub source_partition: serde_json::Value,
    /// The position after this record in that partition (e.g. `{"position": 120}`).
    pub source_offset: serde_json::Value,
    /// The record.
    pub record: ConnectRecord,
}

/// A record delivered to a sink task, with its Kafka coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// The record (topic and `kafka_partition` set).
    pub record: ConnectRecord,
    /// Its offset in the partition.
    pub kafka_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_json_round_trip() {
        let s = Schema::structure(vec![
            ("id", Schema::of(SchemaType::Int32)),
            ("name", Schema::of(SchemaType::String).optional()),
            ("tags", Schema::array(Schema::of(SchemaType::String))),
            (
                "attrs",
                Schema::map(
                    Schema::of(SchemaType::String),
                    Schema::of(SchemaType::Int64),
                ),
            ),
            ("at", Schema::of(SchemaType::Int64).named(TIMESTAMP_LOGICAL)),
        ]);
        let j = s.to_json();
        assert_eq!(j["fields"][0]["field"], "id");
        assert_eq!(j["fields"][0]["type"], "int32");
        assert_eq!(j["fields"][2]["items"]["type"], "string");
        assert_eq!(j["fields"][3]["keys"]["type"], "string");
        assert_eq!(Schema::from_json(&j).unwrap(), s);
    }

    #[test]
    fn values_follow_the_schema() {
        let s = Schema::structure(vec![
            ("id", Schema::of(SchemaType::Int8)),
            ("blob", Schema::of(SchemaType::Bytes).optional()),
        ]);
        let v = Value::from_json_with_schema(&serde_json::json!({"id": 7, "blob": "AQI="}), &s)
            .unwrap();
        assert_eq!(v.get("id"), Some(&Value::Int8(7)));
        assert_eq!(v.get("blob"), Some(&Value::Bytes(vec![1, 2])));
        let err = Value::from_json_with_schema(&serde_json::json!({"id": 300}), &s).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        let err = Value::from_json_with_schema(&serde_json::json!({"blob": null}), &s).unwrap_err();
        assert!(err.contains("not optional"), "{err}");
        assert_eq!(v.to_json(), serde_json::json!({"id": 7, "blob": "AQI="}));
    }
}
