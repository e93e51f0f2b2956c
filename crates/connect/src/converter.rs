//! Converters between Connect data and the bytes stored in Kafka: string, bytes and JSON
//! (with Kafka Connect's `{"schema": ..., "payload": ...}` envelope when `schemas.enable`).

use crate::config::{Props, PropsExt};
use crate::data::{Schema, SchemaType, Value};
use crate::error::{ConnectError, Result};
use bytes::Bytes;

/// Turns Connect values into record bytes and back (Kafka's method names).
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    /// Serialises a key or value (`None`: a null key or a tombstone).
    fn from_connect(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>>;
    /// Deserialises a key or value.
    fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)>;
}

/// `org.apache.kafka.connect.storage.StringConverter`: values as UTF-8 text.
#[derive(Debug, Default)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn from_connect(&self, _: &str, _: Option<&Schema>, value: &Value) -> Result<Option<Bytes>> {
        Ok(match value {
            Value::Null => None,
            other => Some(Bytes::from(other.to_text())),
        })
    }

    fn to_connect(&self, _: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(SchemaType::String).optional());
        Ok(match bytes {
            None => (schema, Value::Null),
            Some(b) => (
                schema,
                Value::String(String::from_utf8_lossy(b).into_owned()),
            ),
        })
    }
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes passed through.
#[derive(Debug, Default)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn from_connect(
        &self,
        topic: &str,
        _: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(Bytes::copy_from_slice(b))),
            other => Err(ConnectError::Conversion(format!(
                "ByteArrayConverter is not compatible with objects of type {other:?} (topic {topic})"
            ))),
        }
    }

    fn to_connect(&self, _: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(SchemaType::Bytes).optional());
        Ok(match bytes {
            None => (schema, Value::Null),
            Some(b) => (schema, Value::Bytes(b.to_vec())),
        })
    }
}

/// `org.apache.kafka.connect.json.JsonConverter`.
#[derive(Debug)]
pub struct JsonConverter {
    /// `schemas.enable`: wrap values in the schema envelope (default true, as in Kafka).
    pub schemas_enable: bool,
}

impl Default for JsonConverter {
    fn default() -> Self {
        JsonConverter {
            schemas_enable: true,
        }
    }
}

/// Infers a schema for a schemaless value (used when a schema is needed but none was given).
pub fn infer_schema(value: &Value) -> Option<Schema> {
    Some(match value {
        Value::Null => return None,
        Value::Boolean(_) => Schema::of(SchemaType::Boolean),
        Value::Int8(_) => Schema::of(SchemaType::Int8),
        Value::Int16(_) => Schema::of(SchemaType::Int16),
        Value::Int32(_) => Schema::of(SchemaType::Int32),
        Value::Int64(_) => Schema::of(SchemaType::Int64),
        Value::Float32(_) => Schema::of(SchemaType::Float32),
        Value::Float64(_) => Schema::of(SchemaType::Float64),
        Value::String(_) => Schema::of(SchemaType::String),
        Value::Bytes(_) => Schema::of(SchemaType::Bytes),
        Value::Array(a) => Schema::array(
            a.first()
                .and_then(infer_schema)
                .unwrap_or(Schema::of(SchemaType::String).optional()),
        ),
        Value::Map(m) => Schema::map(
            Schema::of(SchemaType::String),
            m.values()
                .next()
                .and_then(infer_schema)
                .unwrap_or(Schema::of(SchemaType::String))
                .optional(),
        ),
        Value::Struct(s) => {
            let mut schema = Schema::of(SchemaType::Struct);
            for (n, v) in &s.fields {
                schema.fields.push(crate::data::Field {
                    name: n.clone(),
                    schema: infer_schema(v)
                        .unwrap_or(Schema::of(SchemaType::String))
                        .optional(),
                });
            }
            schema
        }
    })
}

impl Converter for JsonConverter {
    fn from_connect(
        &self,
        _: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if value.is_null() && !self.schemas_enable {
            return Ok(None);
        }
        let json = if self.schemas_enable {
            if value.is_null() && schema.is_none() {
                return Ok(None);
            }
            let schema_json = schema
                .cloned()
                .or_else(|| infer_schema(value))
                .map(|s| s.to_json())
                .unwrap_or(serde_json::Value::Null);
            serde_json::json!({"schema": schema_json, "payload": value.to_json()})
        } else {
            value.to_json()
        };
        serde_json::to_vec(&json)
            .map(|v| Some(Bytes::from(v)))
            .map_err(|e| ConnectError::Conversion(e.to_string()))
    }

    fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ConnectError::Conversion(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok((None, Value::from_json_schemaless(&json)));
        }
        let envelope = json
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("schema") && o.contains_key("payload"));
        let Some(envelope) = envelope else {
            return Err(ConnectError::Conversion(
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.".into(),
            ));
        };
        let payload = &envelope["payload"];
        match &envelope["schema"] {
            serde_json::Value::Null => Ok((None, Value::from_json_schemaless(payload))),
            s => {
                let schema = Schema::from_json(s).map_err(ConnectError::Conversion)?;
                let value = Value::from_json_with_schema(payload, &schema)
                    .map_err(ConnectError::Conversion)?;
                Ok((Some(schema), value))
            }
        }
    }
}

/// Builds the converter named by `class` with its `<prefix>.`-stripped settings.
///
/// Accepts Kafka's class names and the short names `string`, `bytes`, `json`.
pub fn converter_from_config(key: &str, props: &Props) -> Result<Box<dyn Converter>> {
    let class = props
        .get(key)
        .map(String::as_str)
        .unwrap_or("org.apache.kafka.connect.json.JsonConverter");
    let prefix = format!("{key}.");
    let mut sub = Props::new();
    for (k, v) in props {
        if let Some(rest) = k.strip_prefix(&prefix) {
            sub.insert(rest.to_string(), v.clone());
        }
    }
    Ok(match class.trim() {
        "org.apache.kafka.connect.storage.StringConverter" | "StringConverter" | "string" => {
            Box::new(StringConverter)
        }
        "org.apache.kafka.connect.converters.ByteArrayConverter" | "ByteArrayConverter"
        | "bytes" => Box::new(ByteArrayConverter),
        "org.apache.kafka.connect.json.JsonConverter" | "JsonConverter" | "json" => {
            Box::new(JsonConverter {
                schemas_enable: sub.bool_or("schemas.enable", true)?,
            })
        }
        other => {
            return Err(ConnectError::config(
                key,
                format!("Class {other} could not be found (known: StringConverter, ByteArrayConverter, JsonConverter)"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Struct;

    #[test]
    fn string_and_bytes() {
        let c = StringConverter;
        let b = c
            .from_connect("t", None, &Value::from("héllo"))
            .unwrap()
            .unwrap();
        assert_eq!(&b[..], "héllo".as_bytes());
        assert_eq!(c.to_connect("t", Some(&b)).unwrap().1, Value::from("héllo"));
        assert_eq!(c.from_connect("t", None, &Value::Null).unwrap(), None);
        let c = ByteArrayConverter;
        let b = c
            .from_connect("t", None, &Value::Bytes(vec![0, 255]))
            .unwrap()
            .unwrap();
        assert_eq!(&b[..], &[0, 255]);
        assert!(c.from_connect("t", None, &Value::from("x")).is_err());
    }

    #[test]
    fn json_with_schema_envelope_matches_kafka_shape() {
        let c = JsonConverter::default();
        let schema = Schema::structure(vec![
            ("id", Schema::of(SchemaType::Int32)),
            ("name", Schema::of(SchemaType::String).optional()),
        ]);
        let v = Value::Struct(
            Struct::new()
                .with("id", Value::Int32(1))
                .with("name", "a".into()),
        );
        let b = c.from_connect("t", Some(&schema), &v).unwrap().unwrap();
        let j: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "schema": {"type": "struct", "optional": false, "fields": [
                    {"type": "int32", "optional": false, "field": "id"},
                    {"type": "string", "optional": true, "field": "name"}
                ]},
                "payload": {"id": 1, "name": "a"}
            })
        );
        let (s2, v2) = c.to_connect("t", Some(&b)).unwrap();
        assert_eq!(s2.as_ref(), Some(&schema));
        assert_eq!(v2, v);
        let err = c
            .to_connect("t", Some(br#"{"id": 1}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("schemas.enable=false"), "{err}");
    }

    #[test]
    fn json_without_schemas() {
        let c = JsonConverter {
            schemas_enable: false,
        };
        let (s, v) = c
            .to_connect("t", Some(br#"{"a": 1, "b": [true], "c": 1.5}"#))
            .unwrap();
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int64(1)));
        assert_eq!(v.get("c"), Some(&Value::Float64(1.5)));
        let b = c.from_connect("t", None, &v).unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&b).unwrap(),
            serde_json::json!({"a": 1, "b": [true], "c": 1.5})
        );
        assert!(c.to_connect("t", Some(b"{not json")).is_err());
    }

    fn primitive() -> impl proptest::strategy::Strategy<Value = (Schema, Value)> {
        use proptest::prelude::*;
        prop_oneof![
            any::<bool>().prop_map(|v| (Schema::of(SchemaType::Boolean), Value::Boolean(v))),
            any::<i8>().prop_map(|v| (Schema::of(SchemaType::Int8), Value::Int8(v))),
            any::<i16>().prop_map(|v| (Schema::of(SchemaType::Int16), Value::Int16(v))),
            any::<i32>().prop_map(|v| (Schema::of(SchemaType::Int32), Value::Int32(v))),
            any::<i64>().prop_map(|v| (Schema::of(SchemaType::Int64), Value::Int64(v))),
            (-1e300f64..1e300).prop_map(|v| (Schema::of(SchemaType::Float64), Value::Float64(v))),
            ".*".prop_map(|v| (Schema::of(SchemaType::String), Value::String(v))),
            proptest::collection::vec(any::<u8>(), 0..16)
                .prop_map(|v| (Schema::of(SchemaType::Bytes), Value::Bytes(v))),
            Just((Schema::of(SchemaType::String).optional(), Value::Null)),
        ]
    }

    proptest::proptest! {
        /// Any struct of primitive fields survives JsonConverter with schemas, and its
        /// schemaless form keeps the same JSON.
        #[test]
        fn json_round_trips_structs(fields in proptest::collection::vec(primitive(), 0..8)) {
            let mut schema = Schema::of(SchemaType::Struct);
            let mut value = Struct::new();
            for (i, (s, v)) in fields.into_iter().enumerate() {
                let name = format!("f{i}");
                schema.fields.push(crate::data::Field { name: name.clone(), schema: s });
                value.put(name, v);
            }
            let value = Value::Struct(value);
            let with = JsonConverter::default();
            let bytes = with.from_connect("t", Some(&schema), &value).unwrap().unwrap();
            let (s2, v2) = with.to_connect("t", Some(&bytes)).unwrap();
            proptest::prop_assert_eq!(s2.as_ref(), Some(&schema));
            proptest::prop_assert_eq!(&v2, &value);
            let without = JsonConverter { schemas_enable: false };
            let plain = without.from_connect("t", None, &value).unwrap().unwrap();
            let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let plain: serde_json::Value = serde_json::from_slice(&plain).unwrap();
            proptest::prop_assert_eq!(&envelope["payload"], &plain);
        }
    }

    #[test]
    fn converters_from_config() {
        let mut p = Props::new();
        p.insert(
            "value.converter".into(),
            "org.apache.kafka.connect.json.JsonConverter".into(),
        );
        p.insert("value.converter.schemas.enable".into(), "false".into());
        let c = converter_from_config("value.converter", &p).unwrap();
        let b = c
            .from_connect("t", None, &Value::Int64(5))
            .unwrap()
            .unwrap();
        assert_eq!(&b[..], b"5");
        p.insert("key.converter".into(), "com.example.Nope".into());
        let err = converter_from_config("key.converter", &p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("key.converter"), "{err}");
    }
}
