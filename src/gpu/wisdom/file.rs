//! Wisdom: measured kernel choices saved per adapter, as FFTW saves its plans. A small JSON
//! file keyed by the adapter (vendor, device id, name, backend, driver, driver info) and the
//! crate version, holding one choice per (family, shape class):
//!
//! ```json
//! {"format": "lstm-wgpu wisdom", "version": 1, "crate_version": "0.1.0",
//!  "adapter": {"vendor": 4318, "device": 8989, "name": "NVIDIA H100 80GB HBM3",
//!              "backend": "Vulkan", "driver": "NVIDIA", "driver_info": "570.86"},
//!  "entries": [{"family": "recurrence", "class": "h=512 p=h b=16 d=1 fwd",
//!               "choice": "step u=4 ks=16 bt=8 qpi=8", "table": "step u=4 ks=16 bt=8 qpi=8",
//!               "table_ms": 1.91, "tuned_ms": 1.91}]}
//! ```
//!
//! A file from another adapter or crate version, or one that does not parse, is ignored with
//! one warning (never a panic, never a wrong kernel: a saved choice is checked against the
//! device again before it runs). Saving merges with what the file holds now and replaces it
//! atomically, so two processes tuning at once leave a valid file (the last one's entries
//! win where both tuned the same class).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::choice::{Choice, Family};
use super::class::ShapeClass;
use crate::error::{Error, Result};

/// `format` of a wisdom file.
const FORMAT: &str = "lstm-wgpu wisdom";
/// `version` of the layout this crate writes and reads.
pub const WISDOM_VERSION: u64 = 1;
/// The variable naming the wisdom file, over the default location.
pub const TUNE_FILE_VAR: &str = "LSTM_WGPU_TUNE_FILE";

/// Which adapter a wisdom file belongs to: everything that can change which kernel is fastest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterKey {
    /// PCI vendor id (0 where the backend has none).
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// The adapter's name.
    pub name: String,
    /// The backend, as wgpu names it (`Vulkan`, `Metal`, `Dx12`, `Gl`, `BrowserWebGpu`).
    pub backend: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version text.
    pub driver_info: String,
}

impl AdapterKey {
    /// The key of the adapter `info` describes.
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        Self {
            vendor: info.vendor,
            device: info.device,
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "vendor": self.vendor, "device": self.device, "name": self.name,
            "backend": self.backend, "driver": self.driver, "driver_info": self.driver_info,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let text = |key: &str| v.get(key)?.as_str().map(str::to_string);
        let number = |key: &str| u32::try_from(v.get(key)?.as_u64()?).ok();
        Some(Self {
            vendor: number("vendor")?,
            device: number("device")?,
            name: text("name")?,
            backend: text("backend")?,
            driver: text("driver")?,
            driver_info: text("driver_info")?,
        })
    }
}

/// One tuned choice, with what the table would have run and both times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// What runs the class.
    pub choice: Choice,
    /// What the table would have run.
    pub table: Choice,
    /// Median time of the table's choice, in milliseconds (`None` when it failed or gave
    /// wrong numbers).
    pub table_ms: Option<f64>,
    /// Median time of the tuned choice, in milliseconds.
    pub tuned_ms: f64,
}

/// The choices saved for one adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct Wisdom {
    /// The adapter the choices were measured on.
    pub adapter: AdapterKey,
    entries: BTreeMap<(Family, ShapeClass), Entry>,
}

impl Wisdom {
    /// No choices yet for `adapter`.
    pub fn new(adapter: AdapterKey) -> Self {
        Self {
            adapter,
            entries: BTreeMap::new(),
        }
    }

    /// The saved choice for a class, if any.
    pub fn get(&self, family: Family, class: ShapeClass) -> Option<&Entry> {
        self.entries.get(&(family, class))
    }

    /// Saves a choice (replacing the class's earlier one).
    pub fn insert(&mut self, family: Family, class: ShapeClass, entry: Entry) {
        self.entries.insert((family, class), entry);
    }

    /// Shape classes with a choice.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No choices saved.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every saved choice, in (family, class) order.
    pub fn entries(&self) -> impl Iterator<Item = (Family, ShapeClass, &Entry)> {
        self.entries.iter().map(|((f, c), e)| (*f, *c, e))
    }

    /// The file's bytes (pretty JSON, entries in class order).
    pub fn encode(&self) -> Vec<u8> {
        let entries: Vec<Value> = self
            .entries()
            .map(|(family, class, e)| {
                json!({
                    "family": family.name(), "class": class.to_string(),
                    "choice": e.choice.to_string(), "table": e.table.to_string(),
                    "table_ms": e.table_ms, "tuned_ms": e.tuned_ms,
                })
            })
            .collect();
        let file = json!({
            "format": FORMAT, "version": WISDOM_VERSION,
            "crate_version": env!("CARGO_PKG_VERSION"),
            "adapter": self.adapter.to_json(), "entries": entries,
        });
        let mut bytes = serde_json::to_vec_pretty(&file).expect("JSON values always encode");
        bytes.push(b'\n');
        bytes
    }

    /// Parses a file's bytes for `adapter`. An error says why the file cannot be used here:
    /// not wisdom, another version or crate version, another adapter, or a bad entry.
    pub fn decode(bytes: &[u8], adapter: &AdapterKey) -> Result<Self> {
        Self::decode_for(bytes, Some(adapter))
    }

    /// Parses a file's bytes for whichever adapter it names (for a caller's device, whose
    /// adapter the crate does not know).
    pub fn decode_any(bytes: &[u8]) -> Result<Self> {
        Self::decode_for(bytes, None)
    }

    fn decode_for(bytes: &[u8], adapter: Option<&AdapterKey>) -> Result<Self> {
        let bad = |why: String| Error::Input(format!("not usable wisdom: {why}"));
        let file: Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
        if file.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad("no `format: \"lstm-wgpu wisdom\"`".into()));
        }
        let version = file.get("version").and_then(Value::as_u64);
        if version != Some(WISDOM_VERSION) {
            return Err(bad(format!(
                "version {version:?}, this crate reads {WISDOM_VERSION}"
            )));
        }
        let crate_version = file.get("crate_version").and_then(Value::as_str);
        if crate_version != Some(env!("CARGO_PKG_VERSION")) {
            return Err(bad(format!(
                "written by lstm-wgpu {crate_version:?}, this is {}",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let theirs = file
            .get("adapter")
            .and_then(AdapterKey::from_json)
            .ok_or_else(|| bad("no adapter".into()))?;
        if let Some(adapter) = adapter.filter(|a| **a != theirs) {
            return Err(bad(format!(
                "measured on {} ({}, {}), this is {} ({}, {})",
                theirs.name,
                theirs.backend,
                theirs.driver_info,
                adapter.name,
                adapter.backend,
                adapter.driver_info
            )));
        }
        let mut wisdom = Self::new(theirs);
        let entries = file
            .get("entries")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no entries".into()))?;
        for (i, e) in entries.iter().enumerate() {
            let entry = decode_entry(e).ok_or_else(|| bad(format!("entry {i} is malformed")))?;
            let (family, class, entry) = entry;
            wisdom.insert(family, class, entry);
        }
        Ok(wisdom)
    }

    /// Reads `path` for `adapter`: `None`, with one warning line, when it exists but cannot
    /// be used here; an empty wisdom when it does not exist.
    pub fn load_or_warn(path: &Path, adapter: &AdapterKey) -> Option<Self> {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Self::new(adapter.clone())),
            Err(e) => {
                log::warn!("ignoring wisdom file {}: {e}", path.display());
                None
            }
            Ok(bytes) => match Self::decode(&bytes, adapter) {
                Ok(wisdom) => Some(wisdom),
                Err(e) => {
                    log::warn!("ignoring wisdom file {}: {e}", path.display());
                    None
                }
            },
        }
    }

    /// Writes this wisdom to `path`, merged over what the file holds now for the same
    /// adapter (this one's entries win), atomically: the file is whole before and after. A
    /// file holding another adapter's wisdom is an error, and left as it is.
    pub fn save(&self, path: &Path) -> Result<()> {
        let existing = std::fs::read(path).ok();
        let mut merged = match existing.as_deref().map(Self::decode_any) {
            Some(Ok(theirs)) if theirs.adapter != self.adapter => {
                return Err(Error::Input(format!(
                    "{} holds the wisdom of {} ({}, {}): not replaced; save this adapter's \
                     to another file",
                    path.display(),
                    theirs.adapter.name,
                    theirs.adapter.backend,
                    theirs.adapter.driver_info
                )))
            }
            Some(Ok(ours)) => ours,
            // none yet, corrupt, or another crate version's: replaced
            _ => Self::new(self.adapter.clone()),
        };
        for (family, class, entry) in self.entries() {
            merged.insert(family, class, *entry);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        crate::io::atomic::write_atomic(path, &merged.encode())
    }
}

fn decode_entry(e: &Value) -> Option<(Family, ShapeClass, Entry)> {
    let text = |key: &str| e.get(key)?.as_str();
    let choice = |key: &str| text(key)?.parse::<Choice>().ok();
    let ms = |key: &str| e.get(key)?.as_f64().filter(|t| t.is_finite() && *t >= 0.0);
    let table_ms = match e.get("table_ms")? {
        Value::Null => None,
        _ => Some(ms("table_ms")?),
    };
    let family = Family::from_name(text("family")?)?;
    let entry = Entry {
        choice: choice("choice")?,
        table: choice("table")?,
        table_ms,
        tuned_ms: ms("tuned_ms")?,
    };
    let same = entry.choice.family() == family && entry.table.family() == family;
    same.then_some((family, text("class")?.parse().ok()?, entry))
}

/// Where the wisdom file is by default: `LSTM_WGPU_TUNE_FILE` when set, else
/// `lstm-wgpu/wisdom.json` in the platform's cache directory (`$XDG_CACHE_HOME` or
/// `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows); `None`
/// where there is neither (a browser).
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(TUNE_FILE_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    cache_dir().map(|dir| dir.join("lstm-wgpu").join("wisdom.json"))
}

fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "windows") {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|home| home.join("Library").join("Caches"))
    } else if cfg!(target_arch = "wasm32") {
        None
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kernels::{Recurrence, SequenceTiles, StepTiles};

    pub(crate) fn adapter(name: &str) -> AdapterKey {
        AdapterKey {
            vendor: 0x10de,
            device: 0x2330,
            name: name.into(),
            backend: "Vulkan".into(),
            driver: "NVIDIA".into(),
            driver_info: "570.86".into(),
        }
    }

    fn some_wisdom() -> Wisdom {
        let mut w = Wisdom::new(adapter("H100"));
        let step = Recurrence::PerStep(StepTiles {
            units: 4,
            splits: 16,
            rows: 8,
            quads: 8,
            span: 1,
        });
        let sequence = Recurrence::Sequence(SequenceTiles {
            splits: 4,
            steps: 32,
            subgroups: true,
        });
        w.insert(
            Family::Recurrence,
            "h=512 p=h b=16 d=1 fwd".parse().unwrap(),
            Entry {
                choice: Choice::Recurrence(step),
                table: Choice::Recurrence(sequence),
                table_ms: Some(1.25),
                tuned_ms: 0.1 + 0.2,
            },
        );
        w.insert(
            Family::Recurrence,
            "h=64 p=h b=1 d=2 train".parse().unwrap(),
            Entry {
                choice: Choice::Recurrence(sequence),
                table: Choice::Recurrence(sequence),
                table_ms: None,
                tuned_ms: 0.5,
            },
        );
        w
    }

    #[test]
    fn wisdom_round_trips_through_its_file() {
        let w = some_wisdom();
        let back = Wisdom::decode(&w.encode(), &w.adapter).unwrap();
        assert_eq!(back, w);
        assert_eq!(back.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/wisdom.json");
        w.save(&path).unwrap();
        assert_eq!(Wisdom::load_or_warn(&path, &w.adapter), Some(w));
    }

    #[test]
    fn another_adapter_version_or_a_corrupt_file_is_ignored() {
        let w = some_wisdom();
        let bytes = w.encode();
        let other = adapter("RTX 4090");
        let msg = Wisdom::decode(&bytes, &other).unwrap_err().to_string();
        assert!(
            msg.contains("measured on H100") && msg.contains("RTX 4090"),
            "{msg}"
        );
        let mut driver = w.adapter.clone();
        driver.driver_info = "575.0".into();
        assert!(Wisdom::decode(&bytes, &driver).is_err());
        let text = String::from_utf8(bytes.clone()).unwrap();
        let older = text.replace(
            &format!("\"crate_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
            "\"crate_version\": \"0.0.1\"",
        );
        assert_ne!(older, text);
        let msg = Wisdom::decode(older.as_bytes(), &w.adapter)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("0.0.1"), "{msg}");
        let newer = text.replace("\"version\": 1", "\"version\": 2");
        assert!(Wisdom::decode(newer.as_bytes(), &w.adapter).is_err());
        let wrong_kernel = text.replace("step u=4 ks=16 bt=8 qpi=8", "step u=4");
        assert!(Wisdom::decode(wrong_kernel.as_bytes(), &w.adapter).is_err());
        // a choice of another family under `recurrence` is malformed
        let wrong_family = text.replace("step u=4 ks=16 bt=8 qpi=8", "ksplit max=2");
        assert!(Wisdom::decode(wrong_family.as_bytes(), &w.adapter).is_err());
        // a caller's device takes the file's own adapter
        assert_eq!(Wisdom::decode_any(&bytes).unwrap(), w);
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 3] {
            assert!(
                Wisdom::decode(&bytes[..cut], &w.adapter).is_err(),
                "cut {cut}"
            );
        }
        // through the file: ignored (None), never a panic; a missing file is empty wisdom
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wisdom.json");
        assert!(Wisdom::load_or_warn(&path, &w.adapter).unwrap().is_empty());
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(Wisdom::load_or_warn(&path, &w.adapter), None);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Wisdom::load_or_warn(&path, &other), None);
        // saving another adapter's wisdom over it is refused, the file kept
        let msg = Wisdom::new(other).save(&path).unwrap_err().to_string();
        assert!(msg.contains("holds the wisdom of H100"), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn saving_merges_with_the_file_and_replaces_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wisdom.json");
        let w = some_wisdom();
        w.save(&path).unwrap();
        let mut later = Wisdom::new(w.adapter.clone());
        let class: ShapeClass = "h=1024 p=h b=64 d=1 fwd".parse().unwrap();
        let entry = *w.entries().next().unwrap().2;
        later.insert(Family::Recurrence, class, entry);
        later.save(&path).unwrap();
        let merged = Wisdom::load_or_warn(&path, &w.adapter).unwrap();
        assert_eq!(merged.len(), 3);
        assert_eq!(merged.get(Family::Recurrence, class), Some(&entry));
        // a corrupt file is replaced by a valid one, not merged
        std::fs::write(&path, b"{").unwrap();
        later.save(&path).unwrap();
        assert_eq!(Wisdom::load_or_warn(&path, &w.adapter), Some(later));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left");
    }

    #[test]
    fn two_processes_saving_at_once_leave_a_valid_file() {
        // threads stand in for processes here; each save is a whole-file rename
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wisdom.json");
        let w = some_wisdom();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let _ = w.save(&path);
                        if let Ok(bytes) = std::fs::read(&path) {
                            Wisdom::decode(&bytes, &w.adapter).unwrap();
                        }
                    }
                });
            }
        });
        assert_eq!(Wisdom::load_or_warn(&path, &w.adapter), Some(w));
    }
}
