//! [`ConfigFileError`]: what was wrong in a config file, and where.

use std::fmt;
use std::path::PathBuf;

/// A config file (or an environment override) palisade refused: the file, the key path,
/// and what was wrong with the value. Nothing is applied when one is returned.
///
/// ```text
/// palisade.toml: breaker.instances.db.wait_in_open: "10 parsecs" has the unknown unit "parsecs"; expected a duration ...
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ConfigFileError {
    /// The config file.
    pub file: PathBuf,
    /// Where the bad value came from when it was not the file itself (an environment
    /// variable such as `PALISADE_BREAKER__INSTANCES__DB__WAIT_IN_OPEN`).
    pub origin: Option<String>,
    /// The key path, dotted (`breaker.instances.db.wait_in_open`); empty for the whole file.
    pub key: String,
    /// What was wrong: the value and what was expected.
    pub problem: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(origin) = &self.origin {
            write!(f, " (overridden by {origin})")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl ConfigFileError {
    pub(crate) fn at(
        file: &std::path::Path,
        key: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            origin: None,
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// A figment error, its path under `prefix` (the entry it was read from).
    pub(crate) fn from_figment(
        file: &std::path::Path,
        env_prefix: &str,
        prefix: &str,
        e: figment::Error,
    ) -> Self {
        // figment chains several errors; the first is the one to fix first
        let e = e
            .into_iter()
            .next()
            .expect("a figment error holds at least one error");
        let mut key = prefix.to_owned();
        for part in &e.path {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
        let origin = e.metadata.as_ref().and_then(|m| match &m.source {
            Some(figment::Source::File(_)) | None => None,
            Some(other) => Some(other.to_string()),
        });
        let origin = origin.or_else(|| {
            e.metadata
                .as_ref()
                .filter(|m| m.name.contains("environment"))
                .map(|m| {
                    let var = e
                        .path
                        .iter()
                        .map(|p| p.to_uppercase())
                        .collect::<Vec<_>>()
                        .join("__");
                    if var.is_empty() {
                        m.name.to_string()
                    } else {
                        format!("{} ({})", m.name, prefix_var(env_prefix, prefix, &var))
                    }
                })
        });
        Self {
            file: file.to_path_buf(),
            origin,
            key,
            problem: e.kind.to_string(),
        }
    }
}

/// The prefix + the entry's path + the field, as the environment variable is spelt.
fn prefix_var(env_prefix: &str, prefix: &str, field: &str) -> String {
    let mut var = String::from(env_prefix);
    for part in prefix.split('.').filter(|p| !p.is_empty()) {
        var.push_str(&part.to_uppercase());
        var.push_str("__");
    }
    var.push_str(field);
    var
}
