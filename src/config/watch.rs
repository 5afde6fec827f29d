//! The file watcher: the config file's directory watched (an editor's atomic rename and a
//! Kubernetes ConfigMap's `..data` swap both show up there, where a watch on the file
//! itself would lose the file), events debounced, and a reload only when the file's text
//! changed.

use std::path::Path;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

/// A running watch; dropping it stops the watcher thread and its task.
pub(crate) struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a burst of file events is gathered into one.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

impl Watch {
    /// Watches `file`'s directory and calls `reload` (on the current tokio runtime) after
    /// each debounced burst of events there.
    pub(crate) fn start<F, Fut>(file: &Path, reload: F) -> Result<Self, String>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| {
            if res.is_ok() {
                let _ = tx.send(());
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        debouncer
            .watcher()
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // one reload for everything that queued meanwhile
                while rx.try_recv().is_ok() {}
                reload().await;
            }
        });
        Ok(Self {
            _debouncer: debouncer,
            task,
        })
    }
}
