//! Extractors and helpers shared by the API handlers: JSON bodies that must
//! say they are JSON, domain field errors turned into API field errors,
//! wire timestamps and cursor errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::error::{ApiError, FieldError};

/// A JSON request body: `Content-Type` must be `application/json` (or a
/// `+json` type), else **415**; the body must parse into `T`, else **400**
/// naming the field. Unknown fields are refused by the `T`s themselves.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if !ct.as_deref().is_some_and(is_json_media_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the body as `Content-Type: application/json` (got {})",
                ct.as_deref().map(|c| format!("`{c}`")).unwrap_or_else(|| "none".into())
            )));
        }
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(e.body_text())
            } else {
                ApiError::field("body", e.body_text())
            }
        })?;
        json_body(&body).map(JsonBody)
    }
}

/// `application/json`, `application/problem+json`, … with any parameters.
pub fn is_json_media_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, naming the field a problem is at. Objects must be
/// JSON objects: serde would also take a struct from an array of its field
/// values (`"schedule": [null, null]`), which the API does not accept.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::field("body", "a JSON body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = T::deserialize(strict::Strict(&mut de)).map_err(|e| ApiError::field("body", e.to_string()))?;
    de.end().map_err(|e| ApiError::field("body", e.to_string()))?;
    Ok(value)
}

/// A deserializer adapter under which a struct can only be read from a map
/// (a JSON object), at any depth: `deserialize_struct` becomes
/// `deserialize_map`, and every nested value is read through the adapter.
mod strict {
    use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

    pub(super) struct Strict<D>(pub(super) D);
    struct StrictVisitor<V>(V);
    struct StrictSeed<S>(S);
    struct StrictAccess<A>(A);

    macro_rules! forward_deserializer {
        ($($method:ident)*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(StrictVisitor(visitor))
            }
        )*};
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
        type Error = D::Error;

        forward_deserializer! {
            deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
            deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
            deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
            deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq deserialize_map
            deserialize_identifier deserialize_ignored_any
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_unit_struct(name, StrictVisitor(v))
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_newtype_struct(name, StrictVisitor(v))
        }

        fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
            self.0.deserialize_tuple(len, StrictVisitor(v))
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            v: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_tuple_struct(name, len, StrictVisitor(v))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, D::Error> {
            // A map only: an array is refused with the visitor's own "expected struct X".
            self.0.deserialize_map(StrictVisitor(v))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_enum(name, variants, v)
        }

        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
        type Value = S::Value;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
            self.0.deserialize(Strict(d))
        }
    }

    impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for StrictAccess<A> {
        type Error = A::Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
            self.0.next_element_seed(StrictSeed(seed))
        }

        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for StrictAccess<A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
            self.0.next_key_seed(StrictSeed(seed))
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
            self.0.next_value_seed(StrictSeed(seed))
        }

        fn size_hint(&self) -> Option<usize> {
            self.0.size_hint()
        }
    }

    macro_rules! forward_visitor {
        ($($method:ident($ty:ty))*) => {$(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.0.$method(v)
            }
        )*};
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.expecting(f)
        }

        forward_visitor! {
            visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
            visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128) visit_f32(f32)
            visit_f64(f64) visit_char(char) visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
            visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
        }

        fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
            self.0.visit_none()
        }

        fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
            self.0.visit_unit()
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            self.0.visit_some(Strict(d))
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            self.0.visit_newtype_struct(Strict(d))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
            self.0.visit_seq(StrictAccess(seq))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
            self.0.visit_map(StrictAccess(map))
        }

        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
            self.0.visit_enum(data)
        }
    }
}

/// A timestamp on the wire: RFC 3339 UTC with milliseconds.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A store `Invalid` on a list is always about the cursor.
pub fn cursor_error(e: switchboard_storage::StoreError) -> ApiError {
    match e {
        switchboard_storage::StoreError::Invalid(reason) => ApiError::field("cursor", reason),
        other => other.into(),
    }
}

/// Domain field errors → API field errors.
pub fn field_errors(errs: Vec<switchboard_domain::FieldError>) -> ApiError {
    ApiError::Validation(errs.into_iter().map(|e| FieldError { field: e.field, reason: e.reason }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<u32>,
        b: Option<String>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
        free: Option<serde_json::Value>,
    }

    #[test]
    fn structs_are_read_from_objects_only_at_any_depth() {
        let ok: Outer = json_body(br#"{"inner": {"a": 1}, "list": [{"b": "x"}], "free": [1, {"k": [2]}]}"#).unwrap();
        assert_eq!(ok.inner, Some(Inner { a: Some(1), b: None }));
        assert_eq!(ok.free, Some(serde_json::json!([1, {"k": [2]}])));
        for bad in [
            &br#"[null, null, null]"#[..],
            br#"{"inner": [1, "x"]}"#,
            br#"{"list": [[1, "x"]]}"#,
            br#"{"inner": {"a": 1, "c": 2}}"#,
            br#"{"inner": {"a": 1}} trailing"#,
        ] {
            let err = json_body::<Outer>(bad).unwrap_err();
            assert!(
                matches!(err, ApiError::Validation(ref e) if e[0].field == "body"),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn json_media_types_are_recognised_with_parameters() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/jsonp"));
        assert!(!is_json_media_type(""));
    }
}
