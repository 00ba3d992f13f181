//! Reading a create body into a [`Draft`], or saying exactly what is wrong with it.

use crypt_domain::Draft;
use std::fmt;

/// What a JSON value turned out to be, for saying what was expected instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`
    Null,
    /// `true` or `false`
    Bool,
    /// a number
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// Why a create body is not a valid request. Its `Display` is the `detail` a client is shown;
/// it never quotes the body (which may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("the body is empty")]
    Empty,
    /// Not JSON: cut short, malformed, trailing characters, or not UTF-8.
    #[error("the body is not valid JSON (line {line}, column {column})")]
    Syntax {
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
    },
    /// Bytes that are not UTF-8 (JSON is UTF-8, RFC 8259), anywhere in the body.
    #[error("the body is not UTF-8 (line {line}, column {column})")]
    NotUtf8 {
        /// Where the first byte that is not UTF-8 is.
        line: usize,
        /// Where the first byte that is not UTF-8 is.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("the body must be a JSON object like {{\"message\": \"...\"}}, not {0}")]
    NotAnObject(JsonKind),
    /// An object without `message`.
    #[error("the field 'message' is missing")]
    MessageMissing,
    /// `message` is there but is not a string.
    #[error("the field 'message' must be a string, not {0}")]
    MessageNotAString(JsonKind),
    /// `message` is empty or only whitespace (the domain's rule, [`crypt_domain::Message::new`]).
    #[error("the field 'message' is empty or only whitespace")]
    MessageBlank,
    /// A file create (`application/octet-stream`) with no bytes.
    #[error("the file is empty: an application/octet-stream body is the file's bytes")]
    FileEmpty,
}

/// The create body, read in one pass. Each field records what JSON type it had, so each way
/// it can be wrong gets its own sentence (a plain derived struct would only say "invalid type"),
/// and the message text is unescaped straight into its `String`, the one allocation.
///
/// A key given twice keeps its last value, as JavaScript's `JSON.parse` (the reference's parser)
/// does; serde's derived struct would refuse the body instead.
#[derive(Default)]
struct CreateBody {
    message: Field<String>,
    ttl: Field<u64>,
    views: Field<u64>,
}

impl<'de> serde::Deserialize<'de> for CreateBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CreateBodyVisitor)
    }
}

struct CreateBodyVisitor;

impl<'de> serde::de::Visitor<'de> for CreateBodyVisitor {
    type Value = CreateBody;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CreateBody, A::Error> {
        let mut body = CreateBody::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Message => body.message = map.next_value()?,
                Key::Ttl => body.ttl = map.next_value()?,
                Key::Views => body.views = map.next_value()?,
                Key::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(body)
    }
}

/// A key of the create body: the three read, and every other.
enum Key {
    Message,
    Ttl,
    Views,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "message" => Key::Message,
                    "ttl" => Key::Ttl,
                    "views" => Key::Views,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A field: absent, of the expected type, or of another type (`null` included).
#[derive(Default)]
enum Field<T> {
    #[default]
    Absent,
    Valid(T),
    WrongType(JsonKind),
}

impl<'de> serde::Deserialize<'de> for Field<String> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData::<String>))
    }
}

impl<'de> serde::Deserialize<'de> for Field<u64> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor(std::marker::PhantomData::<u64>))
    }
}

struct FieldVisitor<T>(std::marker::PhantomData<T>);

/// What a visitor does with each JSON type: the expected one is kept, any other is recorded as
/// wrong (arrays and objects are read through and dropped, so parsing goes on).
macro_rules! wrong_types {
    ($($method:ident($ty:ty) => $kind:ident),*) => {
        $(fn $method<E: serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Field::WrongType(JsonKind::$kind))
        })*
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Field::WrongType(JsonKind::Null))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::WrongType(JsonKind::Array))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(Field::WrongType(JsonKind::Object))
        }
    };
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor<String> {
    type Value = Field<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Valid(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Valid(v))
    }
    wrong_types!(visit_bool(bool) => Bool, visit_i64(i64) => Number, visit_u64(u64) => Number, visit_f64(f64) => Number);
}

impl<'de> serde::de::Visitor<'de> for FieldVisitor<u64> {
    type Value = Field<u64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Valid(v))
    }
    /// `60.0` is the whole number 60 (as JSON Schema and OpenAPI count it); `60.5` is not.
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
            Ok(Field::Valid(v as u64))
        } else {
            Ok(Field::WrongType(JsonKind::Number))
        }
    }
    wrong_types!(visit_bool(bool) => Bool, visit_i64(i64) => Number, visit_str(&str) => String);
}

fn syntax(e: &serde_json::Error) -> ParseError {
    ParseError::Syntax { line: e.line(), column: e.column() }
}

/// The kind of the JSON value that starts at `first` (a non-whitespace byte).
fn kind_of(first: u8) -> JsonKind {
    match first {
        b'[' => JsonKind::Array,
        b'"' => JsonKind::String,
        b'n' => JsonKind::Null,
        b't' | b'f' => JsonKind::Bool,
        b'{' => JsonKind::Object,
        _ => JsonKind::Number,
    }
}

/// Turns a create body into a [`Draft`], or says what is wrong with it, in the order the
/// reference checks: JSON first, then `message`. A `ttl` that is not a whole number of seconds
/// becomes `Some(0)`, which no policy allows (the smallest is 1), so the domain's one range
/// check answers for it with the allowed range; `views` likewise.
pub(crate) fn parse_draft(body: &[u8]) -> Result<Draft, ParseError> {
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(ParseError::Empty);
    };
    // The whole body, not only the strings crypt reads: serde_json skips a field it does not
    // read without checking its bytes (found by fuzzing), so a body with bad bytes in an
    // ignored field would have been accepted and one with them in `message` refused.
    let body = std::str::from_utf8(body).map_err(|e| {
        let before = &body[..e.valid_up_to()];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        ParseError::NotUtf8 {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: before.len() - line_start + 1,
        }
    })?;
    // A derived struct would also accept an array; anything but an object is refused here,
    // once it is known to be JSON at all.
    if first != b'{' {
        serde_json::from_str::<serde::de::IgnoredAny>(body).map_err(|e| syntax(&e))?;
        return Err(ParseError::NotAnObject(kind_of(first)));
    }
    let fields: CreateBody = serde_json::from_str(body).map_err(|e| syntax(&e))?;
    let message = match fields.message {
        Field::Absent => return Err(ParseError::MessageMissing),
        Field::WrongType(kind) => return Err(ParseError::MessageNotAString(kind)),
        Field::Valid(text) => text,
    };
    let ttl_secs = match fields.ttl {
        Field::Absent => None,
        Field::Valid(secs) => Some(secs),
        Field::WrongType(_) => Some(0),
    };
    let views = match fields.views {
        Field::Absent => None,
        Field::Valid(n) => Some(n),
        Field::WrongType(_) => Some(0),
    };
    Ok(Draft { message: message.into(), ttl_secs, views })
}

/// True when a create's `Content-Type` is `application/octet-stream` (any case, with or without
/// parameters): a file, whose body is the message's bytes (SPEC Part 2 item 11). Every other
/// type, or none, is Part 1's JSON, whatever it says.
pub(crate) fn is_file(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/octet-stream")
    })
}

/// A file create: the body is the message, `ttl` and `views` come from the query string. As
/// in a JSON body, a value that is not a whole number (only the digits 0-9) becomes `Some(0)`,
/// which the domain's range check answers; a key given twice keeps its last value; other keys
/// are ignored.
///
/// # Errors
/// [`ParseError::FileEmpty`] when the body has no bytes.
pub(crate) fn parse_file_draft(query: Option<&str>, body: bytes::Bytes) -> Result<Draft, ParseError> {
    if body.is_empty() {
        return Err(ParseError::FileEmpty);
    }
    let (mut ttl_secs, mut views) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || Some(value).filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        let parsed = number().map_or(Some(0), |digits| Some(digits.parse::<u64>().unwrap_or(u64::MAX)));
        match key {
            "ttl" => ttl_secs = parsed,
            "views" => views = parsed,
            _ => {}
        }
    }
    Ok(Draft { message: crypt_domain::Content::File(body), ttl_secs, views })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_is_named_without_quoting_the_body() {
        let cases: [(&str, ParseError); 11] = [
            ("", ParseError::Empty),
            (" \n\t ", ParseError::Empty),
            ("{\"message\": \"secret", ParseError::Syntax { line: 1, column: 19 }),
            ("{secret: 1}", ParseError::Syntax { line: 1, column: 2 }),
            ("null", ParseError::NotAnObject(JsonKind::Null)),
            ("[]", ParseError::NotAnObject(JsonKind::Array)),
            ("\"text\"", ParseError::NotAnObject(JsonKind::String)),
            ("42", ParseError::NotAnObject(JsonKind::Number)),
            ("{}", ParseError::MessageMissing),
            (r#"{"message": 0}"#, ParseError::MessageNotAString(JsonKind::Number)),
            (r#"{"message": null}"#, ParseError::MessageNotAString(JsonKind::Null)),
        ];
        for (body, want) in cases {
            let got = parse_draft(body.as_bytes()).unwrap_err();
            assert_eq!(got, want, "{body:?}");
            assert!(!got.to_string().contains("secret"), "{got}");
        }
    }

    #[test]
    fn a_file_create_reads_ttl_and_views_from_the_query() {
        let draft = |q: Option<&str>| {
            let d = parse_file_draft(q, bytes::Bytes::from_static(b"\xff")).unwrap();
            (d.ttl_secs, d.views)
        };
        assert_eq!(draft(None), (None, None));
        assert_eq!(draft(Some("")), (None, None));
        assert_eq!(draft(Some("ttl=3600&views=2")), (Some(3600), Some(2)));
        assert_eq!(draft(Some("views=2&ttl=60&ttl=90&other=x")), (Some(90), Some(2)));
        for bad in ["ttl=", "ttl", "ttl=-1", "ttl=1.5", "ttl=%36%30", "ttl=+60", "ttl= 60"] {
            assert_eq!(draft(Some(bad)).0, Some(0), "{bad}");
        }
        // Too many digits for a u64 is still a whole number, just out of every range.
        assert_eq!(draft(Some("views=99999999999999999999999")).1, Some(u64::MAX));
        let d = parse_file_draft(None, bytes::Bytes::from_static(b"\x00\xff")).unwrap();
        assert_eq!(parse_file_draft(Some("ttl=60"), bytes::Bytes::new()).unwrap_err(), ParseError::FileEmpty);
        assert_eq!(d.message, crypt_domain::Content::File(bytes::Bytes::from_static(b"\x00\xff")));
    }

    #[test]
    fn only_octet_stream_is_a_file() {
        let with = |ct: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_str(ct).unwrap());
            is_file(&h)
        };
        for yes in ["application/octet-stream", "Application/Octet-Stream", "application/octet-stream; x=1"] {
            assert!(with(yes), "{yes}");
        }
        for no in ["application/json", "application/x-www-form-urlencoded", "text/plain", "application/octet"] {
            assert!(!with(no), "{no}");
        }
        assert!(!is_file(&http::HeaderMap::new()));
    }

    #[test]
    fn a_ttl_of_the_wrong_type_is_one_no_policy_allows() {
        for ttl in ["-1", "1.5", "\"60\"", "true", "null", "[60]", "1e300"] {
            let d = parse_draft(format!(r#"{{"message":"x","ttl":{ttl}}}"#).as_bytes()).unwrap();
            assert_eq!(d.ttl_secs, Some(0), "{ttl}");
        }
        assert_eq!(parse_draft(br#"{"message":"x"}"#).unwrap().ttl_secs, None);
        assert_eq!(parse_draft(br#"{"message":"x","ttl":90}"#).unwrap().ttl_secs, Some(90));
        assert_eq!(parse_draft(br#"{"message":"x","ttl":90.0}"#).unwrap().ttl_secs, Some(90));
    }

    #[test]
    fn views_of_the_wrong_type_are_zero_and_whole_numbers_are_kept() {
        for views in ["-1", "2.5", "\"3\"", "true", "null", "[3]", "{}", "1e300"] {
            let d = parse_draft(format!(r#"{{"message":"x","views":{views}}}"#).as_bytes()).unwrap();
            assert_eq!(d.views, Some(0), "{views}");
        }
        assert_eq!(parse_draft(br#"{"message":"x"}"#).unwrap().views, None);
        assert_eq!(parse_draft(br#"{"message":"x","views":3}"#).unwrap().views, Some(3));
        assert_eq!(parse_draft(br#"{"message":"x","views":3.0}"#).unwrap().views, Some(3));
        assert_eq!(parse_draft(br#"{"message":"x","views":101}"#).unwrap().views, Some(101));
    }
}
