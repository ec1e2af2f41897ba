//! Where a field of a scenario stands in its file: the line and column of
//! its key (or of an array's element), found by walking the dotted path
//! (`load.stages[1]`) through the TOML as written. A field the file leaves
//! to its default is placed at the nearest part of its path that is there.

use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::Problem;

/// A problem of a scenario and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub problem: Problem,
    pub at: Origin,
}

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file, at this line and column.
    File { line: usize, column: usize },
    /// A `--set` on the command line.
    Set(String),
    /// A default the file leaves alone.
    Default,
}

impl Located {
    pub(super) fn of(problem: Problem, text: &str, overrides: &[String]) -> Located {
        let set = overrides.iter().find(|o| {
            let key = o.split('=').next().unwrap_or("").trim();
            problem.field == key
                || problem.field.starts_with(&format!("{key}."))
                || problem.field.starts_with(&format!("{key}["))
        });
        let at = match set {
            Some(assignment) => Origin::Set(assignment.clone()),
            None => match offset(text, &problem.field) {
                Some(offset) => {
                    let (line, column) = line_column(text, offset);
                    Origin::File { line, column }
                }
                None => Origin::Default,
            },
        };
        Located { problem, at }
    }

    /// Every problem, one a line, each with where it stands.
    pub(super) fn list(file: &Path, problems: &[Located]) -> String {
        let lines: Vec<String> = problems
            .iter()
            .map(|l| {
                let Problem { field, message } = &l.problem;
                match &l.at {
                    Origin::File { line, column } => {
                        format!("{}:{line}:{column}: {field}: {message}", file.display())
                    }
                    Origin::Set(assignment) => {
                        format!(
                            "{}: {field}: {message} (from --set {assignment})",
                            file.display()
                        )
                    }
                    Origin::Default => format!("{}: {field}: {message}", file.display()),
                }
            })
            .collect();
        lines.join("\n")
    }
}

/// One step of a field's path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `load.stages[1]` → `load`, `stages`, `[1]`; anything after a space (a
/// fault's quoted name) is a label, not a step.
fn steps(field: &str) -> Vec<Step<'_>> {
    let path = field.split(' ').next().unwrap_or("");
    let mut steps = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            steps.push(Step::Key(key));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                steps.push(Step::Index(i));
            }
        }
    }
    steps
}

/// The byte offset of `field` in `text`, or of the nearest part of its
/// path that the text has; `None` when not even its first key is there.
pub fn offset(text: &str, field: &str) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    let mut table: Option<&DeTable<'_>> = Some(document.get_ref());
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    let mut found = None;
    for step in steps(field) {
        let next = match step {
            Step::Key(key) => table.and_then(|t| {
                t.iter()
                    .find(|(k, _)| k.get_ref().as_ref() == key)
                    .map(|(k, v)| (k.span().start, v))
            }),
            Step::Index(i) => value
                .and_then(|v| v.get_ref().as_array())
                .and_then(|a| a.get(i))
                .map(|v| (v.span().start, v)),
        };
        let Some((at, v)) = next else {
            break;
        };
        found = Some(at);
        value = Some(v);
        table = v.get_ref().as_table();
    }
    found
}

/// The 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[population]\nrooms = 4\n\n[load]\nstages = [\n  { to = 1, over = \"1s\" },\n  { to = 2, over = \"1s\" },\n]\n";

    fn at(field: &str) -> Option<(usize, usize)> {
        offset(TEXT, field).map(|o| line_column(TEXT, o))
    }

    #[test]
    fn fields_are_found_where_the_file_has_them() {
        assert_eq!(at("name"), Some((1, 1)));
        assert_eq!(at("population.rooms"), Some((4, 1)));
        assert_eq!(at("load.stages[1]"), Some((9, 3)));
        assert_eq!(at("load.stages"), Some((7, 1)));
    }

    #[test]
    fn a_default_is_placed_at_its_nearest_parent() {
        assert_eq!(at("population.players_per_room"), Some((3, 2)));
        assert_eq!(at("topology.replicas"), None);
        assert_eq!(at("faults[0] \"cut\""), None);
    }

    #[test]
    fn paths_split_into_keys_and_indices() {
        assert_eq!(
            steps("faults[2] \"a.b\""),
            [Step::Key("faults"), Step::Index(2)]
        );
        assert_eq!(
            steps("load.stages[0]"),
            [Step::Key("load"), Step::Key("stages"), Step::Index(0)]
        );
    }
}
