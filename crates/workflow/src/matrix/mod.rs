//! Matrix expansion for `jobs.<job_id>.strategy.matrix`, as GitHub does it.
//!
//! The input is the `strategy.matrix` mapping after expressions were evaluated, as JSON with
//! keys in document order. [`expand`] turns it into the list of [`Combination`]s, one per job;
//! [`display_name`] names each job and [`strategy_contexts`] builds each job's `strategy`
//! context.
//!
//! The rules follow GitHub's workflow parser (`MatrixBuilder` and `ConvertToStrategy` in
//! `actions/runner`, `src/Sdk/WorkflowParser/Conversion/`):
//!
//! 1. Every key except `include` and `exclude` (compared case-sensitively) is a *vector*,
//!    which must be a non-empty sequence. Vector names are case-insensitive: two vectors that
//!    differ only in case are an error.
//! 2. The cross product of the vectors, the first key varying slowest.
//! 3. `exclude`: a combination is dropped when it matches any exclude entry. An entry matches
//!    when every *leaf* of it (scalars, reached through nested mappings and sequences) equals
//!    the value at the same path of the combination, with the expression language's `==`:
//!    loose (`'14' == 14`), case-insensitive for strings, missing values are `null`.
//! 4. `include`: each entry is split into *filter* keys (those naming a vector) and *extra*
//!    keys (the rest). For every remaining combination, each entry whose filter matches (as in
//!    3) merges its extras into the combination, in entry order, later entries overwriting
//!    what earlier ones added. Extras come after the vector keys. An entry that matched no
//!    combination becomes a combination of its own, appended in entry order: its filter keys
//!    first, then its extras.
//! 5. More than 256 combinations is an error.

mod filter;
mod name;
mod strategy;

use serde_json::{Map, Value};

pub use name::{display_name, MAX_NAME_LENGTH};
pub use strategy::{strategy_contexts, StrategyContext};

use filter::{Filter, MatrixView};

/// GitHub's limit on the number of jobs one matrix may produce.
pub const MAX_CONFIGURATIONS: usize = 256;

/// The largest cross product [`expand`] walks. GitHub walks any product that fits in an `i32`;
/// Hearth stops earlier so that a hostile workflow cannot keep it busy for minutes. No real
/// matrix comes near: more than 256 combinations must survive `exclude` to be an error anyway.
pub const MAX_CROSS_PRODUCT: usize = 1 << 20;

/// One job's `matrix` context: keys in GitHub's order (vectors, then values added by
/// `include`). Dereferences to the map.
#[derive(Clone, Debug, PartialEq)]
pub struct Combination {
    values: Map<String, Value>,
    /// How many leading entries make up the job's display name: the vectors for a combination
    /// of the cross product, everything for an appended `include` entry.
    name_len: usize,
}

impl Combination {
    /// The `matrix` context of the job.
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    pub fn into_values(self) -> Map<String, Value> {
        self.values
    }

    /// The entries GitHub uses for the job's display name, in order. Values that `include`
    /// added to a combination of the cross product are not among them.
    pub fn name_values(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter().take(self.name_len)
    }

    /// The `matrix` context as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.values.clone())
    }
}

impl std::ops::Deref for Combination {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.values
    }
}

/// Why a matrix could not be expanded. Messages are GitHub's where GitHub has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// No vector and no (non-empty) `include`.
    #[error("Matrix must define at least one vector")]
    NoVectors,
    #[error("Matrix vector '{0}' does not contain any values")]
    EmptyVector(String),
    /// A vector that is not a sequence, such as an expression that was not evaluated.
    #[error("Matrix vector '{key}' must be a sequence, but is {found}")]
    VectorNotSequence { key: String, found: &'static str },
    /// `include` or `exclude` is not a sequence.
    #[error("Matrix '{key}' must be a sequence of mappings, but is {found}")]
    NotSequence {
        key: &'static str,
        found: &'static str,
    },
    /// An item of `include` or `exclude` (0-based `index`) is not a mapping.
    #[error("Matrix '{key}' item {index} must be a mapping, but is {found}")]
    ItemNotMapping {
        key: &'static str,
        index: usize,
        found: &'static str,
    },
    #[error("Matrix include mapping does not contain any values")]
    EmptyInclude { index: usize },
    #[error("Matrix exclude filter must not be empty")]
    EmptyExclude { index: usize },
    #[error("Matrix exclude key '{0}' does not match any key within the matrix")]
    UnknownExcludeKey(String),
    /// Two keys of the matrix, or of one `include` entry, that differ only in case.
    #[error("Matrix key '{0}' is defined more than once (keys are case-insensitive)")]
    DuplicateKey(String),
    /// GitHub's message names the job: see [`MatrixError::message_for_job`].
    #[error(
        "Strategy produced {count} configurations which exceeds the maximum of 256 configurations"
    )]
    TooManyConfigurations { count: usize },
    #[error("Matrix cross product of {product} combinations is too large to expand")]
    ProductTooLarge { product: u128 },
}

impl MatrixError {
    /// The message as GitHub words it for job `job_id` (only the combination limit names it).
    pub fn message_for_job(&self, job_id: &str) -> String {
        match self {
            MatrixError::TooManyConfigurations { count } => format!(
                "Strategy for job '{job_id}' produced {count} configurations which exceeds the maximum of {MAX_CONFIGURATIONS} configurations"
            ),
            other => other.to_string(),
        }
    }
}

/// A JSON type's name for messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

pub(crate) use hearth_expr::eq_ignore_case;

fn find_key<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m String> {
    map.keys().find(|k| eq_ignore_case(k, key))
}

/// Sets `key` ignoring case: an existing entry keeps its spelling and position.
fn set_ignore_case(map: &mut Map<String, Value>, key: &str, value: Value) {
    match find_key(map, key).cloned() {
        Some(existing) => {
            map.insert(existing, value);
        }
        None => {
            map.insert(key.to_owned(), value);
        }
    }
}

/// One item of `include`, split as GitHub splits it.
struct Include<'a> {
    /// Keys that name a vector, in entry order.
    filter_entries: Vec<(&'a String, &'a Value)>,
    /// The other keys, in entry order.
    extra: Vec<(&'a String, &'a Value)>,
    filter: Filter,
    matched: bool,
}

fn sequence_of_mappings<'a>(
    key: &'static str,
    value: &'a Value,
) -> Result<Vec<&'a Map<String, Value>>, MatrixError> {
    let Value::Array(items) = value else {
        return Err(MatrixError::NotSequence {
            key,
            found: kind_name(value),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => Ok(map),
            other => Err(MatrixError::ItemNotMapping {
                key,
                index,
                found: kind_name(other),
            }),
        })
        .collect()
}

/// Expands a `strategy.matrix` mapping into its combinations, in GitHub's order.
pub fn expand(matrix: &Map<String, Value>) -> Result<Vec<Combination>, MatrixError> {
    let mut vectors: Vec<(&String, &Vec<Value>)> = Vec::new();
    let mut include_value = None;
    let mut exclude_value = None;
    let mut has_vector = false;
    let mut has_include = false;

    for (key, value) in matrix {
        match key.as_str() {
            "include" => {
                let items = sequence_of_mappings("include", value)?;
                has_include = !items.is_empty();
                include_value = Some(items);
            }
            "exclude" => exclude_value = Some(sequence_of_mappings("exclude", value)?),
            _ => {
                has_vector = true;
                let Value::Array(items) = value else {
                    return Err(MatrixError::VectorNotSequence {
                        key: key.clone(),
                        found: kind_name(value),
                    });
                };
                if items.is_empty() {
                    return Err(MatrixError::EmptyVector(key.clone()));
                }
                if vectors.iter().any(|(k, _)| eq_ignore_case(k, key)) {
                    return Err(MatrixError::DuplicateKey(key.clone()));
                }
                vectors.push((key, items));
            }
        }
    }
    if !has_vector && !has_include {
        return Err(MatrixError::NoVectors);
    }
    let is_vector = |key: &str| vectors.iter().any(|(k, _)| eq_ignore_case(k, key));

    // Includes: filter keys versus extra keys.
    let mut includes = Vec::new();
    for (index, entry) in include_value.unwrap_or_default().into_iter().enumerate() {
        if entry.is_empty() {
            return Err(MatrixError::EmptyInclude { index });
        }
        let (filter_entries, extra): (Vec<_>, Vec<_>) =
            entry.iter().partition(|(k, _)| is_vector(k));
        for (i, (key, _)) in extra.iter().enumerate() {
            if extra[..i].iter().any(|(k, _)| eq_ignore_case(k, key)) {
                return Err(MatrixError::DuplicateKey((*key).clone()));
            }
        }
        let filter = Filter::new(filter_entries.iter().copied());
        includes.push(Include {
            filter_entries,
            extra,
            filter,
            matched: false,
        });
    }

    // Excludes: every key must name a vector.
    let mut excludes = Vec::new();
    for (index, entry) in exclude_value.unwrap_or_default().into_iter().enumerate() {
        if entry.is_empty() {
            return Err(MatrixError::EmptyExclude { index });
        }
        if let Some(key) = entry.keys().find(|k| !is_vector(k)) {
            return Err(MatrixError::UnknownExcludeKey(key.clone()));
        }
        excludes.push(Filter::new(entry.iter()));
    }

    // The cross product, first vector varying slowest.
    let product: u128 = if vectors.is_empty() {
        0
    } else {
        vectors.iter().map(|(_, v)| v.len() as u128).product()
    };
    if product > MAX_CROSS_PRODUCT as u128 {
        return Err(MatrixError::ProductTooLarge { product });
    }
    let product = product as usize;
    let expr_vectors: Vec<Vec<hearth_expr::Value>> = vectors
        .iter()
        .map(|(_, items)| items.iter().map(hearth_expr::Value::from_json).collect())
        .collect();

    let mut result = Vec::new();
    let mut count = 0usize;
    let mut indices = vec![0usize; vectors.len()];
    for product_index in 0..product {
        if product_index > 0 {
            // Advance like an odometer, the last vector fastest.
            for slot in (0..indices.len()).rev() {
                indices[slot] += 1;
                if indices[slot] < vectors[slot].1.len() {
                    break;
                }
                indices[slot] = 0;
            }
        }
        let view = MatrixView::new(
            vectors
                .iter()
                .zip(&expr_vectors)
                .zip(&indices)
                .map(|(((key, _), values), &i)| (key.as_str(), values[i].clone())),
        );
        if excludes.iter().any(|f| f.matches(&view)) {
            continue;
        }
        let mut extra: Map<String, Value> = Map::new();
        for include in &mut includes {
            if include.filter.matches(&view) {
                include.matched = true;
                for (key, value) in &include.extra {
                    set_ignore_case(&mut extra, key, (*value).clone());
                }
            }
        }
        count += 1;
        if count > MAX_CONFIGURATIONS {
            continue;
        }
        let mut values = Map::new();
        for ((key, items), &i) in vectors.iter().zip(&indices) {
            values.insert((*key).clone(), items[i].clone());
        }
        let name_len = values.len();
        values.extend(extra);
        result.push(Combination { values, name_len });
    }

    // Include entries that matched nothing become combinations of their own.
    for include in includes.iter().filter(|i| !i.matched) {
        count += 1;
        if count > MAX_CONFIGURATIONS {
            continue;
        }
        let mut values = Map::new();
        for (key, value) in include.filter_entries.iter().chain(&include.extra) {
            if find_key(&values, key).is_some() {
                return Err(MatrixError::DuplicateKey((*key).clone()));
            }
            values.insert((*key).clone(), (*value).clone());
        }
        let name_len = values.len();
        result.push(Combination { values, name_len });
    }

    if count > MAX_CONFIGURATIONS {
        return Err(MatrixError::TooManyConfigurations { count });
    }
    Ok(result)
}
