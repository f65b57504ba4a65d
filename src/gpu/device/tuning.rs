//! Which kernel choices a context uses: the policy ([`Tuning`]), the wisdom it loaded, and
//! the choices a tuner pins while it measures. [`super::GpuContext`] holds one
//! [`TuningState`] behind a lock and answers every lookup from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gpu::kernels::{DeviceCaps, RecurrentShape};
use crate::gpu::wisdom::{default_path, AdapterKey, Choice, Entry, Family, ShapeClass, Wisdom};

/// Where a context's kernel choices come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tuning {
    /// The built-in table only (what every release before wisdom ran).
    Table,
    /// Saved choices where the wisdom file has them, the table elsewhere (the default).
    #[default]
    Wisdom,
    /// As `Wisdom`, and a shape with no saved choice is measured on first use (a few seconds
    /// in `prepare`) and saved. Native only; in a browser it is `Wisdom`.
    Measure,
}

/// A context's policy, wisdom and pins.
#[derive(Debug)]
pub(crate) struct TuningState {
    pub policy: Tuning,
    /// the adapter's key (`None` for a caller's device until a wisdom file names one)
    adapter: Option<AdapterKey>,
    /// the file loaded from and saved to
    pub path: Option<PathBuf>,
    /// the choices in use (`None`: no usable file)
    wisdom: Option<Wisdom>,
    /// choices a tuner forces while it times them, over everything else
    pins: BTreeMap<(Family, ShapeClass), Choice>,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    /// classes measured in this process (so that one where nothing ran right is not measured
    /// again on every prepare)
    measured: BTreeSet<ShapeClass>,
}

impl TuningState {
    /// The state for a new context: under `Wisdom` and `Measure`, the file at `path` (else
    /// the default location) is read, and one that cannot be used here is ignored with one
    /// warning.
    pub fn new(policy: Tuning, adapter: Option<AdapterKey>, path: Option<PathBuf>) -> Self {
        let path = path.or_else(default_path);
        let wisdom = match (&adapter, &path, policy) {
            (_, _, Tuning::Table) => None,
            (Some(key), Some(path), _) => Wisdom::load_or_warn(path, key),
            (Some(key), None, _) => Some(Wisdom::new(key.clone())),
            (None, _, _) => None,
        };
        Self {
            policy,
            adapter,
            path,
            wisdom,
            pins: BTreeMap::new(),
            measured: BTreeSet::new(),
        }
    }

    pub fn wisdom(&self) -> Option<&Wisdom> {
        self.wisdom.as_ref()
    }

    /// Uses `wisdom`, which must be this adapter's (a caller's device takes any).
    pub fn use_wisdom(&mut self, wisdom: Wisdom) -> Result<()> {
        if let Some(key) = &self.adapter {
            if *key != wisdom.adapter {
                return Err(Error::Input(format!(
                    "wisdom measured on {} ({}, {}), this is {} ({}, {})",
                    wisdom.adapter.name,
                    wisdom.adapter.backend,
                    wisdom.adapter.driver_info,
                    key.name,
                    key.backend,
                    key.driver_info
                )));
            }
        }
        self.adapter = Some(wisdom.adapter.clone());
        self.wisdom = Some(wisdom);
        Ok(())
    }

    /// Reads the wisdom at `path` (an error says why it cannot be used here) and saves to it
    /// from then on.
    pub fn load(&mut self, path: &Path) -> Result<usize> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let wisdom = match &self.adapter {
            Some(key) => Wisdom::decode(&bytes, key),
            None => Wisdom::decode_any(&bytes),
        }
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
        let count = wisdom.len();
        self.use_wisdom(wisdom)?;
        self.path = Some(path.to_path_buf());
        Ok(count)
    }

    /// Saves a measured choice (in memory; [`TuningState::save`] writes the file).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub fn record(&mut self, family: Family, class: ShapeClass, entry: Entry) -> Result<()> {
        let adapter = self.adapter.clone().ok_or_else(|| {
            Error::Config(
                "a caller's device has no adapter to key wisdom by: load a wisdom file first"
                    .into(),
            )
        })?;
        self.wisdom
            .get_or_insert_with(|| Wisdom::new(adapter))
            .insert(family, class, entry);
        Ok(())
    }

    /// Writes the wisdom to its file (merged with what the file holds); the path written.
    pub fn save(&self) -> Result<PathBuf> {
        let path = self.path.clone().ok_or_else(|| {
            Error::Config(format!(
                "no wisdom file: set {} or ContextOptions::wisdom_file",
                crate::gpu::wisdom::TUNE_FILE_VAR
            ))
        })?;
        if let Some(wisdom) = &self.wisdom {
            wisdom.save(&path)?;
        }
        Ok(path)
    }

    /// Forces `choice` for a class (or lifts the pin with `None`).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub fn pin(&mut self, family: Family, class: ShapeClass, choice: Option<Choice>) {
        match choice {
            Some(choice) => self.pins.insert((family, class), choice),
            None => self.pins.remove(&(family, class)),
        };
    }

    /// The choice for `family` at `shape` when one is pinned or saved (not under `Table`) and
    /// it runs `shape` on the device; `None` means the table's.
    pub fn lookup(
        &self,
        family: Family,
        class: ShapeClass,
        shape: RecurrentShape,
        caps: &DeviceCaps,
    ) -> Option<Choice> {
        let saved = || {
            let wisdom = self
                .wisdom
                .as_ref()
                .filter(|_| self.policy != Tuning::Table)?;
            Some(wisdom.get(family, class)?.choice)
        };
        let choice = self.pins.get(&(family, class)).copied().or_else(saved)?;
        match choice.check(shape, caps) {
            Ok(()) if choice.family() == family => Some(choice),
            _ => None,
        }
    }

    /// Notes that `class` was measured (whatever came of it).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub fn mark_measured(&mut self, class: ShapeClass) {
        self.measured.insert(class);
    }

    /// Whether `class` needs measuring under `Measure`: nothing saved or pinned for its
    /// recurrent kernel, and not measured in this process.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub fn needs_measuring(&self, class: ShapeClass) -> bool {
        let saved = self
            .wisdom
            .as_ref()
            .is_some_and(|w| w.get(Family::Recurrence, class).is_some());
        let pinned = self.pins.contains_key(&(Family::Recurrence, class));
        self.policy == Tuning::Measure && !saved && !pinned && !self.measured.contains(&class)
    }
}
