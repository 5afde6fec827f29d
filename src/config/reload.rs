//! Loading and reloading a runtime's config file: read, check, apply whole or not at all,
//! and say which (an event and a metric per outcome).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apply::{apply, ConfigState, ReloadReport};
use super::error::ConfigFileError;
use super::load::{load, read, ENV_PREFIX};
use super::watch::Watch;
use crate::telemetry::metrics as m;
use crate::{Event, Runtime};

/// The builder's config-file settings.
#[derive(Clone, Debug)]
pub(crate) struct FileSettings {
    pub path: Option<PathBuf>,
    pub env_prefix: String,
    pub watch: bool,
}

impl Default for FileSettings {
    fn default() -> Self {
        Self {
            path: None,
            env_prefix: ENV_PREFIX.to_owned(),
            watch: false,
        }
    }
}

impl ConfigState {
    pub(crate) fn new(settings: &FileSettings) -> Self {
        Self {
            path: settings.path.clone(),
            env_prefix: settings.env_prefix.clone(),
            ..Self::default()
        }
    }
}

fn names(v: &[String]) -> Arc<[Arc<str>]> {
    v.iter().map(|s| Arc::from(s.as_str())).collect()
}

impl Runtime {
    /// The first load, at start, and the watcher when asked for.
    pub(crate) async fn start_config(
        &self,
        settings: &FileSettings,
    ) -> Result<(), ConfigFileError> {
        let Some(path) = &settings.path else {
            return Ok(());
        };
        self.reload_config().await?;
        if settings.watch {
            let weak = self.downgrade();
            let watch = Watch::start(path, move || {
                let weak = weak.clone();
                async move {
                    if let Some(rt) = Runtime::upgrade(&weak) {
                        rt.reload_if_changed().await;
                    }
                }
            })
            .map_err(|problem| ConfigFileError::at(path, "", problem))?;
            *self.watch_slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(watch);
        }
        Ok(())
    }

    /// Reads the config file again and applies it, whole: every instance is checked first,
    /// and a refused file changes nothing. Changed instances are reconfigured in place
    /// (breakers keep their windows, limiters their buckets), new ones spawned, removed ones
    /// reported and left running. Publishes [`Event::ConfigReloaded`] or
    /// [`Event::ConfigRejected`] and counts `palisade_config_reloads_total{outcome}`
    /// (feature `config`).
    ///
    /// # Errors
    /// [`ConfigFileError`] naming the file, the key path and the problem; also when the
    /// runtime was started without [`config_file`](crate::RuntimeBuilder::config_file).
    ///
    /// # Cancel safety
    /// Not cancel safe once it has begun applying: a reload dropped part-way may have
    /// spawned or reconfigured some instances (it holds the config lock, so no other
    /// reload interleaves). Dropped before its first poll, nothing changes.
    pub async fn reload_config(&self) -> Result<ReloadReport, ConfigFileError> {
        let mut state = self.config_state().lock().await;
        let Some(path) = state.path.clone() else {
            return Err(ConfigFileError::at(
                Path::new(""),
                "",
                "this runtime was started without a config file (RuntimeBuilder::config_file)",
            ));
        };
        let text = read(&path);
        self.reload_text(&mut state, &path, text).await
    }

    /// The watcher's reload: only when the file's text changed since the last one applied
    /// or refused (one save can raise several events).
    async fn reload_if_changed(&self) {
        let mut state = self.config_state().lock().await;
        let Some(path) = state.path.clone() else {
            return;
        };
        let text = read(&path);
        if let (Ok(t), Some(last)) = (&text, &state.text) {
            if t == last {
                return;
            }
        }
        let _ = self.reload_text(&mut state, &path, text).await;
    }

    async fn reload_text(
        &self,
        state: &mut ConfigState,
        path: &Path,
        text: Result<String, ConfigFileError>,
    ) -> Result<ReloadReport, ConfigFileError> {
        let outcome = match text {
            Ok(text) => {
                state.text = Some(text.clone());
                match load(path, &text, Some(&state.env_prefix)) {
                    Ok(declared) => apply(self, state, declared).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let file: Arc<str> = Arc::from(path.display().to_string());
        match &outcome {
            Ok(report) => {
                self.set_declared_values(state.retries.clone(), state.policies.clone());
                ::metrics::counter!(m::CONFIG_RELOADS, "outcome" => "applied").increment(1);
                self.telemetry().emit(Event::ConfigReloaded {
                    file,
                    added: names(&report.added),
                    changed: names(&report.changed),
                    removed: names(&report.removed),
                });
            }
            Err(e) => {
                ::metrics::counter!(m::CONFIG_RELOADS, "outcome" => "rejected").increment(1);
                self.telemetry().emit(Event::ConfigRejected {
                    file,
                    error: Arc::from(e.to_string()),
                });
            }
        }
        outcome
    }
}
