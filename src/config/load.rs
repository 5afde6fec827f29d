//! Reading a file: TOML and the `PALISADE_` environment overrides merged by figment, every
//! entry's `base_config` resolved under it, every entry checked by its builder. The result
//! is everything or the first error, with its file and key path.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::value::Value;
use figment::Figment;
use serde::de::DeserializeOwned;

use super::declared::{self, Declared, Refusal};
use super::error::ConfigFileError;
use super::schema::{
    BreakerEntry, BulkheadEntry, File, LimiterEntry, PolicyEntry, RetryEntry, Section,
};

/// The environment variables that override the file by default: `PALISADE_` + the key path
/// with `__` between its parts (`PALISADE_BREAKER__INSTANCES__DB__WAIT_IN_OPEN=10s`).
pub const ENV_PREFIX: &str = "PALISADE_";

/// An entry that may name a template.
trait Entry: DeserializeOwned {
    fn base(&self) -> Option<&str>;
}

macro_rules! entry {
    ($($t:ty),*) => {$(
        impl Entry for $t {
            fn base(&self) -> Option<&str> {
                self.base_config.as_deref()
            }
        }
    )*};
}
entry!(
    BreakerEntry,
    LimiterEntry,
    BulkheadEntry,
    RetryEntry,
    PolicyEntry
);

/// Checks a config file's text as a reload would, without the environment and without a
/// runtime: every key, value, template and reference, and every builder's rules. What only
/// a running runtime can refuse (a name spawned in code, a change a running instance cannot
/// take) is left to the reload. For a CI step that lints a config before it ships.
///
/// # Errors
/// The first [`ConfigFileError`], with `file` set to `name`.
///
/// # Examples
/// ```
/// let e = palisade::config::check("palisade.toml", "[breaker.instances.db]\nwait_in_open = \"soon\"\n")
///     .unwrap_err();
/// assert_eq!(e.key, "breaker.instances.db.wait_in_open");
/// assert!(palisade::config::check("palisade.toml", "[bulkhead.instances.pool]\nmax_concurrent = 4\n").is_ok());
/// ```
pub fn check(name: &str, text: &str) -> Result<(), ConfigFileError> {
    load(Path::new(name), text, None).map(drop)
}

/// The text of `path`, or an error naming it.
pub(crate) fn read(path: &Path) -> Result<String, ConfigFileError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigFileError::at(path, "", format!("cannot read the file: {e}")))
}

/// Checks `text`, the contents of `path`, with the environment overrides. Nothing is
/// spawned.
pub(crate) fn load(
    path: &Path,
    text: &str,
    env_prefix: Option<&str>,
) -> Result<Declared, ConfigFileError> {
    let mut figment = Figment::from(Toml::string(text));
    if let Some(prefix) = env_prefix {
        figment = figment.merge(Env::prefixed(prefix).split("__"));
    }
    let env_prefix = env_prefix.unwrap_or_default();
    let file: File = figment
        .extract()
        .map_err(|e| ConfigFileError::from_figment(path, env_prefix, "", e))?;
    let reader = Reader {
        path,
        env_prefix,
        figment: &figment,
    };
    let mut declared = Declared {
        removed: file.reload.removed,
        ..Declared::default()
    };
    declared.breakers = reader.kind("breaker", &file.breaker, declared::breaker)?;
    declared.limiters = reader.kind("limiter", &file.limiter, |e| declared::limiter(e, false))?;
    declared.keyed = reader.kind("keyed_limiter", &file.keyed_limiter, declared::keyed)?;
    declared.bulkheads = reader.kind("bulkhead", &file.bulkhead, declared::bulkhead)?;
    declared.retries = reader.kind("retry", &file.retry, declared::retry)?;
    declared.policies = reader.kind("policy", &file.policy, declared::policy)?;
    for name in declared.keyed.keys() {
        if declared.limiters.contains_key(name) {
            return Err(ConfigFileError::at(
                path,
                format!("keyed_limiter.instances.{name}"),
                format!("duplicate name: limiter.instances.{name} is declared too (limiters and keyed limiters share their names)"),
            ));
        }
    }
    for (name, p) in &declared.policies {
        let key = |field: &str| format!("policy.instances.{name}.{field}");
        let known = [
            (
                "breaker",
                &p.breaker,
                declared
                    .breakers
                    .contains_key(p.breaker.as_deref().unwrap_or_default()),
            ),
            (
                "limiter",
                &p.limiter,
                declared
                    .limiters
                    .contains_key(p.limiter.as_deref().unwrap_or_default()),
            ),
            (
                "bulkhead",
                &p.bulkhead,
                declared
                    .bulkheads
                    .contains_key(p.bulkhead.as_deref().unwrap_or_default()),
            ),
            (
                "retry",
                &p.retry,
                declared
                    .retries
                    .contains_key(p.retry.as_deref().unwrap_or_default()),
            ),
        ];
        for (field, named, found) in known {
            if let (Some(named), false) = (named, found) {
                return Err(ConfigFileError::at(
                    path,
                    key(field),
                    format!(
                        "{named:?} is not a {field} this file declares ({field}.instances.{named})"
                    ),
                ));
            }
        }
    }
    Ok(declared)
}

struct Reader<'a> {
    path: &'a Path,
    env_prefix: &'a str,
    figment: &'a Figment,
}

impl Reader<'_> {
    /// Every instance of one kind, its template under it, checked by `check`.
    fn kind<E: Entry, T>(
        &self,
        kind: &str,
        section: &Section,
        check: impl Fn(&E) -> Result<T, Refusal>,
    ) -> Result<BTreeMap<String, T>, ConfigFileError> {
        for (name, body) in &section.configs {
            let at = format!("{kind}.configs.{name}");
            self.name_and_table(&at, name, body)?;
            let template: E = self.extract(&at, Figment::from(self.figment.focus(&at)))?;
            if template.base().is_some() {
                return Err(ConfigFileError::at(
                    self.path,
                    format!("{at}.base_config"),
                    "a template cannot name a base_config; only instances do",
                ));
            }
            check(&template).map_err(|r| self.refusal(&at, r))?;
        }
        let mut out = BTreeMap::new();
        for (name, body) in &section.instances {
            let at = format!("{kind}.instances.{name}");
            self.name_and_table(&at, name, body)?;
            let own = Figment::from(self.figment.focus(&at));
            let entry: E = self.extract(&at, own.clone())?;
            let entry = match entry.base() {
                None => entry,
                Some(base) => {
                    if !section.configs.contains_key(base) {
                        let known: Vec<_> = section.configs.keys().map(String::as_str).collect();
                        return Err(ConfigFileError::at(
                            self.path,
                            format!("{at}.base_config"),
                            format!(
                                "unknown base_config {base:?}: {kind}.configs declares {}",
                                if known.is_empty() {
                                    "no templates".to_owned()
                                } else {
                                    format!("{known:?}")
                                }
                            ),
                        ));
                    }
                    let template = self.figment.focus(&format!("{kind}.configs.{base}"));
                    self.extract(&at, Figment::from(template).merge(own))?
                }
            };
            out.insert(
                name.clone(),
                check(&entry).map_err(|r| self.refusal(&at, r))?,
            );
        }
        Ok(out)
    }

    fn extract<E: Entry>(&self, at: &str, figment: Figment) -> Result<E, ConfigFileError> {
        figment
            .extract()
            .map_err(|e| ConfigFileError::from_figment(self.path, self.env_prefix, at, e))
    }

    fn refusal(&self, at: &str, (field, problem): Refusal) -> ConfigFileError {
        ConfigFileError::at(self.path, format!("{at}.{field}"), problem)
    }

    /// A name the key path can hold, and a table under it.
    fn name_and_table(&self, at: &str, name: &str, body: &Value) -> Result<(), ConfigFileError> {
        if name.is_empty()
            || name.contains('.')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigFileError::at(
                self.path,
                at,
                format!("{name:?} is not a usable name: non-empty, no dots, whitespace or control characters"),
            ));
        }
        if body.as_dict().is_none() {
            return Err(ConfigFileError::at(
                self.path,
                at,
                format!("expected a table of settings, found {}", describe(body)),
            ));
        }
        Ok(())
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::String(..) => "a string",
        Value::Char(..) => "a character",
        Value::Bool(..) => "a boolean",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "an array",
    }
}
