//! Loading the weights of diffusers/transformers checkpoints (safetensors) into burn modules.
//!
//! Every SD component (text encoder, UNet, VAE) loads through [`load_safetensors`] or
//! [`load_mapped`], so that a user with a wrong or incomplete checkpoint gets the same kind of
//! message whichever part and layout is off: the key, the shape our module expects, the shape
//! found and the file. Module fields are named after diffusers' and transformers 4's keys, so a
//! diffusers folder loads without remapping; other layouts (transformers 5's text encoder keys,
//! single files with the original SD key names) give [`load_mapped`] each module tensor's key in
//! the file, and their errors name the file's keys. burn's PyTorch adapter transposes linear
//! weights and renames norm parameters, and fp16/bf16 files are widened to f32 on load.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{
    BurnToPyTorchAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore, TensorSnapshot, TensorSnapshotError,
};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use serde::de::DeserializeOwned;
use std::rc::Rc;

/// Where users get the weights this loader reads: SD v1.5's diffusers folder, or its single
/// file (original CompVis key names, what most SD v1.x downloads are).
pub const SD15_SOURCE: &str =
    "the diffusers folder of `stable-diffusion-v1-5/stable-diffusion-v1-5` \
on Hugging Face (https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5), e.g. \
`huggingface-cli download stable-diffusion-v1-5/stable-diffusion-v1-5 model_index.json \
scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt text_encoder/config.json \
text_encoder/model.safetensors unet/config.json unet/diffusion_pytorch_model.safetensors \
vae/config.json vae/diffusion_pytorch_model.safetensors --local-dir sd-v1-5`, or the single file \
`v1-5-pruned-emaonly.safetensors` of the same repository \
(`huggingface-cli download stable-diffusion-v1-5/stable-diffusion-v1-5 \
v1-5-pruned-emaonly.safetensors --local-dir .`, then `--model v1-5-pruned-emaonly.safetensors`)";

/// One tensor that does not fit the module (names and shapes in the file's PyTorch layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorProblem {
    Missing {
        key: String,
        expected: Vec<usize>,
    },
    Shape {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}

impl fmt::Display for TensorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { key, expected } => {
                write!(f, "`{key}`: missing (expected shape {expected:?})")
            }
            Self::Shape {
                key,
                expected,
                found,
            } => write!(f, "`{key}`: expected shape {expected:?}, found {found:?}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{what} not found: expected {}. Get SD v1.5 from {SD15_SOURCE}",
        paths.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(" or "))]
    MissingFile { what: String, paths: Vec<PathBuf> },
    #[error("cannot read `{}`: {message}", path.display())]
    Read { path: PathBuf, message: String },
    /// A file that reads but is not (all of) an SD v1 checkpoint in a layout this loader knows.
    #[error("`{}`: {message}", path.display())]
    Layout { path: PathBuf, message: String },
    #[error("`{}` does not fit the model ({} tensor(s)):\n  {}", file.display(), problems.len(),
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Tensors {
        file: PathBuf,
        problems: Vec<TensorProblem>,
    },
}

impl LoadError {
    /// The message without the closing pointer to SD v1.5, for files that are not SD's.
    pub fn without_sd_source(&self) -> String {
        let message = self.to_string();
        match message.split_once(". Get SD v1.5 from") {
            Some((head, _)) => head.to_string(),
            None => message,
        }
    }
}

/// Reads a component's `config.json` (or any JSON file) into `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::MissingFile {
            what: "config file".into(),
            paths: vec![path.to_path_buf()],
        },
        _ => LoadError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The weights file names a diffusers component folder may hold, in order of preference:
/// transformers names it `model.safetensors`, diffusers `diffusion_pytorch_model.safetensors`;
/// `variant="fp16"` saves add `.fp16` before the extension.
pub const WEIGHT_FILE_NAMES: [&str; 4] = [
    "model.safetensors",
    "diffusion_pytorch_model.safetensors",
    "model.fp16.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
];

/// The weights file of a diffusers component folder (`unet/`, `vae/`, `text_encoder/`): the
/// full-precision file when there is one (a folder with both keeps the fp16 variant for users
/// who ask diffusers for it; full precision loses nothing here, where everything runs in f32),
/// else the fp16 variant.
///
/// # Errors
/// [`LoadError::MissingFile`] naming every accepted path.
pub fn component_weights(folder: &Path) -> Result<PathBuf, LoadError> {
    WEIGHT_FILE_NAMES
        .iter()
        .map(|n| folder.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| LoadError::MissingFile {
            what: "weights file".into(),
            paths: WEIGHT_FILE_NAMES.iter().map(|n| folder.join(n)).collect(),
        })
}

/// One tensor's entry in a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct TensorInfo {
    /// As safetensors spells it: `F16`, `F32`, `BF16`, `I64`, …
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// A safetensors file's tensors by key, from its header alone.
pub type Header = BTreeMap<String, TensorInfo>;

/// Reads the header of a safetensors file (8 bytes of length, then JSON) without touching the
/// tensor data, so that a 4 GB checkpoint is inspected in microseconds.
///
/// # Errors
/// [`LoadError::MissingFile`] when there is no file, [`LoadError::Read`] when it is not a
/// safetensors file.
pub fn read_header(file: &Path) -> Result<Header, LoadError> {
    use std::io::Read;
    let read_err = |message: String| LoadError::Read {
        path: file.to_path_buf(),
        message,
    };
    let mut f = std::fs::File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::MissingFile {
            what: "weights file".into(),
            paths: vec![file.to_path_buf()],
        },
        _ => read_err(e.to_string()),
    })?;
    let file_len = f.metadata().map_err(|e| read_err(e.to_string()))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| {
        read_err("not a safetensors file (shorter than its 8-byte header length)".into())
    })?;
    let len = u64::from_le_bytes(len);
    // safetensors caps headers at 100 MB; a larger "length" means the file is something else.
    if len > 100_000_000 || len + 8 > file_len {
        return Err(read_err(format!(
            "not a safetensors file (header length {len}, file length {file_len})"
        )));
    }
    let mut json = vec![0u8; len as usize];
    f.read_exact(&mut json)
        .map_err(|e| read_err(e.to_string()))?;
    let mut raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&json)
        .map_err(|e| read_err(format!("not a safetensors file: {e}")))?;
    raw.remove("__metadata__");
    raw.into_iter()
        .map(|(k, v)| {
            serde_json::from_value(v)
                .map(|info| (k.clone(), info))
                .map_err(|e| read_err(format!("tensor `{k}`: {e}")))
        })
        .collect()
}

/// The (key, shape) pairs a module expects from a PyTorch-layout checkpoint, sorted by key.
///
/// Reads shapes without materialising parameters, so a freshly built model's lazy weights are
/// never allocated (loading the 860M-parameter UNet then costs its checkpoint's memory only).
pub fn expected_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut visitor = ShapeVisitor::default();
    module.visit(&mut visitor);
    let mut out: Vec<_> = visitor
        .snapshots
        .iter()
        .map(|s| BurnToPyTorchAdapter.adapt(s))
        .map(|s| (s.full_path(), s.shape.to_vec()))
        .collect();
    out.sort();
    out
}

/// Collects (path, container types, lazy shape) of every float parameter as data-less
/// snapshots, which burn's PyTorch adapter then maps to PyTorch names and layouts.
#[derive(Default)]
struct ShapeVisitor {
    path: Vec<String>,
    containers: Vec<String>,
    snapshots: Vec<TensorSnapshot>,
}

impl<B: Backend> ModuleVisitor<B> for ShapeVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.snapshots.push(TensorSnapshot::from_closure(
            Rc::new(|| Err(TensorSnapshotError::DataError("shape only".into()))),
            DType::F32,
            param.lazy_shape(),
            self.path.clone(),
            self.containers.clone(),
            param.id,
        ));
    }
}

/// Loads `file` into `module`, checking every tensor first. Keys in the file that the module
/// does not use (e.g. transformers' old `position_ids` buffer) are ignored.
pub fn load_safetensors<B: Backend, M: Module<B>>(module: M, file: &Path) -> Result<M, LoadError> {
    load_safetensors_remapped(module, file, &[])
}

/// [`load_safetensors`] with the file's keys first rewritten by `(regex, replacement)` pairs,
/// for checkpoints saved under older names; errors name the rewritten keys.
pub fn load_safetensors_remapped<B: Backend, M: Module<B>>(
    mut module: M,
    file: &Path,
    remap: &[(&str, &str)],
) -> Result<M, LoadError> {
    let read_err = |e: &dyn fmt::Display| LoadError::Read {
        path: file.to_path_buf(),
        message: e.to_string(),
    };
    let report = check_safetensors(&module, file, remap)?;
    if !report.problems.is_empty() {
        return Err(LoadError::Tensors {
            file: file.to_path_buf(),
            problems: report.problems,
        });
    }
    let mut store = store(file, remap);
    let result = module.load_from(&mut store).map_err(|e| read_err(&e))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(read_err(&result));
    }
    Ok(module)
}

fn store(file: &Path, remap: &[(&str, &str)]) -> SafetensorsStore {
    let mut store = SafetensorsStore::from_file(file)
        .with_from_adapter(PytorchLayout.chain(WidenToF32))
        .allow_partial(true)
        .validate(false);
    for (from, to) in remap {
        store = store.with_key_remapping(from, *to);
    }
    store
}

/// What a weights file holds for a module, read from its header only (no tensor data).
#[derive(Debug, Clone)]
pub struct FileReport {
    pub file: PathBuf,
    /// The stored dtypes (`F16`, `F32`, …): fp16 files are widened on load.
    pub dtypes: Vec<String>,
    /// Tensors in the file, used or not.
    pub tensors: usize,
    /// Parameters the module expects.
    pub parameters: usize,
    /// Tensors the module expects that are missing or mis-shaped.
    pub problems: Vec<TensorProblem>,
}

/// Compares `file` with the tensors `module` expects, reading the header only, so that a
/// folder can be checked (`bench doctor`) without loading gigabytes.
///
/// # Errors
/// A missing or unreadable file.
pub fn check_safetensors<B: Backend, M: Module<B>>(
    module: &M,
    file: &Path,
    remap: &[(&str, &str)],
) -> Result<FileReport, LoadError> {
    if !file.is_file() {
        return Err(LoadError::MissingFile {
            what: "weights file".into(),
            paths: vec![file.to_path_buf()],
        });
    }
    // The format first, in plain words (burn's store reports "header too small" and the like).
    read_header(file)?;
    let mut store = store(file, remap);
    let found = store.get_all_snapshots().map_err(|e| LoadError::Read {
        path: file.to_path_buf(),
        message: e.to_string(),
    })?;
    let expected = expected_tensors(module);
    let parameters = expected
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    let problems = expected
        .into_iter()
        .filter_map(|(key, expected)| match found.get(&key) {
            None => Some(TensorProblem::Missing { key, expected }),
            Some(s) if s.shape.to_vec() != expected => Some(TensorProblem::Shape {
                key,
                expected,
                found: s.shape.to_vec(),
            }),
            Some(_) => None,
        })
        .collect();
    let mut dtypes: Vec<String> = found.values().map(|s| format!("{:?}", s.dtype)).collect();
    dtypes.sort();
    dtypes.dedup();
    Ok(FileReport {
        file: file.to_path_buf(),
        dtypes,
        tensors: found.len(),
        parameters,
        problems,
    })
}

/// Where one of a module's tensors sits in a file whose keys are not the module's own: its key
/// there, and how it is stored when not as the module's tensor itself — a linear weight
/// `[out, in]` as the equivalent 1×1 convolution kernel `[out, in, 1, 1]` (the original SD VAE's
/// attention projections; both are accepted), as one of `count` equal blocks of rows of a fused
/// tensor (OpenCLIP's `in_proj_weight`, q, k and v stacked), transposed (OpenCLIP's
/// projections, stored `[in, out]` for `x @ proj`), or with other unit dimensions (BLIP's class
/// token `[1, 1, D]` for a `[D]` parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKey {
    pub key: String,
    pub conv1x1: bool,
    /// `(index, count)`: rows `index·n/count .. (index+1)·n/count` of the stored tensor.
    pub part: Option<(usize, usize)>,
    /// Stored as the transpose of the module's 2-D tensor.
    pub transposed: bool,
    /// Stored in any shape of as many elements, read in the module's.
    pub reshaped: bool,
}

impl FileKey {
    /// A tensor stored under `key` in the module's own layout.
    pub fn plain(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            conv1x1: false,
            part: None,
            transposed: false,
            reshaped: false,
        }
    }

    /// The module's tensor in another shape of as many elements, under `key`.
    pub fn reshaped(key: impl Into<String>) -> Self {
        Self {
            reshaped: true,
            ..Self::plain(key)
        }
    }

    /// Block `index` of `count` stacked along the first dimension under `key`.
    pub fn part(key: impl Into<String>, index: usize, count: usize) -> Self {
        Self {
            part: Some((index, count)),
            ..Self::plain(key)
        }
    }

    /// The transpose of the module's 2-D tensor, under `key`.
    pub fn transposed(key: impl Into<String>) -> Self {
        Self {
            transposed: true,
            ..Self::plain(key)
        }
    }

    /// The shape the file holds for a module tensor of `shape` (PyTorch layout).
    fn stored_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut stored = shape.to_vec();
        if self.conv1x1 && shape.len() == 2 {
            stored.extend([1, 1]);
        }
        if self.transposed && shape.len() == 2 {
            stored.reverse();
        }
        if let (Some((_, count)), Some(first)) = (self.part, stored.first_mut()) {
            *first *= count;
        }
        stored
    }

    /// The module's tensor of `target` shape out of the stored one.
    fn extract(
        &self,
        data: TensorData,
        target: &[usize],
    ) -> Result<TensorData, TensorSnapshotError> {
        if self.part.is_none() && !self.transposed {
            let mut data = data;
            data.shape = target.to_vec().into();
            return Ok(data);
        }
        let stored: Vec<usize> = data.shape.to_vec();
        let mut values: Vec<f32> = data
            .convert::<f32>()
            .to_vec()
            .map_err(|e| TensorSnapshotError::DataError(format!("{e:?}")))?;
        let mut rows = stored.first().copied().unwrap_or(1);
        let row_len: usize = stored.iter().skip(1).product();
        if let Some((index, count)) = self.part {
            rows /= count;
            values = values[index * rows * row_len..(index + 1) * rows * row_len].to_vec();
        }
        if self.transposed {
            let mut out = vec![0.0f32; values.len()];
            for r in 0..rows {
                for c in 0..row_len {
                    out[c * rows + r] = values[r * row_len + c];
                }
            }
            values = out;
        }
        Ok(TensorData::new(values, target.to_vec()))
    }
}

/// The tensors of a weights file, by key: their shapes and dtypes (the header) and lazy
/// snapshots of their data. Safetensors files, and PyTorch pickles (`.pt`, `.pth`, `.bin`,
/// `.ckpt`) holding a state dict, at the top level or under `state_dict` (training
/// checkpoints such as HPSv2's).
///
/// # Errors
/// A missing or unreadable file.
pub fn read_tensors(file: &Path) -> Result<(Header, BTreeMap<String, TensorSnapshot>), LoadError> {
    let read_err = |e: &dyn fmt::Display| LoadError::Read {
        path: file.to_path_buf(),
        message: e.to_string(),
    };
    if !file.is_file() {
        return Err(LoadError::MissingFile {
            what: "weights file".into(),
            paths: vec![file.to_path_buf()],
        });
    }
    if file.extension().and_then(|e| e.to_str()) == Some("safetensors") {
        let header = read_header(file)?;
        let snapshots = SafetensorsStore::from_file(file)
            .get_all_snapshots()
            .map_err(|e| read_err(&e))?
            .clone();
        return Ok((header, snapshots));
    }
    let pickle = || PytorchStore::from_file(file).map_indices_contiguous(false);
    let snapshots = match pickle()
        .with_top_level_key("state_dict")
        .get_all_snapshots()
    {
        Ok(found) if !found.is_empty() => found.clone(),
        _ => pickle()
            .get_all_snapshots()
            .map_err(|e| read_err(&format!("not a PyTorch state dict: {e}")))?
            .clone(),
    };
    let header = snapshots
        .iter()
        .map(|(k, s)| {
            let info = TensorInfo {
                dtype: format!("{:?}", s.dtype).to_uppercase(),
                shape: s.shape.to_vec(),
            };
            (k.clone(), info)
        })
        .collect();
    Ok((header, snapshots))
}

/// Compares a module with a file whose keys `map` gives (module key in PyTorch naming → file
/// key), from the file's `header` only. Problems name the file's keys and shapes, since those
/// are what a user can look up in the file. `prefix` is the part of the file that belongs to
/// this module (`""` for a whole file): `tensors` and `dtypes` count only those keys.
pub fn check_mapped<B: Backend, M: Module<B>>(
    module: &M,
    file: &Path,
    header: &Header,
    prefix: &str,
    map: &dyn Fn(&str) -> FileKey,
) -> FileReport {
    let expected = expected_tensors(module);
    let parameters = expected
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    let mut problems: Vec<TensorProblem> = Vec::new();
    for problem in expected.into_iter().filter_map(|(key, shape)| {
        let to = map(&key);
        let stored = to.stored_shape(&shape);
        match header.get(&to.key) {
            None => Some(TensorProblem::Missing {
                key: to.key,
                expected: stored,
            }),
            // A 1×1 kernel may also be stored as the linear weight it stands for.
            // Or a tensor kept in another shape of as many elements.
            Some(info)
                if info.shape == stored
                    || (to.conv1x1
                        && !to.transposed
                        && to.part.is_none()
                        && info.shape == shape)
                    || (to.reshaped
                        && info.shape.iter().product::<usize>()
                            == shape.iter().product::<usize>()) =>
            {
                None
            }
            Some(info) => Some(TensorProblem::Shape {
                key: to.key,
                expected: stored,
                found: info.shape.clone(),
            }),
        }
    }) {
        // q, k and v read from one fused tensor report it once.
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    let mine: Vec<&TensorInfo> = header
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .collect();
    let mut dtypes: Vec<String> = mine.iter().map(|i| i.dtype.clone()).collect();
    dtypes.sort();
    dtypes.dedup();
    FileReport {
        file: file.to_path_buf(),
        dtypes,
        tensors: mine.len(),
        parameters,
        problems,
    }
}

/// Loads `module` from a file whose keys `map` gives (see [`check_mapped`]), checking every
/// tensor first; other keys of the file are ignored. fp16/bf16 tensors are widened to f32 and 1×1
/// convolution kernels standing for linear weights are reshaped, as the data is read.
///
/// # Errors
/// [`LoadError::Tensors`] naming every missing or mis-shaped tensor by its key in the file;
/// [`LoadError::Read`] for an unreadable file.
pub fn load_mapped<B: Backend, M: Module<B>>(
    mut module: M,
    file: &Path,
    map: &dyn Fn(&str) -> FileKey,
) -> Result<M, LoadError> {
    let read_err = |e: &dyn fmt::Display| LoadError::Read {
        path: file.to_path_buf(),
        message: e.to_string(),
    };
    let (header, found) = read_tensors(file)?;
    let report = check_mapped(&module, file, &header, "", map);
    if !report.problems.is_empty() {
        return Err(LoadError::Tensors {
            file: file.to_path_buf(),
            problems: report.problems,
        });
    }
    let snapshots = expected_tensors(&module)
        .into_iter()
        .map(|(key, shape)| {
            let to = map(&key);
            let stored = &found[&to.key];
            let path: Vec<String> = key.split('.').map(String::from).collect();
            let data = stored.clone_data_fn();
            let dtype = if to.part.is_some() || to.transposed {
                DType::F32
            } else {
                stored.dtype
            };
            let target = shape.clone();
            TensorSnapshot::from_closure(
                Rc::new(move || to.extract(data()?, &target)),
                dtype,
                shape.into(),
                path,
                vec![],
                stored.tensor_id.unwrap_or_default(),
            )
        })
        .collect();
    let result = module.apply(
        snapshots,
        None,
        Some(Box::new(PytorchLayout.chain(WidenToF32))),
        false,
    );
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(read_err(&result));
    }
    Ok(module)
}

/// burn's `PyTorchToBurnAdapter` (linear weights `[out, in]` → `[in, out]`, norm parameters
/// renamed) with the transpose done by a typed loop over f32: burn-store 0.21 transposes
/// element by element through byte slices, which took 70 % of loading CLIP ViT-L/14 (8 of 12 s).
#[derive(Clone)]
pub(crate) struct PytorchLayout;

impl ModuleAdapter for PytorchLayout {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let linear_weight = snapshot.module_type().as_deref() == Some("Struct:Linear")
            && snapshot
                .path_stack
                .as_ref()
                .and_then(|p| p.last())
                .map(String::as_str)
                == Some("weight")
            && snapshot.shape.len() == 2;
        if !linear_weight {
            return PyTorchToBurnAdapter.adapt(snapshot);
        }
        let data = snapshot.clone_data_fn();
        let [rows, cols] = [snapshot.shape[0], snapshot.shape[1]];
        TensorSnapshot::from_closure(
            Rc::new(move || {
                let values: Vec<f32> = data()?
                    .convert::<f32>()
                    .to_vec()
                    .map_err(|e| TensorSnapshotError::DataError(format!("{e:?}")))?;
                let mut out = vec![0.0f32; values.len()];
                // Blocks keep both sides in cache.
                const BLOCK: usize = 32;
                for r0 in (0..rows).step_by(BLOCK) {
                    for c0 in (0..cols).step_by(BLOCK) {
                        for r in r0..(r0 + BLOCK).min(rows) {
                            for c in c0..(c0 + BLOCK).min(cols) {
                                out[c * rows + r] = values[r * cols + c];
                            }
                        }
                    }
                }
                Ok(TensorData::new(out, [cols, rows]))
            }),
            DType::F32,
            [cols, rows].into(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn get_alternative_param_name(&self, param_name: &str, container_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, container_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Widens fp16/bf16/f64 tensors to f32, the dtype of every module here, whatever the module type
/// (burn's `HalfPrecisionAdapter` only converts a fixed list of layer types).
#[derive(Clone)]
struct WidenToF32;

impl ModuleAdapter for WidenToF32 {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64) {
            return snapshot.clone();
        }
        let data = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}
