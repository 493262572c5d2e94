//! FID statistics files in pytorch-fid's format: an `.npz` holding `mu` (d,) and `sigma`
//! (d, d), float64 — what `python -m pytorch_fid --save-stats` writes and reads, whether saved
//! with `np.savez` or `np.savez_compressed`.

use std::path::Path;

use npyz::npz::{NpzArchive, NpzWriter};
use npyz::WriterBuilder;

use bench_metrics::frechet::Gaussian;

fn array(
    archive: &mut NpzArchive<impl std::io::Read + std::io::Seek>,
    path: &Path,
    name: &str,
) -> Result<(Vec<f64>, Vec<u64>), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: `{name}`: {e}", path.display());
    let file = archive.by_name(name).map_err(|e| err(&e))?.ok_or_else(|| {
        format!(
            "{}: no `{name}` array (pytorch-fid statistics hold `mu` and `sigma`)",
            path.display()
        )
    })?;
    let shape = file.shape().to_vec();
    let values = match file.dtype() {
        npyz::DType::Plain(t) if t.to_string() == "<f4" => file
            .into_vec::<f32>()
            .map(|v| v.into_iter().map(f64::from).collect()),
        _ => file.into_vec::<f64>(),
    }
    .map_err(|e| err(&e))?;
    Ok((values, shape))
}

/// Reads statistics written by pytorch-fid (or by [`write`]).
///
/// # Errors
/// A missing or unreadable file, missing arrays, or shapes that do not fit together.
pub fn read(path: &Path) -> Result<Gaussian, String> {
    let mut archive = NpzArchive::open(path)
        .map_err(|e| format!("cannot read statistics {}: {e}", path.display()))?;
    let (mean, mu_shape) = array(&mut archive, path, "mu")?;
    let (covariance, sigma_shape) = array(&mut archive, path, "sigma")?;
    let d = mean.len() as u64;
    if mu_shape != [d] || sigma_shape != [d, d] {
        return Err(format!(
            "{}: `mu` has shape {mu_shape:?} and `sigma` {sigma_shape:?}; expected (d,) and (d, d)",
            path.display()
        ));
    }
    Ok(Gaussian { mean, covariance })
}

/// Writes statistics as pytorch-fid does (float64 `mu` and `sigma`), through a temporary file
/// renamed into place, so that an interrupted write leaves no partial file.
///
/// # Errors
/// The file cannot be written.
pub fn write(path: &Path, stats: &Gaussian) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let temporary = path.with_extension("npz.partial");
    let d = stats.dim() as u64;
    {
        let mut npz = NpzWriter::create(&temporary).map_err(|e| err(&e))?;
        for (name, values, shape) in [
            ("mu", &stats.mean, vec![d]),
            ("sigma", &stats.covariance, vec![d, d]),
        ] {
            let mut writer = npz
                .array::<f64>(name, Default::default())
                .and_then(|b| b.default_dtype().shape(&shape).begin_nd())
                .map_err(|e| err(&e))?;
            writer.extend(values.iter().copied()).map_err(|e| err(&e))?;
            writer.finish().map_err(|e| err(&e))?;
        }
        npz.zip_writer().finish().map_err(|e| err(&e))?;
    }
    std::fs::rename(&temporary, path).map_err(|e| err(&e))
}
