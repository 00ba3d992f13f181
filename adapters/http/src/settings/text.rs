//! A serde deserializer over `(name, text)` pairs: every value arrives as text (an environment
//! variable, a `[vars]` entry) and is parsed into whatever type its field has. An error names
//! the field it happened in, so the message an operator reads names the setting.

use super::SettingError;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use std::fmt;

/// Deserializes `T` (a struct whose fields are named by the pairs' names) from the pairs.
pub(super) fn from_pairs<T: DeserializeOwned>(pairs: &[(String, String)]) -> Result<T, SettingError> {
    let mut failed = None;
    let result = T::deserialize(Pairs { pairs, next: 0, failed: &mut failed });
    match (result, failed) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(SettingError::new("settings", e.0)),
    }
}

/// The field names of struct `T`, as serde knows them (after `rename`).
pub(super) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut found = None;
    let _ = T::deserialize(Probe(&mut found));
    found.unwrap_or(&[])
}

/// A setting's value could not be read.
#[derive(Debug)]
pub(super) struct Fault(String);

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fault {}

impl de::Error for Fault {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Fault(msg.to_string())
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        match unexp {
            Unexpected::Unsigned(0) => Fault("must be at least 1".into()),
            Unexpected::Str(s) => Fault(format!("'{s}' is not {exp}")),
            _ => Fault(format!("{unexp} is not {exp}")),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Fault(format!("'{variant}' is not one of: {}", expected.join(", ")))
    }
}

struct Pairs<'a> {
    pairs: &'a [(String, String)],
    next: usize,
    failed: &'a mut Option<SettingError>,
}

impl<'de> de::Deserializer<'de> for Pairs<'de> {
    type Error = Fault;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        visitor.visit_map(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for Pairs<'de> {
    type Error = Fault;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Fault> {
        match self.pairs.get(self.next) {
            Some((name, _)) => seed.deserialize(name.as_str().into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Fault> {
        let (name, text) = &self.pairs[self.next];
        self.next += 1;
        seed.deserialize(Text(text)).inspect_err(|e| {
            self.failed.get_or_insert_with(|| SettingError::new(name.clone(), e.0.clone()));
        })
    }
}

/// One value, as text.
struct Text<'de>(&'de str);

impl Text<'_> {
    fn whole<T: std::str::FromStr + fmt::Display>(&self, max: T) -> Result<T, Fault> {
        self.0.parse().map_err(|_| Fault(format!("'{}' is not a whole number from 0 to {max}", self.0)))
    }
}

macro_rules! whole_numbers {
    ($($method:ident $visit:ident $ty:ty),*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
            visitor.$visit(self.whole::<$ty>(<$ty>::MAX)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Text<'de> {
    type Error = Fault;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        visitor.visit_borrowed_str(self.0)
    }

    whole_numbers!(deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64);

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(Fault(format!("'{other}' is not true or false"))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fault> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Fault> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fault> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// Records a struct's field names and stops.
struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Fault;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fault> {
        Err(Fault("only structs have field names".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fault> {
        *self.0 = Some(fields);
        Err(Fault("field names recorded".into()))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}
