//! Typed parameters of plugins, read from a sweep's RON and resolved.
//!
//! Every objective, reward and metric declares one parameter type (serde, `Default`,
//! `deny_unknown_fields`; enum choices in RON's own syntax, `look_ahead: Base`). A sweep writes
//! some of its fields, an override may patch some; [`ParamsText`] keeps each written field with
//! where it came from, so that the typed parse reports `file:line:col` of the offending value
//! even after patches are merged in. The *resolved* text — the parsed value with every default
//! filled in, serialised canonically — is what a run's `config.ron` stores and its id hashes:
//! a default changed in code changes the id of every run that relied on it.

use std::fmt;
use std::ops::Range;

use ron::value::RawValue;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::source::{byte_offset, explain, ron_options, Source};
use crate::validate::{Invalid, Validate};

/// A plugin's parameter type. Every serde struct with a `Default` (and `deny_unknown_fields`,
/// so that a misspelt field is an error) that says what ranges its values take ([`Validate`])
/// is one; [`Family`] composes an objective's own fields with a family's shared ones, written
/// flat.
pub trait Params: Clone + fmt::Debug + Send + Sync + 'static {
    /// The value of the written fields, every other field taking its default.
    ///
    /// # Errors
    /// An unknown field, a value of the wrong type or a bad choice, as `file:line:col: message`.
    fn from_fields(fields: &ParamsText, source: &Source) -> Result<Self, String>;

    /// Every field as canonical RON (pretty, in declaration order): equal values, equal text.
    fn canonical(&self) -> String;

    fn defaults() -> Self;

    /// The names of the fields, in order.
    fn field_names() -> Vec<String> {
        let text = Self::defaults().canonical();
        let source = Source::new("defaults", text);
        ParamsText::parse(&source, &source.text)
            .map(|p| p.fields.into_iter().map(|f| f.name).collect())
            .unwrap_or_default()
    }
}

impl<T> Params for T
where
    T: Serialize
        + DeserializeOwned
        + Default
        + Validate
        + Clone
        + fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fn from_fields(fields: &ParamsText, source: &Source) -> Result<Self, String> {
        let value = fields.parse_as::<T>(source)?;
        value
            .validate()
            .map_err(|e| fields.locate_invalid(&e, source))?;
        Ok(value)
    }

    fn canonical(&self) -> String {
        canonical(self)
    }

    fn defaults() -> Self {
        T::default()
    }

    /// The struct's declared fields, those left out of [`Params::canonical`] at their default
    /// included.
    fn field_names() -> Vec<String> {
        declared_fields::<T>().unwrap_or_else(|| {
            let text = Self::defaults().canonical();
            let source = Source::new("defaults", text);
            ParamsText::parse(&source, &source.text)
                .map(|p| p.fields.into_iter().map(|f| f.name).collect())
                .unwrap_or_default()
        })
    }
}

/// The field names a serde struct declares, read off its `Deserialize` implementation (which
/// hands them to `deserialize_struct`); `None` for anything else.
fn declared_fields<'de, T: Deserialize<'de>>() -> Option<Vec<String>> {
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(serde::de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields = None;
    let _ = T::deserialize(Probe(&mut fields));
    fields.map(|f| f.iter().map(|s| (*s).to_string()).collect())
}

/// The parameters of a plugin that has none: `()`, and any field written is an error that
/// names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Validate for NoParams {}

/// One written field: its name, its RON text, and where that text begins in its source.
#[derive(Clone, Debug, PartialEq)]
struct Field {
    name: String,
    value: String,
    at: usize,
}

/// A component's parameter fields as written, in order, each with its source position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamsText {
    fields: Vec<Field>,
    /// Where the parameters (or the component, when it wrote none) begin in the source.
    at: usize,
}

/// Fields of a RON struct `(k: v, …)`, map `{"k": v, …}` or unit `()`, values kept as text.
struct RawFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("parameters as a struct `(name: value, …)`")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<RawFields<'a>, M::Error> {
                let mut out = vec![];
                while let Some(k) = m.next_key::<String>()? {
                    out.push((k, m.next_value::<&'de RawValue>()?));
                }
                Ok(RawFields(out))
            }
            fn visit_unit<E>(self) -> Result<RawFields<'a>, E> {
                Ok(RawFields(vec![]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl ParamsText {
    /// No fields written (every default), positioned at `at` in its source.
    pub fn empty(at: usize) -> Self {
        Self { fields: vec![], at }
    }

    /// The fields of `raw`, a slice of `source`'s text holding a struct, a map or `()`.
    ///
    /// # Errors
    /// Anything else, as `file:line:col: message`.
    pub fn parse(source: &Source, raw: &str) -> Result<Self, String> {
        let fields: RawFields = source.parse(raw)?;
        Ok(Self {
            fields: fields
                .0
                .into_iter()
                .map(|(name, value)| Field {
                    name,
                    value: value.get_ron().trim().to_string(),
                    at: source.offset_of(value.get_ron()),
                })
                .collect(),
            at: source.offset_of(raw),
        })
    }

    /// Replaces (or adds) the fields that `patch` writes.
    pub fn patch(&mut self, patch: &ParamsText) {
        for f in &patch.fields {
            self.fields.retain(|g| g.name != f.name);
            self.fields.push(f.clone());
        }
    }

    /// Whether any field is written.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields as one RON struct, and each value's range in it.
    fn merged(&self) -> (String, Vec<Range<usize>>) {
        let mut text = String::from("(");
        let mut ranges = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            text.push_str(&f.name);
            text.push_str(": ");
            let start = text.len();
            text.push_str(&f.value);
            ranges.push(start..text.len());
            text.push_str(", ");
        }
        text.push(')');
        (text, ranges)
    }

    /// Parses the fields as `P`, every field not written taking `P`'s default.
    ///
    /// # Errors
    /// An unknown field, a value of the wrong type or a bad choice, as `file:line:col: message`
    /// at the value (or field) at fault.
    pub fn parse_as<P: DeserializeOwned>(&self, source: &Source) -> Result<P, String> {
        let (text, ranges) = self.merged();
        ron_options().from_str::<P>(&text).map_err(|e| {
            let at = byte_offset(&text, e.position.line, e.position.col);
            format!(
                "{}: {}",
                source.locate(self.origin(&ranges, at)),
                explain(&e.code)
            )
        })
    }

    /// The source offset of byte `at` of the merged text: inside a value, the same character
    /// of the written value; between fields (a field's name), the next field's value.
    fn origin(&self, ranges: &[Range<usize>], at: usize) -> usize {
        let current = ranges.iter().rposition(|r| r.start <= at);
        match current {
            Some(i) if at <= ranges[i].end => self.fields[i].at + (at - ranges[i].start),
            Some(i) if i + 1 < self.fields.len() => self.fields[i + 1].at,
            Some(i) => self.fields[i].at,
            None => self.fields.first().map_or(self.at, |f| f.at),
        }
    }

    /// `file:line:col: message` of a value out of range, at the field written for it (its top
    /// level for a nested one), or where the parameters begin when it was not written.
    pub fn locate_invalid(&self, invalid: &Invalid, source: &Source) -> String {
        let top = invalid.field.split('.').next().unwrap_or_default();
        let at = self
            .fields
            .iter()
            .rev()
            .find(|f| f.name == top)
            .map_or(self.at, |f| f.at);
        format!("{}: {invalid}", source.locate(at))
    }

    /// The resolved text of these fields as `P`: see the module's documentation.
    ///
    /// # Errors
    /// As [`Params::from_fields`].
    pub fn resolve<P: Params>(&self, source: &Source) -> Result<String, String> {
        Ok(P::from_fields(self, source)?.canonical())
    }

    /// The fields of canonical text, positioned at `at` of another source (the text is not
    /// the user's: an error in it would be a bug, reported where the parameters began).
    fn from_canonical(text: &str, at: usize) -> Self {
        let source = Source::new("canonical", text);
        let mut fields = Self::parse(&source, &source.text).unwrap_or_default();
        fields.at = at;
        for f in &mut fields.fields {
            f.at = at;
        }
        fields
    }

    /// Canonical struct text of fields whose values are canonical.
    fn write_struct(fields: &[Field]) -> String {
        let fields: Vec<String> = fields
            .iter()
            .map(|f| format!("{}: {}", f.name, f.value))
            .collect();
        format!("({})", fields.join(", "))
    }
}

/// Parameters as canonical RON: every field, in declaration order, on one line
/// (`(beta: 1.0, optim: (lr: 0.0003))`). Equal values give equal text, so the text can be
/// hashed.
pub fn canonical<P: Serialize>(params: &P) -> String {
    let config = ron::ser::PrettyConfig::new()
        .compact_structs(true)
        .compact_arrays(true)
        .compact_maps(true);
    ron::ser::to_string_pretty(params, config).expect("plugin parameters serialise to RON")
}

/// The fields of canonical (or any struct-shaped) RON text, as `(name, value text)` in order;
/// empty when the text is not a struct (what tables compare runs by).
pub fn fields_of(text: &str) -> Vec<(String, String)> {
    let source = Source::new("fields", text);
    ParamsText::parse(&source, &source.text)
        .map(|p| p.fields.into_iter().map(|f| (f.name, f.value)).collect())
        .unwrap_or_default()
}

/// Reads resolved text back (the run's own `config.ron`).
///
/// # Errors
/// Text that does not parse as `P` (a run directory written by another version).
pub fn from_resolved<P: Params>(text: &str) -> Result<P, String> {
    let source = Source::new("resolved parameters", text);
    P::from_fields(&ParamsText::parse(&source, &source.text)?, &source)
}

/// An objective's own fields within a family of objectives: which of the family's shared
/// defaults it changes (∇-GFlowNet's residual DB samples 64 trajectories where DAG samples 512).
pub trait FamilyMember<S: Params>: Params {
    fn shared_defaults() -> S {
        S::defaults()
    }
}

/// The parameters of an objective in a family: its own fields and the family's shared ones,
/// written flat in one struct (`params: (tilted: true, beta: 2.0)`). Fields are told apart by
/// name, each part keeps its own types and checks, and a name neither knows is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<O, S> {
    pub own: O,
    pub shared: S,
}

impl<O: FamilyMember<S>, S: Params> Params for Family<O, S> {
    /// Each part validates itself as it is parsed.
    fn from_fields(fields: &ParamsText, source: &Source) -> Result<Self, String> {
        let (own_names, shared_names) = (O::field_names(), S::field_names());
        let mut own = ParamsText::empty(fields.at);
        let mut shared = ParamsText::empty(fields.at);
        for f in &fields.fields {
            if own_names.contains(&f.name) {
                own.fields.push(f.clone());
            } else if shared_names.contains(&f.name) {
                shared.fields.push(f.clone());
            } else {
                return Err(format!(
                    "{}: unknown field `{}`; expected one of: {}",
                    source.locate(f.at),
                    f.name,
                    own_names
                        .iter()
                        .chain(&shared_names)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut base = ParamsText::from_canonical(&O::shared_defaults().canonical(), fields.at);
        base.patch(&shared);
        Ok(Self {
            own: O::from_fields(&own, source)?,
            shared: S::from_fields(&base, source)?,
        })
    }

    fn canonical(&self) -> String {
        let own = ParamsText::from_canonical(&self.own.canonical(), 0);
        let shared = ParamsText::from_canonical(&self.shared.canonical(), 0);
        ParamsText::write_struct(&[own.fields, shared.fields].concat())
    }

    fn defaults() -> Self {
        Self {
            own: O::defaults(),
            shared: O::shared_defaults(),
        }
    }

    fn field_names() -> Vec<String> {
        [O::field_names(), S::field_names()].concat()
    }
}

/// A registry entry's parameter type, erased: it resolves written fields to canonical text.
#[derive(Clone, Copy)]
pub struct ParamsCodec {
    resolve: fn(&ParamsText, &Source) -> Result<String, String>,
    defaults: fn() -> String,
}

impl ParamsCodec {
    pub fn of<P: Params>() -> Self {
        Self {
            resolve: ParamsText::resolve::<P>,
            defaults: || P::defaults().canonical(),
        }
    }

    /// # Errors
    /// As [`ParamsText::parse_as`].
    pub fn resolve(&self, text: &ParamsText, source: &Source) -> Result<String, String> {
        (self.resolve)(text, source)
    }

    /// The resolved text of the defaults.
    pub fn defaults(&self) -> String {
        (self.defaults)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    enum Choice {
        #[default]
        Current,
        Base,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct P {
        beta: f64,
        look: Choice,
        pair: (usize, usize),
    }

    impl Validate for P {
        fn validate(&self) -> Result<(), Invalid> {
            crate::validate::non_negative("beta", self.beta)
        }
    }

    impl Default for P {
        fn default() -> Self {
            Self {
                beta: 1.0,
                look: Choice::Current,
                pair: (1, 2),
            }
        }
    }

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Own {
        tilted: bool,
    }

    impl Validate for Own {}

    impl FamilyMember<P> for Own {
        fn shared_defaults() -> P {
            P {
                beta: 9.0,
                ..P::default()
            }
        }
    }

    #[test]
    fn a_family_splits_flat_fields_by_name_with_the_members_defaults() {
        let src = source("(tilted: true, look: Base)");
        let f = Family::<Own, P>::from_fields(&params(&src), &src).unwrap();
        assert!(f.own.tilted);
        assert_eq!((f.shared.beta, f.shared.look.clone()), (9.0, Choice::Base));
        let text = f.canonical();
        assert!(text.starts_with("(tilted: true, beta: 9.0, "), "{text}");
        assert_eq!(from_resolved::<Family<Own, P>>(&text).unwrap(), f);
        let src = source("(tilted: true, betta: 1.0)");
        let err = Family::<Own, P>::from_fields(&params(&src), &src).unwrap_err();
        assert!(
            err.starts_with("sweep.ron:1:23: unknown field `betta`; expected one of: tilted, beta"),
            "{err}"
        );
        let src = source("(beta: \"x\")");
        let err = Family::<Own, P>::from_fields(&params(&src), &src).unwrap_err();
        assert!(err.starts_with("sweep.ron:1:8"), "{err}");
        let src = source("(tilted: true, beta: -2.0)");
        let err = Family::<Own, P>::from_fields(&params(&src), &src).unwrap_err();
        assert!(
            err.starts_with("sweep.ron:1:22: beta = -2 must be"),
            "{err}"
        );
    }

    fn source(text: &str) -> Source {
        Source::new("sweep.ron", text)
    }

    fn params(src: &Source) -> ParamsText {
        let start = src.text.find('(').unwrap();
        ParamsText::parse(src, &src.text[start..]).unwrap()
    }

    #[test]
    fn written_fields_override_defaults_and_patches_override_fields() {
        let src = source("x (beta: 2.0, look: Base)");
        let mut p = params(&src);
        assert_eq!(
            p.parse_as::<P>(&src).unwrap(),
            P {
                beta: 2.0,
                look: Choice::Base,
                pair: (1, 2)
            }
        );
        let patch_src = source("{\"beta\": 3.0}");
        p.patch(&ParamsText::parse(&patch_src, &patch_src.text).unwrap());
        assert_eq!(p.parse_as::<P>(&src).unwrap().beta, 3.0);
        let resolved = p.resolve::<P>(&src).unwrap();
        assert!(resolved.contains("look: Base") && resolved.contains("pair: (1, 2)"));
        assert_eq!(from_resolved::<P>(&resolved).unwrap().beta, 3.0);
    }

    #[test]
    fn errors_point_at_the_field_in_the_file() {
        let src =
            source("algorithms: [\n  (name: \"a\", params: (beta: 2.0,\n     look: Bse)),\n]");
        let start = src.text.find("(beta").unwrap();
        let raw = &src.text[start..src.text.rfind("))").unwrap() + 1];
        let err = ParamsText::parse(&src, raw)
            .unwrap()
            .parse_as::<P>(&src)
            .unwrap_err();
        assert!(
            err.starts_with("sweep.ron:3:") && err.contains("Bse"),
            "{err}"
        );
        let src = source("(beta: 2.0, lokk: 1)");
        let err = params(&src).parse_as::<P>(&src).unwrap_err();
        assert!(
            err.starts_with("sweep.ron:1:19") && err.contains("lokk"),
            "{err}"
        );
        let src = source("(look: \"Base\")");
        let err = params(&src).parse_as::<P>(&src).unwrap_err();
        assert!(
            err.starts_with("sweep.ron:1:8") && err.contains("without quotes"),
            "{err}"
        );
    }
}
