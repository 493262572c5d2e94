//! `bench score`: a reward's score of every image in a folder, as CSV on stdout — what one
//! checks before putting a reward in a sweep (does it rank these images as I expect? does it
//! match the reference code's numbers?).

use std::ops::ControlFlow;
use std::path::PathBuf;

use clap::Args;

use bench_core::{ParamsCodec, ParamsText, SampleKind, Source};
use bench_envs::sd::read_prompt_file;

use crate::backend::HarnessBackend;
use crate::device::{DeviceSpec, OnDevice};
use crate::image_folder::{image_bar, image_files, visit_images};
use crate::plugins::Plugins;
use crate::resources::Resources;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The reward's name (`bench list`), one that scores images.
    #[arg(long)]
    pub reward: String,
    /// Its parameters in RON, as written in a sweep: `--params '(quality: 90)'`.
    #[arg(long)]
    pub params: Option<String>,
    /// A folder of PNG or JPEG images (not searched recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// The prompt every image is scored with (rewards that read prompts need one).
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// A file of prompts: one line for every image, or one line per image in file-name order.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Images decoded and scored at once (images of different sizes are never scored together).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where to score: `cpu`, `cuda` (GPU 0) or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

fn is_broken_pipe(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// One prompt per image.
fn prompts(args: &ScoreArgs, n: usize) -> Result<Vec<String>, String> {
    match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => Ok(vec![p.clone(); n]),
        (None, Some(file)) => {
            let lines = read_prompt_file(file).map_err(|e| format!("--prompt-file: {e}"))?;
            match lines.len() {
                1 => Ok(vec![lines[0].clone(); n]),
                l if l == n => Ok(lines),
                l => Err(format!(
                    "--prompt-file: {} has {l} prompts for {n} images (give one, or one per \
                     image in file-name order)",
                    file.display()
                )),
            }
        }
        (None, None) => Ok(vec![String::new(); n]),
    }
}

/// Parameters given as `--params RON` (none: the defaults), resolved.
///
/// # Errors
/// RON that does not parse or does not fit the parameters, with its position.
pub fn resolve_params(codec: &ParamsCodec, text: Option<&str>) -> Result<String, String> {
    let text = text.unwrap_or("()");
    let source = Source::new("--params", text.to_string());
    // The fields' positions are offsets into the source's own text: parse that, not `text`.
    let written = ParamsText::parse(&source, &source.text)?;
    codec.resolve(&written, &source)
}

/// Scores the folder and prints `file,score` rows.
///
/// # Errors
/// An unknown reward or one that does not score images, bad parameters, an unreadable folder,
/// image or prompt file.
pub fn score(args: &ScoreArgs, plugins: &Plugins) -> Result<(), String> {
    args.device.clone().single()?.run(Score { args, plugins })?
}

/// `bench score` to run on the backend of `--device`.
struct Score<'a> {
    args: &'a ScoreArgs,
    plugins: &'a Plugins,
}

impl OnDevice for Score<'_> {
    type Output = Result<(), String>;

    fn run<B: HarnessBackend>(self, devices: Vec<B::Device>) -> Result<(), String> {
        let device = devices.into_iter().next().ok_or("no device")?;
        score_on::<B>(self.args, self.plugins, device)
    }
}

fn score_on<B: HarnessBackend>(
    args: &ScoreArgs,
    plugins: &Plugins,
    device: B::Device,
) -> Result<(), String> {
    let entry = plugins
        .on::<B>()
        .rewards
        .get(&args.reward)
        .map_err(|e| format!("--reward: {e}"))?;
    if entry.samples != SampleKind::Images {
        return Err(format!(
            "--reward: `{}` scores {}, not images",
            args.reward, entry.samples
        ));
    }
    let resolved = resolve_params(&entry.params, args.params.as_deref())?;
    let resources = Resources::<B>::new(device);
    let reward = entry
        .build(&resolved, &resources.build_context())
        .map_err(|e| format!("--reward `{}`: {e}", args.reward))?;

    let files = image_files(&args.images, "--images")?;
    let prompts = prompts(args, files.len())?;
    let bar = image_bar(
        files.len(),
        args.quiet,
        format!("scoring with {}", args.reward),
    );

    let mut out = csv::Writer::from_writer(std::io::stdout());
    match out.write_record(["file", "score"]) {
        Err(e) if is_broken_pipe(&e) => return Ok(()),
        other => other.map_err(|e| format!("cannot write to stdout: {e}"))?,
    }
    visit_images::<B::InnerBackend>(
        &files,
        args.batch as usize,
        &resources.device,
        |run, images| {
            // Rewards score in f32: printed as such, shortest form.
            let scores = reward
                .score(images, &prompts[run.clone()])
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            let written = files[run.clone()]
                .iter()
                .zip(scores)
                .try_for_each(|(file, s)| {
                    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                    out.write_record([name.unwrap_or_default(), s.to_string()])
                });
            match written.and_then(|()| out.flush().map_err(csv::Error::from)) {
                Ok(()) => {}
                // The reader stopped (`bench score … | head`): nothing left to do.
                Err(e) if is_broken_pipe(&e) => return Ok(ControlFlow::Break(())),
                Err(e) => return Err(format!("cannot write to stdout: {e}")),
            }
            bar.inc(run.len() as u64);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_rewards::image::jpeg::JpegParams;

    #[test]
    fn a_bad_value_in_params_is_located_at_the_value() {
        let codec = ParamsCodec::of::<JpegParams>();
        let err = resolve_params(&codec, Some("(quality: \"high\")")).unwrap_err();
        assert!(err.starts_with("--params:1:11: "), "{err}");
        let err = resolve_params(&codec, Some("(quality: 90, nope: 1)")).unwrap_err();
        // An unknown field: at its value.
        assert!(err.starts_with("--params:1:21: "), "{err}");
    }
}
