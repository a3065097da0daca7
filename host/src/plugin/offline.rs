//! Loading a plugin for the commands that run it outside `serve` (`canary record`, `replay`,
//! `recurrence`): the given .wasm file, or the task plugin built with this host. The world is
//! checked (a plugin that does not fit fails here, with the reason); no canary and no compile
//! cache, since nothing is served.

use std::path::Path;

use anyhow::{Context as _, anyhow};

use super::{Plugin, Runtime};

/// `guest`, or the bundled task plugin when `None`; `what` names it in errors ("the candidate").
pub(crate) fn load(runtime: &Runtime, guest: Option<&Path>, what: &str) -> anyhow::Result<Plugin> {
    let bytes = match guest {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => crate::BUNDLED_PLUGIN.to_vec(),
    };
    Plugin::load(runtime, &bytes).map_err(|e| match guest {
        Some(path) => anyhow!("{what} {} does not load: {e}", path.display()),
        None => anyhow!("{what} (the bundled task plugin) does not load: {e}"),
    })
}
