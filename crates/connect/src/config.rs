//! Configuration: string properties, `.properties` files, declared config definitions and
//! their validation (the shapes Kafka Connect's `config/validate` endpoint returns).

use crate::error::{ConnectError, Result};
use serde_json::json;
use std::collections::BTreeMap;

/// A connector's, task's or worker's configuration: string keys to string values.
pub type Props = BTreeMap<String, String>;

pub use fjord_common::parse_properties;

/// Reads a `.properties` file.
pub fn read_properties_file(path: &std::path::Path) -> Result<Props> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConnectError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    })?;
    Ok(parse_properties(&text))
}

/// The type of a configuration value, named as Kafka's `ConfigDef.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// Free text.
    String,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// `true` / `false`.
    Boolean,
    /// Comma-separated list.
    List,
    /// A class name.
    Class,
    /// A secret, hidden in responses.
    Password,
}

impl ConfigType {
    fn name(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// How much a setting matters, as in Kafka's `ConfigDef.Importance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
}

/// An extra check on a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    /// A number within `[min, max]`.
    Range {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// One of these strings (case-insensitive).
    OneOf(Vec<&'static str>),
    /// A non-empty string or list.
    NonEmpty,
}

/// One declared configuration key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    /// Key name.
    pub name: &'static str,
    /// Value type.
    pub ty: ConfigType,
    /// Default value; `None` means the key is required.
    pub default: Option<&'static str>,
    /// Importance.
    pub importance: Importance,
    /// Documentation.
    pub doc: &'static str,
    /// Group shown by the validate endpoint.
    pub group: &'static str,
    /// Extra check.
    pub validator: Option<Validator>,
}

/// A connector's (or transformation's) declared configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

/// The outcome of validating one key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    /// Key name.
    pub name: String,
    /// The value given (or the default).
    pub value: Option<String>,
    /// Problems found.
    pub errors: Vec<String>,
}

impl ConfigDef {
    /// An empty definition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a key (builder style).
    pub fn define(
        mut self,
        name: &'static str,
        ty: ConfigType,
        default: Option<&'static str>,
        importance: Importance,
        doc: &'static str,
    ) -> Self {
        self.keys.push(ConfigKey {
            name,
            ty,
            default,
            importance,
            doc,
            group: "Common",
            validator: None,
        });
        self
    }

    /// Adds a validator to the key declared last.
    pub fn with_validator(mut self, validator: Validator) -> Self {
        if let Some(k) = self.keys.last_mut() {
            k.validator = Some(validator);
        }
        self
    }

    /// Puts the key declared last in `group`.
    pub fn in_group(mut self, group: &'static str) -> Self {
        if let Some(k) = self.keys.last_mut() {
            k.group = group;
        }
        self
    }

    /// Appends every key of `other`.
    pub fn merge(mut self, other: ConfigDef) -> Self {
        for k in other.keys {
            if !self.keys.iter().any(|e| e.name == k.name) {
                self.keys.push(k);
            }
        }
        self
    }

    /// The declared keys.
    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    /// Validates every declared key of `props`.
    pub fn validate(&self, props: &Props) -> Vec<ConfigValue> {
        self.keys
            .iter()
            .map(|k| {
                let value = props
                    .get(k.name)
                    .cloned()
                    .or_else(|| k.default.map(str::to_string));
                let errors = match &value {
                    None => vec![format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        k.name
                    )],
                    Some(v) => check_value(k, v).err().into_iter().collect(),
                };
                ConfigValue {
                    name: k.name.to_string(),
                    value,
                    errors,
                }
            })
            .collect()
    }

    /// Validates and returns the first problem as a [`ConnectError::Config`].
    pub fn check(&self, props: &Props) -> Result<()> {
        for v in self.validate(props) {
            if let Some(e) = v.errors.first() {
                return Err(ConnectError::config(v.name, e.clone()));
            }
        }
        Ok(())
    }

    /// Kafka Connect's `ConfigInfos` JSON for the validate endpoint.
    pub fn infos_json(&self, connector_name: &str, props: &Props) -> serde_json::Value {
        let values = self.validate(props);
        let mut groups: Vec<&str> = Vec::new();
        for k in &self.keys {
            if !groups.contains(&k.group) {
                groups.push(k.group);
            }
        }
        let error_count: usize = values.iter().map(|v| v.errors.len()).sum();
        let configs: Vec<serde_json::Value> = self
            .keys
            .iter()
            .zip(values)
            .enumerate()
            .map(|(order, (k, v))| {
                let shown = if k.ty == ConfigType::Password {
                    v.value.as_ref().map(|_| "[hidden]".to_string())
                } else {
                    v.value
                };
                json!({
                    "definition": {
                        "name": k.name,
                        "type": k.ty.name(),
                        "required": k.default.is_none(),
                        "default_value": k.default,
                        "importance": match k.importance {
                            Importance::High => "HIGH",
                            Importance::Medium => "MEDIUM",
                            Importance::Low => "LOW",
                        },
                        "documentation": k.doc,
                        "group": k.group,
                        "width": "NONE",
                        "display_name": k.name,
                        "dependents": [],
                        "order": order as i64 + 1,
                    },
                    "value": {
                        "name": k.name,
                        "value": shown,
                        "recommended_values": match &k.validator {
                            Some(Validator::OneOf(v)) => v.clone(),
                            _ => vec![],
                        },
                        "errors": v.errors,
                        "visible": true,
                    }
                })
            })
            .collect();
        json!({
            "name": connector_name,
            "error_count": error_count,
            "groups": groups,
            "configs": configs,
        })
    }
}

fn check_value(k: &ConfigKey, v: &str) -> std::result::Result<(), String> {
    let t = v.trim();
    let number = match k.ty {
        ConfigType::Int => Some(t.parse::<i32>().map(i64::from).map_err(|_| {
            format!(
                "Invalid value {v} for configuration {}: Not a number of type INT",
                k.name
            )
        })?),
        ConfigType::Long => Some(t.parse::<i64>().map_err(|_| {
            format!(
                "Invalid value {v} for configuration {}: Not a number of type LONG",
                k.name
            )
        })?),
        ConfigType::Double => {
            t.parse::<f64>().map_err(|_| {
                format!(
                    "Invalid value {v} for configuration {}: Not a number of type DOUBLE",
                    k.name
                )
            })?;
            None
        }
        ConfigType::Boolean => {
            if !t.eq_ignore_ascii_case("true") && !t.eq_ignore_ascii_case("false") {
                return Err(format!(
                    "Invalid value {v} for configuration {}: Expected value to be either true or false",
                    k.name
                ));
            }
            None
        }
        _ => None,
    };
    match &k.validator {
        Some(Validator::Range { min, max }) => {
            if let Some(n) = number {
                if n < *min || n > *max {
                    return Err(format!(
                        "Invalid value {v} for configuration {}: Value must be in [{min}, {max}]",
                        k.name
                    ));
                }
            }
        }
        Some(Validator::OneOf(options)) if !options.iter().any(|o| o.eq_ignore_ascii_case(t)) => {
            return Err(format!(
                "Invalid value {v} for configuration {}: String must be one of: {}",
                k.name,
                options.join(", ")
            ));
        }
        Some(Validator::NonEmpty) if t.is_empty() => {
            return Err(format!(
                "Invalid value for configuration {}: String may not be empty",
                k.name
            ));
        }
        Some(Validator::OneOf(_)) | Some(Validator::NonEmpty) => {}
        None => {}
    }
    Ok(())
}

/// Typed access to [`Props`] with errors that name the key.
pub trait PropsExt {
    /// A required string.
    fn required(&self, key: &str) -> Result<&str>;
    /// A string or `default`.
    fn string_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str;
    /// A number or `default`.
    fn i64_or(&self, key: &str, default: i64) -> Result<i64>;
    /// A boolean or `default`.
    fn bool_or(&self, key: &str, default: bool) -> Result<bool>;
    /// A comma-separated list (empty entries dropped).
    fn list(&self, key: &str) -> Vec<String>;
}

impl PropsExt for Props {
    fn required(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(v) if !v.trim().is_empty() => Ok(v.as_str()),
            _ => Err(ConnectError::config(
                key,
                format!("Missing required configuration \"{key}\" which has no default value."),
            )),
        }
    }

    fn string_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).map(String::as_str).unwrap_or(default)
    }

    fn i64_or(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConnectError::config(key, format!("'{v}' is not a number"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(ConnectError::config(
                key,
                format!("'{v}' is not true or false"),
            )),
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_with_comments_continuations_and_separators() {
        let p = parse_properties(
            "# comment\n! also\nname=local-file-source\nconnector.class : FileStreamSource\n\
             tasks.max 1\nfile=/tmp/a\\\n  b.txt\ntransforms.x.regex=a\\=b\n",
        );
        assert_eq!(p["name"], "local-file-source");
        assert_eq!(p["connector.class"], "FileStreamSource");
        assert_eq!(p["tasks.max"], "1");
        assert_eq!(p["file"], "/tmp/ab.txt");
        assert_eq!(p["transforms.x.regex"], "a=b");
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn validation_reports_missing_wrong_type_and_range() {
        let def = ConfigDef::new()
            .define("file", ConfigType::String, None, Importance::High, "file")
            .define("batch", ConfigType::Int, Some("10"), Importance::Low, "b")
            .with_validator(Validator::Range { min: 1, max: 100 })
            .define(
                "mode",
                ConfigType::String,
                Some("bulk"),
                Importance::High,
                "m",
            )
            .with_validator(Validator::OneOf(vec!["bulk", "incrementing"]));
        let mut props = Props::new();
        props.insert("batch".into(), "1000".into());
        props.insert("mode".into(), "nope".into());
        let values = def.validate(&props);
        assert!(values[0].errors[0].contains("Missing required configuration \"file\""));
        assert!(values[1].errors[0].contains("[1, 100]"));
        assert!(values[2].errors[0].contains("bulk, incrementing"));
        let infos = def.infos_json("X", &props);
        assert_eq!(infos["error_count"], 3);
        assert_eq!(infos["configs"][0]["definition"]["required"], true);
        assert_eq!(infos["configs"][1]["value"]["value"], "1000");
        match def.check(&props) {
            Err(ConnectError::Config { key, .. }) => assert_eq!(key, "file"),
            other => panic!("expected a config error, got {other:?}"),
        }
        props.insert("file".into(), "/x".into());
        props.insert("batch".into(), "abc".into());
        assert!(def.validate(&props)[1].errors[0].contains("Not a number"));
    }

    #[test]
    fn props_ext_names_the_key() {
        let mut p = Props::new();
        p.insert("n".into(), "x".into());
        let err = p.i64_or("n", 1).unwrap_err().to_string();
        assert!(err.contains("configuration n"), "{err}");
        assert!(p
            .required("missing")
            .unwrap_err()
            .to_string()
            .contains("missing"));
        p.insert("l".into(), "a, b,,c".into());
        assert_eq!(p.list("l"), vec!["a", "b", "c"]);
    }
}
