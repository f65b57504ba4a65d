//! src/gpu is built in layers, lowest first: each layer's files name only lower layers
//! (`crate::gpu::<layer>::…`), and within `device/` each file imports only the files before
//! it in the order its mod.rs states. No file reaches up with `super::super::`.

use std::path::{Path, PathBuf};

/// The layers of src/gpu, lowest first (as in the module map of src/gpu/mod.rs).
const LAYERS: [&str; 8] = [
    "kernels", "wisdom", "device", "plan", "weights", "forward", "stream", "train",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The code of `text` without comments (`//` to the end of the line; doc comments too).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or("")))
}

/// The identifiers that follow `prefix` in `line` (`crate::gpu::plan::X` gives `plan`).
fn names_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &line[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Every way `text`, a file of `layer`, breaks the layering: one line each.
fn layer_violations(layer: &str, text: &str) -> Vec<String> {
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);
    let own = rank(layer).expect("a known layer");
    let mut out = Vec::new();
    for (number, line) in code_lines(text) {
        if line.contains("super::super::") {
            out.push(format!(
                "line {number}: `super::super::` (name the layer: crate::gpu::…)"
            ));
        }
        for name in names_after(line, "crate::gpu::") {
            match rank(name) {
                Some(r) if r < own => {}
                Some(r) if r == own => out.push(format!(
                    "line {number}: crate::gpu::{name} inside {name}/ (use super::)"
                )),
                Some(_) => out.push(format!(
                    "line {number}: {layer}/ imports the higher layer {name}/"
                )),
                None => out.push(format!(
                    "line {number}: crate::gpu::{name} is no layer (only the facade re-exports)"
                )),
            }
        }
    }
    out
}

/// Every `super::<file>` in `text` that is not before `file` in `order`.
fn order_violations(file: &str, order: &[&str], text: &str) -> Vec<String> {
    let at = order.iter().position(|f| *f == file);
    let mut out = Vec::new();
    let Some(at) = at else {
        return vec![format!("{file} is not in the stated order")];
    };
    for (number, line) in code_lines(text) {
        for name in names_after(line, "super::") {
            match order.iter().position(|f| *f == name) {
                Some(p) if p < at => {}
                _ => out.push(format!(
                    "line {number}: {file} imports super::{name}, which is not before it"
                )),
            }
        }
    }
    out
}

#[test]
fn every_gpu_layer_imports_only_lower_layers() {
    let root = Path::new("src/gpu");
    let mut problems = Vec::new();
    let mut folders: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut layers = LAYERS.map(String::from).to_vec();
    layers.sort();
    assert_eq!(folders, layers, "the folders of src/gpu are the layers");
    for layer in LAYERS {
        for path in rust_files(&root.join(layer)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for v in layer_violations(layer, &text) {
                problems.push(format!("{}: {v}", path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Device objects `kernels/` must never hold or make: it is data only.
const DEVICE_TYPES: [&str; 6] = [
    "wgpu::Device",
    "wgpu::Queue",
    "wgpu::Buffer",
    "wgpu::CommandEncoder",
    "wgpu::ComputePipeline",
    "wgpu::BindGroup",
];

#[test]
fn kernels_hold_no_device_objects() {
    let mut problems = Vec::new();
    for path in rust_files(Path::new("src/gpu/kernels")) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in code_lines(&text) {
            for ty in DEVICE_TYPES.iter().filter(|ty| line.contains(*ty)) {
                problems.push(format!("{}:{number}: {ty}", path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn device_files_import_only_those_before_them() {
    let dir = Path::new("src/gpu/device");
    let module = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let order: Vec<&str> = module
        .lines()
        .find_map(|l| l.strip_prefix("//! Order: "))
        .expect("device/mod.rs states `//! Order: a, b, …`")
        .split(", ")
        .map(str::trim)
        .collect();
    let mut problems = Vec::new();
    for path in rust_files(dir) {
        let file = path.file_stem().unwrap().to_string_lossy().into_owned();
        if file == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        problems.extend(order_violations(&file, &order, &text));
    }
    let mut listed: Vec<&str> = order.clone();
    listed.sort();
    let mut files: Vec<String> = rust_files(dir)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|f| f != "mod")
        .collect();
    files.sort();
    assert_eq!(files, listed, "the order names every device file once");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks above can fail: an upward import, a sibling through the facade, a
/// `super::super::` and an out-of-order device import are each caught.
#[test]
fn the_checks_catch_what_they_forbid() {
    assert!(layer_violations("kernels", "use crate::gpu::kernels::Kernel;").len() == 1);
    assert!(layer_violations("device", "use crate::gpu::forward::GpuLstm;").len() == 1);
    assert!(layer_violations("forward", "use super::super::plan::Plan;").len() == 1);
    assert!(layer_violations("forward", "use crate::gpu::GpuLstm;").len() == 1);
    assert!(
        layer_violations("train", "use crate::gpu::plan::Plan; // crate::gpu::train").is_empty()
    );
    let order = ["sync", "alloc", "context"];
    assert!(order_violations("alloc", &order, "use super::context::GpuContext;").len() == 1);
    assert!(order_violations("context", &order, "use super::alloc::buffer;").is_empty());
}
