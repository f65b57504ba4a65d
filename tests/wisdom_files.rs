//! The wisdom files committed under benches/wisdom/ (the measurements the kernel table is
//! generated from: benches/wisdom/table.py) stay readable by this crate, and every choice in
//! them is one the device-free checks accept.

use lstm_wgpu::gpu::wisdom::{Choice, Family, Wisdom};

#[test]
fn committed_wisdom_files_decode_and_hold_forward_recurrence_choices() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wisdom");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        let wisdom =
            Wisdom::decode_any(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!wisdom.is_empty(), "{}: no entries", path.display());
        for (family, class, entry) in wisdom.entries() {
            assert_eq!(entry.choice.family(), family);
            if family == Family::Recurrence {
                assert!(matches!(entry.choice, Choice::Recurrence(_)), "{class}");
            }
            assert!(entry.tuned_ms > 0.0, "{}: {class}", path.display());
        }
    }
    assert!(files > 0, "no wisdom files in {}", dir.display());
}
