//! From a scenario's TOML table (the file with its `--set`s applied) to its
//! typed form, with every type error rather than serde's first: each
//! error's field is noted and taken out of the table, and the rest tried
//! again. A required field missing because an earlier error took it out is
//! that error's consequence, not a second one.

use super::validate::Problem;
use super::ScenarioFile;

/// Errors reported at most; past them the list says little more.
const MAX_ERRORS: usize = 20;

pub(super) fn typed(mut table: toml::Table) -> Result<ScenarioFile, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let value = toml::Value::Table(table.clone());
        let error = match serde_path_to_error::deserialize::<_, ScenarioFile>(value) {
            Ok(file) if problems.is_empty() => return Ok(file),
            Ok(_) => return Err(problems),
            Err(error) => error,
        };
        let field = error.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let message = error.inner().message().trim().to_owned();
        if let Some(name) = missing_field(&message) {
            let full = if field.is_empty() {
                name.to_owned()
            } else {
                format!("{field}.{name}")
            };
            if !removed.contains(&full) {
                problems.push(Problem { field, message });
            }
            return Err(problems);
        }
        problems.push(Problem {
            field: field.clone(),
            message,
        });
        if problems.len() >= MAX_ERRORS || !remove(&mut table, &field) {
            return Err(problems);
        }
        removed.push(field);
    }
}

/// `missing field `rooms`` → `rooms`.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Takes the value at `field` (`load.stages[0].over`) out of `table`;
/// whether there was one.
fn remove(table: &mut toml::Table, field: &str) -> bool {
    let steps: Vec<&str> = field.split('.').collect();
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut node = table;
    for step in parents {
        let (key, index) = split_index(step);
        let Some(value) = node.get_mut(key) else {
            return false;
        };
        let value = match index {
            Some(i) => match value.as_array_mut().and_then(|a| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            None => value,
        };
        let Some(next) = value.as_table_mut() else {
            return false;
        };
        node = next;
    }
    match split_index(last) {
        (key, None) => node.remove(key).is_some(),
        (key, Some(i)) => match node.get_mut(key).and_then(|v| v.as_array_mut()) {
            Some(array) if i < array.len() => {
                array.remove(i);
                true
            }
            _ => false,
        },
    }
}

/// `stages[0]` → (`stages`, Some(0)).
fn split_index(step: &str) -> (&str, Option<usize>) {
    match step.split_once('[') {
        Some((key, rest)) => (key, rest.trim_end_matches(']').parse().ok()),
        None => (step, None),
    }
}
