//! Config files (feature `config`): breakers, limiters (every algorithm), keyed limiters
//! with plans, bulkheads, retries and policies declared in TOML, spawned at start, and
//! hot-reloaded whole or not at all. docs/OPERATIONS.md is the reference;
//! `palisade.example.toml` shows every key with its default.
//!
//! ```toml
//! [breaker.configs.default]
//! failure_rate_threshold = 50
//! wait_in_open = "30s"
//!
//! [breaker.instances.db]
//! base_config = "default"     # the instance's own keys win
//! wait_in_open = "10s"
//!
//! [limiter.instances.api]
//! algorithm = "gcra"
//! rate = 100
//! per = "1s"
//! burst = 20
//! ```
//!
//! - **Shape**: per kind (`breaker`, `limiter`, `keyed_limiter`, `bulkhead`, `retry`,
//!   `policy`), `configs.<name>` templates and `instances.<name>` entries; an instance may
//!   name a `base_config`.
//! - **Durations** are strings: `"250ms"`, `"30s"`, `"1h"`.
//! - **Environment** variables override the file: `PALISADE_` + the key path with `__`
//!   between parts (`PALISADE_BREAKER__INSTANCES__DB__WAIT_IN_OPEN=10s`; names are read
//!   lowercased). Another prefix: [`RuntimeBuilder::config_env_prefix`](crate::RuntimeBuilder::config_env_prefix).
//! - **Errors** name the file, the key path, the value and what was expected; unknown keys
//!   are errors.
//! - **Reload** ([`Runtime::reload_config`](crate::Runtime::reload_config), or a watcher with
//!   [`RuntimeBuilder::watch_config`](crate::RuntimeBuilder::watch_config)): the whole file is
//!   checked first; a refused file changes nothing. Changed instances are reconfigured in
//!   place (windows and buckets kept), new ones spawned, removed ones reported (and left
//!   running, or stopped with `[reload] removed = "stop"`). [`Event::ConfigReloaded`](crate::Event::ConfigReloaded) or
//!   [`Event::ConfigRejected`](crate::Event::ConfigRejected) marks each outcome, and
//!   `palisade_config_reloads_total{outcome}` counts them.

mod apply;
mod declared;
mod duration;
mod error;
mod load;
mod reload;
mod schema;
mod watch;

pub use apply::ReloadReport;
pub use error::ConfigFileError;
pub use load::{check, ENV_PREFIX};

pub(crate) use apply::ConfigState;
pub(crate) use reload::FileSettings;
pub(crate) use watch::Watch;
